//! Serving a CoreDNS Corefile unchanged (`--corefile`): the fixtures under
//! `tests/corefiles/` start, and each feature they use answers over UDP and TCP.
//! The tests override the Corefile's ports and upstreams with flags (loopback
//! only), as flags override every key.

mod common;
#[path = "support/upstream.rs"]
mod upstream;

use std::path::{Path, PathBuf};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use upstream::{Behaviour, Upstream};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corefiles")
        .join(name)
}

/// `cluster-dns serve --corefile FILE` on the example cluster, forwarding to
/// `upstream` (a loopback fake) when given.
fn serve_corefile(corefile: &Path, upstream: Option<&Upstream>) -> Server {
    let example = example_dir();
    let upstream = upstream.map(|u| u.addr.to_string());
    let mut args = vec![
        "--corefile",
        corefile.to_str().unwrap(),
        "--manifests",
        example.to_str().unwrap(),
    ];
    if let Some(upstream) = &upstream {
        args.extend(["--upstream", upstream.as_str()]);
    }
    Server::start(&args)
}

/// kubeadm's Corefile: the `kubernetes` options (TTL 30, PTR), `forward` with
/// the `cache` in front, and `loadbalance`.
#[test]
fn kubeadms_corefile_serves_the_cluster_and_forwards_the_rest() {
    let up = Upstream::start();
    up.set(
        "www.example.",
        Behaviour::Addresses(vec![[192, 0, 2, 7]], 300),
    );
    let corefile = fixture("kubeadm.Corefile");
    let server = serve_corefile(&corefile, Some(&up));
    for reply in [
        server.udp("nginx.default.svc.cluster.local.", RecordType::A),
        server.tcp("nginx.default.svc.cluster.local.", RecordType::A),
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(reply.answers.len(), 3);
        assert!(
            reply.answers.iter().all(|r| r.ttl == 30),
            "the Corefile's `ttl 30`"
        );
    }
    // `loadbalance`: the order turns between answers.
    let orders: std::collections::HashSet<Vec<String>> = (0..4)
        .map(|_| rdata(&server.udp("nginx.default.svc.cluster.local.", RecordType::A)))
        .collect();
    assert!(orders.len() > 1, "rotated: {orders:?}");
    // Reverse zones are served (`kubernetes ... in-addr.arpa ip6.arpa`).
    let ptr = server.udp("11.2.244.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(rdata(&ptr), vec!["web-1.nginx.default.svc.cluster.local."]);
    // `forward` through the `cache`: the upstream is asked once, TTL capped at 30.
    for reply in [
        server.udp("www.example.", RecordType::A),
        server.tcp("www.example.", RecordType::A),
    ] {
        assert_eq!(rdata(&reply), vec!["192.0.2.7"]);
        assert!(reply.answers[0].ttl <= 30, "`cache 30` caps the TTL");
    }
    assert_eq!(
        up.count("www.example."),
        1,
        "the second answer came from the cache"
    );
}

/// Stub domains (a server block per zone with its own `forward`): names in
/// them go to their upstream, everything else to the default one, over UDP and
/// TCP. The fixture's upstream address is replaced by a loopback one.
#[test]
fn stub_domains_forward_to_their_own_upstreams() {
    let main = Upstream::start();
    main.set(
        "www.example.",
        Behaviour::Addresses(vec![[192, 0, 2, 1]], 60),
    );
    let stub = Upstream::start();
    stub.set(
        "web.service.consul.local.",
        Behaviour::Addresses(vec![[10, 150, 9, 9]], 60),
    );
    stub.set(
        "intranet.corp.example.",
        Behaviour::Addresses(vec![[10, 150, 8, 8]], 60),
    );
    let dir = tempfile::tempdir().unwrap();
    let corefile = dir.path().join("Corefile");
    let text = std::fs::read_to_string(fixture("stub-domains.Corefile")).unwrap();
    std::fs::write(
        &corefile,
        text.replace("10.150.0.1", &stub.addr.to_string()),
    )
    .unwrap();
    let server = serve_corefile(&corefile, Some(&main));
    for reply in [
        server.udp("web.service.consul.local.", RecordType::A),
        server.tcp("intranet.corp.example.", RecordType::A),
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(
            rdata(&reply)[0].starts_with("10.150."),
            "{:?}",
            rdata(&reply)
        );
    }
    assert_eq!(
        rdata(&server.udp("www.example.", RecordType::A)),
        vec!["192.0.2.1"]
    );
    assert_eq!(
        rdata(&server.tcp("nginx.default.svc.cluster.local.", RecordType::A)).len(),
        3
    );
    assert_eq!(
        main.count("web.service.consul.local."),
        0,
        "not asked of the default upstream"
    );
    assert_eq!(
        stub.count("www.example."),
        0,
        "the stub upstream only gets its zones"
    );
    assert_eq!(stub.count("web.service.consul.local."), 1);
}

/// k3s's Corefile: the nodes' names from NodeHosts (`hosts ... { fallthrough }`)
/// before the cluster zone, a `coredns-custom` override and a server block
/// imported, and an edit of NodeHosts picked up. The fixture's paths are moved
/// under a temporary directory.
#[test]
fn k3s_corefile_serves_node_hosts_and_custom_imports() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    std::fs::create_dir_all(base.join("custom")).unwrap();
    let node_hosts = base.join("NodeHosts");
    std::fs::write(&node_hosts, "10.0.0.5 server-1\n10.0.0.6 agent-1\n").unwrap();
    let up = Upstream::start();
    up.set(
        "www.example.",
        Behaviour::Addresses(vec![[192, 0, 2, 3]], 60),
    );
    let stub = Upstream::start();
    stub.set(
        "db.corp.example.",
        Behaviour::Addresses(vec![[10, 9, 9, 9]], 60),
    );
    // AKS/k3s `coredns-custom`: an override inside the main block, a server block beside it.
    std::fs::write(base.join("custom/extra.override"), "    errors\n").unwrap_or(());
    std::fs::write(
        base.join("custom/corp.server"),
        format!("corp.example:53 {{\n    forward . {}\n}}\n", stub.addr),
    )
    .unwrap();
    let text = std::fs::read_to_string(fixture("k3s.Corefile")).unwrap();
    let corefile = base.join("Corefile");
    std::fs::write(
        &corefile,
        text.replace("/etc/coredns", base.to_str().unwrap()),
    )
    .unwrap();
    // The override is imported into the block: a plugin the block already has is
    // then given twice, which is refused with its file and line.
    let check = run_binary(&["corefile", "check", corefile.to_str().unwrap()]);
    assert!(!check.status.success());
    assert!(String::from_utf8_lossy(&check.stderr).contains("plugin errors is given twice"));
    std::fs::remove_file(base.join("custom/extra.override")).unwrap();

    let server = serve_corefile(&corefile, Some(&up));
    for reply in [
        server.udp("server-1.", RecordType::A),
        server.tcp("AGENT-1.", RecordType::A),
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.metadata.authoritative);
        assert_eq!(reply.answers[0].ttl, 60, "hosts' ttl 60");
    }
    assert_eq!(
        rdata(&server.udp("agent-1.", RecordType::A)),
        vec!["10.0.0.6"]
    );
    assert_eq!(
        rdata(&server.udp("6.0.0.10.in-addr.arpa.", RecordType::PTR)),
        vec!["agent-1."]
    );
    let nodata = server.udp("server-1.", RecordType::AAAA);
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(
        nodata.answers.is_empty(),
        "a listed name without AAAA: NODATA"
    );
    // Fallthrough: the cluster zone, the upstream, the imported server block.
    assert_eq!(
        rdata(&server.udp("web-0.nginx.default.svc.cluster.local.", RecordType::A)),
        vec!["10.244.1.10"]
    );
    assert_eq!(
        rdata(&server.tcp("www.example.", RecordType::A)),
        vec!["192.0.2.3"]
    );
    assert_eq!(
        rdata(&server.udp("db.corp.example.", RecordType::A)),
        vec!["10.9.9.9"]
    );
    // k3s rewrites NodeHosts when a node joins.
    std::fs::write(
        &node_hosts,
        "10.0.0.5 server-1\n10.0.0.6 agent-1\n10.0.0.7 agent-2\n",
    )
    .unwrap();
    assert!(
        eventually(std::time::Duration::from_secs(10), || {
            rdata(&server.udp("agent-2.", RecordType::A)) == ["10.0.0.7"]
        }),
        "the new node's name is served"
    );
}

