//! The query handler: one decision per question ([`DnsHandler::decide`]), acted
//! on by both transports. This is the hickory-server side (TCP, and the UDP
//! datagrams the fast path passes on); [`super::fast`] is the other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use hickory_proto::op::{
    Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, Query, ResponseCode,
};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::net::runtime::{Time, TokioTime};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use super::precheck::format_error;
use super::reply::{Captured, Transport};
use super::stats::Labels;
use crate::answer::{self, Answer, ZoneConfig};
use crate::forward::{self, Forwarding, LoopProbe, Question};
use crate::index::{SharedSnapshot, Snapshot};
use crate::metrics::Metrics;

/// Answers queries from the current snapshot, forwarding the rest.
pub struct DnsHandler {
    pub(super) zone: Arc<ArcSwap<ZoneConfig>>,
    pub(super) snapshot: SharedSnapshot,
    pub(super) forwarding: Arc<ArcSwap<Option<Forwarding>>>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) labels: ArcSwap<Labels>,
    pub(super) loadbalance: bool,
    pub(super) rotation: AtomicUsize,
    loop_probe: Arc<LoopProbe>,
    in_flight: Arc<AtomicUsize>,
}

/// Counts a query as in flight until dropped.
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What the handler needs from the rest of the server.
pub struct HandlerParts {
    pub zone: Arc<ArcSwap<ZoneConfig>>,
    pub snapshot: SharedSnapshot,
    pub forwarding: Arc<ArcSwap<Option<Forwarding>>>,
    pub metrics: Arc<Metrics>,
    pub server_label: String,
    pub loadbalance: bool,
    pub loop_probe: Arc<LoopProbe>,
    pub in_flight: Arc<AtomicUsize>,
}

impl DnsHandler {
    pub fn new(parts: HandlerParts) -> Self {
        let labels = Labels::new(parts.server_label, &parts.zone.load());
        DnsHandler {
            zone: parts.zone,
            snapshot: parts.snapshot,
            forwarding: parts.forwarding,
            metrics: parts.metrics,
            labels: ArcSwap::from_pointee(labels),
            loadbalance: parts.loadbalance,
            rotation: AtomicUsize::new(0),
            loop_probe: parts.loop_probe,
            in_flight: parts.in_flight,
        }
    }

    /// The answering policy for one question, decided once and before any I/O;
    /// both transports act on it (the UDP fast path writes what it can, the async
    /// handler the rest). A block of its own's names count under its zone.
    pub(crate) fn decide(
        &self,
        zone: &ZoneConfig,
        snapshot: &Snapshot,
        question: (&Name, RecordType, DNSClass),
        client: (SocketAddr, Transport),
    ) -> Decision {
        let decision = self.decide_in(zone, snapshot, question, client);
        match &zone.route {
            Some(block) => decision.counted_under(self.zone_label(block)),
            None => decision,
        }
    }

