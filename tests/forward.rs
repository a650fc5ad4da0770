//! Forwarding, the cache, search-path expansions and the reverse fallthrough,
//! against a scriptable upstream on loopback.

mod common;
#[path = "support/upstream.rs"]
mod upstream;

use std::time::Duration;

use common::*;
use hickory_proto::op::{Edns, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, NS};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use upstream::{Behaviour, LIE, Lie, Upstream};

fn with_upstreams(upstreams: &[&Upstream], extra: &[&str]) -> Server {
    let dir = example_dir();
    let addrs: Vec<String> = upstreams.iter().map(|u| u.addr.to_string()).collect();
    let mut args: Vec<&str> = vec!["--manifests", dir.to_str().unwrap()];
    for addr in &addrs {
        args.extend(["--upstream", addr.as_str()]);
    }
    args.extend_from_slice(extra);
    // Leak the strings for the argument slice's lifetime; tests are short-lived.
    let args: Vec<&'static str> = args
        .into_iter()
        .map(|a| &*Box::leak(a.to_string().into_boxed_str()))
        .collect();
    Server::start(&args)
}

#[test]
fn names_outside_the_zones_are_forwarded_with_their_flags() {
    let up = Upstream::start();
    up.set(
        "www.example.",
        Behaviour::Addresses(vec![[192, 0, 2, 10]], 300),
    );
    let server = with_upstreams(&[&up], &[]);
    let reply = server.udp("WWW.Example.", RecordType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(rdata(&reply), vec!["192.0.2.10"]);
    assert!(!reply.metadata.authoritative);
    assert!(reply.metadata.recursion_available);
    assert_eq!(reply.answers[0].ttl, 30, "TTL capped by the cache's 30 s");
    // The upstream's NXDOMAIN comes through, with its SOA.
    let reply = server.udp("missing.example.", RecordType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(reply.authorities[0].record_type(), RecordType::SOA);
    // RD, CD and DO travel upstream.
    let mut msg = message("flags.example.", RecordType::A, None);
    msg.metadata.checking_disabled = true;
    let mut edns = Edns::new();
    edns.set_dnssec_ok(true);
    msg.set_edns(edns);
    let _ = query_udp(server.addr, &msg);
    let seen = up
        .seen()
        .into_iter()
        .find(|s| s.name == "flags.example.")
        .expect("forwarded");
    assert!(seen.recursion_desired && seen.checking_disabled && seen.dnssec_ok && seen.has_edns);
}

#[test]
fn truncated_upstream_answers_are_fetched_over_tcp() {
    let up = Upstream::start();
    let many: Vec<[u8; 4]> = (1..=100).map(|i| [198, 51, 100, i]).collect();
    up.set("big.example.", Behaviour::Addresses(many, 60));
    let server = with_upstreams(&[&up], &[]);
    let reply = server.tcp("big.example.", RecordType::A);
    assert_eq!(reply.answers.len(), 100);
    assert!(
        up.seen().iter().any(|s| s.name == "big.example." && s.tcp),
        "retried over TCP"
    );
    // A UDP client gets what fits, with TC set, and then the whole answer over TCP.
    let udp = server.udp("big.example.", RecordType::A);
    assert!(udp.metadata.truncation);
}

#[test]
fn a_silent_upstream_times_out_and_the_next_answers() {
    let silent = Upstream::start();
    silent.set_silent(true);
    let good = Upstream::start();
    good.set(
        "www.example.",
        Behaviour::Addresses(vec![[192, 0, 2, 1]], 60),
    );
    good.set(
        "two.example.",
        Behaviour::Addresses(vec![[192, 0, 2, 2]], 60),
    );
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("c.toml");
    // Sequential, the silent one first: it is asked every time until it is
    // down (with `random` it is left unasked one run in sixteen).
    std::fs::write(
        &config,
        "forward_timeout_ms = 300\nforward_policy = \"sequential\"\n",
    )
    .unwrap();
    let server = with_upstreams(
        &[&silent, &good],
        &["--config", config.to_str().unwrap(), "--cache-ttl", "0"],
    );
    for name in [
        "www.example.",
        "two.example.",
        "www.example.",
        "two.example.",
    ] {
        let reply = server.udp(name, RecordType::A);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert_eq!(rdata(&reply).len(), 1, "{name}");
    }
    // After failing (timing out or being overtaken), the silent upstream is
    // tried last for a while: later queries do not wait for it.
    assert!(
        server.wait_for_log("trying the others first", Duration::from_secs(5)),
        "{}",
        server.log()
    );
}

#[test]
fn servfail_when_every_upstream_fails() {
    let a = Upstream::start();
    a.set_silent(true);
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("c.toml");
    std::fs::write(&config, "forward_timeout_ms = 200\n").unwrap();
    let server = with_upstreams(
        &[&a],
        &[
            "--config",
            config.to_str().unwrap(),
            "--upstream",
            DEAD_UPSTREAM,
        ],
    );
    let reply = server.udp("www.example.", RecordType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
}

#[test]
fn queries_in_flight_are_bounded() {
    let up = Upstream::start();
    for i in 0..8 {
        up.set(
            &format!("slow{i}.example."),
            Behaviour::Slow(
                Duration::from_millis(800),
                Box::new(Behaviour::Addresses(vec![[192, 0, 2, 9]], 60)),
            ),
        );
    }
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("c.toml");
    std::fs::write(&config, "max_concurrent = 2\n").unwrap();
    let server = with_upstreams(&[&up], &["--config", config.to_str().unwrap()]);
    let addr = server.addr;
    let handles: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                query_udp(
                    addr,
                    &message(&format!("slow{i}.example."), RecordType::A, None),
                )
                .metadata
                .response_code
            })
        })
        .collect();
    let codes: Vec<ResponseCode> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let answered = codes
        .iter()
        .filter(|c| **c == ResponseCode::NoError)
        .count();
    let refused = codes
        .iter()
        .filter(|c| **c == ResponseCode::Refused)
        .count();
    assert!((1..=2).contains(&answered), "{codes:?}");
    assert_eq!(answered + refused, 8, "{codes:?}");
    let (_, metrics) = server.http_get("metrics", "/metrics");
    assert!(
        metrics.contains("coredns_forward_max_concurrent_rejects_total"),
        "{metrics}"
    );
}

