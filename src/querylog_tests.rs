//! The cases of CoreDNS's plugin/log/log_test.go (TestLoggedStatus,
//! TestLoggedClassDenial, TestLoggedClassError, TestLogged), and the Common
//! Log Format field by field.

use super::*;
use hickory_proto::op::{Edns, Query};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{RData, Record};

/// CoreDNS's test.ResponseWriter's client.
const REMOTE: &str = "10.240.0.1:40212";

fn request(name: &str) -> Message {
    let mut m = Message::new(4321, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    m
}

/// What CoreDNS's test.ErrorHandler answers: SERVFAIL.
fn servfail(request: &Message) -> Message {
    let mut m = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.response_code = ResponseCode::ServFail;
    m.metadata.recursion_desired = true;
    m.add_queries(request.queries.clone());
    m
}

fn rules(specs: &[QueryLogSpec]) -> QueryLog {
    QueryLog::compile(specs).unwrap()
}

fn spec(names: &[&str], format: Option<&str>, classes: &[&str]) -> QueryLogSpec {
    QueryLogSpec {
        names: names.iter().map(|n| n.to_string()).collect(),
        format: format.map(str::to_string),
        classes: classes.iter().map(|c| c.to_string()).collect(),
        min_duration_ms: None,
    }
}

fn logged(log: &QueryLog, request: &Message, reply: &Message, took: Duration) -> Option<String> {
    let request_len = request.to_vec().unwrap().len();
    let reply_len = reply.to_vec().unwrap().len();
    log.line(&Exchange {
        request,
        request_len,
        reply,
        reply_len,
        remote: REMOTE.parse().unwrap(),
        tcp: false,
        took,
    })
}

#[test]
fn logged_status() {
    let log = rules(&[spec(&[], None, &[])]);
    let r = request("example.org.");
    let line = logged(&log, &r, &servfail(&r), Duration::ZERO).expect("logged");
    assert!(
        line.contains("A IN example.org. udp 29 false 512"),
        "{line}"
    );
}

#[test]
fn logged_class_denial_and_error() {
    let r = request("example.org.");
    let denial = rules(&[spec(&[], None, &["denial"])]);
    assert_eq!(logged(&denial, &r, &servfail(&r), Duration::ZERO), None);
    let error = rules(&[spec(&[], None, &["error"])]);
    let line = logged(&error, &r, &servfail(&r), Duration::ZERO).expect("logged");
    assert!(line.contains("SERVFAIL"), "{line}");
}

/// Rules, the name asked, what the line holds and does not, the latency.
type Case = (
    Vec<QueryLogSpec>,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Duration,
);

#[test]
fn logged_by_name_scope_format_and_latency() {
    let cases: Vec<Case> = vec![
        (
            vec![spec(&["example.org."], None, &[])],
            "example.org.",
            Some("A IN example.org."),
            None,
            Duration::ZERO,
        ),
        (
            vec![spec(&["example.org."], None, &[])],
            "example.net.",
            None,
            None,
            Duration::ZERO,
        ),
        (
            vec![
                spec(&["example.org."], None, &[]),
                spec(&["example.net."], None, &[]),
            ],
            "example.net.",
            Some("A IN example.net."),
            None,
            Duration::ZERO,
        ),
        (
            vec![spec(&["."], Some("{type} {class}"), &[])],
            "example.org.",
            Some("A IN"),
            Some("example.org"),
            Duration::ZERO,
        ),
        (
            vec![spec(&["."], Some("{remote}:{port}"), &[])],
            "example.org.",
            Some("10.240.0.1:40212"),
            Some("A IN example.org"),
            Duration::ZERO,
        ),
        (
            vec![spec(&["."], Some("{combined}"), &[])],
            "example.org.",
            Some("\"0\""),
            None,
            Duration::ZERO,
        ),
    ];
    for (specs, domain, should, should_not, took) in cases {
        let log = rules(&specs);
        let r = request(domain);
        let line = logged(&log, &r, &servfail(&r), took);
        match should {
            None => assert_eq!(line, None, "{domain}"),
            Some(text) => {
                let line = line.unwrap_or_else(|| panic!("{domain}: not logged"));
                assert!(line.contains(text), "{line}");
                if let Some(not) = should_not {
                    assert!(!line.contains(not), "{line}");
                }
            }
        }
    }
    // minDuration: a class that never matches, so only slowness logs.
    let slow = QueryLogSpec {
        min_duration_ms: Some(1000),
        ..spec(&["."], None, &["success"])
    };
    let log = rules(&[slow]);
    let r = request("example.org.");
    let line = logged(&log, &r, &servfail(&r), Duration::from_millis(1001));
    assert!(line.unwrap().contains("A IN example.org."));
    assert_eq!(
        logged(&log, &r, &servfail(&r), Duration::from_millis(1)),
        None
    );
}

/// Every field of `{common}` on a NOERROR answer over UDP with EDNS, as CoreDNS
/// prints it (README: `[::1]:50759 - 29008 "A IN example.org. udp 41 false 4096"
/// NOERROR qr,rd,ra,ad 68 0.037990251s`).
#[test]
fn the_common_log_format_field_by_field() {
    let mut r = request("Example.ORG.");
    r.metadata.id = 29008;
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    r.set_edns(edns);
    let mut reply = servfail(&r);
    reply.metadata.response_code = ResponseCode::NoError;
    reply.metadata.recursion_available = true;
    reply.metadata.authentic_data = true;
    let name = Name::from_ascii("example.org.").unwrap();
    reply.add_answer(Record::from_rdata(name, 60, RData::A(A::new(192, 0, 2, 1))));
    let log = rules(&[spec(&[], None, &[])]);
    let line = log
        .line(&Exchange {
            request: &r,
            request_len: 41,
            reply: &reply,
            reply_len: 68,
            remote: "[::1]:50759".parse().unwrap(),
            tcp: false,
            took: Duration::from_nanos(37_990_251),
        })
        .unwrap();
    assert_eq!(
        line,
        "[::1]:50759 - 29008 \"A IN example.org. udp 41 false 4096\" NOERROR qr,rd,ra,ad 68 0.037990251s"
    );
    // Over TCP the buffer size is 64 KiB, whatever the OPT record says.
    let tcp = log
        .line(&Exchange {
            request: &r,
            request_len: 41,
            reply: &reply,
            reply_len: 68,
            remote: "10.0.0.1:5000".parse().unwrap(),
            tcp: true,
            took: Duration::ZERO,
        })
        .unwrap();
    assert!(
        tcp.starts_with("10.0.0.1:5000 - 29008 \"A IN example.org. tcp 41 false 65535\""),
        "{tcp}"
    );
    assert!(tcp.ends_with(" 0s"), "{tcp}");
}

/// NXDOMAIN and NODATA (NOERROR, no answer, a SOA) are denials; a NOERROR
/// answer is a success.
#[test]
fn classes_follow_coredns_typify() {
    let r = request("example.org.");
    let soa = Record::from_rdata(
        Name::from_ascii("org.").unwrap(),
        60,
        RData::SOA(SOA::new(
            Name::from_ascii("ns.org.").unwrap(),
            Name::from_ascii("admin.org.").unwrap(),
            1,
            2,
            3,
            4,
            5,
        )),
    );
    let mut nodata = servfail(&r);
    nodata.metadata.response_code = ResponseCode::NoError;
    nodata.add_authority(soa.clone());
    let mut nxdomain = nodata.clone();
    nxdomain.metadata.response_code = ResponseCode::NXDomain;
    let mut success = servfail(&r);
    success.metadata.response_code = ResponseCode::NoError;
    success.add_answer(Record::from_rdata(
        Name::from_ascii("example.org.").unwrap(),
        60,
        RData::A(A::new(192, 0, 2, 1)),
    ));
    let denial = rules(&[spec(&[], None, &["denial"])]);
    let succeeded = rules(&[spec(&[], None, &["success"])]);
    for reply in [&nodata, &nxdomain] {
        assert!(logged(&denial, &r, reply, Duration::ZERO).is_some());
        assert!(logged(&succeeded, &r, reply, Duration::ZERO).is_none());
    }
    assert!(logged(&succeeded, &r, &success, Duration::ZERO).is_some());
    assert!(logged(&denial, &r, &success, Duration::ZERO).is_none());
}

#[test]
fn placeholders_unknown_metadata_and_case() {
    let log = rules(&[spec(
        &[],
        Some("{when} {/kubernetes/client-namespace} {>ID} {>Opcode} {name"),
        &[],
    )]);
    let r = request("example.org.");
    let line = logged(&log, &r, &servfail(&r), Duration::ZERO).unwrap();
    assert_eq!(line, "{when} - 4321 0 {name");
}

#[test]
fn bad_classes_and_names_are_refused() {
    assert!(QueryLog::compile(&[spec(&[], None, &["abracadabra"])]).is_err());
    assert!(QueryLog::compile(&[spec(&["a..b"], None, &[])]).is_err());
}
