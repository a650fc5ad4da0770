//! Configuration reload: when the config file (or the resolv.conf the upstreams
//! come from) changes, the new settings replace the old without dropping a query;
//! a bad new file is logged and the old settings kept. Without a config file the
//! resolv.conf is still watched.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::answer::ZoneConfig;
use crate::config::{ConfigError, Options, Settings};
use crate::forward::Forwarding;
use crate::metrics::Metrics;

/// How often the files are checked; a ConfigMap volume changes by a symlink swap,
/// which only polling sees reliably.
const POLL: Duration = Duration::from_secs(2);

pub struct Reloadable {
    /// The config file, if the server was started with one.
    pub path: Option<PathBuf>,
    /// The config file's bytes as read before the running settings were built.
    pub loaded: Option<Vec<u8>>,
    /// The Corefile's bytes likewise (only the file itself, not what it imports).
    pub corefile_loaded: Option<Vec<u8>>,
    /// The hosts file's bytes the running table was built from.
    pub hosts_loaded: Option<Vec<u8>>,
    pub args: Options,
    pub current: Settings,
    /// The resolv.conf's bytes the running upstreams were read from.
    pub resolv_loaded: Option<Vec<u8>>,
    /// The upstreams in use: a reload compares against these, not against a second
    /// reading of the file.
    pub upstreams: Vec<SocketAddr>,
    pub zone: Arc<ArcSwap<ZoneConfig>>,
    pub forwarding: Arc<ArcSwap<Option<Forwarding>>>,
    pub metrics: Arc<Metrics>,
}

/// Settings from the config file's `bytes` (as just read) and the flags.
fn settings_from(
    path: Option<&Path>,
    bytes: Option<&[u8]>,
    args: &Options,
) -> Result<Settings, ConfigError> {
    let Some(path) = path else {
        return Settings::resolve(None, args.clone());
    };
    let file = match bytes.map(std::str::from_utf8) {
        Some(Ok(text)) => Options::from_toml(path, text)?,
        // Missing or not UTF-8: reading it again gives the error that says so.
        _ => Options::load(path)?,
    };
    Settings::resolve(Some((path, file)), args.clone())
}

pub async fn watch(mut state: Reloadable) {
    let mut ticker = tokio::time::interval(POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        // A change made while the server was starting is seen at the first tick.
        check(&mut state);
    }
}

/// One look at the files; applies what changed.
fn check(state: &mut Reloadable) {
    let config_now = state
        .path
        .as_ref()
        .and_then(|path| std::fs::read(path).ok());
    let corefile_now = state
        .current
        .corefile
        .as_ref()
        .and_then(|path| std::fs::read(path).ok());
    let corefile_changed =
        state.current.corefile.is_some() && corefile_now != state.corefile_loaded;
    let config_changed = state.path.is_some() && config_now != state.loaded || corefile_changed;
    let new = if config_changed {
        // Remembered before parsing, so a bad file is reported once, not every tick.
        state.loaded = config_now;
        state.corefile_loaded = corefile_now;
        match settings_from(state.path.as_deref(), state.loaded.as_deref(), &state.args) {
            Ok(new) => new,
            Err(error) => {
                tracing::error!("{error}; keeping the running configuration");
                return;
            }
        }
    } else {
        state.current.clone()
    };
    let (resolv_now, mut upstreams) = crate::forward::read_upstreams(&new);
    let hosts_now = hosts_file_bytes(&new);
    if !config_changed && resolv_now == state.resolv_loaded {
        if hosts_now != state.hosts_loaded {
            state.hosts_loaded = hosts_now;
            state.zone.store(Arc::new(new.zone_config()));
            tracing::info!("hosts file changed; new entries in use");
        }
        return;
    }
    state.hosts_loaded = hosts_now;
    if upstreams.is_empty() && !state.upstreams.is_empty() && resolv_now != state.resolv_loaded {
        // A resolv.conf caught mid-rewrite, or emptied: better the last resolvers
        // than refusing every name outside the cluster.
        tracing::warn!("the resolv.conf names no nameserver; keeping the running upstreams");
        upstreams = state.upstreams.clone();
    }
    apply(state, &new, &upstreams, config_changed);
    state.current = new;
    state.resolv_loaded = resolv_now;
    state.upstreams = upstreams;
}

/// The hosts file's bytes, if the settings name one.
pub fn hosts_file_bytes(settings: &Settings) -> Option<Vec<u8>> {
    let path = settings.plugins.hosts.file.as_ref()?;
    std::fs::read(path).ok()
}

