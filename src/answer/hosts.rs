//! CoreDNS's `hosts` plugin: names answered from a hosts(5) file and inline
//! entries, before the cluster zones (CoreDNS runs `hosts` before `kubernetes`).
//! A, AAAA, and PTR from the addresses (unless `no_reverse`); a name listed
//! with no address of the asked type is NODATA; a name not listed falls through
//! to the cluster zones and the upstreams (`fallthrough`) or is SERVFAIL, as
//! CoreDNS answers it (it has no SOA to make an NXDOMAIN with).

use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::Answer;

/// CoreDNS's default TTL for hosts entries.
pub const DEFAULT_TTL: u32 = 3600;

/// The entries, by lower-case name and by address.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hosts {
    names: HashMap<Name, Vec<IpAddr>>,
    addresses: HashMap<IpAddr, Vec<Name>>,
    pub ttl: u32,
    pub fallthrough: bool,
    pub reverse: bool,
    /// The zones the entries answer in (CoreDNS's origins; empty: every name).
    pub zones: Vec<Name>,
    /// CoreDNS `fallthrough ZONES`: where unlisted names go on (empty: every name).
    pub fallthrough_zones: Vec<Name>,
}

/// What the hosts table says about a question.
#[derive(Debug)]
pub enum Lookup {
    /// Not listed (and `fallthrough`): the next source decides.
    Next,
    /// Answered here (records, NODATA, or SERVFAIL for a name not listed).
    Answer(Answer),
}

