//! The Kubernetes source's supervisor: the watchers and the index writer on a
//! thread of their own, started again if they ever stop.

use std::sync::Arc;

use super::kubernetes::{self, KubeError, KubeSettings};
use crate::index::{IndexWriter, SharedSnapshot, feed};
use crate::metrics::Metrics;

/// Runs the Kubernetes watchers and the index writer on a thread of their own, at
/// a lower scheduling priority than the threads that answer: on a busy core a
/// burst of API events waits a little rather than delaying queries. Returns once
/// the client is built (a bad kubeconfig fails start-up).
pub async fn spawn(
    kube_settings: KubeSettings,
    watch_pods: bool,
    shared: SharedSnapshot,
    metrics: Arc<Metrics>,
) -> Result<SourceStop, KubeError> {
    let (started, client_ready) = tokio::sync::oneshot::channel::<Result<(), KubeError>>();
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
                    run_once(
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
                        let _ = started.send(Err(KubeError::Source(
                            "it stopped while starting".into(),
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
        return Err(KubeError::Source(format!(
            "cannot start its thread: {error}"
        )));
    }
    client_ready
        .await
        .unwrap_or_else(|_| Err(KubeError::Source("it stopped".into())))?;
    Ok(SourceStop(Some(stop)))
}

/// Stops the Kubernetes source, for a process that has handed its sockets over.
#[derive(Default)]
pub struct SourceStop(Option<tokio::sync::watch::Sender<bool>>);

impl SourceStop {
    pub fn stop(&self) {
        if let Some(stop) = &self.0 {
            let _ = stop.send(true);
        }
    }
}

/// One life of the Kubernetes source: builds the client (reporting success through
/// `started` the first time), then runs the watchers and the index writer until
/// either ends.
fn run_once(
    kube_settings: &KubeSettings,
    watch_pods: bool,
    shared: &SharedSnapshot,
    metrics: &Arc<Metrics>,
    started: &mut Option<tokio::sync::oneshot::Sender<Result<(), KubeError>>>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<(), KubeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| KubeError::Source(error.to_string()))?;
    runtime.block_on(async {
        let client = kubernetes::client(kube_settings).await?;
        if let Some(started) = started.take() {
            let _ = started.send(Ok(()));
        }
        let endpoints = kube_settings.endpoints;
        let kinds = kubernetes::required_kinds(watch_pods, !endpoints.disabled);
        let mut writer = IndexWriter::awaiting(kinds).with_endpoints(endpoints);
        if kube_settings.namespace_labels.is_some() {
            writer = writer.with_namespace_gate();
        }
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
