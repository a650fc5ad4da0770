//! The server as a client sees it: each record kind and negative answer over UDP
//! and TCP, truncation and TCP retry, case, dual-stack and pod modes.

mod common;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

fn example() -> Server {
    let dir = example_dir();
    Server::start(&["--manifests", dir.to_str().unwrap()])
}

#[test]
fn tutorial_names_answer_over_udp_and_tcp() {
    let server = example();
    for reply in [
        server.udp("nginx.default.svc.cluster.local.", RecordType::A),
        server.tcp("nginx.default.svc.cluster.local.", RecordType::A),
    ] {
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.metadata.authoritative, "AA is set");
        assert_eq!(
            sorted_rdata(&reply),
            vec!["10.244.1.10", "10.244.2.11", "10.244.3.12"]
        );
        assert_eq!(reply.answers[0].ttl, 5, "default TTL is 5 s");
    }
    let reply = server.udp("web-0.nginx.default.svc.cluster.local.", RecordType::A);
    assert_eq!(rdata(&reply), vec!["10.244.1.10"]);
    let reply = server.udp(
        "_web._tcp.nginx.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(
        rdata(&reply),
        vec![
            "0 33 80 web-0.nginx.default.svc.cluster.local.",
            "0 33 80 web-1.nginx.default.svc.cluster.local.",
            "0 33 80 web-2.nginx.default.svc.cluster.local."
        ]
    );
    let glue: Vec<String> = reply
        .additionals
        .iter()
        .map(|r| format!("{} {}", r.name, r.data))
        .collect();
    assert_eq!(
        glue,
        vec![
            "web-0.nginx.default.svc.cluster.local. 10.244.1.10",
            "web-1.nginx.default.svc.cluster.local. 10.244.2.11",
            "web-2.nginx.default.svc.cluster.local. 10.244.3.12"
        ]
    );
    assert!(reply.edns.is_some(), "EDNS queries get an OPT record");
}

#[test]
fn every_record_kind() {
    let server = example();
    let cases: &[(&str, RecordType, &[&str])] = &[
        (
            "myweb-svc.default.svc.cluster.local.",
            RecordType::A,
            &["10.96.19.251"],
        ),
        (
            "myweb-svc.default.svc.cluster.local.",
            RecordType::AAAA,
            &["fd00:10:96::13fb"],
        ),
        (
            "_http._tcp.myweb-svc.default.svc.cluster.local.",
            RecordType::SRV,
            // Dual-stack: CoreDNS splits the weight over both cluster IPs.
            &["0 50 80 myweb-svc.default.svc.cluster.local."],
        ),
        (
            "251.19.96.10.in-addr.arpa.",
            RecordType::PTR,
            &["myweb-svc.default.svc.cluster.local."],
        ),
        (
            "b.f.3.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.",
            RecordType::PTR,
            &["myweb-svc.default.svc.cluster.local."],
        ),
        (
            "10.1.244.10.in-addr.arpa.",
            RecordType::PTR,
            &["web-0.nginx.default.svc.cluster.local."],
        ),
        (
            "db.shop.svc.cluster.local.",
            RecordType::A,
            &["db.example.com."],
        ),
        ("dns-version.cluster.local.", RecordType::TXT, &["1.1.0"]),
        ("cluster.local.", RecordType::NS, &["ns.dns.cluster.local."]),
        (
            "10-244-2-11.default.pod.cluster.local.",
            RecordType::A,
            &["10.244.2.11"],
        ),
        (
            "10-244-1-20.myweb-svc.default.svc.cluster.local.",
            RecordType::A,
            &["10.244.1.20"],
        ),
    ];
    for (name, qtype, want) in cases {
        let reply = server.udp(name, *qtype);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name} {qtype}"
        );
        assert_eq!(rdata(&reply), *want, "{name} {qtype}");
        assert!(reply.metadata.authoritative, "{name} {qtype}");
    }
    let soa = server.udp("cluster.local.", RecordType::SOA);
    let RData::SOA(soa) = &soa.answers[0].data else {
        panic!("SOA expected")
    };
    assert_eq!(soa.mname.to_string(), "ns.dns.cluster.local.");
    assert_eq!(soa.rname.to_string(), "hostmaster.cluster.local.");
    assert!(
        soa.serial > 1_700_000_000,
        "serial is the Unix time of the last change"
    );
    let txt = server.udp("dns-version.cluster.local.", RecordType::TXT);
    assert_eq!(txt.answers[0].ttl, 28800);
}

