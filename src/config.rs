//! Settings: the TOML file, overridden by command-line flags, validated into one struct.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::Name;
use serde::Deserialize;

use crate::answer::PodsMode;
use crate::source::kubernetes::{KubeSettings, StreamingLists};

/// Largest TTL accepted, as CoreDNS's `ttl` option.
pub const MAX_TTL: u32 = 3600;
pub const DEFAULT_TTL: u32 = 5;
pub const DEFAULT_ZONE: &str = "cluster.local";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5353";
pub const DEFAULT_POLL_MS: u64 = 1000;
pub const DEFAULT_HEALTH_LISTEN: &str = "0.0.0.0:8080";
pub const DEFAULT_READY_LISTEN: &str = "0.0.0.0:8181";
pub const DEFAULT_METRICS_LISTEN: &str = "0.0.0.0:9153";
pub const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";
pub const DEFAULT_LAMEDUCK_SECONDS: u64 = 5;
pub const DEFAULT_CACHE_TTL: u32 = 30;

/// The configuration file as written. Every key is optional; unknown keys are refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub zones: Option<Vec<String>>,
    pub listen: Option<Vec<String>>,
    pub ttl: Option<u32>,
    pub pods: Option<PodsMode>,
    pub ignore_empty_service: Option<bool>,
    pub manifests: Option<PathBuf>,
    pub manifests_poll_interval_ms: Option<u64>,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespaces: Option<Vec<String>>,
    pub labels: Option<String>,
    pub streaming_lists: Option<StreamingLists>,
    pub metrics_listen: Option<String>,
    pub health_listen: Option<String>,
    pub ready_listen: Option<String>,
    pub upstream: Option<Vec<String>>,
    pub resolv_conf: Option<PathBuf>,
    pub forward_timeout_ms: Option<u64>,
    pub max_concurrent: Option<usize>,
    pub cache_ttl: Option<u32>,
    pub cache_size: Option<usize>,
    pub lameduck: Option<u64>,
    pub loadbalance: Option<bool>,
    pub tcp_max_connections: Option<usize>,
    pub tcp_max_queries: Option<usize>,
    pub handover: Option<PathBuf>,
}

/// Values given on the command line; each one overrides the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub zones: Vec<String>,
    pub listen: Vec<String>,
    pub ttl: Option<u32>,
    pub pods: Option<PodsMode>,
    pub manifests: Option<PathBuf>,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub metrics_listen: Option<String>,
    pub health_listen: Option<String>,
    pub ready_listen: Option<String>,
    pub upstream: Vec<String>,
    pub resolv_conf: Option<PathBuf>,
    pub lameduck: Option<u64>,
    pub cache_ttl: Option<u32>,
    pub tcp_max_connections: Option<usize>,
    pub tcp_max_queries: Option<usize>,
    pub handover: Option<PathBuf>,
}

/// Validated settings the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Cluster zones, lower case, fully qualified; the first is the primary.
    pub zones: Vec<Name>,
    pub listen: Vec<SocketAddr>,
    pub ttl: u32,
    pub pods: PodsMode,
    pub ignore_empty_service: bool,
    pub manifests: Option<PathBuf>,
    pub manifests_poll_interval: Duration,
    /// Used when there is no `manifests` directory.
    pub kube: KubeSettings,
    pub metrics_listen: SocketAddr,
    pub health_listen: SocketAddr,
    pub ready_listen: SocketAddr,
    pub upstreams: Upstreams,
    pub forward_timeout: Duration,
    pub max_concurrent: usize,
    /// Longest time a forwarded answer is cached; 0 disables the cache.
    pub cache_ttl: u32,
    pub cache_size: usize,
    pub lameduck: Duration,
    pub loadbalance: bool,
    /// DNS-over-TCP connections at once (the server also keeps it under a
    /// quarter of the descriptor limit).
    pub tcp_max_connections: usize,
    /// Queries per DNS-over-TCP connection before it is closed; 0 for no cap.
    pub tcp_max_queries: usize,
    /// Unix socket where the listening sockets pass to a restarted process.
    pub handover: Option<PathBuf>,
}

/// Where forwarded queries go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstreams {
    Listed(Vec<SocketAddr>),
    /// The `nameserver` lines of this resolv.conf, read at start and on reload.
    ResolvConf(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{origin}: key `{key}`: {message}")]
    Invalid {
        origin: String,
        key: &'static str,
        message: String,
    },
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
    }
}