#[test]
fn the_cache_answers_repeats_and_its_ttls_count_down() {
    let up = Upstream::start();
    up.set(
        "cached.example.",
        Behaviour::Addresses(vec![[192, 0, 2, 7]], 300),
    );
    up.set("gone.example.", Behaviour::NxDomain(3600, 20));
    let server = with_upstreams(&[&up], &[]);
    let first = server.udp("cached.example.", RecordType::A);
    assert_eq!(first.answers[0].ttl, 30);
    std::thread::sleep(Duration::from_millis(1100));
    let second = server.udp("Cached.Example.", RecordType::A);
    assert_eq!(rdata(&second), vec!["192.0.2.7"]);
    assert!(
        second.answers[0].ttl < 30,
        "TTL decays in the cache: {}",
        second.answers[0].ttl
    );
    assert_eq!(
        up.count("cached.example."),
        1,
        "the second answer came from the cache"
    );
    // Denials are cached too, for the SOA's minimum.
    for _ in 0..3 {
        assert_eq!(
            server
                .udp("gone.example.", RecordType::A)
                .metadata
                .response_code,
            ResponseCode::NXDomain
        );
    }
    assert_eq!(up.count("gone.example."), 1);
    let (_, metrics) = server.http_get("metrics", "/metrics");
    assert!(
        metrics.contains("coredns_cache_hits_total{server="),
        "{metrics}"
    );
    assert!(
        metrics.contains("coredns_cache_misses_total{server="),
        "{metrics}"
    );
}

#[test]
fn cache_ttl_zero_turns_the_cache_off() {
    let up = Upstream::start();
    up.set(
        "nocache.example.",
        Behaviour::Addresses(vec![[192, 0, 2, 8]], 300),
    );
    let server = with_upstreams(&[&up], &["--cache-ttl", "0"]);
    for _ in 0..3 {
        assert_eq!(
            rdata(&server.udp("nocache.example.", RecordType::A)),
            vec!["192.0.2.8"]
        );
    }
    assert_eq!(up.count("nocache.example."), 3);
}