/// The AAAA blocker (`template IN AAAA . { rcode NOERROR }`): AAAA queries, in
/// the cluster zone or not, get NOERROR with no records and never reach the
/// upstream; A queries are answered as before.
#[test]
fn a_template_blocks_aaaa() {
    let up = Upstream::start();
    up.set(
        "www.example.",
        Behaviour::Addresses(vec![[192, 0, 2, 4]], 60),
    );
    let corefile = fixture("block-aaaa.Corefile");
    let server = serve_corefile(&corefile, Some(&up));
    for reply in [
        server.udp("myweb-svc.default.svc.cluster.local.", RecordType::AAAA),
        server.tcp("myweb-svc.default.svc.cluster.local.", RecordType::AAAA),
        server.udp("www.example.", RecordType::AAAA),
        server.tcp("www.example.", RecordType::AAAA),
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.answers.is_empty(), "{:?}", reply.answers);
        assert!(reply.metadata.authoritative);
    }
    assert_eq!(
        rdata(&server.udp("myweb-svc.default.svc.cluster.local.", RecordType::A)),
        vec!["10.96.19.251"]
    );
    assert_eq!(
        rdata(&server.tcp("www.example.", RecordType::A)),
        vec!["192.0.2.4"]
    );
    // The A query only: an AAAA one would have been a second.
    assert_eq!(
        up.count("www.example."),
        1,
        "only the A query went upstream"
    );
}

/// The split-horizon fixture: `rewrite name` rules (regex with `answer name`,
/// exact, suffix with `answer auto`, and one into the upstream's names) over
/// UDP and TCP; the question is echoed as asked, the answers carry the asked
/// names, and names no rule matches are answered as always.
#[test]
fn rewrite_rules_serve_names_under_other_names() {
    let up = Upstream::start();
    up.set(
        "www.example.",
        Behaviour::Addresses(vec![[192, 0, 2, 9]], 60),
    );
    let corefile = fixture("split-horizon.Corefile");
    let server = serve_corefile(&corefile, Some(&up));
    let owners = |reply: &hickory_proto::op::Message| -> Vec<String> {
        reply.answers.iter().map(|r| r.name.to_ascii()).collect()
    };
    for ask in [Server::udp, Server::tcp] {
        // regex + answer name
        let reply = ask(&server, "web-0.nginx.Corp.Example.com.", RecordType::A);
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(rdata(&reply), vec!["10.244.1.10"]);
        assert_eq!(owners(&reply), vec!["web-0.nginx.corp.example.com."]);
        assert_eq!(
            reply.queries[0].name().to_ascii(),
            "web-0.nginx.Corp.Example.com."
        );
        // exact: always mapped back
        let reply = ask(&server, "www.example.org.", RecordType::A);
        assert_eq!(reply.answers.len(), 3, "{reply:?}");
        assert!(owners(&reply).iter().all(|o| o == "www.example.org."));
        // suffix + answer auto: owners and SRV targets
        let reply = ask(
            &server,
            "_web._tcp.nginx.default.internal.",
            RecordType::SRV,
        );
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        let mut targets = rdata(&reply);
        targets.sort();
        assert_eq!(targets.len(), 3, "{reply:?}");
        assert!(
            targets[0].ends_with("web-0.nginx.default.internal."),
            "{targets:?}"
        );
        assert!(
            owners(&reply)
                .iter()
                .all(|o| o == "_web._tcp.nginx.default.internal.")
        );
        // A rewritten name that is not in the cluster: NXDOMAIN with the zone's SOA.
        let reply = ask(&server, "nope.corp.example.com.", RecordType::A);
        assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(reply.authorities[0].record_type(), RecordType::SOA);
        // Forwarded under its other name, answered under the asked one.
        let reply = ask(&server, "mirror.example.net.", RecordType::A);
        assert_eq!(rdata(&reply), vec!["192.0.2.9"]);
        assert_eq!(owners(&reply), vec!["mirror.example.net."]);
        // No rule matches: the cluster name as always.
        let reply = ask(
            &server,
            "web-0.nginx.default.svc.cluster.local.",
            RecordType::A,
        );
        assert_eq!(
            owners(&reply),
            vec!["web-0.nginx.default.svc.cluster.local."]
        );
    }
    assert_eq!(
        up.count("mirror.example.net."),
        0,
        "the upstream sees the rewritten name"
    );
    assert!(up.count("www.example.") >= 1);
}

