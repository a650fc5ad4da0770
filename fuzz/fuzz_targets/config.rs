#![no_main]
//! The configuration file at start-up and on reload: TOML text through
//! `Options::from_toml` and `Settings::resolve` (no flags), the same calls
//! `run::settings` and `reload::watch` make; and the same text as a Corefile,
//! through CoreDNS's grammar and the plugin mapping. Any input must give
//! settings or an error naming the file (and, for a Corefile, a line of it),
//! never a panic.

use std::path::Path;

use cluster_dns::config::{Options, Settings};

const PATH: &str = "/etc/cluster-dns/cluster-dns.toml";

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The server reads the file as UTF-8 and refuses anything else before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    corefile(text);
    // A `corefile` key names a file to read: not the fuzzer's business.
    if text.contains("corefile") {
        return;
    }
    let path = Path::new(PATH);
    let file = match Options::from_toml(path, text) {
        Ok(file) => file,
        Err(error) => {
            let message = error.to_string();
            assert!(
                message.contains(PATH),
                "parse error without the file: {message}"
            );
            return;
        }
    };
    match Settings::resolve(Some((path, file)), Options::default()) {
        Ok(settings) => {
            // What the server derives from them at start must hold too.
            assert!(!settings.zones.is_empty());
            assert!(!settings.listen.is_empty());
            let _ = settings.zone_config();
        }
        Err(error) => {
            // Without flags every complaint is the file's.
            let message = error.to_string();
            assert!(message.contains(PATH), "error without the file: {message}");
        }
    }
});

/// The text as a Corefile (imports left out: they read files).
fn corefile(text: &str) {
    if text.contains("import") {
        return;
    }
    let path = Path::new("/etc/coredns/Corefile");
    let lines = text.lines().count().max(1);
    let checked = |error: cluster_dns::corefile::CorefileError| {
        assert_eq!(error.file, path, "{error}");
        assert!(
            error.line <= lines + 1,
            "line {} of {lines}: {error}",
            error.line
        );
    };
    match cluster_dns::corefile::parse::parse(path, text, &|_| None) {
        Ok(blocks) => {
            if let Err(error) = cluster_dns::corefile::plugins::options(path, &blocks) {
                checked(error);
            }
        }
        Err(error) => checked(error),
    }
}
