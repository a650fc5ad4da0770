//! The DNS front end: a hickory-server [`RequestHandler`] over our own index,
//! and the UDP/TCP sockets it serves on.

pub mod handover;
pub mod http;
pub mod precheck;
mod reply;
pub mod tcp;
pub mod udp;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use hickory_proto::op::Query;
use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;

use crate::answer::{self, Answer, ZoneConfig};
use crate::forward::cache::EntryKind;
use crate::forward::{self, Question, Reply};
use crate::index::{SharedSnapshot, Snapshot};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use crate::metrics::{
    self, CacheLabels, CacheMissLabels, DurationLabels, Metrics, RequestLabels, ResponseLabels,
    TypeLabel,
};

/// Largest UDP reply we send, whatever the client offers (DNS flag day 2020).
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// A TCP connection that sends nothing for this long is closed.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// UDP queries on their way through the async handler (forwarding) at once;
/// beyond, datagrams are dropped and clients retry.
const SLOW_PATH_LIMIT: usize = 4096;

pub use crate::forward::Forwarding;

/// The query that detects a forwarding loop: if it comes back to us, we are
/// our own upstream (CoreDNS `loop`).
pub struct LoopProbe {
    pub name: Name,
    seen: AtomicUsize,
}

impl LoopProbe {
    pub fn new() -> Self {
        let mut bytes = [0u8; 8];
        let _ = getrandom::fill(&mut bytes);
        let label = format!("loop-{:016x}", u64::from_be_bytes(bytes));
        let name = Name::from_ascii(format!("{label}.cluster-dns-loop-check.invalid."))
            .unwrap_or_else(|_| Name::root());
        LoopProbe {
            name,
            seen: AtomicUsize::new(0),
        }
    }

    pub fn times_seen(&self) -> usize {
        self.seen.load(Ordering::Relaxed)
    }
}

impl Default for LoopProbe {
    fn default() -> Self {
        Self::new()
    }
}

/// Metric label values that are fixed for the server's life.
struct Labels {
    server: &'static str,
    /// Served zones and their label text.
    zones: Vec<(Name, &'static str)>,
}

/// Answers queries from the current snapshot, forwarding the rest.
pub struct DnsHandler {
    zone: Arc<ArcSwap<ZoneConfig>>,
    snapshot: SharedSnapshot,
    forwarding: Arc<ArcSwap<Option<Forwarding>>>,
    metrics: Arc<Metrics>,
    labels: ArcSwap<Labels>,
    loadbalance: bool,
    rotation: AtomicUsize,
    loop_probe: Arc<LoopProbe>,
    in_flight: Arc<AtomicUsize>,
}

type MetricHandles = Vec<([usize; 7], Counter, Counter, Histogram)>;

/// Label combinations remembered per thread; beyond, the registry is asked each time.
const MAX_METRIC_HANDLES: usize = 256;

thread_local! {
    static METRIC_HANDLES: std::cell::RefCell<MetricHandles> = const { std::cell::RefCell::new(Vec::new()) };
    static CACHE_HIT_HANDLES: std::cell::RefCell<Vec<([usize; 3], Counter)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Counts a query as in flight until dropped.
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn leak(text: String) -> &'static str {
    // Label values live as long as the process; a handful per configuration.
    Box::leak(text.into_boxed_str())
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
        let server = leak(parts.server_label);
        let labels = Labels {
            server,
            zones: zone_labels(&parts.zone.load()),
        };
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
    /// handler the rest).
    pub(crate) fn decide(
        &self,
        zone: &ZoneConfig,
        snapshot: &Snapshot,
        qname: &Name,
        qtype: RecordType,
        qclass: DNSClass,
    ) -> Decision {
        if qclass != DNSClass::IN
            || matches!(qtype, RecordType::AXFR | RecordType::IXFR)
            || !qname.is_fqdn()
        {
            return Decision::Refused;
        }
        if qname.eq_ignore_root_case(&self.loop_probe.name)
            || qname.eq_ignore_root(&self.loop_probe.name)
        {
            return Decision::LoopProbe;
        }
        let Some(zone_name) = zone.zone_of(qname) else {
            return Decision::Forward { zone_label: "." };
        };
        let zone_label = self.zone_label(zone_name);
        let answer = answer::answer(zone, snapshot, qname, qtype);
        if answer.fallthrough && self.forwarding.load().is_some() {
            return Decision::Forward { zone_label };
        }
        let chase = self.external_target(zone, &answer, qtype);
        Decision::Local {
            answer,
            chase,
            zone_label,
        }
    }

    /// The name an answer's CNAME chain ends at, when it leaves our zones and the
    /// question wants more than the CNAME.
    fn external_target(
        &self,
        zone: &ZoneConfig,
        answer: &Answer,
        qtype: RecordType,
    ) -> Option<Name> {
        if qtype == RecordType::CNAME || answer.rcode != ResponseCode::NoError {
            return None;
        }
        let last = answer.answers.last()?;
        let RData::CNAME(cname) = &last.data else {
            return None;
        };
        let forwarding = self.forwarding.load();
        (forwarding.is_some() && !zone.is_authoritative_for(&cname.0)).then(|| cname.0.clone())
    }

    /// Marks a query in flight until the guard is dropped (graceful shutdown waits for it).
    pub fn in_flight_guard(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.in_flight.clone())
    }

