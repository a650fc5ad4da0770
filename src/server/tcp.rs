//! DNS over TCP (RFC 7766), and the connection budget it shares with the HTTP side.
//!
//! Each connection reads 2-byte length-prefixed frames. A frame the fast path
//! answers (as it answers a UDP datagram) is answered at once; the others go to
//! the async handler, up to [`PIPELINE_DEPTH`] at a time. Replies go out in
//! completion order (each with its query's ID), all those ready in one write.
//! A connection closes when the client goes quiet for the idle timeout, after
//! `max_queries` queries (so clients behind a Service reconnect and spread over
//! the pods; CoreDNS `timeouts { maxtcpqueries }`), at EOF, or when evicted;
//! queries already read are answered first, and after a close at `max_queries`
//! the connection lingers until the client closes too (no reset).
//!
//! Connections are capped ([`Slots`]). At the cap a new connection evicts the
//! oldest idle one (no query in flight), as Knot does, so a flood of idle or
//! slowloris connections cannot lock real clients out; only when every
//! connection is busy is the new one closed at once. Accept errors (out of file
//! descriptors) back off instead of spinning ([`Acceptor`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::DnsHandler;
use super::fast::Fast;
use super::reply::Transport;

/// Concurrent DNS-over-TCP connections by default (further bounded by the
/// descriptor limit, see [`connection_cap`]).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;
/// Queries answered on one connection before it is closed; 0 means no cap, as
/// in CoreDNS since 1.10.1 (its `timeouts { maxtcpqueries N }` sets one, and
/// 128, miekg/dns's old default, spreads long-lived clients over the pods).
pub const DEFAULT_MAX_QUERIES: usize = 0;
/// Queries of one connection answered at once; further frames wait in the socket.
pub const PIPELINE_DEPTH: usize = 32;
/// Share of the descriptor limit DNS-over-TCP connections may take; the rest is
/// for UDP sockets, upstream sockets, the HTTP ports and the API client.
const DESCRIPTOR_SHARE: u64 = 4;
/// How long shutdown waits for connections to send the answers they owe.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// At shutdown, how long a connection still reads the queries already on their way.
const CLOSE_GRACE: Duration = Duration::from_millis(200);
/// After closing at `max_queries`, how long the connection waits for the client
/// to acknowledge its answers, and how often it looks.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_POLL: Duration = Duration::from_millis(10);
/// Ready replies held before they are written (frames stay unread beyond).
const MAX_OUTGOING: usize = 64 * 1024;

/// The process's limits on open file descriptors (soft and hard).
pub fn nofile_limit() -> std::io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own and pass by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(limit)
}

/// The soft limit on open file descriptors, if it can be read and is finite.
pub fn descriptor_limit() -> Option<u64> {
    let limit = nofile_limit().ok()?;
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// `configured`, but at most `1 / share` of the descriptor limit (and at least 1).
pub fn bounded_by_descriptors(configured: usize, share: u64) -> usize {
    let cap = descriptor_limit()
        .map(|limit| usize::try_from(limit / share).unwrap_or(usize::MAX))
        .unwrap_or(usize::MAX);
    configured.min(cap).max(1)
}

/// The DNS-over-TCP connection cap: `configured`, but at most a quarter of the
/// descriptor limit, so held connections never starve accept, forwarding or probes.
pub fn connection_cap(configured: usize) -> usize {
    bounded_by_descriptors(configured, DESCRIPTOR_SHARE)
}

/// Limits of one DNS-over-TCP connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Closed after this long without a complete query (or a reply written).
    pub idle_timeout: Duration,
    /// Closed after this many queries; 0 for no cap.
    pub max_queries: usize,
}

/// Accepts connections, backing off on errors (most likely out of descriptors:
/// the pending connection stays queued and the error comes back at once, so
/// retrying at once would spin a core).
pub struct Acceptor {
    listener: TcpListener,
    delay: Duration,
}

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