/// Full templates (CoreDNS README's `ip-a-b-c-d.example` A and its PTR, an MX
/// with additionals, a CNAME followed into the cluster, a class CH answer, and
/// SERVFAIL for a zone's unmatched names without `fallthrough`) over UDP and TCP.
#[test]
fn templates_answer_from_the_question() {
    let dir = tempfile::tempdir().unwrap();
    let corefile = dir.path().join("Corefile");
    std::fs::write(
        &corefile,
        r#".:53 {
    template IN A example {
        match (^|[.])ip-(?P<a>[0-9]*)-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$
        answer "{{ .Name }} 60 IN A {{ .Group.a }}.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}"
        fallthrough
    }
    template IN PTR 10.in-addr.arpa {
        match ^(?P<d>[0-9]*)[.](?P<c>[0-9]*)[.](?P<b>[0-9]*)[.](?P<a>[0-9]*)[.]in-addr[.]arpa[.]$
        answer "{{ .Name }} 60 IN PTR ip-{{ .Group.a }}-{{ .Group.b }}-{{ .Group.c }}-{{ .Group.d }}.example."
        fallthrough
    }
    template IN MX example {
        match ^ip-10-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$
        answer "{{ .Name }} 60 IN MX 10 {{ .Name }}"
        additional "{{ .Name }} 60 IN A 10.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}"
    }
    template IN ANY shortcut.example {
        answer "{{ .Name }} 60 IN CNAME myweb-svc.default.svc.cluster.local."
    }
    template CH TXT version.bind {
        answer "{{ .Name }} 0 CH TXT \"cluster-dns\""
    }
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . 127.0.0.1:9
}
"#,
    )
    .unwrap();
    let server = serve_corefile(&corefile, None);
    for ask in [Server::udp, Server::tcp] {
        let reply = ask(&server, "ip-192-0-2-7.example.", RecordType::A);
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.metadata.authoritative);
        assert_eq!(rdata(&reply), vec!["192.0.2.7"]);
        assert_eq!(reply.answers[0].ttl, 60);
        let reply = ask(&server, "7.2.0.10.in-addr.arpa.", RecordType::PTR);
        assert_eq!(rdata(&reply), vec!["ip-10-0-2-7.example."]);
        let reply = ask(&server, "ip-10-1-2-3.example.", RecordType::MX);
        assert_eq!(rdata(&reply), vec!["10 ip-10-1-2-3.example."]);
        assert_eq!(reply.additionals.len(), 1, "{reply:?}");
        // No regex matched, no fallthrough: SERVFAIL.
        let reply = ask(&server, "other.example.", RecordType::MX);
        assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
        // The CNAME is followed into the cluster.
        let reply = ask(&server, "shortcut.example.", RecordType::A);
        assert_eq!(
            rdata(&reply),
            vec!["myweb-svc.default.svc.cluster.local.", "10.96.19.251"]
        );
        // Names the templates do not take: the cluster as always.
        assert_eq!(
            rdata(&ask(
                &server,
                "myweb-svc.default.svc.cluster.local.",
                RecordType::A
            )),
            vec!["10.96.19.251"]
        );
    }
    // Class CH, which cluster-dns otherwise refuses.
    let mut query = message("version.bind.", RecordType::TXT, None);
    query.queries[0].set_query_class(hickory_proto::rr::DNSClass::CH);
    let reply = query_udp(server.addr, &query);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(rdata(&reply), vec!["cluster-dns"]);
}

/// AKS's Corefile with `coredns-custom` files as AKS's documentation writes
/// them: a `hosts` override, a `rewrite` override, and a server block for
/// another domain (its upstream a closed loopback port: SERVFAIL, never the
/// default upstream).
#[test]
fn aks_corefile_serves_its_custom_overrides_and_servers() {
    let up = Upstream::start();
    up.set(
        "www.example.",
        Behaviour::Addresses(vec![[192, 0, 2, 3]], 60),
    );
    let server = serve_corefile(&fixture("aks.Corefile"), Some(&up));
    for ask in [Server::udp, Server::tcp] {
        assert_eq!(
            rdata(&ask(&server, "example1.org.", RecordType::A)),
            vec!["10.0.0.1"]
        );
        let reply = ask(&server, "myweb-svc.contoso.com.", RecordType::A);
        assert_eq!(rdata(&reply), vec!["10.96.19.251"]);
        assert_eq!(reply.queries[0].name().to_ascii(), "myweb-svc.contoso.com.");
        let reply = ask(&server, "nginx.default.svc.cluster.local.", RecordType::A);
        assert_eq!(reply.answers.len(), 3);
        assert!(reply.answers.iter().all(|r| r.ttl == 30));
        let reply = ask(&server, "host.puglife.local.", RecordType::A);
        assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(
            rdata(&ask(&server, "www.example.", RecordType::A)),
            vec!["192.0.2.3"]
        );
    }
    assert_eq!(
        up.count("host.puglife.local."),
        0,
        "the stub domain's own upstream"
    );
}

