//! The record rules, row by row (S = specification 1.1.0, C = CoreDNS behaviour).

use super::*;
use crate::cluster::{EndpointInfo, EndpointSliceInfo, PodInfo, PortInfo, ServiceInfo};
use crate::index::IndexWriter;

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn port(name: Option<&str>, proto: &str, number: u16) -> PortInfo {
    PortInfo {
        name: name.map(Into::into),
        protocol: proto.into(),
        port: number,
    }
}

pub(super) fn service(
    ns: &str,
    name: &str,
    kind: ServiceKind,
    ports: Vec<PortInfo>,
) -> ServiceInfo {
    ServiceInfo {
        namespace: ns.into(),
        name: name.into(),
        kind,
        ports,
        external: Vec::new(),
    }
}

pub(super) fn slice(
    ns: &str,
    name: &str,
    svc: &str,
    eps: &[(&str, Option<&str>)],
    ports: Vec<PortInfo>,
) -> EndpointSliceInfo {
    EndpointSliceInfo {
        namespace: ns.into(),
        name: name.into(),
        service: Some(svc.into()),
        endpoints: eps
            .iter()
            .map(|(addr, host)| EndpointInfo {
                hostname: host.map(Into::into),
                ip: ip(addr),
                pod: None,
            })
            .collect(),
        ports: ports.into(),
    }
}

/// The tutorial cluster plus the odd cases.
fn cluster() -> Snapshot {
    let mut w = IndexWriter::new();
    w.upsert_namespace("empty".into());
    // A dual-stack ClusterIP service with a named, an unnamed and a UDP port.
    w.upsert_service(service(
        "default",
        "myweb",
        ServiceKind::ClusterIp(vec![ip("10.96.0.20"), ip("fd00::20")]),
        vec![
            port(Some("http"), "tcp", 80),
            port(None, "tcp", 9090),
            port(Some("dns"), "udp", 53),
        ],
    ));
    w.upsert_slice(slice(
        "default",
        "myweb-1",
        "myweb",
        &[("10.244.1.20", None)],
        vec![port(Some("http"), "tcp", 8080)],
    ));
    // The StatefulSet's headless service, its pods in two slices and two families.
    w.upsert_service(service(
        "default",
        "nginx",
        ServiceKind::Headless,
        vec![port(Some("web"), "tcp", 80)],
    ));
    w.upsert_slice(slice(
        "default",
        "nginx-v4",
        "nginx",
        &[
            ("10.244.1.10", Some("web-0")),
            ("10.244.2.11", Some("web-1")),
            ("10.244.3.12", None),
        ],
        vec![
            port(Some("web"), "tcp", 8080),
            port(Some("metrics"), "tcp", 9113),
        ],
    ));
    w.upsert_slice(slice(
        "default",
        "nginx-v6",
        "nginx",
        &[("fd00::10", Some("web-0")), ("fd00:1::", None)],
        vec![
            port(Some("web"), "tcp", 8080),
            port(Some("metrics"), "tcp", 9113),
        ],
    ));
    // A headless service with no ready endpoint, and an empty ClusterIP service.
    w.upsert_service(service("default", "idle", ServiceKind::Headless, vec![]));
    w.upsert_service(service(
        "default",
        "lonely",
        ServiceKind::ClusterIp(vec![ip("10.96.0.30")]),
        vec![],
    ));
    // ExternalName services: out of zone, into the zone, IP-valued, and a loop.
    w.upsert_service(service(
        "shop",
        "db",
        ServiceKind::ExternalName(Some("db.example.com".into())),
        vec![],
    ));
    w.upsert_service(service(
        "shop",
        "web",
        ServiceKind::ExternalName(Some("myweb.default.svc.cluster.local".into())),
        vec![],
    ));
    w.upsert_service(service(
        "shop",
        "gone",
        ServiceKind::ExternalName(Some("missing.default.svc.cluster.local".into())),
        vec![],
    ));
    w.upsert_service(service(
        "shop",
        "byip",
        ServiceKind::ExternalName(None),
        vec![],
    ));
    w.upsert_service(service(
        "shop",
        "loop",
        ServiceKind::ExternalName(Some("loop.shop.svc.cluster.local".into())),
        vec![],
    ));
    // An endpoint address shared by a headless service in another namespace.
    w.upsert_service(service("other", "peer", ServiceKind::Headless, vec![]));
    w.upsert_slice(slice(
        "other",
        "peer-1",
        "peer",
        &[("10.244.1.10", Some("web-0"))],
        vec![],
    ));
    w.upsert_pod(PodInfo {
        namespace: "default".into(),
        name: "web-0".into(),
        ips: vec![ip("10.244.1.10"), ip("fd00::10")],
    });
    w.snapshot()
}