impl Acceptor {
    pub fn new(listener: TcpListener) -> Self {
        Acceptor {
            listener,
            delay: Duration::ZERO,
        }
    }

    /// The next connection; errors are logged and waited out.
    pub async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok(accepted) => {
                    self.delay = Duration::ZERO;
                    return accepted;
                }
                Err(error) => {
                    if self.delay.is_zero() {
                        tracing::warn!(%error, "accept failed; backing off");
                    }
                    self.delay = (self.delay * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
                    tokio::time::sleep(self.delay).await;
                }
            }
        }
    }
}

/// One admitted connection's shared state.
pub struct SlotState {
    id: u64,
    /// Queries in flight; 0 means idle (evictable).
    busy: AtomicUsize,
    evict: Notify,
}

impl SlotState {
    /// Marks how many queries the connection has in flight.
    pub fn set_busy(&self, in_flight: usize) {
        self.busy.store(in_flight, Ordering::Release);
    }

    /// Resolves once the connection has been chosen for eviction.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }
}

/// A connection budget: at most `cap` admitted connections, in admission order.
pub struct Slots {
    cap: usize,
    open: Mutex<(u64, VecDeque<Arc<SlotState>>)>,
}

/// An admitted connection; dropping it frees the slot.
pub struct Slot {
    slots: Arc<Slots>,
    state: Arc<SlotState>,
}

impl Slot {
    pub fn state(&self) -> &Arc<SlotState> {
        &self.state
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let id = self.state.id;
        if let Ok(mut open) = self.slots.open.lock() {
            // Absent if it was evicted (taken out of the list then).
            if let Some(at) = open.1.iter().position(|s| s.id == id) {
                open.1.remove(at);
            }
        }
    }
}

impl Slots {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Slots {
            cap: cap.max(1),
            open: Mutex::new((0, VecDeque::new())),
        })
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Admitted connections not yet closed (evicted ones no longer count).
    pub fn open(&self) -> usize {
        self.open.lock().map_or(0, |open| open.1.len())
    }

    /// Admits a new connection. At the cap, the oldest idle connection is told to
    /// close and leaves the list; with none idle, `None` (close the new one).
    pub fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut open = self.open.lock().ok()?;
        if open.1.len() >= self.cap {
            let idle = open
                .1
                .iter()
                .position(|s| s.busy.load(Ordering::Acquire) == 0)?;
            if let Some(evicted) = open.1.remove(idle) {
                evicted.evict.notify_one();
            }
        }
        open.0 += 1;
        let state = Arc::new(SlotState {
            id: open.0,
            busy: AtomicUsize::new(0),
            evict: Notify::new(),
        });
        open.1.push_back(state.clone());
        Some(Slot {
            slots: self.clone(),
            state,
        })
    }
}

/// Takes one complete frame off the front of `buf`, if there is one.
fn take_frame(buf: &mut BytesMut) -> Option<Vec<u8>> {
    let len = usize::from(u16::from_be_bytes([*buf.first()?, *buf.get(1)?]));
    if buf.len() < 2 + len {
        return None;
    }
    buf.advance(2);
    Some(buf.split_to(len).to_vec())
}

/// Signals a connection listens to besides its socket.
#[derive(Default)]
pub struct Control {
    /// The connection's slot: idle marking and eviction.
    pub slot: Option<Arc<SlotState>>,
    /// Becomes `true` at shutdown.
    pub shutdown: Option<watch::Receiver<bool>>,
    /// The socket, for the close at `max_queries` (see [`linger`]); `None` for
    /// a stream that is not a socket.
    pub socket: Option<RawFd>,
}

async fn evicted(slot: &Option<Arc<SlotState>>) {
    match slot {
        Some(slot) => slot.evicted().await,
        None => std::future::pending().await,
    }
}