/// `cluster-dns corefile check` prints what is served; a plugin cluster-dns
/// does not serve fails `check` and `serve` with the file, the line and the
/// plugin, exit status 1.
#[test]
fn check_describes_and_unsupported_plugins_are_refused_at_start() {
    let corefile = fixture("kubeadm.Corefile");
    let out = run_binary(&["corefile", "check", corefile.to_str().unwrap()]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("server block .:53"), "{stdout}");
    assert!(
        stdout.contains("kubeadm.Corefile:9  kubernetes cluster.local in-addr.arpa ip6.arpa"),
        "{stdout}"
    );
    assert!(
        stdout.contains("upstreams: the nameservers of /etc/resolv.conf"),
        "{stdout}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("Corefile");
    std::fs::write(
        &bad,
        ".:53 {\n    errors\n    kubernetes cluster.local\n    etcd skydns.local\n    forward . 127.0.0.1:9\n}\n",
    )
    .unwrap();
    let expected = format!(
        "{}:4: plugin etcd is not supported (supported: ",
        bad.display()
    );
    let out = run_binary(&["corefile", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with(&expected), "{stderr}");

    let example = example_dir();
    let out = run_binary(&[
        "serve",
        "--corefile",
        bad.to_str().unwrap(),
        "--manifests",
        example.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&expected), "{stderr}");

    // A malformed Corefile: an unclosed block, reported at its last line.
    std::fs::write(
        &bad,
        ".:53 {\n    kubernetes cluster.local {\n        pods insecure\n",
    )
    .unwrap();
    let out = run_binary(&["corefile", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "{}:3: unexpected end of file: expected '}}'",
            bad.display()
        )),
        "{stderr}"
    );
}

/// `cluster-dns corefile translate` writes a cluster-dns.toml that serves the
/// same settings: started from it, the server answers as from the Corefile.
#[test]
fn translate_writes_an_equivalent_config_file() {
    let corefile = fixture("kubeadm.Corefile");
    let out = run_binary(&["corefile", "translate", corefile.to_str().unwrap()]);
    assert!(out.status.success());
    let toml = String::from_utf8(out.stdout).unwrap();
    assert!(toml.contains("ttl = 30"), "{toml}");
    assert!(
        toml.contains("resolv_conf = \"/etc/resolv.conf\""),
        "{toml}"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cluster-dns.toml");
    std::fs::write(&config, &toml).unwrap();
    let example = example_dir();
    let server = Server::start(&[
        "--config",
        config.to_str().unwrap(),
        "--manifests",
        example.to_str().unwrap(),
    ]);
    let reply = server.tcp("web-0.nginx.default.svc.cluster.local.", RecordType::A);
    assert_eq!(rdata(&reply), vec!["10.244.1.10"]);
    assert_eq!(reply.answers[0].ttl, 30);
}

/// CoreDNS's `reload`: an edited Corefile (a ConfigMap update) takes effect
/// without a restart; a broken edit is logged and the running settings kept.
#[test]
fn an_edited_corefile_is_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let corefile = dir.path().join("Corefile");
    let text = |ttl: u32| {
        format!(
            ".:53 {{\n    kubernetes cluster.local {{\n        ttl {ttl}\n    }}\n    forward . 127.0.0.1:9\n    reload\n}}\n"
        )
    };
    std::fs::write(&corefile, text(30)).unwrap();
    let server = serve_corefile(&corefile, None);
    let ttl = || {
        server
            .udp("myweb-svc.default.svc.cluster.local.", RecordType::A)
            .answers[0]
            .ttl
    };
    assert_eq!(ttl(), 30);
    std::fs::write(&corefile, text(12)).unwrap();
    assert!(
        eventually(std::time::Duration::from_secs(10), || ttl() == 12),
        "reloaded"
    );
    std::fs::write(
        &corefile,
        ".:53 {\n    kubernetes cluster.local\n    etcd skydns.local\n}\n",
    )
    .unwrap();
    assert!(
        server.wait_for_log(
            "plugin etcd is not supported",
            std::time::Duration::from_secs(10)
        ),
        "the bad edit is reported"
    );
    assert_eq!(ttl(), 12, "the running settings are kept");
}

/// `forward`'s options from a Corefile: `policy sequential`, `except`, and
/// health checks with `no_rec` once the first upstream stops answering.
#[test]
fn forward_options_from_the_corefile() {
    let (first, second) = (Upstream::start(), Upstream::start());
    for up in [&first, &second] {
        up.set(
            "www.example.",
            Behaviour::Addresses(vec![[192, 0, 2, 11]], 60),
        );
    }
    let corefile = fixture("forward-options.Corefile");
    let example = example_dir();
    let (a, b) = (first.addr.to_string(), second.addr.to_string());
    let server = Server::start(&[
        "--corefile",
        corefile.to_str().unwrap(),
        "--manifests",
        example.to_str().unwrap(),
        "--upstream",
        &a,
        "--upstream",
        &b,
        "--cache-ttl",
        "0",
        "--forward-timeout-ms",
        "200",
    ]);
    for reply in [
        server.udp("www.example.", RecordType::A),
        server.tcp("www.example.", RecordType::A),
    ] {
        assert_eq!(rdata(&reply), vec!["192.0.2.11"]);
    }
    assert_eq!(first.count("www.example."), 2, "policy sequential");
    assert_eq!(second.count("www.example."), 0);
    for reply in [
        server.udp("intranet.corp.example.", RecordType::A),
        server.tcp("intranet.corp.example.", RecordType::A),
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    }
    assert_eq!(first.count("intranet.corp.example."), 0, "except");
    first.set_silent(true);
    assert_eq!(
        rdata(&server.udp("www.example.", RecordType::A)),
        vec!["192.0.2.11"]
    );
    assert!(
        eventually(std::time::Duration::from_secs(5), || first.count(".") >= 2),
        "health checks: {:?}",
        first.seen()
    );
    let check = first.seen().into_iter().find(|s| s.name == ".").unwrap();
    assert!(!check.recursion_desired, "no_rec");
}

/// `log`: CoreDNS's Common Log Format for the cluster zone, and the combined
/// format for the denials and errors of everything else, on standard output.
#[test]
fn log_writes_coredns_query_lines() {
    let up = Upstream::start();
    up.set(
        "www.example.",
        Behaviour::Addresses(vec![[192, 0, 2, 12]], 60),
    );
    let dir = tempfile::tempdir().unwrap();
    let corefile = dir.path().join("Corefile");
    std::fs::write(
        &corefile,
        ".:53 {\n    errors\n    log cluster.local\n    log . {combined} {\n        class denial error\n    }\n    \
         kubernetes cluster.local in-addr.arpa ip6.arpa\n    forward . 10.0.0.1\n}\n",
    )
    .unwrap();
    let server = serve_corefile(&corefile, Some(&up));
    let name = "nginx.default.svc.cluster.local.";
    let raw = query_udp_raw(server.addr, &message(name, RecordType::A, Some(1232)));
    let udp = hickory_proto::op::Message::from_vec(&raw).unwrap();
    let tcp = server.tcp(name, RecordType::A);
    assert_eq!(udp.answers.len(), 3);
    assert_eq!(
        rdata(&server.udp("www.example.", RecordType::A)),
        vec!["192.0.2.12"]
    );
    let missing = server.tcp("missing.example.", RecordType::A);
    assert_eq!(missing.metadata.response_code, ResponseCode::NXDomain);
    assert!(
        eventually(std::time::Duration::from_secs(5), || server.stdout().len()
            >= 3),
        "{:?}",
        server.stdout()
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    let lines = server.stdout();
    assert_eq!(
        lines.len(),
        3,
        "www.example. is a success: not logged: {lines:?}"
    );
    // [INFO] 127.0.0.1:PORT - ID "A IN NAME udp SIZE false 1232" NOERROR qr,aa,rd RSIZE 0.000123s
    // (the test client's UDP queries offer 1232 bytes in an OPT record).
    let size = message(name, RecordType::A, Some(1232))
        .to_vec()
        .unwrap()
        .len();
    let tcp_size = message(name, RecordType::A, None).to_vec().unwrap().len();
    let expected_udp = format!(
        "- {} \"A IN {name} udp {size} false 1232\" NOERROR qr,aa,rd ",
        udp.metadata.id
    );
    assert!(lines[0].starts_with("[INFO] 127.0.0.1:"), "{}", lines[0]);
    assert!(
        lines[0].contains(&expected_udp),
        "{}\n{expected_udp}",
        lines[0]
    );
    let rsize = raw.len();
    assert!(
        lines[0].ends_with("s") && lines[0].contains(&format!(" {rsize} ")),
        "{} (rsize {rsize})",
        lines[0]
    );
    let expected_tcp = format!(
        "- {} \"A IN {name} tcp {tcp_size} false 65535\" NOERROR",
        tcp.metadata.id
    );
    assert!(lines[1].contains(&expected_tcp), "{}", lines[1]);
    assert!(
        lines[2].contains("\"A IN missing.example. tcp"),
        "{}",
        lines[2]
    );
    assert!(lines[2].contains("\" NXDOMAIN qr,rd,ra "), "{}", lines[2]);
    assert!(
        lines[2].ends_with("s \"0\""),
        "combined: the opcode: {}",
        lines[2]
    );
}

/// `any`, `minimal`, `bufsize` and `whoami` from a Corefile, over UDP and TCP.
#[test]
fn any_minimal_bufsize_and_whoami() {
    let up = Upstream::start();
    let many: Vec<[u8; 4]> = (1..=40).map(|i| [198, 51, 100, i]).collect();
    up.set("big.example.", Behaviour::Addresses(many, 60));
    let dir = tempfile::tempdir().unwrap();
    let corefile = dir.path().join("Corefile");
    std::fs::write(
        &corefile,
        ".:53 {\n    errors\n    bufsize 512\n    any\n    minimal\n    \
         kubernetes cluster.local in-addr.arpa ip6.arpa\n    \
         forward . 10.0.0.1 {\n        except internal.example\n    }\n    whoami\n}\n",
    )
    .unwrap();
    let server = serve_corefile(&corefile, Some(&up));
    let srv = "_web._tcp.nginx.default.svc.cluster.local.";
    for reply in [
        server.udp(srv, RecordType::SRV),
        server.tcp(srv, RecordType::SRV),
    ] {
        assert_eq!(reply.answers.len(), 3, "{reply:?}");
        assert!(
            reply.additionals.is_empty(),
            "minimal: no A records for the targets"
        );
    }
    let name = "nginx.default.svc.cluster.local.";
    for reply in [
        server.udp(name, RecordType::ANY),
        server.tcp(name, RecordType::ANY),
    ] {
        let rdata = rdata(&reply);
        assert_eq!(rdata.len(), 1, "{reply:?}");
        assert!(
            rdata[0].contains("ANY obsoleted") && rdata[0].contains("See RFC 8482"),
            "{rdata:?}"
        );
        assert_eq!(reply.answers[0].ttl, 8482);
        assert_eq!(reply.answers[0].record_type(), RecordType::HINFO);
    }
    // 40 addresses do not fit in 512 bytes, though the client offers 4096.
    let udp = query_udp(
        server.addr,
        &message("big.example.", RecordType::A, Some(4096)),
    );
    assert!(udp.metadata.truncation, "bufsize 512: {udp:?}");
    assert_eq!(udp.edns.as_ref().map(|e| e.max_payload()), Some(512));
    assert_eq!(server.tcp("big.example.", RecordType::A).answers.len(), 40);
    // `except` leaves the name to the next plugin: whoami.
    for (reply, proto) in [
        (server.udp("host.internal.example.", RecordType::A), "_udp"),
        (server.tcp("host.internal.example.", RecordType::A), "_tcp"),
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.metadata.authoritative);
        let extra: Vec<String> = reply
            .additionals
            .iter()
            .map(|r| format!("{} {}", r.name, r.data))
            .collect();
        assert_eq!(extra.len(), 2, "{extra:?}");
        assert_eq!(extra[0], "host.internal.example. 127.0.0.1");
        assert!(
            extra[1].starts_with(&format!("{proto}.host.internal.example. 0 0 ")),
            "{extra:?}"
        );
    }
    assert_eq!(up.count("host.internal.example."), 0);
}

/// `k8s_external`: Services' external IPs and load balancer addresses under a
/// zone of their own, over UDP and TCP, from manifests with `status`.
#[test]
fn k8s_external_serves_external_and_load_balancer_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(
        manifests.join("services.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: front, namespace: shop}\n\
         spec:\n  type: LoadBalancer\n  clusterIP: 10.96.5.5\n  externalIPs: [192.0.2.50]\n  \
         ports: [{name: https, protocol: TCP, port: 443}]\n\
         status:\n  loadBalancer:\n    ingress: [{ip: 198.51.100.7}, {ip: \"2001:db8::7\"}]\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: internal, namespace: shop}\n\
         spec:\n  clusterIP: 10.96.5.6\n  ports: [{name: http, protocol: TCP, port: 80}]\n",
    )
    .unwrap();
    let corefile = dir.path().join("Corefile");
    std::fs::write(
        &corefile,
        ".:53 {\n    kubernetes cluster.local\n    k8s_external shop.example {\n        ttl 30\n    }\n    \
         forward . 10.0.0.1\n}\n",
    )
    .unwrap();
    let server = Server::start(&[
        "--corefile",
        corefile.to_str().unwrap(),
        "--manifests",
        manifests.to_str().unwrap(),
    ]);
    let name = "front.shop.shop.example.";
    for reply in [
        server.udp(name, RecordType::A),
        server.tcp(name, RecordType::A),
    ] {
        assert!(reply.metadata.authoritative);
        assert_eq!(sorted_rdata(&reply), vec!["192.0.2.50", "198.51.100.7"]);
        assert!(reply.answers.iter().all(|r| r.ttl == 30));
    }
    assert_eq!(
        rdata(&server.udp(name, RecordType::AAAA)),
        vec!["2001:db8::7"]
    );
    let srv = server.tcp("_https._tcp.front.shop.shop.example.", RecordType::SRV);
    assert_eq!(srv.answers.len(), 1, "one target, one port: {srv:?}");
    assert_eq!(srv.additionals.len(), 3, "its three addresses");
    // In the cluster zone the same Service keeps its cluster IP.
    let inside = server.udp("front.shop.svc.cluster.local.", RecordType::A);
    assert_eq!(rdata(&inside), vec!["10.96.5.5"]);
    // A Service without external addresses, and a name that is not there.
    for missing in ["internal.shop.shop.example.", "nope.shop.shop.example."] {
        let reply = server.udp(missing, RecordType::A);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NXDomain,
            "{missing}"
        );
        assert_eq!(reply.authorities[0].record_type(), RecordType::SOA);
    }
    let soa = server.udp("shop.example.", RecordType::SOA);
    assert_eq!(soa.answers[0].record_type(), RecordType::SOA);
    let ns = server.udp("shop.example.", RecordType::NS);
    assert_eq!(rdata(&ns), vec!["ns1.dns.shop.example."]);
}