    /// [`Self::decide`] within one block's configuration.
    fn decide_in(
        &self,
        zone: &ZoneConfig,
        snapshot: &Snapshot,
        question: (&Name, RecordType, DNSClass),
        client: (SocketAddr, Transport),
    ) -> Decision {
        let (qname, qtype, qclass) = question;
        if !qname.is_fqdn() {
            return Decision::Refused;
        }
        if qname.eq_ignore_root_case(&self.loop_probe.name)
            || qname.eq_ignore_root(&self.loop_probe.name)
        {
            return Decision::LoopProbe;
        }
        // CoreDNS's `any` comes before every plugin that answers.
        if zone.any && qtype == RecordType::ANY {
            return local(Answer::any_hinfo(qname), None, ".");
        }
        let remote = client.0.ip();
        let transfer = matches!(qtype, RecordType::AXFR | RecordType::IXFR);
        // CoreDNS's `template` comes before `hosts`, `kubernetes` and `forward`;
        // it may answer other classes (`template CH TXT`).
        if qclass == DNSClass::IN
            && let Some(rcode) = zone.rcode_for(qtype)
        {
            let answer = Answer {
                authoritative: true,
                ..Answer::code(rcode)
            };
            return local(answer, None, ".");
        }
        if !transfer && let Some(answer) = zone.templates.answer(qname, qtype, qclass, remote) {
            return self.templated(snapshot, answer, qtype);
        }
        if qclass != DNSClass::IN || transfer {
            return Decision::Refused;
        }
        // CoreDNS's `hosts` comes before `kubernetes` and `forward`.
        if let Some(hosts) = zone.hosts()
            && let answer::hosts::Lookup::Answer(answer) = hosts.lookup(qname, qtype)
        {
            return local(answer, None, ".");
        }
        // Then `k8s_external`; a load balancer's hostname is followed for A/AAAA.
        if let Some(external_zone) = zone.external.zone_of(qname) {
            let question = (qname, qtype);
            let (answer, chase) =
                zone.external
                    .answer(external_zone, snapshot, question, &zone.ns_ips);
            let chase = chase.filter(|_| matches!(qtype, RecordType::A | RecordType::AAAA));
            return local(answer, chase, ".");
        }
        let Some(zone_name) = zone.zone_of(qname) else {
            return self.forward_unless_excepted(zone, qname, client, ".");
        };
        let zone_label = self.zone_label(zone_name);
        let answer = answer::answer(zone, snapshot, qname, qtype);
        if answer.fallthrough && self.forwarding.load().is_some() {
            return self.forward_unless_excepted(zone, qname, client, zone_label);
        }
        let chase = self.external_target(&answer, qtype);
        local(answer, chase, zone_label)
    }

    /// Forwarded, unless it is in a zone `forward`'s `except` keeps: then the
    /// next plugin's, `whoami` if set, else SERVFAIL (CoreDNS with no plugin
    /// after `forward`).
    fn forward_unless_excepted(
        &self,
        zone: &ZoneConfig,
        qname: &Name,
        (client, transport): (SocketAddr, Transport),
        zone_label: &'static str,
    ) -> Decision {
        let forwarding = self.forwarding.load();
        match &**forwarding {
            Some(f)
                if !f
                    .route(zone.route.as_ref(), qname)
                    .options()
                    .forwards(qname) =>
            {
                let answer = if zone.whoami {
                    Answer::whoami(qname, client, transport == Transport::Tcp)
                } else {
                    Answer::code(ResponseCode::ServFail)
                };
                local(answer, None, zone_label)
            }
            _ => Decision::Forward { zone_label },
        }
    }

    /// A template's answer: a CNAME it ends with is followed for A and AAAA, as
    /// CoreDNS follows it through its own plugins: inside our zones from the
    /// index, outside through the upstreams.
    fn templated(&self, snapshot: &Snapshot, mut answer: Answer, qtype: RecordType) -> Decision {
        if !matches!(qtype, RecordType::A | RecordType::AAAA) {
            return local(answer, None, ".");
        }
        let target = match answer.answers.last().map(|r| &r.data) {
            Some(RData::CNAME(cname)) => cname.0.clone(),
            _ => return local(answer, None, "."),
        };
        // CoreDNS looks the target up through the whole server, whichever block
        // asked: the cluster zones answer it wherever the template is.
        let root = self.zone.load();
        if root.zone_of(&target).is_some() {
            let found = answer::answer(&root, snapshot, &target, qtype);
            if found.rcode == ResponseCode::NoError {
                answer.answers.extend(found.answers);
            }
            return local(answer, None, ".");
        }
        let chase = self.external_target(&answer, qtype);
        local(answer, chase, ".")
    }

    /// The name an answer's CNAME chain ends at, when it leaves our zones and the
    /// question wants more than the CNAME.
    fn external_target(&self, answer: &Answer, qtype: RecordType) -> Option<Name> {
        if qtype == RecordType::CNAME || answer.rcode != ResponseCode::NoError {
            return None;
        }
        let last = answer.answers.last()?;
        let RData::CNAME(cname) = &last.data else {
            return None;
        };
        let forwarding = self.forwarding.load();
        let ours = self.zone.load().is_authoritative_for(&cname.0);
        (forwarding.is_some() && !ours).then(|| cname.0.clone())
    }