async fn shutting_down(shutdown: &mut Option<watch::Receiver<bool>>) {
    match shutdown {
        Some(receiver) => {
            if receiver.wait_for(|stop| *stop).await.is_err() {
                // The sender is gone: no shutdown signal will come.
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// Serves DNS on one connection (a socket, or any byte stream) until it closes.
pub async fn serve_connection<S>(
    stream: S,
    src: SocketAddr,
    handler: Arc<DnsHandler>,
    limits: ConnectionLimits,
    mut control: Control,
) where
    S: AsyncRead + AsyncWrite,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut buf = BytesMut::with_capacity(1024);
    let mut pending = FuturesUnordered::new();
    // Replies ready to go, framed: everything answered since the last write
    // leaves in one write.
    let mut outgoing = Vec::new();
    let mut scratch = Vec::with_capacity(512);
    let mut received = 0usize;
    let mut reading = true;
    let mut deadline = Instant::now() + limits.idle_timeout;
    // Set at shutdown: queries the client sent before it are still read and
    // answered until then.
    let mut closing: Option<Instant> = None;
    loop {
        // Start on the frames already read, as many as the pipeline takes.
        // Replies wait in `outgoing` up to a bound: a client that pipelines and
        // does not read cannot make the server hold more than that.
        // One clock reading for the frames of one read.
        let now = Instant::now();
        while reading && pending.len() < PIPELINE_DEPTH && outgoing.len() < MAX_OUTGOING {
            let Some(frame) = take_frame(&mut buf) else {
                break;
            };
            received += 1;
            deadline = now + limits.idle_timeout;
            if !answer_now(&handler, &frame, (src, now), &mut scratch, &mut outgoing) {
                pending.push(answer_frame(handler.clone(), frame, src));
            }
            if limits.max_queries > 0 && received >= limits.max_queries {
                reading = false;
            }
        }
        if !outgoing.is_empty() {
            // A client that does not read its replies is cut off like an idle one.
            match tokio::time::timeout(limits.idle_timeout, writer.write_all(&outgoing)).await {
                Ok(Ok(())) => deadline = Instant::now() + limits.idle_timeout,
                _ => return,
            }
            outgoing.clear();
            if outgoing.capacity() > MAX_OUTGOING {
                outgoing = Vec::new();
            }
            continue;
        }
        if let Some(slot) = &control.slot {
            slot.set_busy(pending.len());
        }
        if !reading && pending.is_empty() {
            break;
        }
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(4096);
        }
        tokio::select! {
            Some(reply) = pending.next(), if !pending.is_empty() => {
                if let Some(reply) = reply {
                    push_framed(&mut outgoing, &reply);
                }
            }
            // Cancel safe: an interrupted `read_buf` has read nothing.
            read = reader.read_buf(&mut buf), if reading && pending.len() < PIPELINE_DEPTH => {
                if !matches!(read, Ok(n) if n > 0) {
                    reading = false;
                }
            }
            () = tokio::time::sleep_until(deadline), if pending.is_empty() => break,
            () = evicted(&control.slot), if reading => reading = false,
            () = tokio::time::sleep_until(closing.unwrap_or(deadline)), if reading && closing.is_some() => reading = false,
            () = shutting_down(&mut control.shutdown), if reading && closing.is_none() => {
                closing = Some(Instant::now() + CLOSE_GRACE);
            }
        }
    }
    let _ = tokio::time::timeout(limits.idle_timeout, writer.shutdown()).await;
    if let Some(socket) = control.socket
        && limits.max_queries > 0
        && received >= limits.max_queries
    {
        linger(socket, &mut reader).await;
    }
}

/// After the FIN at `max_queries`, waits (reading and dropping what the client
/// still sends) until the client has acknowledged every answer: closing a
/// socket with unread bytes makes the kernel send a reset and throw away what
/// it has not sent yet (CoreDNS issue 3659). Bounded in time.
async fn linger<R: AsyncRead + Unpin>(socket: RawFd, reader: &mut R) {
    let mut sink = [0u8; 4096];
    let deadline = Instant::now() + LINGER;
    while unacknowledged(socket).is_some_and(|bytes| bytes > 0) && Instant::now() < deadline {
        // Short reads: the client's window opens as it reads, whether or not it writes.
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(LINGER_POLL, reader.read(&mut sink)).await
        {
            break;
        }
    }
}

/// Bytes of the socket's send queue the peer has not acknowledged (`TIOCOUTQ`).
fn unacknowledged(socket: RawFd) -> Option<usize> {
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ writes one c_int through the pointer, which points at a
    // live local. A stale or reused descriptor makes the call fail or report
    // another socket's queue; neither touches memory we own.
    let result = unsafe { libc::ioctl(socket, libc::TIOCOUTQ, &mut queued) };
    (result == 0).then(|| usize::try_from(queued).unwrap_or(0))
}

/// Appends `reply` with its length prefix; a reply over 64 KiB cannot be framed
/// (the encoder never makes one).
fn push_framed(outgoing: &mut Vec<u8>, reply: &[u8]) {
    if let Ok(len) = u16::try_from(reply.len()) {
        outgoing.extend_from_slice(&len.to_be_bytes());
        outgoing.extend_from_slice(reply);
    }
}

/// Answers `frame` on the fast path, as UDP's worker does, appending the framed
/// reply (if any) to `outgoing`; `false` when the async handler must decide.
/// `scratch` is the connection's reusable reply buffer.
fn answer_now(
    handler: &DnsHandler,
    frame: &[u8],
    (src, received): (SocketAddr, Instant),
    scratch: &mut Vec<u8>,
    outgoing: &mut Vec<u8>,
) -> bool {
    scratch.clear();
    let received = received.into_std();
    let fast = handler
        .metrics
        .catch_panic(|| handler.answer_fast_over(Transport::Tcp, frame, src, scratch, received));
    match fast {
        Ok(Fast::Reply) => push_framed(outgoing, scratch),
        Ok(Fast::Drop) => {}
        Ok(Fast::Slow) => return false,
        // A panic (a bug) is counted and ends this connection, as the async path's does.
        Err(panic) => std::panic::resume_unwind(panic),
    }
    true
}

/// The async handler's reply to a frame the fast path passed on (forwarding,
/// a chase, rare types, an odd message).
async fn answer_frame(
    handler: Arc<DnsHandler>,
    frame: Vec<u8>,
    src: SocketAddr,
) -> Option<Vec<u8>> {
    let handled = handler.answer_slow_over(Transport::Tcp, frame, src);
    // A panic (a bug) is counted and ends this connection's task, not the server.
    match handler.metrics.catch_panic_async(handled).await {
        Ok(reply) => reply,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Serves one listener until the task is dropped: admits connections within the
/// budget and serves each on a task of its own.
pub async fn serve_listener(
    listener: TcpListener,
    handler: Arc<DnsHandler>,
    slots: Arc<Slots>,
    limits: ConnectionLimits,
    shutdown: watch::Receiver<bool>,
) {
    let mut acceptor = Acceptor::new(listener);
    loop {
        let (stream, src) = acceptor.accept().await;
        let Some(slot) = slots.admit() else {
            tracing::debug!(%src, "every TCP connection is busy; closing a new one");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let control = Control {
            slot: Some(slot.state().clone()),
            shutdown: Some(shutdown.clone()),
            socket: Some(stream.as_raw_fd()),
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let _slot = slot;
            serve_connection(stream, src, handler, limits, control).await;
        });
    }
}

/// The TCP side of a running server: its accept loops and its connections.
pub struct TcpServer {
    accepting: Vec<tokio::task::JoinHandle<()>>,
    slots: Arc<Slots>,
    shutdown: watch::Sender<bool>,
}

impl TcpServer {
    /// Serves the listeners with one connection budget of `max_connections`.
    pub fn start(
        listeners: Vec<TcpListener>,
        handler: Arc<DnsHandler>,
        max_connections: usize,
        limits: ConnectionLimits,
    ) -> Self {
        let slots = Slots::new(max_connections);
        let (shutdown, receiver) = watch::channel(false);
        let accepting = listeners
            .into_iter()
            .map(|listener| {
                tokio::spawn(serve_listener(
                    listener,
                    handler.clone(),
                    slots.clone(),
                    limits,
                    receiver.clone(),
                ))
            })
            .collect();
        TcpServer {
            accepting,
            slots,
            shutdown,
        }
    }

    /// Stops accepting new connections (a successor accepts on the same listeners).
    pub fn stop_accepting(&self) {
        for task in &self.accepting {
            task.abort();
        }
    }

    /// Stops accepting, lets every connection read for a moment more and answer
    /// what it has read, and waits (bounded) for them to close.
    pub async fn shutdown(&self) {
        self.stop_accepting();
        let _ = self.shutdown.send(true);
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self.slots.open() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Serves a byte stream as one DNS-over-TCP connection with the default limits
/// and no budget or shutdown signal (fuzzing, tests).
#[doc(hidden)]
pub async fn serve_stream<S>(stream: S, handler: Arc<DnsHandler>)
where
    S: AsyncRead + AsyncWrite,
{
    let src = SocketAddr::from(([127, 0, 0, 1], 5300));
    let limits = ConnectionLimits {
        idle_timeout: super::TCP_IDLE_TIMEOUT,
        max_queries: DEFAULT_MAX_QUERIES,
    };
    serve_connection(stream, src, handler, limits, Control::default()).await;
}

/// A handler for the cluster in `manifests` (YAML), zone `cluster.local`, with no
/// forwarding (fuzzing, tests).
#[doc(hidden)]
pub fn handler_for_manifests(manifests: &str) -> Option<DnsHandler> {
    let objects =
        crate::source::manifests::parse_file(std::path::Path::new("fixture.yaml"), manifests)
            .ok()?;
    let snapshot = crate::index::IndexWriter::from_objects(objects).snapshot();
    let zone = crate::answer::ZoneConfig::new(
        &[hickory_proto::rr::Name::from_ascii("cluster.local.").ok()?],
        5,
        crate::answer::PodsMode::Insecure,
    );
    Some(DnsHandler::new(super::HandlerParts {
        zone: Arc::new(arc_swap::ArcSwap::from_pointee(zone)),
        snapshot: Arc::new(arc_swap::ArcSwap::from_pointee(snapshot)),
        forwarding: Arc::new(arc_swap::ArcSwap::from_pointee(None)),
        metrics: Arc::new(crate::metrics::Metrics::new()),
        server_label: "dns://:53".into(),
        loadbalance: true,
        loop_probe: Arc::new(crate::forward::LoopProbe::new()),
        in_flight: Arc::new(AtomicUsize::new(0)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::{Name, RecordType};

    const CLUSTER: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n\
        spec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 80}]}\n";

    fn handler() -> Arc<DnsHandler> {
        Arc::new(handler_for_manifests(CLUSTER).expect("test cluster parses"))
    }

    fn frame(bytes: &[u8]) -> Vec<u8> {
        let mut out = u16::try_from(bytes.len())
            .expect("small")
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(bytes);
        out
    }

    fn query(id: u16, name: &str) -> Vec<u8> {
        let mut message = Message::new(id, MessageType::Query, OpCode::Query);
        message.add_query(Query::query(
            Name::from_ascii(name).expect("name"),
            RecordType::A,
        ));
        message.to_vec().expect("encodes")
    }

    /// A connection served on `server` (a duplex end) with these limits.
    fn spawn_connection(
        server: tokio::io::DuplexStream,
        max_queries: usize,
    ) -> tokio::task::JoinHandle<()> {
        let limits = ConnectionLimits {
            idle_timeout: Duration::from_secs(10),
            max_queries,
        };
        let src = SocketAddr::from(([127, 0, 0, 1], 5300));
        tokio::spawn(serve_connection(
            server,
            src,
            handler(),
            limits,
            Control::default(),
        ))
    }

    /// How many length-prefixed frames `output` holds (whole ones only).
    fn whole_frames(output: &[u8]) -> u16 {
        let mut count = 0;
        let mut rest = output;
        while let [hi, lo, tail @ ..] = rest {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            rest = tail.get(len..).expect("whole frames");
            count += 1;
        }
        count
    }

    /// Writes `input` then EOF into a connection with these limits; the replies.
    async fn exchange(input: Vec<u8>, max_queries: usize) -> Vec<Message> {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let served = spawn_connection(server, max_queries);
        client.write_all(&input).await.expect("writes");
        client.shutdown().await.expect("EOF");
        let mut output = Vec::new();
        client.read_to_end(&mut output).await.expect("reads");
        served.await.expect("connection task ends");
        let mut replies = Vec::new();
        let mut rest = &output[..];
        while rest.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            replies.push(Message::from_vec(&rest[2..2 + len]).expect("a DNS message"));
            rest = &rest[2 + len..];
        }
        assert!(rest.is_empty(), "whole frames only");
        replies
    }

    #[tokio::test]
    async fn pipelined_queries_get_their_own_answers() {
        let mut input = Vec::new();
        for id in 1..=20u16 {
            let name = if id % 2 == 0 {
                "web.default.svc.cluster.local."
            } else {
                "nope.default.svc.cluster.local."
            };
            input.extend(frame(&query(id, name)));
        }
        let replies = exchange(input, 0).await;
        let mut ids: Vec<u16> = replies.iter().map(|r| r.metadata.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, (1..=20).collect::<Vec<_>>());
        for reply in &replies {
            assert_eq!(reply.metadata.message_type, MessageType::Response);
            let expected = if reply.metadata.id % 2 == 0 {
                ResponseCode::NoError
            } else {
                ResponseCode::NXDomain
            };
            assert_eq!(reply.metadata.response_code, expected, "{reply:?}");
            assert_eq!(reply.answers.len(), usize::from(reply.metadata.id % 2 == 0));
        }
    }

    /// Thousands of pipelined queries in one go: replies beyond the outgoing
    /// bound wait for a write, and every query is still answered.
    #[tokio::test]
    async fn a_long_pipeline_is_answered_in_bounded_writes() {
        const QUERIES: u16 = 3000;
        let (client, server) = tokio::io::duplex(1 << 16);
        let served = spawn_connection(server, 0);
        let (mut read, mut write) = tokio::io::split(client);
        let input: Vec<u8> = (1..=QUERIES)
            .flat_map(|id| frame(&query(id, "web.default.svc.cluster.local.")))
            .collect();
        let writing = async move {
            write.write_all(&input).await.expect("writes");
            write.shutdown().await.expect("EOF");
        };
        let mut output = Vec::new();
        let reading = read.read_to_end(&mut output);
        let (_, read_result) = tokio::join!(writing, reading);
        read_result.expect("reads");
        served.await.expect("connection task ends");
        let answered = whole_frames(&output);
        assert_eq!(answered, QUERIES);
        assert!(
            output.len() > 2 * MAX_OUTGOING,
            "the bound was crossed: {}",
            output.len()
        );
    }

    #[tokio::test]
    async fn responses_are_ignored_and_garbage_gets_formerr() {
        let mut response = query(7, "web.default.svc.cluster.local.");
        response[2] |= 0x80; // QR
        let mut garbage = query(8, "web.default.svc.cluster.local.");
        garbage.truncate(15); // the header says one question; it is cut short
        let input = [
            frame(&response),
            frame(&[1, 2, 3]),
            frame(&garbage),
            frame(&[]),
            frame(&query(9, "web.default.svc.cluster.local.")),
        ]
        .concat();
        let replies = exchange(input, 0).await;
        let summary: Vec<(u16, ResponseCode)> = replies
            .iter()
            .map(|r| (r.metadata.id, r.metadata.response_code))
            .collect();
        assert_eq!(
            summary,
            vec![(8, ResponseCode::FormErr), (9, ResponseCode::NoError)]
        );
    }

    #[tokio::test]
    async fn connection_closes_after_max_queries() {
        let input: Vec<u8> = (1..=5u16)
            .flat_map(|id| frame(&query(id, "web.default.svc.cluster.local.")))
            .collect();
        let replies = exchange(input, 3).await;
        let mut ids: Vec<u16> = replies.iter().map(|r| r.metadata.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![1, 2, 3], "three answered, then closed");
    }

    /// A client that is still sending when the connection closes at
    /// `max_queries`, and reads slowly, gets every answer: closing with unread
    /// bytes makes the kernel reset the connection and throw away the answers
    /// still waiting in the send queue, so the close waits for them.
    #[tokio::test]
    async fn a_close_at_max_queries_keeps_every_answer_for_a_slow_reader() {
        const QUERIES: u16 = 300;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("address");
        let limits = ConnectionLimits {
            idle_timeout: Duration::from_secs(10),
            max_queries: usize::from(QUERIES),
        };
        let served = tokio::spawn(async move {
            let (stream, src) = listener.accept().await.expect("accepts");
            let control = Control {
                socket: Some(stream.as_raw_fd()),
                ..Control::default()
            };
            serve_connection(stream, src, handler(), limits, control).await;
        });
        // A small receive window: most answers wait in the server's send queue.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("buffer size");
        let mut client = socket.connect(addr).await.expect("connects");
        let queries: Vec<u8> = (1..=QUERIES)
            .flat_map(|id| frame(&query(id, "web.default.svc.cluster.local.")))
            .collect();
        client.write_all(&queries).await.expect("writes");
        // Queries past the cap, arriving after the server stopped reading.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let more = frame(&query(QUERIES + 1, "web.default.svc.cluster.local."));
        client.write_all(&more).await.expect("writes");
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Everything up to the end, or to the reset that follows it.
        let mut output = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = client.read(&mut chunk).await {
            output.extend_from_slice(&chunk[..n]);
        }
        let answered = whole_frames(&output);
        assert_eq!(answered, QUERIES, "every query up to the cap answered");
        drop(client);
        served.await.expect("connection task ends");
    }

    #[tokio::test]
    async fn a_half_frame_then_eof_gets_nothing() {
        let mut input = frame(&query(1, "web.default.svc.cluster.local."));
        let partial = frame(&query(2, "web.default.svc.cluster.local."));
        input.extend_from_slice(&partial[..partial.len() - 3]);
        let replies = exchange(input, 0).await;
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].metadata.id, 1);
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_idle_connection_is_evicted() {
        let slots = Slots::new(3);
        let a = slots.admit().expect("room");
        let b = slots.admit().expect("room");
        let c = slots.admit().expect("room");
        a.state().set_busy(1);
        let d = slots.admit().expect("b is idle and gives way");
        assert_eq!(slots.open(), 3);
        // b was told to go; a (busy) was not.
        tokio::time::timeout(Duration::from_secs(5), b.state().evicted())
            .await
            .expect("b evicted");
        for busy in [&c, &d] {
            busy.state().set_busy(2);
        }
        assert!(slots.admit().is_none(), "all busy: the new one is refused");
        drop(b);
        assert_eq!(slots.open(), 3, "an evicted slot no longer counts");
        drop(c);
        assert_eq!(slots.open(), 2);
        assert!(slots.admit().is_some());
    }
}
