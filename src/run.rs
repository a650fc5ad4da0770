//! The two commands: settings in, then the source, the front end and the
//! reloader started side by side, and stopped in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::signal::unix::{Signal, SignalKind};
use tokio::task::JoinHandle;

use crate::answer::PodsMode;
use crate::cli::CommonArgs;
use crate::config::{ConfigError, Options, Settings, Upstreams};
use crate::forward::{self, Forwarding, LoopProbe};
use crate::index::{SharedSnapshot, Snapshot};
use crate::metrics::Metrics;
use crate::reload::{self, Reloadable};
use crate::server::handover::{self, Inherited, Offer, Offered, Predecessor, Successor};
use crate::server::http::{self, Readiness};
use crate::server::lifecycle::{self, StartError};
use crate::server::{self, DnsHandler, HandlerParts, Running};
use crate::source::kubernetes::KubeError;
use crate::source::manifests::{self, ManifestError};
use crate::source::supervisor::{self, SourceStop};

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
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(
        "forwarding loop detected: a query sent to upstream {0} came back to this server; \
         point the upstreams (or the node's resolv.conf) at a resolver other than cluster-dns itself"
    )]
    ForwardingLoop(SocketAddr),
}

impl From<handover::HandoverError> for RunError {
    fn from(error: handover::HandoverError) -> Self {
        RunError::Start(error.into())
    }
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
        Some(path) => Some((path.as_path(), Options::load(path)?)),
        None => None,
    };
    Settings::resolve(file, args.options.clone())
}

fn load_snapshot(
    dir: &std::path::Path,
    endpoints: crate::cluster::EndpointOptions,
) -> Result<Snapshot, RunError> {
    manifests::snapshot(dir, endpoints)
        .map(|(snapshot, _)| snapshot)
        .map_err(RunError::Manifests)
}

/// `cluster-dns zone`
pub fn zone(args: &CommonArgs) -> Result<String, RunError> {
    let settings = settings(args)?;
    let dir = settings.manifests.clone().ok_or(RunError::NoSource)?;
    let snapshot = load_snapshot(&dir, settings.kube.endpoints)?;
    Ok(crate::zonefile::render(&settings.zone_config(), &snapshot))
}