    /// Marks a query in flight until the guard is dropped (graceful shutdown waits for it).
    pub fn in_flight_guard(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.in_flight.clone())
    }

    /// Rotates runs of A and AAAA records so clients spread their load
    /// (CoreDNS `loadbalance`); CNAMEs stay in front.
    fn rotate(&self, records: &mut [Record]) {
        if let Some((start, run, by)) = self.rotation_of(records) {
            records[start..start + run].rotate_left(by);
            self.rotation_taken();
        }
    }

    /// Where [`Self::rotate`] would turn `records` (start and length of the
    /// address run, and by how much); `None` for no rotation. The turn is taken
    /// by [`Self::rotation_taken`] once the answer is written, so an answer the
    /// fast path passes on to the async handler does not turn twice.
    pub(super) fn rotation_of(&self, records: &[Record]) -> Option<(usize, usize, usize)> {
        if !self.loadbalance {
            return None;
        }
        let is_address = |r: &Record| matches!(r.record_type(), RecordType::A | RecordType::AAAA);
        let start = records.iter().position(is_address)?;
        let run = records[start..]
            .iter()
            .take_while(|r| is_address(r))
            .count();
        (run > 1).then(|| (start, run, self.rotation.load(Ordering::Relaxed) % run))
    }

    pub(super) fn rotation_taken(&self) {
        self.rotation.fetch_add(1, Ordering::Relaxed);
    }

    /// The metrics registry the handler counts into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// A forwarded question's reply: from the cache, else from the upstreams
    /// (and then cached).
    /// `via`: the server block whose upstreams are asked.
    async fn forward(
        &self,
        question: &Question,
        via: Option<&Name>,
    ) -> Result<Answer, ResponseCode> {
        let shared = self.forwarding.load_full();
        let Some(forwarding) = shared.as_ref() else {
            return Err(ResponseCode::Refused);
        };
        // Upstreams may not speak for our zones: their records there are dropped;
        // except for the zone of a name that fell through to them (`fallthrough`),
        // and in a block of its own, which has no cluster zone (CoreDNS passes
        // on what its upstreams say).
        let config = self.zone.load();
        let qname = question.query.name();
        let fell_through = config.falls_through(qname);
        let zones: Vec<Name> = config
            .cluster_zones()
            .filter(|zone| via.is_none() && !(fell_through && zone.zone_of(qname)))
            .cloned()
            .collect();
        let mut stale = None;
        // A block of its own's answers are never cached (see `Forwarding::fetch`).
        if let Some(cache) = forwarding.cache.as_ref().filter(|_| via.is_none()) {
            if let Some(hit) = cache.get(question) {
                let stats = self.cache_stats();
                if !hit.is_stale() || !cache.options().verify_stale {
                    stats.hit(hit.kind());
                    if hit.is_stale() {
                        stats.served_stale();
                    } else if hit.prefetch_due() {
                        stats.prefetched();
                    }
                    // `serve_stale` (immediate) and `prefetch`: answer now, fetch anew behind.
                    let answer = hit.answer();
                    if (hit.is_stale() || hit.prefetch_due()) && hit.claim_refresh() {
                        let via = via.cloned();
                        refresh_later(shared.clone(), question.clone(), (zones, via), hit);
                    }
                    return Ok(answer);
                }
                // `serve_stale ... verify`: the upstreams first, the stale answer if they fail.
                stale = Some(hit);
            } else {
                self.cache_stats().miss(cache);
            }
        }
        match forwarding.fetch(question, &zones, via).await {
            Ok((reply, inserted)) => {
                // The same TTLs as the cached copies will show.
                let cap = forwarding
                    .cache
                    .as_ref()
                    .filter(|_| via.is_none())
                    .map(|cache| {
                        if inserted {
                            self.cache_stats().entries(cache);
                        }
                        cache.cap_of(&reply)
                    });
                let mut answer = Answer::from_upstream(reply);
                if let Some(cap) = cap {
                    for record in answer.records_mut() {
                        record.ttl = record.ttl.min(cap);
                    }
                }
                Ok(answer)
            }
            Err(error) => {
                tracing::debug!(%error, name = %question.query.name(), "forwarding failed");
                match stale {
                    Some(hit) => {
                        let stats = self.cache_stats();
                        stats.hit(hit.kind());
                        stats.served_stale();
                        Ok(hit.answer())
                    }
                    None => Err(forward::failure_rcode(&error)),
                }
            }
        }
    }
}

