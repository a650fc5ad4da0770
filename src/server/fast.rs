//! The fast path of both transports: a query (a UDP datagram or one TCP frame)
//! parsed in place, decided by [`DnsHandler::decide`] like every query, and
//! written by the allocation-free [`Writer`] when the answer is local or a cache
//! hit. Everything else (a miss to forward, a chase, odd packets) is passed on to
//! the async handler. The transport only sets the size limit and the metrics label.

use std::net::SocketAddr;
use std::time::Instant;

use hickory_proto::op::{Edns, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::handler::{Decision, DnsHandler};
use super::precheck::{self, Verdict, format_error, options_fit};
use super::reply::Transport;
use super::wire::{WireError, Writer};
use crate::answer::{Answer, ZoneConfig};
use crate::index::Snapshot;

/// What the fast path made of a datagram.
#[derive(Debug)]
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
    authentic_data: bool,
    /// The question section as sent (name, type, class).
    question: &'a [u8],
    /// The question name's labels, left to right.
    labels: &'a [&'a [u8]],
    qtype: RecordType,
    /// The client's EDNS: (payload size, DO bit).
    edns: Option<(u16, bool)>,
    transport: Transport,
}

fn u16_at(packet: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*packet.get(at)?, *packet.get(at + 1)?]))
}

/// Parses the common query: one question, no compression in it, at most an OPT
/// record of version 0. Anything else is `Err(Slow)` or `Err(Drop)`.
/// Room for the most labels a name can have (255 bytes).
const MAX_LABELS: usize = 128;

/// Where [`parse`] puts the question's labels: in the caller's frame, so a
/// parsed query does not carry (and copy) 2 KiB of slices around.
type LabelSlots<'p> = [&'p [u8]; MAX_LABELS];

fn parse<'p: 'b, 'b>(
    packet: &'p [u8],
    transport: Transport,
    labels: &'b mut LabelSlots<'p>,
) -> Result<Parsed<'b>, Fast> {
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
        if version != 0
            || at + 11 + rdlen != packet.len()
            || !options_fit(&packet[at + 11..])
            || has_client_subnet(&packet[at + 11..])
        {
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
        authentic_data: flags & 0x0020 != 0,
        question,
        labels: &labels[..label_count],
        qtype,
        edns,
        transport,
    })
}

/// Whether the options carry a client subnet (ECS, code 8): hickory checks its
/// family and prefix and answers FORMERR to a bad one, so the async handler
/// decides these. `options` is framed well (`options_fit`).
fn has_client_subnet(mut options: &[u8]) -> bool {
    while let [code_hi, code_lo, len_hi, len_lo, rest @ ..] = options {
        if u16::from_be_bytes([*code_hi, *code_lo]) == 8 {
            return true;
        }
        let len = usize::from(u16::from_be_bytes([*len_hi, *len_lo]));
        options = rest.get(len..).unwrap_or(&[]);
    }
    false
}

fn write_fast(
    out: &mut Vec<u8>,
    metadata: &Metadata,
    parsed: &Parsed<'_>,
    sections: [&[Record]; 3],
    edns: Option<&Edns>,
    limit: u16,
) -> Result<(), WireError> {
    let count = |n: usize| u16::try_from(n).map_err(|_| WireError::Full);
    let counts = [
        1,
        count(sections[0].len())?,
        count(sections[1].len())?,
        count(sections[2].len() + usize::from(edns.is_some()))?,
    ];
    let labels = parsed.labels;
    let mut writer = Writer::new(out, limit, metadata, counts, labels, parsed.question)?;
    for section in sections {
        for record in section {
            writer.record(record)?;
        }
    }
    if let Some(edns) = edns {
        writer.opt(edns.max_payload(), edns.flags().dnssec_ok)?;
    }
    Ok(())
}

/// The response header for `answer`: the query's ID and echoed flags, the
/// answer's code and flags ([`Answer::header`], as the async handler's).
fn response_metadata(parsed: &Parsed<'_>, answer: &Answer) -> Metadata {
    let mut request = Metadata::new(parsed.id, MessageType::Response, OpCode::Query);
    request.recursion_desired = parsed.recursion_desired;
    request.checking_disabled = parsed.checking_disabled;
    let dnssec_ok = parsed.edns.is_some_and(|(_, dnssec_ok)| dnssec_ok);
    answer.header(request, parsed.authentic_data, dnssec_ok)
}

/// The reply's EDNS (payload clamped) and the size limit: the client's over
/// UDP, a whole message over TCP.
fn response_edns(parsed: &Parsed<'_>, bufsize: u16) -> (Option<Edns>, u16) {
    let edns = parsed.edns.map(|(payload, dnssec_ok)| {
        let mut edns = Edns::new();
        edns.set_max_payload(payload.clamp(512, bufsize));
        edns.set_version(0);
        edns.set_dnssec_ok(dnssec_ok);
        edns
    });
    let limit = match parsed.transport {
        Transport::Udp => edns.as_ref().map_or(512, Edns::max_payload),
        Transport::Tcp => u16::MAX,
    };
    (edns, limit)
}

impl DnsHandler {
    /// Answers a datagram from the index if it can, into `out`.
    pub fn answer_fast(&self, packet: &[u8], src: SocketAddr, out: &mut Vec<u8>) -> Fast {
        self.answer_fast_over(Transport::Udp, packet, src, out, Instant::now())
    }

