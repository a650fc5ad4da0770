//! Forwarding what our zones do not answer to upstream resolvers (CoreDNS
//! `forward`): UDP first, TCP when the answer is truncated, failover between
//! upstreams, a bound on queries in flight, and a cache in front (`cache`).

pub mod cache;
mod loop_probe;
pub mod options;
pub mod resolv_conf;
pub mod stats;
pub mod tls;

pub use loop_probe::{LoopProbe, find_loop};
pub use options::{ForwardOptions, Policy};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Semaphore;

use crate::config::{Settings, Upstreams};
use crate::metrics::Metrics;
use cache::Cache;

/// EDNS payload we offer upstream.
const UPSTREAM_PAYLOAD: u16 = 1232;
/// Longest a health check waits for its answer (CoreDNS's `hcReadTimeout`).
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// How long an upstream has to answer before the next one is asked as well
/// (hedging): dead upstreams cost this much each, not a whole timeout.
const HEDGE_AFTER: Duration = Duration::from_millis(200);

/// What a forwarded question carries from the client.
#[derive(Clone, Debug)]
pub struct Question {
    pub query: Query,
    pub recursion_desired: bool,
    pub checking_disabled: bool,
    /// The client's EDNS DO bit; `None` if the client sent no OPT record.
    pub dnssec_ok: Option<bool>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ForwardError {
    #[error("too many queries in flight")]
    Busy,
    #[error("no upstream answered")]
    AllFailed,
    #[error("no upstream resolvers configured")]
    NoUpstreams,
}

struct Upstream {
    addr: SocketAddr,
    label: String,
    /// Failed health checks in a row (CoreDNS counts these, not failed queries).
    fails: AtomicU32,
    /// Whether a health check loop runs for this upstream.
    checking: AtomicBool,
}

pub struct Forwarder {
    upstreams: Vec<Arc<Upstream>>,
    options: Arc<ForwardOptions>,
    timeout: Duration,
    permits: Semaphore,
    rotation: AtomicUsize,
    metrics: Arc<Metrics>,
}

impl Forwarder {
    pub fn new(
        upstreams: &[SocketAddr],
        options: Arc<ForwardOptions>,
        (timeout, max_concurrent): (Duration, usize),
        metrics: Arc<Metrics>,
    ) -> Self {
        Forwarder {
            upstreams: upstreams
                .iter()
                .map(|addr| {
                    Arc::new(Upstream {
                        addr: *addr,
                        label: format!("{addr}"),
                        fails: AtomicU32::new(0),
                        checking: AtomicBool::new(false),
                    })
                })
                .collect(),
            options,
            timeout,
            permits: Semaphore::new(max_concurrent),
            rotation: AtomicUsize::new(0),
            metrics,
        }
    }

    pub fn upstreams(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.upstreams.iter().map(|u| u.addr)
    }

    pub fn options(&self) -> &ForwardOptions {
        &self.options
    }

    /// Upstreams in the order to try: those up in the policy's order, then those down.
    fn order(&self) -> Vec<&Upstream> {
        let turn = self.rotation.fetch_add(1, Ordering::Relaxed);
        let random = if self.options.policy == Policy::Random {
            random_u64()
        } else {
            0
        };
        let order = options::order(self.options.policy, self.upstreams.len(), turn, random);
        let (up, down): (Vec<&Upstream>, Vec<&Upstream>) = order
            .into_iter()
            .map(|i| &*self.upstreams[i])
            .partition(|u| !self.options.down(u.fails.load(Ordering::Relaxed)));
        up.into_iter().chain(down).collect()
    }