/// Fetches `question` anew in the background and caches the reply (`prefetch`,
/// `serve_stale`); a failure lets the next query try again.
fn refresh_later(
    forwarding: Arc<Option<forward::Forwarding>>,
    question: Question,
    (zones, via): (Vec<Name>, Option<Name>),
    hit: forward::cache::Hit,
) {
    tokio::spawn(async move {
        let Some(forwarding) = forwarding.as_ref() else {
            return;
        };
        if let Err(error) = forwarding.fetch(&question, &zones, via.as_ref()).await {
            tracing::debug!(%error, name = %question.query.name(), "refreshing a cached answer failed");
            hit.release_refresh();
        }
    });
}

fn local(answer: Answer, chase: Option<Name>, zone_label: &'static str) -> Decision {
    Decision::Local {
        answer,
        chase,
        zone_label,
    }
}

/// What the answering policy says about one question ([`DnsHandler::decide`]).
pub(crate) enum Decision {
    /// Refused: another class, a zone transfer, a relative name.
    Refused,
    /// Our own loop probe came back: SERVFAIL, and never forwarded again.
    LoopProbe,
    /// Asked of the upstreams (or the cache); the zone label is for the metrics
    /// (`.`, or a reverse zone that falls through).
    Forward { zone_label: &'static str },
    /// Answered from our zones, with `chase` when an ExternalName leads out of
    /// them (its target is resolved upstream, as CoreDNS does).
    Local {
        answer: Answer,
        chase: Option<Name>,
        zone_label: &'static str,
    },
}

impl Decision {
    /// The same decision, counted under another zone label.
    fn counted_under(self, label: &'static str) -> Decision {
        match self {
            Decision::Forward { .. } => Decision::Forward { zone_label: label },
            Decision::Local { answer, chase, .. } => Decision::Local {
                answer,
                chase,
                zone_label: label,
            },
            other => other,
        }
    }
}

/// The rcode for a request that cannot be asked at all: BADVERS for EDNS above
/// version 0, NOTIMP for an opcode other than QUERY, FORMERR for a question
/// count other than one.
fn protocol_error(request: &Request) -> Option<ResponseCode> {
    if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
        Some(ResponseCode::BADVERS)
    } else if request.metadata.op_code != OpCode::Query {
        Some(ResponseCode::NotImp)
    } else if request.queries.len() != 1 {
        Some(ResponseCode::FormErr)
    } else {
        None
    }
}

/// The response's EDNS: the payload clamped, version 0, the DO bit copied
/// (RFC 3225).
fn response_edns(request: &Request, bufsize: u16) -> Option<Edns> {
    request.edns.as_ref().map(|client| {
        let mut edns = Edns::new();
        edns.set_max_payload(client.max_payload().clamp(512, bufsize));
        edns.set_version(0);
        edns.set_dnssec_ok(client.flags().dnssec_ok);
        edns
    })
}

fn rcode_only(request: &Request, code: ResponseCode) -> Metadata {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = code;
    metadata
}

impl DnsHandler {
    /// The answer to a request's one question, acting on [`Self::decide`]; also
    /// returns the zone label for the metrics.
    async fn respond(&self, request: &Request, query: &Query) -> (Answer, &'static str) {
        // CoreDNS picks the server block by the name asked, then runs its plugins.
        let zone = crate::answer::ZoneConfig::block_of(&self.zone.load_full(), query.name());
        // CoreDNS's `rewrite` comes before `template`, `hosts`, `kubernetes` and `forward`.
        let Some(rewritten) = zone.rewrite(query.name()) else {
            return self.respond_to(request, query, &zone).await;
        };
        let Some(name) = rewritten.name.clone() else {
            tracing::debug!(name = %query.name(), "invalid name after rewrite");
            return (Answer::code(ResponseCode::ServFail), ".");
        };
        let mut asked = query.clone();
        asked.set_name(name);
        let (mut answer, zone_label) = self.respond_to(request, &asked, &zone).await;
        rewritten.revert_answer(&mut answer);
        (answer, zone_label)
    }

