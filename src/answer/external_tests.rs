//! The cases of CoreDNS's plugin/k8s_external/external_test.go (TestExternal)
//! and apex_test.go (TestApex), on the same Services: svc1 (external IP
//! 1.2.3.4), svc6 (1:2::5), svc11 (a LoadBalancer with 2.3.4.5), svc12 (a load
//! balancer known by hostname), svc-headless (two endpoints), each with the
//! port `http`/tcp 80. The reverse (PTR) cases are left out: cluster-dns does
//! not serve `k8s_external` under `in-addr.arpa`.

use super::*;
use crate::cluster::{EndpointInfo, EndpointSliceInfo, ServiceInfo};
use crate::index::IndexWriter;

fn http() -> Vec<PortInfo> {
    vec![PortInfo {
        name: Some("http".into()),
        protocol: "tcp".into(),
        port: 80,
    }]
}

fn service(name: &str, kind: ServiceKind, external: Vec<ExternalAddress>) -> ServiceInfo {
    ServiceInfo {
        namespace: "testns".into(),
        name: name.into(),
        kind,
        ports: http(),
        external,
    }
}

fn ip(text: &str) -> ExternalAddress {
    ExternalAddress::Ip(text.parse().unwrap())
}

fn snapshot() -> Snapshot {
    let mut w = IndexWriter::new();
    w.upsert_namespace("testns".into());
    let cluster_ip = |text: &str| ServiceKind::ClusterIp(vec![text.parse().unwrap()]);
    w.upsert_service(service("svc1", cluster_ip("10.0.0.1"), vec![ip("1.2.3.4")]));
    w.upsert_service(service("svc6", cluster_ip("10.0.0.3"), vec![ip("1:2::5")]));
    w.upsert_service(service(
        "svc11",
        cluster_ip("10.0.0.3"),
        vec![ip("2.3.4.5")],
    ));
    w.upsert_service(service(
        "svc12",
        cluster_ip("10.0.0.3"),
        vec![ExternalAddress::Hostname("dummy.hostname".into())],
    ));
    w.upsert_service(service("svc-headless", ServiceKind::Headless, vec![]));
    w.upsert_slice(EndpointSliceInfo {
        namespace: "testns".into(),
        name: "svc-headless-1".into(),
        service: Some("svc-headless".into()),
        endpoints: [("1.2.3.4", "endpoint-svc-0"), ("1.2.3.5", "endpoint-svc-1")]
            .iter()
            .map(|(addr, host)| EndpointInfo {
                hostname: Some((*host).into()),
                ip: addr.parse().unwrap(),
                pod: None,
            })
            .collect(),
        ports: http().into(),
    });
    w.snapshot()
}

fn zones(headless: bool) -> ExternalZones {
    ExternalZones {
        zones: vec![Name::from_ascii("example.com.").unwrap()],
        headless,
        ..ExternalZones::default()
    }
}

/// `(rcode, answers, additionals, authority)` as text.
fn ask(
    headless: bool,
    qname: &str,
    qtype: RecordType,
) -> (ResponseCode, Vec<String>, Vec<String>, Vec<String>) {
    let zones = zones(headless);
    let name = Name::from_ascii(qname).unwrap();
    let zone = zones.zone_of(&name).expect("in the zone").clone();
    let ns = ["127.0.0.1".parse().unwrap()];
    let (answer, _) = zones.answer(&zone, &snapshot(), (&name, qtype), &ns);
    assert!(answer.authoritative, "{qname}");
    let text = |records: &[Record]| -> Vec<String> {
        let mut out: Vec<String> = records
            .iter()
            .map(|r| format!("{} {} {}", r.name, r.ttl, r.data))
            .collect();
        out.sort();
        out
    };
    (
        answer.rcode,
        text(&answer.answers),
        text(&answer.additionals),
        text(&answer.authority),
    )
}

const SOA_TEXT: &str = "example.com. 5 ns1.dns.example.com. hostmaster.dns.example.com.";

fn is_denial(authority: &[String]) -> bool {
    authority.len() == 1
        && authority[0].starts_with(SOA_TEXT)
        && authority[0].ends_with(" 7200 1800 86400 5")
}

/// The name, the type, the rcode, the answers and the additional records.
type Case = (
    &'static str,
    RecordType,
    ResponseCode,
    &'static [&'static str],
    &'static [&'static str],
);

