//! Hostile input against the real binary (issue 9): each malformed or unusual
//! message gets its RFC answer or is dropped, with a line at debug level, and the
//! server answers a normal query correctly after each one.

mod common;
#[path = "support/upstream.rs"]
mod upstream;

use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use upstream::{Behaviour, Upstream};

const DEBUG: &str = "info,cluster_dns=debug";
const NO_REPLY: Duration = Duration::from_millis(400);

fn server() -> Server {
    let dir = example_dir();
    Server::start_logging(&["--manifests", dir.to_str().unwrap()], DEBUG)
}

/// After each hostile message: alive, and a normal query gets its right answer.
fn still_answers(server: &mut Server) {
    assert!(server.is_running(), "the process is alive");
    let reply = server.udp("web-1.nginx.default.svc.cluster.local.", RecordType::A);
    assert_eq!(rdata(&reply), vec!["10.244.2.11"]);
}

/// A query header: id 0xbeef, RD, opcode and counts as given.
fn header(opcode: u8, counts: [u16; 4]) -> Vec<u8> {
    let mut packet = vec![0xbe, 0xef, (opcode << 3) | 0x01, 0x00];
    for count in counts {
        packet.extend_from_slice(&count.to_be_bytes());
    }
    packet
}

/// `web-0.nginx.default.svc.cluster.local.` on the wire, uncompressed.
fn qname() -> Vec<u8> {
    let mut name = Vec::new();
    for label in ["web-0", "nginx", "default", "svc", "cluster", "local"] {
        name.push(label.len() as u8);
        name.extend_from_slice(label.as_bytes());
    }
    name.push(0);
    name
}

fn question(qtype: u16, class: u16) -> Vec<u8> {
    let mut question = qname();
    question.extend_from_slice(&qtype.to_be_bytes());
    question.extend_from_slice(&class.to_be_bytes());
    question
}

/// An OPT record (payload 1232, version given) with these option bytes.
fn opt(version: u8, options: &[u8]) -> Vec<u8> {
    let mut record = vec![0, 0, 41, 0x04, 0xd0, 0, version, 0, 0];
    record.extend_from_slice(&(options.len() as u16).to_be_bytes());
    record.extend_from_slice(options);
    record
}

fn expect_rcode(server: &Server, packet: &[u8], rcode: ResponseCode, what: &str) -> Message {
    let reply = query_raw(server, packet).unwrap_or_else(|| panic!("{what}: no reply"));
    let reply = Message::from_vec(&reply).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(reply.metadata.id, 0xbeef, "{what}: id echoed");
    assert_eq!(reply.metadata.response_code, rcode, "{what}");
    assert_eq!(
        reply.metadata.message_type,
        hickory_proto::op::MessageType::Response
    );
    reply
}

/// Sends raw bytes (one retry: a loaded machine may drop a datagram).
fn query_raw(server: &Server, packet: &[u8]) -> Option<Vec<u8>> {
    udp_raw(server.addr, packet, IO_TIMEOUT).or_else(|| udp_raw(server.addr, packet, IO_TIMEOUT))
}

fn expect_log(server: &Server, needle: &str) {
    assert!(
        server.wait_for_log(needle, Duration::from_secs(5)),
        "no debug line with {needle:?}; log:\n{}",
        server.log()
    );
}