#[test]
fn search_path_expansions_never_reach_the_upstream() {
    let up = Upstream::start();
    up.set(
        "example.com.",
        Behaviour::Addresses(vec![[192, 0, 2, 80]], 60),
    );
    let server = with_upstreams(&[&up], &[]);
    // What a pod with ndots:5 in namespace default asks before the real name.
    for expansion in [
        "example.com.default.svc.cluster.local.",
        "example.com.svc.cluster.local.",
        "example.com.cluster.local.",
    ] {
        for qtype in [RecordType::A, RecordType::AAAA] {
            let reply = server.udp(expansion, qtype);
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::NXDomain,
                "{expansion}"
            );
            assert!(reply.metadata.authoritative);
        }
    }
    assert_eq!(
        rdata(&server.udp("example.com.", RecordType::A)),
        vec!["192.0.2.80"]
    );
    let seen: Vec<String> = up.seen().into_iter().map(|s| s.name).collect();
    assert!(
        seen.iter().all(|n| !n.ends_with("cluster.local.")),
        "{seen:?}"
    );
}

#[test]
fn unknown_reverse_names_fall_through_to_the_upstream() {
    let up = Upstream::start();
    let server = with_upstreams(&[&up], &[]);
    // A cluster address: answered here.
    let reply = server.udp("251.19.96.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(rdata(&reply), vec!["myweb-svc.default.svc.cluster.local."]);
    assert!(reply.metadata.authoritative);
    // Any other address: the upstream's answer.
    let reply = server.udp("1.2.0.192.in-addr.arpa.", RecordType::PTR);
    assert!(!reply.metadata.authoritative);
    assert_eq!(up.count("1.2.0.192.in-addr.arpa."), 1);
    assert_eq!(up.count("251.19.96.10.in-addr.arpa."), 0);
}

#[test]
fn a_forwarding_loop_stops_the_server() {
    // Listen on a fixed free port and name that same address as the upstream.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let out = std::process::Command::new(BIN)
        .args(["serve", "--manifests", example_dir().to_str().unwrap()])
        .args(["--listen", &listen, "--upstream", &listen])
        .args([
            "--health-listen",
            "127.0.0.1:0",
            "--ready-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .env_remove("RUST_LOG")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("forwarding loop detected"), "{stderr}");
}

#[test]
fn answers_rotate_between_queries() {
    let server = with_upstreams(&[], &[]);
    let firsts: std::collections::HashSet<String> = (0..6)
        .map(|_| rdata(&server.udp("nginx.default.svc.cluster.local.", RecordType::A))[0].clone())
        .collect();
    assert!(firsts.len() > 1, "the first address changes: {firsts:?}");
}

#[test]
fn external_names_outside_the_cluster_are_resolved_upstream() {
    let up = Upstream::start();
    up.set(
        "db.example.com.",
        Behaviour::Addresses(vec![[192, 0, 2, 44]], 60),
    );
    let server = with_upstreams(&[&up], &[]);
    for reply in [
        server.udp("db.shop.svc.cluster.local.", RecordType::A),
        server.tcp("db.shop.svc.cluster.local.", RecordType::A),
    ] {
        let answers: Vec<String> = reply
            .answers
            .iter()
            .map(|r| format!("{} {}", r.name, r.data))
            .collect();
        assert_eq!(
            answers,
            vec![
                "db.shop.svc.cluster.local. db.example.com.",
                "db.example.com. 192.0.2.44"
            ]
        );
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    }
    // A CNAME question gets only the CNAME.
    assert_eq!(
        server
            .udp("db.shop.svc.cluster.local.", RecordType::CNAME)
            .answers
            .len(),
        1
    );
}

/// Every address in every section of a reply, as text.
fn all_rdata(reply: &hickory_proto::op::Message) -> Vec<String> {
    reply
        .answers
        .iter()
        .chain(&reply.authorities)
        .chain(&reply.additionals)
        .map(|r| format!("{} {}", r.name, r.data))
        .collect()
}

#[test]
fn forged_and_broken_replies_are_dropped_and_the_real_one_taken() {
    let up = Upstream::start();
    let lies = [
        ("wrong-id.example.", Lie::WrongId),
        ("wrong-name.example.", Lie::WrongName),
        ("wrong-type.example.", Lie::WrongType),
        ("wrong-class.example.", Lie::WrongClass),
        ("other-port.example.", Lie::OtherPort),
        ("cut.example.", Lie::Cut),
        ("garbage.example.", Lie::Garbage),
        ("not-response.example.", Lie::NotResponse),
    ];
    for (i, (name, lie)) in lies.iter().enumerate() {
        up.set(
            name,
            Behaviour::LieFirst(
                vec![*lie],
                Box::new(Behaviour::Addresses(vec![[192, 0, 2, i as u8 + 1]], 60)),
            ),
        );
    }
    let all: Vec<Lie> = lies.iter().map(|(_, lie)| *lie).collect();
    up.set(
        "all-lies.example.",
        Behaviour::LieFirst(
            all,
            Box::new(Behaviour::Addresses(vec![[192, 0, 2, 99]], 60)),
        ),
    );
    let server = with_upstreams(&[&up], &[]);
    let names = lies
        .iter()
        .map(|(name, _)| *name)
        .chain(["all-lies.example."]);
    for (i, name) in names.enumerate() {
        let good = if i < lies.len() {
            format!("192.0.2.{}", i + 1)
        } else {
            "192.0.2.99".to_string()
        };
        // The second answer comes from the cache: it must hold the real reply.
        for round in 0..2 {
            let reply = server.udp(name, RecordType::A);
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::NoError,
                "{name} {round}"
            );
            assert_eq!(rdata(&reply), vec![good.clone()], "{name} round {round}");
        }
        assert_eq!(up.count(name), 1, "{name}: the second answer is cached");
    }
}

#[test]
fn forged_replies_on_the_tcp_retry_are_skipped_too() {
    let up = Upstream::start();
    let many: Vec<[u8; 4]> = (1..=100).map(|i| [198, 51, 100, i]).collect();
    up.set(
        "big.example.",
        Behaviour::LieFirst(
            vec![Lie::WrongId, Lie::WrongClass, Lie::Cut, Lie::Garbage],
            Box::new(Behaviour::Addresses(many, 60)),
        ),
    );
    let server = with_upstreams(&[&up], &[]);
    let reply = server.tcp("big.example.", RecordType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(reply.answers.len(), 100);
    assert!(!all_rdata(&reply).iter().any(|r| r.ends_with("6.6.6.6")));
    assert!(
        up.seen().iter().any(|s| s.name == "big.example." && s.tcp),
        "retried over TCP"
    );
}

fn a(name: &str, ip: [u8; 4]) -> Record {
    Record::from_rdata(
        Name::from_ascii(name).unwrap(),
        60,
        RData::A(A::new(ip[0], ip[1], ip[2], ip[3])),
    )
}

fn cname(name: &str, target: &str) -> Record {
    Record::from_rdata(
        Name::from_ascii(name).unwrap(),
        60,
        RData::CNAME(CNAME(Name::from_ascii(target).unwrap())),
    )
}

#[test]
fn records_outside_the_questions_chain_are_dropped() {
    let up = Upstream::start();
    let ns = Record::from_rdata(
        Name::from_ascii("cluster.local.").unwrap(),
        60,
        RData::NS(NS(Name::from_ascii("ns.evil.").unwrap())),
    );
    up.set(
        "www.example.",
        Behaviour::Records(
            vec![
                a("www.example.", [192, 0, 2, 10]),
                a("web-0.nginx.default.svc.cluster.local.", LIE),
                a("evil.example.", LIE),
            ],
            vec![ns],
            vec![a("ns.evil.", LIE)],
        ),
    );
    // A chain of CNAMEs out of order, with a stranger among them.
    up.set(
        "chain.example.",
        Behaviour::Records(
            vec![
                a("target.example.", [192, 0, 2, 50]),
                a("stranger.example.", LIE),
                cname("middle.example.", "target.example."),
                cname("chain.example.", "middle.example."),
            ],
            vec![],
            vec![],
        ),
    );
    // A chain that leads into our zone: we answer those names, not the upstream.
    up.set(
        "alias.example.",
        Behaviour::Records(
            vec![
                cname("alias.example.", "web-0.nginx.default.svc.cluster.local."),
                a("web-0.nginx.default.svc.cluster.local.", LIE),
            ],
            vec![],
            vec![],
        ),
    );
    let server = with_upstreams(&[&up], &[]);
    for round in 0..2 {
        let reply = server.udp("www.example.", RecordType::A);
        assert_eq!(
            all_rdata(&reply),
            vec!["www.example. 192.0.2.10"],
            "round {round}"
        );
        let reply = server.udp("chain.example.", RecordType::A);
        assert_eq!(
            all_rdata(&reply),
            vec![
                "chain.example. middle.example.",
                "middle.example. target.example.",
                "target.example. 192.0.2.50"
            ],
            "round {round}"
        );
        let reply = server.udp("alias.example.", RecordType::A);
        assert_eq!(
            all_rdata(&reply),
            vec!["alias.example. web-0.nginx.default.svc.cluster.local."],
            "round {round}"
        );
    }
    // The second round came from the cache, which held the filtered replies.
    assert_eq!(up.count("www.example."), 1);
    assert_eq!(up.count("chain.example."), 1);
}

#[test]
fn an_external_name_chase_appends_only_the_targets_records() {
    let up = Upstream::start();
    up.set(
        "db.example.com.",
        Behaviour::Records(
            vec![
                a("web-0.nginx.default.svc.cluster.local.", LIE),
                a("db.example.com.", [192, 0, 2, 44]),
                a("other.example.com.", LIE),
            ],
            vec![],
            vec![a("web-0.nginx.default.svc.cluster.local.", LIE)],
        ),
    );
    let server = with_upstreams(&[&up], &[]);
    for reply in [
        server.udp("db.shop.svc.cluster.local.", RecordType::A),
        server.tcp("db.shop.svc.cluster.local.", RecordType::A),
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(
            all_rdata(&reply),
            vec![
                "db.shop.svc.cluster.local. db.example.com.",
                "db.example.com. 192.0.2.44"
            ]
        );
    }
}

#[test]
fn dead_upstreams_are_hedged_not_waited_for_in_turn() {
    // Two black holes listed first: they take the queries and never answer.
    let hole1 = Upstream::start();
    hole1.set_silent(true);
    let hole2 = Upstream::start();
    hole2.set_silent(true);
    let good = Upstream::start();
    for name in ["one.example.", "two.example.", "three.example."] {
        good.set(name, Behaviour::Addresses(vec![[192, 0, 2, 3]], 60));
    }
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("c.toml");
    // 5 s per upstream: asked in turn, the first query would take 10 s.
    // Sequential: the holes are asked first, each time.
    std::fs::write(
        &config,
        "forward_timeout_ms = 5000\nforward_policy = \"sequential\"\n",
    )
    .unwrap();
    let server = with_upstreams(
        &[&hole1, &hole2, &good],
        &["--config", config.to_str().unwrap()],
    );
    for name in ["one.example.", "two.example.", "three.example."] {
        let query = message(name, RecordType::A, Some(1232));
        // One try within the client's own 3 s timeout, no retry.
        let bytes = udp_raw(server.addr, &query.to_vec().unwrap(), IO_TIMEOUT)
            .unwrap_or_else(|| panic!("{name}: no answer within {IO_TIMEOUT:?}"));
        let reply = hickory_proto::op::Message::from_vec(&bytes).unwrap();
        assert_eq!(reply.metadata.id, query.metadata.id);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert_eq!(rdata(&reply), vec!["192.0.2.3"], "{name}");
    }
    assert!(
        hole1.count("one.example.") >= 1,
        "the first listed is asked first"
    );
}

/// CoreDNS `forward`'s `policy sequential`, `except` and `force_tcp`, as flags.
#[test]
fn forward_options_pick_the_upstream_the_transport_and_what_is_never_forwarded() {
    let first = Upstream::start();
    let second = Upstream::start();
    for up in [&first, &second] {
        up.set(
            "www.example.",
            Behaviour::Addresses(vec![[192, 0, 2, 7]], 60),
        );
    }
    let sequential = with_upstreams(
        &[&first, &second],
        &[
            "--forward-policy",
            "sequential",
            "--forward-except",
            "corp.example",
            "--cache-ttl",
            "0",
        ],
    );
    for _ in 0..6 {
        let reply = sequential.udp("www.example.", RecordType::A);
        assert_eq!(rdata(&reply), vec!["192.0.2.7"]);
    }
    assert_eq!(
        first.count("www.example."),
        6,
        "sequential: the first, each time"
    );
    assert_eq!(second.count("www.example."), 0);
    for name in ["corp.example.", "Host.CORP.example."] {
        let reply = sequential.udp(name, RecordType::A);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::ServFail,
            "{name}"
        );
    }
    assert!(
        first
            .seen()
            .iter()
            .chain(&second.seen())
            .all(|s| !s.name.contains("corp")),
        "an except zone is never forwarded"
    );

    let tcp = with_upstreams(
        &[&second],
        &["--forward-force-tcp", "true", "--cache-ttl", "0"],
    );
    let reply = tcp.udp("www.example.", RecordType::A);
    assert_eq!(rdata(&reply), vec!["192.0.2.7"]);
    let asked: Vec<bool> = second
        .seen()
        .iter()
        .filter(|s| s.name == "www.example.")
        .map(|s| s.tcp)
        .collect();
    assert_eq!(asked, [true], "force_tcp: over TCP only");

    // round_robin: each query starts one further along the list.
    let (a, b) = (Upstream::start(), Upstream::start());
    for up in [&a, &b] {
        up.set(
            "www.example.",
            Behaviour::Addresses(vec![[192, 0, 2, 8]], 60),
        );
    }
    let round = with_upstreams(
        &[&a, &b],
        &["--forward-policy", "round_robin", "--cache-ttl", "0"],
    );
    for _ in 0..4 {
        assert_eq!(
            rdata(&round.udp("www.example.", RecordType::A)),
            vec!["192.0.2.8"]
        );
    }
    assert_eq!((a.count("www.example."), b.count("www.example.")), (2, 2));
}

/// Once a query to an upstream fails, the upstream is checked (`. IN NS`,
/// recursion desired) every `health_check` until it answers; more than
/// `max_fails` failed checks in a row and it is down, asked after the others.
#[test]
fn a_failing_upstream_is_health_checked_until_it_answers() {
    let flaky = Upstream::start();
    flaky.set_silent(true);
    let good = Upstream::start();
    for up in [&flaky, &good] {
        up.set(
            "www.example.",
            Behaviour::Addresses(vec![[192, 0, 2, 9]], 60),
        );
    }
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("c.toml");
    std::fs::write(
        &config,
        "forward_timeout_ms = 200\nforward_policy = \"sequential\"\nforward_max_fails = 1\n\
         forward_health_check_ms = 50\n",
    )
    .unwrap();
    let server = with_upstreams(
        &[&flaky, &good],
        &["--config", config.to_str().unwrap(), "--cache-ttl", "0"],
    );
    // Hedged: the good upstream answers while the flaky one is silent.
    assert_eq!(
        rdata(&server.udp("www.example.", RecordType::A)),
        vec!["192.0.2.9"]
    );
    assert!(
        eventually(Duration::from_secs(5), || flaky.count(".") >= 2),
        "health checks of the silent upstream: {:?}",
        flaky.seen()
    );
    assert!(
        server.wait_for_log("trying the others first", Duration::from_secs(5)),
        "{}",
        server.log()
    );
    let check = flaky.seen().into_iter().find(|s| s.name == ".").unwrap();
    assert!(check.recursion_desired && !check.tcp);
    // Down: sequential order now starts with the good one, so the flaky one
    // sees no more queries for names.
    let before = flaky.count("www.example.");
    for _ in 0..3 {
        assert_eq!(
            rdata(&server.udp("www.example.", RecordType::A)),
            vec!["192.0.2.9"]
        );
    }
    assert_eq!(
        flaky.count("www.example."),
        before,
        "a down upstream is asked last"
    );
    // It answers again: the next check brings it back, and the checks stop.
    flaky.set_silent(false);
    assert!(
        server.wait_for_log("upstream answers again", Duration::from_secs(5)),
        "{}",
        server.log()
    );
    let checks = flaky.count(".");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(flaky.count("."), checks, "no checks once it answers");
    let reply = server.udp("www.example.", RecordType::A);
    assert_eq!(rdata(&reply), vec!["192.0.2.9"]);
    assert_eq!(
        flaky.count("www.example."),
        before + 1,
        "first in order again"
    );
}

/// `serve_stale`: once an answer expires, it is still given (TTL 0) while the
/// upstreams are down, at once, or (`verify`) after they failed to answer.
#[test]
fn stale_answers_cover_an_upstream_outage() {
    for verify in ["false", "true"] {
        let up = Upstream::start();
        up.set(
            "www.example.",
            Behaviour::Addresses(vec![[192, 0, 2, 20]], 1),
        );
        let server = with_upstreams(
            &[&up],
            &[
                "--cache-serve-stale",
                "60",
                "--cache-serve-stale-verify",
                verify,
                "--forward-timeout-ms",
                "200",
            ],
        );
        let fresh = server.udp("www.example.", RecordType::A);
        assert_eq!(fresh.answers[0].ttl, 1);
        std::thread::sleep(Duration::from_millis(1200));
        up.set_silent(true);
        for reply in [
            server.udp("www.example.", RecordType::A),
            server.tcp("www.example.", RecordType::A),
        ] {
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::NoError,
                "verify {verify}"
            );
            assert_eq!(rdata(&reply), vec!["192.0.2.20"], "verify {verify}");
            assert_eq!(reply.answers[0].ttl, 0, "stale: TTL 0");
        }
        assert!(
            eventually(Duration::from_secs(3), || up.count("www.example.") >= 2),
            "a fresh answer was asked for (verify {verify})"
        );
        let (_, metrics) = server.http_get("metrics", "/metrics");
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("coredns_cache_served_stale_total{") && !l.ends_with(" 0")),
            "{metrics}"
        );
        // Back up: the next query after a refresh gets a live answer again.
        up.set_silent(false);
        assert!(eventually(Duration::from_secs(3), || {
            server.udp("www.example.", RecordType::A).answers[0].ttl == 1
        }));
    }
}

