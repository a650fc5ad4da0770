//! [`Settings`]: the keys merged once, flags winning per key, then each group of
//! keys given its default and checked.

use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::Name;

use super::ConfigError;
use super::address::{parse_dns_listen, parse_domain, parse_listen, parse_upstream, parse_zone};
use super::options::{Options, flag_of};
use crate::answer::PodsMode;
use crate::server::tcp::{DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_QUERIES};
use crate::source::kubernetes::KubeSettings;

pub const DEFAULT_ZONE: &str = "cluster.local";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5353";
pub const DEFAULT_TTL: u32 = 5;
/// Largest TTL accepted, as CoreDNS's `ttl` option.
pub const MAX_TTL: u32 = 3600;
/// As CoreDNS without `ignore empty_service`.
pub const DEFAULT_IGNORE_EMPTY_SERVICE: bool = false;
pub const DEFAULT_POLL_MS: u64 = 1000;
/// Not a busy loop, and at least hourly.
pub const POLL_MS_RANGE: RangeInclusive<u64> = 10..=3_600_000;
/// A namespace name is a DNS label.
const MAX_NAMESPACE_LEN: usize = 63;
pub const DEFAULT_METRICS_LISTEN: &str = "0.0.0.0:9153";
pub const DEFAULT_HEALTH_LISTEN: &str = "0.0.0.0:8080";
pub const DEFAULT_READY_LISTEN: &str = "0.0.0.0:8181";
pub const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";
pub const DEFAULT_FORWARD_TIMEOUT_MS: u64 = 2000;
pub const FORWARD_TIMEOUT_MS_RANGE: RangeInclusive<u64> = 50..=30_000;
/// CoreDNS `bufsize`'s range.
pub const BUFSIZE_RANGE: RangeInclusive<u64> = 512..=4096;
/// Not a busy loop, and at least hourly.
pub const HEALTH_CHECK_MS_RANGE: RangeInclusive<u64> = 10..=3_600_000;
/// As CoreDNS's `forward ... { max_concurrent 1000 }` in kubeadm's Corefile.
pub const DEFAULT_MAX_CONCURRENT: usize = 1000;
pub const DEFAULT_CACHE_TTL: u32 = 30;
pub const MAX_CACHE_TTL: u32 = 86_400;
pub const DEFAULT_CACHE_SIZE: usize = 10_000;
/// A week of outage covered by stale answers is plenty.
pub const MAX_SERVE_STALE: u64 = 7 * 86_400;
pub const DEFAULT_LAMEDUCK_SECONDS: u64 = 5;
pub const MAX_LAMEDUCK_SECONDS: u64 = 600;
/// kubeadm's Corefile has `loadbalance`.
pub const DEFAULT_LOADBALANCE: bool = true;

/// Validated settings the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Cluster zones, lower case, fully qualified; the first is the primary.
    pub zones: Vec<Name>,
    pub listen: Vec<SocketAddr>,
    pub ttl: u32,
    pub pods: PodsMode,
    pub ignore_empty_service: bool,
    /// Zones whose missing cluster names go to the upstreams (`.`: every name).
    pub fallthrough: Vec<Name>,
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
    /// How the upstreams are picked, asked and checked.
    pub forward: std::sync::Arc<crate::forward::ForwardOptions>,
    /// The forwarded answers' cache; a success TTL of 0 disables it.
    pub cache: crate::forward::cache::CacheOptions,
    pub lameduck: Duration,
    pub loadbalance: bool,
    /// DNS-over-TCP connections at once (the server also keeps it under a
    /// quarter of the descriptor limit).
    pub tcp_max_connections: usize,
    /// Queries per DNS-over-TCP connection before it is closed; 0 for no cap.
    pub tcp_max_queries: usize,
    /// Unix socket where the listening sockets pass to a restarted process.
    pub handover: Option<PathBuf>,
    /// Zones forwarded to upstreams of their own (longest match first).
    pub stub_domains: Vec<(Name, Vec<SocketAddr>)>,
    /// The root block's plugins that a block of its own may hold too.
    pub plugins: Plugins,
    /// CoreDNS `k8s_external`.
    pub external: std::sync::Arc<crate::answer::external::ExternalZones>,
    /// CoreDNS `bufsize`: the largest UDP reply.
    pub bufsize: u16,
    /// The Corefile the keys not given otherwise come from (re-read on change).
    pub corefile: Option<PathBuf>,
    /// Server blocks for other zones, each answering its names alone.
    pub blocks: Vec<BlockSettings>,
}

/// A server block for zones other than the cluster's (a Corefile's
/// `example.org:53 { ... }`): its names, longest zone first, go through its
/// own plugins and upstreams, never the root block's.
#[derive(Debug, Clone)]
pub struct BlockSettings {
    pub zones: Vec<Name>,
    pub upstreams: Upstreams,
    pub max_concurrent: usize,
    pub forward: std::sync::Arc<crate::forward::ForwardOptions>,
    pub plugins: Plugins,
}