    /// Asks the upstreams, hedged: the first in order at once, the next one
    /// when the previous has not answered within `HEDGE_AFTER` or has failed;
    /// the first valid answer wins and the other exchanges are dropped. Records
    /// owned by names in `zones` (our cluster zones) never come from upstream.
    pub async fn forward(
        &self,
        question: &Question,
        zones: &[Name],
    ) -> Result<Message, ForwardError> {
        if self.upstreams.is_empty() {
            return Err(ForwardError::NoUpstreams);
        }
        let Ok(_permit) = self.permits.try_acquire() else {
            self.metrics.forward_max_concurrent_rejects.inc();
            return Err(ForwardError::Busy);
        };
        let order = self.order();
        let hedge_after = HEDGE_AFTER.min(self.timeout);
        let how = (self.timeout, &*self.options);
        let attempt = |i: usize| {
            let addr = order[i].addr;
            async move {
                let started = Instant::now();
                (i, started, exchange(addr, question, how, zones).await)
            }
        };
        let mut attempts = FuturesUnordered::new();
        // When each launched attempt started; `None` once it has ended.
        let mut running: Vec<Option<Instant>> = vec![None; order.len()];
        let mut next = 0;
        // Each turn follows the start, a failure or a hedge timer running out:
        // each is a reason to ask the next upstream.
        loop {
            if next < order.len() {
                running[next] = Some(Instant::now());
                attempts.push(attempt(next));
                next += 1;
            }
            if attempts.is_empty() {
                return Err(ForwardError::AllFailed);
            }
            let more_to_start = next < order.len();
            let hedge_timer = async {
                if more_to_start {
                    tokio::time::sleep(hedge_after).await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                Some((i, started, result)) = attempts.next() => {
                    let launched = running[i].take();
                    match result {
                        Ok(reply) => {
                            let upstream = order[i];
                            self.metrics.observe_forward(
                                &upstream.label,
                                reply.metadata.response_code,
                                started.elapsed(),
                            );
                            // Those asked before the winner had longer and did not
                            // answer: that counts against them, as a timeout would.
                            for (j, since) in running.iter().enumerate() {
                                if since.zip(launched).is_some_and(|(since, won)| since < won) {
                                    self.failed(order[j], &"overtaken by another upstream");
                                }
                            }
                            return Ok(reply);
                        }
                        Err(error) => self.failed(order[i], &error),
                    }
                }
                () = hedge_timer => {}
            }
        }
    }

    /// A query to `upstream` failed: health checks start (as CoreDNS starts
    /// them), unless `max_fails` is 0 or they already run.
    fn failed(&self, upstream: &Upstream, error: &dyn std::fmt::Display) {
        tracing::debug!(upstream = %upstream.addr, %error, "upstream failed");
        if self.options.max_fails == 0 || upstream.checking.swap(true, Ordering::Relaxed) {
            return;
        }
        let Some(shared) = self
            .upstreams
            .iter()
            .find(|u| std::ptr::eq(&***u, upstream))
        else {
            return;
        };
        let (upstream, options) = (Arc::downgrade(shared), self.options.clone());
        let (metrics, timeout) = (self.metrics.clone(), self.timeout.min(HEALTH_CHECK_TIMEOUT));
        tokio::spawn(health_checks(upstream, options, metrics, timeout));
    }
}

/// Checks `upstream` every `health_check` until it answers (any reply will do,
/// as in CoreDNS), counting the failures in a row: more than `max_fails` and
/// it is down. Ends when the forwarder it belongs to is gone.
async fn health_checks(
    upstream: std::sync::Weak<Upstream>,
    options: Arc<ForwardOptions>,
    metrics: Arc<Metrics>,
    timeout: Duration,
) {
    let question = Question {
        query: Query::query(options.health_check_name.clone(), RecordType::NS),
        recursion_desired: options.health_check_recursion,
        checking_disabled: false,
        dnssec_ok: None,
    };
    loop {
        let Some(up) = upstream.upgrade() else {
            return;
        };
        let exchanged = exchange(up.addr, &question, (timeout, &options), &[]).await;
        match exchanged {
            Ok(_) => {
                if options.down(up.fails.swap(0, Ordering::Relaxed)) {
                    tracing::info!(upstream = %up.addr, "upstream answers again");
                }
                up.checking.store(false, Ordering::Relaxed);
                return;
            }
            Err(error) => {
                metrics.forward_failure(&up.label);
                let fails = up.fails.fetch_add(1, Ordering::Relaxed) + 1;
                if options.down(fails) && !options.down(fails - 1) {
                    tracing::warn!(upstream = %up.addr, %error, "upstream is failing; trying the others first");
                }
            }
        }
        drop(up);
        tokio::time::sleep(options.health_check).await;
    }
}

#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("bad reply: {0}")]
    BadReply(String),
}

fn random_id() -> u16 {
    let mut bytes = [0u8; 2];
    if getrandom::fill(&mut bytes).is_err() {
        // The OS has no randomness to give: fall back to the clock's noise.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        return (nanos ^ (nanos >> 16)) as u16;
    }
    u16::from_be_bytes(bytes)
}

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return u64::from(random_id()) << 16 | u64::from(random_id());
    }
    u64::from_be_bytes(bytes)
}

