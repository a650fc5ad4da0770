//! CoreDNS's own query tables for the small plugins, each test naming its
//! source: `any`, `minimal`, `whoami` and `loadbalance`.

use std::net::SocketAddr;

use hickory_proto::rr::rdata::{AAAA, MX};

use super::*;

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn a(owner: &str, address: &str) -> Record {
    Record::from_rdata(name(owner), 300, RData::A(A(address.parse().unwrap())))
}

fn aaaa(owner: &str, address: &str) -> Record {
    Record::from_rdata(
        name(owner),
        300,
        RData::AAAA(AAAA(address.parse().unwrap())),
    )
}

fn ns(owner: &str, target: &str) -> Record {
    Record::from_rdata(name(owner), 157_127, RData::NS(NS(name(target))))
}

fn cname(owner: &str, target: &str) -> Record {
    Record::from_rdata(name(owner), 300, RData::CNAME(CNAME(name(target))))
}

fn mx(owner: &str, preference: u16, exchange: &str) -> Record {
    Record::from_rdata(
        name(owner),
        300,
        RData::MX(MX::new(preference, name(exchange))),
    )
}

/// plugin/any/any_test.go TestAny: an ANY question is answered with RFC 8482's
/// HINFO, "ANY obsoleted".
#[test]
fn any_answers_hinfo() {
    let answer = Answer::any_hinfo(&name("example.org."));
    assert_eq!(answer.rcode, ResponseCode::NoError);
    let RData::HINFO(hinfo) = &answer.answers[0].data else {
        panic!("{answer:?}");
    };
    assert_eq!(&*hinfo.cpu, b"ANY obsoleted");
    assert_eq!(answer.answers[0].name, name("example.org."));
}

/// plugin/whoami/whoami_test.go TestWhoami: the additional section's owners
/// are the name and `_udp.` under it, case preserved.
#[test]
fn whoami_owners_keep_the_question_case() {
    let client: SocketAddr = "10.240.0.1:40212".parse().unwrap();
    for (qname, owners) in [
        ("example.org.", ["example.org.", "_udp.example.org."]),
        ("Example.ORG.", ["Example.ORG.", "_udp.Example.ORG."]),
    ] {
        let answer = Answer::whoami(&name(qname), client, false);
        assert_eq!(answer.rcode, ResponseCode::NoError);
        let got: Vec<String> = answer
            .additionals
            .iter()
            .map(|r| r.name.to_string())
            .collect();
        assert_eq!(got, owners, "{qname}");
    }
}

/// plugin/minimal/minimal_test.go TestMinimizeResponse: a NOERROR answer goes
/// without its authority and additional records; a delegation (no answer) and
/// a negative answer (rcode 2, SERVFAIL) keep every section.
#[test]
fn minimal_strips_positive_answers_only() {
    let base_answer = vec![a("example.com.", "142.250.76.46")];
    let base_ns: Vec<Record> = ["ns2", "ns1", "ns3", "ns4"]
        .iter()
        .map(|n| ns("example.com.", &format!("{n}.example.com.")))
        .collect();
    let base_extra = vec![
        a("ns2.example.com.", "216.239.34.10"),
        aaaa("ns2.example.com.", "2001:4860:4802:34::a"),
        a("ns3.example.com.", "216.239.36.10"),
        aaaa("ns3.example.com.", "2001:4860:4802:36::a"),
        a("ns1.example.com.", "216.239.32.10"),
        aaaa("ns1.example.com.", "2001:4860:4802:32::a"),
        a("ns4.example.com.", "216.239.38.10"),
        aaaa("ns4.example.com.", "2001:4860:4802:38::a"),
    ];
    let case = |answers: &[Record], authority: &[Record], extra: &[Record], rcode| Answer {
        rcode,
        answers: answers.to_vec(),
        authority: authority.to_vec(),
        additionals: extra.to_vec(),
        ..Answer::default()
    };
    let cases = [
        // Minimization possible: the NoError case.
        (
            case(&base_answer, &[], &base_extra, ResponseCode::NoError),
            [1, 0, 0],
        ),
        // A delegation.
        (
            case(&[], &base_ns, &base_extra, ResponseCode::NoError),
            [0, 4, 8],
        ),
        // A negative response.
        (
            case(&base_answer, &base_ns, &base_extra, ResponseCode::ServFail),
            [1, 4, 8],
        ),
    ];
    for (i, (answer, counts)) in cases.iter().enumerate() {
        let [answers, authority, extra] = answer.sections(true);
        assert_eq!(
            [answers.len(), authority.len(), extra.len()],
            *counts,
            "case {i}"
        );
        // Whatever is kept is kept as it was, in order.
        assert_eq!(answers, &answer.answers[..answers.len()]);
        assert_eq!(authority, &answer.authority[..authority.len()]);
        assert_eq!(extra, &answer.additionals[..extra.len()]);
        // Without `minimal` nothing goes.
        let [answers, authority, extra] = answer.sections(false);
        assert_eq!(
            (answers.len(), authority.len(), extra.len()),
            (
                answer.answers.len(),
                answer.authority.len(),
                answer.additionals.len()
            )
        );
    }
}