#[test]
fn external_addresses() {
    use RecordType::*;
    // (qname, qtype, rcode, answers, additionals); a denial carries the SOA.
    let cases: &[Case] = &[
        (
            "svc1.testns.example.com.",
            PTR,
            ResponseCode::NoError,
            &[],
            &[],
        ),
        (
            "not-existing.testns.example.com.",
            PTR,
            ResponseCode::NXDomain,
            &[],
            &[],
        ),
        (
            "svc1.testns.example.com.",
            A,
            ResponseCode::NoError,
            &["svc1.testns.example.com. 5 1.2.3.4"],
            &[],
        ),
        (
            "svc1.testns.example.com.",
            SRV,
            ResponseCode::NoError,
            &["svc1.testns.example.com. 5 0 100 80 svc1.testns.example.com."],
            &["svc1.testns.example.com. 5 1.2.3.4"],
        ),
        (
            "*._not-udp-or-tcp.svc1.testns.example.com.",
            SRV,
            ResponseCode::NXDomain,
            &[],
            &[],
        ),
        (
            "_http._tcp.svc1.testns.example.com.",
            SRV,
            ResponseCode::NoError,
            &["_http._tcp.svc1.testns.example.com. 5 0 100 80 svc1.testns.example.com."],
            &["svc1.testns.example.com. 5 1.2.3.4"],
        ),
        (
            "svc1.testns.example.com.",
            AAAA,
            ResponseCode::NoError,
            &[],
            &[],
        ),
        (
            "svc0.testns.example.com.",
            AAAA,
            ResponseCode::NXDomain,
            &[],
            &[],
        ),
        (
            "svc0.testns.example.com.",
            A,
            ResponseCode::NXDomain,
            &[],
            &[],
        ),
        (
            "svc0.svc-nons.example.com.",
            A,
            ResponseCode::NXDomain,
            &[],
            &[],
        ),
        (
            "svc6.testns.example.com.",
            AAAA,
            ResponseCode::NoError,
            &["svc6.testns.example.com. 5 1:2::5"],
            &[],
        ),
        (
            "_http._tcp.svc6.testns.example.com.",
            SRV,
            ResponseCode::NoError,
            &["_http._tcp.svc6.testns.example.com. 5 0 100 80 svc6.testns.example.com."],
            &["svc6.testns.example.com. 5 1:2::5"],
        ),
        (
            "svc6.testns.example.com.",
            SRV,
            ResponseCode::NoError,
            &["svc6.testns.example.com. 5 0 100 80 svc6.testns.example.com."],
            &["svc6.testns.example.com. 5 1:2::5"],
        ),
        ("testns.example.com.", A, ResponseCode::NoError, &[], &[]),
        ("testns.example.com.", SOA, ResponseCode::NoError, &[], &[]),
        (
            "svc11.testns.example.com.",
            A,
            ResponseCode::NoError,
            &["svc11.testns.example.com. 5 2.3.4.5"],
            &[],
        ),
        (
            "_http._tcp.svc11.testns.example.com.",
            SRV,
            ResponseCode::NoError,
            &["_http._tcp.svc11.testns.example.com. 5 0 100 80 svc11.testns.example.com."],
            &["svc11.testns.example.com. 5 2.3.4.5"],
        ),
        (
            "svc11.testns.example.com.",
            SRV,
            ResponseCode::NoError,
            &["svc11.testns.example.com. 5 0 100 80 svc11.testns.example.com."],
            &["svc11.testns.example.com. 5 2.3.4.5"],
        ),
        (
            "svc12.testns.example.com.",
            A,
            ResponseCode::NoError,
            &["svc12.testns.example.com. 5 dummy.hostname."],
            &[],
        ),
        (
            "_http._tcp.svc12.testns.example.com.",
            SRV,
            ResponseCode::NoError,
            &["_http._tcp.svc12.testns.example.com. 5 0 100 80 dummy.hostname."],
            &[],
        ),
        (
            "svc12.testns.example.com.",
            SRV,
            ResponseCode::NoError,
            &["svc12.testns.example.com. 5 0 100 80 dummy.hostname."],
            &[],
        ),
        (
            "svc-headless.testns.example.com.",
            A,
            ResponseCode::NoError,
            &[
                "svc-headless.testns.example.com. 5 1.2.3.4",
                "svc-headless.testns.example.com. 5 1.2.3.5",
            ],
            &[],
        ),
        (
            "svc-headless.testns.example.com.",
            SRV,
            ResponseCode::NoError,
            &[
                "svc-headless.testns.example.com. 5 0 50 80 endpoint-svc-0.svc-headless.testns.example.com.",
                "svc-headless.testns.example.com. 5 0 50 80 endpoint-svc-1.svc-headless.testns.example.com.",
            ],
            &[
                "endpoint-svc-0.svc-headless.testns.example.com. 5 1.2.3.4",
                "endpoint-svc-1.svc-headless.testns.example.com. 5 1.2.3.5",
            ],
        ),
        (
            "_http._tcp.svc-headless.testns.example.com.",
            SRV,
            ResponseCode::NoError,
            &[
                "_http._tcp.svc-headless.testns.example.com. 5 0 50 80 endpoint-svc-0.svc-headless.testns.example.com.",
                "_http._tcp.svc-headless.testns.example.com. 5 0 50 80 endpoint-svc-1.svc-headless.testns.example.com.",
            ],
            &[
                "endpoint-svc-0.svc-headless.testns.example.com. 5 1.2.3.4",
                "endpoint-svc-1.svc-headless.testns.example.com. 5 1.2.3.5",
            ],
        ),
        (
            "endpoint-svc-0.svc-headless.testns.example.com.",
            SRV,
            ResponseCode::NoError,
            &[
                "endpoint-svc-0.svc-headless.testns.example.com. 5 0 100 80 endpoint-svc-0.svc-headless.testns.example.com.",
            ],
            &["endpoint-svc-0.svc-headless.testns.example.com. 5 1.2.3.4"],
        ),
        (
            "endpoint-svc-1.svc-headless.testns.example.com.",
            A,
            ResponseCode::NoError,
            &["endpoint-svc-1.svc-headless.testns.example.com. 5 1.2.3.5"],
            &[],
        ),
    ];
    for (qname, qtype, rcode, answers, additionals) in cases {
        let (got_rcode, got_answers, got_additionals, authority) = ask(true, qname, *qtype);
        assert_eq!(got_rcode, *rcode, "{qname} {qtype}");
        assert_eq!(got_answers, *answers, "{qname} {qtype}");
        assert_eq!(got_additionals, *additionals, "{qname} {qtype}");
        if answers.is_empty() && *qtype != SOA {
            assert!(is_denial(&authority), "{qname} {qtype}: {authority:?}");
        }
    }
    // Without `headless`, a headless Service with no external address is not there.
    assert_eq!(
        ask(false, "svc-headless.testns.example.com.", A).0,
        ResponseCode::NXDomain
    );
    assert_eq!(
        ask(false, "svc1.testns.example.com.", A).0,
        ResponseCode::NoError
    );
}