fn request(question: &Question) -> Message {
    let mut message = Message::new(random_id(), MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = question.recursion_desired;
    message.metadata.checking_disabled = question.checking_disabled;
    message.add_query(question.query.clone());
    let mut edns = Edns::new();
    edns.set_max_payload(UPSTREAM_PAYLOAD);
    edns.set_dnssec_ok(question.dnssec_ok.unwrap_or(false));
    message.set_edns(edns);
    message
}

/// The upstream's reply to our query `query` with ID `id`, if `bytes` is one:
/// it parses, is a response with that ID and the same question (name in any
/// case, same type and class), and then keeps only what may pass through.
/// This is exactly what the UDP and TCP exchanges do with each message they
/// receive; anything else is dropped and the exchange keeps waiting.
#[doc(hidden)]
pub fn accept_reply(query: &Query, id: u16, bytes: &[u8], zones: &[Name]) -> Option<Message> {
    let mut reply = Message::from_vec(bytes).ok()?;
    if reply.metadata.id != id
        || reply.metadata.message_type != MessageType::Response
        || reply.metadata.op_code != OpCode::Query
    {
        return None;
    }
    let rcode = reply.metadata.response_code;
    match reply.queries.as_slice() {
        // Some servers send REFUSED, FORMERR or NOTIMP without the question: still an answer.
        [] if !matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain) => {}
        [asked] if same_question(asked, query) => {}
        _ => return None,
    }
    keep_in_bailiwick(&mut reply, query, zones);
    Some(reply)
}

fn same_question(asked: &Query, query: &Query) -> bool {
    // Names compare case-insensitively; a resolver may change the case (0x20).
    asked.name().eq_ignore_root(query.name())
        && asked.query_type() == query.query_type()
        && asked.query_class() == query.query_class()
}

fn inside(zones: &[Name], name: &Name) -> bool {
    zones.iter().any(|zone| zone.zone_of(name))
}

/// Most names a CNAME chain may take; longer chains are cut (CoreDNS stops at 8).
const MAX_CHAIN: usize = 16;

/// The question's name and the CNAME targets it leads to in `answers`, in
/// order; the chain stops at a loop, at `MAX_CHAIN` or at a name in `zones`.
fn cname_chain(answers: &[Record], query: &Query, zones: &[Name]) -> Vec<Name> {
    let mut chain = Vec::new();
    if inside(zones, query.name()) {
        return chain;
    }
    chain.push(query.name().clone());
    if matches!(query.query_type(), RecordType::CNAME) {
        return chain;
    }
    while chain.len() < MAX_CHAIN {
        let Some(last) = chain.last() else { break };
        let target = answers.iter().find_map(|r| match &r.data {
            RData::CNAME(cname)
                if r.name.eq_ignore_root(last) && r.dns_class == query.query_class() =>
            {
                Some(cname.0.clone())
            }
            _ => None,
        });
        match target {
            Some(target)
                if !inside(zones, &target) && !chain.iter().any(|n| n.eq_ignore_root(&target)) =>
            {
                chain.push(target);
            }
            _ => break,
        }
    }
    chain
}

