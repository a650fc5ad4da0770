//! How a forwarder picks, asks and checks its upstreams: CoreDNS `forward`'s
//! options (`policy`, `max_fails`, `health_check`, `force_tcp`, `except`),
//! with CoreDNS's defaults.

use std::time::Duration;

use hickory_proto::rr::Name;

/// The order upstreams are asked in (CoreDNS `policy`).
#[derive(
    Debug,
    Default,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Policy {
    /// A random order for each query (CoreDNS's default).
    #[default]
    Random,
    /// Each query starts one upstream further along the list.
    RoundRobin,
    /// Always the list's order: the first upstream unless it is down.
    Sequential,
}

/// CoreDNS's `max_fails`: failures in a row after which an upstream is down.
pub const DEFAULT_MAX_FAILS: u32 = 2;
/// CoreDNS's `health_check` interval.
pub const DEFAULT_HEALTH_CHECK: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardOptions {
    pub policy: Policy,
    /// An upstream with more failures in a row than this is down: asked only
    /// after the others, and checked every `health_check` until it answers.
    /// 0: never down.
    pub max_fails: u32,
    pub health_check: Duration,
    /// The health check's question: `NAME IN NS`, recursion desired unless
    /// `no_rec`.
    pub health_check_name: Name,
    pub health_check_recursion: bool,
    /// Always TCP to the upstreams (else UDP, and TCP when truncated).
    pub force_tcp: bool,
    /// CoreDNS `forward FROM`: only names in this zone are forwarded.
    pub from: Name,
    /// Zones never forwarded: their names get SERVFAIL, as from CoreDNS with no
    /// plugin after `forward`.
    pub except: Vec<Name>,
    /// The TLS keys as given (used when the upstreams are `tls://`).
    pub tls_files: super::tls::TlsFiles,
    /// DNS over TLS to every upstream (`tls://`); else plain DNS.
    pub tls: Option<super::tls::UpstreamTls>,
}

impl Default for ForwardOptions {
    fn default() -> Self {
        ForwardOptions {
            policy: Policy::default(),
            max_fails: DEFAULT_MAX_FAILS,
            health_check: DEFAULT_HEALTH_CHECK,
            health_check_name: Name::root(),
            health_check_recursion: true,
            force_tcp: false,
            from: Name::root(),
            except: Vec::new(),
            tls_files: super::tls::TlsFiles::default(),
            tls: None,
        }
    }
}

impl ForwardOptions {
    /// Whether `name` may be forwarded: in the `FROM` zone and in no `except` zone.
    pub fn forwards(&self, name: &Name) -> bool {
        self.from.zone_of(name) && !self.except.iter().any(|zone| zone.zone_of(name))
    }

    /// Whether an upstream with `fails` failures in a row is down (CoreDNS:
    /// more than `max_fails`, never with 0).
    pub fn down(&self, fails: u32) -> bool {
        self.max_fails > 0 && fails > self.max_fails
    }
}

/// `count` upstream positions in the order `policy` asks them; `turn` counts
/// the queries so far and `random` is fresh randomness.
pub fn order(policy: Policy, count: usize, turn: usize, random: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    match policy {
        Policy::Sequential => {}
        Policy::RoundRobin if count > 0 => {
            // CoreDNS's roundRobin.List: the counter moves first, then that
            // upstream leads and the others keep their order behind it.
            let lead = (turn + 1) % count;
            order.remove(lead);
            order.insert(0, lead);
        }
        Policy::RoundRobin => {}
        Policy::Random => {
            // Fisher-Yates, driven by 64 bits (plenty for a handful of upstreams).
            let mut bits = random;
            for i in (1..count).rev() {
                let j = (bits % (i as u64 + 1)) as usize;
                bits = bits.rotate_right(7) ^ (bits >> 3);
                order.swap(i, j);
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// plugin/forward/forward_test.go TestList: the first round-robin list of
    /// 1.1.1.1, 2.2.2.2, 3.3.3.3 is 2.2.2.2, 1.1.1.1, 3.3.3.3.
    #[test]
    fn sequential_keeps_the_list_and_round_robin_turns_it() {
        assert_eq!(order(Policy::Sequential, 3, 7, 99), [0, 1, 2]);
        assert_eq!(order(Policy::RoundRobin, 3, 0, 99), [1, 0, 2], "TestList");
        assert_eq!(order(Policy::RoundRobin, 3, 1, 99), [2, 0, 1]);
        assert_eq!(order(Policy::RoundRobin, 3, 2, 99), [0, 1, 2]);
        assert_eq!(order(Policy::RoundRobin, 1, 0, 99), [0]);
        assert!(order(Policy::RoundRobin, 0, 5, 99).is_empty());
    }

    #[test]
    fn random_is_a_permutation_that_puts_each_upstream_first() {
        let mut firsts = [0usize; 3];
        for seed in 0..300u64 {
            let random = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let mut o = order(Policy::Random, 3, 0, random);
            firsts[o[0]] += 1;
            o.sort_unstable();
            assert_eq!(o, [0, 1, 2]);
        }
        assert!(firsts.iter().all(|n| *n > 50), "{firsts:?}");
    }

    #[test]
    fn down_after_more_than_max_fails_never_with_zero() {
        let mut o = ForwardOptions::default();
        assert!(!o.down(2) && o.down(3));
        o.max_fails = 0;
        assert!(!o.down(1000));
    }

    #[test]
    fn except_zones_are_not_forwarded() {
        let o = ForwardOptions {
            except: vec![Name::from_ascii("corp.example.").unwrap()],
            ..ForwardOptions::default()
        };
        assert!(!o.forwards(&Name::from_ascii("a.corp.example.").unwrap()));
        assert!(!o.forwards(&Name::from_ascii("corp.example.").unwrap()));
        assert!(o.forwards(&Name::from_ascii("example.").unwrap()));
        let from = ForwardOptions {
            from: Name::from_ascii("example.org.").unwrap(),
            ..o
        };
        assert!(from.forwards(&Name::from_ascii("www.Example.ORG.").unwrap()));
        assert!(!from.forwards(&Name::from_ascii("example.com.").unwrap()));
    }
}