/// `cluster-dns serve`: runs until SIGINT or SIGTERM, or until a new process
/// has taken its sockets over.
pub async fn serve(args: &CommonArgs) -> Result<(), RunError> {
    match lifecycle::raise_descriptor_limit() {
        Ok(limit) => tracing::debug!(limit, "open descriptor limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open descriptor limit"),
    }
    // Installed first, so a SIGTERM that arrives during start-up is not fatal.
    let mut terminate = tokio::signal::unix::signal(SignalKind::terminate()).ok();
    let config_loaded = args.config.as_ref().and_then(|p| std::fs::read(p).ok());
    let settings = settings(args)?;
    let hosts_loaded = reload::hosts_file_bytes(&settings);
    let corefile_loaded = settings
        .corefile
        .as_ref()
        .and_then(|p| std::fs::read(p).ok());
    let metrics = Arc::new(Metrics::new());
    // Before anything listens: a running process may hand its sockets over.
    let (mut inherited, predecessor) = handover::take_over(settings.handover.clone()).await?;
    let source = start_source(&settings, &metrics).await?;
    let Some(predecessor) = wait_for_sync(predecessor, &source.shared, &mut terminate).await else {
        tracing::info!("stopped before taking over; the running process keeps serving");
        return Ok(());
    };
    let mut front = start_front(&settings, &source.shared, &metrics, &mut inherited).await?;
    if let Some(upstream) = forward::find_loop(&front.forwarding, &front.loop_probe).await {
        let _ = front.dns.shutdown().await;
        return Err(RunError::ForwardingLoop(upstream));
    }
    let mut tasks = source.tasks;
    // Reload watches the config file and the resolv.conf the upstreams come from;
    // either may change without the other.
    let files =
        args.config.is_some() || settings.corefile.is_some() || settings.plugins.hosts.enabled();
    if files || matches!(settings.upstreams, Upstreams::ResolvConf(_)) {
        let reloadable = Reloadable {
            path: args.config.clone(),
            loaded: config_loaded,
            corefile_loaded,
            hosts_loaded,
            args: args.options.clone(),
            current: settings.clone(),
            resolv_loaded: front.resolv_loaded.take(),
            upstreams: std::mem::take(&mut front.upstreams),
            zone: front.zone.clone(),
            forwarding: front.forwarding.clone(),
            metrics,
        };
        tasks.push(tokio::spawn(reload::watch(reloadable)));
    }
    if let Some(predecessor) = predecessor {
        predecessor.release(handover::PREDECESSOR_DRAIN).await;
    }
    front.publish_offer();
    let successor = tokio::select! {
        () = shutdown_signal(&mut terminate) => None,
        successor = handover::next_successor(front.offer.as_ref()) => Some(successor),
    };
    front.stop(successor, tasks, settings.lameduck).await;
    if front.handed_over {
        // Idle, holding no socket, until told to stop: a supervisor that restarts
        // processes that exit would start us again to take the sockets back.
        source.stop.stop();
        tracing::info!("handed over; idle until SIGTERM");
        shutdown_signal(&mut terminate).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Where the records come from, and the tasks that keep them current.
struct Source {
    shared: SharedSnapshot,
    tasks: Vec<JoinHandle<()>>,
    stop: SourceStop,
}

/// The manifests when given (loaded before anything listens), else the API
/// server's watchers on their own thread.
async fn start_source(settings: &Settings, metrics: &Arc<Metrics>) -> Result<Source, RunError> {
    if let Some(dir) = &settings.manifests {
        let loaded = manifests::fingerprint(dir);
        let snapshot = load_snapshot(dir, settings.kube.endpoints)?;
        let services = snapshot.service_count();
        tracing::info!(dir = %dir.display(), services, "loaded manifests");
        metrics.synced.set(1);
        let shared: SharedSnapshot = Arc::new(ArcSwap::from_pointee(snapshot));
        let interval = settings.manifests_poll_interval;
        let watching = (interval, settings.kube.endpoints);
        let watcher = manifests::watch(dir.clone(), watching, shared.clone(), loaded);
        let tasks = vec![tokio::spawn(watcher)];
        return Ok(Source {
            shared,
            tasks,
            stop: SourceStop::default(),
        });
    }
    let watch_pods = settings.pods == PodsMode::Verified;
    let shared: SharedSnapshot = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
    // DNS and the probes listen at once, even when the API server does not
    // answer (its version check can take a while).
    let kube = settings.kube.clone();
    let stop = supervisor::spawn(kube, watch_pods, shared.clone(), metrics.clone()).await?;
    tracing::info!(
        "watching the Kubernetes API; answering SERVFAIL instead of NXDOMAIN until synced"
    );
    Ok(Source {
        shared,
        tasks: Vec::new(),
        stop,
    })
}

/// With a predecessor, waits until our index is synced before taking over (it
/// answers meanwhile). `None`: stopped first, so nothing is taken over.
async fn wait_for_sync(
    predecessor: Option<Predecessor>,
    shared: &SharedSnapshot,
    terminate: &mut Option<Signal>,
) -> Option<Option<Predecessor>> {
    let mut waiting = match predecessor {
        Some(waiting) => waiting,
        None => return Some(None),
    };
    tokio::select! {
        () = handover::wait_until_synced(shared) => Some(Some(waiting)),
        () = waiting.gone() => {
            tracing::warn!("the previous process stopped before this one synced; serving now");
            Some(None)
        }
        () = shutdown_signal(terminate) => None,
    }
}

/// The DNS and HTTP front end, serving.
struct Front {
    dns: Running,
    probes: Vec<JoinHandle<()>>,
    readiness: Arc<Readiness>,
    offer: Option<Offer>,
    handed_over: bool,
    in_flight: Arc<AtomicUsize>,
    zone: Arc<ArcSwap<crate::answer::ZoneConfig>>,
    forwarding: Arc<ArcSwap<Option<Forwarding>>>,
    loop_probe: Arc<LoopProbe>,
    resolv_loaded: Option<Vec<u8>>,
    upstreams: Vec<SocketAddr>,
}

/// Binds (or takes over) every socket, stages the offer to a successor, and
/// starts answering.
async fn start_front(
    settings: &Settings,
    shared: &SharedSnapshot,
    metrics: &Arc<Metrics>,
    inherited: &mut Inherited,
) -> Result<Front, RunError> {
    let mut offered = Offered::default();
    let listeners = lifecycle::bind_all(&settings.listen, inherited, &mut offered).await?;
    let bound: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    let readiness = Arc::new(Readiness::new(shared.clone()));
    let ports = [
        settings.health_listen,
        settings.ready_listen,
        settings.metrics_listen,
    ];
    let probes = http::start_probes(
        ports,
        readiness.clone(),
        metrics.clone(),
        inherited,
        &mut offered,
    )
    .await?;
    // Staged before anything is served: a failure here leaves the predecessor serving.
    let offer = match &settings.handover {
        Some(path) => Some(Offer::listen(path, offered)?),
        None => None,
    };
    if !inherited.is_empty() {
        tracing::info!(sockets = ?inherited.names(), "closing inherited sockets the configuration no longer listens on");
    }
    *inherited = Inherited::default();

    let zone = Arc::new(ArcSwap::from_pointee(settings.zone_config()));
    let (resolv_loaded, upstreams) = forward::read_upstreams(settings);
    let forwarding = forward::forwarding(settings, &upstreams, metrics);
    let forwarding = Arc::new(ArcSwap::from_pointee(forwarding));
    let loop_probe = Arc::new(LoopProbe::new());
    let in_flight = Arc::new(AtomicUsize::new(0));
    let handler = DnsHandler::new(HandlerParts {
        zone: zone.clone(),
        snapshot: shared.clone(),
        forwarding: forwarding.clone(),
        metrics: metrics.clone(),
        server_label: server_label(&settings.listen),
        loadbalance: settings.loadbalance,
        loop_probe: loop_probe.clone(),
        in_flight: in_flight.clone(),
    });
    let tcp = server::TcpSettings {
        max_connections: settings.tcp_max_connections,
        max_queries: settings.tcp_max_queries,
    };
    let dns = server::start(handler, listeners, tcp).map_err(StartError::Workers)?;
    let zones: Vec<String> = settings.zones.iter().map(ToString::to_string).collect();
    let (zones, bound) = (zones.join(","), bound.join(" "));
    tracing::info!(%zones, "listening on {bound} (udp, tcp)");
    Ok(Front {
        dns,
        probes,
        readiness,
        offer,
        handed_over: false,
        in_flight,
        zone,
        forwarding,
        loop_probe,
        resolv_loaded,
        upstreams,
    })
}

/// CoreDNS's spelling of the server in metric labels: `dns://:53` for a
/// wildcard address.
fn server_label(listen: &[SocketAddr]) -> String {
    match listen.first() {
        Some(addr) if addr.ip().is_unspecified() => format!("dns://:{}", addr.port()),
        Some(addr) => format!("dns://{addr}"),
        None => "dns://".to_string(),
    }
}

impl Front {
    /// Offers the sockets on the handover path, once this process serves.
    fn publish_offer(&mut self) {
        if let Some(staged) = &self.offer
            && let Err(error) = staged.publish()
        {
            tracing::warn!(%error, "cannot offer the sockets; the next restart will bind its own");
            self.offer = None;
        }
    }

    /// Stops answering without losing a query: after a handover at once (the
    /// successor reads the same sockets), else after the lameduck period with
    /// /ready failing; then drains what is in flight.
    async fn stop(
        &mut self,
        successor: Option<Successor>,
        tasks: Vec<JoinHandle<()>>,
        lameduck: Duration,
    ) {
        match &successor {
            Some(successor) => {
                tracing::info!(pid = ?successor.pid, "handed the sockets over; stopping");
                self.dns.stop_accepting();
                self.probes.iter().for_each(JoinHandle::abort);
            }
            None => {
                self.readiness.shut_down();
                tracing::info!(
                    lameduck_seconds = lameduck.as_secs(),
                    "shutting down: not ready, still answering during the lameduck period"
                );
                tokio::time::sleep(lameduck).await;
            }
        }
        // Stop taking new datagrams first, then let what was taken finish.
        self.dns.stop_receiving().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.in_flight.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tasks.iter().chain(&self.probes).for_each(JoinHandle::abort);
        self.dns.shutdown().await;
        // Dropping the successor's connection tells it we are done.
        self.handed_over = successor.is_some();
        drop((successor, self.offer.take()));
    }
}

async fn shutdown_signal(terminate: &mut Option<Signal>) {
    let Some(term) = terminate else {
        tracing::warn!("cannot watch SIGTERM; stopping on Ctrl-C only");
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
