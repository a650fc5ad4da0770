//! The cache for forwarded answers (CoreDNS `cache`): positive and negative
//! (RFC 2308: the SOA's TTL and MINIMUM bound a denial), TTLs capped, a size
//! bound, and TTLs that count down while an answer sits in the cache.
//!
//! Entries live in a sharded concurrent cache (quick_cache: a lock per shard,
//! eviction in O(1) by a CLOCK-Pro/S3-FIFO policy), so queries on different
//! names do not wait for each other; the entry counts the metrics report are kept
//! by the cache's own eviction hook.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::Question;
use crate::answer::Answer;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    name: Name,
    qtype: RecordType,
    class: DNSClass,
    dnssec_ok: bool,
    checking_disabled: bool,
}

/// A [`Key`] borrowed from a query, to look up without building one (a long name
/// would be copied to the heap). Hashes as `Key` does: the same fields in order.
#[derive(Hash)]
struct KeyRef<'a> {
    name: &'a Name,
    qtype: RecordType,
    class: DNSClass,
    dnssec_ok: bool,
    checking_disabled: bool,
}

impl quick_cache::Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        // `Name` compares case-insensitively, as it hashes.
        *self.name == key.name
            && self.qtype == key.qtype
            && self.class == key.class
            && self.dnssec_ok == key.dnssec_ok
            && self.checking_disabled == key.checking_disabled
    }
}

impl Key {
    fn of(question: &Question) -> Self {
        Key {
            name: question.query.name().to_lowercase(),
            qtype: question.query.query_type(),
            class: question.query.query_class(),
            dnssec_ok: question.dnssec_ok.unwrap_or(false),
            checking_disabled: question.checking_disabled,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Success,
    Denial,
}

struct Entry {
    stored: Instant,
    ttl: u32,
    kind: EntryKind,
    reply: Answer,
    /// Hits in a row, each within the prefetch window of the one before.
    hits: AtomicU32,
    /// Milliseconds after `stored` of the last hit.
    last_hit_ms: AtomicU64,
    /// A refresh of this entry (prefetch or stale) is on its way.
    refreshing: AtomicBool,
}

/// How the cache keeps and hands out answers: CoreDNS `cache`'s options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOptions {
    /// Longest a positive answer is kept (`cache TTL`, `success CAPACITY TTL`).
    pub success_ttl: u32,
    /// Longest a denial (NXDOMAIN, NODATA) is kept (`denial CAPACITY TTL`).
    pub denial_ttl: u32,
    pub size: usize,
    /// How long after expiry an entry still answers, with TTL 0, while a fresh
    /// answer is fetched (`serve_stale`); zero: never.
    pub serve_stale: Duration,
    /// Ask the upstreams first and answer stale only when they fail
    /// (`serve_stale DURATION verify`); else answer stale at once.
    pub verify_stale: bool,
    /// `prefetch AMOUNT [DURATION] [PERCENTAGE%]`: an entry asked AMOUNT times,
    /// each within DURATION of the last, is fetched again once PERCENTAGE of its
    /// TTL is left. 0: no prefetch.
    pub prefetch: u32,
    pub prefetch_window: Duration,
    pub prefetch_percent: u8,
    /// Only names in these zones are cached (`cache TTL ZONES`); empty: all.
    pub zones: Vec<Name>,
    /// `disable success|denial ZONES`: kinds of answers never cached there.
    pub disable_success: Vec<Name>,
    pub disable_denial: Vec<Name>,
}

impl CacheOptions {
    /// What `cache TTL` alone means in CoreDNS: both kinds capped at TTL, no
    /// stale answers, no prefetch.
    pub fn with_ttl(ttl: u32, size: usize) -> Self {
        CacheOptions {
            success_ttl: ttl,
            denial_ttl: ttl,
            size,
            serve_stale: Duration::ZERO,
            verify_stale: false,
            prefetch: 0,
            prefetch_window: DEFAULT_PREFETCH_WINDOW,
            prefetch_percent: DEFAULT_PREFETCH_PERCENT,
            zones: Vec::new(),
            disable_success: Vec::new(),
            disable_denial: Vec::new(),
        }
    }
}

/// CoreDNS's `prefetch` defaults: hits within a minute, 10% of the TTL left.
pub const DEFAULT_PREFETCH_WINDOW: Duration = Duration::from_secs(60);
pub const DEFAULT_PREFETCH_PERCENT: u8 = 10;
/// CoreDNS's `serve_stale` without a duration.
pub const DEFAULT_SERVE_STALE: Duration = Duration::from_secs(3600);

/// Entries of each kind, counted as they come and go so reading them costs nothing.
#[derive(Default)]
struct Counts {
    success: AtomicUsize,
    denial: AtomicUsize,
}

impl Counts {
    fn of(&self, kind: EntryKind) -> &AtomicUsize {
        match kind {
            EntryKind::Success => &self.success,
            EntryKind::Denial => &self.denial,
        }
    }
}

/// quick_cache's hook for every entry that leaves: evicted, or replaced by a newer one.
#[derive(Clone, Default)]
struct Counting(Arc<Counts>);

impl quick_cache::Lifecycle<Key, Arc<Entry>> for Counting {
    type RequestState = ();

