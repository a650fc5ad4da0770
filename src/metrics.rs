//! Prometheus metrics, with CoreDNS's names and labels where they mean the same
//! thing, so existing dashboards and alerts keep working.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use futures::FutureExt as _;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub server: &'static str,
    pub zone: &'static str,
    pub view: &'static str,
    pub proto: &'static str,
    pub family: &'static str,
    #[prometheus(flatten)]
    pub qtype: TypeLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DurationLabels {
    pub server: &'static str,
    pub zone: &'static str,
    pub view: &'static str,
    pub r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResponseLabels {
    pub server: &'static str,
    pub zone: &'static str,
    pub view: &'static str,
    pub rcode: &'static str,
    pub plugin: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub server: &'static str,
    pub r#type: &'static str,
    pub view: &'static str,
    pub zones: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheMissLabels {
    pub server: &'static str,
    pub view: &'static str,
    pub zones: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToLabel {
    pub to: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToRcodeLabels {
    pub to: String,
    pub rcode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
    pub revision: &'static str,
    pub goversion: &'static str,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 50 us .. ~3.3 s, four buckets per doubling
    exponential_buckets(0.00005, 2f64.sqrt().sqrt(), 64)
}

/// Label combinations whose handles a thread remembers (request and cache
/// counters); beyond, the registry is asked each time.
pub const MAX_METRIC_HANDLES: usize = 256;

fn dns_buckets() -> impl Iterator<Item = f64> {
    // CoreDNS: 0.00025 s doubling, 16 buckets
    exponential_buckets(0.00025, 2.0, 16)
}

pub struct Metrics {
    pub registry: Registry,
    /// From the EndpointSlice's last-change-trigger-time to the swap that serves it.
    pub programming_duration: Family<ServiceKindLabel, Histogram>,
    /// From receiving an API event to the swap that serves it.
    pub event_to_swap: Histogram,
    pub synced: Gauge<i64, AtomicI64>,
    pub requests: Family<RequestLabels, Counter>,
    pub responses: Family<ResponseLabels, Counter>,
    pub request_duration: Family<DurationLabels, Histogram>,
    pub cache_hits: Family<CacheLabels, Counter>,
    pub cache_misses: Family<CacheMissLabels, Counter>,
    pub cache_served_stale: Family<CacheMissLabels, Counter>,
    pub cache_prefetch: Family<CacheMissLabels, Counter>,
    pub cache_entries: Family<CacheLabels, Gauge<i64, AtomicI64>>,
    pub forward_requests: Family<ToLabel, Counter>,
    pub forward_responses: Family<ToRcodeLabels, Counter>,
    pub forward_duration: Family<ToRcodeLabels, Histogram>,
    pub forward_failures: Family<ToLabel, Counter>,
    pub forward_max_concurrent_rejects: Counter,
    /// Panics caught and recovered from (`coredns_panics_total`).
    pub panics: Counter,
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
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "coredns_dns_requests",
            "Counter of DNS requests made per zone, protocol and family",
            requests.clone(),
        );
        let responses = Family::<ResponseLabels, Counter>::default();
        registry.register(
            "coredns_dns_responses",
            "Counter of response status codes",
            responses.clone(),
        );
        let request_duration = Family::<DurationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(dns_buckets())
        });
        registry.register(
            "coredns_dns_request_duration_seconds",
            "Histogram of the time (in seconds) each request took per zone",
            request_duration.clone(),
        );
        let cache_hits = Family::<CacheLabels, Counter>::default();
        registry.register(
            "coredns_cache_hits",
            "The count of cache hits",
            cache_hits.clone(),
        );
        let cache_misses = Family::<CacheMissLabels, Counter>::default();
        registry.register(
            "coredns_cache_misses",
            "The count of cache misses",
            cache_misses.clone(),
        );
        let cache_served_stale = Family::<CacheMissLabels, Counter>::default();
        registry.register(
            "coredns_cache_served_stale",
            "The number of requests served from stale cache entries",
            cache_served_stale.clone(),
        );
        let cache_prefetch = Family::<CacheMissLabels, Counter>::default();
        registry.register(
            "coredns_cache_prefetch",
            "The number of times the cache has prefetched a cached item",
            cache_prefetch.clone(),
        );
        let cache_entries = Family::<CacheLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "coredns_cache_entries",
            "The number of elements in the cache",
            cache_entries.clone(),
        );
        let forward_requests = Family::<ToLabel, Counter>::default();
        registry.register(
            "coredns_forward_requests",
            "Counter of requests made per upstream",
            forward_requests.clone(),
        );
        let forward_responses = Family::<ToRcodeLabels, Counter>::default();
        registry.register(
            "coredns_forward_responses",
            "Counter of responses received per upstream",
            forward_responses.clone(),
        );
        let forward_duration = Family::<ToRcodeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(dns_buckets())
        });
        registry.register(
            "coredns_forward_request_duration_seconds",
            "Histogram of the time each request took per upstream",
            forward_duration.clone(),
        );
        let forward_failures = Family::<ToLabel, Counter>::default();
        registry.register(
            "coredns_forward_healthcheck_failures",
            "Counter of failed exchanges with an upstream",
            forward_failures.clone(),
        );
        let forward_max_concurrent_rejects = Counter::default();
        registry.register(
            "coredns_forward_max_concurrent_rejects",
            "Counter of queries rejected because of too many queries in flight",
            forward_max_concurrent_rejects.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge<i64, AtomicI64>>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                revision: option_env!("CLUSTER_DNS_REVISION").unwrap_or("unknown"),
                goversion: concat!("rust-", env!("CARGO_PKG_RUST_VERSION")),
            })
            .set(1);
        registry.register("coredns_build_info", "A metric with a constant '1' value labeled by version, revision, and goversion from which cluster-dns was built", build_info);
        let panics = Counter::<u64>::default();
        registry.register(
            "coredns_panics",
            "A metrics that counts the number of panics",
            panics.clone(),
        );
        Metrics {
            registry,
            programming_duration,
            event_to_swap,
            synced,
            requests,
            responses,
            request_duration,
            cache_hits,
            cache_misses,
            cache_served_stale,
            cache_prefetch,
            cache_entries,
            forward_requests,
            forward_responses,
            forward_duration,
            forward_failures,
            forward_max_concurrent_rejects,
            panics,
        }
    }

    /// Runs `body`, catching a panic (a bug) so the caller can start it again; the
    /// panic is counted in `coredns_panics_total`.
    pub fn catch_panic<T>(&self, body: impl FnOnce() -> T) -> std::thread::Result<T> {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(body));
        if outcome.is_err() {
            self.panics.inc();
        }
        outcome
    }

    /// [`Self::catch_panic`] for a future.
    pub async fn catch_panic_async<F: Future>(&self, body: F) -> std::thread::Result<F::Output> {
        let outcome = AssertUnwindSafe(body).catch_unwind().await;
        if outcome.is_err() {
            self.panics.inc();
        }
        outcome
    }

    pub fn observe_forward(&self, to: &str, rcode: ResponseCode, took: Duration) {
        let to = to.to_string();
        self.forward_requests
            .get_or_create(&ToLabel { to: to.clone() })
            .inc();
        let labels = ToRcodeLabels {
            to,
            rcode: rcode_name(rcode),
        };
        self.forward_responses.get_or_create(&labels).inc();
        self.forward_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    pub fn forward_failure(&self, to: &str) {
        let label = ToLabel { to: to.to_string() };
        self.forward_requests.get_or_create(&label).inc();
        self.forward_failures.get_or_create(&label).inc();
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

/// CoreDNS's rcode label values.
pub fn rcode_name(rcode: ResponseCode) -> &'static str {
    match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        ResponseCode::BADVERS | ResponseCode::BADSIG => "BADVERS",
        _ => "OTHER",
    }
}

