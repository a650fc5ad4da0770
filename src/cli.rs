//! Command-line flags, as given. [`crate::config::Settings`] turns them into settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::answer::PodsMode;
use crate::config::Overrides;

#[derive(Debug, Parser)]
#[command(
    name = "cluster-dns",
    version,
    about = "Kubernetes cluster DNS server, a drop-in for CoreDNS"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve DNS for the cluster over UDP and TCP.
    Serve(CommonArgs),
    /// Print every record the index would serve, in zone-file format.
    Zone(CommonArgs),
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// TOML configuration file (see config/cluster-dns.toml); flags override it.
    #[arg(long, value_name = "FILE", env = "CLUSTER_DNS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Read Services, EndpointSlices, Pods and Namespaces from the manifests under DIR.
    #[arg(long, value_name = "DIR")]
    pub manifests: Option<PathBuf>,
    /// Address to answer on, over both UDP and TCP (repeatable); `:PORT` is every
    /// interface, IPv4 and IPv6. Default 127.0.0.1:5353.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Vec<String>,
    /// How pod names (a-b-c-d.<ns>.pod.<zone>) are answered.
    #[arg(long, value_name = "MODE")]
    pub pods: Option<PodsMode>,
    /// TTL of the records, in seconds (0-3600). Default 5.
    #[arg(long, value_name = "N")]
    pub ttl: Option<u32>,
    /// Cluster zone to serve (repeatable; the first is primary). Default cluster.local.
    #[arg(long, value_name = "ZONE")]
    pub zone: Vec<String>,
    /// Kubeconfig for the API server (default: $KUBECONFIG, else the in-cluster service account).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Where /metrics is served (default 0.0.0.0:9153).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,
    /// Where /health is served (default 0.0.0.0:8080).
    #[arg(long, value_name = "ADDR:PORT")]
    pub health_listen: Option<String>,
    /// Where /ready is served (default 0.0.0.0:8181).
    #[arg(long, value_name = "ADDR:PORT")]
    pub ready_listen: Option<String>,
    /// Upstream resolver for names outside the cluster zones (repeatable; default:
    /// the nameservers of --resolv-conf).
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub upstream: Vec<String>,
    /// resolv.conf whose nameservers are the upstreams (default /etc/resolv.conf);
    /// re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub resolv_conf: Option<PathBuf>,
    /// Seconds to keep answering after SIGTERM while reporting not ready (default 5).
    #[arg(long, value_name = "SECONDS")]
    pub lameduck: Option<u64>,
    /// Longest time a forwarded answer is cached, in seconds (default 30; 0 disables).
    #[arg(long, value_name = "SECONDS")]
    pub cache_ttl: Option<u32>,
    /// DNS-over-TCP connections at once (default 1000, at most a quarter of the
    /// file descriptor limit); at the cap the oldest idle one is closed.
    #[arg(long, value_name = "N")]
    pub tcp_max_connections: Option<usize>,
    /// Queries answered per DNS-over-TCP connection before it is closed (default 128; 0: no cap).
    #[arg(long, value_name = "N")]
    pub tcp_max_queries: Option<usize>,
    /// Unix socket for in-place restarts: take the listening sockets over from the
    /// process offering them there, then offer them to the next one (README: Restarts).
    #[arg(long, value_name = "PATH")]
    pub handover: Option<PathBuf>,
}

impl CommonArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            zones: self.zone.clone(),
            listen: self.listen.clone(),
            ttl: self.ttl,
            pods: self.pods,
            manifests: self.manifests.clone(),
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            metrics_listen: self.metrics_listen.clone(),
            health_listen: self.health_listen.clone(),
            ready_listen: self.ready_listen.clone(),
            upstream: self.upstream.clone(),
            resolv_conf: self.resolv_conf.clone(),
            lameduck: self.lameduck,
            cache_ttl: self.cache_ttl,
            tcp_max_connections: self.tcp_max_connections,
            tcp_max_queries: self.tcp_max_queries,
            handover: self.handover.clone(),
        }
    }
}
