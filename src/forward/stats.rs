//! The cache's Prometheus counters, under CoreDNS's names (`coredns_cache_hits_total`,
//! `coredns_cache_misses_total`, `coredns_cache_entries`) and labels. Hits are counted
//! through a per-thread list of handles, as the request counters are.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;

use super::cache::{Cache, EntryKind};
use crate::metrics::{CacheLabels, CacheMissLabels, MAX_METRIC_HANDLES, Metrics};

thread_local! {
    static HIT_HANDLES: std::cell::RefCell<Vec<([usize; 3], Counter)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The cache's counters for one server label.
pub struct CacheStats<'a> {
    metrics: &'a Arc<Metrics>,
    server: &'static str,
}

fn kind_label(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Success => "success",
        EntryKind::Denial => "denial",
    }
}

impl<'a> CacheStats<'a> {
    pub fn new(metrics: &'a Arc<Metrics>, server: &'static str) -> Self {
        CacheStats { metrics, server }
    }

    fn labels(&self, kind: &'static str) -> CacheLabels {
        CacheLabels {
            server: self.server,
            r#type: kind,
            view: "",
            zones: ".",
        }
    }

    /// Sets `coredns_cache_entries` from the cache's counts.
    pub fn entries(&self, cache: &Cache) {
        let (success, denial) = cache.counts();
        for (kind, count) in [("success", success), ("denial", denial)] {
            self.metrics
                .cache_entries
                .get_or_create(&self.labels(kind))
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// Counts a cache hit.
    pub fn hit(&self, kind: EntryKind) {
        let kind = kind_label(kind);
        let key = [
            Arc::as_ptr(self.metrics) as usize,
            self.server.as_ptr() as usize,
            kind.as_ptr() as usize,
        ];
        HIT_HANDLES.with(|cell| {
            let mut handles = cell.borrow_mut();
            if let Some((_, counter)) = handles.iter().find(|(k, _)| *k == key) {
                counter.inc();
                return;
            }
            let counter = self
                .metrics
                .cache_hits
                .get_or_create(&self.labels(kind))
                .clone();
            counter.inc();
            if handles.len() < MAX_METRIC_HANDLES {
                handles.push((key, counter));
            }
        });
    }

    fn zone_labels(&self) -> CacheMissLabels {
        CacheMissLabels {
            server: self.server,
            view: "",
            zones: ".",
        }
    }

    /// Counts an answer from an expired entry (`serve_stale`).
    pub fn served_stale(&self) {
        let labels = self.zone_labels();
        self.metrics.cache_served_stale.get_or_create(&labels).inc();
    }

    /// Counts a refresh of an entry before it expires (`prefetch`).
    pub fn prefetched(&self) {
        let labels = self.zone_labels();
        self.metrics.cache_prefetch.get_or_create(&labels).inc();
    }

    /// Counts a query the cache could not answer.
    pub fn miss(&self, cache: &Cache) {
        let labels = self.zone_labels();
        self.metrics.cache_misses.get_or_create(&labels).inc();
        // A lookup may have dropped an expired entry.
        self.entries(cache);
    }
}