    /// [`Self::respond`] for the question as the rules left it, in its block.
    async fn respond_to(
        &self,
        request: &Request,
        query: &Query,
        zone: &ZoneConfig,
    ) -> (Answer, &'static str) {
        let (qname, qtype) = (query.name(), query.query_type());
        let decision = {
            let snapshot = self.snapshot.load();
            let question = (qname, qtype, query.query_class());
            let transport = match request.protocol() {
                Protocol::Udp => Transport::Udp,
                _ => Transport::Tcp,
            };
            self.decide(zone, &snapshot, question, (request.src(), transport))
        };
        match decision {
            Decision::Refused => {
                tracing::debug!(src = %request.src(), %qtype, class = %query.query_class(), "refused");
                (Answer::code(ResponseCode::Refused), ".")
            }
            Decision::LoopProbe => {
                self.loop_probe.seen();
                (Answer::code(ResponseCode::ServFail), ".")
            }
            Decision::Forward { zone_label } => {
                let question = self.question(request, query.clone());
                (
                    self.forwarded(&question, zone.route.as_ref()).await,
                    zone_label,
                )
            }
            Decision::Local {
                mut answer,
                chase,
                zone_label,
            } => {
                if let Some(target) = chase {
                    let question = self.question(request, Query::query(target, qtype));
                    self.chase(&mut answer, question).await;
                }
                self.rotate(&mut answer.answers);
                (answer, zone_label)
            }
        }
    }

    /// The question to forward for `query`, with the request's flags.
    fn question(&self, request: &Request, query: Query) -> Question {
        Question {
            query,
            recursion_desired: request.metadata.recursion_desired,
            checking_disabled: request.metadata.checking_disabled,
            dnssec_ok: request.edns.as_ref().map(|e| e.flags().dnssec_ok),
        }
    }

    /// A forwarded question's answer, from the cache or the upstreams.
    async fn forwarded(&self, question: &Question, via: Option<&Name>) -> Answer {
        match self.forward(question, via).await {
            Ok(mut answer) => {
                self.rotate(&mut answer.answers);
                answer
            }
            Err(code) => Answer {
                recursion_available: true,
                ..Answer::code(code)
            },
        }
    }

