//! Every configuration key, once: the TOML file's keys and the command-line flags
//! are the same struct, so neither can gain a key the other lacks.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::answer::PodsMode;
use crate::source::kubernetes::StreamingLists;

/// The keys as given, in the file or as flags; unset ones are `None`. A field's
/// name is its TOML key and its clap id; its doc comment is the flag's help.
#[derive(Debug, Default, Clone, PartialEq, clap::Args, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Cluster zone to serve (repeatable; the first is primary). Default cluster.local.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long = "zone", value_name = "ZONE")]
    pub zones: Option<Vec<String>>,
    /// Address to answer on, over both UDP and TCP (repeatable); `:PORT` is every
    /// interface, IPv4 and IPv6. Default 127.0.0.1:5353.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<Vec<String>>,
    /// TTL of the records, in seconds (0-3600). Default 5.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "N")]
    pub ttl: Option<u32>,
    /// How pod names (a-b-c-d.<ns>.pod.<zone>) are answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "MODE")]
    pub pods: Option<PodsMode>,
    /// Whether ClusterIP services without a ready endpoint answer NXDOMAIN (CoreDNS
    /// `ignore empty_service`; default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "BOOL")]
    pub ignore_empty_service: Option<bool>,
    /// A zone whose cluster names that do not exist go to the upstreams instead
    /// of NXDOMAIN (repeatable; `.` for every name; CoreDNS `kubernetes {
    /// fallthrough }`; default: none, reverse names always fall through).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "ZONE")]
    pub fallthrough: Option<Vec<String>>,
    /// Read Services, EndpointSlices, Pods and Namespaces from the manifests under DIR.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "DIR")]
    pub manifests: Option<PathBuf>,
    /// How often the manifests directory is checked, in milliseconds (10-3600000;
    /// default 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "MS")]
    pub manifests_poll_interval_ms: Option<u64>,
    /// Kubeconfig for the API server (default: $KUBECONFIG, else the in-cluster service account).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The API server's URL, reached without credentials, e.g. `kubectl proxy`'s
    /// (CoreDNS `endpoint`; default: none). A kubeconfig wins over it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "URL")]
    pub api_server: Option<String>,
    /// Kubeconfig context to use (default: its current context).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace whose objects are visible (repeatable; default: all).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long = "namespace", value_name = "NAME")]
    pub namespaces: Option<Vec<String>>,
    /// Label selector for Namespaces: only the namespaces it picks are served
    /// (CoreDNS `namespace_labels`; default: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "SELECTOR")]
    pub namespace_labels: Option<String>,
    /// Label selector for Services and EndpointSlices (default: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "SELECTOR")]
    pub labels: Option<String>,
    /// Whether an endpoint without a hostname is named after its Pod
    /// (`<pod>.<svc>.<ns>.svc`) rather than its address (default false; CoreDNS
    /// `endpoint_pod_names`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "BOOL")]
    pub endpoint_pod_names: Option<bool>,
    /// Whether EndpointSlices are read: false serves no headless Service and no
    /// endpoint name, and saves their memory (default true; false is CoreDNS
    /// `noendpoints`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "BOOL")]
    pub endpoints: Option<bool>,
    /// Whether the first list arrives as a watch stream (default auto: on API servers
    /// 1.32 or later, falling back to list+watch if refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "WHEN")]
    pub streaming_lists: Option<StreamingLists>,
    /// Where /metrics is served (default 0.0.0.0:9153).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,
    /// Where /health is served (default 0.0.0.0:8080).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "ADDR:PORT")]
    pub health_listen: Option<String>,
    /// Where /ready is served (default 0.0.0.0:8181).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "ADDR:PORT")]
    pub ready_listen: Option<String>,
    /// Upstream resolver for names outside the cluster zones (repeatable; default:
    /// the nameservers of --resolv-conf); `tls://ADDR[:PORT]` for DNS over TLS
    /// (port 853), all of them or none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "[tls://]ADDR[:PORT]")]
    pub upstream: Option<Vec<String>>,
    /// resolv.conf whose nameservers are the upstreams (default /etc/resolv.conf);
    /// re-read when it changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "FILE")]
    pub resolv_conf: Option<PathBuf>,
    /// Per-upstream timeout of a forwarded query, in milliseconds (50-30000; default 2000).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "MS")]
    pub forward_timeout_ms: Option<u64>,
    /// Forwarded queries in flight at once; beyond, REFUSED (default 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "N")]
    pub max_concurrent: Option<usize>,
    /// The order upstreams are asked in: random, round_robin or sequential
    /// (default random, as CoreDNS's `policy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "POLICY")]
    pub forward_policy: Option<crate::forward::Policy>,
    /// Failed health checks in a row after which an upstream is down and asked
    /// last (default 2, as CoreDNS's `max_fails`; 0: never down).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "N")]
    pub forward_max_fails: Option<u32>,
    /// How often an upstream that failed is checked until it answers, in
    /// milliseconds (10-3600000; default 500, as CoreDNS's `health_check`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "MS")]
    pub forward_health_check_ms: Option<u64>,
    /// The name the health check asks for, type NS (default `.`; CoreDNS's
    /// `health_check ... domain NAME`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "NAME")]
    pub forward_health_check_domain: Option<String>,
    /// Whether the health check asks for recursion (default true; false is
    /// CoreDNS's `health_check ... no_rec`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "BOOL")]
    pub forward_health_check_recursion: Option<bool>,
    /// Whether queries go to the upstreams over TCP only (default false: UDP,
    /// and TCP for a truncated answer; CoreDNS's `force_tcp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "BOOL")]
    pub forward_force_tcp: Option<bool>,
    /// The zone whose names are forwarded (CoreDNS `forward FROM`; default `.`,
    /// every name); other names outside the cluster zones get SERVFAIL.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "ZONE")]
    pub forward_from: Option<String>,
    /// A zone never forwarded: its names outside the cluster zones get SERVFAIL
    /// (repeatable; CoreDNS's `except`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "ZONE")]
    pub forward_except: Option<Vec<String>>,
    /// The name the upstreams' certificate must carry (CoreDNS `tls_servername`;
    /// default: each upstream's IP address).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "NAME")]
    pub forward_tls_servername: Option<String>,
    /// CA certificates (PEM) that verify the upstreams (default: the system's).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "FILE")]
    pub forward_tls_ca: Option<PathBuf>,
    /// A client certificate (PEM) for upstreams that ask for one; with forward_tls_key.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "FILE")]
    pub forward_tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "FILE")]
    pub forward_tls_key: Option<PathBuf>,
    /// Longest time a forwarded answer is cached, in seconds (default 30; 0 disables).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "SECONDS")]
    pub cache_ttl: Option<u32>,
    /// Entries in the forwarded-answer cache (default 10000).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "N")]
    pub cache_size: Option<usize>,
    /// Longest time a denial (NXDOMAIN, NODATA) is cached, in seconds (default:
    /// cache_ttl; CoreDNS `denial CAPACITY TTL`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "SECONDS")]
    pub cache_denial_ttl: Option<u32>,
    /// How long after expiry a cached answer is still given, with TTL 0, while
    /// a fresh one is fetched, in seconds (default 0: never; CoreDNS `serve_stale`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "SECONDS")]
    pub cache_serve_stale: Option<u64>,
    /// Whether a stale answer is given only once the upstreams fail (default
    /// false: at once; CoreDNS `serve_stale DURATION verify`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "BOOL")]
    pub cache_serve_stale_verify: Option<bool>,
    /// Hits in a row after which a cached answer is fetched again before it
    /// expires (default 0: never; CoreDNS `prefetch AMOUNT`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "N")]
    pub cache_prefetch: Option<u32>,
    /// Longest gap between those hits, in seconds (default 60).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "SECONDS")]
    pub cache_prefetch_window: Option<u64>,
    /// The share of its TTL left when an answer is prefetched, in percent (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "PERCENT")]
    pub cache_prefetch_percent: Option<u8>,
    /// Zones whose forwarded answers are cached (repeatable; default: every
    /// name; CoreDNS `cache TTL ZONES...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "ZONE")]
    pub cache_zones: Option<Vec<String>>,
    /// Zones whose positive answers are never cached (repeatable; CoreDNS
    /// `disable success ZONES`; default: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "ZONE")]
    pub cache_disable_success: Option<Vec<String>>,
    /// Zones whose denials (NXDOMAIN, NODATA) are never cached (repeatable;
    /// CoreDNS `disable denial ZONES`; default: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "ZONE")]
    pub cache_disable_denial: Option<Vec<String>>,
    /// Seconds to keep answering after SIGTERM while reporting not ready (default 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "SECONDS")]
    pub lameduck: Option<u64>,
    /// Whether A/AAAA records are rotated between answers (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "BOOL")]
    pub loadbalance: Option<bool>,
    /// DNS-over-TCP connections at once (default 1000, at most a quarter of the
    /// file descriptor limit); at the cap the oldest idle one is closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "N")]
    pub tcp_max_connections: Option<usize>,
    /// Queries answered per DNS-over-TCP connection before it is closed (default 128; 0: no cap).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "N")]
    pub tcp_max_queries: Option<usize>,
    /// Unix socket for in-place restarts: take the listening sockets over from the
    /// process offering them there, then offer them to the next one (README: Restarts).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "PATH")]
    pub handover: Option<PathBuf>,
    /// A zone forwarded to its own upstreams, `ZONE=ADDR[,ADDR...]` (repeatable;
    /// kube-dns's stubDomains, a Corefile's `consul:53 { forward . ADDR }`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long = "stub-domain", value_name = "ZONE=ADDR[,ADDR]")]
    pub stub_domains: Option<Vec<String>>,
    /// A hosts(5) file answered before the cluster zones (CoreDNS `hosts FILE`;
    /// re-read when it changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "FILE")]
    pub hosts_file: Option<PathBuf>,
    /// A hosts entry, `ADDRESS NAME [ALIASES...]` (repeatable; CoreDNS `hosts`'s
    /// inline lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long = "host", value_name = "ENTRY")]
    pub hosts: Option<Vec<String>>,
    /// TTL of hosts answers, in seconds (default 3600).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "N")]
    pub hosts_ttl: Option<u32>,
    /// Whether names the hosts entries do not list go on to the cluster zones and
    /// the upstreams (CoreDNS `fallthrough`; default true); else SERVFAIL.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "BOOL")]
    pub hosts_fallthrough: Option<bool>,
    /// Whether the hosts entries answer PTR too (default true; CoreDNS `no_reverse`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "BOOL")]
    pub hosts_reverse: Option<bool>,
    /// Zones the hosts entries answer in (repeatable; default: every name;
    /// CoreDNS `hosts FILE ZONES...`). PTR questions are theirs whatever the zones.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "ZONE")]
    pub hosts_zones: Option<Vec<String>>,
    /// With `hosts_fallthrough`, only names in these zones go on; others not
    /// listed are SERVFAIL (repeatable; CoreDNS `fallthrough ZONES`; default:
    /// every name).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "ZONE")]
    pub hosts_fallthrough_zones: Option<Vec<String>>,
    /// Queries of a type answered with an rcode and no records, before anything
    /// else, `TYPE=RCODE` (repeatable; CoreDNS `template IN AAAA { rcode NOERROR }`,
    /// which spares IPv4-only clusters the AAAA half of every lookup).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long = "type-rcode", value_name = "TYPE=RCODE")]
    pub type_rcodes: Option<Vec<String>>,
    /// CoreDNS `template`s beyond the rcode-only ones, in order: in TOML a table
    /// each (`[[templates]]`: `class`, `type`, `zones`, `match`, `answer`,
    /// `additional`, `authority`, `rcode`, `fallthrough`); as a flag, the
    /// directive's Corefile text after `template`
    /// (`IN A example. { match ^ip-(.*)[.]example[.]$; answer "..." }`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long = "template", value_name = "TEMPLATE", value_parser = crate::corefile::template_flag)]
    pub templates: Option<Vec<crate::answer::template::TemplateSpec>>,
    /// CoreDNS `rewrite name` rules, each as the directive's words
    /// (`stop name suffix .example.com. .default.svc.cluster.local. answer auto`;
    /// repeatable, in order): the question is rewritten before anything answers
    /// it, and the answer's names back.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long = "rewrite", value_name = "RULE")]
    pub rewrites: Option<Vec<String>>,
    /// CoreDNS `log` rules, in order: in TOML a table each (`[[query_logs]]`:
    /// `names`, `format`, `classes`, `min_duration_ms`); as a flag, the
    /// directive's Corefile text after `log` (`. {combined} { class denial error }`;
    /// `;` for a line break). Each answered query the first rule's zone holds
    /// is written to standard output, `[INFO] ` and the line.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long = "log", value_name = "RULE", value_parser = crate::corefile::log_flag)]
    pub query_logs: Option<Vec<crate::querylog::QueryLogSpec>>,
    /// A zone the Services' external addresses (externalIPs, load balancer
    /// ingress) are served under, `<svc>.<ns>.<zone>` (repeatable; CoreDNS `k8s_external`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long = "external-zone", value_name = "ZONE")]
    pub external_zones: Option<Vec<String>>,
    /// The label of those zones' name server subdomain (default `dns`; CoreDNS `apex`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "LABEL")]
    pub external_apex: Option<String>,
    /// TTL of those records, in seconds (0-3600; default 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "N")]
    pub external_ttl: Option<u32>,
    /// Whether headless Services without external addresses answer there with
    /// their endpoints (default false; CoreDNS `headless`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "BOOL")]
    pub external_headless: Option<bool>,
    /// Whether ANY queries get RFC 8482's HINFO answer (CoreDNS `any`; default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "BOOL")]
    pub any: Option<bool>,
    /// Whether names `forward` does not take (its `forward_except` zones) are
    /// answered with the client's address and port (CoreDNS `whoami`; default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "BOOL")]
    pub whoami: Option<bool>,
    /// Whether positive answers go without authority and additional records
    /// (CoreDNS `minimal`; default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "BOOL")]
    pub minimal: Option<bool>,
    /// The largest UDP reply, in bytes, whatever the client offers (512-4096;
    /// default 1232, as CoreDNS's `bufsize`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "BYTES")]
    pub bufsize: Option<u16>,
    /// A CoreDNS Corefile to serve unchanged (README: Corefile); its plugins give
    /// the keys that the config file and the flags do not.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long, value_name = "FILE")]
    pub corefile: Option<PathBuf>,
    /// Server blocks for other zones, each a table of its own (`[[blocks]]`):
    /// `zones`, then the keys of its plugins (upstreams and `forward_*`,
    /// `rewrites`, `templates`, `type_rcodes`, `hosts*`, `query_logs`, `any`,
    /// `whoami`, `minimal`). A name in a block's zone (longest match) is
    /// answered by that block alone. No flag: a list of tables has no flag form.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(skip)]
    pub blocks: Option<Vec<Options>>,
}

