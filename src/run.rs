//! The two commands, wiring settings, sources, index and sockets together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::answer::PodsMode;
use crate::cli::CommonArgs;
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_proto::op::Query;
use hickory_proto::rr::RecordType;

use crate::config::{ConfigError, Options, Settings, Upstreams};
use crate::forward::{self, Question};
use crate::index::{IndexWriter, SharedSnapshot, Snapshot, feed};
use crate::metrics::Metrics;
use crate::server::handover::{self, HandoverError, Inherited, Offer, Offered, Role};
use crate::server::http::{Endpoint, Readiness};
use crate::server::{self, DnsHandler, Forwarding, HandlerParts, LoopProbe};
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
    #[error(
        "forwarding loop detected: a query sent to upstream {0} came back to this server; \
         point the upstreams (or the node's resolv.conf) at a resolver other than cluster-dns itself"
    )]
    ForwardingLoop(SocketAddr),
    #[error(transparent)]
    Handover(#[from] HandoverError),
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

fn manifests_dir(settings: &Settings) -> Result<PathBuf, RunError> {
    settings.manifests.clone().ok_or(RunError::NoSource)
}

fn load_snapshot(dir: &std::path::Path) -> Result<Snapshot, RunError> {
    manifests::snapshot(dir)
        .map(|(snapshot, _)| snapshot)
        .map_err(RunError::Manifests)
}

/// `cluster-dns zone`
pub fn zone(args: &CommonArgs) -> Result<String, RunError> {
    let settings = settings(args)?;
    let snapshot = load_snapshot(&manifests_dir(&settings)?)?;
    Ok(crate::zonefile::render(&settings.zone_config(), &snapshot))
}

/// Sends the loop probe to each upstream; if it comes back to us, forwarding loops.
async fn check_forwarding_loop(
    forwarding: &ArcSwap<Option<Forwarding>>,
    probe: &LoopProbe,
) -> Result<(), RunError> {
    let current = forwarding.load_full();
    let Some(forwarding) = current.as_ref() else {
        return Ok(());
    };
    let question = Question {
        query: Query::query(probe.name.clone(), RecordType::HINFO),
        recursion_desired: true,
        checking_disabled: false,
        dnssec_ok: None,
    };
    for upstream in forwarding.forwarder.upstreams() {
        let before = probe.times_seen();
        let _ = forwarding.forwarder.probe(upstream, &question).await;
        if probe.times_seen() > before {
            return Err(RunError::ForwardingLoop(upstream));
        }
    }
    Ok(())
}

/// Whether binding `addr` failed only because the host has no IPv6, for the IPv6
/// half of an all-interfaces listen (`:53`) whose IPv4 half is listened on too.
fn ipv6_missing(addr: SocketAddr, listen: &[SocketAddr], error: &std::io::Error) -> bool {
    let ipv4_half = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), addr.port());
    addr.is_ipv6() && addr.ip().is_unspecified() && listen.contains(&ipv4_half) && no_ipv6(error)
}

/// The errors of a host (or container) without IPv6.
fn no_ipv6(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL | libc::EPROTONOSUPPORT)
    )
}

fn http_listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
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
    tokio::net::TcpListener::from_std(socket.into())
}

/// A listener for an HTTP endpoint; `[::]` takes IPv4 too (one dual-stack socket),
/// or, on a host without IPv6, becomes `0.0.0.0`.
async fn bind_http(addr: SocketAddr, what: &str) -> Result<tokio::net::TcpListener, RunError> {
    let listener = match http_listener(addr) {
        Ok(listener) => listener,
        Err(source) if addr.is_ipv6() && addr.ip().is_unspecified() && no_ipv6(&source) => {
            let ipv4 = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), addr.port());
            tracing::warn!(%addr, error = %source, "no IPv6 on this host; {what} on IPv4 only");
            http_listener(ipv4).map_err(|source| RunError::Bind { addr: ipv4, source })?
        }
        Err(source) => return Err(RunError::Bind { addr, source }),
    };
    Ok(listener)
}