    /// The metric label of a served zone.
    fn zone_label(&self, zone_name: &Name) -> &'static str {
        let labels = self.labels.load();
        match labels.zones.iter().find(|(z, _)| z == zone_name) {
            Some((_, label)) => label,
            None => {
                // A zone added by a reload: label it from the next query on.
                self.refresh_labels();
                "."
            }
        }
    }

    fn record_metrics(
        &self,
        zone: &'static str,
        qtype: RecordType,
        proto: &'static str,
        src: SocketAddr,
        rcode: ResponseCode,
        started: Instant,
    ) {
        let server = self.labels.load().server;
        let qtype = metrics::type_name(qtype);
        let family = if src.is_ipv4() { "1" } else { "2" };
        let rcode = metrics::rcode_name(rcode);
        // Label values are static strings, so their addresses identify them: a
        // per-thread list of handles spares the registry's hashing and locking.
        let key = [
            Arc::as_ptr(&self.metrics) as usize,
            server.as_ptr() as usize,
            zone.as_ptr() as usize,
            qtype.as_ptr() as usize,
            proto.as_ptr() as usize,
            family.as_ptr() as usize,
            rcode.as_ptr() as usize,
        ];
        let elapsed = started.elapsed().as_secs_f64();
        METRIC_HANDLES.with(|cell| {
            let mut handles = cell.borrow_mut();
            if let Some((_, requests, responses, duration)) =
                handles.iter().find(|(k, ..)| *k == key)
            {
                requests.inc();
                responses.inc();
                duration.observe(elapsed);
                return;
            }
            let requests = self
                .metrics
                .requests
                .get_or_create(&RequestLabels {
                    server,
                    zone,
                    view: "",
                    proto,
                    family,
                    qtype: TypeLabel { r#type: qtype },
                })
                .clone();
            let responses = self
                .metrics
                .responses
                .get_or_create(&ResponseLabels {
                    server,
                    zone,
                    view: "",
                    rcode,
                    plugin: "",
                })
                .clone();
            let duration = self
                .metrics
                .request_duration
                .get_or_create(&DurationLabels {
                    server,
                    zone,
                    view: "",
                    r#type: qtype,
                })
                .clone();
            requests.inc();
            responses.inc();
            duration.observe(elapsed);
            if handles.len() < MAX_METRIC_HANDLES {
                handles.push((key, requests, responses, duration));
            }
        });
    }

    /// Picks up new zones for the metric labels after a configuration reload.
    pub fn refresh_labels(&self) {
        let current = self.labels.load();
        let zones = zone_labels(&self.zone.load());
        if zones
            .iter()
            .map(|(z, _)| z)
            .ne(current.zones.iter().map(|(z, _)| z))
        {
            self.labels.store(Arc::new(Labels {
                server: current.server,
                zones,
            }));
        }
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
    fn rotation_of(&self, records: &[Record]) -> Option<(usize, usize, usize)> {
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

    fn rotation_taken(&self) {
        self.rotation.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets `coredns_cache_entries` from the cache's counts.
    fn report_cache_entries(&self, cache: &crate::forward::cache::Cache) {
        let server = self.labels.load().server;
        let (success, denial) = cache.counts();
        for (kind, count) in [("success", success), ("denial", denial)] {
            self.metrics
                .cache_entries
                .get_or_create(&CacheLabels {
                    server,
                    r#type: kind,
                    view: "",
                    zones: ".",
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// Counts a cache hit (CoreDNS `coredns_cache_hits_total`), through a
    /// per-thread handle as for the request metrics.
    fn count_cache_hit(&self, kind: EntryKind) {
        let kind = match kind {
            EntryKind::Success => "success",
            EntryKind::Denial => "denial",
        };
        let server = self.labels.load().server;
        let key = [
            Arc::as_ptr(&self.metrics) as usize,
            server.as_ptr() as usize,
            kind.as_ptr() as usize,
        ];
        CACHE_HIT_HANDLES.with(|cell| {
            let mut handles = cell.borrow_mut();
            if let Some((_, counter)) = handles.iter().find(|(k, _)| *k == key) {
                counter.inc();
                return;
            }
            let counter = self
                .metrics
                .cache_hits
                .get_or_create(&CacheLabels {
                    server,
                    r#type: kind,
                    view: "",
                    zones: ".",
                })
                .clone();
            counter.inc();
            if handles.len() < MAX_METRIC_HANDLES {
                handles.push((key, counter));
            }
        });
    }

    async fn forward(&self, question: &Question) -> Result<Reply, ResponseCode> {
        let forwarding = self.forwarding.load_full();
        let Some(forwarding) = forwarding.as_ref() else {
            return Err(ResponseCode::Refused);
        };
        let labels = self.labels.load();
        if let Some(cache) = &forwarding.cache {
            if let Some((cached, kind)) = cache.get(question) {
                self.count_cache_hit(kind);
                return Ok(cached);
            }
            self.metrics
                .cache_misses
                .get_or_create(&CacheMissLabels {
                    server: labels.server,
                    view: "",
                    zones: ".",
                })
                .inc();
            // A lookup may have dropped an expired entry.
            self.report_cache_entries(cache);
        }
        // Upstreams may not speak for our zones: their records there are dropped.
        let zones: Vec<Name> = self.zone.load().cluster_zones().cloned().collect();
        match forwarding.forwarder.forward(question, &zones).await {
            Ok(mut reply) => {
                if let Some(cache) = &forwarding.cache
                    && cache.insert(question, &reply)
                {
                    self.report_cache_entries(cache);
                }
                if let Some(cache) = &forwarding.cache {
                    // The same TTLs as the cached copies will show.
                    let cap = cache.max_ttl();
                    for record in reply
                        .answers
                        .iter_mut()
                        .chain(reply.authorities.iter_mut())
                        .chain(reply.additionals.iter_mut())
                    {
                        record.ttl = record.ttl.min(cap);
                    }
                }
                Ok(Reply::of(reply))
            }
            Err(error) => {
                tracing::debug!(%error, name = %question.query.name(), "forwarding failed");
                Err(forward::failure_rcode(&error))
            }
        }
    }
}

fn zone_labels(zone: &ZoneConfig) -> Vec<(Name, &'static str)> {
    zone.zone_names()
        .map(|z| (z.clone(), leak(z.to_string())))
        .collect()
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

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let started = Instant::now();
        let _in_flight = self.in_flight_guard();
        let response_edns = request.edns.as_ref().map(|client| {
            let mut edns = Edns::new();
            edns.set_max_payload(client.max_payload().clamp(512, MAX_UDP_PAYLOAD));
            edns.set_version(0);
            // RFC 3225: the DO bit is copied into the response.
            edns.set_dnssec_ok(client.flags().dnssec_ok);
            edns
        });
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &response_edns {
            builder.edns(edns);
        }

        let rcode_only = |code: ResponseCode| {
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = code;
            metadata
        };
        let early = if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            Some(ResponseCode::BADVERS)
        } else if request.metadata.op_code != OpCode::Query {
            Some(ResponseCode::NotImp)
        } else if request.queries.len() != 1 {
            Some(ResponseCode::FormErr)
        } else {
            None
        };
        if let Some(code) = early {
            tracing::debug!(src = %request.src(), rcode = %code, "protocol error");
        }
        let mut zone_label = ".";
        let result = match (early, request.queries.queries().first()) {
            (None, Some(query)) => {
                let qtype = query.query_type();
                let qname = query.original().name();
                let zone = self.zone.load();
                let snapshot = self.snapshot.load();
                let mut metadata = rcode_only(ResponseCode::NoError);
                let decision = self.decide(&zone, &snapshot, qname, qtype, query.query_class());
                let (mut answer, chase) = match decision {
                    Decision::Refused => {
                        tracing::debug!(src = %request.src(), %qtype, class = %query.query_class(), "refused");
                        let refused = Answer {
                            rcode: ResponseCode::Refused,
                            ..Answer::default()
                        };
                        (Some(refused), None)
                    }
                    Decision::LoopProbe => {
                        self.loop_probe.seen.fetch_add(1, Ordering::Relaxed);
                        let failed = Answer {
                            rcode: ResponseCode::ServFail,
                            ..Answer::default()
                        };
                        (Some(failed), None)
                    }
                    Decision::Forward { zone_label: label } => {
                        zone_label = label;
                        (None, None)
                    }
                    Decision::Local {
                        answer,
                        chase,
                        zone_label: label,
                    } => {
                        zone_label = label;
                        (Some(answer), chase)
                    }
                };
                let mut forwarded = None;
                if answer.is_none() {
                    let question = Question {
                        query: query.original().clone(),
                        recursion_desired: request.metadata.recursion_desired,
                        checking_disabled: request.metadata.checking_disabled,
                        dnssec_ok: request.edns.as_ref().map(|e| e.flags().dnssec_ok),
                    };
                    metadata.recursion_available = true;
                    match self.forward(&question).await {
                        Ok(mut reply) => {
                            self.rotate(&mut reply.answers);
                            metadata.response_code = reply.rcode;
                            metadata.authentic_data = reply.authentic_data
                                && (request.metadata.authentic_data
                                    || question.dnssec_ok == Some(true));
                            forwarded = Some(reply);
                        }
                        Err(code) => metadata.response_code = code,
                    }
                }
                if let Some(answer) = &mut answer {
                    // An ExternalName leading out of our zones: stub resolvers do not
                    // follow CNAMEs, so resolve the target upstream (as CoreDNS does).
                    if let Some(target) = chase {
                        let question = Question {
                            query: Query::query(target, qtype),
                            recursion_desired: true,
                            checking_disabled: request.metadata.checking_disabled,
                            dnssec_ok: request.edns.as_ref().map(|e| e.flags().dnssec_ok),
                        };
                        // A failed lookup leaves the CNAME alone, as CoreDNS does.
                        if let Ok(reply) = self.forward(&question).await
                            && matches!(reply.rcode, ResponseCode::NoError | ResponseCode::NXDomain)
                        {
                            answer.rcode = reply.rcode;
                            answer.answers.extend(reply.answers);
                            if answer.authority.is_empty() {
                                answer.authority = reply.authorities;
                            }
                            metadata.recursion_available = true;
                        }
                    }
                    self.rotate(&mut answer.answers);
                    metadata.response_code = answer.rcode;
                    metadata.authoritative = answer.authoritative;
                }
                let empty: &[Record] = &[];
                let (answers, authorities, additionals) = match (&answer, &forwarded) {
                    (Some(a), _) => (&a.answers[..], &a.authority[..], &a.additionals[..]),
                    (None, Some(f)) => (&f.answers[..], &f.authorities[..], &f.additionals[..]),
                    (None, None) => (empty, empty, empty),
                };
                let response = builder.build(
                    metadata,
                    answers.iter(),
                    authorities.iter(),
                    std::iter::empty(),
                    additionals.iter(),
                );
                response_handle.send_response(response).await
            }
            (code, _) => {
                let metadata = rcode_only(code.unwrap_or(ResponseCode::FormErr));
                response_handle
                    .send_response(builder.build_no_records(metadata))
                    .await
            }
        };
        let info = match result {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, src = %request.src(), "could not send a response");
                let mut metadata = rcode_only(ResponseCode::ServFail);
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

/// UDP sockets (one per worker, `SO_REUSEPORT`) and a TCP listener on one address.
pub struct Listener {
    pub udp: Vec<std::net::UdpSocket>,
    pub tcp: TcpListener,
}

impl Listener {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self.udp.first() {
            Some(socket) => socket.local_addr(),
            None => self.tcp.local_addr(),
        }
    }
}

/// Big buffers ride out bursts without drops.
const SOCKET_BUFFER: usize = 4 << 20;

fn udp_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    if addr.is_ipv6() {
        // So that `[::]:53` and `0.0.0.0:53` can both be listened on.
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_port(true)?;
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.bind(&addr.into())?;
    let socket: std::net::UdpSocket = socket.into();
    socket.set_read_timeout(Some(udp::RECEIVE_TICK))?;
    Ok(socket)
}

fn tcp_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// UDP workers: one per core the process may run on.
pub fn udp_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Binds `workers` UDP sockets and a TCP listener on `addr`. With port 0, all get
/// the same free port.
pub async fn bind(addr: SocketAddr, workers: usize) -> std::io::Result<Listener> {
    if addr.port() != 0 {
        // TCP first: a port another process listens on fails here, before any UDP
        // socket joins (and, closed again, disturbs) that process's reuseport group.
        let tcp = tcp_listener(addr)?;
        let mut udp = Vec::new();
        for _ in 0..workers.max(1) {
            udp.push(udp_socket(addr)?);
        }
        return Ok(Listener { udp, tcp });
    }
    let mut last_error = None;
    for _ in 0..20 {
        let first = udp_socket(addr)?;
        let chosen = first.local_addr()?;
        let mut udp = vec![first];
        let mut failed = None;
        for _ in 1..workers.max(1) {
            match udp_socket(chosen) {
                Ok(socket) => udp.push(socket),
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            }
        }
        if let Some(error) = failed {
            last_error = Some(error);
            continue;
        }
        // Port 0: the free port UDP got may be taken for TCP; try another.
        match tcp_listener(chosen) {
            Ok(tcp) => return Ok(Listener { udp, tcp }),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no free port")))
}

/// The sockets for `addr`: those the previous process served on when it handed
/// them over (plus more UDP sockets if this process has more workers), else new ones.
pub async fn bind_or_inherit(
    addr: SocketAddr,
    workers: usize,
    inherited: &mut handover::Inherited,
) -> std::io::Result<Listener> {
    let mut udp = inherited.take_udp(addr);
    let tcp = inherited.take_listener(handover::Role::Tcp, addr)?;
    let chosen = match (udp.first(), &tcp) {
        (Some(socket), _) => socket.local_addr()?,
        (None, Some(listener)) => listener.local_addr()?,
        (None, None) => return bind(addr, workers).await,
    };
    for socket in &udp {
        socket.set_read_timeout(Some(udp::RECEIVE_TICK))?;
    }
    while udp.len() < workers.max(1) {
        udp.push(udp_socket(chosen)?);
    }
    let tcp = match tcp {
        Some(listener) => listener,
        None => tcp_listener(chosen)?,
    };
    Ok(Listener { udp, tcp })
}

/// The running DNS front end.
pub struct Running {
    tcp: tcp::TcpServer,
    stop: Arc<AtomicBool>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting TCP connections; those open go on.
    pub fn stop_accepting(&self) {
        self.tcp.stop_accepting();
    }

    /// Stops receiving UDP and waits for the workers (queries they handed to the
    /// async side may still be in flight).
    pub async fn stop_receiving(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let workers = std::mem::take(&mut self.workers);
        let _ = tokio::task::spawn_blocking(move || {
            for worker in workers {
                let _ = worker.join();
            }
        })
        .await;
    }

    /// Stops everything: UDP workers, then the TCP listeners; TCP connections
    /// answer the queries they have read, then close.
    pub async fn shutdown(mut self) -> Result<(), String> {
        self.stop_receiving().await;
        self.tcp.shutdown().await;
        Ok(())
    }
}

/// Limits of the DNS-over-TCP side.
#[derive(Debug, Clone, Copy)]
pub struct TcpSettings {
    /// Connections at once (bounded further by the descriptor limit).
    pub max_connections: usize,
    /// Queries per connection before it is closed; 0 for no cap.
    pub max_queries: usize,
}

impl Default for TcpSettings {
    fn default() -> Self {
        TcpSettings {
            max_connections: tcp::DEFAULT_MAX_CONNECTIONS,
            max_queries: tcp::DEFAULT_MAX_QUERIES,
        }
    }
}

/// Runs a UDP worker until `stop`; a panic (a bug) is logged and the loop starts
/// again, so the clients `SO_REUSEPORT` hashes to this socket keep getting answers.
fn serve_socket_forever(
    socket: Arc<std::net::UdpSocket>,
    handler: Arc<DnsHandler>,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
    permits: Arc<tokio::sync::Semaphore>,
) {
    let metrics = handler.metrics.clone();
    while !stop.load(Ordering::Relaxed) {
        let (socket, handler, runtime, stop, permits) = (
            socket.clone(),
            handler.clone(),
            runtime.clone(),
            stop.clone(),
            permits.clone(),
        );
        let served =
            metrics.catch_panic(move || udp::serve_socket(socket, handler, runtime, stop, permits));
        if served.is_err() {
            tracing::error!("a UDP worker panicked (a bug; please report it); restarting it");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Starts serving on the listeners: a thread per UDP socket, a task per TCP connection.
pub fn start(
    handler: DnsHandler,
    listeners: Vec<Listener>,
    tcp_settings: TcpSettings,
) -> std::io::Result<Running> {
    let handler = Arc::new(handler);
    let runtime = tokio::runtime::Handle::current();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tcp_listeners = Vec::new();
    let mut workers = Vec::new();
    let slow_permits = Arc::new(tokio::sync::Semaphore::new(SLOW_PATH_LIMIT));
    for listener in listeners {
        for socket in listener.udp {
            let (handler, runtime, stop) = (handler.clone(), runtime.clone(), stop.clone());
            let permits = slow_permits.clone();
            let socket = Arc::new(socket);
            workers.push(
                std::thread::Builder::new()
                    .name("dns-udp".into())
                    .spawn(move || serve_socket_forever(socket, handler, runtime, stop, permits))?,
            );
        }
        tcp_listeners.push(listener.tcp);
    }
    let max_connections = tcp::connection_cap(tcp_settings.max_connections);
    if max_connections < tcp_settings.max_connections {
        tracing::info!(
            max_connections,
            "TCP connections capped at a quarter of the file descriptor limit"
        );
    }
    let limits = tcp::ConnectionLimits {
        idle_timeout: TCP_IDLE_TIMEOUT,
        max_queries: tcp_settings.max_queries,
    };
    let tcp = tcp::TcpServer::start(tcp_listeners, handler, max_connections, limits);
    Ok(Running { tcp, stop, workers })
}