impl Settings {
    /// Merges the file (if any) and the flags, flags winning, and validates the result.
    pub fn resolve(
        file: Option<(&Path, FileConfig)>,
        flags: Overrides,
    ) -> Result<Self, ConfigError> {
        let (file_path, file) = match file {
            Some((path, config)) => (Some(path), config),
            None => (None, FileConfig::default()),
        };
        let file_origin = file_path
            .map(|p| format!("config file {}", p.display()))
            .unwrap_or_default();
        let origin = |from_flag: bool, flag: &str| {
            if from_flag || file_path.is_none() {
                format!("flag --{flag}")
            } else {
                file_origin.clone()
            }
        };
        let invalid = |origin: String, key: &'static str, message: String| ConfigError::Invalid {
            origin,
            key,
            message,
        };

        let zones_from_flag = !flags.zones.is_empty();
        let zone_texts = if zones_from_flag {
            flags.zones
        } else {
            file.zones.unwrap_or_else(|| vec![DEFAULT_ZONE.to_string()])
        };
        if zone_texts.is_empty() {
            return Err(invalid(
                origin(false, "zone"),
                "zones",
                "at least one zone is required".into(),
            ));
        }
        let mut zones = Vec::new();
        for text in &zone_texts {
            let zone = parse_zone(text)
                .map_err(|message| invalid(origin(zones_from_flag, "zone"), "zones", message))?;
            if !zones.contains(&zone) {
                zones.push(zone);
            }
        }

        let listen_from_flag = !flags.listen.is_empty();
        let listen_texts = if listen_from_flag {
            flags.listen
        } else {
            file.listen
                .unwrap_or_else(|| vec![DEFAULT_LISTEN.to_string()])
        };
        if listen_texts.is_empty() {
            return Err(invalid(
                origin(false, "listen"),
                "listen",
                "at least one address is required".into(),
            ));
        }
        let mut listen = Vec::new();
        for text in &listen_texts {
            let addrs = parse_dns_listen(text).map_err(|message| {
                invalid(origin(listen_from_flag, "listen"), "listen", message)
            })?;
            for addr in addrs {
                if !listen.contains(&addr) {
                    listen.push(addr);
                }
            }
        }

        let ttl_from_flag = flags.ttl.is_some();
        let ttl = flags.ttl.or(file.ttl).unwrap_or(DEFAULT_TTL);
        if ttl > MAX_TTL {
            return Err(invalid(
                origin(ttl_from_flag, "ttl"),
                "ttl",
                format!("{ttl} is above the maximum of {MAX_TTL} seconds"),
            ));
        }

        let poll_ms = file.manifests_poll_interval_ms.unwrap_or(DEFAULT_POLL_MS);
        if !(10..=3_600_000).contains(&poll_ms) {
            return Err(invalid(
                file_origin.clone(),
                "manifests_poll_interval_ms",
                format!("{poll_ms} is outside 10..=3600000"),
            ));
        }

        // A relative path in the file is relative to the file, so the file can move with its data.
        let manifests = match (flags.manifests, file.manifests, file_path) {
            (Some(dir), _, _) => Some(dir),
            (None, Some(dir), Some(path)) if dir.is_relative() => {
                Some(path.parent().unwrap_or(Path::new(".")).join(dir))
            }
            (None, dir, _) => dir,
        };