/// `kubernetes { fallthrough ZONES }`: a cluster name that does not exist goes
/// to `forward` (CoreDNS passes an NXDOMAIN to the next plugin), over UDP and
/// TCP; names that exist, and zones not listed, stay ours.
#[test]
fn kubernetes_fallthrough_sends_missing_names_upstream() {
    let up = Upstream::start();
    up.set(
        "legacy.default.svc.cluster.local.",
        Behaviour::Addresses(vec![[10, 1, 2, 3]], 60),
    );
    up.set(
        "legacy.default.svc.other.local.",
        Behaviour::Addresses(vec![[10, 1, 2, 4]], 60),
    );
    let dir = tempfile::tempdir().unwrap();
    let corefile = dir.path().join("Corefile");
    std::fs::write(
        &corefile,
        ".:53 {\n    kubernetes cluster.local other.local in-addr.arpa ip6.arpa {\n        \
         fallthrough cluster.local in-addr.arpa ip6.arpa\n    }\n    forward . 10.0.0.1\n}\n",
    )
    .unwrap();
    let server = serve_corefile(&corefile, Some(&up));
    for reply in [
        server.udp("legacy.default.svc.cluster.local.", RecordType::A),
        server.tcp("legacy.default.svc.cluster.local.", RecordType::A),
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(rdata(&reply), vec!["10.1.2.3"]);
        assert!(!reply.metadata.authoritative, "the upstream's answer");
    }
    assert_eq!(up.count("legacy.default.svc.cluster.local."), 2);
    assert_eq!(
        rdata(&server.udp("nginx.default.svc.cluster.local.", RecordType::A)).len(),
        3
    );
    let other = server.udp("legacy.default.svc.other.local.", RecordType::A);
    assert_eq!(other.metadata.response_code, ResponseCode::NXDomain);
    assert!(other.metadata.authoritative);
    assert_eq!(up.count("legacy.default.svc.other.local."), 0);
    // NODATA is an answer, not a miss: it never falls through.
    let nodata = server.udp("nginx.default.svc.cluster.local.", RecordType::MX);
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.metadata.authoritative);
}

