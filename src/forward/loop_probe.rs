//! The query that detects a forwarding loop (CoreDNS `loop`): if it comes back
//! to us, we are our own upstream.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use hickory_proto::op::Query;
use hickory_proto::rr::{Name, RecordType};

use super::{Forwarding, Question};

/// The query that detects a forwarding loop: if it comes back to us, we are
/// our own upstream (CoreDNS `loop`).
pub struct LoopProbe {
    pub name: Name,
    seen: AtomicUsize,
}

impl LoopProbe {
    pub fn new() -> Self {
        let mut bytes = [0u8; 8];
        let _ = getrandom::fill(&mut bytes);
        let label = format!("loop-{:016x}", u64::from_be_bytes(bytes));
        let name = Name::from_ascii(format!("{label}.cluster-dns-loop-check.invalid."))
            .unwrap_or_else(|_| Name::root());
        LoopProbe {
            name,
            seen: AtomicUsize::new(0),
        }
    }

    /// Counts the probe coming back.
    pub fn seen(&self) {
        self.seen.fetch_add(1, Ordering::Relaxed);
    }

    pub fn times_seen(&self) -> usize {
        self.seen.load(Ordering::Relaxed)
    }
}

impl Default for LoopProbe {
    fn default() -> Self {
        Self::new()
    }
}

/// Sends the loop probe to each upstream; returns the first one it came back
/// from (a forwarding loop), if any.
pub async fn find_loop(
    forwarding: &ArcSwap<Option<Forwarding>>,
    probe: &LoopProbe,
) -> Option<SocketAddr> {
    let current = forwarding.load_full();
    let forwarding = current.as_ref().as_ref()?;
    // Nothing is forwarded (a Corefile without `forward`): nothing to probe.
    if !forwarding.forwarder.options().forwards(&probe.name) {
        return None;
    }
    let question = Question {
        query: Query::query(probe.name.clone(), RecordType::HINFO),
        recursion_desired: true,
        checking_disabled: false,
        dnssec_ok: None,
    };
    for upstream in forwarding.forwarder.upstreams() {
        let before = probe.times_seen();
        let _ = forwarding.forwarder.probe(upstream, &question).await;
        if probe.times_seen() > before {
            return Some(upstream);
        }
    }
    None
}