fn config() -> ZoneConfig {
    let mut c = ZoneConfig::new(
        &[
            Name::from_ascii("cluster.local.").unwrap(),
            Name::from_ascii("example.internal.").unwrap(),
        ],
        5,
        PodsMode::Insecure,
    );
    c.ns_ips = vec![ip("10.96.0.10")];
    c
}

fn ask_with(config: &ZoneConfig, name: &str, qtype: RecordType) -> Answer {
    answer(config, &cluster(), &Name::from_ascii(name).unwrap(), qtype)
}

fn ask(name: &str, qtype: RecordType) -> Answer {
    ask_with(&config(), name, qtype)
}

fn lines(records: &[Record]) -> Vec<String> {
    records.iter().map(ToString::to_string).collect()
}

fn rdatas(answer: &Answer) -> Vec<String> {
    answer.answers.iter().map(|r| r.data.to_string()).collect()
}

#[track_caller]
fn assert_nxdomain(answer: &Answer) {
    assert_eq!(answer.rcode, ResponseCode::NXDomain, "{answer:?}");
    assert!(answer.authoritative);
    assert!(answer.answers.is_empty());
    assert_eq!(answer.authority.len(), 1);
    assert_eq!(answer.authority[0].record_type(), RecordType::SOA);
}

#[track_caller]
fn assert_nodata(answer: &Answer) {
    assert_eq!(answer.rcode, ResponseCode::NoError, "{answer:?}");
    assert!(answer.authoritative);
    assert!(answer.answers.is_empty(), "{answer:?}");
    assert_eq!(answer.authority.len(), 1);
    assert_eq!(answer.authority[0].record_type(), RecordType::SOA);
}

#[test]
fn s5_dns_version_txt() {
    let a = ask("dns-version.cluster.local.", RecordType::TXT);
    assert_eq!(
        lines(&a.answers),
        vec!["dns-version.cluster.local. 28800 IN TXT 1.1.0"]
    );
    assert!(a.authoritative);
    assert_nodata(&ask("dns-version.cluster.local.", RecordType::A));
}

#[test]
fn s6_s7_cluster_ip_a_and_aaaa() {
    let a = ask("myweb.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        lines(&a.answers),
        vec!["myweb.default.svc.cluster.local. 5 IN A 10.96.0.20"]
    );
    assert!(a.authority.is_empty());
    let a = ask("myweb.default.svc.cluster.local.", RecordType::AAAA);
    assert_eq!(rdatas(&a), vec!["fd00::20"]);
    assert_nodata(&ask("lonely.default.svc.cluster.local.", RecordType::AAAA));
}