/// `hosts FILE ZONES`: the entries answer only in their zones (an unlisted name
/// there is SERVFAIL without `fallthrough`, as in CoreDNS); every other name,
/// cluster names included, goes on as if there were no `hosts`; PTR comes from
/// the entries in any zone.
#[test]
fn hosts_with_zones_answers_only_there() {
    let up = Upstream::start();
    up.set(
        "www.example.",
        Behaviour::Addresses(vec![[192, 0, 2, 80]], 60),
    );
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(
        &hosts,
        "10.0.0.9 db.lan\n10.0.0.8 nginx.default.svc.cluster.local\n",
    )
    .unwrap();
    let corefile = dir.path().join("Corefile");
    std::fs::write(
        &corefile,
        format!(
            ".:53 {{\n    hosts {} lan\n    kubernetes cluster.local in-addr.arpa ip6.arpa\n    forward . 10.0.0.1\n}}\n",
            hosts.display()
        ),
    )
    .unwrap();
    let server = serve_corefile(&corefile, Some(&up));
    for reply in [
        server.udp("db.lan.", RecordType::A),
        server.tcp("db.lan.", RecordType::A),
    ] {
        assert_eq!(rdata(&reply), vec!["10.0.0.9"]);
    }
    assert_eq!(
        server
            .udp("nope.lan.", RecordType::A)
            .metadata
            .response_code,
        ResponseCode::ServFail
    );
    assert_eq!(
        rdata(&server.tcp("www.example.", RecordType::A)),
        vec!["192.0.2.80"]
    );
    // A cluster name listed outside the hosts zones is the cluster's.
    assert_eq!(
        rdata(&server.udp("nginx.default.svc.cluster.local.", RecordType::A)).len(),
        3
    );
    assert_eq!(
        rdata(&server.udp("9.0.0.10.in-addr.arpa.", RecordType::PTR)),
        vec!["db.lan."]
    );
}