/// The plugins that answer before the zones and the upstreams, in the root
/// block and in a block of its own alike.
#[derive(Debug, Clone)]
pub struct Plugins {
    /// CoreDNS `hosts`: entries answered before the cluster zones (when a file
    /// or an entry is given).
    pub hosts: HostsSettings,
    /// Query types answered with an rcode and no records.
    pub type_rcodes: Vec<(
        hickory_proto::rr::RecordType,
        hickory_proto::op::ResponseCode,
    )>,
    /// CoreDNS `template`s beyond the rcode-only ones, in order.
    pub templates: std::sync::Arc<crate::answer::template::Templates>,
    /// CoreDNS `rewrite name` rules, in order.
    pub rewrites: std::sync::Arc<crate::answer::rewrite::Rewrites>,
    /// CoreDNS `log` rules, in order.
    pub query_log: std::sync::Arc<crate::querylog::QueryLog>,
    /// CoreDNS `any`, `whoami` and `minimal`.
    pub any: bool,
    pub whoami: bool,
    pub minimal: bool,
}

impl Plugins {
    /// Puts them into an answer configuration (reads the hosts file: called at
    /// start and on each reload).
    fn apply_to(&self, zone: &mut crate::answer::ZoneConfig) {
        zone.set_hosts(self.hosts.enabled().then(|| self.hosts.table().1));
        zone.type_rcodes = self.type_rcodes.clone();
        zone.rewrites = self.rewrites.clone();
        zone.templates = self.templates.clone();
        zone.query_log = self.query_log.clone();
        zone.any = self.any;
        zone.whoami = self.whoami;
        zone.minimal = self.minimal;
    }
}

/// The keys a block may set (the plugins a block of its own can hold).
const BLOCK_KEYS: &[&str] = &[
    "zones",
    "upstream",
    "resolv_conf",
    "max_concurrent",
    "forward_policy",
    "forward_max_fails",
    "forward_health_check_ms",
    "forward_health_check_domain",
    "forward_health_check_recursion",
    "forward_force_tcp",
    "forward_from",
    "forward_except",
    "forward_tls_servername",
    "forward_tls_ca",
    "forward_tls_cert",
    "forward_tls_key",
    "hosts_file",
    "hosts",
    "hosts_ttl",
    "hosts_fallthrough",
    "hosts_reverse",
    "hosts_zones",
    "hosts_fallthrough_zones",
    "type_rcodes",
    "templates",
    "rewrites",
    "query_logs",
    "any",
    "whoami",
    "minimal",
];

/// Where hosts entries come from, and how they answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsSettings {
    pub file: Option<PathBuf>,
    pub inline: Vec<String>,
    pub ttl: u32,
    pub fallthrough: bool,
    pub reverse: bool,
    /// Zones the entries answer in (empty: every name).
    pub zones: Vec<Name>,
    /// Zones whose unlisted names fall through (empty: every name).
    pub fallthrough_zones: Vec<Name>,
}

/// Largest hosts file read (a ConfigMap holds at most 1 MiB).
const MAX_HOSTS_BYTES: u64 = 1 << 20;

impl HostsSettings {
    /// Whether there are entries to answer from (a file or inline ones).
    pub fn enabled(&self) -> bool {
        self.file.is_some() || !self.inline.is_empty()
    }

    /// The file's bytes as read (to see later changes) and the table. A file
    /// that cannot be read leaves the inline entries, as in CoreDNS.
    pub fn table(&self) -> (Option<Vec<u8>>, crate::answer::hosts::Hosts) {
        let bytes = self.file.as_ref().and_then(|path| {
            let regular = std::fs::metadata(path)
                .is_ok_and(|m| m.is_file() && m.len() <= MAX_HOSTS_BYTES);
            let read = if regular { std::fs::read(path).ok() } else { None };
            if read.is_none() {
                tracing::warn!(path = %path.display(), "cannot read the hosts file (a regular file of at most 1 MiB); serving the inline entries");
            }
            read
        });
        let text = bytes.as_deref().map(String::from_utf8_lossy);
        let mut texts: Vec<&str> = text.as_deref().into_iter().collect();
        texts.extend(self.inline.iter().map(String::as_str));
        let mut table =
            crate::answer::hosts::Hosts::parse(&texts, self.ttl, self.fallthrough, self.reverse);
        table.zones = self.zones.clone();
        table.fallthrough_zones = self.fallthrough_zones.clone();
        (bytes, table)
    }
}

/// Where forwarded queries go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstreams {
    Listed(Vec<SocketAddr>),
    /// The `nameserver` lines of this resolv.conf, read at start and on reload.
    ResolvConf(PathBuf),
}

