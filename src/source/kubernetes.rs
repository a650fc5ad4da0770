//! Cluster objects from the Kubernetes API: one `kube` watcher per kind, each
//! object reduced to its compact form at once and sent to the index writer.

use std::collections::HashSet;
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::cluster::{self, ClusterObject, ConvertError, Kind, ObjectRef};
use crate::index::feed::Change;

/// Where the API server is and what to watch.
#[derive(Clone, Debug, Default)]
pub struct KubeSettings {
    /// A kubeconfig file; without it `KUBECONFIG`, then the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// The API server reached without credentials (CoreDNS `endpoint`), when no
    /// kubeconfig is given.
    pub api_server: Option<http::Uri>,
    pub context: Option<String>,
    /// Only these namespaces are visible (empty: all).
    pub namespaces: Vec<String>,
    /// Label selector for Services and EndpointSlices.
    pub labels: Option<String>,
    /// Label selector for Namespaces; only those it picks are served.
    pub namespace_labels: Option<String>,
    pub streaming_lists: StreamingLists,
    /// What is served from EndpointSlices; with `disabled` they are not watched.
    pub endpoints: crate::cluster::EndpointOptions,
}

/// Whether the first list arrives as a watch stream (`sendInitialEvents`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum StreamingLists {
    /// On API servers that announce 1.32 or later, falling back to list+watch if refused.
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("kubeconfig {}: {source}", path.display())]
    Kubeconfig {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("kubeconfig from KUBECONFIG: {0}")]
    KubeconfigEnv(kube::config::KubeconfigError),
    #[error(
        "not running in a cluster ({0}); pass --kubeconfig FILE or --manifests DIR to run elsewhere"
    )]
    InCluster(kube::config::InClusterError),
    #[error("cannot build the Kubernetes client: {0}")]
    Client(kube::Error),
    #[error("the Kubernetes source: {0}")]
    Source(String),
}

/// A client for the configured API server.
pub async fn client(settings: &KubeSettings) -> Result<Client, KubeError> {
    let options = kube::config::KubeConfigOptions {
        context: settings.context.clone(),
        ..Default::default()
    };
    let config = if let Some(path) = &settings.kubeconfig {
        let kubeconfig =
            kube::config::Kubeconfig::read_from(path).map_err(|source| KubeError::Kubeconfig {
                path: path.clone(),
                source,
            })?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|source| KubeError::Kubeconfig {
                path: path.clone(),
                source,
            })?
    } else if let Some(url) = &settings.api_server {
        kube::Config::new(url.clone())
    } else if std::env::var_os("KUBECONFIG").is_some() {
        kube::Config::from_kubeconfig(&options)
            .await
            .map_err(KubeError::KubeconfigEnv)?
    } else {
        kube::Config::incluster().map_err(KubeError::InCluster)?
    };
    Client::try_from(config).map_err(KubeError::Client)
}

/// Which kinds the index waits for before it is synced.
pub fn required_kinds(watch_pods: bool, watch_slices: bool) -> Vec<Kind> {
    let mut kinds = vec![Kind::Service, Kind::Namespace];
    if watch_slices {
        kinds.push(Kind::EndpointSlice);
    }
    if watch_pods {
        kinds.push(Kind::Pod);
    }
    kinds
}

/// Starts a watcher per kind; each runs until the process ends.
pub async fn spawn_watchers(
    client: Client,
    settings: &KubeSettings,
    watch_pods: bool,
    changes: mpsc::Sender<Change>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let streaming = match settings.streaming_lists {
        StreamingLists::Always => true,
        StreamingLists::Never => false,
        StreamingLists::Auto => supports_streaming_lists(&client).await,
    };
    let filter = NamespaceFilter::new(&settings.namespaces);
    let mut base = watcher::Config::default();
    if streaming {
        base = base.streaming_lists();
    }
    let mut namespaces = base.clone();
    if let Some(selector) = &settings.namespace_labels {
        namespaces = namespaces.labels(selector);
    }
    let mut selected = base.clone();
    if let Some(labels) = &settings.labels {
        selected = selected.labels(labels);
    }
    let feed = |kind| Feed {
        kind,
        changes: changes.clone(),
        filter: filter.clone(),
    };
    let mut tasks = vec![
        tokio::spawn(watch(
            Api::<Service>::all(client.clone()),
            selected.clone(),
            feed(Kind::Service),
            |s| cluster::service_info(s).map(ClusterObject::Service),
        )),
        tokio::spawn(watch(
            Api::<Namespace>::all(client.clone()),
            namespaces,
            feed(Kind::Namespace),
            |n| cluster::namespace_name(n).map(ClusterObject::Namespace),
        )),
    ];
    // `noendpoints`: the slices are not even listed (the memory they would take).
    if !settings.endpoints.disabled {
        tasks.push(tokio::spawn(watch(
            Api::<EndpointSlice>::all(client.clone()),
            selected,
            feed(Kind::EndpointSlice),
            |s| cluster::endpoint_slice_info(s).map(ClusterObject::EndpointSlice),
        )));
    }
    if watch_pods {
        tasks.push(tokio::spawn(watch(
            Api::<Pod>::all(client),
            base,
            feed(Kind::Pod),
            |p| cluster::pod_info(p).map(ClusterObject::Pod),
        )));
    }
    tasks
}

async fn supports_streaming_lists(client: &Client) -> bool {
    let version = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        client.apiserver_version(),
    )
    .await
    .unwrap_or_else(|_| Err(kube::Error::Service("timed out".into())));
    match version {
        Ok(info) => {
            let minor: u32 = info.minor.trim_end_matches('+').parse().unwrap_or_default();
            let supported = info.major == "1" && minor >= 32;
            tracing::info!(
                version = %info.git_version,
                streaming_lists = supported,
                "API server version"
            );
            supported
        }
        Err(error) => {
            tracing::info!(%error, "cannot read the API server version; using list+watch");
            false
        }
    }
}