    fn on_evict(&self, _state: &mut Self::RequestState, _key: Key, entry: Arc<Entry>) {
        self.0.of(entry.kind).fetch_sub(1, Ordering::Relaxed);
    }
}

type Entries = quick_cache::sync::Cache<
    Key,
    Arc<Entry>,
    quick_cache::UnitWeighter,
    quick_cache::DefaultHashBuilder,
    Counting,
>;

/// A cache entry and how old it is: live, or stale (past its TTL, within
/// `serve_stale`).
pub struct Hit {
    entry: Arc<Entry>,
    age: u32,
    max_ttl: u32,
    stale: bool,
    prefetch_due: bool,
}

impl Hit {
    pub fn kind(&self) -> EntryKind {
        self.entry.kind
    }

    /// The reply with the TTLs it had when stored.
    pub fn reply(&self) -> &Answer {
        &self.entry.reply
    }

    /// A record's TTL now: capped, and counted down by the entry's age; 0 once stale.
    pub fn ttl(&self, record: &Record) -> u32 {
        if self.stale {
            return 0;
        }
        record.ttl.min(self.max_ttl).saturating_sub(self.age)
    }

    /// The reply with its TTLs as they are now.
    pub fn answer(&self) -> Answer {
        let mut reply = self.reply().clone();
        for record in reply.records_mut() {
            record.ttl = self.ttl(record);
        }
        reply
    }

    /// Past its TTL: answered only under `serve_stale`.
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Asked often enough, and near enough its end, to be fetched again now
    /// (`prefetch`).
    pub fn prefetch_due(&self) -> bool {
        self.prefetch_due
    }

    /// Takes the right to refresh this entry: true for one caller until the
    /// entry is replaced, or the refresh fails ([`Self::release_refresh`]).
    pub fn claim_refresh(&self) -> bool {
        !self.entry.refreshing.swap(true, Ordering::Relaxed)
    }