impl Settings {
    /// Merges the file (if any) and the flags, flags winning per key, and validates the result.
    pub fn resolve(file: Option<(&Path, Options)>, flags: Options) -> Result<Self, ConfigError> {
        let (path, file) = match file {
            Some((path, options)) => (Some(path), options.relative_to_file(path)),
            None => (None, Options::default()),
        };
        let (options, from_flags) = flags.or_file(file);
        let (options, corefile) = under_corefile(options)?;
        let m = Merged {
            options,
            from_flags,
            file: path,
            corefile,
        };
        let o = &m.options;
        // Checked in this order; the first bad key is the one reported.
        Ok(Settings {
            zones: m.zones()?,
            listen: m.listen()?,
            ttl: m.ttl()?,
            pods: o.pods.unwrap_or_default(),
            ignore_empty_service: m.ignore_empty_service(),
            fallthrough: m.fallthrough()?,
            manifests: o.manifests.clone(),
            manifests_poll_interval: m.manifests_poll_interval()?,
            kube: m.kube()?,
            metrics_listen: m.metrics_listen()?,
            health_listen: m.health_listen()?,
            ready_listen: m.ready_listen()?,
            upstreams: m.upstreams()?,
            forward_timeout: m.forward_timeout()?,
            max_concurrent: m.max_concurrent()?,
            forward: m.forward()?,
            cache: m.cache()?,
            lameduck: m.lameduck()?,
            loadbalance: o.loadbalance.unwrap_or(DEFAULT_LOADBALANCE),
            tcp_max_connections: m.tcp_max_connections()?,
            tcp_max_queries: o.tcp_max_queries.unwrap_or(DEFAULT_MAX_QUERIES),
            handover: o.handover.clone(),
            stub_domains: m.stub_domains()?,
            plugins: m.plugins()?,
            external: m.external()?,
            blocks: m.blocks()?,
            bufsize: m.bufsize()?,
            corefile: o.corefile.clone(),
        })
    }

    /// The zone configuration the answer code works from.
    pub fn zone_config(&self) -> crate::answer::ZoneConfig {
        let mut zone = crate::answer::ZoneConfig::new(&self.zones, self.ttl, self.pods);
        zone.ignore_empty_service = self.ignore_empty_service;
        zone.fallthrough = self.fallthrough.clone();
        zone.ns_ips = self
            .listen
            .iter()
            .map(SocketAddr::ip)
            // C26: the addresses clients can reach us on; wildcards and loopback say nothing.
            .filter(|ip| !ip.is_unspecified() && !ip.is_loopback())
            .collect();
        zone.ns_ips.dedup();
        self.plugins.apply_to(&mut zone);
        zone.external = self.external.clone();
        zone.bufsize = self.bufsize;
        for block in &self.blocks {
            for name in &block.zones {
                let config = block.zone_config(name.clone(), self.bufsize);
                zone.blocks
                    .push((name.clone(), std::sync::Arc::new(config)));
            }
        }
        zone.blocks
            .sort_by_key(|(name, _)| std::cmp::Reverse(name.num_labels()));
        zone
    }
}

impl BlockSettings {
    /// The configuration of this block for one of its zones (reads its hosts file).
    fn zone_config(&self, zone: Name, bufsize: u16) -> crate::answer::ZoneConfig {
        let mut config = crate::answer::ZoneConfig::for_block(zone);
        self.plugins.apply_to(&mut config);
        config.bufsize = bufsize;
        config
    }
}

/// A Corefile, and the keys that only it gave.
type CorefileKeys = Option<(PathBuf, Vec<&'static str>)>;

/// With a Corefile, the keys it sets beneath those of the file and the flags;
/// and the Corefile with the keys only it gave.
fn under_corefile(options: Options) -> Result<(Options, CorefileKeys), ConfigError> {
    let Some(path) = options.corefile.clone() else {
        return Ok((options, None));
    };
    let core = crate::corefile::load(&path)?;
    let (_, core_keys) = core.clone().or_file(Options::default());
    let (merged, upper_keys) = options.or_file(core);
    let only_core = core_keys
        .into_iter()
        .filter(|key| !upper_keys.contains(key))
        .collect();
    Ok((merged, Some((path, only_core))))
}

/// The keys as merged, and where each came from.
struct Merged<'a> {
    options: Options,
    /// The keys a flag gave; the others came from the file, or are unset.
    from_flags: Vec<&'static str>,
    file: Option<&'a Path>,
    corefile: CorefileKeys,
}