#[test]
fn malformed_packets_get_formerr_and_a_debug_line() {
    let mut server = server();
    let a = question(1, 1);
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("header only", header(0, [0; 4]), "not exactly one question"),
        (
            "QDCOUNT 2",
            [header(0, [2, 0, 0, 0]), a.clone(), a.clone()].concat(),
            "not exactly one question",
        ),
        (
            "cut in the name",
            [header(0, [1, 0, 0, 0]), qname()[..9].to_vec()].concat(),
            "question name cut short",
        ),
        (
            "cut in the type",
            [header(0, [1, 0, 0, 0]), a[..a.len() - 3].to_vec()].concat(),
            "question cut short",
        ),
        (
            "label type 0x40",
            [
                header(0, [1, 0, 0, 0]),
                vec![0x40],
                vec![b'a'; 64],
                vec![0, 0, 1, 0, 1],
            ]
            .concat(),
            "unknown label type",
        ),
        (
            "trailing garbage",
            [header(0, [1, 0, 0, 0]), a.clone(), vec![0xde, 0xad, 0xbe]].concat(),
            "trailing bytes",
        ),
        (
            "two OPT records",
            [header(0, [1, 0, 0, 2]), a.clone(), opt(0, &[]), opt(0, &[])].concat(),
            "two OPT records",
        ),
        (
            "OPT in the answer section",
            [header(0, [1, 1, 0, 0]), a.clone(), opt(0, &[])].concat(),
            "OPT record outside",
        ),
        (
            "EDNS option longer than the record",
            [
                header(0, [1, 0, 0, 1]),
                a.clone(),
                opt(0, &[0, 10, 0, 40, 1, 2]),
            ]
            .concat(),
            "malformed EDNS option",
        ),
        (
            "EDNS option past the record's end",
            [
                header(0, [1, 0, 0, 1]),
                a.clone(),
                opt(0, &[0, 10, 0, 5, 1, 2]),
            ]
            .concat(),
            "malformed EDNS option",
        ),
        (
            "EDNS option header cut",
            [header(0, [1, 0, 0, 1]), a.clone(), opt(0, &[0, 10, 0])].concat(),
            "malformed EDNS option",
        ),
        (
            "a record cut short",
            [
                header(0, [1, 0, 0, 1]),
                a.clone(),
                opt(0, &[])[..7].to_vec(),
            ]
            .concat(),
            "record cut short",
        ),
    ];
    // A name of 258 bytes: four 62-byte labels and one of 5.
    let mut long = Vec::new();
    for _ in 0..4 {
        long.push(62);
        long.extend_from_slice(&[b'x'; 62]);
    }
    long.extend_from_slice(&[5, b'a', b'b', b'c', b'd', b'e', 0, 0, 1, 0, 1]);
    cases.push((
        "name over 255 bytes",
        [header(0, [1, 0, 0, 0]), long].concat(),
        "longer than 255",
    ));
    // Compression in the question: a loop, a pointer forwards, a pointer to a
    // name after it (whose echo would land on the reply's own header).
    cases.push((
        "pointer loop",
        [header(0, [1, 0, 0, 0]), vec![0xc0, 12, 0, 1, 0, 1]].concat(),
        "compressed question",
    ));
    cases.push((
        "forward pointer",
        [header(0, [1, 0, 0, 0]), vec![0xc0, 18, 0, 1, 0, 1], qname()].concat(),
        "compressed question",
    ));
    cases.push((
        "pointer after a label",
        [
            header(0, [1, 0, 0, 0]),
            vec![3, b'w', b'e', b'b', 0xc0, 12, 0, 1, 0, 1],
        ]
        .concat(),
        "compressed question",
    ));
    for (what, packet, reason) in cases {
        let reply = expect_rcode(&server, &packet, ResponseCode::FormErr, what);
        assert!(reply.answers.is_empty(), "{what}");
        expect_log(&server, reason);
        still_answers(&mut server);
    }
    expect_log(&server, "FORMERR");
}

#[test]
fn responses_short_packets_and_bad_sources_are_dropped() {
    let mut server = server();
    // A response (QR=1) is never answered: that would make us a reflector.
    let mut response = [header(0, [1, 0, 0, 0]), question(1, 1)].concat();
    response[2] |= 0x80;
    assert_eq!(udp_raw(server.addr, &response, NO_REPLY), None);
    expect_log(&server, "a response (QR=1)");
    still_answers(&mut server);
    // Shorter than a header.
    assert_eq!(udp_raw(server.addr, &[0xbe, 0xef, 1], NO_REPLY), None);
    expect_log(&server, "shorter than a DNS header");
    still_answers(&mut server);
    // From source port 0: a raw IPv4/UDP datagram to the server (needs root, as CI is).
    send_from_port_zero(&server, &[header(0, [1, 0, 0, 0]), question(1, 1)].concat());
    expect_log(&server, "source port 0");
    still_answers(&mut server);
}