/// Drops what an upstream has no business telling us about this question
/// (RFC 5452 section 6, bailiwick):
/// - answers: only the question's CNAME chain, each owner with its CNAME, the
///   asked type (any type for ANY) and their RRSIGs, of the asked class, in
///   chain order; a chain leading into our zones stops before it (we answer
///   those names);
/// - authority: only the SOA and NS of a zone holding a chain name (a denial's
///   SOA for the negative cache), and NSEC, NSEC3 and RRSIG below such a zone
///   (a validating client's proof of denial);
/// - additional: nothing; stub clients do not use glue, and EDNS (OPT) is
///   parsed apart from the records and answered with our own.
///
/// Records owned by names in `zones` never pass. Replies other than NOERROR
/// and NXDOMAIN keep no records at all.
fn keep_in_bailiwick(reply: &mut Message, query: &Query, zones: &[Name]) {
    reply.additionals.clear();
    reply.signature = None;
    if !matches!(
        reply.metadata.response_code,
        ResponseCode::NoError | ResponseCode::NXDomain
    ) {
        reply.answers.clear();
        reply.authorities.clear();
        return;
    }
    let chain = cname_chain(&reply.answers, query, zones);
    let on_chain = |name: &Name| chain.iter().any(|n| n.eq_ignore_root(name));
    let class = query.query_class();
    let qtype = query.query_type();
    reply.answers.retain(|r| {
        r.dns_class == class
            && on_chain(&r.name)
            && (qtype == RecordType::ANY
                || matches!(r.record_type(), RecordType::CNAME | RecordType::RRSIG)
                || r.record_type() == qtype)
    });
    // In chain order: stub resolvers (glibc) follow the chain as they read it.
    reply
        .answers
        .sort_by_key(|r| chain.iter().position(|n| n.eq_ignore_root(&r.name)));
    let zones_of_chain: Vec<Name> = reply
        .authorities
        .iter()
        .filter(|r| {
            matches!(r.record_type(), RecordType::SOA | RecordType::NS)
                && r.dns_class == class
                && !inside(zones, &r.name)
                && chain.iter().any(|n| r.name.zone_of(n))
        })
        .map(|r| r.name.clone())
        .collect();
    reply.authorities.retain(|r| {
        r.dns_class == class
            && !inside(zones, &r.name)
            && match r.record_type() {
                RecordType::SOA | RecordType::NS => chain.iter().any(|n| r.name.zone_of(n)),
                RecordType::NSEC | RecordType::NSEC3 | RecordType::RRSIG => {
                    zones_of_chain.iter().any(|zone| zone.zone_of(&r.name))
                }
                _ => false,
            }
    });
}