/// CoreDNS's type label values: common types by name, the rest "other".
pub fn type_name(qtype: RecordType) -> &'static str {
    match qtype {
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        RecordType::SRV => "SRV",
        RecordType::PTR => "PTR",
        RecordType::CNAME => "CNAME",
        RecordType::TXT => "TXT",
        RecordType::MX => "MX",
        RecordType::NS => "NS",
        RecordType::SOA => "SOA",
        RecordType::HTTPS => "HTTPS",
        RecordType::SVCB => "SVCB",
        RecordType::ANY => "ANY",
        RecordType::AXFR => "AXFR",
        RecordType::IXFR => "IXFR",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panics_line(metrics: &Metrics) -> String {
        metrics
            .render()
            .lines()
            .find(|line| line.starts_with("coredns_panics_total"))
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn caught_panics_are_counted() {
        let metrics = Metrics::new();
        assert_eq!(panics_line(&metrics), "coredns_panics_total 0");
        assert_eq!(metrics.catch_panic(|| 7).ok(), Some(7));
        assert_eq!(panics_line(&metrics), "coredns_panics_total 0");
        assert!(metrics.catch_panic(|| -> u8 { panic!("a bug") }).is_err());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let caught = runtime.block_on(metrics.catch_panic_async(async {
            tokio::task::yield_now().await;
            if metrics.panics.get() > 0 {
                panic!("another bug");
            }
            1
        }));
        assert!(caught.is_err());
        assert_eq!(
            runtime
                .block_on(metrics.catch_panic_async(async { 1 }))
                .ok(),
            Some(1)
        );
        assert_eq!(panics_line(&metrics), "coredns_panics_total 2");
    }
}
