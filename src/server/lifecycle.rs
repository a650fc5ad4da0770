//! The DNS sockets and their life: bound (or inherited in a handover), served by
//! UDP worker threads and the TCP acceptor, then drained and stopped. Every
//! socket option is set here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;

use super::handler::DnsHandler;
use super::handover::{Inherited, Offered, Role};
use super::udp::serve_socket_forever;
use super::{SLOW_PATH_LIMIT, TCP_IDLE_TIMEOUT, handover, tcp, udp};

/// Why the front end could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Handover(#[from] handover::HandoverError),
    #[error("cannot start the UDP workers: {0}")]
    Workers(std::io::Error),
}

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
    pub async fn shutdown(&mut self) {
        self.stop_receiving().await;
        self.tcp.shutdown().await;
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

/// The DNS sockets of every `listen` address, inherited or bound, each also
/// offered to a successor.
pub async fn bind_all(
    listen: &[SocketAddr],
    inherited: &mut Inherited,
    offered: &mut Offered,
) -> Result<Vec<Listener>, StartError> {
    let mut listeners = Vec::new();
    for addr in listen {
        let listener = match bind_or_inherit(*addr, udp_workers(), inherited).await {
            Ok(listener) => listener,
            Err(source) if ipv6_missing(*addr, listen, &source) => {
                tracing::warn!(%addr, error = %source, "no IPv6 on this host; listening on IPv4 only");
                continue;
            }
            Err(source) => {
                return Err(StartError::Bind {
                    addr: *addr,
                    source,
                });
            }
        };
        for socket in &listener.udp {
            offered.add(Role::Udp, *addr, socket);
        }
        offered.add(Role::Tcp, *addr, &listener.tcp);
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Whether binding `addr` failed only because the host has no IPv6, for the IPv6
/// half of an all-interfaces listen (`:53`) whose IPv4 half is listened on too.
fn ipv6_missing(addr: SocketAddr, listen: &[SocketAddr], error: &std::io::Error) -> bool {
    let ipv4_half = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), addr.port());
    addr.is_ipv6() && addr.ip().is_unspecified() && listen.contains(&ipv4_half) && no_ipv6(error)
}

/// The errors of a host (or container) without IPv6.
pub(super) fn no_ipv6(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL | libc::EPROTONOSUPPORT)
    )
}

/// Raises the soft limit on open descriptors to the hard limit: every TCP client
/// holds one, and the usual soft limit (1024) is reached long before the hard one.
/// Returns the soft limit in force afterwards.
pub fn raise_descriptor_limit() -> std::io::Result<libc::rlim_t> {
    let mut limit = tcp::nofile_limit()?;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit, only read by the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok(limit.rlim_cur)
}