/// One question to one upstream: over UDP, again over TCP when the answer is
/// truncated; or over TCP only (`force_tcp`), or TLS (`tls://`).
async fn exchange(
    upstream: SocketAddr,
    question: &Question,
    (timeout, options): (Duration, &ForwardOptions),
    zones: &[Name],
) -> Result<Message, ExchangeError> {
    let request = request(question);
    let bytes = request
        .to_vec()
        .map_err(|e| ExchangeError::BadReply(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + timeout;
    let id = request.metadata.id;
    if let Some(tls) = &options.tls {
        return tokio::time::timeout_at(
            deadline,
            tls_exchange(upstream, tls, &bytes, (&question.query, id, zones)),
        )
        .await
        .map_err(|_| ExchangeError::Timeout)?;
    }
    if options.force_tcp {
        return tokio::time::timeout_at(
            deadline,
            tcp_exchange(upstream, &bytes, &question.query, id, zones),
        )
        .await
        .map_err(|_| ExchangeError::Timeout)?;
    }
    let udp = tokio::time::timeout_at(
        deadline,
        udp_exchange(upstream, &bytes, &question.query, id, zones),
    )
    .await
    .map_err(|_| ExchangeError::Timeout)??;
    if !udp.metadata.truncation {
        return Ok(udp);
    }
    // Too big for UDP: ask again over TCP, within what is left of the timeout.
    let request = {
        let mut again = request;
        again.metadata.id = random_id();
        again
    };
    let bytes = request
        .to_vec()
        .map_err(|e| ExchangeError::BadReply(e.to_string()))?;
    let id = request.metadata.id;
    tokio::time::timeout_at(
        deadline,
        tcp_exchange(upstream, &bytes, &question.query, id, zones),
    )
    .await
    .map_err(|_| ExchangeError::Timeout)?
}

async fn udp_exchange(
    upstream: SocketAddr,
    bytes: &[u8],
    query: &Query,
    id: u16,
    zones: &[Name],
) -> Result<Message, ExchangeError> {
    let local: SocketAddr = if upstream.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    // A fresh socket per query: the kernel picks a random ephemeral port, and
    // with the random ID a spoofer has ~2^32 guesses to make (RFC 5452 section 9).
    let socket = UdpSocket::bind(local).await?;
    // Connected: the kernel delivers only datagrams from the upstream's address
    // and port (and reports its ICMP errors, so a dead one fails at once).
    socket.connect(upstream).await?;
    socket.send(bytes).await?;
    // We offer 1232 bytes; a server that ignores that truncates at its own limit.
    let mut buf = vec![0u8; 4096];
    loop {
        let (len, from) = socket.recv_from(&mut buf).await?;
        // Anything but the reply to this query is dropped; keep waiting for it.
        if (from.ip(), from.port()) == (upstream.ip(), upstream.port())
            && let Some(reply) = accept_reply(query, id, &buf[..len], zones)
        {
            return Ok(reply);
        }
    }
}

async fn tcp_exchange(
    upstream: SocketAddr,
    bytes: &[u8],
    query: &Query,
    id: u16,
    zones: &[Name],
) -> Result<Message, ExchangeError> {
    let stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    framed_exchange(stream, bytes, (query, id, zones)).await
}

/// [`tcp_exchange`] inside a TLS session with the upstream, its certificate
/// checked against the configured name (or its address).
async fn tls_exchange(
    upstream: SocketAddr,
    tls: &tls::UpstreamTls,
    bytes: &[u8],
    asked: (&Query, u16, &[Name]),
) -> Result<Message, ExchangeError> {
    let stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    let session = tls
        .connector()
        .connect(tls.name_for(upstream), stream)
        .await?;
    framed_exchange(session, bytes, asked).await
}

/// Sends one length-prefixed query on `stream` and reads replies until ours.
async fn framed_exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    bytes: &[u8],
    (query, id, zones): (&Query, u16, &[Name]),
) -> Result<Message, ExchangeError> {
    let len =
        u16::try_from(bytes.len()).map_err(|_| ExchangeError::BadReply("query too long".into()))?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await?;
    loop {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut body).await?;
        // As over UDP, a message that is not our reply is skipped.
        if let Some(reply) = accept_reply(query, id, &body, zones) {
            return Ok(reply);
        }
    }
}

impl Forwarder {
    /// One exchange with one upstream, outside the failover and the concurrency bound.
    pub async fn probe(&self, upstream: SocketAddr, question: &Question) -> Option<Message> {
        exchange(upstream, question, (self.timeout, &self.options), &[])
            .await
            .ok()
    }
}

/// The rcode a client gets when forwarding fails.
pub fn failure_rcode(error: &ForwardError) -> ResponseCode {
    match error {
        // CoreDNS answers REFUSED past max_concurrent: a cheap, fast "try elsewhere".
        ForwardError::Busy => ResponseCode::Refused,
        ForwardError::AllFailed => ResponseCode::ServFail,
        ForwardError::NoUpstreams => ResponseCode::Refused,
    }
}

