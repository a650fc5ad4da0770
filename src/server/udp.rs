//! The UDP front end: one blocking receive/answer/send loop per `SO_REUSEPORT`
//! socket, on its own thread. Questions the index answers are parsed, answered and
//! encoded on that thread, with no task spawn and no channel; everything else
//! (forwarding, odd packets) goes to the async handler on the tokio runtime.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;

use super::{DnsHandler, MAX_UDP_PAYLOAD};

/// What the fast path made of a datagram.
pub enum Fast {
    /// `out` holds the reply.
    Reply,
    /// Not for the fast path: the async handler decides.
    Slow,
    /// Not worth an answer (a response, or shorter than a header).
    Drop,
}

/// The parts of a plain query the fast path needs.
struct Parsed<'a> {
    id: u16,
    recursion_desired: bool,
    checking_disabled: bool,
    /// The question section as sent (name, type, class).
    question: &'a [u8],
    labels: [&'a [u8]; 128],
    label_count: usize,
    qtype: RecordType,
    /// The client's EDNS: (payload size, DO bit).
    edns: Option<(u16, bool)>,
}

fn u16_at(packet: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*packet.get(at)?, *packet.get(at + 1)?]))
}

/// Parses the common query: one question, no compression in it, at most an OPT
/// record of version 0. Anything else is `Err(Slow)` or `Err(Drop)`.
fn parse(packet: &[u8]) -> Result<Parsed<'_>, Fast> {
    if packet.len() < 12 {
        return Err(Fast::Drop);
    }
    let id = u16_at(packet, 0).ok_or(Fast::Drop)?;
    let flags = u16_at(packet, 2).ok_or(Fast::Drop)?;
    if flags & 0x8000 != 0 {
        return Err(Fast::Drop); // a response: never answered (reflection)
    }
    let opcode = (flags >> 11) & 0xf;
    let counts = [
        u16_at(packet, 4),
        u16_at(packet, 6),
        u16_at(packet, 8),
        u16_at(packet, 10),
    ];
    if opcode != 0
        || counts != [Some(1), Some(0), Some(0), Some(0)]
            && counts != [Some(1), Some(0), Some(0), Some(1)]
    {
        return Err(Fast::Slow);
    }
    let mut labels: [&[u8]; 128] = [&[]; 128];
    let mut label_count = 0;
    let mut at = 12;
    let mut name_len = 1;
    loop {
        let len = usize::from(*packet.get(at).ok_or(Fast::Slow)?);
        if len == 0 {
            at += 1;
            break;
        }
        if len > 63 || label_count == labels.len() {
            return Err(Fast::Slow); // a pointer, an extended label type or too many labels
        }
        let label = packet.get(at + 1..at + 1 + len).ok_or(Fast::Slow)?;
        name_len += len + 1;
        if name_len > 255 {
            return Err(Fast::Slow);
        }
        labels[label_count] = label;
        label_count += 1;
        at += 1 + len;
    }
    let qtype = u16_at(packet, at).ok_or(Fast::Slow)?;
    let qclass = u16_at(packet, at + 2).ok_or(Fast::Slow)?;
    if qclass != u16::from(DNSClass::IN) {
        return Err(Fast::Slow);
    }
    let question = &packet[12..at + 4];
    at += 4;
    let mut edns = None;
    if counts[3] == Some(1) {
        // OPT: root name, type 41, class = payload, ttl = rcode/version/flags.
        if packet.get(at) != Some(&0) || u16_at(packet, at + 1) != Some(41) {
            return Err(Fast::Slow);
        }
        let payload = u16_at(packet, at + 3).ok_or(Fast::Slow)?;
        let version = *packet.get(at + 6).ok_or(Fast::Slow)?;
        let ext_flags = u16_at(packet, at + 7).ok_or(Fast::Slow)?;
        let rdlen = usize::from(u16_at(packet, at + 9).ok_or(Fast::Slow)?);
        if version != 0 || at + 11 + rdlen != packet.len() {
            return Err(Fast::Slow);
        }
        edns = Some((payload, ext_flags & 0x8000 != 0));
    } else if at != packet.len() {
        return Err(Fast::Slow);
    }
    let qtype = RecordType::from(qtype);
    if matches!(qtype, RecordType::AXFR | RecordType::IXFR | RecordType::OPT) {
        return Err(Fast::Slow);
    }
    Ok(Parsed {
        id,
        recursion_desired: flags & 0x0100 != 0,
        checking_disabled: flags & 0x0010 != 0,
        question,
        labels,
        label_count,
        qtype,
        edns,
    })
}

/// Writes header, question, the record sections and an OPT record.
fn encode(
    out: &mut Vec<u8>,
    metadata: &Metadata,
    question: &Name,
    raw_question: &[u8],
    sections: [&[Record]; 3],
    edns: Option<&Edns>,
    limit: u16,
) -> Result<(), hickory_proto::ProtoError> {
    out.clear();
    let mut encoder = BinEncoder::new(out);
    encoder.set_max_size(limit);
    let counts = HeaderCounts {
        queries: 1,
        answers: u16::try_from(sections[0].len()).unwrap_or(u16::MAX),
        authorities: u16::try_from(sections[1].len()).unwrap_or(u16::MAX),
        additionals: u16::try_from(sections[2].len() + usize::from(edns.is_some()))
            .unwrap_or(u16::MAX),
    };
    Header {
        metadata: *metadata,
        counts,
    }
    .emit(&mut encoder)?;
    // The name through the encoder, so later names compress against it; type and
    // class as sent.
    question.emit(&mut encoder)?;
    encoder.emit_vec(&raw_question[raw_question.len() - 4..])?;
    for section in sections {
        for record in section {
            record.emit(&mut encoder)?;
        }
    }
    if let Some(edns) = edns {
        Record::from(edns).emit(&mut encoder)?;
    }
    Ok(())
}

