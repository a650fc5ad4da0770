#![no_main]
//! Bytes an upstream sends back, through the forwarder's acceptance check and
//! bailiwick filter (`forward::accept_reply`, what the UDP and TCP exchanges
//! call on every message they receive), then into the cache and out again.
//!
//! A reply the cache keeps is then asked for again, through the UDP fast path
//! (which writes cache hits itself) and the async handler: both must give the
//! same header, records and EDNS.
//!
//! Input: one byte choosing the question we asked (and, in its high bits, the
//! case and EDNS of the second asking), two bytes of the ID we sent, then the
//! upstream's message.

#[path = "fixture.rs"]
#[allow(dead_code)]
mod fixture;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_dns::forward::Forwarding;
use cluster_dns::forward::cache::Cache;
use cluster_dns::forward::{Forwarder, Question, accept_reply};
use cluster_dns::metrics::Metrics;
use cluster_dns::server::fast::Fast;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};

const QUESTIONS: &[(&str, RecordType)] = &[
    ("www.example.", RecordType::A),
    ("www.example.", RecordType::AAAA),
    ("alias.example.", RecordType::CNAME),
    ("db.example.com.", RecordType::ANY),
    ("1.2.0.192.in-addr.arpa.", RecordType::PTR),
    ("chain.example.", RecordType::A),
    ("x.svc.cluster.local.", RecordType::A),
];

fn inside(zones: &[Name], name: &Name) -> bool {
    zones.iter().any(|z| z.zone_of(name))
}

/// Every answer is the question's name or reached from it by the CNAMEs kept.
fn on_chain(answers: &[Record], query: &Query) -> bool {
    let mut chain = vec![query.name().clone()];
    let mut grew = true;
    while grew {
        grew = false;
        for record in answers {
            if let RData::CNAME(target) = &record.data
                && chain.iter().any(|n| n.eq_ignore_root(&record.name))
                && !chain.iter().any(|n| n.eq_ignore_root(&target.0))
            {
                chain.push(target.0.clone());
                grew = true;
            }
        }
    }
    answers
        .iter()
        .all(|r| chain.iter().any(|n| n.eq_ignore_root(&r.name)))
}

fn check(accepted: &Message, query: &Query, id: u16, zones: &[Name]) {
    assert_eq!(accepted.metadata.id, id);
    assert_eq!(accepted.metadata.message_type, MessageType::Response);
    match accepted.queries.as_slice() {
        [] => assert!(
            !matches!(
                accepted.metadata.response_code,
                ResponseCode::NoError | ResponseCode::NXDomain
            ),
            "only an error may come without the question"
        ),
        [asked] => {
            assert!(asked.name().eq_ignore_root(query.name()));
            assert_eq!(asked.query_type(), query.query_type());
            assert_eq!(asked.query_class(), query.query_class());
        }
        _ => panic!("accepted a reply with several questions"),
    }
    assert!(on_chain(&accepted.answers, query), "{:?}", accepted.answers);
    for record in accepted.answers.iter().chain(&accepted.authorities) {
        assert!(!inside(zones, &record.name), "in our zone: {record}");
        assert_eq!(record.dns_class, query.query_class());
    }
    assert!(accepted.additionals.is_empty());
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [pick, id_hi, id_lo, bytes @ ..] = data else {
        return;
    };
    let (qname, qtype) = QUESTIONS[usize::from(*pick) % QUESTIONS.len()];
    let Ok(qname) = Name::from_ascii(qname) else {
        return;
    };
    let query = Query::query(qname, qtype);
    let id = u16::from_be_bytes([*id_hi, *id_lo]);
    let Ok(zone) = Name::from_ascii("cluster.local.") else {
        return;
    };
    let zones = [zone];
    let Some(accepted) = accept_reply(&query, id, bytes, &zones) else {
        return;
    };
    check(&accepted, &query, id, &zones);
    // What the cache keeps and gives back is the filtered reply, no more.
    let question = Question {
        query: query.clone(),
        recursion_desired: true,
        checking_disabled: false,
        dnssec_ok: None,
    };
    let cache = Cache::new(30, 16);
    // Stored half a second ago: both askings below see the same whole-second age.
    let stored = Instant::now() - Duration::from_millis(500);
    if cache.insert_at(&question, &accepted, stored) {
        let cached = cache
            .get(&question)
            .expect("just inserted, TTL > 0")
            .answer();
        assert_eq!(cached.rcode, accepted.metadata.response_code);
        assert_eq!(cached.answers.len(), accepted.answers.len());
        assert_eq!(cached.authority.len(), accepted.authorities.len());
        assert!(cached.additionals.is_empty());
        assert!(on_chain(&cached.answers, &query));
        assert!(cached.answers.iter().all(|r| r.ttl <= 30));
        fast_and_slow_agree(cache, &query, *pick);
    }
});

/// The cached reply asked for again over UDP: the fast path's cache hit and the
/// async handler's must agree.
fn fast_and_slow_agree(cache: Cache, query: &Query, pick: u8) {
    let (handler, forwarding) = fixture::forwarding_handler();
    let metrics = Arc::new(Metrics::new());
    let Ok(upstream) = "127.0.0.1:9".parse() else {
        return;
    };
    forwarding.store(Arc::new(Some(Forwarding {
        forwarder: Forwarder::new(
            &[upstream],
            Default::default(),
            (Duration::from_millis(50), 4),
            metrics,
        ),
        stubs: Vec::new(),
        blocks: Vec::new(),
        cache: Some(cache),
        loadbalance: false,
    })));
    let mut asked = query.clone();
    if pick & 0x40 != 0 {
        let upper = asked.name().to_ascii().to_uppercase();
        let Ok(name) = Name::from_ascii(&upper) else {
            return;
        };
        asked = Query::query(name, asked.query_type());
    }
    let mut message = Message::new(0x4242, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(asked);
    if pick & 0x80 != 0 {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        message.set_edns(edns);
    }
    let Ok(packet) = message.to_vec() else {
        return;
    };
    let mut fast = Vec::new();
    if !matches!(
        handler.answer_fast(&packet, fixture::SRC, &mut fast),
        Fast::Reply
    ) {
        return; // a miss, an in-zone name, or one the async handler writes anyway
    }
    fixture::check_udp_reply(&packet, &fast);
    let slow = fixture::runtime()
        .block_on(handler.answer_slow(packet.clone(), fixture::SRC))
        .expect("the async handler answers a cache hit");
    // The fast writer compresses against the question, hickory does not: near the
    // client's limit the async handler may truncate an answer the fast path fits
    // (and has checked it fits, above). Otherwise they must agree.
    let truncated = |bytes: &[u8]| bytes.get(2).is_some_and(|flags| flags & 0x02 != 0);
    if truncated(&slow) && !truncated(&fast) {
        return;
    }
    assert_eq!(summary(&fast), summary(&slow));
}

/// Header, question, every record (owner case and TTL included) and EDNS.
fn summary(bytes: &[u8]) -> String {
    let message = Message::from_vec(bytes).expect("the reply decodes");
    let records = |rs: &[Record]| -> Vec<String> {
        rs.iter()
            .map(|r| format!("{} {} {:?} {}", r.name, r.ttl, r.dns_class, r.data))
            .collect()
    };
    format!(
        "{:?} {:?} {:?} {:?} {:?} {:?}",
        message.metadata,
        message.queries,
        records(&message.answers),
        records(&message.authorities),
        records(&message.additionals),
        message
            .edns
            .as_ref()
            .map(|e| (e.max_payload(), e.flags().dnssec_ok)),
    )
}