/// Forwarding and its cache, replaced as a whole when the configuration changes.
pub struct Forwarding {
    pub forwarder: Forwarder,
    /// Stub domains: zones with upstreams of their own, longest first.
    pub stubs: Vec<(Name, Forwarder)>,
    /// Server blocks of their own, by zone: asked only for their block's questions.
    pub blocks: Vec<(Name, Forwarder)>,
    pub cache: Option<Cache>,
    /// CoreDNS `loadbalance`: replies are put in its order before they are
    /// cached (the addresses then turn per answer).
    pub loadbalance: bool,
}

impl Forwarding {
    /// The forwarder for `name`: its stub domain's (the longest zone that holds
    /// it, as CoreDNS picks a server block), else the default one.
    pub fn forwarder_for(&self, name: &Name) -> &Forwarder {
        self.stubs
            .iter()
            .find(|(zone, _)| zone.zone_of(name))
            .map_or(&self.forwarder, |(_, forwarder)| forwarder)
    }

    /// The forwarder a question uses: its block's (`via`, a block's zone), else
    /// [`Self::forwarder_for`] its name (a name the root block rewrote into a
    /// block's zone stays with the root's upstreams, as in CoreDNS).
    pub fn route(&self, via: Option<&Name>, name: &Name) -> &Forwarder {
        via.and_then(|zone| self.blocks.iter().find(|(z, _)| z == zone))
            .map_or_else(|| self.forwarder_for(name), |(_, forwarder)| forwarder)
    }

    /// Asks the upstreams for `question` and caches their reply; the bool says
    /// whether it went into the cache. `via`: the server block whose upstreams
    /// are asked (else the question's name picks them).
    pub async fn fetch(
        &self,
        question: &Question,
        zones: &[Name],
        via: Option<&Name>,
    ) -> Result<(Message, bool), ForwardError> {
        let mut reply = self
            .route(via, question.query.name())
            .forward(question, zones)
            .await?;
        if self.loadbalance && reply.metadata.response_code == ResponseCode::NoError {
            for section in [
                &mut reply.answers,
                &mut reply.authorities,
                &mut reply.additionals,
            ] {
                crate::answer::loadbalance_order(section);
            }
        }
        // The cache is keyed by the question alone: a block of its own's answers
        // (its upstreams, no bailiwick guard) stay out of it.
        let inserted = via.is_none()
            && self
                .cache
                .as_ref()
                .is_some_and(|cache| cache.insert(question, &reply));
        Ok((reply, inserted))
    }
}

/// The resolv.conf's bytes (when the upstreams come from one) and the upstreams,
/// parsed from those same bytes, so a reload compares against what is in use.
pub fn read_upstreams(settings: &Settings) -> (Option<Vec<u8>>, Vec<SocketAddr>) {
    match &settings.upstreams {
        Upstreams::Listed(listed) => (None, listed.clone()),
        Upstreams::ResolvConf(path) => match std::fs::read(path) {
            Ok(bytes) => {
                let upstreams = resolv_conf::nameservers(&String::from_utf8_lossy(&bytes));
                (Some(bytes), upstreams)
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot read the resolv.conf for upstreams");
                (None, Vec::new())
            }
        },
    }
}

