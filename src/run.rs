//! The two commands, wiring settings, sources, index and sockets together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::answer::{PodsMode, ZoneConfig};
use crate::cli::CommonArgs;
use crate::config::{ConfigError, FileConfig, Settings};
use crate::index::{IndexWriter, SharedSnapshot, Snapshot, feed};
use crate::metrics::Metrics;
use crate::server::{self, DnsHandler};
use crate::source::kubernetes::{self, KubeError};
use crate::source::manifests::{self, ManifestError};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{}", join(.0))]
    Manifests(Vec<ManifestError>),
    #[error("`cluster-dns zone` needs --manifests DIR")]
    NoSource,
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the DNS server stopped: {0}")]
    Server(String),
}

fn join(errors: &[ManifestError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn settings(args: &CommonArgs) -> Result<Settings, ConfigError> {
    let file = match &args.config {
        Some(path) => Some((path.as_path(), FileConfig::load(path)?)),
        None => None,
    };
    Settings::resolve(file, args.overrides())
}

fn zone_config(settings: &Settings) -> ZoneConfig {
    let mut zone = ZoneConfig::new(&settings.zones, settings.ttl, settings.pods);
    zone.ignore_empty_service = settings.ignore_empty_service;
    zone.ns_ips = settings
        .listen
        .iter()
        .map(SocketAddr::ip)
        // C26: the addresses clients can reach us on; wildcards and loopback say nothing.
        .filter(|ip| !ip.is_unspecified() && !ip.is_loopback())
        .collect();
    zone.ns_ips.dedup();
    zone
}

fn manifests_dir(settings: &Settings) -> Result<PathBuf, RunError> {
    settings.manifests.clone().ok_or(RunError::NoSource)
}

fn load_snapshot(dir: &std::path::Path) -> Result<Snapshot, RunError> {
    let objects = manifests::load_dir(dir).map_err(RunError::Manifests)?;
    Ok(IndexWriter::from_objects(objects).snapshot())
}

/// `cluster-dns zone`
pub fn zone(args: &CommonArgs) -> Result<String, RunError> {
    let settings = settings(args)?;
    let snapshot = load_snapshot(&manifests_dir(&settings)?)?;
    Ok(crate::zonefile::render(&zone_config(&settings), &snapshot))
}

/// `cluster-dns serve`: runs until SIGINT or SIGTERM.
pub async fn serve(args: &CommonArgs) -> Result<(), RunError> {
    // Installed first, so a SIGTERM that arrives during start-up is not fatal.
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let settings = settings(args)?;
    let metrics = Arc::new(Metrics::new());

    // The source: manifests when given, else the API server.
    let (shared, source_tasks) = match &settings.manifests {
        Some(dir) => {
            let loaded = manifests::fingerprint(dir);
            let snapshot = load_snapshot(dir)?;
            tracing::info!(
                dir = %dir.display(),
                services = snapshot.service_count(),
                "loaded manifests"
            );
            metrics.synced.set(1);
            let shared: SharedSnapshot = Arc::new(ArcSwap::from_pointee(snapshot));
            let watcher = tokio::spawn(manifests::watch(
                dir.clone(),
                settings.manifests_poll_interval,
                shared.clone(),
                loaded,
            ));
            (shared, vec![watcher])
        }
        None => {
            let client = kubernetes::client(&settings.kube).await?;
            let watch_pods = settings.pods == PodsMode::Verified;
            let writer = IndexWriter::awaiting(kubernetes::required_kinds(watch_pods));
            let shared: SharedSnapshot = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
            let (changes, incoming) = tokio::sync::mpsc::channel(8192);
            let mut tasks = vec![tokio::spawn(feed::run(
                incoming,
                writer,
                shared.clone(),
                metrics.clone(),
            ))];
            tasks.extend(
                kubernetes::spawn_watchers(client, &settings.kube, watch_pods, changes).await,
            );
            tracing::info!(
                "watching the Kubernetes API; answering SERVFAIL instead of NXDOMAIN until synced"
            );
            (shared, tasks)
        }
    };

    let mut listeners = Vec::new();
    for addr in &settings.listen {
        let listener = server::bind(*addr).await.map_err(|source| RunError::Bind {
            addr: *addr,
            source,
        })?;
        listeners.push(listener);
    }
    let bound: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    let mut http_tasks = Vec::new();
    if let Some(addr) = settings.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| RunError::Bind { addr, source })?;
        if let Ok(local) = listener.local_addr() {
            tracing::info!("metrics on http://{local}/metrics");
        }
        http_tasks.push(tokio::spawn(server::http::serve_metrics(
            listener,
            metrics.clone(),
        )));
    }

    let zone = Arc::new(zone_config(&settings));
    let mut dns = server::start(DnsHandler::new(zone, shared), listeners);
    let zones: Vec<String> = settings.zones.iter().map(ToString::to_string).collect();
    tracing::info!(
        zones = %zones.join(","),
        "listening on {} (udp, tcp)",
        bound.join(" ")
    );

    shutdown_signal(terminate.ok()).await;
    tracing::info!("shutting down");
    for task in source_tasks.iter().chain(&http_tasks) {
        task.abort();
    }
    dns.shutdown_gracefully()
        .await
        .map_err(|e| RunError::Server(e.to_string()))
}

async fn shutdown_signal(terminate: Option<tokio::signal::unix::Signal>) {
    let Some(mut term) = terminate else {
        tracing::warn!("cannot watch SIGTERM; stopping on Ctrl-C only");
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