    /// Answers a query that came over `transport` from the index or the cache if
    /// it can, into `out` (a TCP reply without its length prefix). `received`
    /// is when the query was read: one clock reading serves a whole batch.
    pub fn answer_fast_over(
        &self,
        transport: Transport,
        packet: &[u8],
        src: SocketAddr,
        out: &mut Vec<u8>,
        received: Instant,
    ) -> Fast {
        let started = received;
        let mut slots = [&[][..]; MAX_LABELS];
        let parsed = match parse(packet, transport, &mut slots) {
            Ok(parsed) => parsed,
            Err(_) => return self.check_unusual(packet, src, out),
        };
        // Loaded once: the direct path and the general one answer from the same view.
        let zone = self.zone.load();
        // Logged queries are the async handler's: it writes the line.
        if !zone.query_log.is_empty() {
            return Fast::Slow;
        }
        let snapshot = self.snapshot.load();
        if let Some(zone_label) = self.answer_direct(&zone, &snapshot, &parsed, out) {
            self.record_metrics(
                zone_label,
                parsed.qtype,
                transport.label(),
                src,
                ResponseCode::NoError,
                started,
            );
            return Fast::Reply;
        }
        self.answer_general(&zone, &snapshot, &parsed, src, out, started)
    }

    /// [`Self::answer_fast`] without the direct writer: what the general writer
    /// makes of the same datagram (for the differential test and fuzz target).
    #[doc(hidden)]
    pub fn answer_fast_general(&self, packet: &[u8], src: SocketAddr, out: &mut Vec<u8>) -> Fast {
        let mut slots = [&[][..]; MAX_LABELS];
        let Ok(parsed) = parse(packet, Transport::Udp, &mut slots) else {
            return Fast::Slow;
        };
        let (zone, snapshot) = (self.zone.load(), self.snapshot.load());
        self.answer_general(&zone, &snapshot, &parsed, src, out, Instant::now())
    }

    /// A datagram the fast parser passed over: dropped, FORMERR, or the async handler's.
    fn check_unusual(&self, packet: &[u8], src: SocketAddr, out: &mut Vec<u8>) -> Fast {
        match precheck::check(packet) {
            Verdict::Pass => Fast::Slow,
            Verdict::Drop(reason) => {
                tracing::debug!(%src, reason, "dropped a datagram");
                Fast::Drop
            }
            Verdict::FormErr(reason) => {
                tracing::debug!(%src, reason, "FORMERR");
                match format_error(packet) {
                    Some(reply) => {
                        out.clear();
                        out.extend_from_slice(&reply);
                        Fast::Reply
                    }
                    None => Fast::Drop,
                }
            }
        }
    }

    /// The common positive A/AAAA answer, written straight from the index with no
    /// names or records built. Returns the zone's metrics label, or `None` (nothing
    /// written that counts) when [`Self::answer_general`] must decide.
    fn answer_direct(
        &self,
        zone: &ZoneConfig,
        snapshot: &Snapshot,
        parsed: &Parsed<'_>,
        out: &mut Vec<u8>,
    ) -> Option<&'static str> {
        if zone.hosts_shadow_zones()
            || zone.rcode_for(parsed.qtype).is_some()
            || !zone.rewrites.is_empty()
            || !zone.templates.is_empty()
        {
            return None;
        }
        let labels = parsed.labels;
        let direct = crate::answer::direct(zone, snapshot, labels, parsed.qtype)?;
        let total = direct.count;
        let count = u16::try_from(total).ok()?;
        // `loadbalance`, as `rotate` does it for the general path.
        let rotate_by = if self.loadbalance && total > 1 {
            self.rotation
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                % total
        } else {
            0
        };
        let positive = Answer {
            authoritative: true,
            ..Answer::code(ResponseCode::NoError)
        };
        let metadata = response_metadata(parsed, &positive);
        let (edns, limit) = response_edns(parsed, zone.bufsize);
        let counts = [1, count, 0, u16::from(edns.is_some())];
        let mut writer =
            Writer::new(out, limit, &metadata, counts, labels, parsed.question).ok()?;
        let rotated = direct
            .addresses()
            .skip(rotate_by)
            .chain(direct.addresses().take(rotate_by));
        for ip in rotated {
            // Too big: the general path writes the truncated answer.
            writer.address_at_question(zone.ttl, ip).ok()?;
        }
        if let Some(edns) = &edns {
            writer
                .opt(edns.max_payload(), edns.flags().dnssec_ok)
                .ok()?;
        }
        zone.zone_at(direct.zone).map(|name| self.zone_label(name))
    }

    fn answer_general(
        &self,
        zone: &ZoneConfig,
        snapshot: &Snapshot,
        parsed: &Parsed<'_>,
        src: SocketAddr,
        out: &mut Vec<u8>,
        started: Instant,
    ) -> Fast {
        // The wire decoder builds the name straight from the packet's bytes.
        let mut decoder = BinDecoder::new(parsed.question);
        let Ok(qname) = Name::read(&mut decoder) else {
            return Fast::Slow;
        };
        // A server block of its own answers its names; its logged ones are the async handler's.
        let zone = zone.block_for(&qname);
        if !zone.query_log.is_empty() {
            return Fast::Slow;
        }
        // A rewritten question is the async handler's (names rewritten back).
        if !zone.rewrites.is_empty() && zone.rewrite(&qname).is_some() {
            return Fast::Slow;
        }
        let (mut answer, zone_label) = match self.decide(
            zone,
            snapshot,
            (&qname, parsed.qtype, DNSClass::IN),
            (src, parsed.transport),
        ) {
            Decision::Local {
                answer,
                chase: None,
                zone_label,
            } => (answer, zone_label),
            Decision::Forward { zone_label } => {
                let counted = (started, zone_label);
                return self.answer_cached(zone, &qname, parsed, (src, out), counted);
            }
            // The async handler counts the loop probe, and resolves a chase upstream.
            Decision::Local { chase: Some(_), .. } | Decision::LoopProbe | Decision::Refused => {
                return Fast::Slow;
            }
        };
        // An extended rcode (a template's BADCOOKIE...) needs the OPT record's
        // high bits, which only hickory's encoder writes.
        if u16::from(answer.rcode) > 0xf {
            return Fast::Slow;
        }
        let rotation = self.rotation_of(&answer.answers);
        if let Some((start, run, by)) = rotation {
            answer.answers[start..start + run].rotate_left(by);
        }
        let mut metadata = response_metadata(parsed, &answer);
        let (edns, limit) = response_edns(parsed, zone.bufsize);
        let sections = answer.sections(zone.minimal);
        match write_fast(out, &metadata, parsed, sections, edns.as_ref(), limit) {
            Ok(()) => {}
            // A record type the small writer does not know: the async handler encodes it.
            Err(WireError::Unsupported) => return Fast::Slow,
            // Too big even for TCP: the async handler's SERVFAIL.
            Err(WireError::Full) if parsed.transport == Transport::Tcp => return Fast::Slow,
            Err(WireError::Full) => {
                // Too big for this client over UDP: an empty truncated answer sends it to TCP.
                metadata.truncation = true;
                let empty: [&[Record]; 3] = [&[], &[], &[]];
                if write_fast(out, &metadata, parsed, empty, edns.as_ref(), limit).is_err() {
                    return Fast::Slow;
                }
            }
        }
        if rotation.is_some() {
            self.rotation_taken();
        }
        let proto = parsed.transport.label();
        self.record_metrics(zone_label, parsed.qtype, proto, src, answer.rcode, started);
        Fast::Reply
    }
}

