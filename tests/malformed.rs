//! Bad input gets a clear answer or is dropped, and the server keeps answering.

mod common;

use std::time::Duration;

use common::*;
use hickory_proto::op::{Edns, Message, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

fn server() -> Server {
    let dir = example_dir();
    Server::start(&["--manifests", dir.to_str().unwrap()])
}

fn still_answers(server: &mut Server) {
    assert!(server.is_running(), "the process is alive");
    let reply = server.udp("nginx.default.svc.cluster.local.", RecordType::A);
    assert_eq!(reply.answers.len(), 3);
}

#[test]
fn garbage_is_dropped_or_formerr_and_never_kills_the_server() {
    let mut server = server();
    let short = Duration::from_millis(300);
    // Shorter than a header: nothing to answer.
    assert_eq!(udp_raw(server.addr, &[0x12], short), None);
    assert_eq!(udp_raw(server.addr, &[], short), None);
    // A header claiming a question that is not there: FORMERR.
    let mut header = vec![0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
    let reply = udp_raw(server.addr, &header, Duration::from_secs(2)).expect("a FORMERR reply");
    let reply = Message::from_vec(&reply).unwrap();
    assert_eq!(reply.metadata.id, 0xabcd);
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    // A name whose label runs past the end of the packet.
    header.extend_from_slice(&[40, b'a', b'b']);
    let reply = udp_raw(server.addr, &header, Duration::from_secs(2)).expect("a FORMERR reply");
    assert_eq!(
        Message::from_vec(&reply).unwrap().metadata.response_code,
        ResponseCode::FormErr
    );
    // A compression pointer loop.
    let mut looped = vec![0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
    looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    let _ = udp_raw(server.addr, &looped, short);
    // Random bytes of many sizes (a fixed generator: the same every run).
    let mut state: u32 = 0x1234_5678;
    for len in (0..600).step_by(7) {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        let _ = udp_raw(server.addr, &bytes, Duration::from_millis(20));
    }
    still_answers(&mut server);
}

#[test]
fn responses_sent_to_us_are_ignored() {
    let mut server = server();
    let mut msg = message("nginx.default.svc.cluster.local.", RecordType::A, None);
    msg.metadata.message_type = hickory_proto::op::MessageType::Response;
    assert_eq!(
        udp_raw(
            server.addr,
            &msg.to_vec().unwrap(),
            Duration::from_millis(300)
        ),
        None
    );
    still_answers(&mut server);
}

#[test]
fn protocol_errors_get_their_codes() {
    let mut server = server();
    // Opcodes other than QUERY: NOTIMP.
    for op in [OpCode::Status, OpCode::Notify, OpCode::Update] {
        let mut msg = message("nginx.default.svc.cluster.local.", RecordType::A, None);
        msg.metadata.op_code = op;
        let reply = query_udp(server.addr, &msg);
        assert_eq!(reply.metadata.response_code, ResponseCode::NotImp, "{op:?}");
    }
    // Two questions: FORMERR.
    let mut msg = message("nginx.default.svc.cluster.local.", RecordType::A, None);
    msg.add_query(hickory_proto::op::Query::query(
        Name::from_ascii("web-0.nginx.default.svc.cluster.local.").unwrap(),
        RecordType::A,
    ));
    assert_eq!(
        query_udp(server.addr, &msg).metadata.response_code,
        ResponseCode::FormErr
    );
    // No question: FORMERR.
    let msg = Message::new(77, hickory_proto::op::MessageType::Query, OpCode::Query);
    assert_eq!(
        query_udp(server.addr, &msg).metadata.response_code,
        ResponseCode::FormErr
    );
    // EDNS version 1: BADVERS with an OPT record.
    let mut msg = message("nginx.default.svc.cluster.local.", RecordType::A, None);
    let mut edns = Edns::new();
    edns.set_version(1);
    msg.set_edns(edns);
    let reply = query_udp(server.addr, &msg);
    // 16 is BADVERS in a reply with an OPT record (hickory decodes 16 as BADSIG, its twin).
    assert_eq!(u16::from(reply.metadata.response_code), 16);
    assert!(reply.edns.is_some());
    // Zone transfers are not offered.
    for qtype in [RecordType::AXFR, RecordType::IXFR] {
        let reply = server.tcp("cluster.local.", qtype);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::Refused,
            "{qtype}"
        );
    }
    // Class CH (version.bind and friends): refused.
    let mut msg = message("version.bind.", RecordType::TXT, None);
    msg.queries[0].set_query_class(hickory_proto::rr::DNSClass::CH);
    assert_eq!(
        query_udp(server.addr, &msg).metadata.response_code,
        ResponseCode::Refused
    );
    still_answers(&mut server);
}

#[test]
fn a_tcp_client_that_sends_junk_or_hangs_up_does_not_hurt_others() {
    use std::io::Write;
    let mut server = server();
    {
        let mut stream = tcp_connect(server.addr);
        stream.write_all(&[0x00, 0x05, 1, 2, 3]).unwrap();
    }
    {
        let mut stream = tcp_connect(server.addr);
        stream.write_all(&[0xff]).unwrap();
    }
    let reply = server.tcp("web-2.nginx.default.svc.cluster.local.", RecordType::A);
    assert_eq!(rdata(&reply), vec!["10.244.3.12"]);
    still_answers(&mut server);
}