impl DnsHandler {
    /// Answers a datagram from the index if it can, into `out`.
    pub fn answer_fast(&self, packet: &[u8], src: SocketAddr, out: &mut Vec<u8>) -> Fast {
        let started = Instant::now();
        let parsed = match parse(packet) {
            Ok(parsed) => parsed,
            Err(outcome) => return outcome,
        };
        let Ok(qname) = Name::from_labels(parsed.labels[..parsed.label_count].iter().copied())
        else {
            return Fast::Slow;
        };
        let zone = self.zone.load();
        let Some(zone_name) = zone.zone_of(&qname) else {
            return Fast::Slow; // forwarded
        };
        if self.loop_probe.name.zone_of(&qname) {
            return Fast::Slow;
        }
        let snapshot = self.snapshot.load();
        let mut answer = crate::answer::answer(&zone, &snapshot, &qname, parsed.qtype);
        if answer.fallthrough && self.forwarding.load().is_some() {
            return Fast::Slow;
        }
        self.rotate(&mut answer.answers);
        let mut metadata = Metadata::new(parsed.id, MessageType::Response, OpCode::Query);
        metadata.recursion_desired = parsed.recursion_desired;
        metadata.checking_disabled = parsed.checking_disabled;
        metadata.authoritative = answer.authoritative;
        metadata.response_code = answer.rcode;
        let edns = parsed.edns.map(|(payload, dnssec_ok)| {
            let mut edns = Edns::new();
            edns.set_max_payload(payload.clamp(512, MAX_UDP_PAYLOAD));
            edns.set_version(0);
            edns.set_dnssec_ok(dnssec_ok);
            edns
        });
        let limit = edns.as_ref().map_or(512, Edns::max_payload);
        let sections = [
            &answer.answers[..],
            &answer.authority[..],
            &answer.additionals[..],
        ];
        if encode(
            out,
            &metadata,
            &qname,
            parsed.question,
            sections,
            edns.as_ref(),
            limit,
        )
        .is_err()
        {
            // Too big for this client over UDP: an empty truncated answer sends it to TCP.
            metadata.truncation = true;
            if encode(
                out,
                &metadata,
                &qname,
                parsed.question,
                [&[], &[], &[]],
                edns.as_ref(),
                limit,
            )
            .is_err()
            {
                return Fast::Slow;
            }
        }
        let zone_label = self.zone_label(zone_name);
        self.record_metrics(zone_label, parsed.qtype, "udp", src, answer.rcode, started);
        Fast::Reply
    }
}

/// Sends the async handler's reply for one datagram back through the socket.
#[derive(Clone)]
struct DatagramReply {
    socket: Arc<UdpSocket>,
    to: SocketAddr,
}

#[async_trait::async_trait]
impl ResponseHandler for DatagramReply {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let limit = response.edns().map_or(512, |e| e.max_payload().max(512));
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(limit);
        let info = response
            .destructive_emit(&mut encoder)
            .map_err(NetError::from)?;
        self.socket
            .send_to(&bytes, self.to)
            .map_err(NetError::from)?;
        Ok(info)
    }
}

/// A FORMERR for a datagram whose header parses but whose body does not.
fn format_error(packet: &[u8]) -> Option<Vec<u8>> {
    let header = hickory_proto::op::Header::from_bytes(packet.get(..12)?).ok()?;
    if header.metadata.message_type == MessageType::Response {
        return None;
    }
    let mut metadata = Metadata::response_from_request(&header.metadata);
    metadata.response_code = ResponseCode::FormErr;
    let mut out = Vec::with_capacity(12);
    let mut encoder = BinEncoder::new(&mut out);
    Header {
        metadata,
        counts: HeaderCounts::default(),
    }
    .emit(&mut encoder)
    .ok()?;
    Some(out)
}

/// Serves one socket until `stop` is set.
pub fn serve_socket(
    socket: Arc<UdpSocket>,
    handler: Arc<DnsHandler>,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 4096];
    let mut out: Vec<u8> = Vec::with_capacity(1232);
    while !stop.load(Ordering::Relaxed) {
        let (len, src) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(error) => {
                tracing::debug!(%error, "UDP receive failed");
                continue;
            }
        };
        let packet = &buf[..len];
        let in_flight = handler.in_flight_guard();
        match handler.answer_fast(packet, src, &mut out) {
            Fast::Reply => {
                if let Err(error) = socket.send_to(&out, src) {
                    tracing::debug!(%error, %src, "UDP send failed");
                }
                drop(in_flight);
            }
            Fast::Drop => drop(in_flight),
            Fast::Slow => {
                let raw = packet.to_vec();
                let handler = handler.clone();
                let socket = socket.clone();
                runtime.spawn(async move {
                    let _in_flight = in_flight;
                    match Request::from_bytes(raw.clone(), src, Protocol::Udp) {
                        Ok(request) => {
                            if request.metadata.message_type == MessageType::Response {
                                return;
                            }
                            let reply = DatagramReply { socket, to: src };
                            handler
                                .handle_request::<_, TokioTime>(&request, reply)
                                .await;
                        }
                        Err(_) => {
                            if let Some(reply) = format_error(&raw) {
                                let _ = socket.send_to(&reply, src);
                            }
                        }
                    }
                });
            }
        }
    }
}

/// How long a receive waits before looking at the stop flag.
pub const RECEIVE_TICK: Duration = Duration::from_millis(200);
