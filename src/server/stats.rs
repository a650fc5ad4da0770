//! The handler's Prometheus counters, under CoreDNS's names and labels. Label
//! values are static strings, so a per-thread list of handles keyed by their
//! addresses spares the registry's hashing and locking on every query.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use super::handler::DnsHandler;
use crate::answer::ZoneConfig;
use crate::forward::stats::CacheStats;
use crate::metrics::{
    self, DurationLabels, MAX_METRIC_HANDLES, RequestLabels, ResponseLabels, TypeLabel,
};

/// Metric label values that are fixed for the server's life.
pub(super) struct Labels {
    server: &'static str,
    /// Served zones and their label text.
    zones: Vec<(Name, &'static str)>,
}

type MetricHandles = Vec<([usize; 7], Counter, Counter, Histogram)>;

thread_local! {
    static METRIC_HANDLES: std::cell::RefCell<MetricHandles> = const { std::cell::RefCell::new(Vec::new()) };
}

fn leak(text: String) -> &'static str {
    // Label values live as long as the process; a handful per configuration.
    Box::leak(text.into_boxed_str())
}

impl Labels {
    pub(super) fn new(server_label: String, zone: &ZoneConfig) -> Self {
        Labels {
            server: leak(server_label),
            zones: zone_labels(zone),
        }
    }
}

impl DnsHandler {
    /// The metric label of a served zone.
    pub(super) fn zone_label(&self, zone_name: &Name) -> &'static str {
        let labels = self.labels.load();
        match labels.zones.iter().find(|(z, _)| z == zone_name) {
            Some((_, label)) => label,
            None => {
                // A zone added by a reload: label it from the next query on.
                self.refresh_labels();
                "."
            }
        }
    }

    pub(super) fn record_metrics(
        &self,
        zone: &'static str,
        qtype: RecordType,
        proto: &'static str,
        src: SocketAddr,
        rcode: ResponseCode,
        started: Instant,
    ) {
        let server = self.labels.load().server;
        let qtype = metrics::type_name(qtype);
        let family = if src.is_ipv4() { "1" } else { "2" };
        let rcode = metrics::rcode_name(rcode);
        // Label values are static strings, so their addresses identify them: a
        // per-thread list of handles spares the registry's hashing and locking.
        let key = [
            Arc::as_ptr(&self.metrics) as usize,
            server.as_ptr() as usize,
            zone.as_ptr() as usize,
            qtype.as_ptr() as usize,
            proto.as_ptr() as usize,
            family.as_ptr() as usize,
            rcode.as_ptr() as usize,
        ];
        let elapsed = started.elapsed().as_secs_f64();
        METRIC_HANDLES.with(|cell| {
            let mut handles = cell.borrow_mut();
            if let Some((_, requests, responses, duration)) =
                handles.iter().find(|(k, ..)| *k == key)
            {
                requests.inc();
                responses.inc();
                duration.observe(elapsed);
                return;
            }
            let requests = self
                .metrics
                .requests
                .get_or_create(&RequestLabels {
                    server,
                    zone,
                    view: "",
                    proto,
                    family,
                    qtype: TypeLabel { r#type: qtype },
                })
                .clone();
            let responses = self
                .metrics
                .responses
                .get_or_create(&ResponseLabels {
                    server,
                    zone,
                    view: "",
                    rcode,
                    plugin: "",
                })
                .clone();
            let duration = self
                .metrics
                .request_duration
                .get_or_create(&DurationLabels {
                    server,
                    zone,
                    view: "",
                    r#type: qtype,
                })
                .clone();
            requests.inc();
            responses.inc();
            duration.observe(elapsed);
            if handles.len() < MAX_METRIC_HANDLES {
                handles.push((key, requests, responses, duration));
            }
        });
    }

    /// Picks up new zones for the metric labels after a configuration reload.
    pub fn refresh_labels(&self) {
        let current = self.labels.load();
        let zones = zone_labels(&self.zone.load());
        if zones
            .iter()
            .map(|(z, _)| z)
            .ne(current.zones.iter().map(|(z, _)| z))
        {
            self.labels.store(Arc::new(Labels {
                server: current.server,
                zones,
            }));
        }
    }

    /// The cache's counters, labelled with this server.
    pub(super) fn cache_stats(&self) -> CacheStats<'_> {
        CacheStats::new(&self.metrics, self.labels.load().server)
    }
}

fn zone_labels(zone: &ZoneConfig) -> Vec<(Name, &'static str)> {
    let blocks = zone.blocks.iter().map(|(z, _)| z);
    zone.zone_names()
        .chain(blocks)
        .map(|z| (z.clone(), leak(z.to_string())))
        .collect()
}