/// plugin/loadbalance/loadbalance_test.go `countRecords`: how many CNAME,
/// A/AAAA and MX records, and whether they come in that order (anything else
/// ends the ordered part).
fn count_records(records: &[Record]) -> (usize, usize, usize, bool) {
    let (mut cnames, mut addresses, mut mxs, mut sorted, mut state) = (0, 0, 0, true, 0);
    for record in records {
        match record.record_type() {
            RecordType::CNAME => {
                sorted &= state <= 1;
                state = 1;
                cnames += 1;
            }
            RecordType::A | RecordType::AAAA => {
                sorted &= state <= 2;
                state = 2;
                addresses += 1;
            }
            RecordType::MX => {
                sorted &= state <= 3;
                state = 3;
                mxs += 1;
            }
            _ => state = 4,
        }
    }
    (cnames, addresses, mxs, sorted)
}

/// plugin/loadbalance/loadbalance_test.go TestLoadBalanceRandom: after
/// `loadbalance`, a section holds CNAMEs, then addresses, then MX, with none
/// lost, in the answer and the additional section alike.
#[test]
fn loadbalance_orders_cnames_addresses_then_mx() {
    let z = "region2.skydns.test.";
    let at = |label: &str| format!("{label}.{z}");
    let cases: Vec<(Vec<Record>, Vec<Record>, [usize; 6])> = vec![
        (
            vec![
                cname(&at("cname1"), &at("cname2")),
                cname(&at("cname2"), &at("cname3")),
                cname(&at("cname5"), &at("cname6")),
                cname(&at("cname6"), &at("endpoint")),
                a(&at("endpoint"), "10.240.0.1"),
                mx(&at("mx"), 1, &at("mx1")),
                mx(&at("mx"), 2, &at("mx2")),
                mx(&at("mx"), 3, &at("mx3")),
            ],
            vec![],
            [4, 0, 1, 0, 3, 0],
        ),
        (
            vec![
                a(&at("endpoint"), "10.240.0.1"),
                mx(&at("mx"), 1, &at("mx1")),
                cname(&at("cname"), &at("endpoint")),
            ],
            vec![],
            [1, 0, 1, 0, 1, 0],
        ),
        (
            vec![
                mx(&at("mx"), 1, &at("mx1")),
                a(&at("endpoint"), "10.240.0.1"),
                a(&at("endpoint"), "10.240.0.2"),
                mx(&at("mx"), 1, &at("mx2")),
                cname(&at("cname2"), &at("cname3")),
                a(&at("endpoint"), "10.240.0.3"),
                mx(&at("mx"), 1, &at("mx3")),
            ],
            vec![
                a(&at("endpoint"), "10.240.0.1"),
                aaaa(&at("endpoint"), "::1"),
                mx(&at("mx"), 1, &at("mx1")),
                cname(&at("cname2"), &at("cname3")),
                mx(&at("mx"), 1, &at("mx2")),
                a(&at("endpoint"), "10.240.0.3"),
                aaaa(&at("endpoint"), "::2"),
                mx(&at("mx"), 1, &at("mx3")),
            ],
            [1, 1, 3, 4, 3, 3],
        ),
    ];
    for (i, (mut answer, mut extra, want)) in cases.into_iter().enumerate() {
        let before = (answer.clone(), extra.clone());
        loadbalance_order(&mut answer);
        loadbalance_order(&mut extra);
        let (c, ad, m, sorted) = count_records(&answer);
        assert!(sorted, "case {i}: answer mixed: {answer:?}");
        assert_eq!([c, ad, m], [want[0], want[2], want[4]], "case {i} answer");
        let (c, ad, m, sorted) = count_records(&extra);
        assert!(sorted, "case {i}: extra mixed: {extra:?}");
        assert_eq!([c, ad, m], [want[1], want[3], want[5]], "case {i} extra");
        // The same records, each group in its first order.
        for (after, before) in [(&answer, &before.0), (&extra, &before.1)] {
            for kind in [RecordType::CNAME, RecordType::A, RecordType::MX] {
                let of = |records: &[Record]| -> Vec<Record> {
                    records
                        .iter()
                        .filter(|r| r.record_type() == kind)
                        .cloned()
                        .collect()
                };
                assert_eq!(of(after), of(before), "case {i} {kind}");
            }
        }
    }
}