/// `forward FROM TO`: only names under FROM go to the upstreams; any other
/// name outside the cluster zones is SERVFAIL (CoreDNS: no plugin after
/// `forward`), over UDP and TCP.
#[test]
fn forward_from_a_zone_forwards_only_that_zone() {
    let up = Upstream::start();
    for name in ["www.example.org.", "www.example.com."] {
        up.set(name, Behaviour::Addresses(vec![[192, 0, 2, 44]], 60));
    }
    let dir = tempfile::tempdir().unwrap();
    let corefile = dir.path().join("Corefile");
    std::fs::write(
        &corefile,
        ".:53 {\n    kubernetes cluster.local in-addr.arpa ip6.arpa\n    forward example.org 10.0.0.1\n}\n",
    )
    .unwrap();
    let server = serve_corefile(&corefile, Some(&up));
    for reply in [
        server.udp("www.example.org.", RecordType::A),
        server.tcp("WWW.example.ORG.", RecordType::A),
    ] {
        assert_eq!(rdata(&reply), vec!["192.0.2.44"]);
    }
    for reply in [
        server.udp("www.example.com.", RecordType::A),
        server.tcp("www.example.com.", RecordType::A),
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    }
    assert_eq!(up.count("www.example.com."), 0);
    assert_eq!(
        rdata(&server.udp("nginx.default.svc.cluster.local.", RecordType::A)).len(),
        3
    );
}

/// `cache TTL ZONES { disable denial ZONES }`: only answers for names in the
/// cache's zones are kept, and no denial in a disabled zone; the upstream's
/// counts show what came from the cache.
#[test]
fn cache_zones_and_disable_choose_what_is_kept() {
    let up = Upstream::start();
    for name in ["www.example.org.", "www.example.com."] {
        up.set(name, Behaviour::Addresses(vec![[192, 0, 2, 45]], 300));
    }
    up.set("nope.example.org.", Behaviour::NxDomain(300, 300));
    let dir = tempfile::tempdir().unwrap();
    let corefile = dir.path().join("Corefile");
    std::fs::write(
        &corefile,
        ".:53 {\n    kubernetes cluster.local in-addr.arpa ip6.arpa\n    \
         cache 30 example.org {\n        disable denial example.org\n    }\n    forward . 10.0.0.1\n}\n",
    )
    .unwrap();
    let server = serve_corefile(&corefile, Some(&up));
    for _ in 0..2 {
        assert_eq!(
            rdata(&server.udp("www.example.org.", RecordType::A)),
            vec!["192.0.2.45"]
        );
        assert_eq!(
            rdata(&server.tcp("www.example.com.", RecordType::A)),
            vec!["192.0.2.45"]
        );
        let nope = server.udp("nope.example.org.", RecordType::A);
        assert_eq!(nope.metadata.response_code, ResponseCode::NXDomain);
    }
    assert_eq!(up.count("www.example.org."), 1, "cached");
    assert_eq!(up.count("www.example.com."), 2, "outside the cache's zones");
    assert_eq!(up.count("nope.example.org."), 2, "denials disabled there");
}