#[test]
fn negative_answers_carry_the_soa() {
    let server = example();
    for (name, qtype, rcode) in [
        (
            "nope.default.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "web-7.nginx.default.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "nginx.nowhere.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "nginx.default.svc.cluster.local.",
            RecordType::AAAA,
            ResponseCode::NoError,
        ),
        (
            "default.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NoError,
        ),
        (
            "shop.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NoError,
        ),
        ("svc.cluster.local.", RecordType::A, ResponseCode::NoError),
        (
            "myweb-svc.default.svc.cluster.local.",
            RecordType::TXT,
            ResponseCode::NoError,
        ),
    ] {
        for reply in [server.udp(name, qtype), server.tcp(name, qtype)] {
            assert_eq!(reply.metadata.response_code, rcode, "{name} {qtype}");
            assert!(reply.answers.is_empty(), "{name} {qtype}");
            assert!(reply.metadata.authoritative, "{name} {qtype}");
            assert_eq!(reply.authorities.len(), 1, "{name} {qtype}");
            assert_eq!(
                reply.authorities[0].record_type(),
                RecordType::SOA,
                "{name} {qtype}"
            );
        }
    }
    // Outside the zones: forwarded, and the (dead) upstream makes it SERVFAIL.
    let forwarded = server.udp("example.com.", RecordType::A);
    assert_eq!(forwarded.metadata.response_code, ResponseCode::ServFail);
    assert!(!forwarded.metadata.authoritative);
    assert!(forwarded.metadata.recursion_available);
}

#[test]
fn case_is_ignored_and_kept() {
    let server = example();
    let reply = server.udp("WEB-1.Nginx.Default.SVC.Cluster.Local.", RecordType::A);
    assert_eq!(rdata(&reply), vec!["10.244.2.11"]);
    assert_eq!(
        reply.answers[0].name.to_string(),
        "WEB-1.Nginx.Default.SVC.Cluster.Local."
    );
    assert_eq!(
        reply.queries[0].name().to_string(),
        "WEB-1.Nginx.Default.SVC.Cluster.Local."
    );
}

/// A headless service with `count` ready pods over two slices, v4 and v6.
fn big_headless(count: usize) -> String {
    let mut yaml = String::from(
        "apiVersion: v1\nkind: Service\nmetadata: {name: big, namespace: default}\n\
         spec: {clusterIP: None, ports: [{name: web, port: 80}]}\n",
    );
    for (slice, family) in [("big-v4", "IPv4"), ("big-v6", "IPv6")] {
        yaml.push_str(&format!(
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
             metadata: {{name: {slice}, namespace: default, labels: {{kubernetes.io/service-name: big}}}}\n\
             addressType: {family}\nports: [{{name: web, port: 8080, protocol: TCP}}]\nendpoints:\n"
        ));
        for i in 0..count {
            let addr = if family == "IPv4" {
                format!("10.250.{}.{}", i / 200, i % 200 + 1)
            } else {
                format!("fd00:250::{:x}", i + 1)
            };
            yaml.push_str(&format!("- addresses: [\"{addr}\"]\n  hostname: big-{i}\n"));
        }
    }
    yaml
}

#[test]
fn large_answers_truncate_over_udp_and_complete_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "big.yaml", &big_headless(100));
    let server = Server::start(&["--manifests", dir.path().to_str().unwrap()]);
    let name = "big.default.svc.cluster.local.";

    // No EDNS: at most 512 bytes, TC set.
    let raw = query_udp_raw(server.addr, &message(name, RecordType::A, None));
    assert!(raw.len() <= 512, "{} bytes", raw.len());
    let reply = hickory_proto::op::Message::from_vec(&raw).unwrap();
    assert!(reply.metadata.truncation, "TC is set");
    assert!(reply.edns.is_none(), "no OPT to a query without one");

    // EDNS offering 4096: capped at 1232, TC set.
    let raw = query_udp_raw(server.addr, &message(name, RecordType::A, Some(4096)));
    assert!(raw.len() <= 1232, "{} bytes", raw.len());
    let reply = hickory_proto::op::Message::from_vec(&raw).unwrap();
    assert!(reply.metadata.truncation);
    assert_eq!(reply.edns.as_ref().map(|e| e.max_payload()), Some(1232));

    // TCP: everything.
    let reply = server.tcp(name, RecordType::A);
    assert!(!reply.metadata.truncation);
    assert_eq!(reply.answers.len(), 100);
    let reply = server.tcp(name, RecordType::AAAA);
    assert_eq!(reply.answers.len(), 100);
    let reply = server.tcp("_web._tcp.big.default.svc.cluster.local.", RecordType::SRV);
    assert_eq!(
        reply.answers.len(),
        100,
        "one SRV per endpoint name, both families merged"
    );
    assert_eq!(reply.additionals.len(), 200);
}