impl Hosts {
    /// The table from hosts(5) text (the file's, then the inline lines):
    /// `ADDRESS NAME [ALIASES...]`, `#` comments; lines that do not parse are
    /// skipped, as CoreDNS skips them.
    pub fn parse(texts: &[&str], ttl: u32, fallthrough: bool, reverse: bool) -> Hosts {
        let mut hosts = Hosts {
            ttl,
            fallthrough,
            reverse,
            ..Hosts::default()
        };
        for line in texts.iter().flat_map(|t| t.lines()) {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_whitespace();
            let Some(address) = fields.next() else {
                continue;
            };
            // A zone index (fe80::1%eth0) is dropped, as Go's parser drops it.
            let address = address.split('%').next().unwrap_or(address);
            let Ok(ip) = address.parse::<IpAddr>() else {
                continue;
            };
            for name in fields {
                let Ok(mut name) = Name::from_ascii(name) else {
                    continue;
                };
                name.set_fqdn(true);
                let name = name.to_lowercase();
                let ips = hosts.names.entry(name.clone()).or_default();
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
                let names = hosts.addresses.entry(ip).or_default();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        hosts
    }

    /// Whether `name` is in the zones the entries answer in.
    pub fn covers(&self, name: &Name) -> bool {
        self.zones.is_empty() || self.zones.iter().any(|zone| zone.zone_of(name))
    }

    /// Whether every unlisted name in `zone` goes on (`fallthrough`, of that zone).
    pub fn passes_on_all_of(&self, zone: &Name) -> bool {
        let zones = &self.fallthrough_zones;
        self.fallthrough && (zones.is_empty() || zones.iter().any(|z| z.zone_of(zone)))
    }

    /// Every name listed.
    pub fn names(&self) -> impl Iterator<Item = &Name> {
        self.names.keys()
    }

    /// The answer for `qname` (as asked; owners keep its case) and `qtype`.
    pub fn lookup(&self, qname: &Name, qtype: RecordType) -> Lookup {
        if qtype == RecordType::PTR {
            // CoreDNS: PTR zones need not be among the origins.
            return self.reverse_lookup(qname);
        }
        if !self.covers(qname) {
            // Outside the zones the next plugin answers, whatever `fallthrough` says.
            return Lookup::Next;
        }
        let listed = self.names.get(&qname.to_lowercase());
        let Some(ips) = listed else {
            let zones = &self.fallthrough_zones;
            if self.fallthrough && (zones.is_empty() || zones.iter().any(|z| z.zone_of(qname))) {
                return Lookup::Next;
            }
            return Lookup::Answer(Answer::code(ResponseCode::ServFail));
        };
        let answers = ips
            .iter()
            .filter_map(|ip| match (ip, qtype) {
                (IpAddr::V4(v4), RecordType::A) => Some(RData::A(A(*v4))),
                (IpAddr::V6(v6), RecordType::AAAA) => Some(RData::AAAA(AAAA(*v6))),
                _ => None,
            })
            .map(|data| Record::from_rdata(qname.clone(), self.ttl, data))
            .collect();
        Lookup::Answer(Answer {
            rcode: ResponseCode::NoError,
            authoritative: true,
            answers,
            ..Answer::default()
        })
    }

    /// PTR for an address listed (and `reverse`); anything else is not ours.
    fn reverse_lookup(&self, qname: &Name) -> Lookup {
        let names = self
            .reverse
            .then(|| reverse_address(qname))
            .flatten()
            .and_then(|ip| self.addresses.get(&ip));
        let Some(names) = names else {
            return Lookup::Next;
        };
        let answers = names
            .iter()
            .map(|name| Record::from_rdata(qname.clone(), self.ttl, RData::PTR(PTR(name.clone()))))
            .collect();
        Lookup::Answer(Answer {
            rcode: ResponseCode::NoError,
            authoritative: true,
            answers,
            ..Answer::default()
        })
    }
}

/// The address a reverse name stands for (`4.3.2.1.in-addr.arpa.`, or 32
/// nibbles under `ip6.arpa.`).
fn reverse_address(name: &Name) -> Option<IpAddr> {
    let labels: Vec<String> = name
        .iter()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect();
    match labels.as_slice() {
        [d, c, b, a, in_addr, arpa] if in_addr == "in-addr" && arpa == "arpa" => {
            format!("{a}.{b}.{c}.{d}").parse().ok()
        }
        [nibbles @ .., ip6, arpa] if ip6 == "ip6" && arpa == "arpa" && nibbles.len() == 32 => {
            let mut value: u128 = 0;
            for nibble in nibbles.iter().rev() {
                let digit = u128::from_str_radix(nibble, 16)
                    .ok()
                    .filter(|_| nibble.len() == 1)?;
                value = value << 4 | digit;
            }
            Some(IpAddr::V6(value.into()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# k3s NodeHosts\n10.0.0.5 server-1\n10.0.0.6 agent-1 agent-1.lan # two names\nfd00::6 agent-1\nnot-an-ip foo\n127.0.0.1\n";

    fn answer(hosts: &Hosts, name: &str, qtype: RecordType) -> Option<(ResponseCode, Vec<String>)> {
        match hosts.lookup(&Name::from_ascii(name).unwrap(), qtype) {
            Lookup::Next => None,
            Lookup::Answer(a) => Some((
                a.rcode,
                a.answers.iter().map(|r| r.data.to_string()).collect(),
            )),
        }
    }

    /// Behaviour of plugin/hosts/hosts.go's ServeDNS (and the cases of
    /// plugin/hosts/hosts_test.go): A/AAAA/PTR from the entries, NODATA for a
    /// listed name without that type, fallthrough or SERVFAIL otherwise.
    #[test]
    fn answers_as_corednss_hosts_plugin() {
        let hosts = Hosts::parse(&[FILE, "10.0.0.7 inline.example"], 60, true, true);
        let ok = ResponseCode::NoError;
        assert_eq!(
            answer(&hosts, "server-1.", RecordType::A),
            Some((ok, vec!["10.0.0.5".into()]))
        );
        assert_eq!(
            answer(&hosts, "Agent-1.", RecordType::AAAA),
            Some((ok, vec!["fd00::6".into()]))
        );
        assert_eq!(
            answer(&hosts, "agent-1.lan.", RecordType::A),
            Some((ok, vec!["10.0.0.6".into()]))
        );
        assert_eq!(
            answer(&hosts, "inline.example.", RecordType::A),
            Some((ok, vec!["10.0.0.7".into()]))
        );
        assert_eq!(
            answer(&hosts, "server-1.", RecordType::AAAA),
            Some((ok, vec![])),
            "NODATA"
        );
        assert_eq!(
            answer(&hosts, "server-1.", RecordType::MX),
            Some((ok, vec![])),
            "NODATA"
        );
        assert_eq!(
            answer(&hosts, "foo.", RecordType::A),
            None,
            "a bad line is skipped"
        );
        assert_eq!(
            answer(&hosts, "elsewhere.example.", RecordType::A),
            None,
            "fallthrough"
        );
        assert_eq!(
            answer(&hosts, "6.0.0.10.in-addr.arpa.", RecordType::PTR),
            Some((ok, vec!["agent-1.".into(), "agent-1.lan.".into()]))
        );
        assert_eq!(
            answer(
                &hosts,
                "6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
                RecordType::PTR
            ),
            Some((ok, vec!["agent-1.".into()]))
        );
        assert_eq!(
            answer(&hosts, "9.0.0.10.in-addr.arpa.", RecordType::PTR),
            None
        );
        let strict = Hosts::parse(&[FILE], 60, false, false);
        assert_eq!(
            answer(&strict, "elsewhere.example.", RecordType::A),
            Some((ResponseCode::ServFail, vec![])),
            "no fallthrough: SERVFAIL"
        );
        assert_eq!(
            answer(&strict, "5.0.0.10.in-addr.arpa.", RecordType::PTR),
            None,
            "no_reverse"
        );
        match strict.lookup(&Name::from_ascii("SERVER-1.").unwrap(), RecordType::A) {
            Lookup::Answer(a) => {
                assert_eq!(
                    a.answers[0].name.to_ascii(),
                    "SERVER-1.",
                    "the question's case"
                );
                assert_eq!(a.answers[0].ttl, 60);
                assert!(a.authoritative);
            }
            Lookup::Next => panic!("listed"),
        }
    }

    /// plugin/hosts/hosts.go with origins: a name outside the zones goes on
    /// whatever `fallthrough` says; inside them an unlisted name is SERVFAIL
    /// without `fallthrough`; PTR needs no origin.
    #[test]
    fn zones_limit_what_the_entries_answer() {
        let mut hosts = Hosts::parse(
            &["10.0.0.9 db.lan", "10.0.0.8 other.example"],
            60,
            false,
            true,
        );
        hosts.zones = vec![Name::from_ascii("lan.").unwrap()];
        let ok = ResponseCode::NoError;
        assert_eq!(
            answer(&hosts, "DB.lan.", RecordType::A),
            Some((ok, vec!["10.0.0.9".into()]))
        );
        assert_eq!(
            answer(&hosts, "nope.lan.", RecordType::A),
            Some((ResponseCode::ServFail, vec![]))
        );
        assert_eq!(answer(&hosts, "other.example.", RecordType::A), None);
        assert_eq!(answer(&hosts, "www.example.org.", RecordType::A), None);
        assert_eq!(
            answer(&hosts, "8.0.0.10.in-addr.arpa.", RecordType::PTR),
            Some((ok, vec!["other.example.".into()]))
        );
        // `fallthrough lan`: unlisted names there go on, others are SERVFAIL.
        hosts.zones.clear();
        hosts.fallthrough = true;
        hosts.fallthrough_zones = vec![Name::from_ascii("lan.").unwrap()];
        assert_eq!(answer(&hosts, "nope.lan.", RecordType::A), None);
        assert_eq!(
            answer(&hosts, "nope.example.", RecordType::A),
            Some((ResponseCode::ServFail, vec![]))
        );
    }
}
