#![no_main]
//! The guard for having two writers: a structured query (a name of the cluster,
//! mutated; any type and class; EDNS on or off with any buffer size; 0x20 case)
//! answered by the UDP fast path must give the same bytes as its general writer,
//! the same header, records and EDNS as the async handler that TCP uses, and the
//! same bytes as hickory-proto's encoder given that handler's message.

#[path = "fixture.rs"]
mod fixture;

use arbitrary::Arbitrary;
use cluster_dns::server::Transport;
use cluster_dns::server::fast::Fast;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};

const LABELS: &[&str] = &[
    "web-0",
    "web-1",
    "web-9",
    "nginx",
    "default",
    "svc",
    "cluster",
    "local",
    "_tcp",
    "_http",
    "_udp",
    "_web",
    "10-244-3-12",
    "x",
    "*",
    "any",
    "pod",
    "in-addr",
    "arpa",
    "10",
    "0",
    "fd00--12",
    "shop",
    "big",
    "ext",
    "alias",
    "10-0-0-1",
    "dns-version",
    "ns",
    "dns",
];

const TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::PTR,
    RecordType::TXT,
    RecordType::NS,
    RecordType::SOA,
    RecordType::CNAME,
    RecordType::ANY,
    RecordType::MX,
];

#[derive(Debug, Arbitrary)]
enum Mutation {
    None,
    Prefix(u8),
    DropFirst,
    Replace(u8, u8),
    Number(u8, u16),
}

#[derive(Debug, Arbitrary)]
struct Input {
    name: u8,
    mutation: Mutation,
    /// An index into the common types, or (past them) any type number.
    qtype: u16,
    class: Option<u16>,
    edns: Option<(u16, bool)>,
    case: u64,
    recursion_desired: bool,
    checking_disabled: bool,
}

fn name(input: &Input) -> Option<Name> {
    let base = fixture::NAMES[usize::from(input.name) % fixture::NAMES.len()];
    let mut labels: Vec<String> = base
        .trim_end_matches('.')
        .split('.')
        .map(String::from)
        .collect();
    let pick = |i: u8| LABELS[usize::from(i) % LABELS.len()].to_string();
    match input.mutation {
        Mutation::None => {}
        Mutation::Prefix(i) => labels.insert(0, pick(i)),
        Mutation::DropFirst => {
            labels.remove(0);
        }
        Mutation::Replace(at, i) => {
            let at = usize::from(at) % labels.len();
            labels[at] = pick(i);
        }
        Mutation::Number(at, n) => {
            let at = usize::from(at) % labels.len();
            labels[at] = n.to_string();
        }
    }
    // 0x20: each letter's case from one bit of `case`.
    let mut bit = 0;
    for label in &mut labels {
        *label = label
            .chars()
            .map(|c| {
                bit = (bit + 1) % 64;
                if input.case >> bit & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
    }
    Name::from_labels(labels.iter().map(String::as_bytes)).ok()
}

fn query(input: &Input) -> Option<Vec<u8>> {
    let qtype = match TYPES.get(usize::from(input.qtype)) {
        Some(common) => *common,
        None => RecordType::from(input.qtype),
    };
    let mut query = Query::query(name(input)?, qtype);
    query.set_query_class(input.class.map_or(DNSClass::IN, DNSClass::from));
    let mut message = Message::new(0x5a5a, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = input.recursion_desired;
    message.metadata.checking_disabled = input.checking_disabled;
    message.add_query(query);
    if let Some((payload, dnssec_ok)) = input.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        edns.set_dnssec_ok(dnssec_ok);
        message.set_edns(edns);
    }
    message.to_vec().ok()
}

libfuzzer_sys::fuzz_target!(|input: Input| {
    let Some(packet) = query(&input) else {
        return;
    };
    let handler = fixture::handler();
    let slow = fixture::runtime().block_on(handler.answer_slow(packet.clone(), fixture::SRC));
    let slow = slow.expect("the async handler answers every well-formed query");
    fixture::check_udp_reply(&packet, &slow);
    let mut fast = Vec::new();
    match handler.answer_fast(&packet, fixture::SRC, &mut fast) {
        Fast::Reply => {}
        Fast::Slow => return,
        Fast::Drop => panic!("a well-formed query was dropped"),
    }
    fixture::check_udp_reply(&packet, &fast);
    // The direct writer and the general one: the same bytes.
    let mut general = Vec::new();
    assert!(
        matches!(
            handler.answer_fast_general(&packet, fixture::SRC, &mut general),
            Fast::Reply
        ),
        "the fast path answered what its general writer passes on"
    );
    assert_eq!(fast, general, "direct and general writers differ");
    // Byte for byte what hickory-proto's encoder makes of the async handler's
    // message (hickory-server's own bytes do not point into the question).
    let reference = Message::from_vec(&slow)
        .expect("decodes")
        .to_vec()
        .expect("re-encodes");
    assert_eq!(
        fast, reference,
        "the fast writer and hickory-proto's encoder differ"
    );
    // The fast path and the async handler: the same message.
    let fast = Message::from_vec(&fast).expect("decodes");
    let slow = Message::from_vec(&slow).expect("decodes");
    assert_eq!(fast.metadata, slow.metadata, "headers differ");
    assert_eq!(fast.queries, slow.queries);
    assert_eq!(fast.answers, slow.answers, "answers differ");
    assert_eq!(fast.authorities, slow.authorities, "authorities differ");
    assert_eq!(fast.additionals, slow.additionals, "additionals differ");
    assert_eq!(fast.edns, slow.edns, "EDNS differs");
    // Over TCP (no size limit, no truncation): the same agreement, byte for byte.
    let slow_tcp = fixture::runtime().block_on(handler.answer_slow_over(
        Transport::Tcp,
        packet.clone(),
        fixture::SRC,
    ));
    let slow_tcp = slow_tcp.expect("the async handler answers every well-formed query");
    let mut fast_tcp = Vec::new();
    match handler.answer_fast_over(
        Transport::Tcp,
        &packet,
        fixture::SRC,
        &mut fast_tcp,
        std::time::Instant::now(),
    ) {
        Fast::Reply => {}
        Fast::Slow => return,
        Fast::Drop => panic!("a well-formed query was dropped over TCP"),
    }
    let reference = Message::from_vec(&slow_tcp)
        .expect("decodes")
        .to_vec()
        .expect("re-encodes");
    assert_eq!(
        fast_tcp, reference,
        "TCP: the fast writer and hickory-proto's encoder differ"
    );
});