    /// A refresh failed: the next query may try again.
    pub fn release_refresh(&self) {
        self.entry.refreshing.store(false, Ordering::Relaxed);
    }
}

pub struct Cache {
    options: CacheOptions,
    entries: Entries,
    counts: Arc<Counts>,
}

/// How long a reply may be cached, and as what; `None` for replies not to cache.
fn lifetime(reply: &Message, (success_ttl, denial_ttl): (u32, u32)) -> Option<(u32, EntryKind)> {
    if reply.metadata.truncation {
        return None;
    }
    let ttl_and_kind = match reply.metadata.response_code {
        ResponseCode::NoError if !reply.answers.is_empty() => (
            reply.answers.iter().map(|r| r.ttl).min()?,
            EntryKind::Success,
        ),
        ResponseCode::NoError | ResponseCode::NXDomain => {
            // RFC 2308 section 5: a denial lives as long as the SOA record and its MINIMUM allow.
            let ttl = reply.authorities.iter().find_map(|r| match &r.data {
                RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
                _ => None,
            })?;
            (ttl, EntryKind::Denial)
        }
        _ => return None,
    };
    let cap = match ttl_and_kind.1 {
        EntryKind::Success => success_ttl,
        EntryKind::Denial => denial_ttl,
    };
    let ttl = ttl_and_kind.0.min(cap);
    (ttl > 0).then_some((ttl, ttl_and_kind.1))
}

/// Seconds since the epoch, as RRSIG validity periods count them.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Whether every RRSIG of the reply is within its validity period at `now`
/// (RFC 4034 section 3.1.5: inception and expiration in serial number
/// arithmetic, as miekg/dns's `ValidityPeriod` reads them).
fn signatures_valid_at(reply: &Message, now: i64) -> bool {
    const YEAR68: i64 = 1 << 31;
    // As miekg/dns computes it (Go's division truncates, as Rust's does).
    let unfold = |field: u32| {
        let field = i64::from(field);
        field + (field - now) / YEAR68 * YEAR68
    };
    reply
        .answers
        .iter()
        .chain(&reply.authorities)
        .chain(&reply.additionals)
        .all(|record| {
            // Without hickory's DNSSEC feature an RRSIG is kept as raw bytes:
            // type covered, algorithm, labels, original TTL, expiration, inception.
            let RData::Unknown {
                code: RecordType::RRSIG,
                rdata,
            } = &record.data
            else {
                return true;
            };
            let field = |at: usize| {
                rdata
                    .anything
                    .get(at..at + 4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(u32::from_be_bytes)
            };
            match (field(12), field(8)) {
                (Some(inception), Some(expiration)) => {
                    unfold(inception) <= now && now <= unfold(expiration)
                }
                _ => false,
            }
        })
}

impl Cache {
    /// `cache TTL` with room for `max_entries`.
    pub fn new(max_ttl: u32, max_entries: usize) -> Self {
        Cache::with_options(CacheOptions::with_ttl(max_ttl, max_entries))
    }

    pub fn with_options(options: CacheOptions) -> Self {
        let max_entries = options.size.max(1);
        let counting = Counting::default();
        let counts = counting.0.clone();
        let entries = Entries::with(
            max_entries,
            max_entries as u64,
            quick_cache::UnitWeighter,
            quick_cache::DefaultHashBuilder::default(),
            counting,
        );
        Cache {
            options,
            entries,
            counts,
        }
    }

    pub fn options(&self) -> &CacheOptions {
        &self.options
    }

    /// The longest TTL handed out for `kind`; fresh answers are capped to it as well.
    pub fn max_ttl(&self, kind: EntryKind) -> u32 {
        match kind {
            EntryKind::Success => self.options.success_ttl,
            EntryKind::Denial => self.options.denial_ttl,
        }
    }

    /// The longest TTL a fresh upstream reply may show: as the copy cached.
    pub fn cap_of(&self, reply: &Message) -> u32 {
        lifetime(reply, (self.options.success_ttl, self.options.denial_ttl))
            .map_or(self.options.success_ttl, |(_, kind)| self.max_ttl(kind))
    }

    /// The entry for a question, live or stale.
    pub fn get(&self, question: &Question) -> Option<Hit> {
        self.lookup_at(&Key::of(question), Instant::now())
    }

    /// The cached reply with its TTLs counted down, if still alive.
    #[cfg(test)]
    pub(crate) fn get_at(&self, question: &Question, now: Instant) -> Option<(Answer, EntryKind)> {
        let hit = self.lookup_at(&Key::of(question), now)?;
        Some((hit.answer(), hit.kind()))
    }

    /// The live entry for a question of class IN, shared rather than copied (the
    /// UDP fast path writes it straight out).
    pub fn lookup(
        &self,
        name: &Name,
        qtype: RecordType,
        dnssec_ok: bool,
        checking_disabled: bool,
    ) -> Option<Hit> {
        let key = KeyRef {
            name,
            qtype,
            class: DNSClass::IN,
            dnssec_ok,
            checking_disabled,
        };
        self.lookup_at(&key, Instant::now())
    }

    fn lookup_at<Q>(&self, key: &Q, now: Instant) -> Option<Hit>
    where
        Q: std::hash::Hash + quick_cache::Equivalent<Key> + ?Sized,
    {
        let entry = self.entries.get(key)?;
        let since = now.saturating_duration_since(entry.stored);
        let age = u32::try_from(since.as_secs()).unwrap_or(u32::MAX);
        let stale = age >= entry.ttl;
        let stale_for = since.saturating_sub(Duration::from_secs(u64::from(entry.ttl)));
        if stale && stale_for >= self.options.serve_stale {
            // Only this entry: another query may have stored a fresh one meanwhile.
            if let Some((_, gone)) = self
                .entries
                .remove_if(key, |current| Arc::ptr_eq(current, &entry))
            {
                self.counts.of(gone.kind).fetch_sub(1, Ordering::Relaxed);
            }
            return None;
        }
        let prefetch_due = !stale && self.counts_hit(&entry, since, age);
        let max_ttl = self.max_ttl(entry.kind);
        Some(Hit {
            entry,
            age,
            max_ttl,
            stale,
            prefetch_due,
        })
    }

    /// Counts a hit on a live entry (CoreDNS's `Freq.Update`: a hit more than
    /// the window after the last starts the count again) and says whether it is
    /// time to prefetch it.
    fn counts_hit(&self, entry: &Entry, since: Duration, age: u32) -> bool {
        if self.options.prefetch == 0 {
            return false;
        }
        let now_ms = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
        let last = entry.last_hit_ms.swap(now_ms, Ordering::Relaxed);
        let window = u64::try_from(self.options.prefetch_window.as_millis()).unwrap_or(u64::MAX);
        let hits = if now_ms.saturating_sub(last) > window {
            entry.hits.store(1, Ordering::Relaxed);
            1
        } else {
            entry.hits.fetch_add(1, Ordering::Relaxed) + 1
        };
        // CoreDNS: ceil(percentage / 100 * original TTL).
        let threshold =
            (u64::from(self.options.prefetch_percent) * u64::from(entry.ttl)).div_ceil(100);
        hits >= self.options.prefetch && u64::from(entry.ttl - age) <= threshold
    }

    /// Keeps a reply from upstream if it may be cached.
    pub fn insert(&self, question: &Question, reply: &Message) -> bool {
        self.insert_at(question, reply, Instant::now())
    }

    #[doc(hidden)]
    pub fn insert_at(&self, question: &Question, reply: &Message, now: Instant) -> bool {
        let zones = &self.options.zones;
        if !zones.is_empty() && !zones.iter().any(|zone| zone.zone_of(question.query.name())) {
            return false;
        }
        // CoreDNS (response.Typify): for a DO query, a reply with a signature
        // out of its validity period is an error, not an answer to keep.
        if question.dnssec_ok == Some(true) && !signatures_valid_at(reply, unix_now()) {
            return false;
        }
        let caps = (self.options.success_ttl, self.options.denial_ttl);
        let Some((ttl, kind)) = lifetime(reply, caps) else {
            return false;
        };
        let disabled = match kind {
            EntryKind::Success => &self.options.disable_success,
            EntryKind::Denial => &self.options.disable_denial,
        };
        if disabled
            .iter()
            .any(|zone| zone.zone_of(question.query.name()))
        {
            return false;
        }
        let entry = Entry {
            stored: now,
            ttl,
            kind,
            reply: Answer::from_upstream(reply.clone()),
            hits: AtomicU32::new(0),
            last_hit_ms: AtomicU64::new(0),
            refreshing: AtomicBool::new(false),
        };
        // Counted in before it goes in: the entry it replaces, or one evicted to
        // make room, is counted out by the eviction hook.
        self.counts.of(kind).fetch_add(1, Ordering::Relaxed);
        self.entries.insert(Key::of(question), Arc::new(entry));
        true
    }

    /// Entries of each kind, for the metrics.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.counts.success.load(Ordering::Relaxed),
            self.counts.denial.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::{A, SOA};
    use std::time::Duration;

    fn question(name: &str) -> Question {
        Question {
            query: Query::query(Name::from_ascii(name).unwrap(), RecordType::A),
            recursion_desired: true,
            checking_disabled: false,
            dnssec_ok: None,
        }
    }

    fn reply(rcode: ResponseCode, answer_ttl: Option<u32>, soa: Option<(u32, u32)>) -> Message {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        let name = Name::from_ascii("example.com.").unwrap();
        if let Some(ttl) = answer_ttl {
            m.add_answer(Record::from_rdata(
                name.clone(),
                ttl,
                RData::A(A::new(192, 0, 2, 1)),
            ));
        }
        if let Some((ttl, minimum)) = soa {
            let soa = SOA::new(name.clone(), name.clone(), 1, 1, 1, 1, minimum);
            m.add_authority(Record::from_rdata(name, ttl, RData::SOA(soa)));
        }
        m
    }

    #[test]
    fn positive_answers_are_capped_and_count_down() {
        let cache = Cache::new(30, 100);
        let q = question("Example.COM.");
        let t0 = Instant::now();
        assert!(cache.insert_at(&q, &reply(ResponseCode::NoError, Some(300), None), t0));
        let (hit, kind) = cache
            .get_at(&question("example.com."), t0 + Duration::from_secs(10))
            .unwrap();
        assert_eq!(kind, EntryKind::Success);
        assert_eq!(hit.answers[0].ttl, 20, "capped at 30, 10 s elapsed");
        assert!(
            cache.get_at(&q, t0 + Duration::from_secs(30)).is_none(),
            "expired"
        );
    }

    #[test]
    fn short_ttls_are_kept_as_given() {
        let cache = Cache::new(30, 100);
        let q = question("example.com.");
        let t0 = Instant::now();
        cache.insert_at(&q, &reply(ResponseCode::NoError, Some(5), None), t0);
        assert_eq!(
            cache
                .get_at(&q, t0 + Duration::from_secs(2))
                .unwrap()
                .0
                .answers[0]
                .ttl,
            3
        );
        assert!(cache.get_at(&q, t0 + Duration::from_secs(5)).is_none());
    }

    #[test]
    fn denials_live_by_the_soa() {
        let cache = Cache::new(30, 100);
        let q = question("nope.example.com.");
        let t0 = Instant::now();
        assert!(cache.insert_at(
            &q,
            &reply(ResponseCode::NXDomain, None, Some((3600, 7))),
            t0
        ));
        let (hit, kind) = cache.get_at(&q, t0 + Duration::from_secs(6)).unwrap();
        assert_eq!(kind, EntryKind::Denial);
        assert_eq!(hit.rcode, ResponseCode::NXDomain);
        assert!(
            cache.get_at(&q, t0 + Duration::from_secs(7)).is_none(),
            "SOA minimum 7 s"
        );
        // A denial without a SOA, SERVFAIL and truncated replies are not cached.
        assert!(!cache.insert_at(&q, &reply(ResponseCode::NXDomain, None, None), t0));
        assert!(!cache.insert_at(&q, &reply(ResponseCode::ServFail, None, None), t0));
        let mut truncated = reply(ResponseCode::NoError, Some(60), None);
        truncated.metadata.truncation = true;
        assert!(!cache.insert_at(&q, &truncated, t0));
        // NODATA is a denial too.
        assert!(cache.insert_at(&q, &reply(ResponseCode::NoError, None, Some((60, 60))), t0));
    }

    #[test]
    fn the_size_is_bounded() {
        let cache = Cache::new(30, 50);
        let t0 = Instant::now();
        for i in 0..500 {
            cache.insert_at(
                &question(&format!("n{i}.example.com.")),
                &reply(ResponseCode::NoError, Some(30), None),
                t0,
            );
        }
        let (success, denial) = cache.counts();
        assert!(success + denial <= 50, "{success} entries");
        assert_eq!(
            success + denial,
            cache.entries.len(),
            "the counts follow evictions"
        );
        assert!(
            cache.get_at(&question("n499.example.com."), t0).is_some(),
            "the newest is kept"
        );
    }

    #[test]
    fn counts_stay_exact_under_concurrent_inserts_replacements_and_evictions() {
        let cache = Arc::new(Cache::new(30, 64));
        let t0 = Instant::now();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let cache = cache.clone();
                std::thread::spawn(move || {
                    for i in 0..3000 {
                        // Overlapping names across threads, success and denial mixed,
                        // so entries are replaced by the other kind as well.
                        let q = question(&format!("n{}.example.com.", (i * 7 + t) % 200));
                        let r = if (i + t) % 3 == 0 {
                            reply(ResponseCode::NXDomain, None, Some((60, 60)))
                        } else {
                            reply(ResponseCode::NoError, Some(30), None)
                        };
                        cache.insert_at(&q, &r, t0);
                        let _ = cache.get_at(&q, t0);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let (success, denial) = cache.counts();
        let actual_success = cache
            .entries
            .iter()
            .filter(|(_, e)| e.kind == EntryKind::Success)
            .count();
        assert_eq!(success, actual_success);
        assert_eq!(success + denial, cache.entries.len());
        assert!(cache.entries.len() <= 64);
    }

    /// `serve_stale`: an expired entry answers with TTL 0 for the window, then
    /// goes; one caller at a time may refresh it.
    #[test]
    fn stale_entries_answer_within_the_window() {
        let cache = Cache::with_options(CacheOptions {
            serve_stale: Duration::from_secs(60),
            ..CacheOptions::with_ttl(30, 100)
        });
        let q = question("example.com.");
        let t0 = Instant::now();
        cache.insert_at(&q, &reply(ResponseCode::NoError, Some(10), None), t0);
        let fresh = cache
            .lookup_at(&Key::of(&q), t0 + Duration::from_secs(5))
            .unwrap();
        assert!(!fresh.is_stale());
        let stale = cache
            .lookup_at(&Key::of(&q), t0 + Duration::from_secs(20))
            .unwrap();
        assert!(stale.is_stale());
        assert_eq!(stale.answer().answers[0].ttl, 0);
        assert!(stale.claim_refresh());
        assert!(!stale.claim_refresh(), "one refresh at a time");
        stale.release_refresh();
        assert!(stale.claim_refresh(), "again after a failed one");
        assert!(
            cache
                .lookup_at(&Key::of(&q), t0 + Duration::from_secs(69))
                .is_some()
        );
        assert!(
            cache
                .lookup_at(&Key::of(&q), t0 + Duration::from_secs(70))
                .is_none()
        );
        // Without serve_stale, expired is gone.
        let plain = Cache::new(30, 100);
        plain.insert_at(&q, &reply(ResponseCode::NoError, Some(10), None), t0);
        assert!(
            plain
                .lookup_at(&Key::of(&q), t0 + Duration::from_secs(10))
                .is_none()
        );
    }

    /// `prefetch 3 10s 50%`: the third hit in a row (each within 10 s of the
    /// last) with at most half the TTL left asks for a prefetch.
    #[test]
    fn prefetch_is_due_after_enough_hits_near_the_end() {
        let cache = Cache::with_options(CacheOptions {
            prefetch: 3,
            prefetch_window: Duration::from_secs(10),
            prefetch_percent: 50,
            ..CacheOptions::with_ttl(100, 100)
        });
        let q = question("example.com.");
        let t0 = Instant::now();
        cache.insert_at(&q, &reply(ResponseCode::NoError, Some(20), None), t0);
        let due = |secs: u64| {
            cache
                .lookup_at(&Key::of(&q), t0 + Duration::from_secs(secs))
                .unwrap()
                .prefetch_due()
        };
        assert!(!due(1) && !due(2), "two hits");
        assert!(!due(3), "three hits, but 17 s of 20 left");
        assert!(!due(9), "10 s left: the run of hits goes on");
        assert!(due(10), "10 s of 20 left, 5 hits in a row");
        // A gap longer than the window starts the count again.
        let other = question("other.example.com.");
        cache.insert_at(&other, &reply(ResponseCode::NoError, Some(20), None), t0);
        let hit = |secs: u64| {
            cache
                .lookup_at(&Key::of(&other), t0 + Duration::from_secs(secs))
                .unwrap()
                .prefetch_due()
        };
        assert!(!hit(1), "one hit");
        assert!(!hit(12), "11 s later: one again");
        assert!(!hit(13), "two");
        assert!(hit(14), "three in a row, 6 s left");
    }

    /// `denial CAPACITY TTL`: denials have a cap of their own.
    #[test]
    fn denials_have_their_own_cap() {
        let cache = Cache::with_options(CacheOptions {
            denial_ttl: 5,
            ..CacheOptions::with_ttl(300, 100)
        });
        let t0 = Instant::now();
        let q = question("nope.example.com.");
        cache.insert_at(
            &q,
            &reply(ResponseCode::NXDomain, None, Some((3600, 3600))),
            t0,
        );
        assert!(cache.get_at(&q, t0 + Duration::from_secs(4)).is_some());
        assert!(cache.get_at(&q, t0 + Duration::from_secs(5)).is_none());
        let yes = question("yes.example.com.");
        cache.insert_at(&yes, &reply(ResponseCode::NoError, Some(3600), None), t0);
        assert!(cache.get_at(&yes, t0 + Duration::from_secs(299)).is_some());
    }

    #[test]
    fn do_and_cd_are_part_of_the_key() {
        let cache = Cache::new(30, 100);
        let t0 = Instant::now();
        let plain = question("example.com.");
        cache.insert_at(&plain, &reply(ResponseCode::NoError, Some(30), None), t0);
        let mut secure = plain.clone();
        secure.dnssec_ok = Some(true);
        assert!(cache.get_at(&secure, t0).is_none());
    }

    /// An RRSIG over MX records as raw bytes (how it arrives without hickory's
    /// DNSSEC feature), valid from `inception` to `expiration` (Unix seconds).
    fn rrsig(owner: &str, ttl: u32, expiration: u32, inception: u32) -> Record {
        let mut bytes = vec![0, 15, 8, 2, 0, 0, 0x07, 0x08];
        bytes.extend(expiration.to_be_bytes());
        bytes.extend(inception.to_be_bytes());
        bytes.extend([0x2f, 0x13]); // key tag 12051
        bytes.extend(b"\x04miek\x02nl\x00");
        bytes.extend([0xa5; 32]); // the signature, never checked here
        Record::from_rdata(
            Name::from_ascii(owner).unwrap(),
            ttl,
            RData::Unknown {
                code: RecordType::RRSIG,
                rdata: hickory_proto::rr::rdata::NULL::with(bytes),
            },
        )
    }

    fn mx(owner: &str, ttl: u32, preference: u16, exchange: &str) -> Record {
        let exchange = Name::from_ascii(exchange).unwrap();
        Record::from_rdata(
            Name::from_ascii(owner).unwrap(),
            ttl,
            RData::MX(hickory_proto::rr::rdata::MX::new(preference, exchange)),
        )
    }

    /// plugin/cache/cache_test.go TestCache (`cacheTestCases`), with the cap
    /// `maxTTL` (3600 s): what is cached, under the question as asked (case
    /// kept), with TTLs capped. CoreDNS caches SERVFAIL and NOTIMP for its
    /// `servfail` duration; cluster-dns never does (README, Corefile: `cache`).
    #[test]
    fn coredns_cache_test_cases() {
        let t0 = Instant::now();
        let mx_question = |name: &str, dnssec_ok: bool| Question {
            query: Query::query(Name::from_ascii(name).unwrap(), RecordType::MX),
            recursion_desired: true,
            checking_disabled: false,
            dnssec_ok: Some(dnssec_ok),
        };
        let with = |rcode, answers: Vec<Record>, authority: Vec<Record>, truncated| {
            let mut m = Message::new(1, MessageType::Response, OpCode::Query);
            m.metadata.response_code = rcode;
            m.metadata.recursion_available = true;
            m.metadata.authoritative = true;
            m.metadata.truncation = truncated;
            m.answers = answers;
            m.authorities = authority;
            m
        };
        let two_mx = |owner: &str, ttl| {
            vec![
                mx(owner, ttl, 1, "aspmx.l.google.com."),
                mx(owner, ttl, 10, "aspmx2.googlemail.com."),
            ]
        };
        let soa = {
            let name = |n: &str| Name::from_ascii(n).unwrap();
            let soa = SOA::new(
                name("sns.dns.icann.org."),
                name("noc.dns.icann.org."),
                2016082540,
                7200,
                3600,
                1209600,
                3600,
            );
            Record::from_rdata(name("example.org."), 3600, RData::SOA(soa))
        };
        let ok = ResponseCode::NoError;
        // (question, reply, cached, TTLs of the cached answer)
        let cases = [
            (
                mx_question("miek.nl.", false),
                with(ok, two_mx("miek.nl.", 3601), vec![], false),
                true,
                vec![3600, 3600],
            ),
            (
                mx_question("mIEK.nL.", false),
                with(ok, two_mx("mIEK.nL.", 3601), vec![], false),
                true,
                vec![3600, 3600],
            ),
            (
                mx_question("miek.nl.", false),
                with(ok, two_mx("miek.nl.", 1800), vec![], true),
                false,
                vec![],
            ),
            (
                mx_question("example.org.", false),
                with(ResponseCode::NXDomain, vec![], vec![soa.clone()], false),
                true,
                vec![],
            ),
            (
                mx_question("example.org.", false),
                with(ResponseCode::ServFail, vec![], vec![], false),
                false,
                vec![],
            ),
            (
                mx_question("example.org.", false),
                with(ResponseCode::NotImp, vec![], vec![], false),
                false,
                vec![],
            ),
        ];
        for (i, (question, reply, cached, ttls)) in cases.into_iter().enumerate() {
            let cache = Cache::new(3600, 100);
            assert_eq!(cache.insert_at(&question, &reply, t0), cached, "case {i}");
            let hit = cache.get_at(&question, t0);
            assert_eq!(hit.is_some(), cached, "case {i}");
            if let Some((answer, _)) = hit {
                assert_eq!(answer.rcode, reply.metadata.response_code, "case {i}");
                let got: Vec<u32> = answer.answers.iter().map(|r| r.ttl).collect();
                assert_eq!(got, ttls, "case {i}");
                let owners = answer.answers.iter().map(|r| r.name.to_string());
                assert!(
                    owners
                        .into_iter()
                        .all(|o| o == question.query.name().to_string()),
                    "case {i}: the owners as asked"
                );
            }
        }

        // The two DO cases: signatures of 2016 and 2017 read at CoreDNS's
        // test time (Fri Apr 21 10:51:21 BST 2017): the first expired.
        let coredns_now = 1_492_768_281;
        let expired = with(
            ok,
            [
                two_mx("miek.nl.", 3600),
                vec![rrsig("miek.nl.", 1800, 1_463_800_381, 1_461_208_381)],
            ]
            .concat(),
            vec![],
            false,
        );
        let valid = with(
            ok,
            [
                two_mx("example.org.", 3600),
                vec![rrsig("example.org.", 1800, 1_495_336_381, 1_492_744_381)],
            ]
            .concat(),
            vec![],
            false,
        );
        assert!(!signatures_valid_at(&expired, coredns_now));
        assert!(signatures_valid_at(&valid, coredns_now));
        // Before its inception a signature is not valid either.
        assert!(!signatures_valid_at(&valid, 1_492_744_380));

        // And the cache applies it for DO queries, at the real clock: a
        // signature that expired is not kept, one valid until 2100 is.
        let cache = Cache::new(3600, 100);
        let q = mx_question("miek.nl.", true);
        assert!(!cache.insert_at(&q, &expired, t0));
        let now = u32::try_from(unix_now()).unwrap();
        let fresh = with(
            ok,
            [
                two_mx("miek.nl.", 3600),
                vec![rrsig("miek.nl.", 1800, 4_102_444_800, now - 60)],
            ]
            .concat(),
            vec![],
            false,
        );
        assert!(cache.insert_at(&q, &fresh, t0));
        let (answer, _) = cache.get_at(&q, t0).unwrap();
        assert_eq!(answer.answers.len(), 3, "the RRSIG is kept with its set");
        // Without DO the signature's period is not looked at (as CoreDNS).
        assert!(cache.insert_at(&mx_question("miek.nl.", false), &expired, t0));

        // `cache TTL ZONES`: only names in the zones.
        let zoned = Cache::with_options(CacheOptions {
            zones: vec![Name::from_ascii("nl.").unwrap()],
            ..CacheOptions::with_ttl(3600, 100)
        });
        assert!(zoned.insert_at(&mx_question("miek.nl.", false), &fresh, t0));
        let org = with(ok, two_mx("example.org.", 3600), vec![], false);
        assert!(!zoned.insert_at(&mx_question("example.org.", false), &org, t0));

        // `disable success|denial ZONES`: that kind is not kept there.
        let no_success = Cache::with_options(CacheOptions {
            disable_success: vec![Name::from_ascii("nl.").unwrap()],
            ..CacheOptions::with_ttl(3600, 100)
        });
        assert!(!no_success.insert_at(&mx_question("miek.nl.", false), &fresh, t0));
        let denial = with(ResponseCode::NXDomain, vec![], vec![soa.clone()], false);
        assert!(no_success.insert_at(&mx_question("nope.nl.", false), &denial, t0));

        // TestCacheZeroTTL: a reply with TTL 0 is not kept.
        let zero = with(ok, two_mx("example.org.", 0), vec![], false);
        assert!(!cache.insert_at(&mx_question("example.org.", false), &zero, t0));
    }
}
