//! The cache for forwarded answers (CoreDNS `cache`): positive and negative
//! (RFC 2308: the SOA's TTL and MINIMUM bound a denial), TTLs capped, a size
//! bound, and TTLs that count down while an answer sits in the cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::Question;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    name: Name,
    qtype: RecordType,
    class: DNSClass,
    dnssec_ok: bool,
    checking_disabled: bool,
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

/// A reply as the cache keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedReply {
    pub rcode: ResponseCode,
    pub authentic_data: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
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
    reply: CachedReply,
}

pub struct Cache {
    max_ttl: u32,
    max_entries: usize,
    entries: Mutex<Entries>,
}

/// The entries and how many are positive, kept as they change so that reading
/// the counts costs nothing.
#[derive(Default)]
struct Entries {
    map: HashMap<Key, Entry>,
    success: usize,
}

impl Entries {
    fn remove(&mut self, key: &Key) {
        if let Some(entry) = self.map.remove(key)
            && entry.kind == EntryKind::Success
        {
            self.success -= 1;
        }
    }

    fn insert(&mut self, key: Key, entry: Entry) {
        self.remove(&key);
        if entry.kind == EntryKind::Success {
            self.success += 1;
        }
        self.map.insert(key, entry);
    }
}

/// How long a reply may be cached, and as what; `None` for replies not to cache.
fn lifetime(reply: &Message, max_ttl: u32) -> Option<(u32, EntryKind)> {
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
    let ttl = ttl_and_kind.0.min(max_ttl);
    (ttl > 0).then_some((ttl, ttl_and_kind.1))
}

impl Cache {
    pub fn new(max_ttl: u32, max_entries: usize) -> Self {
        Cache {
            max_ttl,
            max_entries: max_entries.max(1),
            entries: Mutex::new(Entries::default()),
        }
    }

    /// The longest TTL handed out; fresh answers are capped to it as well.
    pub fn max_ttl(&self) -> u32 {
        self.max_ttl
    }

    /// The cached reply with its TTLs counted down, if still alive.
    pub fn get(&self, question: &Question) -> Option<(CachedReply, EntryKind)> {
        self.get_at(question, Instant::now())
    }

    fn get_at(&self, question: &Question, now: Instant) -> Option<(CachedReply, EntryKind)> {
        let key = Key::of(question);
        let mut entries = self.entries.lock().ok()?;
        let entry = entries.map.get(&key)?;
        let age = now.saturating_duration_since(entry.stored).as_secs();
        let age = u32::try_from(age).unwrap_or(u32::MAX);
        if age >= entry.ttl {
            entries.remove(&key);
            return None;
        }
        let mut reply = entry.reply.clone();
        let kind = entry.kind;
        drop(entries);
        for record in reply
            .answers
            .iter_mut()
            .chain(reply.authorities.iter_mut())
            .chain(reply.additionals.iter_mut())
        {
            record.ttl = record.ttl.min(self.max_ttl).saturating_sub(age);
        }
        Some((reply, kind))
    }

    /// Keeps a reply from upstream if it may be cached.
    pub fn insert(&self, question: &Question, reply: &Message) -> bool {
        self.insert_at(question, reply, Instant::now())
    }

    fn insert_at(&self, question: &Question, reply: &Message, now: Instant) -> bool {
        let Some((ttl, kind)) = lifetime(reply, self.max_ttl) else {
            return false;
        };
        let cached = CachedReply {
            rcode: reply.metadata.response_code,
            authentic_data: reply.metadata.authentic_data,
            answers: reply.answers.clone(),
            authorities: reply.authorities.clone(),
            additionals: reply.additionals.clone(),
        };
        let Ok(mut entries) = self.entries.lock() else {
            return false;
        };
        if entries.map.len() >= self.max_entries {
            // Full: drop what has expired, then, if need be, an arbitrary tenth.
            let mut victims: Vec<Key> = entries
                .map
                .iter()
                .filter(|(_, e)| {
                    now.saturating_duration_since(e.stored) >= Duration::from_secs(u64::from(e.ttl))
                })
                .map(|(k, _)| k.clone())
                .collect();
            if entries.map.len() - victims.len() >= self.max_entries {
                let excess = (self.max_entries / 10).max(1);
                victims.extend(entries.map.keys().take(excess).cloned());
            }
            for key in &victims {
                entries.remove(key);
            }
        }
        entries.insert(
            Key::of(question),
            Entry {
                stored: now,
                ttl,
                kind,
                reply: cached,
            },
        );
        true
    }

    /// Entries of each kind, for the metrics.
    pub fn counts(&self) -> (usize, usize) {
        let Ok(entries) = self.entries.lock() else {
            return (0, 0);
        };
        (entries.success, entries.map.len() - entries.success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::{A, SOA};

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
        assert!(
            cache.get_at(&question("n499.example.com."), t0).is_some(),
            "the newest is kept"
        );
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
}
