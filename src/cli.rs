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
    /// Address to answer on, over both UDP and TCP (repeatable). Default 127.0.0.1:5353.
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
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,
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
        }
    }
}
