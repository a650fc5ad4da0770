//! Command-line flags, as given. [`crate::config::Settings`] turns them into settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Options;

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
    /// Read a CoreDNS Corefile as `serve --corefile` would.
    #[command(subcommand)]
    Corefile(CorefileCommand),
}

#[derive(Debug, Subcommand)]
pub enum CorefileCommand {
    /// Print what would be served (blocks, plugins, zones, upstreams), or the
    /// errors with file and line; exit status 1 on error.
    Check { file: PathBuf },
    /// Print the equivalent cluster-dns.toml.
    Translate { file: PathBuf },
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// TOML configuration file (see config/cluster-dns.toml); flags override it.
    // Not a key: the file cannot name itself.
    #[arg(long, value_name = "FILE", env = "CLUSTER_DNS_CONFIG")]
    pub config: Option<PathBuf>,
    // Every key of the config file, as a flag.
    #[command(flatten)]
    pub options: Options,
}
