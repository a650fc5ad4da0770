//! The HTTP side, on separate ports like CoreDNS: `/health` (alive), `/ready`
//! (synced and not shutting down) and `/metrics` (Prometheus text format).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::handover::{Inherited, Offered, Role};
use super::lifecycle::{StartError, no_ipv6};
use super::tcp::{self, Acceptor, Slots};
use crate::index::SharedSnapshot;
use crate::metrics::Metrics;

/// Whether the server should receive traffic.
pub struct Readiness {
    snapshot: SharedSnapshot,
    shutting_down: AtomicBool,
}

impl Readiness {
    pub fn new(snapshot: SharedSnapshot) -> Self {
        Readiness {
            snapshot,
            shutting_down: AtomicBool::new(false),
        }
    }

    /// From now on `/ready` says no (lameduck).
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// `Err` with the reason when not ready.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.shutting_down.load(Ordering::Acquire) {
            Err("shutting down")
        } else if !self.snapshot.load().synced {
            Err("kubernetes: the API caches have not synced yet")
        } else {
            Ok(())
        }
    }
}

/// Which endpoint a listener serves.
#[derive(Clone)]
pub enum Endpoint {
    Health,
    Ready(Arc<Readiness>),
    Metrics(Arc<Metrics>),
}

fn route(path: &str, endpoint: &Endpoint) -> (StatusCode, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    match (path, endpoint) {
        ("/health", Endpoint::Health) => (StatusCode::OK, TEXT, "OK".to_string()),
        ("/ready", Endpoint::Ready(readiness)) => match readiness.check() {
            Ok(()) => (StatusCode::OK, TEXT, "OK".to_string()),
            Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{reason}\n")),
        },
        ("/metrics", Endpoint::Metrics(metrics)) => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        _ => (StatusCode::NOT_FOUND, TEXT, "not found\n".to_string()),
    }
}

/// Connections served at once per endpoint; probes and a scraper need a handful.
/// At most a sixteenth of the descriptor limit each, so the three ports together
/// stay well inside it.
const MAX_CONNECTIONS: usize = 256;
const DESCRIPTOR_SHARE: u64 = 16;
/// A client must send its request headers within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection lives longer, whatever the client does.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Serves one endpoint on the listener until the task is dropped. Each port has
/// its own budget, so a busy metrics port never takes a probe's slot. Probes get
/// `Connection: close`, so kubelets do not hold slots between probes; at the cap
/// a new connection evicts the oldest one (an HTTP connection between requests
/// holds nothing), so a probe always gets through.
pub async fn serve(listener: TcpListener, endpoint: Endpoint) {
    let cap = tcp::bounded_by_descriptors(MAX_CONNECTIONS, DESCRIPTOR_SHARE);
    serve_with_cap(listener, endpoint, cap).await;
}

async fn serve_with_cap(listener: TcpListener, endpoint: Endpoint, cap: usize) {
    let slots = Slots::new(cap);
    let mut acceptor = Acceptor::new(listener);
    loop {
        let (stream, _) = acceptor.accept().await;
        let Some(slot) = slots.admit() else {
            // Not reached: HTTP connections are never marked busy.
            continue;
        };
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            let close_after = matches!(endpoint, Endpoint::Health | Endpoint::Ready(_));
            let service = service_fn(move |request: Request<Incoming>| {
                let (status, content_type, body) = route(request.uri().path(), &endpoint);
                let mut response = Response::new(Full::new(Bytes::from(body)));
                *response.status_mut() = status;
                if let Ok(value) = content_type.parse() {
                    response
                        .headers_mut()
                        .insert(hyper::header::CONTENT_TYPE, value);
                }
                if close_after {
                    response.headers_mut().insert(
                        hyper::header::CONNECTION,
                        hyper::header::HeaderValue::from_static("close"),
                    );
                }
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                served = tokio::time::timeout(CONNECTION_LIFETIME, connection) => match served {
                    Ok(Err(error)) => tracing::debug!(%error, "HTTP connection ended"),
                    Err(_) => tracing::debug!("HTTP connection open too long; closed"),
                    Ok(Ok(())) => {}
                },
                () = slot.state().evicted() => {
                    tracing::debug!("too many HTTP connections; closed the oldest");
                }
            }
        });
    }
}

fn http_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // Whatever the host's net.ipv6.bindv6only says.
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// A listener for an HTTP endpoint; `[::]` takes IPv4 too (one dual-stack socket),
/// or, on a host without IPv6, becomes `0.0.0.0`.
pub async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, StartError> {
    let listener = match http_listener(addr) {
        Ok(listener) => listener,
        Err(source) if addr.is_ipv6() && addr.ip().is_unspecified() && no_ipv6(&source) => {
            let ipv4 = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), addr.port());
            tracing::warn!(%addr, error = %source, "no IPv6 on this host; {what} on IPv4 only");
            http_listener(ipv4).map_err(|source| StartError::Bind { addr: ipv4, source })?
        }
        Err(source) => return Err(StartError::Bind { addr, source }),
    };
    Ok(listener)
}

/// Binds (or takes over) the health, ready and metrics ports, offers each to a
/// successor, and serves them.
pub async fn start_probes(
    [health, ready, metrics_addr]: [SocketAddr; 3],
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
    inherited: &mut Inherited,
    offered: &mut Offered,
) -> Result<Vec<tokio::task::JoinHandle<()>>, StartError> {
    let mut probes = Vec::new();
    for (addr, what, role, endpoint) in [
        (health, "health", Role::Health, Endpoint::Health),
        (ready, "ready", Role::Ready, Endpoint::Ready(readiness)),
        (
            metrics_addr,
            "metrics",
            Role::Metrics,
            Endpoint::Metrics(metrics),
        ),
    ] {
        let listener = match inherited.take_listener(role, addr) {
            Ok(Some(listener)) => listener,
            Ok(None) => bind(addr, what).await?,
            Err(source) => return Err(StartError::Bind { addr, source }),
        };
        if let Ok(local) = listener.local_addr() {
            tracing::info!("{what} on http://{local}/{what}");
        }
        offered.add(role, addr, &listener);
        probes.push(tokio::spawn(serve(listener, endpoint)));
    }
    Ok(probes)
}
