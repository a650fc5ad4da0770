use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use clap::Parser;
use cluster_dns::cli::{Cli, Command, CorefileCommand};
use cluster_dns::run;
use tracing_subscriber::EnvFilter;

/// hickory-server logs every query at info level; keep its noise out by default.
/// kube's watcher warns on every retry; cluster-dns logs each outage once itself.
const DEFAULT_LOG_FILTER: &str =
    "info,hickory_server=warn,hickory_proto=warn,hickory_net=warn,kube_runtime::watcher=error";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let result = match &cli.command {
        Command::Zone(args) => run::zone(args).map(|text| {
            let _ = std::io::stdout().write_all(text.as_bytes());
        }),
        Command::Corefile(command) => return corefile(command),
        Command::Serve(args) => match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime.block_on(run::serve(args)),
            Err(error) => {
                eprintln!("cluster-dns: cannot start the async runtime: {error}");
                return ExitCode::FAILURE;
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// `cluster-dns corefile check|translate FILE`: the result on stdout, or the
/// error (file, line, reason) on stderr and exit status 1.
fn corefile(command: &CorefileCommand) -> ExitCode {
    let result = match command {
        CorefileCommand::Check { file } => cluster_dns::corefile::describe(file),
        CorefileCommand::Translate { file } => {
            cluster_dns::corefile::load(file).map(|o| cluster_dns::corefile::translate(&o))
        }
    };
    match result {
        Ok(text) => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
