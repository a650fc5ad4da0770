#![no_main]
//! The configuration file at start-up and on reload: TOML text through
//! `Options::from_toml` and `Settings::resolve` (no flags), the same calls
//! `run::settings` and `reload::watch` make. Any input must give settings or an
//! error naming the file, never a panic.

use std::path::Path;

use cluster_dns::config::{Options, Settings};

const PATH: &str = "/etc/cluster-dns/cluster-dns.toml";

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The server reads the file as UTF-8 and refuses anything else before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
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