fn apply(state: &Reloadable, new: &Settings, upstreams: &[SocketAddr], config_changed: bool) {
    let old = &state.current;
    let restart_needed: Vec<&str> = [
        ("listen", old.listen != new.listen),
        ("manifests", old.manifests != new.manifests),
        (
            "the API source (kubeconfig, api_server, context, namespaces, labels, namespace_labels, endpoint_pod_names, endpoints, streaming_lists)",
            format!("{:?}", old.kube) != format!("{:?}", new.kube),
        ),
        ("health_listen", old.health_listen != new.health_listen),
        ("ready_listen", old.ready_listen != new.ready_listen),
        ("metrics_listen", old.metrics_listen != new.metrics_listen),
        ("loadbalance", old.loadbalance != new.loadbalance),
        ("lameduck", old.lameduck != new.lameduck),
        ("handover", old.handover != new.handover),
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
    state.zone.store(Arc::new(new.zone_config()));
    // Forwarding is rebuilt (cache emptied, upstream health reset) only when its
    // own settings or the upstreams in use changed.
    let forwarding_changed = upstreams != state.upstreams.as_slice()
        || old.forward_timeout != new.forward_timeout
        || old.max_concurrent != new.max_concurrent
        || old.forward != new.forward
        || old.cache != new.cache
        || old.stub_domains != new.stub_domains
        // A block's forwarding (its resolv.conf is read again on every change).
        || !new.blocks.is_empty() && config_changed
        || format!("{:?}", old.blocks) != format!("{:?}", new.blocks);
    if forwarding_changed {
        state.forwarding.store(Arc::new(crate::forward::forwarding(
            new,
            upstreams,
            &state.metrics,
        )));
    }
    match (&state.path, config_changed) {
        (Some(path), true) => {
            tracing::info!(path = %path.display(), "configuration reloaded");
        }
        _ if forwarding_changed => tracing::info!("resolv.conf changed; new upstreams in use"),
        _ => tracing::debug!("resolv.conf changed; same upstreams"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded_to(state: &Reloadable) -> Vec<SocketAddr> {
        let forwarding = state.forwarding.load_full();
        match forwarding.as_ref() {
            Some(forwarding) => forwarding.forwarder.upstreams().collect(),
            None => Vec::new(),
        }
    }

    /// The server's start-up, for upstreams from `resolv` and the config file `config`.
    fn started(resolv: &Path, config: Option<&Path>) -> Reloadable {
        let args = Options {
            resolv_conf: Some(resolv.to_path_buf()),
            ..Options::default()
        };
        let loaded = config.and_then(|path| std::fs::read(path).ok());
        let current = settings_from(config, loaded.as_deref(), &args).unwrap();
        let metrics = Arc::new(Metrics::new());
        let (resolv_loaded, upstreams) = crate::forward::read_upstreams(&current);
        let forwarding = crate::forward::forwarding(&current, &upstreams, &metrics);
        Reloadable {
            path: config.map(Path::to_path_buf),
            loaded,
            corefile_loaded: None,
            hosts_loaded: None,
            args,
            zone: Arc::new(ArcSwap::from_pointee(current.zone_config())),
            current,
            resolv_loaded,
            upstreams,
            forwarding: Arc::new(ArcSwap::from_pointee(forwarding)),
            metrics,
        }
    }

    fn socket(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_changed_resolv_conf_switches_the_upstreams() {
        let dir = tempfile::tempdir().unwrap();
        let resolv = dir.path().join("resolv.conf");
        std::fs::write(&resolv, "nameserver 127.0.0.1:5301\n").unwrap();
        let config = dir.path().join("c.toml");
        std::fs::write(&config, "ttl = 5\n").unwrap();
        for config in [None, Some(config.as_path())] {
            std::fs::write(&resolv, "nameserver 127.0.0.1:5301\n").unwrap();
            let mut state = started(&resolv, config);
            assert_eq!(forwarded_to(&state), vec![socket("127.0.0.1:5301")]);
            check(&mut state);
            assert_eq!(forwarded_to(&state), vec![socket("127.0.0.1:5301")]);

            std::fs::write(&resolv, "nameserver 127.0.0.1:5302\nnameserver ::1\n").unwrap();
            check(&mut state);
            assert_eq!(
                forwarded_to(&state),
                vec![socket("127.0.0.1:5302"), socket("[::1]:53")],
                "config file {config:?}"
            );
            assert_eq!(state.upstreams, forwarded_to(&state));

            // Emptied (or caught mid-rewrite): the last upstreams stay.
            std::fs::write(&resolv, "# nothing yet\n").unwrap();
            check(&mut state);
            assert_eq!(
                forwarded_to(&state),
                vec![socket("127.0.0.1:5302"), socket("[::1]:53")]
            );
            std::fs::write(&resolv, "nameserver 127.0.0.1:5303\n").unwrap();
            check(&mut state);
            assert_eq!(forwarded_to(&state), vec![socket("127.0.0.1:5303")]);
        }
    }

    #[test]
    fn a_config_change_still_applies_and_a_bad_one_is_kept_out() {
        let dir = tempfile::tempdir().unwrap();
        let resolv = dir.path().join("resolv.conf");
        std::fs::write(&resolv, "nameserver 127.0.0.1:5301\n").unwrap();
        let config = dir.path().join("c.toml");
        std::fs::write(&config, "ttl = 5\n").unwrap();
        let mut state = started(&resolv, Some(&config));
        std::fs::write(&config, "ttl = 42\nupstream = [\"127.0.0.1:5309\"]\n").unwrap();
        check(&mut state);
        assert_eq!(state.zone.load().ttl, 42);
        assert_eq!(forwarded_to(&state), vec![socket("127.0.0.1:5309")]);
        std::fs::write(&config, "ttl = 7\nbogus = 1\n").unwrap();
        check(&mut state);
        assert_eq!(state.zone.load().ttl, 42, "the running settings stay");
        assert_eq!(forwarded_to(&state), vec![socket("127.0.0.1:5309")]);
    }
}