#[test]
fn tcp_connections_carry_several_queries() {
    let server = example();
    let mut stream = tcp_connect(server.addr);
    let first = message("nginx.default.svc.cluster.local.", RecordType::A, None);
    let second = message(
        "myweb-svc.default.svc.cluster.local.",
        RecordType::AAAA,
        None,
    );
    tcp_send(&mut stream, &first);
    tcp_send(&mut stream, &second);
    let mut replies = [tcp_receive(&mut stream), tcp_receive(&mut stream)];
    replies.sort_by_key(|r| r.answers.len());
    assert_eq!(rdata(&replies[0]), vec!["fd00:10:96::13fb"]);
    assert_eq!(replies[1].answers.len(), 3);
}

#[test]
fn pod_modes() {
    let dir = example_dir();
    let dir = dir.to_str().unwrap();
    let known = "10-244-1-10.default.pod.cluster.local.";
    let unknown = "10-9-9-9.default.pod.cluster.local.";

    let insecure = Server::start(&["--manifests", dir, "--pods", "insecure"]);
    assert_eq!(
        rdata(&insecure.udp(unknown, RecordType::A)),
        vec!["10.9.9.9"]
    );
    drop(insecure);

    let verified = Server::start(&["--manifests", dir, "--pods", "verified"]);
    assert_eq!(
        rdata(&verified.udp(known, RecordType::A)),
        vec!["10.244.1.10"]
    );
    assert_eq!(
        verified.udp(unknown, RecordType::A).metadata.response_code,
        ResponseCode::NXDomain
    );
    drop(verified);

    let disabled = Server::start(&["--manifests", dir, "--pods", "disabled"]);
    assert_eq!(
        disabled.udp(known, RecordType::A).metadata.response_code,
        ResponseCode::NXDomain
    );
}

#[test]
fn ttl_and_zone_flags() {
    let dir = example_dir();
    let server = Server::start(&[
        "--manifests",
        dir.to_str().unwrap(),
        "--ttl",
        "30",
        "--zone",
        "k8s.example",
    ]);
    let reply = server.udp("myweb-svc.default.svc.k8s.example.", RecordType::A);
    assert_eq!(rdata(&reply), vec!["10.96.19.251"]);
    assert_eq!(reply.answers[0].ttl, 30);
    let reply = server.udp("myweb-svc.default.svc.cluster.local.", RecordType::A);
    assert!(
        !reply.metadata.authoritative,
        "no longer our zone: forwarded"
    );
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut server = example();
    assert_eq!(
        server
            .udp("nginx.default.svc.cluster.local.", RecordType::A)
            .answers
            .len(),
        3
    );
    let status = server.terminate().expect("exits within 10 s of SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(server.log().contains("shutting down"));
}

#[test]
fn external_names_and_empty_headless_services_over_the_wire() {
    let server = example();
    let reply = server.udp("frontend.shop.svc.cluster.local.", RecordType::A);
    let answers: Vec<String> = reply
        .answers
        .iter()
        .map(|r| format!("{} {}", r.name, r.data))
        .collect();
    assert_eq!(
        answers,
        vec![
            "frontend.shop.svc.cluster.local. myweb-svc.default.svc.cluster.local.",
            "myweb-svc.default.svc.cluster.local. 10.96.19.251"
        ]
    );
    assert!(reply.metadata.authoritative);

    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "idle.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: idle}\nspec: {clusterIP: None}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {name: idle-1, labels: {kubernetes.io/service-name: idle}}\naddressType: IPv4\n\
         endpoints: [{addresses: [10.9.0.1], conditions: {ready: false}}]\n",
    );
    let server = Server::start(&["--manifests", dir.path().to_str().unwrap()]);
    let reply = server.udp("idle.default.svc.cluster.local.", RecordType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(reply.authorities[0].record_type(), RecordType::SOA);
}
