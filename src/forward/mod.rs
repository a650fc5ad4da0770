//! Forwarding what our zones do not answer to upstream resolvers (CoreDNS
//! `forward`): UDP first, TCP when the answer is truncated, failover between
//! upstreams, a bound on queries in flight, and a cache in front (`cache`).

pub mod cache;
pub mod resolv_conf;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Semaphore;

use crate::metrics::Metrics;

/// EDNS payload we offer upstream.
const UPSTREAM_PAYLOAD: u16 = 1232;
/// Consecutive failures after which an upstream is tried last for a while.
const FAILS_BEFORE_DOWN: u32 = 2;
const DOWN_FOR: Duration = Duration::from_secs(5);

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
    fails: AtomicU32,
    /// Milliseconds since `Forwarder::epoch` until which this upstream is tried last.
    down_until: AtomicU64,
}

pub struct Forwarder {
    upstreams: Vec<Upstream>,
    timeout: Duration,
    permits: Semaphore,
    rotation: AtomicUsize,
    epoch: Instant,
    metrics: Arc<Metrics>,
}

impl Forwarder {
    pub fn new(
        upstreams: &[SocketAddr],
        timeout: Duration,
        max_concurrent: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        Forwarder {
            upstreams: upstreams
                .iter()
                .map(|addr| Upstream {
                    addr: *addr,
                    label: format!("{addr}"),
                    fails: AtomicU32::new(0),
                    down_until: AtomicU64::new(0),
                })
                .collect(),
            timeout,
            permits: Semaphore::new(max_concurrent),
            rotation: AtomicUsize::new(0),
            epoch: Instant::now(),
            metrics,
        }
    }

    pub fn upstreams(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.upstreams.iter().map(|u| u.addr)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Upstreams in the order to try: healthy ones first, rotating, then the rest.
    fn order(&self) -> Vec<&Upstream> {
        let now = self.now_ms();
        let start = self.rotation.fetch_add(1, Ordering::Relaxed);
        let n = self.upstreams.len();
        let rotated = (0..n).map(|i| &self.upstreams[(start + i) % n]);
        let (healthy, down): (Vec<&Upstream>, Vec<&Upstream>) =
            rotated.partition(|u| u.down_until.load(Ordering::Relaxed) <= now);
        healthy.into_iter().chain(down).collect()
    }

    /// Asks the upstreams in turn until one answers.
    pub async fn forward(&self, question: &Question) -> Result<Message, ForwardError> {
        if self.upstreams.is_empty() {
            return Err(ForwardError::NoUpstreams);
        }
        let Ok(_permit) = self.permits.try_acquire() else {
            self.metrics.forward_max_concurrent_rejects.inc();
            return Err(ForwardError::Busy);
        };
        for upstream in self.order() {
            let started = Instant::now();
            match exchange(upstream.addr, question, self.timeout).await {
                Ok(reply) => {
                    upstream.fails.store(0, Ordering::Relaxed);
                    upstream.down_until.store(0, Ordering::Relaxed);
                    self.metrics.observe_forward(
                        &upstream.label,
                        reply.metadata.response_code,
                        started.elapsed(),
                    );
                    return Ok(reply);
                }
                Err(error) => {
                    tracing::debug!(upstream = %upstream.addr, %error, "upstream failed");
                    self.metrics.forward_failure(&upstream.label);
                    let fails = upstream.fails.fetch_add(1, Ordering::Relaxed) + 1;
                    if fails >= FAILS_BEFORE_DOWN {
                        let until =
                            self.now_ms() + u64::try_from(DOWN_FOR.as_millis()).unwrap_or(u64::MAX);
                        if upstream.down_until.swap(until, Ordering::Relaxed) == 0 {
                            tracing::warn!(upstream = %upstream.addr, %error, "upstream is failing; trying the others first");
                        }
                    }
                }
            }
        }
        Err(ForwardError::AllFailed)
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

/// A reply that answers our request: same id, same question.
fn check(reply: &Message, request: &Message) -> Result<(), ExchangeError> {
    if reply.metadata.id != request.metadata.id
        || reply.metadata.message_type != MessageType::Response
    {
        return Err(ExchangeError::BadReply("id or type mismatch".into()));
    }
    // Some servers send REFUSED, FORMERR or NOTIMP without the question: still an answer.
    if reply.queries.is_empty() && reply.metadata.response_code != ResponseCode::NoError {
        return Ok(());
    }
    if reply.queries.len() != 1 || reply.queries[0] != request.queries[0] {
        // Names compare case-insensitively; a resolver may change the case.
        let same = reply.queries.first().is_some_and(|q| {
            q.name().eq_ignore_root(request.queries[0].name())
                && q.query_type() == request.queries[0].query_type()
        });
        if !same {
            return Err(ExchangeError::BadReply("question mismatch".into()));
        }
    }
    Ok(())
}

async fn exchange(
    upstream: SocketAddr,
    question: &Question,
    timeout: Duration,
) -> Result<Message, ExchangeError> {
    let request = request(question);
    let bytes = request
        .to_vec()
        .map_err(|e| ExchangeError::BadReply(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + timeout;
    let udp = tokio::time::timeout_at(deadline, udp_exchange(upstream, &bytes, &request))
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
    tokio::time::timeout_at(deadline, tcp_exchange(upstream, &bytes, &request))
        .await
        .map_err(|_| ExchangeError::Timeout)?
}

async fn udp_exchange(
    upstream: SocketAddr,
    bytes: &[u8],
    request: &Message,
) -> Result<Message, ExchangeError> {
    let local: SocketAddr = if upstream.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(bytes).await?;
    // We offer 1232 bytes; a server that ignores that truncates at its own limit.
    let mut buf = vec![0u8; 4096];
    loop {
        let len = socket.recv(&mut buf).await?;
        // Ignore stray datagrams; only a matching reply ends the exchange.
        if let Ok(reply) = Message::from_vec(&buf[..len])
            && check(&reply, request).is_ok()
        {
            return Ok(reply);
        }
    }
}

async fn tcp_exchange(
    upstream: SocketAddr,
    bytes: &[u8],
    request: &Message,
) -> Result<Message, ExchangeError> {
    let mut stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    let len =
        u16::try_from(bytes.len()).map_err(|_| ExchangeError::BadReply("query too long".into()))?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut body).await?;
    let reply = Message::from_vec(&body).map_err(|e| ExchangeError::BadReply(e.to_string()))?;
    check(&reply, request)?;
    Ok(reply)
}

impl Forwarder {
    /// One exchange with one upstream, outside the failover and the concurrency bound.
    pub async fn probe(&self, upstream: SocketAddr, question: &Question) -> Option<Message> {
        exchange(upstream, question, self.timeout).await.ok()
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