        let relative_to_file = |path: PathBuf| match file_path {
            Some(file) if path.is_relative() => file.parent().unwrap_or(Path::new(".")).join(path),
            _ => path,
        };
        let kubeconfig = flags
            .kubeconfig
            .or_else(|| file.kubeconfig.map(relative_to_file));
        let mut namespaces = Vec::new();
        for namespace in file.namespaces.unwrap_or_default() {
            let valid = !namespace.is_empty()
                && namespace.len() <= 63
                && namespace
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !valid {
                return Err(invalid(
                    file_origin.clone(),
                    "namespaces",
                    format!("{namespace:?} is not a namespace name"),
                ));
            }
            namespaces.push(namespace.to_ascii_lowercase());
        }
        if file.labels.as_deref().is_some_and(|l| l.trim().is_empty()) {
            return Err(invalid(
                file_origin.clone(),
                "labels",
                "the selector is empty".into(),
            ));
        }
        let http_listen = |flag: Option<String>,
                           file_value: Option<String>,
                           default: &str,
                           flag_name: &str,
                           key: &'static str|
         -> Result<SocketAddr, ConfigError> {
            let from_flag = flag.is_some();
            let text = flag.or(file_value).unwrap_or_else(|| default.to_string());
            parse_listen(&text)
                .map_err(|message| invalid(origin(from_flag, flag_name), key, message))
        };
        let metrics_listen = http_listen(
            flags.metrics_listen,
            file.metrics_listen,
            DEFAULT_METRICS_LISTEN,
            "metrics-listen",
            "metrics_listen",
        )?;
        let health_listen = http_listen(
            flags.health_listen,
            file.health_listen,
            DEFAULT_HEALTH_LISTEN,
            "health-listen",
            "health_listen",
        )?;
        let ready_listen = http_listen(
            flags.ready_listen,
            file.ready_listen,
            DEFAULT_READY_LISTEN,
            "ready-listen",
            "ready_listen",
        )?;
        let upstream_from_flag = !flags.upstream.is_empty();
        let upstream_texts = if upstream_from_flag {
            flags.upstream
        } else {
            file.upstream.unwrap_or_default()
        };
        let upstreams = if upstream_texts.is_empty() {
            let path = flags
                .resolv_conf
                .or_else(|| file.resolv_conf.map(relative_to_file))
                .unwrap_or_else(|| PathBuf::from(DEFAULT_RESOLV_CONF));
            Upstreams::ResolvConf(path)
        } else {
            let mut listed = Vec::new();
            for text in &upstream_texts {
                listed.push(parse_upstream(text).map_err(|message| {
                    invalid(origin(upstream_from_flag, "upstream"), "upstream", message)
                })?);
            }
            Upstreams::Listed(listed)
        };
        let timeout_ms = file.forward_timeout_ms.unwrap_or(2000);
        if !(50..=30_000).contains(&timeout_ms) {
            return Err(invalid(
                file_origin.clone(),
                "forward_timeout_ms",
                format!("{timeout_ms} is outside 50..=30000"),
            ));
        }
        let max_concurrent = file.max_concurrent.unwrap_or(1000);
        if max_concurrent == 0 {
            return Err(invalid(
                file_origin.clone(),
                "max_concurrent",
                "must be at least 1".into(),
            ));
        }
        let cache_from_flag = flags.cache_ttl.is_some();
        let cache_ttl = flags
            .cache_ttl
            .or(file.cache_ttl)
            .unwrap_or(DEFAULT_CACHE_TTL);
        if cache_ttl > 86_400 {
            return Err(invalid(
                origin(cache_from_flag, "cache-ttl"),
                "cache_ttl",
                format!("{cache_ttl} is above the maximum of 86400 seconds"),
            ));
        }
        let cache_size = file.cache_size.unwrap_or(10_000);
        if cache_size == 0 {
            return Err(invalid(
                file_origin.clone(),
                "cache_size",
                "must be at least 1 (set cache_ttl = 0 to turn the cache off)".into(),
            ));
        }
        let lameduck_from_flag = flags.lameduck.is_some();
        let lameduck = flags
            .lameduck
            .or(file.lameduck)
            .unwrap_or(DEFAULT_LAMEDUCK_SECONDS);
        if lameduck > 600 {
            return Err(invalid(
                origin(lameduck_from_flag, "lameduck"),
                "lameduck",
                format!("{lameduck} is above the maximum of 600 seconds"),
            ));
        }

        let tcp_connections_from_flag = flags.tcp_max_connections.is_some();
        let tcp_max_connections = flags
            .tcp_max_connections
            .or(file.tcp_max_connections)
            .unwrap_or(crate::server::tcp::DEFAULT_MAX_CONNECTIONS);
        if tcp_max_connections == 0 {
            return Err(invalid(
                origin(tcp_connections_from_flag, "tcp-max-connections"),
                "tcp_max_connections",
                "must be at least 1".into(),
            ));
        }
        let tcp_max_queries = flags
            .tcp_max_queries
            .or(file.tcp_max_queries)
            .unwrap_or(crate::server::tcp::DEFAULT_MAX_QUERIES);