#[derive(Clone)]
struct NamespaceFilter(Option<Arc<HashSet<String>>>);

impl NamespaceFilter {
    fn new(namespaces: &[String]) -> Self {
        if namespaces.is_empty() {
            NamespaceFilter(None)
        } else {
            NamespaceFilter(Some(Arc::new(
                namespaces.iter().map(|n| n.to_ascii_lowercase()).collect(),
            )))
        }
    }

    fn allows(&self, namespace: &str) -> bool {
        self.0.as_ref().is_none_or(|set| set.contains(namespace))
    }
}

struct Feed {
    kind: Kind,
    changes: mpsc::Sender<Change>,
    filter: NamespaceFilter,
}

/// When the EndpointSlice controller saw the change that produced this object.
fn trigger_time<K: Resource>(object: &K) -> Option<SystemTime> {
    let value = object
        .meta()
        .annotations
        .as_ref()?
        .get("endpoints.kubernetes.io/last-change-trigger-time")?;
    let timestamp: jiff::Timestamp = value.parse().ok()?;
    Some(SystemTime::from(timestamp))
}

fn object_ref<K: Resource>(kind: Kind, object: &K) -> Option<ObjectRef> {
    let name = object.meta().name.as_deref()?.to_ascii_lowercase();
    let namespace = match kind {
        Kind::Namespace => name.clone(),
        _ => object
            .meta()
            .namespace
            .as_deref()
            .unwrap_or("default")
            .to_ascii_lowercase(),
    };
    Some(ObjectRef {
        kind,
        namespace: namespace.into(),
        name: name.into(),
    })
}

/// Health of one watch, for logging once per state change.
#[derive(PartialEq)]
enum WatchHealth {
    Starting,
    Ok,
    Failing,
}

async fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
    feed: Feed,
    convert: fn(&K) -> Result<ClusterObject, ConvertError>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let kind = feed.kind;
    let streaming = config.initial_list_strategy == watcher::InitialListStrategy::StreamingList;
    let mut stream = watcher::watcher(api.clone(), config.clone())
        .default_backoff()
        .boxed();
    let mut health = WatchHealth::Starting;
    let mut listed = false;
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(event) => event,
            Err(error) => {
                if streaming && !listed && refuses_streaming(&error) {
                    tracing::info!(
                        %kind, %error,
                        "the API server refuses streaming lists; falling back to list+watch"
                    );
                    let mut fallback = config.clone();
                    fallback.initial_list_strategy = watcher::InitialListStrategy::ListWatch;
                    stream = watcher::watcher(api.clone(), fallback)
                        .default_backoff()
                        .boxed();
                    continue;
                }
                report_error(kind, &error, &mut health);
                continue;
            }
        };
        if health == WatchHealth::Failing {
            tracing::info!(%kind, "watch recovered");
        }
        health = WatchHealth::Ok;
        let received = Instant::now();
        let initial_event = matches!(event, Event::InitApply(_));
        let change = match event {
            Event::Init => Some(Change::RelistStart(kind)),
            Event::InitDone => {
                if !listed {
                    tracing::info!(%kind, "initial list complete");
                }
                listed = true;
                Some(Change::RelistDone(kind))
            }
            Event::InitApply(object) | Event::Apply(object) => {
                let live = !initial_event;
                let visible =
                    object_ref(kind, &object).is_some_and(|r| feed.filter.allows(&r.namespace));
                if !visible {
                    None
                } else {
                    match convert(&object) {
                        Ok(converted) => Some(Change::Apply {
                            object: converted,
                            live,
                            received,
                            trigger: trigger_time(&object),
                        }),
                        Err(error) => {
                            tracing::warn!(%kind, name = %object.name_any(), %error, "ignoring object");
                            None
                        }
                    }
                }
            }
            Event::Delete(object) => object_ref(kind, &object)
                .filter(|r| feed.filter.allows(&r.namespace))
                .map(|object_ref| Change::Delete {
                    object: object_ref,
                    received,
                    trigger: trigger_time(&object),
                }),
        };
        if let Some(change) = change
            && feed.changes.send(change).await.is_err()
        {
            return; // the index writer is gone: shutting down
        }
    }
}

/// An API server without the WatchList feature rejects `sendInitialEvents`.
fn refuses_streaming(error: &watcher::Error) -> bool {
    matches!(
        error,
        watcher::Error::WatchStartFailed(kube::Error::Api(status)) if matches!(status.code, 400 | 422)
    )
}

fn report_error(kind: Kind, error: &watcher::Error, health: &mut WatchHealth) {
    let (verb, api_error) = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status)) => ("list", Some(status.code)),
        watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => ("watch", Some(status.code)),
        watcher::Error::WatchError(status) => ("watch", Some(status.code)),
        watcher::Error::InitialListFailed(_) => ("list", None),
        _ => ("watch", None),
    };
    if api_error == Some(403) {
        // RBAC: say exactly what is missing, once per outage.
        if *health != WatchHealth::Failing {
            tracing::error!(
                "permission denied on {kind} (verb {verb}): the service account needs \
                 list and watch on {kind} in all namespaces (see the RBAC in README)"
            );
        }
    } else if api_error == Some(410) {
        tracing::info!(%kind, "watch expired (410 Gone); listing again");
        return;
    } else if *health != WatchHealth::Failing {
        tracing::warn!(%kind, %error, "cannot {verb} from the API server; retrying with backoff, serving the last known records");
    } else {
        tracing::debug!(%kind, %error, "still failing");
    }
    *health = WatchHealth::Failing;
}