impl Merged<'_> {
    /// `key`'s value is refused: the error names the flag that gave it, else the file.
    fn invalid(&self, key: &'static str, message: String) -> ConfigError {
        let from_corefile = self
            .corefile
            .as_ref()
            .filter(|(_, keys)| keys.contains(&key) && !self.from_flags.contains(&key));
        let origin = match (self.file, from_corefile) {
            (_, Some((path, _))) => format!("Corefile {}", path.display()),
            (Some(path), None) if !self.from_flags.contains(&key) => {
                format!("config file {}", path.display())
            }
            // Every key has a flag (a unit test checks); the key is only a fallback.
            _ => format!("flag --{}", flag_of(key).unwrap_or_else(|| key.into())),
        };
        ConfigError::Invalid {
            origin,
            key,
            message,
        }
    }

    fn seconds_at_most<T: PartialOrd + Display>(
        &self,
        key: &'static str,
        value: T,
        max: T,
    ) -> Result<T, ConfigError> {
        if value > max {
            return Err(self.invalid(
                key,
                format!("{value} is above the maximum of {max} seconds"),
            ));
        }
        Ok(value)
    }

    fn within(
        &self,
        key: &'static str,
        value: u64,
        range: RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        if !range.contains(&value) {
            return Err(self.invalid(key, format!("{value} is outside {range:?}")));
        }
        Ok(value)
    }

    /// `hint` follows "must be at least 1" in the message.
    fn at_least_one(
        &self,
        key: &'static str,
        value: usize,
        hint: &str,
    ) -> Result<usize, ConfigError> {
        if value == 0 {
            return Err(self.invalid(key, format!("must be at least 1{hint}")));
        }
        Ok(value)
    }

    // The DNS side: what is served, where, and how.

    fn zones(&self) -> Result<Vec<Name>, ConfigError> {
        let default = [DEFAULT_ZONE.to_string()];
        let texts = self.options.zones.as_deref().unwrap_or(&default);
        if texts.is_empty() {
            return Err(self.invalid("zones", "at least one zone is required".into()));
        }
        let mut zones = Vec::new();
        for text in texts {
            let zone = parse_zone(text).map_err(|message| self.invalid("zones", message))?;
            if !zones.contains(&zone) {
                zones.push(zone);
            }
        }
        Ok(zones)
    }

    fn listen(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        let default = [DEFAULT_LISTEN.to_string()];
        let texts = self.options.listen.as_deref().unwrap_or(&default);
        if texts.is_empty() {
            return Err(self.invalid("listen", "at least one address is required".into()));
        }
        let mut listen = Vec::new();
        for text in texts {
            let addrs =
                parse_dns_listen(text).map_err(|message| self.invalid("listen", message))?;
            for addr in addrs {
                if !listen.contains(&addr) {
                    listen.push(addr);
                }
            }
        }
        Ok(listen)
    }

    fn ttl(&self) -> Result<u32, ConfigError> {
        let ttl = self.options.ttl.unwrap_or(DEFAULT_TTL);
        self.seconds_at_most("ttl", ttl, MAX_TTL)
    }

    fn fallthrough(&self) -> Result<Vec<Name>, ConfigError> {
        self.zone_list("fallthrough", self.options.fallthrough.as_deref())
    }

    fn ignore_empty_service(&self) -> bool {
        let ignore = self.options.ignore_empty_service;
        ignore.unwrap_or(DEFAULT_IGNORE_EMPTY_SERVICE)
    }

    // Where the objects come from.

    fn manifests_poll_interval(&self) -> Result<Duration, ConfigError> {
        let ms = self
            .options
            .manifests_poll_interval_ms
            .unwrap_or(DEFAULT_POLL_MS);
        let ms = self.within("manifests_poll_interval_ms", ms, POLL_MS_RANGE)?;
        Ok(Duration::from_millis(ms))
    }

    fn kube(&self) -> Result<KubeSettings, ConfigError> {
        let o = &self.options;
        Ok(KubeSettings {
            kubeconfig: o.kubeconfig.clone(),
            api_server: self.api_server()?,
            context: o.context.clone(),
            namespaces: self.namespaces()?,
            labels: self.labels()?,
            namespace_labels: self.namespace_labels()?,
            streaming_lists: o.streaming_lists.unwrap_or_default(),
            endpoints: crate::cluster::EndpointOptions {
                pod_names: o.endpoint_pod_names.unwrap_or(false),
                disabled: !o.endpoints.unwrap_or(true),
            },
        })
    }

    fn namespaces(&self) -> Result<Vec<String>, ConfigError> {
        let names = self.options.namespaces.as_deref().unwrap_or_default();
        let mut namespaces = Vec::new();
        for name in names {
            let valid = !name.is_empty()
                && name.len() <= MAX_NAMESPACE_LEN
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !valid {
                let message = format!("{name:?} is not a namespace name");
                return Err(self.invalid("namespaces", message));
            }
            namespaces.push(name.to_ascii_lowercase());
        }
        Ok(namespaces)
    }

    fn api_server(&self) -> Result<Option<http::Uri>, ConfigError> {
        let Some(text) = self.options.api_server.as_deref() else {
            return Ok(None);
        };
        parse_api_server(text)
            .map(Some)
            .map_err(|message| self.invalid("api_server", message))
    }

    fn namespace_labels(&self) -> Result<Option<String>, ConfigError> {
        let o = &self.options;
        let Some(selector) = o.namespace_labels.clone() else {
            return Ok(None);
        };
        if selector.trim().is_empty() {
            return Err(self.invalid("namespace_labels", "the selector is empty".into()));
        }
        Ok(Some(selector))
    }

    fn labels(&self) -> Result<Option<String>, ConfigError> {
        let labels = self.options.labels.clone();
        if labels.as_deref().is_some_and(|l| l.trim().is_empty()) {
            return Err(self.invalid("labels", "the selector is empty".into()));
        }
        Ok(labels)
    }

    // The HTTP endpoints.

    fn metrics_listen(&self) -> Result<SocketAddr, ConfigError> {
        let text = self.options.metrics_listen.as_deref();
        self.http_listen("metrics_listen", text.unwrap_or(DEFAULT_METRICS_LISTEN))
    }

    fn health_listen(&self) -> Result<SocketAddr, ConfigError> {
        let text = self.options.health_listen.as_deref();
        self.http_listen("health_listen", text.unwrap_or(DEFAULT_HEALTH_LISTEN))
    }

    fn ready_listen(&self) -> Result<SocketAddr, ConfigError> {
        let text = self.options.ready_listen.as_deref();
        self.http_listen("ready_listen", text.unwrap_or(DEFAULT_READY_LISTEN))
    }

    fn http_listen(&self, key: &'static str, text: &str) -> Result<SocketAddr, ConfigError> {
        parse_listen(text).map_err(|message| self.invalid(key, message))
    }

    // Forwarding and its cache.

    fn upstreams(&self) -> Result<Upstreams, ConfigError> {
        let o = &self.options;
        match o.upstream.as_deref() {
            None | Some([]) => {
                let path = o.resolv_conf.clone();
                Ok(Upstreams::ResolvConf(
                    path.unwrap_or_else(|| DEFAULT_RESOLV_CONF.into()),
                ))
            }
            Some(texts) => texts
                .iter()
                .map(|text| {
                    let parsed = match text.strip_prefix("tls://") {
                        Some(address) => crate::forward::tls::parse_tls_upstream(address),
                        None => parse_upstream(text),
                    };
                    parsed.map_err(|message| self.invalid("upstream", message))
                })
                .collect::<Result<_, _>>()
                .map(Upstreams::Listed),
        }
    }

    /// `ZONE=ADDR[,ADDR...]` each: a zone other than the root and the cluster
    /// zones, and its upstreams.
    fn stub_domains(&self) -> Result<Vec<(Name, Vec<SocketAddr>)>, ConfigError> {
        let key = "stub_domains";
        let cluster = self.zones()?;
        let mut stubs: Vec<(Name, Vec<SocketAddr>)> = Vec::new();
        for text in self.options.stub_domains.iter().flatten() {
            let Some((zone, addrs)) = text.split_once('=') else {
                return Err(self.invalid(key, format!("{text:?} is not ZONE=ADDR[,ADDR...]")));
            };
            let zone = parse_zone(zone).map_err(|message| self.invalid(key, message))?;
            if cluster.iter().any(|c| c.zone_of(&zone)) {
                return Err(self.invalid(key, format!("{zone} is in a cluster zone")));
            }
            let addrs = addrs
                .split(',')
                .map(|a| parse_upstream(a).map_err(|message| self.invalid(key, message)))
                .collect::<Result<Vec<_>, _>>()?;
            if stubs.iter().any(|(z, _)| *z == zone) {
                return Err(self.invalid(key, format!("{zone} is given twice")));
            }
            stubs.push((zone, addrs));
        }
        Ok(stubs)
    }

    /// Each template compiled as CoreDNS compiles one.
    fn templates(&self) -> Result<std::sync::Arc<crate::answer::template::Templates>, ConfigError> {
        let specs = self.options.templates.as_deref().unwrap_or_default();
        crate::answer::template::Templates::compile(specs)
            .map(std::sync::Arc::new)
            .map_err(|message| self.invalid("templates", message))
    }

    /// The `k8s_external` zones: not a cluster zone, nor inside one.
    fn external(
        &self,
    ) -> Result<std::sync::Arc<crate::answer::external::ExternalZones>, ConfigError> {
        use crate::answer::external::ExternalZones;
        let o = &self.options;
        let key = "external_zones";
        let cluster = self.zones()?;
        let mut zones = Vec::new();
        for text in o.external_zones.iter().flatten() {
            let zone = parse_zone(text).map_err(|message| self.invalid(key, message))?;
            if cluster.iter().any(|c| c.zone_of(&zone) || zone.zone_of(c)) {
                return Err(self.invalid(key, format!("{zone} overlaps a cluster zone")));
            }
            zones.push(zone);
        }
        zones.sort_by_key(|z| std::cmp::Reverse(z.num_labels()));
        let defaults = ExternalZones::default();
        let apex = match &o.external_apex {
            Some(label) => {
                let valid = !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-');
                if !valid {
                    return Err(
                        self.invalid("external_apex", format!("{label:?} is not a DNS label"))
                    );
                }
                label.to_ascii_lowercase()
            }
            None => defaults.apex,
        };
        let ttl = o.external_ttl.unwrap_or(defaults.ttl);
        let ttl = self.seconds_at_most("external_ttl", ttl, MAX_TTL)?;
        Ok(std::sync::Arc::new(ExternalZones {
            zones,
            apex,
            ttl,
            headless: o.external_headless.unwrap_or(false),
        }))
    }

    /// The server blocks for other zones, each resolved as the root's keys are,
    /// with its errors naming the block.
    fn blocks(&self) -> Result<Vec<BlockSettings>, ConfigError> {
        let cluster = self.zones()?;
        let stubs = self.stub_domains()?;
        let mut blocks: Vec<BlockSettings> = Vec::new();
        for options in self.options.blocks.iter().flatten() {
            let block = Merged {
                options: options.clone(),
                from_flags: Vec::new(),
                file: self.file,
                corefile: self.corefile.clone(),
            };
            let settings =
                block
                    .block((&cluster, &stubs), &blocks)
                    .map_err(|error| match error {
                        ConfigError::Invalid {
                            origin,
                            key,
                            message,
                        } => {
                            let zones = options.zones.as_deref().unwrap_or_default().join(" ");
                            let message = match key {
                                "blocks" => format!("the block for {zones:?}: {message}"),
                                key => format!("the block for {zones:?}: key `{key}`: {message}"),
                            };
                            ConfigError::Invalid {
                                origin,
                                key: "blocks",
                                message,
                            }
                        }
                        other => other,
                    })?;
            blocks.push(settings);
        }
        Ok(blocks)
    }

    /// One block's keys (this resolver holds the block's options).
    fn block(
        &self,
        (cluster, stubs): (&[Name], &[(Name, Vec<SocketAddr>)]),
        earlier: &[BlockSettings],
    ) -> Result<BlockSettings, ConfigError> {
        let o = &self.options;
        let given = toml::Value::try_from(o).map_err(|e| self.invalid("blocks", e.to_string()))?;
        if let Some(key) = given
            .as_table()
            .into_iter()
            .flat_map(|table| table.keys())
            .find(|key| !BLOCK_KEYS.contains(&key.as_str()))
        {
            let message = format!(
                "`{key}` cannot be set in a block (a block may set: {})",
                BLOCK_KEYS.join(", ")
            );
            return Err(self.invalid("blocks", message));
        }
        let zones = self.zone_list("zones", o.zones.as_deref())?;
        if zones.is_empty() {
            return Err(self.invalid("zones", "a block needs at least one zone".into()));
        }
        for zone in &zones {
            // A block over a cluster zone (or under it, or holding it) would
            // take names the cluster answers.
            let reverse = ["in-addr.arpa.", "ip6.arpa."]
                .iter()
                .filter_map(|r| Name::from_ascii(r).ok())
                .any(|r| r.zone_of(zone) || zone.zone_of(&r));
            // A stub domain at or under a block's zone would lose its names to it.
            if stubs.iter().any(|(stub, _)| zone.zone_of(stub)) {
                return Err(self.invalid(
                    "zones",
                    format!("{zone}: a stub domain (`stub_domains`) is at or under it"),
                ));
            }
            if zone.is_root() || reverse {
                return Err(self.invalid(
                    "zones",
                    format!(
                        "{zone}: a block is for a zone other than the root and the reverse zones"
                    ),
                ));
            }
            if cluster.iter().any(|c| c.zone_of(zone) || zone.zone_of(c)) {
                return Err(self.invalid("zones", format!("{zone}: overlaps a cluster zone")));
            }
            if earlier.iter().flat_map(|b| &b.zones).any(|z| z == zone) {
                return Err(self.invalid("zones", format!("{zone}: a second block for it")));
            }
        }
        Ok(BlockSettings {
            zones,
            upstreams: self.upstreams()?,
            max_concurrent: self.max_concurrent()?,
            forward: self.forward()?,
            plugins: self.plugins()?,
        })
    }

    /// The plugins that answer before the zones and the upstreams.
    fn plugins(&self) -> Result<Plugins, ConfigError> {
        let o = &self.options;
        Ok(Plugins {
            hosts: self.hosts()?,
            type_rcodes: self.type_rcodes()?,
            templates: self.templates()?,
            rewrites: self.rewrites()?,
            query_log: self.query_log()?,
            any: o.any.unwrap_or(false),
            whoami: o.whoami.unwrap_or(false),
            minimal: o.minimal.unwrap_or(false),
        })
    }

    fn bufsize(&self) -> Result<u16, ConfigError> {
        let size = self
            .options
            .bufsize
            .unwrap_or(crate::answer::DEFAULT_BUFSIZE);
        let size = self.within("bufsize", u64::from(size), BUFSIZE_RANGE)?;
        Ok(u16::try_from(size).unwrap_or(crate::answer::DEFAULT_BUFSIZE))
    }

    fn query_log(&self) -> Result<std::sync::Arc<crate::querylog::QueryLog>, ConfigError> {
        let specs = self.options.query_logs.as_deref().unwrap_or_default();
        crate::querylog::QueryLog::compile(specs)
            .map(std::sync::Arc::new)
            .map_err(|message| self.invalid("query_logs", message))
    }

    /// Each rule's words, parsed as CoreDNS parses a `rewrite` directive.
    fn rewrites(&self) -> Result<std::sync::Arc<crate::answer::rewrite::Rewrites>, ConfigError> {
        let rules: Vec<Vec<&str>> = self
            .options
            .rewrites
            .iter()
            .flatten()
            .map(|rule| rule.split_whitespace().collect())
            .collect();
        crate::answer::rewrite::Rewrites::parse(&rules)
            .map(std::sync::Arc::new)
            .map_err(|message| self.invalid("rewrites", message))
    }

    /// `TYPE=RCODE` each: a record type by name, an rcode by name.
    fn type_rcodes(
        &self,
    ) -> Result<
        Vec<(
            hickory_proto::rr::RecordType,
            hickory_proto::op::ResponseCode,
        )>,
        ConfigError,
    > {
        use hickory_proto::op::ResponseCode;
        use hickory_proto::rr::RecordType;
        let key = "type_rcodes";
        let mut rules: Vec<(RecordType, ResponseCode)> = Vec::new();
        for text in self.options.type_rcodes.iter().flatten() {
            let Some((qtype, rcode)) = text.split_once('=') else {
                return Err(self.invalid(key, format!("{text:?} is not TYPE=RCODE")));
            };
            let qtype: RecordType = qtype
                .trim()
                .to_ascii_uppercase()
                .parse()
                .ok()
                .filter(|t| {
                    !matches!(
                        t,
                        RecordType::ANY | RecordType::OPT | RecordType::Unknown(_)
                    )
                })
                .ok_or_else(|| self.invalid(key, format!("{qtype:?} is not a record type")))?;
            let rcode = match rcode.trim().to_ascii_uppercase().as_str() {
                "NOERROR" => ResponseCode::NoError,
                "NXDOMAIN" => ResponseCode::NXDomain,
                "SERVFAIL" => ResponseCode::ServFail,
                "REFUSED" => ResponseCode::Refused,
                other => {
                    return Err(self.invalid(
                        key,
                        format!("{other:?} is not one of NOERROR, NXDOMAIN, SERVFAIL, REFUSED"),
                    ));
                }
            };
            if rules.iter().any(|(t, _)| *t == qtype) {
                return Err(self.invalid(key, format!("{qtype} is given twice")));
            }
            rules.push((qtype, rcode));
        }
        Ok(rules)
    }

    /// The hosts entries and how they answer.
    fn hosts(&self) -> Result<HostsSettings, ConfigError> {
        let o = &self.options;
        let ttl = o.hosts_ttl.unwrap_or(crate::answer::hosts::DEFAULT_TTL);
        let ttl = self.seconds_at_most("hosts_ttl", ttl, MAX_CACHE_TTL)?;
        for entry in o.hosts.iter().flatten() {
            let mut fields = entry.split_whitespace();
            let address_ok = fields
                .next()
                .is_some_and(|a| a.parse::<std::net::IpAddr>().is_ok());
            if !address_ok || fields.next().is_none() {
                return Err(self.invalid(
                    "hosts",
                    format!("{entry:?} is not `ADDRESS NAME [ALIASES...]`"),
                ));
            }
        }
        Ok(HostsSettings {
            file: o.hosts_file.clone(),
            inline: o.hosts.clone().unwrap_or_default(),
            ttl,
            fallthrough: o.hosts_fallthrough.unwrap_or(true),
            reverse: o.hosts_reverse.unwrap_or(true),
            zones: self.zone_list("hosts_zones", o.hosts_zones.as_deref())?,
            fallthrough_zones: self.zone_list(
                "hosts_fallthrough_zones",
                o.hosts_fallthrough_zones.as_deref(),
            )?,
        })
    }

    fn forward_timeout(&self) -> Result<Duration, ConfigError> {
        let ms = self
            .options
            .forward_timeout_ms
            .unwrap_or(DEFAULT_FORWARD_TIMEOUT_MS);
        let ms = self.within("forward_timeout_ms", ms, FORWARD_TIMEOUT_MS_RANGE)?;
        Ok(Duration::from_millis(ms))
    }

    fn max_concurrent(&self) -> Result<usize, ConfigError> {
        let max = self
            .options
            .max_concurrent
            .unwrap_or(DEFAULT_MAX_CONCURRENT);
        self.at_least_one("max_concurrent", max, "")
    }

    fn forward(&self) -> Result<std::sync::Arc<crate::forward::ForwardOptions>, ConfigError> {
        use crate::forward::ForwardOptions;
        let o = &self.options;
        let defaults = ForwardOptions::default();
        let health_check = match o.forward_health_check_ms {
            Some(ms) => Duration::from_millis(self.within(
                "forward_health_check_ms",
                ms,
                HEALTH_CHECK_MS_RANGE,
            )?),
            None => defaults.health_check,
        };
        let health_check_name = match &o.forward_health_check_domain {
            Some(text) => parse_domain(text)
                .map_err(|message| self.invalid("forward_health_check_domain", message))?,
            None => defaults.health_check_name,
        };
        let except = self.zone_list("forward_except", o.forward_except.as_deref())?;
        let from = match &o.forward_from {
            Some(zone) => {
                parse_domain(zone).map_err(|message| self.invalid("forward_from", message))?
            }
            None => defaults.from,
        };
        let (tls_files, tls) = self.forward_tls()?;
        Ok(std::sync::Arc::new(ForwardOptions {
            policy: o.forward_policy.unwrap_or(defaults.policy),
            max_fails: o.forward_max_fails.unwrap_or(defaults.max_fails),
            health_check,
            health_check_name,
            health_check_recursion: o
                .forward_health_check_recursion
                .unwrap_or(defaults.health_check_recursion),
            force_tcp: o.forward_force_tcp.unwrap_or(defaults.force_tcp),
            from,
            except,
            tls_files,
            tls,
        }))
    }

    /// The TLS keys, and with `tls://` upstreams the client made of them: the
    /// CA and client files are read now, so a bad one stops the start, not
    /// the first query.
    fn forward_tls(
        &self,
    ) -> Result<
        (
            crate::forward::tls::TlsFiles,
            Option<crate::forward::tls::UpstreamTls>,
        ),
        ConfigError,
    > {
        let o = &self.options;
        let client = match (&o.forward_tls_cert, &o.forward_tls_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            (Some(cert), None) => Some((cert.clone(), PathBuf::new())),
            (None, Some(key)) => Some((PathBuf::new(), key.clone())),
        };
        let files = crate::forward::tls::TlsFiles {
            server_name: o.forward_tls_servername.clone(),
            ca: o.forward_tls_ca.clone(),
            client,
        };
        if !self.upstreams_use_tls()? {
            return Ok((files, None));
        }
        if let Some((cert, key)) = &files.client {
            let missing = [("forward_tls_cert", cert), ("forward_tls_key", key)];
            if let Some((key_name, _)) = missing.iter().find(|(_, p)| p.as_os_str().is_empty()) {
                let message =
                    "a client certificate needs both forward_tls_cert and forward_tls_key";
                return Err(self.invalid(key_name, message.into()));
            }
        }
        let tls = crate::forward::tls::UpstreamTls::new(&files)
            .map_err(|message| self.invalid("upstream", format!("tls://: {message}")))?;
        Ok((files, Some(tls)))
    }

    /// Whether the listed upstreams are `tls://` ones: all or none.
    fn upstreams_use_tls(&self) -> Result<bool, ConfigError> {
        let texts = self.options.upstream.as_deref().unwrap_or_default();
        let tls = texts.iter().filter(|t| t.starts_with("tls://")).count();
        if tls > 0 && tls < texts.len() {
            let message = "either every upstream is tls:// or none is".to_string();
            return Err(self.invalid("upstream", message));
        }
        Ok(tls > 0)
    }

    fn cache(&self) -> Result<crate::forward::cache::CacheOptions, ConfigError> {
        use crate::forward::cache::{
            CacheOptions, DEFAULT_PREFETCH_PERCENT, DEFAULT_PREFETCH_WINDOW,
        };
        let o = &self.options;
        let success_ttl = self.cache_ttl()?;
        let denial_ttl = match o.cache_denial_ttl {
            Some(ttl) => self.seconds_at_most("cache_denial_ttl", ttl, MAX_CACHE_TTL)?,
            None => success_ttl,
        };
        let serve_stale = o.cache_serve_stale.unwrap_or(0);
        let serve_stale =
            self.seconds_at_most("cache_serve_stale", serve_stale, MAX_SERVE_STALE)?;
        let window = match o.cache_prefetch_window {
            Some(seconds) => {
                Duration::from_secs(self.within("cache_prefetch_window", seconds, 1..=86_400)?)
            }
            None => DEFAULT_PREFETCH_WINDOW,
        };
        let percent = match o.cache_prefetch_percent {
            Some(p) => {
                u8::try_from(self.within("cache_prefetch_percent", u64::from(p), 1..=100)?)
                    .unwrap_or(DEFAULT_PREFETCH_PERCENT)
            }
            None => DEFAULT_PREFETCH_PERCENT,
        };
        Ok(CacheOptions {
            success_ttl,
            denial_ttl,
            size: self.cache_size()?,
            serve_stale: Duration::from_secs(serve_stale),
            verify_stale: o.cache_serve_stale_verify.unwrap_or(false),
            prefetch: o.cache_prefetch.unwrap_or(0),
            prefetch_window: window,
            prefetch_percent: percent,
            zones: self.zone_list("cache_zones", o.cache_zones.as_deref())?,
            disable_success: self
                .zone_list("cache_disable_success", o.cache_disable_success.as_deref())?,
            disable_denial: self
                .zone_list("cache_disable_denial", o.cache_disable_denial.as_deref())?,
        })
    }

    /// A key's zones, each a domain name (`.` for every name).
    fn zone_list(
        &self,
        key: &'static str,
        zones: Option<&[String]>,
    ) -> Result<Vec<Name>, ConfigError> {
        zones
            .unwrap_or_default()
            .iter()
            .map(|zone| parse_domain(zone).map_err(|message| self.invalid(key, message)))
            .collect()
    }

    fn cache_ttl(&self) -> Result<u32, ConfigError> {
        let ttl = self.options.cache_ttl.unwrap_or(DEFAULT_CACHE_TTL);
        self.seconds_at_most("cache_ttl", ttl, MAX_CACHE_TTL)
    }

    fn cache_size(&self) -> Result<usize, ConfigError> {
        let size = self.options.cache_size.unwrap_or(DEFAULT_CACHE_SIZE);
        let hint = " (set cache_ttl = 0 to turn the cache off)";
        self.at_least_one("cache_size", size, hint)
    }

    // The process: shutdown and connections.

    fn lameduck(&self) -> Result<Duration, ConfigError> {
        let seconds = self.options.lameduck.unwrap_or(DEFAULT_LAMEDUCK_SECONDS);
        let seconds = self.seconds_at_most("lameduck", seconds, MAX_LAMEDUCK_SECONDS)?;
        Ok(Duration::from_secs(seconds))
    }

    fn tcp_max_connections(&self) -> Result<usize, ConfigError> {
        let max = self.options.tcp_max_connections;
        self.at_least_one(
            "tcp_max_connections",
            max.unwrap_or(DEFAULT_MAX_CONNECTIONS),
            "",
        )
    }
}

/// An API server URL: `http://` or `https://` and a host.
pub fn parse_api_server(text: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = text
        .parse()
        .map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(format!(
            "{text:?}: expected http://HOST[:PORT] or https://HOST[:PORT]"
        ));
    }
    Ok(uri)
}