/// apex_test.go: the zone's SOA and NS, and its `dns` subdomain.
#[test]
fn the_apex_and_its_name_server() {
    use RecordType::*;
    let (rcode, answers, _, _) = ask(false, "example.com.", SOA);
    assert_eq!(rcode, ResponseCode::NoError);
    assert!(answers[0].starts_with(SOA_TEXT), "{answers:?}");
    let (_, answers, additionals, _) = ask(false, "example.com.", NS);
    assert_eq!(answers, ["example.com. 5 ns1.dns.example.com."]);
    assert_eq!(additionals, ["ns1.dns.example.com. 5 127.0.0.1"]);
    let (rcode, answers, _, authority) = ask(false, "example.com.", SRV);
    assert_eq!((rcode, answers.len()), (ResponseCode::NoError, 0));
    assert!(is_denial(&authority));
    let (_, answers, _, _) = ask(false, "ns1.dns.example.com.", A);
    assert_eq!(answers, ["ns1.dns.example.com. 5 127.0.0.1"]);
    let (rcode, answers, _, authority) = ask(false, "ns1.dns.example.com.", AAAA);
    assert_eq!((rcode, answers.len()), (ResponseCode::NoError, 0));
    assert!(is_denial(&authority));
    let (rcode, _, _, authority) = ask(false, "dns.example.com.", A);
    assert_eq!(rcode, ResponseCode::NoError);
    assert!(is_denial(&authority));
    for name in ["ns2.dns.example.com.", "a.ns1.dns.example.com."] {
        let (rcode, _, _, authority) = ask(false, name, A);
        assert_eq!(rcode, ResponseCode::NXDomain, "{name}");
        assert!(is_denial(&authority));
    }
}
