//! The HTTP side, on separate ports like CoreDNS: `/health` (alive), `/ready`
//! (synced and not shutting down) and `/metrics` (Prometheus text format).

use std::convert::Infallible;
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
const MAX_CONNECTIONS: usize = 256;
/// A client must send its request headers within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection lives longer, whatever the client does.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Serves one endpoint on the listener until the task is dropped. Slow or piled-up
/// clients are cut off, so a probe always finds a free slot.
pub async fn serve(listener: TcpListener, endpoint: Endpoint) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, most likely: wait instead of spinning.
                tracing::debug!(%error, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("too many HTTP connections; closing a new one");
            drop(stream);
            continue;
        };
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |request: Request<Incoming>| {
                let (status, content_type, body) = route(request.uri().path(), &endpoint);
                let mut response = Response::new(Full::new(Bytes::from(body)));
                *response.status_mut() = status;
                if let Ok(value) = content_type.parse() {
                    response
                        .headers_mut()
                        .insert(hyper::header::CONTENT_TYPE, value);
                }
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_LIFETIME, connection).await {
                Ok(Err(error)) => tracing::debug!(%error, "HTTP connection ended"),
                Err(_) => tracing::debug!("HTTP connection open too long; closed"),
                Ok(Ok(())) => {}
            }
        });
    }
}