/// Runs the Kubernetes watchers and the index writer on a thread of their own, at
/// a lower scheduling priority than the threads that answer: on a busy core a
/// burst of API events waits a little rather than delaying queries. Returns once
/// the client is built (a bad kubeconfig fails start-up).
async fn spawn_kubernetes_source(
    kube_settings: kubernetes::KubeSettings,
    watch_pods: bool,
    shared: SharedSnapshot,
    metrics: Arc<Metrics>,
) -> Result<SourceStop, RunError> {
    let (started, client_ready) = tokio::sync::oneshot::channel::<Result<(), RunError>>();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let spawned = std::thread::Builder::new()
        .name("k8s-source".into())
        .spawn(move || {
            lower_thread_priority();
            let mut started = Some(started);
            // The watchers retry on their own; this loop only catches what should
            // never happen (a panic, the tasks ending), so records do not go stale.
            loop {
                let outcome = metrics.catch_panic(|| {
                    run_kubernetes_source(
                        &kube_settings,
                        watch_pods,
                        &shared,
                        &metrics,
                        &mut started,
                        stopped.clone(),
                    )
                });
                if *stopped.borrow() {
                    return;
                }
                match (outcome, started.take()) {
                    (Ok(Err(error)), Some(started)) => {
                        let _ = started.send(Err(error));
                        return;
                    }
                    (_, Some(started)) => {
                        let _ = started.send(Err(RunError::Server(
                            "the Kubernetes source stopped while starting".into(),
                        )));
                        return;
                    }
                    (Ok(Ok(())), None) => {
                        tracing::error!("the Kubernetes watchers stopped; starting them again");
                    }
                    (Ok(Err(error)), None) => {
                        tracing::error!("the Kubernetes source failed: {error}; starting it again");
                    }
                    (Err(_), None) => tracing::error!(
                        "the Kubernetes source panicked (a bug; please report it); starting it again"
                    ),
                }
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        });
    if let Err(error) = spawned {
        return Err(RunError::Server(format!(
            "cannot start the Kubernetes source: {error}"
        )));
    }
    client_ready
        .await
        .unwrap_or_else(|_| Err(RunError::Server("the Kubernetes source stopped".into())))?;
    Ok(SourceStop(Some(stop)))
}

/// Stops the Kubernetes source, for a process that has handed its sockets over.
#[derive(Default)]
struct SourceStop(Option<tokio::sync::watch::Sender<bool>>);

impl SourceStop {
    fn stop(&self) {
        if let Some(stop) = &self.0 {
            let _ = stop.send(true);
        }
    }
}

/// One life of the Kubernetes source: builds the client (reporting success through
/// `started` the first time), then runs the watchers and the index writer until
/// either ends.
fn run_kubernetes_source(
    kube_settings: &kubernetes::KubeSettings,
    watch_pods: bool,
    shared: &SharedSnapshot,
    metrics: &Arc<Metrics>,
    started: &mut Option<tokio::sync::oneshot::Sender<Result<(), RunError>>>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<(), RunError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| RunError::Server(error.to_string()))?;
    runtime.block_on(async {
        let client = kubernetes::client(kube_settings).await?;
        if let Some(started) = started.take() {
            let _ = started.send(Ok(()));
        }
        let writer = IndexWriter::awaiting(kubernetes::required_kinds(watch_pods));
        let (changes, incoming) = tokio::sync::mpsc::channel(8192);
        let mut feed = tokio::spawn(feed::run(incoming, writer, shared.clone(), metrics.clone()));
        let watchers = kubernetes::spawn_watchers(client, kube_settings, watch_pods, changes).await;
        tokio::select! {
            _ = &mut feed => {}
            _ = futures::future::join_all(watchers) => {}
            _ = stopped.wait_for(|stop| *stop) => {}
        }
        Ok(())
    })
}

/// Nice 10 for the calling thread (Linux applies `setpriority` per thread).
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority take plain integers and touch no memory of ours.
        let result = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10)
        };
        if result != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the source thread's priority");
        }
    }
}