impl DnsHandler {
    /// A forwarded name answered from the cache, as the async handler answers a
    /// cache hit: the same records, TTLs counted down, A/AAAA rotated, flags.
    /// Anything else (a miss, a record type the small writer does not know, an
    /// answer too big for the client) is the async handler's.
    fn answer_cached(
        &self,
        zone: &ZoneConfig,
        qname: &Name,
        parsed: &Parsed<'_>,
        (src, out): (SocketAddr, &mut Vec<u8>),
        (started, zone_label): (Instant, &'static str),
    ) -> Fast {
        let forwarding = self.forwarding.load();
        let Some(cache) = forwarding.as_ref().as_ref().and_then(|f| f.cache.as_ref()) else {
            return Fast::Slow;
        };
        // A block of its own's answers are never cached (see `Forwarding::fetch`).
        if zone.route.is_some() {
            return Fast::Slow;
        }
        let dnssec_ok = parsed.edns.map(|(_, dnssec_ok)| dnssec_ok);
        let Some(hit) = cache.lookup(
            qname,
            parsed.qtype,
            dnssec_ok.unwrap_or(false),
            parsed.checking_disabled,
        ) else {
            return Fast::Slow;
        };
        // A stale answer or a prefetch starts a fetch: the async handler's.
        if hit.is_stale() || hit.prefetch_due() {
            return Fast::Slow;
        }
        let reply = hit.reply();
        let metadata = response_metadata(parsed, reply);
        let (edns, limit) = response_edns(parsed, zone.bufsize);
        let rotation = self.rotation_of(&reply.answers);
        let written = write_cached(
            out,
            (&metadata, parsed),
            (&hit, zone.minimal, rotation),
            edns.as_ref(),
            limit,
        );
        if written.is_err() {
            return Fast::Slow;
        }
        if rotation.is_some() {
            self.rotation_taken();
        }
        self.cache_stats().hit(hit.kind());
        let proto = parsed.transport.label();
        self.record_metrics(zone_label, parsed.qtype, proto, src, reply.rcode, started);
        Fast::Reply
    }
}

/// A cache hit's reply: the answers in the order `rotation` (start, length,
/// turn) gives them, each TTL as the hit counts it.
fn write_cached(
    out: &mut Vec<u8>,
    (metadata, parsed): (&Metadata, &Parsed<'_>),
    (hit, minimal, rotation): (
        &crate::forward::cache::Hit,
        bool,
        Option<(usize, usize, usize)>,
    ),
    edns: Option<&Edns>,
    limit: u16,
) -> Result<(), WireError> {
    let reply = hit.reply();
    let [_, authority, additionals] = reply.sections(minimal);
    let count = |n: usize| u16::try_from(n).map_err(|_| WireError::Full);
    let counts = [
        1,
        count(reply.answers.len())?,
        count(authority.len())?,
        count(additionals.len() + usize::from(edns.is_some()))?,
    ];
    let labels = parsed.labels;
    let mut writer = Writer::new(out, limit, metadata, counts, labels, parsed.question)?;
    for i in 0..reply.answers.len() {
        let at = match rotation {
            Some((start, run, by)) if (start..start + run).contains(&i) => {
                start + (i - start + by) % run
            }
            _ => i,
        };
        let record = &reply.answers[at];
        writer.record_with_ttl(record, hit.ttl(record))?;
    }
    for record in authority.iter().chain(additionals) {
        writer.record_with_ttl(record, hit.ttl(record))?;
    }
    if let Some(edns) = edns {
        writer.opt(edns.max_payload(), edns.flags().dnssec_ok)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::{PodsMode, ZoneConfig};
    use crate::forward::LoopProbe;
    use crate::forward::Question;
    use crate::index::IndexWriter;
    use crate::metrics::Metrics;
    use crate::server::HandlerParts;
    use arc_swap::ArcSwap;
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::RData;
    use std::fmt::Write as _;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    fn cluster() -> String {
        let mut yaml = String::from(
            "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n\
             spec: {clusterIP: 10.96.0.10, clusterIPs: [10.96.0.10, 'fd00::10'], ports: [{name: http, port: 80}]}\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\naddressType: IPv4\n\
             metadata: {name: web-a, namespace: default, labels: {kubernetes.io/service-name: web}}\n\
             endpoints: [{addresses: [10.244.0.5]}]\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {name: empty, namespace: default}\nspec: {clusterIP: 10.96.0.11}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {name: nginx, namespace: default}\nspec: {clusterIP: None}\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\naddressType: IPv4\n\
             metadata: {name: nginx-a, namespace: default, labels: {kubernetes.io/service-name: nginx}}\n\
             endpoints: [{addresses: [10.244.1.10], hostname: web-0}, {addresses: [10.244.2.11], hostname: web-1},\n\
             {addresses: [10.244.3.12]}, {addresses: [10.244.3.13], hostname: web-1}]\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\naddressType: IPv6\n\
             metadata: {name: nginx-b, namespace: default, labels: {kubernetes.io/service-name: nginx}}\n\
             endpoints: [{addresses: ['fd00::12']}, {addresses: ['fd00::13'], hostname: web-0}]\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {name: lonely, namespace: default}\nspec: {clusterIP: None}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: default}\n\
             spec: {type: ExternalName, externalName: example.com}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {name: big, namespace: default}\nspec: {clusterIP: None}\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\naddressType: IPv4\n\
             metadata: {name: big-a, namespace: default, labels: {kubernetes.io/service-name: big}}\nendpoints:\n",
        );
        for i in 0..40 {
            let _ = writeln!(yaml, "- {{addresses: [10.245.0.{i}]}}");
        }
        yaml
    }

    fn handler(loadbalance: bool) -> DnsHandler {
        let objects =
            crate::source::manifests::parse_file(std::path::Path::new("t.yaml"), &cluster())
                .expect("test cluster parses");
        let snapshot = IndexWriter::from_objects(objects).snapshot();
        let zone = ZoneConfig::new(
            &[Name::from_ascii("cluster.local.").unwrap()],
            5,
            PodsMode::Insecure,
        );
        DnsHandler::new(HandlerParts {
            zone: Arc::new(ArcSwap::from_pointee(zone)),
            snapshot: Arc::new(ArcSwap::from_pointee(snapshot)),
            forwarding: Arc::new(ArcSwap::from_pointee(None)),
            metrics: Arc::new(Metrics::new()),
            server_label: "dns://:53".into(),
            loadbalance,
            loop_probe: Arc::new(LoopProbe::new()),
            in_flight: Arc::new(AtomicUsize::new(0)),
        })
    }

    fn packet(name: &str, qtype: RecordType, edns: Option<(u16, bool)>) -> Vec<u8> {
        let mut message = Message::new(0x1234, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if let Some((payload, dnssec_ok)) = edns {
            let mut e = Edns::new();
            e.set_max_payload(payload);
            e.set_dnssec_ok(dnssec_ok);
            message.set_edns(e);
        }
        message.to_vec().unwrap()
    }

    fn direct_path(
        handler: &DnsHandler,
        parsed: &Parsed<'_>,
        out: &mut Vec<u8>,
    ) -> Option<&'static str> {
        let (zone, snapshot) = (handler.zone.load(), handler.snapshot.load());
        handler.answer_direct(&zone, &snapshot, parsed, out)
    }

    fn general_path(
        handler: &DnsHandler,
        parsed: &Parsed<'_>,
        src: SocketAddr,
        out: &mut Vec<u8>,
    ) -> Fast {
        let (zone, snapshot) = (handler.zone.load(), handler.snapshot.load());
        handler.answer_general(&zone, &snapshot, parsed, src, out, Instant::now())
    }

    const NAMES: &[&str] = &[
        "web.default.svc.cluster.local.",
        "WEB.Default.SVC.Cluster.Local.",
        "empty.default.svc.cluster.local.",
        "nginx.default.svc.cluster.local.",
        "web-0.nginx.default.svc.cluster.local.",
        "Web-1.NGINX.default.svc.cluster.local.",
        "10-244-3-12.nginx.default.svc.cluster.local.",
        "fd00--12.nginx.default.svc.cluster.local.",
        "010-244-3-12.nginx.default.svc.cluster.local.",
        "web-9.nginx.default.svc.cluster.local.",
        "10-244-0-5.web.default.svc.cluster.local.",
        "lonely.default.svc.cluster.local.",
        "ext.default.svc.cluster.local.",
        "big.default.svc.cluster.local.",
        "_http._tcp.web.default.svc.cluster.local.",
        "_tcp.web.default.svc.cluster.local.",
        "missing.default.svc.cluster.local.",
        "web.other.svc.cluster.local.",
        "x.web-0.nginx.default.svc.cluster.local.",
        "default.svc.cluster.local.",
        "svc.cluster.local.",
        "cluster.local.",
        "dns-version.cluster.local.",
        "10-0-0-1.default.pod.cluster.local.",
        "1.0.96.10.in-addr.arpa.",
    ];

    /// The direct writer and the general one agree on every answer the direct
    /// one gives; and it gives the common ones.
    #[test]
    fn direct_answers_match_the_general_path_byte_for_byte() {
        for loadbalance in [false, true] {
            direct_answers_match(&handler(loadbalance));
        }
    }

    fn direct_answers_match(handler: &DnsHandler) {
        let src: SocketAddr = "127.0.0.1:5300".parse().unwrap();
        let mut direct_count = 0;
        let mut direct_names = std::collections::BTreeSet::new();
        for name in NAMES {
            for qtype in [
                RecordType::A,
                RecordType::AAAA,
                RecordType::SRV,
                RecordType::TXT,
                RecordType::ANY,
            ] {
                for edns in [
                    None,
                    Some((1232, false)),
                    Some((4096, true)),
                    Some((100, false)),
                ] {
                    let raw = packet(name, qtype, edns);
                    let mut slots = [&[][..]; MAX_LABELS];
                    let parsed = parse(&raw, Transport::Udp, &mut slots)
                        .unwrap_or_else(|_| panic!("{name} parses"));
                    let mut direct = Vec::new();
                    // Both paths rotate from the same point (loadbalance).
                    handler
                        .rotation
                        .store(7, std::sync::atomic::Ordering::Relaxed);
                    if direct_path(handler, &parsed, &mut direct).is_none() {
                        continue;
                    }
                    handler
                        .rotation
                        .store(7, std::sync::atomic::Ordering::Relaxed);
                    let mut general = Vec::new();
                    let outcome = general_path(handler, &parsed, src, &mut general);
                    assert!(matches!(outcome, Fast::Reply), "{name} {qtype} {edns:?}");
                    assert_eq!(direct, general, "{name} {qtype} {edns:?}");
                    direct_count += 1;
                    direct_names.insert((name.to_ascii_lowercase(), qtype));
                }
            }
        }
        let expected: Vec<(&str, RecordType)> = vec![
            ("web.default.svc.cluster.local.", RecordType::A),
            ("web.default.svc.cluster.local.", RecordType::AAAA),
            ("empty.default.svc.cluster.local.", RecordType::A),
            ("nginx.default.svc.cluster.local.", RecordType::A),
            ("nginx.default.svc.cluster.local.", RecordType::AAAA),
            ("web-0.nginx.default.svc.cluster.local.", RecordType::A),
            ("web-0.nginx.default.svc.cluster.local.", RecordType::AAAA),
            ("web-1.nginx.default.svc.cluster.local.", RecordType::A),
            (
                "10-244-3-12.nginx.default.svc.cluster.local.",
                RecordType::A,
            ),
            (
                "fd00--12.nginx.default.svc.cluster.local.",
                RecordType::AAAA,
            ),
            ("10-244-0-5.web.default.svc.cluster.local.", RecordType::A),
            ("big.default.svc.cluster.local.", RecordType::A),
        ];
        for (name, qtype) in &expected {
            assert!(
                direct_names.contains(&(name.to_string(), *qtype)),
                "{name} {qtype} should be answered directly; got {direct_names:?}"
            );
        }
        assert_eq!(direct_names.len(), expected.len(), "{direct_names:?}");
        assert!(direct_count >= expected.len() * 3, "{direct_count}");
    }

    /// Every name of the test cluster, every common type, with and without EDNS
    /// and in two spellings, over UDP and TCP: what the fast path writes is byte
    /// for byte what hickory-proto's encoder writes for the async handler.
    /// Positive, negative (NXDOMAIN/NODATA with the SOA), SRV with additionals,
    /// PTR and CNAME answers all take the fast path.
    #[tokio::test]
    async fn the_fast_writer_matches_hickorys_encoder_byte_for_byte() {
        let src: SocketAddr = "127.0.0.1:5300".parse().unwrap();
        let mut answered = std::collections::HashSet::new();
        for (loadbalance, transport) in [
            (false, Transport::Udp),
            (true, Transport::Udp),
            (false, Transport::Tcp),
            (true, Transport::Tcp),
        ] {
            let handler = handler(loadbalance);
            for name in NAMES
                .iter()
                .map(|n| n.to_string())
                .chain(NAMES.iter().map(|n| mixed_case(n)))
            {
                for qtype in [
                    RecordType::A,
                    RecordType::AAAA,
                    RecordType::SRV,
                    RecordType::PTR,
                    RecordType::TXT,
                    RecordType::NS,
                    RecordType::SOA,
                    RecordType::CNAME,
                    RecordType::MX,
                    RecordType::ANY,
                ] {
                    for edns in [
                        None,
                        Some((1232, false)),
                        Some((4096, true)),
                        Some((100, false)),
                    ] {
                        let raw = packet(&name, qtype, edns);
                        handler
                            .rotation
                            .store(3, std::sync::atomic::Ordering::Relaxed);
                        let mut fast = Vec::new();
                        match handler.answer_fast_over(
                            transport,
                            &raw,
                            src,
                            &mut fast,
                            Instant::now(),
                        ) {
                            Fast::Reply => {}
                            outcome => panic!("{name} {qtype} {edns:?}: {outcome:?}"),
                        }
                        handler
                            .rotation
                            .store(3, std::sync::atomic::Ordering::Relaxed);
                        let slow = handler
                            .answer_slow_over(transport, raw.clone(), src)
                            .await
                            .unwrap();
                        // hickory-server echoes the question as received and so
                        // cannot point into it; hickory-proto's message encoder,
                        // given the same response, compresses as the fast writer does.
                        let reference = Message::from_vec(&slow).unwrap().to_vec().unwrap();
                        assert_eq!(fast, reference, "{transport:?} {name} {qtype} {edns:?}");
                        let rcode = Message::from_vec(&fast).unwrap().metadata.response_code;
                        answered.insert((qtype, rcode));
                    }
                }
            }
        }
        // The kinds of answer the comparison covered.
        for kind in [
            (RecordType::A, ResponseCode::NoError),
            (RecordType::A, ResponseCode::NXDomain),
            (RecordType::SRV, ResponseCode::NoError),
            (RecordType::PTR, ResponseCode::NoError),
            (RecordType::CNAME, ResponseCode::NoError),
            (RecordType::MX, ResponseCode::NoError),
        ] {
            assert!(
                answered.contains(&kind),
                "{kind:?} not covered: {answered:?}"
            );
        }
    }

    /// A hosts entry for a cluster name wins over the index on the fast path
    /// too (CoreDNS runs `hosts` before `kubernetes`); with `fallthrough` and no
    /// cluster name listed, the direct writer keeps answering.
    #[test]
    fn hosts_entries_come_before_the_index_on_the_fast_path() {
        let src: SocketAddr = "127.0.0.1:5300".parse().unwrap();
        let handler = handler(false);
        let web = "web.default.svc.cluster.local.";
        let mut zone = (**handler.zone.load()).clone();
        zone.set_hosts(Some(crate::answer::hosts::Hosts::parse(
            &["192.0.2.80 web.default.svc.cluster.local"],
            60,
            true,
            true,
        )));
        handler.zone.store(Arc::new(zone.clone()));
        let mut out = Vec::new();
        assert!(matches!(
            handler.answer_fast(&packet(web, RecordType::A, None), src, &mut out),
            Fast::Reply
        ));
        let reply = Message::from_vec(&out).unwrap();
        assert_eq!(reply.answers[0].data.to_string(), "192.0.2.80");
        assert_eq!(reply.answers[0].ttl, 60);
        zone.set_hosts(Some(crate::answer::hosts::Hosts::parse(
            &["192.0.2.81 node-1"],
            60,
            true,
            true,
        )));
        assert!(!zone.hosts_shadow_zones());
        handler.zone.store(Arc::new(zone));
        let parsed_packet = packet(web, RecordType::A, None);
        let mut slots = [&[][..]; MAX_LABELS];
        let parsed = parse(&parsed_packet, Transport::Udp, &mut slots).unwrap();
        assert!(
            direct_path(&handler, &parsed, &mut out).is_some(),
            "the direct writer answers"
        );
        assert_eq!(
            Message::from_vec(&out).unwrap().answers[0].data.to_string(),
            "10.96.0.10"
        );
    }

    #[test]
    fn loadbalance_rotates_direct_answers() {
        let handler = handler(true);
        let raw = packet("nginx.default.svc.cluster.local.", RecordType::A, None);
        let mut slots = [&[][..]; MAX_LABELS];
        let parsed = parse(&raw, Transport::Udp, &mut slots).expect("parses");
        let mut firsts = std::collections::BTreeSet::new();
        for _ in 0..4 {
            let mut out = Vec::new();
            assert!(direct_path(&handler, &parsed, &mut out).is_some());
            let reply = Message::from_vec(&out).expect("reply parses");
            assert_eq!(reply.answers.len(), 4);
            firsts.insert(reply.answers[0].data.clone());
        }
        assert_eq!(firsts.len(), 4, "each address leads once in four answers");
    }

    #[test]
    fn answers_too_big_are_left_to_the_general_path() {
        let handler = handler(false);
        // 40 addresses (640 bytes) do not fit in 512: the general path truncates.
        let raw = packet("big.default.svc.cluster.local.", RecordType::A, None);
        let mut slots = [&[][..]; MAX_LABELS];
        let parsed = parse(&raw, Transport::Udp, &mut slots).expect("parses");
        assert!(direct_path(&handler, &parsed, &mut Vec::new()).is_none());
        let mut out = Vec::new();
        let src: SocketAddr = "127.0.0.1:5300".parse().unwrap();
        assert!(matches!(
            handler.answer_fast(&raw, src, &mut out),
            Fast::Reply
        ));
        let reply = Message::from_vec(&out).expect("reply parses");
        assert!(reply.metadata.truncation);
    }

    /// A handler that forwards (to a port nobody listens on: every query below is
    /// a cache hit) with a cache seeded with these upstream replies.
    fn forwarding_handler(loadbalance: bool, replies: &[(Question, Message)]) -> DnsHandler {
        let handler = handler(loadbalance);
        let metrics = Arc::new(Metrics::new());
        let cache = crate::forward::cache::Cache::new(30, 100);
        // Stored half a second ago: both paths see the same whole-second age.
        let stored = Instant::now() - std::time::Duration::from_millis(500);
        for (question, reply) in replies {
            assert!(
                cache.insert_at(question, reply, stored),
                "{question:?} cached"
            );
        }
        handler
            .forwarding
            .store(Arc::new(Some(crate::forward::Forwarding {
                forwarder: crate::forward::Forwarder::new(
                    &["127.0.0.1:9".parse().unwrap()],
                    Arc::default(),
                    (std::time::Duration::from_millis(100), 10),
                    metrics,
                ),
                stubs: Vec::new(),
                blocks: Vec::new(),
                cache: Some(cache),
                loadbalance,
            })));
        handler
    }

    /// Runs `f` on the cache of a handler built by [`forwarding_handler`].
    fn with_cache<R>(
        handler: &DnsHandler,
        f: impl FnOnce(&crate::forward::cache::Cache) -> R,
    ) -> R {
        let forwarding = handler.forwarding.load();
        let cache = forwarding.as_ref().as_ref().and_then(|f| f.cache.as_ref());
        f(cache.expect("a forwarding handler has a cache"))
    }

    fn upstream_reply(
        name: &str,
        qtype: RecordType,
        rcode: ResponseCode,
        answers: &[(&str, u32, RData)],
        soa: bool,
    ) -> (Question, Message) {
        use hickory_proto::rr::rdata::SOA;
        let qname = Name::from_ascii(name).unwrap();
        let mut reply = Message::new(7, MessageType::Response, OpCode::Query);
        reply.metadata.response_code = rcode;
        reply.metadata.recursion_available = true;
        for (owner, ttl, data) in answers {
            reply.add_answer(Record::from_rdata(
                Name::from_ascii(owner).unwrap(),
                *ttl,
                data.clone(),
            ));
        }
        if soa {
            let zone = Name::from_ascii("example.com.").unwrap();
            let data = SOA::new(
                zone.clone(),
                Name::from_ascii("hostmaster.example.com.").unwrap(),
                7,
                3600,
                600,
                86400,
                60,
            );
            reply.add_authority(Record::from_rdata(zone, 900, RData::SOA(data)));
        }
        let question = crate::forward::Question {
            query: Query::query(qname, qtype),
            recursion_desired: true,
            checking_disabled: false,
            dnssec_ok: None,
        };
        (question, reply)
    }

    /// The comparable parts of a reply: header flags and rcode, the question, every
    /// record with its owner's case, and the EDNS the reply carries.
    fn summary(bytes: &[u8]) -> String {
        let m = Message::from_vec(bytes).expect("reply parses");
        let records = |rs: &[Record]| -> Vec<String> {
            rs.iter()
                .map(|r| {
                    format!(
                        "{} {} {:?} {} {}",
                        r.name,
                        r.ttl,
                        r.dns_class,
                        r.record_type(),
                        r.data
                    )
                })
                .collect()
        };
        format!(
            "{:?}\n{:?}\nan {:?}\nns {:?}\nar {:?}\nedns {:?}",
            m.metadata,
            m.queries.iter().map(|q| q.to_string()).collect::<Vec<_>>(),
            records(&m.answers),
            records(&m.authorities),
            records(&m.additionals),
            m.edns
                .as_ref()
                .map(|e| (e.max_payload(), e.version(), e.flags().dnssec_ok)),
        )
    }

    /// Cache hits on the fast path give what the async handler gives for the same
    /// hit: same header, records (owner case and TTLs included), order and EDNS;
    /// misses and record types the small writer does not know are left to it.
    /// Byte for byte, they equal hickory-proto's encoding of the async handler's
    /// message (hickory-server echoes the question as received, so it cannot
    /// point into it, and its own bytes differ by that compression).
    #[tokio::test]
    async fn cache_hits_on_the_fast_path_match_the_async_handler() {
        use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, TXT};
        let a = |ip: [u8; 4]| RData::A(A::new(ip[0], ip[1], ip[2], ip[3]));
        let cname = |n: &str| RData::CNAME(CNAME(Name::from_ascii(n).unwrap()));
        let replies = vec![
            upstream_reply(
                "example.com.",
                RecordType::A,
                ResponseCode::NoError,
                &[
                    ("example.com.", 300, a([192, 0, 2, 1])),
                    ("example.com.", 300, a([192, 0, 2, 2])),
                    ("example.com.", 20, a([192, 0, 2, 3])),
                ],
                false,
            ),
            upstream_reply(
                "www.example.org.",
                RecordType::A,
                ResponseCode::NoError,
                &[
                    ("www.example.org.", 60, cname("edge.cdn.example.net.")),
                    ("edge.cdn.example.net.", 10, a([198, 51, 100, 1])),
                    ("edge.cdn.example.net.", 10, a([198, 51, 100, 2])),
                ],
                false,
            ),
            upstream_reply(
                "v6.example.com.",
                RecordType::AAAA,
                ResponseCode::NoError,
                &[(
                    "v6.example.com.",
                    30,
                    RData::AAAA(AAAA::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
                )],
                false,
            ),
            upstream_reply(
                "nx.example.com.",
                RecordType::A,
                ResponseCode::NXDomain,
                &[],
                true,
            ),
            upstream_reply(
                "nodata.example.com.",
                RecordType::AAAA,
                ResponseCode::NoError,
                &[],
                true,
            ),
            upstream_reply(
                "text.example.com.",
                RecordType::TXT,
                ResponseCode::NoError,
                &[(
                    "text.example.com.",
                    30,
                    RData::TXT(TXT::new(vec!["v=spf1 -all".into()])),
                )],
                false,
            ),
            upstream_reply(
                "mail.example.com.",
                RecordType::MX,
                ResponseCode::NoError,
                &[(
                    "mail.example.com.",
                    30,
                    RData::MX(MX::new(10, Name::from_ascii("mx.example.com.").unwrap())),
                )],
                false,
            ),
        ];
        let mut replies = replies;
        // A DNSSEC-validated answer upstream: AD goes to queries with DO or AD set
        // (compared through the header in every case below).
        replies[2].1.metadata.authentic_data = true;
        let src: SocketAddr = "127.0.0.1:5300".parse().unwrap();
        let mut fast_hits = 0;
        for loadbalance in [false, true] {
            let handler = forwarding_handler(loadbalance, &[]);
            let seed = |question: &Question, reply: &Message| {
                with_cache(&handler, |cache| {
                    // Stored 2.5 s ago (TTLs down by 2), again before each pair, so that a
                    // slow run cannot see the age tick between the two paths.
                    let stored = Instant::now() - std::time::Duration::from_millis(2500);
                    for (dnssec_ok, checking_disabled) in [
                        (None, false),
                        (Some(true), false),
                        (None, true),
                        (Some(true), true),
                    ] {
                        let mut keyed = question.clone();
                        keyed.dnssec_ok = dnssec_ok;
                        keyed.checking_disabled = checking_disabled;
                        assert!(cache.insert_at(&keyed, reply, stored));
                    }
                })
            };
            for (question, reply) in &replies {
                let name = question.query.name().to_string();
                let qtype = question.query.query_type();
                for variant in [name.clone(), mixed_case(&name)] {
                    for edns in [
                        None,
                        Some((512, false)),
                        Some((1232, false)),
                        Some((4096, false)),
                        Some((1232, true)),
                    ] {
                        for flags in 0..8u8 {
                            let (ad, cd, rd) = (flags & 1 != 0, flags & 2 != 0, flags & 4 == 0);
                            let mut raw = packet(&variant, qtype, edns);
                            raw[2] = if rd { raw[2] | 0x01 } else { raw[2] & !0x01 };
                            raw[3] |= if ad { 0x20 } else { 0 } | if cd { 0x10 } else { 0 };
                            for turn in 0..2 {
                                seed(question, reply);
                                handler
                                    .rotation
                                    .store(turn, std::sync::atomic::Ordering::Relaxed);
                                let mut out = Vec::new();
                                let fast = handler.answer_fast(&raw, src, &mut out);
                                handler
                                    .rotation
                                    .store(turn, std::sync::atomic::Ordering::Relaxed);
                                let slow = handler
                                    .answer_slow(raw.clone(), src)
                                    .await
                                    .expect("answered");
                                let case = format!(
                                    "{variant} {qtype} {edns:?} ad={ad} cd={cd} rd={rd} turn {turn}"
                                );
                                if qtype == RecordType::MX {
                                    assert!(
                                        matches!(fast, Fast::Slow),
                                        "MX is the async handler's"
                                    );
                                    continue;
                                }
                                assert!(matches!(fast, Fast::Reply), "{case}: {fast:?}");
                                fast_hits += 1;
                                assert_eq!(summary(&out), summary(&slow), "{case}");
                                // And byte for byte what hickory-proto's encoder makes
                                // of the async handler's message.
                                let reference = Message::from_vec(&slow).unwrap().to_vec().unwrap();
                                assert_eq!(out, reference, "{case}");
                            }
                        }
                    }
                }
            }
            // A name not cached at all, and one cached only without DO.
            let raw = packet("other.example.com.", RecordType::A, None);
            assert!(matches!(
                handler.answer_fast(&raw, src, &mut Vec::new()),
                Fast::Slow
            ));
            with_cache(&handler, |cache| {
                let (question, reply) = &replies[0];
                let mut only = question.clone();
                only.query = Query::query(
                    Name::from_ascii("only.example.com.").unwrap(),
                    RecordType::A,
                );
                cache.insert(&only, reply);
            });
            let raw = packet("only.example.com.", RecordType::A, Some((1232, true)));
            assert!(matches!(
                handler.answer_fast(&raw, src, &mut Vec::new()),
                Fast::Slow
            ));
        }
        assert!(fast_hits > 200, "{fast_hits} hits compared");
        // Hits are counted as the async handler counts them.
        let handler = forwarding_handler(false, &replies);
        let raw = packet("example.com.", RecordType::A, None);
        assert!(matches!(
            handler.answer_fast(&raw, src, &mut Vec::new()),
            Fast::Reply
        ));
        let text = handler.metrics.render();
        assert!(
            text.contains("coredns_cache_hits_total{server=\"dns://:53\",type=\"success\""),
            "{text}"
        );
    }

    /// A client subnet option goes to the async handler (hickory validates it and
    /// answers FORMERR to a bad one); other options stay on the fast path.
    #[test]
    fn client_subnet_queries_take_the_async_path() {
        let with_option = |option: &[u8]| {
            let mut raw = packet(
                "web.default.svc.cluster.local.",
                RecordType::A,
                Some((1232, false)),
            );
            let at = raw.len() - 2;
            raw[at..].copy_from_slice(&u16::try_from(option.len()).unwrap().to_be_bytes());
            raw.extend_from_slice(option);
            raw
        };
        // ECS, family 3 (unknown): hickory refuses it.
        let ecs = with_option(&[0, 8, 0, 4, 0, 3, 0, 0]);
        let mut slots = [&[][..]; MAX_LABELS];
        assert!(matches!(
            parse(&ecs, Transport::Udp, &mut slots),
            Err(Fast::Slow)
        ));
        // A cookie is fine.
        let cookie = with_option(&[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        let mut slots = [&[][..]; MAX_LABELS];
        assert!(parse(&cookie, Transport::Udp, &mut slots).is_ok());
    }

    /// An entry found expired leaves the entries gauge, not only the cache.
    #[tokio::test]
    async fn expired_entries_leave_the_entries_gauge() {
        let handler = forwarding_handler(false, &[]);
        let (question, reply) = upstream_reply(
            "gone.example.com.",
            RecordType::A,
            ResponseCode::NoError,
            &[(
                "gone.example.com.",
                30,
                RData::A(hickory_proto::rr::rdata::A::new(192, 0, 2, 9)),
            )],
            false,
        );
        with_cache(&handler, |cache| {
            let long_ago = Instant::now() - std::time::Duration::from_secs(60);
            assert!(cache.insert_at(&question, &reply, long_ago));
            assert_eq!(cache.counts(), (1, 0));
            handler.cache_stats().entries(cache);
        });
        let gauge = |handler: &DnsHandler| {
            handler
                .metrics
                .render()
                .lines()
                .find(|l| l.starts_with("coredns_cache_entries{") && l.contains("type=\"success\""))
                .map(str::to_string)
        };
        assert!(
            gauge(&handler).is_some_and(|l| l.ends_with(" 1")),
            "{:?}",
            gauge(&handler)
        );
        let src: SocketAddr = "127.0.0.1:5300".parse().unwrap();
        let raw = packet("gone.example.com.", RecordType::A, None);
        assert!(matches!(
            handler.answer_fast(&raw, src, &mut Vec::new()),
            Fast::Slow
        ));
        // The async handler misses too (the upstream is a closed port) and reports.
        let _ = handler.answer_slow(raw, src).await;
        assert!(
            gauge(&handler).is_some_and(|l| l.ends_with(" 0")),
            "{:?}",
            gauge(&handler)
        );
    }

    fn mixed_case(name: &str) -> String {
        name.chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    }
}