/// `prefetch`: a popular answer is fetched again before it expires.
#[test]
fn popular_answers_are_prefetched() {
    let up = Upstream::start();
    up.set(
        "www.example.",
        Behaviour::Addresses(vec![[192, 0, 2, 21]], 10),
    );
    let server = with_upstreams(
        &[&up],
        &["--cache-prefetch", "2", "--cache-prefetch-percent", "90"],
    );
    assert_eq!(
        rdata(&server.udp("www.example.", RecordType::A)),
        vec!["192.0.2.21"]
    );
    assert_eq!(up.count("www.example."), 1);
    std::thread::sleep(Duration::from_millis(1100));
    // Two hits in a row with 9 s of 10 left: the second starts a prefetch.
    for _ in 0..2 {
        let reply = server.udp("www.example.", RecordType::A);
        assert_eq!(rdata(&reply), vec!["192.0.2.21"]);
    }
    assert!(
        eventually(Duration::from_secs(3), || up.count("www.example.") == 2),
        "prefetched: {}",
        up.count("www.example.")
    );
    // The prefetched copy is fresh: a full TTL again.
    assert!(eventually(Duration::from_secs(3), || {
        server.udp("www.example.", RecordType::A).answers[0].ttl == 10
    }));
}

/// `tls://` upstreams: queries go over TLS, the certificate checked against
/// `forward_tls_servername` with the CA given; a name it does not carry fails.
#[test]
fn tls_upstreams_are_asked_over_tls_and_checked() {
    let (up, ca_pem) = Upstream::start_tls();
    up.set(
        "www.example.",
        Behaviour::Addresses(vec![[192, 0, 2, 30]], 60),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &ca_pem).unwrap();
    let upstream = format!("tls://{}", up.addr);
    let example = example_dir();
    let manifests = example.to_str().unwrap();
    for name in ["dns.test.example", "127.0.0.1"] {
        let mut args = vec![
            "--manifests",
            manifests,
            "--upstream",
            upstream.as_str(),
            "--forward-tls-ca",
            ca.to_str().unwrap(),
        ];
        if name != "127.0.0.1" {
            args.extend(["--forward-tls-servername", name]);
        }
        let server = Server::start(&args);
        for reply in [
            server.udp("www.example.", RecordType::A),
            server.tcp("www.example.", RecordType::A),
        ] {
            assert_eq!(rdata(&reply), vec!["192.0.2.30"], "checked against {name}");
        }
    }
    assert!(up.seen().iter().all(|s| s.tcp), "all over the TLS listener");
    // A name the certificate does not carry: no answer from this upstream.
    let wrong = Server::start(&[
        "--manifests",
        manifests,
        "--upstream",
        upstream.as_str(),
        "--forward-tls-ca",
        ca.to_str().unwrap(),
        "--forward-tls-servername",
        "other.example",
        "--forward-timeout-ms",
        "500",
    ]);
    let before = up.count("refused.example.");
    let reply = wrong.udp("refused.example.", RecordType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(
        up.count("refused.example."),
        before,
        "no query after a failed handshake"
    );
    // A CA file that is not one stops the start, naming the key.
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let output = run_binary(&[
        "serve",
        "--manifests",
        manifests,
        "--upstream",
        upstream.as_str(),
        "--forward-tls-ca",
        bad.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("upstream") && stderr.contains("bad.pem"),
        "{stderr}"
    );
}

/// `loadbalance` on a forwarded reply (plugin/loadbalance): the records come
/// grouped as CoreDNS groups them (CNAME, others, A/AAAA, MX), from the
/// upstream and from the cache alike, and the addresses turn between answers;
/// without it the upstream's order stands.
#[test]
fn loadbalance_groups_forwarded_records() {
    let up = Upstream::start();
    let owner = Name::from_ascii("mixed.example.").unwrap();
    let record = |rdata: RData| Record::from_rdata(owner.clone(), 300, rdata);
    let mx = hickory_proto::rr::rdata::MX::new(10, Name::from_ascii("mail.example.").unwrap());
    let txt = hickory_proto::rr::rdata::TXT::new(vec!["v=spf1 -all".into()]);
    up.set(
        "mixed.example.",
        Behaviour::Records(
            vec![
                record(RData::MX(mx)),
                record(RData::A(A::new(192, 0, 2, 1))),
                record(RData::TXT(txt)),
                record(RData::A(A::new(192, 0, 2, 2))),
            ],
            vec![],
            vec![],
        ),
    );
    let types = |reply: &hickory_proto::op::Message| -> Vec<RecordType> {
        reply.answers.iter().map(|r| r.record_type()).collect()
    };
    let grouped = [
        RecordType::TXT,
        RecordType::A,
        RecordType::A,
        RecordType::MX,
    ];
    let server = with_upstreams(&[&up], &["--loadbalance", "true"]);
    let mut firsts = std::collections::BTreeSet::new();
    for round in 0..4 {
        let reply = if round % 2 == 0 {
            server.udp("mixed.example.", RecordType::ANY)
        } else {
            server.tcp("mixed.example.", RecordType::ANY)
        };
        assert_eq!(types(&reply), grouped, "round {round}: {reply:?}");
        firsts.insert(rdata(&reply)[1].clone());
    }
    assert_eq!(up.count("mixed.example."), 1, "the rest from the cache");
    assert_eq!(firsts.len(), 2, "the addresses turn: {firsts:?}");

    let plain = with_upstreams(&[&up], &["--loadbalance", "false"]);
    let reply = plain.udp("mixed.example.", RecordType::ANY);
    assert_eq!(
        types(&reply),
        [
            RecordType::MX,
            RecordType::A,
            RecordType::TXT,
            RecordType::A
        ]
    );
}

/// plugin/forward/health_test.go, against the real binary: once a query to an
/// upstream fails, it is checked with `. IN NS`, recursion desired
/// (TestHealth), without it under `no_rec` (TestHealthNoRecursion), for the
/// `domain` given (TestHealthDomain), until it answers (TestHealthTimeout);
/// with `max_fails 0` it is never checked (TestHealthNoMaxFails).
#[test]
fn coredns_health_test_cases() {
    let cases: [(&[&str], &str, bool); 3] = [
        (&[], ".", true),
        (&["--forward-health-check-recursion", "false"], ".", false),
        (
            &["--forward-health-check-domain", "example.org"],
            "example.org.",
            true,
        ),
    ];
    let timing = [
        "--forward-timeout-ms",
        "200",
        "--forward-health-check-ms",
        "50",
        "--cache-ttl",
        "0",
    ];
    for (flags, checked, recursion) in cases {
        let up = Upstream::start();
        up.set_silent(true);
        let mut args = timing.to_vec();
        args.extend_from_slice(flags);
        let server = with_upstreams(&[&up], &args);
        let reply = server.udp("www.example.", RecordType::A);
        assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
        assert!(
            eventually(Duration::from_secs(5), || up.count(checked) >= 1),
            "{flags:?}: {:?}",
            up.seen()
        );
        let check = up.seen().into_iter().find(|s| s.name == checked).unwrap();
        assert_eq!(check.recursion_desired, recursion, "{flags:?}");
        up.set_silent(false);
        // The next check is answered; then no more are sent.
        std::thread::sleep(Duration::from_millis(300));
        let checks = up.count(checked);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            up.count(checked),
            checks,
            "{flags:?}: checks stop once it answers"
        );
    }
    let up = Upstream::start();
    up.set_silent(true);
    let mut args = timing.to_vec();
    args.extend(["--forward-max-fails", "0"]);
    let server = with_upstreams(&[&up], &args);
    let reply = server.udp("www.example.", RecordType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(up.count("."), 0, "max_fails 0: never checked");
}