impl Options {
    /// Each key from `self` (the flags) where given there, else from `file`; and the
    /// keys the flags gave, so that an error can name the flag or the file.
    pub(super) fn or_file(self, file: Options) -> (Options, Vec<&'static str>) {
        let mut from_flags = Vec::new();
        // The struct literal must list every key (the compiler checks), and each key
        // is recorded by its own field name.
        macro_rules! merge {
            ($($key:ident),* $(,)?) => {
                Options {
                    $($key: if self.$key.is_some() {
                        from_flags.push(stringify!($key));
                        self.$key
                    } else {
                        file.$key
                    },)*
                }
            };
        }
        let merged = merge!(
            zones,
            listen,
            ttl,
            pods,
            ignore_empty_service,
            fallthrough,
            manifests,
            manifests_poll_interval_ms,
            kubeconfig,
            api_server,
            context,
            namespaces,
            labels,
            namespace_labels,
            endpoint_pod_names,
            endpoints,
            streaming_lists,
            metrics_listen,
            health_listen,
            ready_listen,
            upstream,
            resolv_conf,
            forward_timeout_ms,
            max_concurrent,
            forward_policy,
            forward_max_fails,
            forward_health_check_ms,
            forward_health_check_domain,
            forward_health_check_recursion,
            forward_force_tcp,
            forward_from,
            forward_except,
            forward_tls_servername,
            forward_tls_ca,
            forward_tls_cert,
            forward_tls_key,
            cache_ttl,
            cache_size,
            cache_denial_ttl,
            cache_serve_stale,
            cache_serve_stale_verify,
            cache_prefetch,
            cache_prefetch_window,
            cache_prefetch_percent,
            cache_zones,
            cache_disable_success,
            cache_disable_denial,
            lameduck,
            loadbalance,
            tcp_max_connections,
            tcp_max_queries,
            handover,
            stub_domains,
            hosts_file,
            hosts,
            hosts_ttl,
            hosts_fallthrough,
            hosts_reverse,
            hosts_zones,
            hosts_fallthrough_zones,
            type_rcodes,
            templates,
            rewrites,
            query_logs,
            external_zones,
            external_apex,
            external_ttl,
            external_headless,
            any,
            whoami,
            minimal,
            bufsize,
            corefile,
            blocks,
        );
        (merged, from_flags)
    }

    /// Relative paths in a config file are relative to the file, so that the file can
    /// move with its data. (A flag's are relative to the working directory.)
    pub(super) fn relative_to_file(mut self, file: &Path) -> Options {
        let dir = file.parent().unwrap_or(Path::new("."));
        let paths = [
            &mut self.manifests,
            &mut self.kubeconfig,
            &mut self.resolv_conf,
            &mut self.handover,
            &mut self.corefile,
            &mut self.hosts_file,
            &mut self.forward_tls_ca,
            &mut self.forward_tls_cert,
            &mut self.forward_tls_key,
        ];
        for path in paths.into_iter().flatten() {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        }
        if let Some(blocks) = self.blocks.take() {
            let blocks = blocks.into_iter().map(|b| b.relative_to_file(file));
            self.blocks = Some(blocks.collect());
        }
        self
    }
}

/// The long flag (without `--`) that sets `key`, read from clap's own definition
/// of [`Options`], so that no second table can disagree with it.
pub fn flag_of(key: &str) -> Option<String> {
    let command = <Options as clap::Args>::augment_args(clap::Command::new("cluster-dns"));
    command
        .get_arguments()
        .find(|arg| arg.get_id() == key)
        .and_then(|arg| arg.get_long())
        .map(str::to_string)
}