#[test]
fn s8_cluster_ip_srv_for_named_ports() {
    let a = ask(
        "_http._tcp.myweb.default.svc.cluster.local.",
        RecordType::SRV,
    );
    // Weight 50: myweb has two cluster IPs, and CoreDNS splits the weight
    // over (address, port) entries before the duplicate targets collapse
    // (plugin/kubernetes/handler_test.go, svc-dual-stack SRV).
    assert_eq!(rdatas(&a), vec!["0 50 80 myweb.default.svc.cluster.local."]);
    assert_eq!(
        lines(&a.additionals),
        vec![
            "myweb.default.svc.cluster.local. 5 IN A 10.96.0.20",
            "myweb.default.svc.cluster.local. 5 IN AAAA fd00::20"
        ]
    );
    let a = ask(
        "_dns._udp.myweb.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(rdatas(&a), vec!["0 50 53 myweb.default.svc.cluster.local."]);
    // Wrong protocol, unknown port name: the name does not exist.
    assert_nxdomain(&ask(
        "_http._udp.myweb.default.svc.cluster.local.",
        RecordType::SRV,
    ));
    assert_nxdomain(&ask(
        "_grpc._tcp.myweb.default.svc.cluster.local.",
        RecordType::SRV,
    ));
    // The name exists, the type does not.
    assert_nodata(&ask(
        "_http._tcp.myweb.default.svc.cluster.local.",
        RecordType::A,
    ));
    // `_tcp.<svc>` is an empty non-terminal above `_http._tcp.<svc>`.
    assert_nodata(&ask(
        "_tcp.myweb.default.svc.cluster.local.",
        RecordType::SRV,
    ));
    assert_nxdomain(&ask(
        "_sctp.myweb.default.svc.cluster.local.",
        RecordType::SRV,
    ));
}

#[test]
fn s9_cluster_ip_ptr_v4_and_v6() {
    let a = ask("20.0.96.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(rdatas(&a), vec!["myweb.default.svc.cluster.local."]);
    assert!(a.authoritative);
    let v6 = "0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";
    assert_eq!(
        rdatas(&ask(v6, RecordType::PTR)),
        vec!["myweb.default.svc.cluster.local."]
    );
}

#[test]
fn s10_headless_answers_every_ready_address() {
    let a = ask("nginx.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        rdatas(&a),
        vec!["10.244.1.10", "10.244.2.11", "10.244.3.12"]
    );
    let a = ask("nginx.default.svc.cluster.local.", RecordType::AAAA);
    assert_eq!(rdatas(&a), vec!["fd00::10", "fd00:1::"]);
}

#[test]
fn s11_headless_without_ready_endpoints_is_nxdomain() {
    assert_nxdomain(&ask("idle.default.svc.cluster.local.", RecordType::A));
    assert_nxdomain(&ask("idle.default.svc.cluster.local.", RecordType::SRV));
}

#[test]
fn s12_endpoint_names_use_hostname_or_dashed_ip() {
    let a = ask("web-0.nginx.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        lines(&a.answers),
        vec!["web-0.nginx.default.svc.cluster.local. 5 IN A 10.244.1.10"]
    );
    let a = ask("web-0.nginx.default.svc.cluster.local.", RecordType::AAAA);
    assert_eq!(rdatas(&a), vec!["fd00::10"]);
    assert_eq!(
        rdatas(&ask(
            "10-244-3-12.nginx.default.svc.cluster.local.",
            RecordType::A
        )),
        vec!["10.244.3.12"]
    );
    assert_eq!(
        rdatas(&ask(
            "fd00-1--0.nginx.default.svc.cluster.local.",
            RecordType::AAAA
        )),
        vec!["fd00:1::"]
    );
    assert_nodata(&ask(
        "web-1.nginx.default.svc.cluster.local.",
        RecordType::AAAA,
    ));
    assert_nxdomain(&ask(
        "web-9.nginx.default.svc.cluster.local.",
        RecordType::A,
    ));
}

#[test]
fn s13_c33_headless_srv_is_endpoints_times_ports_with_the_slice_port() {
    let a = ask(
        "_web._tcp.nginx.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(
        rdatas(&a),
        vec![
            "0 20 8080 web-0.nginx.default.svc.cluster.local.",
            "0 20 8080 web-1.nginx.default.svc.cluster.local.",
            "0 20 8080 10-244-3-12.nginx.default.svc.cluster.local.",
            "0 20 8080 fd00-1--0.nginx.default.svc.cluster.local.",
        ],
        "web-0 has two addresses but is one target (weight 100/5: CoreDNS counts both)"
    );
    // The additional section carries every address of every target.
    assert!(
        lines(&a.additionals)
            .contains(&"web-0.nginx.default.svc.cluster.local. 5 IN AAAA fd00::10".to_string())
    );
    assert_eq!(a.additionals.len(), 5);
    // Three labels in front of the service are too many (C28), even port-shaped ones.
    assert_nxdomain(&ask(
        "_metrics._tcp.web-1.nginx.default.svc.cluster.local.",
        RecordType::SRV,
    ));
}

#[test]
fn s14_headless_ptr_and_c36_one_per_service() {
    let a = ask("12.3.244.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(
        rdatas(&a),
        vec!["10-244-3-12.nginx.default.svc.cluster.local."]
    );
    let a = ask("10.1.244.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(
        rdatas(&a),
        vec![
            "web-0.nginx.default.svc.cluster.local.",
            "web-0.peer.other.svc.cluster.local."
        ]
    );
    assert_nodata(&ask("10.1.244.10.in-addr.arpa.", RecordType::A));
    assert_nxdomain(&ask("99.1.244.10.in-addr.arpa.", RecordType::PTR));
    assert!(
        ask("99.1.244.10.in-addr.arpa.", RecordType::PTR).fallthrough,
        "the upstream may know it"
    );
    assert!(!ask("nope.default.svc.cluster.local.", RecordType::A).fallthrough);
    assert_nxdomain(&ask("1.244.10.in-addr.arpa.", RecordType::PTR));
    assert_nxdomain(&ask("x.1.244.10.in-addr.arpa.", RecordType::PTR));
}

#[test]
fn s15_c35_external_name_is_a_cname() {
    let a = ask("db.shop.svc.cluster.local.", RecordType::A);
    assert_eq!(
        lines(&a.answers),
        vec!["db.shop.svc.cluster.local. 5 IN CNAME db.example.com."]
    );
    assert_eq!(a.rcode, ResponseCode::NoError);
    assert!(a.authoritative);
    // An in-zone target is chased.
    let a = ask("web.shop.svc.cluster.local.", RecordType::A);
    assert_eq!(
        lines(&a.answers),
        vec![
            "web.shop.svc.cluster.local. 5 IN CNAME myweb.default.svc.cluster.local.",
            "myweb.default.svc.cluster.local. 5 IN A 10.96.0.20"
        ]
    );
    // CNAME questions get only the CNAME.
    assert_eq!(
        ask("web.shop.svc.cluster.local.", RecordType::CNAME)
            .answers
            .len(),
        1
    );
    // A chased target that does not exist: NXDOMAIN with the CNAME (RFC 6604).
    let a = ask("gone.shop.svc.cluster.local.", RecordType::A);
    assert_eq!(a.rcode, ResponseCode::NXDomain);
    assert_eq!(a.answers.len(), 1);
    // Names below an ExternalName do not exist; an IP-valued one serves nothing.
    assert_nxdomain(&ask("x.db.shop.svc.cluster.local.", RecordType::A));
    assert_nxdomain(&ask(
        "_http._tcp.db.shop.svc.cluster.local.",
        RecordType::SRV,
    ));
    assert_nodata(&ask("byip.shop.svc.cluster.local.", RecordType::A));
    // A loop ends in SERVFAIL, not a hang.
    assert_eq!(
        ask("loop.shop.svc.cluster.local.", RecordType::A).rcode,
        ResponseCode::ServFail
    );
}

#[test]
fn c8_c9_c10_pod_modes() {
    let name = "10-244-1-10.default.pod.cluster.local.";
    let mut c = config();
    assert_eq!(
        rdatas(&ask_with(&c, name, RecordType::A)),
        vec!["10.244.1.10"]
    );
    // Insecure answers any address in an existing namespace.
    assert_eq!(
        rdatas(&ask_with(
            &c,
            "10-9-9-9.default.pod.cluster.local.",
            RecordType::A
        )),
        vec!["10.9.9.9"]
    );
    assert_eq!(
        rdatas(&ask_with(
            &c,
            "fd00--10.default.pod.cluster.local.",
            RecordType::AAAA
        )),
        vec!["fd00::10"]
    );
    assert_nodata(&ask_with(&c, name, RecordType::AAAA));
    assert_nxdomain(&ask_with(
        &c,
        "10-9-9-9.nowhere.pod.cluster.local.",
        RecordType::A,
    ));
    assert_nxdomain(&ask_with(
        &c,
        "not-an-ip.default.pod.cluster.local.",
        RecordType::A,
    ));
    assert_nodata(&ask_with(&c, "default.pod.cluster.local.", RecordType::A));

    c.pods = PodsMode::Verified;
    assert_eq!(
        rdatas(&ask_with(&c, name, RecordType::A)),
        vec!["10.244.1.10"]
    );
    assert_eq!(
        rdatas(&ask_with(
            &c,
            "fd00--10.default.pod.cluster.local.",
            RecordType::AAAA
        )),
        vec!["fd00::10"]
    );
    assert_nxdomain(&ask_with(
        &c,
        "10-9-9-9.default.pod.cluster.local.",
        RecordType::A,
    ));
    assert_nxdomain(&ask_with(
        &c,
        "10-244-1-10.other.pod.cluster.local.",
        RecordType::A,
    ));

    c.pods = PodsMode::Disabled;
    assert_nxdomain(&ask_with(&c, name, RecordType::A));
    assert_nxdomain(&ask_with(&c, "default.pod.cluster.local.", RecordType::A));
    assert_nodata(&ask_with(&c, "pod.cluster.local.", RecordType::A));
}

#[test]
fn c13_ttl_and_soa_timers() {
    let mut c = config();
    c.ttl = 600;
    let a = ask_with(&c, "myweb.default.svc.cluster.local.", RecordType::A);
    assert_eq!(a.answers[0].ttl, 600);
    let soa = &ask_with(&c, "nope.default.svc.cluster.local.", RecordType::A).authority[0];
    assert_eq!(soa.ttl, 300, "SOA TTL is min(ttl, 300)");
    let RData::SOA(data) = &soa.data else {
        panic!("not a SOA")
    };
    assert_eq!(data.minimum, 600);
    assert_eq!((data.refresh, data.retry, data.expire), (7200, 1800, 86400));
    assert_eq!(
        ask_with(&c, "dns-version.cluster.local.", RecordType::TXT).answers[0].ttl,
        28800
    );
}

#[test]
fn c16_ignore_empty_service() {
    assert_eq!(
        rdatas(&ask("lonely.default.svc.cluster.local.", RecordType::A)),
        vec!["10.96.0.30"]
    );
    let mut c = config();
    c.ignore_empty_service = true;
    assert_nxdomain(&ask_with(
        &c,
        "lonely.default.svc.cluster.local.",
        RecordType::A,
    ));
    assert_eq!(
        rdatas(&ask_with(
            &c,
            "myweb.default.svc.cluster.local.",
            RecordType::A
        )),
        vec!["10.96.0.20"]
    );
}

#[test]
fn c25_c26_apex_soa_and_ns() {
    let a = ask("cluster.local.", RecordType::SOA);
    assert_eq!(
        lines(&a.answers),
        vec![format!(
            "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. {} 7200 1800 86400 5",
            cluster().serial
        )]
    );
    let a = ask("cluster.local.", RecordType::NS);
    assert_eq!(
        lines(&a.answers),
        vec!["cluster.local. 5 IN NS ns.dns.cluster.local."]
    );
    assert_eq!(
        lines(&a.additionals),
        vec!["ns.dns.cluster.local. 5 IN A 10.96.0.10"]
    );
    assert_eq!(
        rdatas(&ask("ns.dns.cluster.local.", RecordType::A)),
        vec!["10.96.0.10"]
    );
    assert_nodata(&ask("ns.dns.cluster.local.", RecordType::AAAA));
    assert_nodata(&ask("dns.cluster.local.", RecordType::A));
    assert_nodata(&ask("cluster.local.", RecordType::A));
    // The reverse zones name a server that resolves: the primary zone's.
    assert_eq!(
        rdatas(&ask("in-addr.arpa.", RecordType::SOA)),
        vec![format!(
            "ns.dns.cluster.local. hostmaster.in-addr.arpa. {} 7200 1800 86400 5",
            cluster().serial
        )]
    );
    let a = ask("ip6.arpa.", RecordType::NS);
    assert_eq!(rdatas(&a), vec!["ns.dns.cluster.local."]);
    assert_eq!(
        lines(&a.additionals),
        vec!["ns.dns.cluster.local. 5 IN A 10.96.0.10"]
    );
}

#[test]
fn c27_c28_nxdomain_and_nodata_shapes() {
    assert_nodata(&ask("svc.cluster.local.", RecordType::A));
    assert_nodata(&ask("pod.cluster.local.", RecordType::A));
    assert_nodata(&ask("default.svc.cluster.local.", RecordType::A));
    assert_nodata(&ask("empty.svc.cluster.local.", RecordType::A));
    assert_nodata(&ask("myweb.default.svc.cluster.local.", RecordType::MX));
    assert_nxdomain(&ask("nowhere.svc.cluster.local.", RecordType::A));
    assert_nxdomain(&ask("nope.default.svc.cluster.local.", RecordType::A));
    assert_nxdomain(&ask("nope.empty.svc.cluster.local.", RecordType::A));
    assert_nxdomain(&ask("myweb.default.other.cluster.local.", RecordType::A));
    assert_nxdomain(&ask(
        "a.b.c.d.myweb.default.svc.cluster.local.",
        RecordType::A,
    ));
    assert_nxdomain(&ask("x.dns.cluster.local.", RecordType::A));
    // The SOA in the authority section is the zone's.
    let a = ask("nope.default.svc.cluster.local.", RecordType::A);
    assert_eq!(a.authority[0].name.to_string(), "cluster.local.");
}

#[test]
fn c29_wildcards_are_literal() {
    assert_nxdomain(&ask("*.default.svc.cluster.local.", RecordType::A));
    assert_nxdomain(&ask("any.default.svc.cluster.local.", RecordType::A));
    assert_nxdomain(&ask("myweb.*.svc.cluster.local.", RecordType::A));
    assert_nxdomain(&ask("*.cluster.local.", RecordType::SOA));
    assert_nxdomain(&ask("*.svc.cluster.local.", RecordType::A));
    assert_nxdomain(&ask("*.in-addr.arpa.", RecordType::SOA));
}

#[test]
fn s2_c30_case_insensitive_and_spelling_kept() {
    let a = ask("MyWeb.DEFAULT.svc.Cluster.Local.", RecordType::A);
    assert_eq!(
        lines(&a.answers),
        vec!["MyWeb.DEFAULT.svc.Cluster.Local. 5 IN A 10.96.0.20"]
    );
    let a = ask("WEB-0.Nginx.default.SVC.cluster.local.", RecordType::A);
    assert_eq!(rdatas(&a), vec!["10.244.1.10"]);
    let a = ask("Nope.default.svc.CLUSTER.local.", RecordType::A);
    assert_eq!(a.authority[0].name.to_string(), "CLUSTER.local.");
    assert_eq!(
        rdatas(&ask(
            "_HTTP._TCP.myweb.default.svc.cluster.local.",
            RecordType::SRV
        ))
        .len(),
        1
    );
}

#[test]
fn c32_c38_plain_srv_lists_every_port_once() {
    let a = ask("myweb.default.svc.cluster.local.", RecordType::SRV);
    assert_eq!(
        rdatas(&a),
        vec![
            "0 16 80 myweb.default.svc.cluster.local.",
            "0 16 9090 myweb.default.svc.cluster.local.",
            "0 16 53 myweb.default.svc.cluster.local."
        ]
    );
    // Additionals: the target's two addresses once, not per port.
    assert_eq!(a.additionals.len(), 2);
    let a = ask("web-0.nginx.default.svc.cluster.local.", RecordType::SRV);
    assert_eq!(
        rdatas(&a),
        vec![
            "0 25 8080 web-0.nginx.default.svc.cluster.local.",
            "0 25 9113 web-0.nginx.default.svc.cluster.local."
        ]
    );
}

#[test]
fn c34_endpoint_names_under_cluster_ip_services() {
    let a = ask(
        "10-244-1-20.myweb.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_eq!(rdatas(&a), vec!["10.244.1.20"]);
    let a = ask("21.1.244.10.in-addr.arpa.", RecordType::PTR);
    assert_nxdomain(&a);
    let a = ask("20.1.244.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(
        rdatas(&a),
        vec!["10-244-1-20.myweb.default.svc.cluster.local."]
    );
}

#[test]
fn other_zones_are_refused_and_every_cluster_zone_answers() {
    let a = ask("example.com.", RecordType::A);
    assert_eq!(a.rcode, ResponseCode::Refused);
    assert!(!a.authoritative);
    assert!(a.authority.is_empty());
    assert_eq!(
        rdatas(&ask("myweb.default.svc.example.internal.", RecordType::A)),
        vec!["10.96.0.20"]
    );
    // PTR targets use the primary zone.
    assert_eq!(
        rdatas(&ask("20.0.96.10.in-addr.arpa.", RecordType::PTR)),
        vec!["myweb.default.svc.cluster.local."]
    );
}

#[test]
fn c19_before_sync_denials_are_servfail_and_positive_answers_stand() {
    let mut w = IndexWriter::awaiting([crate::cluster::Kind::Service]);
    w.upsert_service(service(
        "default",
        "early",
        ServiceKind::ClusterIp(vec![ip("10.96.0.40")]),
        vec![],
    ));
    let snap = w.snapshot();
    assert!(!snap.synced);
    let c = config();
    let ask = |name: &str| answer(&c, &snap, &Name::from_ascii(name).unwrap(), RecordType::A);
    assert_eq!(
        rdatas(&ask("early.default.svc.cluster.local.")),
        vec!["10.96.0.40"]
    );
    assert_eq!(
        ask("late.default.svc.cluster.local.").rcode,
        ResponseCode::ServFail
    );
    assert_nodata(&ask("default.svc.cluster.local."));
    assert_eq!(ask("example.com.").rcode, ResponseCode::Refused);
    w.finish_relist(crate::cluster::Kind::Service);
    let snap = w.snapshot();
    assert!(snap.synced);
    let a = answer(
        &c,
        &snap,
        &Name::from_ascii("late.default.svc.cluster.local.").unwrap(),
        RecordType::A,
    );
    assert_nxdomain(&a);
}

/// CoreDNS `kubernetes { fallthrough [ZONES] }`: a missing cluster name under a
/// listed zone (the root: every name) is marked for the next plugin, before
/// and after sync; existing names and NODATA never fall through, and a zone not
/// listed keeps its NXDOMAIN (plugin/kubernetes/handler.go: `k.Fall.Through`
/// before "SERVFAIL until synced").
#[test]
fn fallthrough_zones_mark_missing_cluster_names() {
    let mut c = config();
    c.fallthrough = vec![Name::from_ascii("example.internal.").unwrap()];
    let a = ask_with(&c, "nope.default.svc.example.internal.", RecordType::A);
    assert_nxdomain(&a);
    assert!(a.fallthrough);
    let a = ask_with(&c, "NOPE.Default.svc.Example.Internal.", RecordType::A);
    assert!(a.fallthrough, "zones match without regard to case");
    let a = ask_with(&c, "nope.default.svc.cluster.local.", RecordType::A);
    assert_nxdomain(&a);
    assert!(!a.fallthrough, "cluster.local is not listed");
    let a = ask_with(&c, "nginx.default.svc.example.internal.", RecordType::A);
    assert!(!a.fallthrough && !a.answers.is_empty());
    let a = ask_with(&c, "nginx.default.svc.example.internal.", RecordType::MX);
    assert_nodata(&a);
    assert!(!a.fallthrough, "NODATA stays");

    c.fallthrough = vec![Name::root()];
    assert!(ask_with(&c, "a.b.c.d.e.svc.cluster.local.", RecordType::A).fallthrough);

    let mut w = IndexWriter::awaiting([crate::cluster::Kind::Service]);
    let snap = w.snapshot();
    let before = answer(
        &c,
        &snap,
        &Name::from_ascii("late.default.svc.cluster.local.").unwrap(),
        RecordType::A,
    );
    assert_eq!(before.rcode, ResponseCode::ServFail);
    assert!(before.fallthrough, "falls through before sync too");
}
