#![no_main]
//! Bytes as a manifest file, read by both readers (YAML for `.yaml`, JSON for
//! `.json`) through the server's own parsing function; what parses is indexed
//! and rendered as the zone dump. Must never panic; every error and warning must
//! name the file it is about.

use std::path::Path;

use cluster_dns::answer::{PodsMode, ZoneConfig};
use cluster_dns::index::IndexWriter;
use cluster_dns::source::manifests::parse_file_with_warnings;
use hickory_proto::rr::Name;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Files are read as UTF-8 (anything else is a read error before parsing), so
    // invalid bytes are replaced rather than the input thrown away.
    let text = String::from_utf8_lossy(data);
    for file in ["fuzz.yaml", "fuzz.json"] {
        let path = Path::new(file);
        match parse_file_with_warnings(path, &text) {
            Ok(found) => {
                for warning in &found.warnings {
                    assert!(warning.to_string().starts_with(file), "{warning}");
                }
                let snapshot = IndexWriter::from_objects(found.objects).snapshot();
                let zone = ZoneConfig::new(
                    &[Name::from_ascii("cluster.local.").expect("a valid zone")],
                    5,
                    PodsMode::Verified,
                );
                let dump = cluster_dns::zonefile::render(&zone, &snapshot);
                assert!(dump.starts_with("; zone cluster.local."), "{dump}");
            }
            Err(errors) => {
                assert!(!errors.is_empty(), "an error without a reason");
                for error in &errors {
                    assert!(error.to_string().starts_with(file), "{error}");
                }
            }
        }
    }
});
