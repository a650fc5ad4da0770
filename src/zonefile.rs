//! `cluster-dns zone`: every record the index serves, in zone-file format.
//!
//! Records are produced by asking [`answer::answer`] about every name the index
//! knows, so the dump is exactly what queries get, never a second implementation.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::answer::{self, PodsMode, ZoneConfig};
use crate::cluster::ServiceKind;
use crate::index::Snapshot;
use crate::index::names::{dashed_ip, reverse_name};

/// The zone text: one block per served zone, SOA and NS first, the rest sorted.
pub fn render(config: &ZoneConfig, snapshot: &Snapshot) -> String {
    let mut out = String::new();
    for zone in config.zone_names() {
        let mut queries: Vec<(String, RecordType)> = Vec::new();
        let zone_text = zone.to_ascii();
        let apex = |rel: &str| format!("{rel}.{zone_text}");
        if zone_text.ends_with("arpa.") {
            for (ip, _) in snapshot.reverse_entries() {
                let name = reverse_name(*ip);
                if name.ends_with(zone_text.as_str()) {
                    queries.push((name, RecordType::PTR));
                }
            }
        } else {
            queries.push((apex("ns.dns"), RecordType::A));
            queries.push((apex("ns.dns"), RecordType::AAAA));
            queries.push((apex("dns-version"), RecordType::TXT));
            for service in snapshot.services() {
                let base = apex(&format!("{}.{}.svc", service.name, service.namespace));
                if let ServiceKind::ExternalName(_) = service.kind {
                    queries.push((base, RecordType::CNAME));
                    continue;
                }
                for qtype in [RecordType::A, RecordType::AAAA, RecordType::SRV] {
                    queries.push((base.clone(), qtype));
                }
                let ports = match service.kind {
                    ServiceKind::ClusterIp(_) => service.ports.iter().collect::<Vec<_>>(),
                    _ => service
                        .endpoints
                        .iter()
                        .flat_map(|e| e.ports.iter())
                        .collect(),
                };
                let named: BTreeSet<String> = ports
                    .iter()
                    .filter_map(|p| p.name.as_ref().map(|n| format!("_{n}._{}", p.protocol)))
                    .collect();
                for port in named {
                    queries.push((format!("{port}.{base}"), RecordType::SRV));
                }
                let labels: BTreeSet<_> = service.endpoints.iter().map(|e| e.label()).collect();
                for label in labels {
                    for qtype in [RecordType::A, RecordType::AAAA, RecordType::SRV] {
                        queries.push((format!("{label}.{base}"), qtype));
                    }
                }
            }
            if config.pods != PodsMode::Disabled {
                for (ip, namespaces) in snapshot.pod_entries() {
                    for namespace in namespaces.iter() {
                        let qtype = if ip.is_ipv4() {
                            RecordType::A
                        } else {
                            RecordType::AAAA
                        };
                        queries.push((apex(&format!("{}.{namespace}.pod", dashed_ip(*ip))), qtype));
                    }
                }
            }
        }
        let mut records: BTreeSet<(String, u16, String)> = BTreeSet::new();
        for (name, qtype) in queries {
            let Ok(name) = Name::from_ascii(&name) else {
                continue;
            };
            for record in owned_records(config, snapshot, &name, qtype) {
                records.insert((
                    record.name.to_ascii(),
                    u16::from(record.record_type()),
                    zone_line(&record),
                ));
            }
        }
        let _ = writeln!(out, "; zone {zone_text}");
        for qtype in [RecordType::SOA, RecordType::NS] {
            for record in owned_records(config, snapshot, zone, qtype) {
                let _ = writeln!(out, "{}", zone_line(&record));
            }
        }
        for (_, _, line) in records {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// The answer-section records owned by `name` itself (not the targets a CNAME leads to).
fn owned_records(
    config: &ZoneConfig,
    snapshot: &Snapshot,
    name: &Name,
    qtype: RecordType,
) -> Vec<Record> {
    answer::answer(config, snapshot, name, qtype)
        .answers
        .into_iter()
        .filter(|r| &r.name == name && r.record_type() == qtype)
        .collect()
}

/// One record as a zone-file line; TXT strings are quoted.
fn zone_line(record: &Record) -> String {
    match &record.data {
        RData::TXT(txt) => {
            let strings: Vec<String> = txt
                .txt_data
                .iter()
                .map(|s| format!("\"{}\"", String::from_utf8_lossy(s).replace('"', "\\\"")))
                .collect();
            format!(
                "{} {} {} TXT {}",
                record.name,
                record.ttl,
                record.dns_class,
                strings.join(" ")
            )
        }
        _ => record.to_string(),
    }
}