        let handover = flags
            .handover
            .or_else(|| file.handover.map(relative_to_file));

        Ok(Settings {
            tcp_max_connections,
            tcp_max_queries,
            handover,
            kube: KubeSettings {
                kubeconfig,
                context: flags.context.or(file.context),
                namespaces,
                labels: file.labels,
                streaming_lists: file.streaming_lists.unwrap_or_default(),
            },
            metrics_listen,
            health_listen,
            ready_listen,
            upstreams,
            forward_timeout: Duration::from_millis(timeout_ms),
            max_concurrent,
            cache_ttl,
            cache_size,
            lameduck: Duration::from_secs(lameduck),
            loadbalance: file.loadbalance.unwrap_or(true),
            zones,
            listen,
            ttl,
            pods: flags.pods.or(file.pods).unwrap_or_default(),
            ignore_empty_service: file.ignore_empty_service.unwrap_or(false),
            manifests,
            manifests_poll_interval: Duration::from_millis(poll_ms),
        })
    }
}

impl Settings {
    /// The zone configuration the answer code works from.
    pub fn zone_config(&self) -> crate::answer::ZoneConfig {
        let mut zone = crate::answer::ZoneConfig::new(&self.zones, self.ttl, self.pods);
        zone.ignore_empty_service = self.ignore_empty_service;
        zone.ns_ips = self
            .listen
            .iter()
            .map(SocketAddr::ip)
            // C26: the addresses clients can reach us on; wildcards and loopback say nothing.
            .filter(|ip| !ip.is_unspecified() && !ip.is_loopback())
            .collect();
        zone.ns_ips.dedup();
        zone
    }
}

fn parse_zone(text: &str) -> Result<Name, String> {
    let trimmed = text.trim().trim_end_matches('.');
    if trimmed.is_empty() {
        return Err(format!(
            "{text:?} is not a zone: the root zone cannot be served"
        ));
    }
    let lower = trimmed.to_ascii_lowercase();
    if lower == "arpa" || lower.ends_with(".arpa") {
        return Err(format!(
            "{text:?} is a reverse zone: in-addr.arpa and ip6.arpa are always served, list only cluster zones"
        ));
    }
    let mut name =
        Name::from_ascii(trimmed).map_err(|e| format!("{text:?} is not a domain name: {e}"))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

/// An upstream resolver: `ADDR`, `ADDR:PORT`, `[V6]:PORT` or a bare IPv6 address.
pub fn parse_upstream(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            format!("{text:?} is not an upstream: expected ADDR[:PORT] with an IP address")
        })
}

/// A DNS `listen` entry: as [`parse_listen`], except that no host (`:PORT`, or
/// CoreDNS's `.:PORT`) means every interface of both families, `0.0.0.0:PORT` and
/// `[::]:PORT`, so that dual-stack clusters need no edit.
pub fn parse_dns_listen(text: &str) -> Result<Vec<SocketAddr>, String> {
    let trimmed = text.trim();
    let port = trimmed
        .strip_prefix(':')
        .or_else(|| trimmed.strip_prefix(".:"));
    if let Some(port) = port
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        ]);
    }
    parse_listen(text).map(|addr| vec![addr])
}

