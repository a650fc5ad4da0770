//! Configuration reload: when the config file (or the resolv.conf it takes its
//! upstreams from) changes, the new settings replace the old without dropping a
//! query; a bad new file is logged and the old settings kept.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::answer::ZoneConfig;
use crate::config::{FileConfig, Overrides, Settings, Upstreams};
use crate::metrics::Metrics;
use crate::server::Forwarding;

/// How often the files are checked; a ConfigMap volume changes by a symlink swap,
/// which only polling sees reliably.
const POLL: Duration = Duration::from_secs(2);

pub struct Reloadable {
    pub path: PathBuf,
    /// The config file's bytes as read before the running settings were built.
    pub loaded: Option<Vec<u8>>,
    pub args: Overrides,
    pub current: Settings,
    pub zone: Arc<ArcSwap<ZoneConfig>>,
    pub forwarding: Arc<ArcSwap<Option<Forwarding>>>,
    pub metrics: Arc<Metrics>,
}

/// The contents that decide the settings: the config file and, when upstreams come
/// from it, the resolv.conf.
fn contents(path: &PathBuf, settings: &Settings) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    (std::fs::read(path).ok(), resolv_contents(settings))
}

fn resolv_contents(settings: &Settings) -> Option<Vec<u8>> {
    match &settings.upstreams {
        Upstreams::ResolvConf(resolv) => std::fs::read(resolv).ok(),
        Upstreams::Listed(_) => None,
    }
}

pub async fn watch(mut state: Reloadable) {
    // A change made while the server was starting is seen at the first tick.
    let mut seen = (state.loaded.take(), resolv_contents(&state.current));
    let mut ticker = tokio::time::interval(POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let now = contents(&state.path, &state.current);
        if now == seen {
            continue;
        }
        seen = now;
        let loaded = FileConfig::load(&state.path)
            .and_then(|file| Settings::resolve(Some((&state.path, file)), state.args.clone()));
        let new = match loaded {
            Ok(new) => new,
            Err(error) => {
                tracing::error!("{error}; keeping the running configuration");
                continue;
            }
        };
        apply(&state, &new);
        state.current = new;
        seen = contents(&state.path, &state.current);
    }
}

fn apply(state: &Reloadable, new: &Settings) {
    let old = &state.current;
    let restart_needed: Vec<&str> = [
        ("listen", old.listen != new.listen),
        ("manifests", old.manifests != new.manifests),
        (
            "kubeconfig/context/namespaces/labels",
            format!("{:?}", old.kube) != format!("{:?}", new.kube),
        ),
        ("health_listen", old.health_listen != new.health_listen),
        ("ready_listen", old.ready_listen != new.ready_listen),
        ("metrics_listen", old.metrics_listen != new.metrics_listen),
        ("loadbalance", old.loadbalance != new.loadbalance),
        ("lameduck", old.lameduck != new.lameduck),
        (
            "tcp_max_connections/tcp_max_queries",
            old.tcp_max_connections != new.tcp_max_connections
                || old.tcp_max_queries != new.tcp_max_queries,
        ),
        (
            "pods (to or from verified: the pod watch starts at start-up)",
            old.manifests.is_none()
                && (old.pods == crate::answer::PodsMode::Verified)
                    != (new.pods == crate::answer::PodsMode::Verified),
        ),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect();
    if !restart_needed.is_empty() {
        tracing::warn!(
            keys = %restart_needed.join(", "),
            "these settings change only at the next restart"
        );
    }
    state.zone.store(Arc::new(crate::run::zone_config(new)));
    // Forwarding is rebuilt (cache emptied, upstream health reset) only when its
    // own settings or the upstream list changed.
    let forwarding_changed = old.upstreams != new.upstreams
        || crate::run::upstream_addrs(old) != crate::run::upstream_addrs(new)
        || old.forward_timeout != new.forward_timeout
        || old.max_concurrent != new.max_concurrent
        || old.cache_ttl != new.cache_ttl
        || old.cache_size != new.cache_size;
    if forwarding_changed {
        state
            .forwarding
            .store(Arc::new(crate::run::forwarding(new, &state.metrics)));
    }
    tracing::info!(path = %state.path.display(), "configuration reloaded");
}
