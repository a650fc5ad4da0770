//! Prometheus metrics, named like CoreDNS's where they mean the same thing.

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceKindLabel {
    pub service_kind: &'static str,
}

impl ServiceKindLabel {
    pub fn cluster_ip() -> Self {
        ServiceKindLabel {
            service_kind: "cluster_ip",
        }
    }

    pub fn headless() -> Self {
        ServiceKindLabel {
            service_kind: "headless_with_selector",
        }
    }
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 50 us .. ~3.3 s, four buckets per doubling
    exponential_buckets(0.00005, 2f64.sqrt().sqrt(), 64)
}

pub struct Metrics {
    pub registry: Registry,
    /// From the EndpointSlice's last-change-trigger-time to the swap that serves it.
    pub programming_duration: Family<ServiceKindLabel, Histogram>,
    /// From receiving an API event to the swap that serves it.
    pub event_to_swap: Histogram,
    pub synced: Gauge<i64, AtomicI64>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let programming_duration =
            Family::<ServiceKindLabel, Histogram>::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 20))
            });
        registry.register(
            "coredns_kubernetes_dns_programming_duration_seconds",
            "Time from an endpoint change (last-change-trigger-time) to its records being served",
            programming_duration.clone(),
        );
        let event_to_swap = Histogram::new(latency_buckets());
        registry.register(
            "cluster_dns_event_to_answer_seconds",
            "Time from receiving an API event to the index snapshot that answers with it",
            event_to_swap.clone(),
        );
        let synced = Gauge::default();
        registry.register(
            "cluster_dns_kubernetes_synced",
            "1 once every watched kind has completed its first list",
            synced.clone(),
        );
        Metrics {
            registry,
            programming_duration,
            event_to_swap,
            synced,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