/// A root block without `forward`: the cluster is served and nothing is
/// forwarded; other names get SERVFAIL (CoreDNS: no plugin after
/// `kubernetes`), or with `whoami` its answer, over UDP and TCP.
#[test]
fn a_root_block_without_forward_forwards_nothing() {
    let up = Upstream::start();
    up.set(
        "www.example.",
        Behaviour::Addresses(vec![[192, 0, 2, 46]], 60),
    );
    let dir = tempfile::tempdir().unwrap();
    for (extra, want) in [
        ("", ResponseCode::ServFail),
        ("    whoami\n", ResponseCode::NoError),
    ] {
        let corefile = dir.path().join("Corefile");
        std::fs::write(
            &corefile,
            format!(".:53 {{\n    kubernetes cluster.local in-addr.arpa ip6.arpa\n{extra}}}\n"),
        )
        .unwrap();
        let server = serve_corefile(&corefile, Some(&up));
        for reply in [
            server.udp("www.example.", RecordType::A),
            server.tcp("www.example.", RecordType::A),
        ] {
            assert_eq!(reply.metadata.response_code, want, "{extra:?}");
            assert!(reply.answers.is_empty());
        }
        assert_eq!(
            rdata(&server.udp("nginx.default.svc.cluster.local.", RecordType::A)).len(),
            3
        );
    }
    assert_eq!(up.count("www.example."), 0, "nothing forwarded");
    assert_eq!(up.seen().len(), 0, "not even a loop probe");
}

/// Server blocks of their own (AKS's documented `.server` rewrite with `log`; a
/// block with `forward` options; a `template` CNAME into the cluster; `whoami`
/// with no `forward`): a name in a block's zone goes through its plugins alone
/// and to its upstreams, the rewritten name too (CoreDNS picks the block
/// first); the root block's `hosts` and cache never see it; over UDP and TCP.
#[test]
fn blocks_of_their_own_answer_their_zones() {
    let main = Upstream::start();
    main.set(
        "www.example.",
        Behaviour::Addresses(vec![[192, 0, 2, 7]], 300),
    );
    let aks = Upstream::start();
    aks.set(
        "nginx.default.svc.cluster.local.",
        Behaviour::Addresses(vec![[10, 9, 9, 9]], 300),
    );
    aks.set(
        "www.default.svc.cluster.local.",
        Behaviour::Addresses(vec![[10, 7, 7, 7]], 300),
    );
    let tcp_only = Upstream::start();
    tcp_only.set(
        "db.corp.lan.",
        Behaviour::Addresses(vec![[10, 8, 8, 8]], 60),
    );
    let dir = tempfile::tempdir().unwrap();
    let corefile = dir.path().join("Corefile");
    std::fs::write(
        &corefile,
        format!(
            ".:53 {{\n    hosts {{\n        192.0.2.99 www.example.com\n        fallthrough\n    }}\n    \
             kubernetes cluster.local in-addr.arpa ip6.arpa\n    forward . 10.0.0.1\n    cache 300\n}}\n\
             example.com:53 {{\n    log\n    errors\n    rewrite stop {{\n        \
             name regex (.*)\\.example\\.com {{1}}.default.svc.cluster.local\n        \
             answer name (.*)\\.default\\.svc\\.cluster\\.local {{1}}.example.com\n    }}\n    \
             forward . {}\n}}\n\
             corp.lan:53 {{\n    forward . {} {{\n        force_tcp\n    }}\n}}\n\
             tpl.test:53 {{\n    template IN A {{\n        answer \"{{{{ .Name }}}} 60 IN CNAME nginx.default.svc.cluster.local.\"\n    }}\n}}\n\
             who.test:53 {{\n    whoami\n}}\n",
            aks.addr, tcp_only.addr
        ),
    )
    .unwrap();
    let server = serve_corefile(&corefile, Some(&main));
    for reply in [
        server.udp("nginx.example.com.", RecordType::A),
        server.tcp("NGINX.example.com.", RecordType::A),
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(rdata(&reply), vec!["10.9.9.9"], "{reply:?}");
        assert_eq!(
            reply.answers[0].name.to_ascii().to_ascii_lowercase(),
            "nginx.example.com.",
            "the answer rewritten back"
        );
    }
    assert_eq!(
        aks.count("nginx.default.svc.cluster.local."),
        2,
        "a block's answers stay out of the shared cache"
    );
    // The root block's hosts entry is not the block's.
    assert_eq!(
        rdata(&server.udp("www.example.com.", RecordType::A)),
        vec!["10.7.7.7"]
    );
    assert!(
        server
            .stdout()
            .iter()
            .any(|l| l.contains("\"A IN nginx.example.com. udp")),
        "the block's log: {:?}",
        server.stdout()
    );
    assert_eq!(
        rdata(&server.udp("db.corp.lan.", RecordType::A)),
        vec!["10.8.8.8"]
    );
    assert!(
        tcp_only.seen().iter().all(|s| s.tcp) && !tcp_only.seen().is_empty(),
        "force_tcp in its block"
    );
    // A block's template CNAME into the cluster is followed from the index.
    let tpl = server.tcp("a.tpl.test.", RecordType::A);
    assert_eq!(tpl.answers.len(), 4, "{tpl:?}");
    assert_eq!(tpl.answers[0].record_type(), RecordType::CNAME);
    // A block without forward: whoami answers.
    let who = server.udp("x.who.test.", RecordType::A);
    assert_eq!(who.metadata.response_code, ResponseCode::NoError);
    assert_eq!(rdata(&who), Vec::<String>::new());
    assert_eq!(who.additionals.len(), 2, "{who:?}");
    // The root's own forwarded names are cached as before.
    for _ in 0..2 {
        assert_eq!(
            rdata(&server.udp("www.example.", RecordType::A)),
            vec!["192.0.2.7"]
        );
    }
    assert_eq!(main.count("www.example."), 1);
    // Metrics count a block's names under its zone, as CoreDNS's server block.
    let (_, metrics) = server.http_get("metrics", "/metrics");
    for zone in ["example.com.", "corp.lan.", "tpl.test.", "who.test."] {
        assert!(
            metrics.contains(&format!("zone=\"{zone}\"")),
            "{zone}: {metrics}"
        );
    }
    for name in [
        "nginx.example.com.",
        "nginx.default.svc.cluster.local.",
        "www.default.svc.cluster.local.",
        "db.corp.lan.",
        "a.tpl.test.",
        "x.who.test.",
    ] {
        assert_eq!(main.count(name), 0, "{name} reached the root's upstream");
    }
}