/// `ADDR:PORT`, `[V6]:PORT`, a bare address (port 53) or `:PORT`: all interfaces,
/// `[::]:PORT`, which the HTTP endpoints bind dual-stack (IPv4 too).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(SocketAddr::new(ip, 53));
    }
    if let Some(port) = text.strip_prefix(':')
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port));
    }
    Err(format!(
        "{text:?} is not an address: expected ADDR:PORT, [IPV6]:PORT or ADDR"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_file(text: &str) -> Result<Settings, ConfigError> {
        let path = Path::new("/etc/cluster-dns/cluster-dns.toml");
        let file = FileConfig::parse(path, text)?;
        Settings::resolve(Some((path, file)), Overrides::default())
    }

    #[test]
    fn defaults() {
        let s = Settings::resolve(None, Overrides::default()).unwrap();
        assert_eq!(s.zones, vec![Name::from_ascii("cluster.local.").unwrap()]);
        assert_eq!(s.listen, vec!["127.0.0.1:5353".parse().unwrap()]);
        assert_eq!(s.ttl, 5);
        assert_eq!(s.pods, PodsMode::Insecure);
        assert_eq!(s.manifests, None);
    }

    #[test]
    fn unknown_keys_are_refused_with_the_file_and_key() {
        let err = from_file("ttl = 5\nzone = [\"x\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("config file /etc/cluster-dns/cluster-dns.toml:"),
            "{err}"
        );
        assert!(err.contains("unknown field `zone`"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = from_file("ttl = 4000\n").unwrap_err().to_string();
        assert_eq!(
            err,
            "config file /etc/cluster-dns/cluster-dns.toml: key `ttl`: 4000 is above the maximum of 3600 seconds"
        );
        let err = from_file("pods = \"sometimes\"\n").unwrap_err().to_string();
        assert!(err.contains("unknown variant `sometimes`"), "{err}");
        let err = from_file("listen = [\"localhost:53\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `listen`"), "{err}");
        let err = from_file("zones = [\".\"]\n").unwrap_err().to_string();
        assert!(err.contains("key `zones`"), "{err}");
        let err = from_file("zones = [\"cluster.local\", \"in-addr.arpa\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a reverse zone"), "{err}");
    }

    #[test]
    fn flags_override_the_file_and_name_themselves() {
        let path = Path::new("c.toml");
        let file = FileConfig::parse(
            path,
            "ttl = 30\nlisten = [\"127.0.0.1:53\"]\nmanifests = \"m\"\n",
        )
        .unwrap();
        let flags = Overrides {
            ttl: Some(7),
            ..Overrides::default()
        };
        let s = Settings::resolve(Some((path, file)), flags).unwrap();
        assert_eq!(s.ttl, 7);
        assert_eq!(s.listen, vec!["127.0.0.1:53".parse().unwrap()]);
        assert_eq!(s.manifests, Some(PathBuf::from("m")));
        let err = Settings::resolve(
            None,
            Overrides {
                ttl: Some(9999),
                ..Overrides::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("flag --ttl: key `ttl`"), "{err}");
    }

    #[test]
    fn a_port_alone_listens_on_both_families() {
        let both: Vec<SocketAddr> = vec!["0.0.0.0:53".parse().unwrap(), "[::]:53".parse().unwrap()];
        assert_eq!(from_file("listen = [\":53\"]\n").unwrap().listen, both);
        let flags = Overrides {
            listen: vec![":53".into(), "0.0.0.0:53".into(), ".:53".into()],
            ..Overrides::default()
        };
        assert_eq!(Settings::resolve(None, flags).unwrap().listen, both);
    }

    #[test]
    fn listen_forms() {
        assert_eq!(
            parse_listen("[::1]:5353").unwrap(),
            "[::1]:5353".parse().unwrap()
        );
        assert_eq!(
            parse_listen("10.0.0.1").unwrap(),
            "10.0.0.1:53".parse().unwrap()
        );
        assert_eq!(parse_listen(":8080").unwrap(), "[::]:8080".parse().unwrap());
        let both: Vec<SocketAddr> = vec!["0.0.0.0:53".parse().unwrap(), "[::]:53".parse().unwrap()];
        assert_eq!(parse_dns_listen(":53").unwrap(), both);
        assert_eq!(parse_dns_listen(" .:53").unwrap(), both);
        assert_eq!(
            parse_dns_listen("0.0.0.0:53").unwrap(),
            vec!["0.0.0.0:53".parse::<SocketAddr>().unwrap()],
            "an explicit family stays alone"
        );
        assert_eq!(
            parse_dns_listen("[::1]:5353").unwrap(),
            vec!["[::1]:5353".parse::<SocketAddr>().unwrap()]
        );
        assert!(parse_dns_listen(":").is_err());
        assert!(parse_dns_listen(".:x").is_err());
        assert!(parse_dns_listen(":70000").is_err());
        assert!(parse_listen("nonsense").is_err());
        assert_eq!(
            parse_upstream("10.0.0.2").unwrap(),
            "10.0.0.2:53".parse().unwrap()
        );
        assert_eq!(parse_upstream("::1").unwrap(), "[::1]:53".parse().unwrap());
        assert_eq!(
            parse_upstream("[::1]:5300").unwrap(),
            "[::1]:5300".parse().unwrap()
        );
        assert!(parse_upstream("dns.google").is_err());
    }
}
