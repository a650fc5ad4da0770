//! Serving an existing CoreDNS Corefile unchanged (`--corefile FILE`): the file
//! is read as CoreDNS reads it ([`lexer`], [`parse`]) and its plugins become
//! configuration keys ([`plugins`]); a plugin or option cluster-dns does not
//! support is refused with its file and line, never ignored.

pub mod lexer;
pub mod parse;
pub mod plugins;

pub use plugins::{log_flag, template_flag};

use std::path::{Path, PathBuf};

use crate::config::Options;

/// A Corefile that cannot be served: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorefileError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is the file as a whole.
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for CorefileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for CorefileError {}

/// The configuration keys the Corefile at `path` sets.
pub fn load(path: &Path) -> Result<Options, CorefileError> {
    let blocks = parse::parse_file(path)?;
    plugins::options(path, &blocks)
}

/// What `cluster-dns corefile check` prints: each server block's addresses and
/// plugins, and the settings they come to.
pub fn describe(path: &Path) -> Result<String, CorefileError> {
    use std::fmt::Write as _;
    let blocks = parse::parse_file(path)?;
    let options = plugins::options(path, &blocks)?;
    let mut out = String::new();
    for block in &blocks {
        let keys: Vec<&str> = block.keys.iter().map(|k| k.text.as_str()).collect();
        let _ = writeln!(out, "server block {}", keys.join(" "));
        for directive in &block.directives {
            let args: Vec<&str> = directive.args.iter().map(|a| a.text.as_str()).collect();
            let _ = writeln!(
                out,
                "  {}:{}  {} {}",
                directive.name.file.display(),
                directive.name.line,
                directive.name.text,
                args.join(" ")
            );
        }
    }
    let zones = options.zones.clone().unwrap_or_default();
    let _ = writeln!(
        out,
        "cluster zones: {} (and in-addr.arpa, ip6.arpa)",
        zones.join(", ")
    );
    let _ = writeln!(out, "upstreams: {}", upstreams_of(&options));
    for stub in options.stub_domains.iter().flatten() {
        if let Some((zone, addrs)) = stub.split_once('=') {
            let _ = writeln!(out, "stub domain {zone}: {}", addrs.replace(',', ", "));
        }
    }
    for block in options.blocks.iter().flatten() {
        let zones = block.zones.clone().unwrap_or_default().join(", ");
        let upstreams = match &block.forward_except {
            Some(except) if except.iter().any(|z| z == ".") => "none".to_string(),
            _ => upstreams_of(block),
        };
        let _ = writeln!(out, "block {zones}: upstreams {upstreams}");
    }
    let _ = writeln!(out, "as cluster-dns.toml:\n{}", translate(&options));
    Ok(out)
}

/// Where a block's names are forwarded, as `corefile check` says it.
fn upstreams_of(options: &Options) -> String {
    match (&options.upstream, &options.resolv_conf) {
        (Some(list), _) => list.join(", "),
        (None, Some(path)) => format!("the nameservers of {}", path.display()),
        (None, None) => "none".into(),
    }
}

/// The keys as a `cluster-dns.toml` (`cluster-dns corefile translate`).
pub fn translate(options: &Options) -> String {
    toml::to_string(options).unwrap_or_default()
}