/// Raises the soft limit on open descriptors to the hard limit: every TCP client
/// holds one, and the usual soft limit (1024) is reached long before the hard one.
/// Returns the soft limit in force afterwards.
pub fn raise_descriptor_limit() -> std::io::Result<libc::rlim_t> {
    let mut limit = crate::server::tcp::nofile_limit()?;
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

/// The sockets a running process offers on `--handover PATH`, if any.
async fn inherit(
    path: Option<PathBuf>,
) -> Result<(Inherited, Option<handover::Predecessor>), RunError> {
    let Some(path) = path else {
        return Ok((Inherited::default(), None));
    };
    let asked = path.clone();
    let taken = tokio::task::spawn_blocking(move || handover::inherit(&asked))
        .await
        .map_err(|e| RunError::Server(e.to_string()))??;
    let Some((inherited, stream)) = taken else {
        return Ok((Inherited::default(), None));
    };
    let predecessor = handover::Predecessor::new(stream, &path).map_err(|source| {
        RunError::Handover(HandoverError::Io {
            path: path.clone(),
            source,
        })
    })?;
    tracing::info!(sockets = ?inherited.names(), "took the listening sockets over from the running process");
    Ok((inherited, Some(predecessor)))
}

/// The DNS sockets of every `listen` address, inherited or bound, each also
/// offered to a successor.
async fn bind_dns(
    settings: &Settings,
    inherited: &mut Inherited,
    offered: &mut Offered,
) -> Result<Vec<server::Listener>, RunError> {
    let mut listeners = Vec::new();
    for addr in &settings.listen {
        let listener = match server::bind_or_inherit(*addr, server::udp_workers(), inherited).await
        {
            Ok(listener) => listener,
            Err(source) if ipv6_missing(*addr, &settings.listen, &source) => {
                tracing::warn!(%addr, error = %source, "no IPv6 on this host; listening on IPv4 only");
                continue;
            }
            Err(source) => {
                return Err(RunError::Bind {
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

/// `cluster-dns serve`: runs until SIGINT or SIGTERM, or until a new process
/// has taken its sockets over.
pub async fn serve(args: &CommonArgs) -> Result<(), RunError> {
    match raise_descriptor_limit() {
        Ok(limit) => tracing::debug!(limit, "open descriptor limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open descriptor limit"),
    }
    // Installed first, so a SIGTERM that arrives during start-up is not fatal.
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let config_loaded = args
        .config
        .as_ref()
        .and_then(|path| std::fs::read(path).ok());
    let settings = settings(args)?;
    let metrics = Arc::new(Metrics::new());
    // Before anything listens: a running process may hand its sockets over.
    let (mut inherited, mut predecessor) = inherit(settings.handover.clone()).await?;

    // The source: manifests when given, else the API server.
    let (shared, mut tasks, source) = match &settings.manifests {
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
            (shared, vec![watcher], SourceStop::default())
        }
        None => {
            let watch_pods = settings.pods == PodsMode::Verified;
            let shared: SharedSnapshot = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
            // DNS and the probes listen at once, even when the API server does not
            // answer (its version check can take a while).
            let source = spawn_kubernetes_source(
                settings.kube.clone(),
                watch_pods,
                shared.clone(),
                metrics.clone(),
            )
            .await?;
            tracing::info!(
                "watching the Kubernetes API; answering SERVFAIL instead of NXDOMAIN until synced"
            );
            (shared, Vec::new(), source)
        }
    };

    if let Some(mut waiting) = predecessor.take() {
        // Take over with a synced index only; the running process answers meanwhile.
        enum Wait {
            Synced,
            Gone,
            Stopped,
        }
        let outcome = tokio::select! {
            () = handover::wait_until_synced(&shared) => Wait::Synced,
            () = waiting.gone() => Wait::Gone,
            () = shutdown_signal(&mut terminate) => Wait::Stopped,
        };
        match outcome {
            Wait::Synced => predecessor = Some(waiting),
            Wait::Gone => {
                tracing::warn!("the previous process stopped before this one synced; serving now")
            }
            Wait::Stopped => {
                tracing::info!("stopped before taking over; the running process keeps serving");
                return Ok(());
            }
        }
    }
    let mut offered = Offered::default();
    let listeners = bind_dns(&settings, &mut inherited, &mut offered).await?;
    let bound: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();

    let readiness = Arc::new(Readiness::new(shared.clone()));
    let mut probes = Vec::new();
    for (addr, what, endpoint) in [
        (settings.health_listen, "health", Endpoint::Health),
        (
            settings.ready_listen,
            "ready",
            Endpoint::Ready(readiness.clone()),
        ),
        (
            settings.metrics_listen,
            "metrics",
            Endpoint::Metrics(metrics.clone()),
        ),
    ] {
        let role = match endpoint {
            Endpoint::Health => Role::Health,
            Endpoint::Ready(_) => Role::Ready,
            Endpoint::Metrics(_) => Role::Metrics,
        };
        let listener = match inherited.take_listener(role, addr) {
            Ok(Some(listener)) => listener,
            Ok(None) => bind_http(addr, what).await?,
            Err(source) => return Err(RunError::Bind { addr, source }),
        };
        if let Ok(local) = listener.local_addr() {
            tracing::info!("{what} on http://{local}/{what}");
        }
        offered.add(role, addr, &listener);
        probes.push(tokio::spawn(server::http::serve(listener, endpoint)));
    }
    // Staged before anything is served: a failure here leaves the predecessor serving.
    let mut offer = match &settings.handover {
        Some(path) => Some(Offer::listen(path, offered)?),
        None => None,
    };
    if !inherited.is_empty() {
        tracing::info!(sockets = ?inherited.names(), "closing inherited sockets the configuration no longer listens on");
    }
    drop(inherited);

    let zone = Arc::new(ArcSwap::from_pointee(settings.zone_config()));
    let (resolv_loaded, upstreams) = forward::read_upstreams(&settings);
    let forwarding = Arc::new(ArcSwap::from_pointee(forward::forwarding(
        &settings, &upstreams, &metrics,
    )));
    let loop_probe = Arc::new(LoopProbe::new());
    let in_flight = Arc::new(AtomicUsize::new(0));
    // CoreDNS's spelling: `dns://:53` for a wildcard address.
    let server_label = match settings.listen.first() {
        Some(addr) if addr.ip().is_unspecified() => format!("dns://:{}", addr.port()),
        Some(addr) => format!("dns://{addr}"),
        None => "dns://".to_string(),
    };
    let handler = DnsHandler::new(HandlerParts {
        zone: zone.clone(),
        snapshot: shared,
        forwarding: forwarding.clone(),
        metrics: metrics.clone(),
        server_label,
        loadbalance: settings.loadbalance,
        loop_probe: loop_probe.clone(),
        in_flight: in_flight.clone(),
    });
    let tcp = server::TcpSettings {
        max_connections: settings.tcp_max_connections,
        max_queries: settings.tcp_max_queries,
    };
    let mut dns =
        server::start(handler, listeners, tcp).map_err(|e| RunError::Server(e.to_string()))?;
    let zones: Vec<String> = settings.zones.iter().map(ToString::to_string).collect();
    tracing::info!(
        zones = %zones.join(","),
        "listening on {} (udp, tcp)",
        bound.join(" ")
    );

    if let Err(error) = check_forwarding_loop(&forwarding, &loop_probe).await {
        let _ = dns.shutdown().await;
        return Err(error);
    }

    // Reload watches the config file and the resolv.conf the upstreams come from;
    // either may change without the other.
    if args.config.is_some() || matches!(settings.upstreams, Upstreams::ResolvConf(_)) {
        tasks.push(tokio::spawn(crate::reload::watch(
            crate::reload::Reloadable {
                path: args.config.clone(),
                loaded: config_loaded,
                args: args.options.clone(),
                current: settings.clone(),
                resolv_loaded,
                upstreams,
                zone,
                forwarding,
                metrics,
            },
        )));
    }

    if let Some(predecessor) = predecessor {
        predecessor.release(handover::PREDECESSOR_DRAIN).await;
    }
    if let Some(staged) = &offer
        && let Err(error) = staged.publish()
    {
        tracing::warn!(%error, "cannot offer the sockets; the next restart will bind its own");
        offer = None;
    }

    let successor = tokio::select! {
        () = shutdown_signal(&mut terminate) => None,
        successor = handover::next_successor(offer.as_ref()) => Some(successor),
    };
    match &successor {
        // The successor reads from the same sockets already: no lameduck needed.
        Some(successor) => {
            tracing::info!(pid = ?successor.pid, "handed the sockets over; stopping");
            dns.stop_accepting();
            for probe in &probes {
                probe.abort();
            }
        }
        None => {
            // Lameduck: say "not ready" at once, keep answering while the endpoints drain.
            readiness.shut_down();
            tracing::info!(
                lameduck_seconds = settings.lameduck.as_secs(),
                "shutting down: not ready, still answering during the lameduck period"
            );
            tokio::time::sleep(settings.lameduck).await;
        }
    }
    // Stop taking new datagrams first, then let what was taken finish.
    dns.stop_receiving().await;
    let drain_deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while in_flight.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < drain_deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    for task in tasks.iter().chain(&probes) {
        task.abort();
    }
    dns.shutdown().await.map_err(RunError::Server)?;
    if let Some(successor) = successor {
        // Dropping the successor's connection tells it we are done. Then idle,
        // holding no socket, until told to stop: a supervisor that restarts
        // processes that exit would start us again to take the sockets back.
        drop((successor, offer));
        source.stop();
        tracing::info!("handed over; idle until SIGTERM");
        shutdown_signal(&mut terminate).await;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal(terminate: &mut Option<tokio::signal::unix::Signal>) {
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