/// The forwarder to `upstreams`, with the settings' timeout, bound and cache.
pub fn forwarding(
    settings: &Settings,
    upstreams: &[SocketAddr],
    metrics: &Arc<Metrics>,
) -> Option<Forwarding> {
    if upstreams.is_empty() && settings.blocks.is_empty() {
        tracing::warn!("no upstream resolvers: names outside the cluster zones get REFUSED");
        return None;
    }
    let listed: Vec<String> = upstreams.iter().map(ToString::to_string).collect();
    tracing::info!(upstreams = %listed.join(" "), cache_ttl = settings.cache.success_ttl, "forwarding");
    let mut stubs: Vec<(Name, Forwarder)> = settings
        .stub_domains
        .iter()
        .map(|(zone, addrs)| {
            // A stub domain's block has a `forward` of its own, with CoreDNS's defaults.
            let forwarder = Forwarder::new(
                addrs,
                Arc::default(),
                (settings.forward_timeout, settings.max_concurrent),
                metrics.clone(),
            );
            (zone.clone(), forwarder)
        })
        .collect();
    // Server blocks of their own: their upstreams with their `forward` options.
    let mut blocks = Vec::new();
    for block in &settings.blocks {
        let addrs = match &block.upstreams {
            Upstreams::Listed(listed) => listed.clone(),
            // Read with the settings (at start and on reload), not watched.
            Upstreams::ResolvConf(path) => std::fs::read(path)
                .map(|bytes| resolv_conf::nameservers(&String::from_utf8_lossy(&bytes)))
                .unwrap_or_else(|error| {
                    tracing::warn!(path = %path.display(), %error, "cannot read a block's resolv.conf");
                    Vec::new()
                }),
        };
        for zone in &block.zones {
            let limits = (settings.forward_timeout, block.max_concurrent);
            let forwarder = Forwarder::new(&addrs, block.forward.clone(), limits, metrics.clone());
            blocks.push((zone.clone(), forwarder));
        }
    }
    stubs.sort_by_key(|(zone, _)| std::cmp::Reverse(zone.num_labels()));
    for (zone, forwarder) in &stubs {
        let listed: Vec<String> = forwarder.upstreams().map(|a| a.to_string()).collect();
        tracing::info!(%zone, upstreams = %listed.join(" "), "stub domain");
    }
    Some(Forwarding {
        forwarder: Forwarder::new(
            upstreams,
            settings.forward.clone(),
            (settings.forward_timeout, settings.max_concurrent),
            metrics.clone(),
        ),
        stubs,
        blocks,
        cache: (settings.cache.success_ttl > 0)
            .then(|| Cache::with_options(settings.cache.clone())),
        loadbalance: settings.loadbalance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::DNSClass;
    use hickory_proto::rr::rdata::{A, CNAME, NS, SOA};

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn zones() -> Vec<Name> {
        vec![name("cluster.local.")]
    }

    fn a(owner: &str, last: u8) -> Record {
        Record::from_rdata(name(owner), 60, RData::A(A::new(192, 0, 2, last)))
    }

    fn cname(owner: &str, target: &str) -> Record {
        Record::from_rdata(name(owner), 60, RData::CNAME(CNAME(name(target))))
    }

    fn soa(owner: &str) -> Record {
        let soa = SOA::new(name(owner), name(owner), 1, 60, 60, 60, 30);
        Record::from_rdata(name(owner), 60, RData::SOA(soa))
    }

    fn reply_to(query: &Query, id: u16) -> Message {
        let mut m = Message::new(id, MessageType::Response, OpCode::Query);
        m.add_query(query.clone());
        m
    }

    fn accept(query: &Query, id: u16, reply: &Message) -> Option<Message> {
        accept_reply(query, id, &reply.to_vec().unwrap(), &zones())
    }

    fn owners(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|r| format!("{} {}", r.name, r.record_type()))
            .collect()
    }

    #[test]
    fn only_the_reply_to_our_question_is_accepted() {
        let query = Query::query(name("www.example."), RecordType::A);
        let mut good = reply_to(&query, 7);
        good.add_answer(a("www.example.", 1));
        assert!(accept(&query, 7, &good).is_some());
        assert!(accept(&query, 8, &good).is_none(), "another ID");
        let mut not_response = good.clone();
        not_response.metadata.message_type = MessageType::Query;
        assert!(accept(&query, 7, &not_response).is_none());
        let mut other_class = good.clone();
        other_class.queries[0].query_class = DNSClass::CH;
        assert!(accept(&query, 7, &other_class).is_none(), "another class");
        let mut other_type = good.clone();
        other_type.queries[0].query_type = RecordType::AAAA;
        assert!(accept(&query, 7, &other_type).is_none(), "another type");
        let mut other_name = good.clone();
        other_name.queries[0].name = name("www.example.org.");
        assert!(accept(&query, 7, &other_name).is_none(), "another name");
        let mut two = good.clone();
        two.add_query(query.clone());
        assert!(accept(&query, 7, &two).is_none(), "two questions");
        // 0x20: the name's case may change.
        let mut cased = good.clone();
        cased.queries[0].name = name("WwW.ExAmPlE.");
        assert_eq!(accept(&query, 7, &cased).unwrap().answers.len(), 1);
        // An error without the question is an answer, with nothing in it.
        let mut refused = Message::new(7, MessageType::Response, OpCode::Query);
        refused.metadata.response_code = ResponseCode::Refused;
        refused.add_answer(a("www.example.", 6));
        let accepted = accept(&query, 7, &refused).unwrap();
        assert!(accepted.answers.is_empty());
        refused.metadata.response_code = ResponseCode::NoError;
        assert!(
            accept(&query, 7, &refused).is_none(),
            "NOERROR needs the question"
        );
    }

    #[test]
    fn broken_bytes_are_dropped() {
        let query = Query::query(name("www.example."), RecordType::A);
        let mut good = reply_to(&query, 7);
        good.add_answer(a("www.example.", 1));
        let bytes = good.to_vec().unwrap();
        for len in 0..bytes.len() {
            assert!(
                accept_reply(&query, 7, &bytes[..len], &[]).is_none(),
                "{len}"
            );
        }
        // A name that points at itself (a compression loop).
        let mut looped = bytes[..12].to_vec();
        looped[4..6].copy_from_slice(&1u16.to_be_bytes());
        looped[6..12].fill(0);
        looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert!(accept_reply(&query, 7, &looped, &[]).is_none());
    }

    #[test]
    fn only_the_cname_chain_outside_our_zones_is_kept() {
        let query = Query::query(name("www.example."), RecordType::A);
        let mut reply = reply_to(&query, 1);
        reply.answers = vec![
            a("target.example.", 1),
            a("web-0.nginx.default.svc.cluster.local.", 6),
            cname("WWW.example.", "target.example."),
            a("stranger.example.", 6),
            Record::from_rdata(name("www.example."), 60, RData::NS(NS(name("ns.evil.")))),
        ];
        reply.authorities = vec![
            soa("example."),
            soa("example.org."),
            soa("cluster.local."),
            a("www.example.", 6),
        ];
        reply.additionals = vec![a("ns.evil.", 6)];
        let accepted = accept(&query, 1, &reply).unwrap();
        assert_eq!(
            owners(&accepted.answers),
            vec!["WWW.example. CNAME", "target.example. A"]
        );
        assert_eq!(owners(&accepted.authorities), vec!["example. SOA"]);
        assert!(accepted.additionals.is_empty());

        // A chain into our zones stops before it; one that loops stops too.
        reply.answers = vec![
            cname("www.example.", "web-0.nginx.default.svc.cluster.local."),
            a("web-0.nginx.default.svc.cluster.local.", 6),
        ];
        let accepted = accept(&query, 1, &reply).unwrap();
        assert_eq!(owners(&accepted.answers), vec!["www.example. CNAME"]);
        reply.answers = vec![
            cname("www.example.", "b.example."),
            cname("b.example.", "www.example."),
        ];
        assert_eq!(accept(&query, 1, &reply).unwrap().answers.len(), 2);
        // Another class in a record.
        let mut chaos = a("www.example.", 6);
        chaos.dns_class = DNSClass::CH;
        reply.answers = vec![chaos];
        assert!(accept(&query, 1, &reply).unwrap().answers.is_empty());
        // A question in our zones takes nothing from upstream.
        let inside = Query::query(name("x.svc.cluster.local."), RecordType::A);
        let mut reply = reply_to(&inside, 1);
        reply.add_answer(a("x.svc.cluster.local.", 6));
        assert!(accept(&inside, 1, &reply).unwrap().answers.is_empty());
    }
}