/// Sends `payload` to the server in a UDP datagram whose source port is 0, which
/// no ordinary socket can do: a raw socket writes the IPv4 and UDP headers itself.
fn send_from_port_zero(server: &Server, payload: &[u8]) {
    let std::net::SocketAddr::V4(to) = server.addr else {
        panic!("the test server listens on IPv4 loopback");
    };
    let total = 20 + 8 + payload.len();
    let mut datagram = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    datagram[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    datagram.extend_from_slice(&[127, 0, 0, 1]);
    datagram.extend_from_slice(&to.ip().octets());
    datagram.extend_from_slice(&0u16.to_be_bytes()); // source port 0
    datagram.extend_from_slice(&to.port().to_be_bytes());
    datagram.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    datagram.extend_from_slice(&[0, 0]); // no UDP checksum (allowed over IPv4)
    datagram.extend_from_slice(payload);
    // SAFETY: plain socket(2)/sendto(2)/close(2) calls; `datagram` and `address`
    // outlive the sendto call, whose lengths are theirs.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW);
        assert!(
            fd >= 0,
            "a raw socket (root or CAP_NET_RAW is needed for this test): {}",
            std::io::Error::last_os_error()
        );
        let mut address: libc::sockaddr_in = std::mem::zeroed();
        address.sin_family = libc::AF_INET as libc::sa_family_t;
        address.sin_addr.s_addr = u32::from(*to.ip()).to_be();
        let sent = libc::sendto(
            fd,
            datagram.as_ptr().cast(),
            datagram.len(),
            0,
            (&address as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        let error = std::io::Error::last_os_error();
        libc::close(fd);
        assert_eq!(sent, datagram.len() as isize, "raw send: {error}");
    }
}

#[test]
fn opcodes_classes_and_types_get_their_codes() {
    let mut server = server();
    let a = question(1, 1);
    // NOTIFY, UPDATE, and opcodes nobody assigned: NOTIMP.
    for opcode in [4u8, 5, 3, 7, 15] {
        let packet = [header(opcode, [1, 0, 0, 0]), a.clone()].concat();
        expect_rcode(
            &server,
            &packet,
            ResponseCode::NotImp,
            &format!("opcode {opcode}"),
        );
        still_answers(&mut server);
    }
    expect_log(&server, "protocol error");
    // Classes CH, HS, NONE and ANY: refused (only IN is served).
    for class in [3u16, 4, 254, 255] {
        let packet = [header(0, [1, 0, 0, 0]), question(1, class)].concat();
        expect_rcode(
            &server,
            &packet,
            ResponseCode::Refused,
            &format!("class {class}"),
        );
        still_answers(&mut server);
    }
    expect_log(&server, "refused");
    // Zone transfers, over UDP and TCP: refused.
    for qtype in [252u16, 251] {
        let packet = [header(0, [1, 0, 0, 0]), question(qtype, 1)].concat();
        expect_rcode(
            &server,
            &packet,
            ResponseCode::Refused,
            &format!("type {qtype} over UDP"),
        );
        let reply = query_tcp(
            server.addr,
            &message("cluster.local.", RecordType::from(qtype), None),
        );
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::Refused,
            "type {qtype} over TCP"
        );
        still_answers(&mut server);
    }
    // EDNS version 1: BADVERS (16), with an OPT record carrying it.
    let packet = [header(0, [1, 0, 0, 1]), a.clone(), opt(1, &[])].concat();
    let reply = query_raw(&server, &packet).expect("a BADVERS reply");
    let reply = Message::from_vec(&reply).expect("decodable");
    assert_eq!(u16::from(reply.metadata.response_code), 16);
    assert!(reply.edns.is_some());
    still_answers(&mut server);
}

#[test]
fn any_gets_one_rrset() {
    let mut server = server();
    // myweb-svc has an A and an AAAA record: RFC 8482 answers one RRset.
    for via_tcp in [false, true] {
        let msg = message(
            "myweb-svc.default.svc.cluster.local.",
            RecordType::ANY,
            Some(1232),
        );
        let reply = if via_tcp {
            query_tcp(server.addr, &msg)
        } else {
            query_udp(server.addr, &msg)
        };
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(reply.answers.len(), 1, "{:?}", reply.answers);
        assert!(matches!(
            reply.answers[0].data,
            RData::A(_) | RData::AAAA(_)
        ));
    }
    still_answers(&mut server);
}

#[test]
fn forwarded_answers_too_big_for_udp_are_valid_truncated_messages() {
    let upstream = Upstream::start();
    let addresses: Vec<[u8; 4]> = (0..120).map(|i| [192, 0, 2, i as u8]).collect();
    upstream.set("big.example.", Behaviour::Addresses(addresses, 300));
    let dir = example_dir();
    let upstream_addr = upstream.addr.to_string();
    let mut server = Server::start_logging(
        &[
            "--manifests",
            dir.to_str().unwrap(),
            "--upstream",
            &upstream_addr,
        ],
        DEBUG,
    );
    for payload in [None, Some(1232)] {
        let msg = message("big.example.", RecordType::A, payload);
        let raw = query_udp_raw(server.addr, &msg);
        assert!(
            raw.len() <= 512.max(usize::from(payload.unwrap_or(0))),
            "{}",
            raw.len()
        );
        // Strict decoding: every byte belongs to a record the counts announce.
        let reply = Message::from_vec(&raw).expect("a valid message");
        assert!(reply.metadata.truncation, "TC set");
        assert!(reply.answers.is_empty());
        assert_eq!(reply.queries.len(), 1);
        assert_eq!(
            reply.edns.is_some(),
            payload.is_some(),
            "OPT when the query had one"
        );
        let reencoded = reply.to_vec().expect("re-encodes");
        assert_eq!(reencoded.len(), raw.len(), "no stray bytes");
        // Over TCP, the whole answer.
        let full = query_tcp(server.addr, &message("big.example.", RecordType::A, None));
        assert_eq!(full.answers.len(), 120);
    }
    still_answers(&mut server);
}

#[test]
fn malformed_edns_options_do_not_flood_the_log() {
    // The default log filter: a client must not be able to write a line per query.
    let dir = example_dir();
    let mut server = Server::start(&["--manifests", dir.to_str().unwrap()]);
    let mut packet = header(0, [1, 0, 0, 1]);
    for label in ["elsewhere", "example"] {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.extend_from_slice(&[0, 0, 1, 0, 1]);
    // The option claims 5 bytes, within the record's 6 but past its end: the
    // library's decoder skips such options with a WARN line each time.
    packet.extend_from_slice(&opt(0, &[0, 10, 0, 5, 1, 2]));
    for _ in 0..50 {
        let _ = udp_raw(server.addr, &packet, Duration::from_millis(200));
    }
    still_answers(&mut server);
    let noisy = server.log().lines().filter(|l| l.contains("WARN")).count();
    assert_eq!(noisy, 0, "{}", server.log());
}