    /// An ExternalName leading out of our zones: stub resolvers do not follow
    /// CNAMEs, so the target is resolved upstream (as CoreDNS does). A failed
    /// lookup leaves the CNAME alone, as CoreDNS does.
    async fn chase(&self, answer: &mut Answer, mut question: Question) {
        question.recursion_desired = true;
        // The target is looked up as a question of its own: a block's name by its block.
        let root = self.zone.load_full();
        let via = root.block_for(question.query.name()).route.clone();
        if let Ok(reply) = self.forward(&question, via.as_ref()).await
            && matches!(reply.rcode, ResponseCode::NoError | ResponseCode::NXDomain)
        {
            answer.rcode = reply.rcode;
            answer.answers.extend(reply.answers);
            if answer.authority.is_empty() {
                answer.authority = reply.authority;
            }
            answer.recursion_available = true;
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    /// Checks the message, hands the question to [`DnsHandler::respond`], sends
    /// and counts the response.
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let started = Instant::now();
        let _in_flight = self.in_flight_guard();
        let (bufsize, minimal) = {
            let zone = self.zone.load();
            let block = match request.queries.queries().first() {
                Some(query) => zone.block_for(query.name()),
                None => &zone,
            };
            (zone.bufsize, block.minimal)
        };
        let edns = response_edns(request, bufsize);
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &edns {
            builder.edns(edns);
        }
        let error = protocol_error(request);
        let (answer, zone_label) = match (error, request.queries.queries().first()) {
            (None, Some(query)) => self.respond(request, query.original()).await,
            (code, _) => {
                let code = code.unwrap_or(ResponseCode::FormErr);
                tracing::debug!(src = %request.src(), rcode = %code, "protocol error");
                (Answer::code(code), ".")
            }
        };
        let metadata = answer.header(
            Metadata::response_from_request(&request.metadata),
            request.metadata.authentic_data,
            edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
        );
        let [answers, authority, additionals] = answer.sections(minimal);
        let message = builder.build(
            metadata,
            answers.iter(),
            authority.iter(),
            std::iter::empty(),
            additionals.iter(),
        );
        let info = match response_handle.send_response(message).await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, src = %request.src(), "could not send a response");
                let mut metadata = rcode_only(request, ResponseCode::ServFail);
                metadata.authoritative = false;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        };
        let proto = match request.protocol() {
            Protocol::Udp => "udp",
            _ => "tcp",
        };
        let qtype = request
            .queries
            .queries()
            .first()
            .map_or(RecordType::Unknown(0), |q| q.query_type());
        self.record_metrics(
            zone_label,
            qtype,
            proto,
            request.src(),
            info.response_code,
            started,
        );
        info
    }
}

impl DnsHandler {
    /// CoreDNS's `log`: the line for this exchange, if a rule asks for one, on
    /// standard output.
    fn log_query(
        &self,
        (raw, request): (&[u8], &Request),
        reply: &[u8],
        transport: Transport,
        took: std::time::Duration,
    ) {
        let root = self.zone.load();
        if root.query_log.is_empty() && root.blocks.is_empty() {
            return;
        }
        let (Ok(asked), Ok(answered)) = (
            hickory_proto::op::Message::from_vec(raw),
            hickory_proto::op::Message::from_vec(reply),
        ) else {
            return;
        };
        // A block's names are logged by its own rules.
        let zone = match asked.queries.first() {
            Some(query) => root.block_for(query.name()),
            None => &root,
        };
        if zone.query_log.is_empty() {
            return;
        }
        let exchange = crate::querylog::Exchange {
            request: &asked,
            request_len: raw.len(),
            reply: &answered,
            reply_len: reply.len(),
            remote: request.src(),
            tcp: transport == Transport::Tcp,
            took,
        };
        if let Some(line) = zone.query_log.line(&exchange) {
            use std::io::Write;
            // One write per line under the lock: lines never interleave.
            let _ = writeln!(std::io::stdout().lock(), "[INFO] {line}");
        }
    }

    /// The async handler's reply to a datagram (forwarding, rare record types,
    /// protocol errors), encoded for UDP; `None` when nothing is to be sent.
    pub async fn answer_slow(&self, raw: Vec<u8>, src: SocketAddr) -> Option<Vec<u8>> {
        self.answer_slow_over(Transport::Udp, raw, src).await
    }

    /// The async handler's reply to a query that came over `transport` and that
    /// the fast path passed on, encoded for it (a TCP reply without its length
    /// prefix); `None` when nothing is to be sent.
    pub async fn answer_slow_over(
        &self,
        transport: Transport,
        raw: Vec<u8>,
        src: SocketAddr,
    ) -> Option<Vec<u8>> {
        let protocol = match transport {
            Transport::Udp => Protocol::Udp,
            Transport::Tcp => Protocol::Tcp,
        };
        match Request::from_bytes(raw.clone(), src, protocol) {
            Ok(request) => {
                if request.metadata.message_type == MessageType::Response {
                    return None;
                }
                let started = Instant::now();
                let reply = Captured::new(transport);
                self.handle_request::<_, TokioTime>(&request, reply.clone())
                    .await;
                let reply = reply.take();
                if let Some(bytes) = &reply {
                    self.log_query((&raw, &request), bytes, transport, started.elapsed());
                }
                reply
            }
            Err(_) => format_error(&raw),
        }
    }
}
