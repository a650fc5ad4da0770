//! Answering one question from a [`Snapshot`]: pure, no I/O.
//!
//! Names are matched label by label against the Kubernetes DNS schema
//! (`[_port._proto.][endpoint.]<svc>.<ns>.svc.<zone>`, `<ip>.<ns>.pod.<zone>`,
//! reverse names), case-insensitively. Owner names keep the question's spelling.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use hickory_proto::op::{Message, Metadata, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

pub mod external;
pub mod hosts;
pub mod rewrite;
pub mod template;

use crate::cluster::ServiceKind;
use crate::index::names::{parse_dashed_ip, parse_reverse_v4, parse_reverse_v6};
use crate::index::{ServiceRecords, Snapshot};

/// The schema version this server implements (`dns-version.<zone>` TXT).
pub const SCHEMA_VERSION: &str = "1.1.0";
/// TTL of the `dns-version` record, as in the specification's example and CoreDNS.
pub const SCHEMA_VERSION_TTL: u32 = 28800;
/// Longest CNAME chain followed inside our zones.
const MAX_CNAME_CHAIN: usize = 8;

/// How `<a-b-c-d>.<ns>.pod.<zone>` names are answered.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum PodsMode {
    /// The whole `pod` subtree is NXDOMAIN.
    Disabled,
    /// Any well-formed address in an existing namespace answers (kubeadm's choice).
    #[default]
    Insecure,
    /// Only addresses of pods that exist in that namespace answer.
    Verified,
}

impl std::fmt::Display for PodsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PodsMode::Disabled => "disabled",
            PodsMode::Insecure => "insecure",
            PodsMode::Verified => "verified",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ZoneKind {
    Cluster,
    ReverseV4,
    ReverseV6,
}

/// The largest UDP reply by default: DNS Flag Day 2020's 1232 bytes (CoreDNS
/// `bufsize`'s default).
pub const DEFAULT_BUFSIZE: u16 = 1232;
/// CoreDNS `any`'s TTL (the RFC's number).
const ANY_TTL: u32 = 8482;

/// The static part of what the answers depend on.
#[derive(Clone, Debug)]
pub struct ZoneConfig {
    /// Served zones, longest first: the cluster zones, then `in-addr.arpa.` and `ip6.arpa.`.
    zones: Vec<(Name, ZoneKind)>,
    /// Per entry of `zones`: the SOA's MNAME (our server's name) and RNAME.
    soa_names: Vec<(Name, Name)>,
    /// Per entry of `zones`: its labels, lower case, for matching raw question labels.
    zone_labels: Vec<Vec<Box<[u8]>>>,
    /// The first cluster zone: PTR targets live there.
    primary: Name,
    pub ttl: u32,
    pub pods: PodsMode,
    pub ignore_empty_service: bool,
    /// CoreDNS `kubernetes { fallthrough ZONES }`: a cluster name under one of
    /// these that does not exist goes to the upstreams (the root: every name).
    pub fallthrough: Vec<Name>,
    /// Addresses `ns.dns.<zone>` answers with.
    pub ns_ips: Vec<IpAddr>,
    /// CoreDNS `template TYPE { rcode RCODE }`: types answered with an rcode
    /// and no records, before anything else.
    pub type_rcodes: Vec<(RecordType, ResponseCode)>,
    /// CoreDNS `hosts`, asked before the zones.
    hosts: Option<std::sync::Arc<hosts::Hosts>>,
    /// CoreDNS `rewrite name` rules, applied to the question before anything.
    pub rewrites: std::sync::Arc<rewrite::Rewrites>,
    /// CoreDNS `template`s (beyond the rcode-only ones), asked before `hosts`.
    pub templates: std::sync::Arc<template::Templates>,
    /// CoreDNS `log` rules: which answered queries are written out.
    pub query_log: std::sync::Arc<crate::querylog::QueryLog>,
    /// CoreDNS `k8s_external`: zones for the Services' external addresses.
    pub external: std::sync::Arc<external::ExternalZones>,
    /// CoreDNS `any`: ANY queries get RFC 8482's HINFO.
    pub any: bool,
    /// CoreDNS `whoami`: what `forward` leaves (its `except` zones) is answered
    /// with the client's address and port.
    pub whoami: bool,
    /// CoreDNS `minimal`: positive answers go without authority and additional records.
    pub minimal: bool,
    /// CoreDNS `bufsize`: the largest UDP reply, whatever the client offers.
    pub bufsize: u16,
    /// Whether `hosts` may answer a name of a cluster zone (it lists one, or
    /// answers every name it does not list): then the UDP fast path's direct
    /// writer, which knows only the index, stands aside.
    hosts_shadow_zones: bool,
    /// Server blocks for other zones, longest zone first: a name in one is
    /// answered by that block's configuration alone (CoreDNS picks the block
    /// before any plugin runs).
    pub blocks: Vec<(Name, std::sync::Arc<ZoneConfig>)>,
    /// In a block's configuration, its zone: the name that picks its upstreams
    /// whatever its rules made of the question.
    pub route: Option<Name>,
}

impl ZoneConfig {
    /// `cluster_zones` must be non-empty, lower-case, fully qualified names.
    pub fn new(cluster_zones: &[Name], ttl: u32, pods: PodsMode) -> Self {
        let mut zones: Vec<(Name, ZoneKind)> = cluster_zones
            .iter()
            .map(|z| (z.to_lowercase(), ZoneKind::Cluster))
            .collect();
        for (text, kind) in [
            ("in-addr.arpa.", ZoneKind::ReverseV4),
            ("ip6.arpa.", ZoneKind::ReverseV6),
        ] {
            if let Ok(name) = Name::from_ascii(text) {
                zones.push((name, kind));
            }
        }
        let primary = zones.first().map(|(z, _)| z.clone()).unwrap_or_default();
        zones.sort_by_key(|(z, _)| std::cmp::Reverse(label_count(z)));
        // Built once: every negative answer carries them.
        let soa_names = zones
            .iter()
            .map(|(zone, kind)| {
                // Nothing under *.arpa resolves our name: the reverse zones use the primary's.
                let home = if *kind == ZoneKind::Cluster {
                    zone
                } else {
                    &primary
                };
                let under = |label: &str, domain: &Name| {
                    Name::from_ascii(label)
                        .ok()
                        .and_then(|n| n.append_domain(domain).ok())
                        .unwrap_or_else(|| domain.clone())
                };
                (under("ns.dns", home), under("hostmaster", zone))
            })
            .collect();
        let zone_labels = zones
            .iter()
            .map(|(zone, _)| zone.iter().map(|l| l.to_ascii_lowercase().into()).collect())
            .collect();
        ZoneConfig {
            zones,
            soa_names,
            zone_labels,
            primary,
            ttl,
            pods,
            type_rcodes: Vec::new(),
            hosts: None,
            rewrites: std::sync::Arc::default(),
            templates: std::sync::Arc::default(),
            query_log: std::sync::Arc::default(),
            external: std::sync::Arc::default(),
            any: false,
            whoami: false,
            minimal: false,
            bufsize: DEFAULT_BUFSIZE,
            hosts_shadow_zones: false,
            ignore_empty_service: false,
            fallthrough: Vec::new(),
            ns_ips: Vec::new(),
            blocks: Vec::new(),
            route: None,
        }
    }

    /// A server block's configuration for `zone`: no zone of its own to
    /// answer from, only its plugins and its upstreams.
    pub fn for_block(zone: Name) -> Self {
        let mut config = ZoneConfig::new(&[], DEFAULT_BLOCK_TTL, PodsMode::Disabled);
        config.zones.clear();
        config.soa_names.clear();
        config.zone_labels.clear();
        config.route = Some(zone);
        config
    }

    /// The configuration that answers `qname`: its block's (longest zone), else this one.
    pub fn block_for(&self, qname: &Name) -> &ZoneConfig {
        self.find_block(qname).map_or(self, |block| block)
    }

    /// [`Self::block_for`], shared.
    pub fn block_of(root: &std::sync::Arc<ZoneConfig>, qname: &Name) -> std::sync::Arc<ZoneConfig> {
        root.find_block(qname).unwrap_or(root).clone()
    }

    fn find_block(&self, qname: &Name) -> Option<&std::sync::Arc<ZoneConfig>> {
        if self.blocks.is_empty() {
            return None;
        }
        self.blocks
            .iter()
            .find(|(zone, _)| zone.zone_of(qname))
            .map(|(_, block)| block)
    }

    /// Every served zone, cluster zones first.
    pub fn zone_names(&self) -> impl Iterator<Item = &Name> {
        let cluster = self.zones.iter().filter(|(_, k)| *k == ZoneKind::Cluster);
        let reverse = self.zones.iter().filter(|(_, k)| *k != ZoneKind::Cluster);
        cluster.chain(reverse).map(|(z, _)| z)
    }

    pub fn cluster_zones(&self) -> impl Iterator<Item = &Name> {
        self.zones
            .iter()
            .filter(|(_, k)| *k == ZoneKind::Cluster)
            .map(|(z, _)| z)
    }

    fn find_zone(&self, qname: &Name) -> Option<(&Name, ZoneKind)> {
        self.find_zone_index(qname)
            .map(|i| (&self.zones[i].0, self.zones[i].1))
    }

    fn find_zone_index(&self, qname: &Name) -> Option<usize> {
        self.zones.iter().position(|(zone, _)| zone.zone_of(qname))
    }

    /// The zone at a position [`direct`] reports.
    pub fn zone_at(&self, index: usize) -> Option<&Name> {
        self.zones.get(index).map(|(zone, _)| zone)
    }

    /// [`Self::find_zone_index`] for a name given as its labels.
    fn find_zone_index_of_labels(&self, labels: &[&[u8]]) -> Option<usize> {
        self.zone_labels.iter().position(|zone| {
            labels.len() >= zone.len()
                && labels[labels.len() - zone.len()..]
                    .iter()
                    .zip(zone)
                    .all(|(label, zone_label)| label.eq_ignore_ascii_case(zone_label))
        })
    }

    /// The served zone a name falls in.
    pub fn zone_of(&self, qname: &Name) -> Option<&Name> {
        self.find_zone(qname).map(|(zone, _)| zone)
    }

    /// Whether a missing cluster name goes to the upstreams (`fallthrough`).
    pub fn falls_through(&self, name: &Name) -> bool {
        self.fallthrough.iter().any(|zone| zone.zone_of(name))
    }

    /// Whether a name falls in one of the served zones.
    pub fn is_authoritative_for(&self, qname: &Name) -> bool {
        self.find_zone(qname).is_some()
    }
}

/// CoreDNS `loadbalance`'s order of a section: CNAMEs, other records, A/AAAA,
/// then MX, each group in the order given (plugin/loadbalance `roundRobin`).
pub fn loadbalance_order(records: &mut [Record]) {
    // A stable sort: each group keeps its order.
    records.sort_by_key(|record| match record.record_type() {
        RecordType::CNAME => 0,
        RecordType::A | RecordType::AAAA => 2,
        RecordType::MX => 3,
        _ => 1,
    });
}

/// A block answers no zone of its own, so its TTL is never used.
const DEFAULT_BLOCK_TTL: u32 = 5;

/// A complete answer, whoever made it (our zones, `hosts`, a `template` rcode,
/// an upstream or the cache): the header's code and flags plus the three
/// record sections. Both transports encode this one type.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answer {
    pub rcode: ResponseCode,
    /// Set for every answer from our zones; unset for REFUSED and forwarded ones.
    pub authoritative: bool,
    /// Set when an upstream was asked (a forwarded name, a chased ExternalName).
    pub recursion_available: bool,
    /// The upstream's AD bit; passed on only to clients that asked for it.
    pub authentic_data: bool,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additionals: Vec<Record>,
    /// A name we have nothing for that the upstreams may know: a reverse name
    /// no cluster object owns (kubeadm's `fallthrough in-addr.arpa ip6.arpa`),
    /// or a missing cluster name under a `fallthrough` zone.
    pub fallthrough: bool,
}

impl Answer {
    /// An answer that is only a code (REFUSED, SERVFAIL, FORMERR...), not authoritative.
    pub fn code(rcode: ResponseCode) -> Self {
        Answer {
            rcode,
            ..Answer::default()
        }
    }

    fn refused() -> Self {
        Answer::code(ResponseCode::Refused)
    }

    /// The sections to send: with CoreDNS's `minimal`, a positive answer
    /// (NOERROR with records) goes without its authority and additional ones.
    pub fn sections(&self, minimal: bool) -> [&[Record]; 3] {
        if minimal && self.rcode == ResponseCode::NoError && !self.answers.is_empty() {
            return [&self.answers, &[], &[]];
        }
        [&self.answers, &self.authority, &self.additionals]
    }

    /// CoreDNS `any`'s answer to an ANY query (RFC 8482 section 4.2).
    pub fn any_hinfo(qname: &Name) -> Self {
        let hinfo =
            hickory_proto::rr::rdata::HINFO::new("ANY obsoleted".into(), "See RFC 8482".into());
        Answer {
            answers: vec![Record::from_rdata(
                qname.clone(),
                ANY_TTL,
                RData::HINFO(hinfo),
            )],
            ..Answer::code(ResponseCode::NoError)
        }
    }

    /// CoreDNS `whoami`'s answer: the client's address and, as an SRV record
    /// under `_udp.`/`_tcp.`, its port, in the additional section.
    pub fn whoami(qname: &Name, client: std::net::SocketAddr, tcp: bool) -> Self {
        let address = match client.ip() {
            IpAddr::V4(v4) => RData::A(v4.into()),
            IpAddr::V6(v6) => RData::AAAA(v6.into()),
        };
        let proto = Name::from_ascii(if tcp { "_tcp" } else { "_udp" })
            .ok()
            .and_then(|label| label.append_domain(qname).ok())
            .unwrap_or_else(|| qname.clone());
        let srv = hickory_proto::rr::rdata::SRV::new(0, 0, client.port(), Name::root());
        Answer {
            authoritative: true,
            additionals: vec![
                Record::from_rdata(qname.clone(), 0, address),
                Record::from_rdata(proto, 0, RData::SRV(srv)),
            ],
            ..Answer::code(ResponseCode::NoError)
        }
    }

    /// What of an upstream's reply is passed on (its sections already filtered).
    pub fn from_upstream(message: Message) -> Self {
        Answer {
            rcode: message.metadata.response_code,
            recursion_available: true,
            authentic_data: message.metadata.authentic_data,
            answers: message.answers,
            authority: message.authorities,
            additionals: message.additionals,
            ..Answer::default()
        }
    }

    /// The response header: `request` (the query's ID and echoed flags) with
    /// this answer's code and flags. AD only for a client that set AD or DO
    /// (RFC 6840 5.8).
    pub fn header(&self, request: Metadata, client_ad: bool, dnssec_ok: bool) -> Metadata {
        let mut metadata = request;
        metadata.response_code = self.rcode;
        metadata.authoritative = self.authoritative;
        metadata.recursion_available = self.recursion_available;
        metadata.authentic_data = self.authentic_data && (client_ad || dnssec_ok);
        metadata
    }

    /// Every record of the three sections.
    pub fn records_mut(&mut self) -> impl Iterator<Item = &mut Record> {
        self.answers
            .iter_mut()
            .chain(self.authority.iter_mut())
            .chain(self.additionals.iter_mut())
    }
}

/// What one name resolves to, before the negative-answer decoration.
enum Found {
    /// The name does not exist.
    NxDomain,
    /// The name exists; these records (possibly none) are of the asked type.
    Records {
        answers: Vec<Record>,
        additionals: Vec<Record>,
    },
    /// An ExternalName alias: answer the CNAME and follow it.
    Alias(Box<Record>, Name),
    ServFail,
}

impl Found {
    fn nodata() -> Self {
        Found::Records {
            answers: Vec::new(),
            additionals: Vec::new(),
        }
    }

    fn records(answers: Vec<Record>) -> Self {
        Found::Records {
            answers,
            additionals: Vec::new(),
        }
    }
}

/// Answers `qname`/`qtype` from the snapshot.
pub fn answer(config: &ZoneConfig, snapshot: &Snapshot, qname: &Name, qtype: RecordType) -> Answer {
    let mut answer = Answer::default();
    let mut name = qname.clone();
    for _ in 0..MAX_CNAME_CHAIN {
        let Some(zone_index) = config.find_zone_index(&name) else {
            if answer.answers.is_empty() {
                return Answer::refused();
            }
            // A CNAME out of our zones: the client's resolver follows it.
            return answer;
        };
        answer.authoritative = true;
        let (zone, kind) = (&config.zones[zone_index].0, config.zones[zone_index].1);
        let lookup = Lookup {
            config,
            snapshot,
            soa_names: &config.soa_names[zone_index],
            qname: &name,
            zone,
            qtype,
        };
        match lookup.find(kind) {
            Found::Alias(cname, target) => {
                answer.answers.push(*cname);
                if qtype == RecordType::CNAME {
                    return answer;
                }
                name = target;
            }
            Found::Records {
                mut answers,
                mut additionals,
            } => {
                if qtype == RecordType::ANY {
                    minimal_any(&mut answers, &mut additionals);
                }
                if answers.is_empty() {
                    answer.authority.push(lookup.soa());
                }
                answer.answers.extend(answers);
                answer.additionals.extend(additionals);
                return answer;
            }
            Found::NxDomain => {
                // CoreDNS: fallthrough first, then "SERVFAIL until synced".
                let fallthrough = answer.answers.is_empty()
                    && (kind != ZoneKind::Cluster || config.falls_through(&name));
                if !snapshot.synced {
                    // Not every object is known yet: a denial could be cached
                    // downstream. SERVFAIL, with AA and the SOA as CoreDNS's
                    // plugin.BackendError writes it.
                    return Answer {
                        fallthrough,
                        authoritative: true,
                        authority: vec![lookup.soa()],
                        ..Answer::code(ResponseCode::ServFail)
                    };
                }
                answer.rcode = ResponseCode::NXDomain;
                answer.authority.push(lookup.soa());
                answer.fallthrough = fallthrough;
                return answer;
            }
            Found::ServFail => {
                return Answer::code(ResponseCode::ServFail);
            }
        }
    }
    tracing::debug!(%qname, "CNAME chain too long");
    Answer::code(ResponseCode::ServFail)
}

/// A positive A or AAAA answer found straight from the question's labels: the
/// common case (`<svc>.<ns>.svc.<zone>`, `<endpoint>.<svc>.<ns>.svc.<zone>`),
/// answered without building names or records. Every record is owned by the
/// question's name, with the zone's TTL.
pub struct DirectAnswer<'s> {
    /// Position of the zone (see [`ZoneConfig::zone_at`]).
    pub zone: usize,
    /// How many addresses [`Self::addresses`] gives (at least one).
    pub count: usize,
    qtype: RecordType,
    service: &'s ServiceRecords,
    /// The endpoint label, when the name has one.
    endpoint: Option<&'s [u8]>,
}

impl<'s> DirectAnswer<'s> {
    /// The addresses, in the order [`answer`] gives them.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let (service_ips, endpoint) = match self.endpoint {
            None => (&self.service.addresses[..], None),
            Some(label) => (&[][..], Some(label)),
        };
        let endpoint_ips = endpoint
            .into_iter()
            .flat_map(|label| self.service.endpoints_named(label).map(|e| e.ip));
        service_ips
            .iter()
            .copied()
            .chain(endpoint_ips)
            .filter(|ip| is_address_type(self.qtype, ip))
    }
}

/// What [`answer`] says for `labels`/`qtype` when that is a non-empty A or AAAA
/// answer at a service or endpoint name; `None` for everything else (the caller
/// then asks [`answer`]). The two agree byte for byte (tested in `server::udp`).
pub fn direct<'s, 'q: 's>(
    config: &ZoneConfig,
    snapshot: &'s Snapshot,
    labels: &[&'q [u8]],
    qtype: RecordType,
) -> Option<DirectAnswer<'s>> {
    if !matches!(qtype, RecordType::A | RecordType::AAAA) {
        return None;
    }
    let zone = config.find_zone_index_of_labels(labels)?;
    if config.zones.get(zone)?.1 != ZoneKind::Cluster {
        return None;
    }
    let relative = &labels[..labels.len() - config.zone_labels[zone].len()];
    let (endpoint, svc, ns) = match relative {
        [svc, ns, last] if label_is(last, "svc") => (None, svc, ns),
        [endpoint, svc, ns, last] if label_is(last, "svc") && !endpoint.starts_with(b"_") => {
            (Some(*endpoint), svc, ns)
        }
        _ => return None,
    };
    let mut buffer = [0u8; 128];
    let service = snapshot.service(lower_key(&mut buffer, &[svc, ns])?)?;
    let empty = service.endpoints.is_empty();
    let shown = match service.kind {
        ServiceKind::ClusterIp(_) => !(empty && config.ignore_empty_service),
        ServiceKind::Headless => !empty,
        ServiceKind::ExternalName(_) => false,
    };
    if !shown {
        return None;
    }
    let mut direct = DirectAnswer {
        zone,
        count: 0,
        qtype,
        service,
        endpoint,
    };
    direct.count = direct.addresses().count();
    (direct.count > 0).then_some(direct)
}

/// Labels in a name, a leading `*` included (`Name::num_labels` leaves it out).
fn label_count(name: &Name) -> usize {
    name.iter().len()
}

/// The labels of `name` in front of `zone`, left to right, lower-cased on compare.
fn relative_labels<'n>(name: &'n Name, zone: &Name) -> Vec<&'n [u8]> {
    let count = label_count(name).saturating_sub(label_count(zone));
    name.iter().take(count).collect()
}

fn label_is(label: &[u8], text: &str) -> bool {
    label.eq_ignore_ascii_case(text.as_bytes())
}

fn lower_str(label: &[u8]) -> Option<String> {
    std::str::from_utf8(label)
        .ok()
        .map(|s| s.to_ascii_lowercase())
}

/// `<svc>.<ns>.svc`, the part of a service's names in front of the zone.
fn service_base(service: &ServiceRecords) -> String {
    format!("{}.{}.svc", service.name, service.namespace)
}

/// `labels` joined by dots and lower-cased in `buffer`, without allocating.
fn lower_key<'b>(buffer: &'b mut [u8; 128], labels: &[&[u8]]) -> Option<&'b str> {
    let mut at = 0;
    for (i, label) in labels.iter().enumerate() {
        if i > 0 {
            *buffer.get_mut(at)? = b'.';
            at += 1;
        }
        let end = at.checked_add(label.len())?;
        buffer.get_mut(at..end)?.copy_from_slice(label);
        buffer[at..end].make_ascii_lowercase();
        at = end;
    }
    std::str::from_utf8(&buffer[..at]).ok()
}

/// RFC 8482: ANY gets one RRset (the first that exists), not everything, so the
/// question cannot be used to amplify; the additional records go with the rest.
fn minimal_any(answers: &mut Vec<Record>, additionals: &mut Vec<Record>) {
    let Some(first) = answers.first().map(Record::record_type) else {
        return;
    };
    let before = answers.len();
    answers.retain(|record| record.record_type() == first);
    if answers.len() != before {
        additionals.clear();
    }
}

fn is_address_type(qtype: RecordType, ip: &IpAddr) -> bool {
    match qtype {
        RecordType::A => ip.is_ipv4(),
        RecordType::AAAA => ip.is_ipv6(),
        RecordType::ANY => true,
        _ => false,
    }
}

fn address_rdata(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

struct Lookup<'a> {
    config: &'a ZoneConfig,
    snapshot: &'a Snapshot,
    qname: &'a Name,
    zone: &'a Name,
    soa_names: &'a (Name, Name),
    qtype: RecordType,
}

impl Lookup<'_> {
    fn record(&self, rdata: RData) -> Record {
        Record::from_rdata(self.qname.clone(), self.config.ttl, rdata)
    }

    /// A name under the matched zone, e.g. `web-0.nginx.default.svc` + zone.
    fn zone_name(&self, relative: &str) -> Option<Name> {
        Name::from_ascii(relative)
            .ok()?
            .append_domain(self.zone)
            .ok()
    }

    /// Our name server's name: `ns.dns.<zone>` in a cluster zone; the reverse
    /// zones use the primary zone's, since nothing under `*.arpa` resolves it.
    fn ns_name(&self) -> Option<Name> {
        Some(self.soa_names.0.clone())
    }

    /// The zone's SOA, its owner spelled as in the question.
    fn soa(&self) -> Record {
        let owner = self.qname.trim_to(label_count(self.zone));
        let (mname, rname) = self.soa_names.clone();
        let ttl = self.config.ttl;
        let soa = SOA::new(mname, rname, self.snapshot.serial, 7200, 1800, 86400, ttl);
        Record::from_rdata(owner, ttl.min(300), RData::SOA(soa))
    }

    fn find(&self, kind: ZoneKind) -> Found {
        let labels = relative_labels(self.qname, self.zone);
        match kind {
            ZoneKind::Cluster => self.find_cluster(&labels),
            ZoneKind::ReverseV4 => self.find_reverse(&labels, parse_reverse_v4(&labels)),
            ZoneKind::ReverseV6 => self.find_reverse(&labels, parse_reverse_v6(&labels)),
        }
    }

    fn apex(&self) -> Found {
        match self.qtype {
            RecordType::SOA => Found::records(vec![self.soa()]),
            RecordType::NS | RecordType::ANY => {
                let Some(ns) = self.ns_name() else {
                    return Found::ServFail;
                };
                let mut answers = vec![self.record(RData::NS(NS(ns.clone())))];
                if self.qtype == RecordType::ANY {
                    answers.insert(0, self.soa());
                }
                let additionals = self
                    .config
                    .ns_ips
                    .iter()
                    .map(|ip| Record::from_rdata(ns.clone(), self.config.ttl, address_rdata(*ip)))
                    .collect();
                Found::Records {
                    answers,
                    additionals,
                }
            }
            _ => Found::nodata(),
        }
    }

    fn find_cluster(&self, labels: &[&[u8]]) -> Found {
        let Some((last, rest)) = labels.split_last() else {
            return self.apex();
        };
        if label_is(last, "svc") {
            self.find_service(rest)
        } else if label_is(last, "pod") {
            self.find_pod(rest)
        } else if label_is(last, "dns-version") && rest.is_empty() {
            match self.qtype {
                RecordType::TXT | RecordType::ANY => Found::records(vec![Record::from_rdata(
                    self.qname.clone(),
                    SCHEMA_VERSION_TTL,
                    RData::TXT(TXT::new(vec![SCHEMA_VERSION.to_string()])),
                )]),
                _ => Found::nodata(),
            }
        } else if label_is(last, "dns") {
            match rest {
                [] => Found::nodata(),
                [ns] if label_is(ns, "ns") => Found::records(
                    self.config
                        .ns_ips
                        .iter()
                        .filter(|ip| is_address_type(self.qtype, ip))
                        .map(|ip| self.record(address_rdata(*ip)))
                        .collect(),
                ),
                _ => Found::NxDomain,
            }
        } else {
            Found::NxDomain
        }
    }

    fn find_service(&self, labels: &[&[u8]]) -> Found {
        // labels: [prefix...] <svc> <ns>
        let Some((ns, rest)) = labels.split_last() else {
            return Found::nodata(); // svc.<zone>
        };
        let mut buffer = [0u8; 128];
        let Some(namespace) = lower_key(&mut buffer, &[ns]) else {
            return Found::NxDomain;
        };
        if !self.snapshot.namespace_exists(namespace) {
            return Found::NxDomain;
        }
        let Some((svc, prefix)) = rest.split_last() else {
            return Found::nodata(); // <ns>.svc.<zone>
        };
        let Some(key) = lower_key(&mut buffer, &[svc, ns]) else {
            return Found::NxDomain;
        };
        let Some(service) = self.snapshot.service(key) else {
            return Found::NxDomain;
        };
        let no_endpoints = service.endpoints.is_empty();
        let hidden = match service.kind {
            ServiceKind::Headless => no_endpoints,
            ServiceKind::ClusterIp(_) => no_endpoints && self.config.ignore_empty_service,
            ServiceKind::ExternalName(_) => false,
        };
        if hidden {
            return Found::NxDomain;
        }
        if let ServiceKind::ExternalName(target) = &service.kind {
            return match (prefix, target) {
                ([], Some(target)) => self.alias(target),
                ([], None) => Found::nodata(),
                _ => Found::NxDomain,
            };
        }
        match prefix {
            [] => self.service_name(service),
            [label] if label.starts_with(b"_") => {
                // `_proto.<svc>`: an empty non-terminal when a named port uses that protocol.
                let proto = &label[1..];
                let exists = self
                    .srv_targets(
                        service,
                        &service_base(service),
                        SrvFilter {
                            proto: Some(proto),
                            ..SrvFilter::default()
                        },
                    )
                    .iter()
                    .any(|t| t.named);
                if exists {
                    Found::nodata()
                } else {
                    Found::NxDomain
                }
            }
            [label] => self.endpoint_name(service, label),
            [port, proto] if port.starts_with(b"_") && proto.starts_with(b"_") => self.srv_answer(
                service,
                &service_base(service),
                SrvFilter {
                    endpoint: None,
                    port: Some(&port[1..]),
                    proto: Some(&proto[1..]),
                },
            ),
            _ => Found::NxDomain,
        }
    }

    fn alias(&self, target: &str) -> Found {
        match Name::from_ascii(format!("{target}.")) {
            Ok(target) => Found::Alias(
                Box::new(self.record(RData::CNAME(CNAME(target.clone())))),
                target,
            ),
            Err(_) => Found::nodata(),
        }
    }

    /// `<svc>.<ns>.svc.<zone>` itself.
    fn service_name(&self, service: &ServiceRecords) -> Found {
        match self.qtype {
            RecordType::A | RecordType::AAAA | RecordType::ANY => Found::records(
                service
                    .addresses
                    .iter()
                    .filter(|ip| is_address_type(self.qtype, ip))
                    .map(|ip| self.record(address_rdata(*ip)))
                    .collect(),
            ),
            RecordType::SRV => {
                self.srv_answer(service, &service_base(service), SrvFilter::default())
            }
            _ => Found::nodata(),
        }
    }

    /// `<endpoint>.<svc>.<ns>.svc.<zone>`.
    fn endpoint_name(&self, service: &ServiceRecords, label: &[u8]) -> Found {
        let mut matching = service.endpoints_named(label).peekable();
        if matching.peek().is_none() {
            return Found::NxDomain;
        }
        match self.qtype {
            RecordType::A | RecordType::AAAA | RecordType::ANY => Found::records(
                matching
                    .filter(|e| is_address_type(self.qtype, &e.ip))
                    .map(|e| self.record(address_rdata(e.ip)))
                    .collect(),
            ),
            RecordType::SRV => self.srv_answer(
                service,
                &service_base(service),
                SrvFilter {
                    endpoint: Some(label),
                    ..SrvFilter::default()
                },
            ),
            _ => Found::nodata(),
        }
    }

    /// SRV targets for a service, optionally narrowed to one endpoint, port name or protocol.
    /// ClusterIP services point at the service name with the Service port; headless
    /// services (and endpoint names) point at each endpoint with the EndpointSlice port.
    /// Targets are unique by (name, port); addresses gather under their target.
    fn srv_targets(
        &self,
        service: &ServiceRecords,
        base: &str,
        filter: SrvFilter,
    ) -> Vec<SrvTarget> {
        let port_matches = |port: &crate::cluster::PortInfo| {
            let name_ok = match filter.port {
                Some(wanted) => port.name.as_deref().is_some_and(|n| label_is(wanted, n)),
                None => true,
            };
            let proto_ok = filter
                .proto
                .is_none_or(|wanted| label_is(wanted, &port.protocol));
            name_ok && proto_ok
        };
        let mut targets: Vec<SrvTarget> = Vec::new();
        let mut positions: HashMap<(String, u16), usize> = HashMap::new();
        let mut push =
            |relative: String, port: &crate::cluster::PortInfo, ips: &[IpAddr]| match positions
                .entry((relative, port.port))
            {
                Entry::Occupied(at) => {
                    let existing = &mut targets[*at.get()];
                    existing.entries += ips.len();
                    for ip in ips {
                        if !existing.ips.contains(ip) {
                            existing.ips.push(*ip);
                        }
                    }
                }
                Entry::Vacant(slot) => {
                    targets.push(SrvTarget {
                        relative: slot.key().0.clone(),
                        port: port.port,
                        named: port.name.is_some(),
                        ips: ips.to_vec(),
                        entries: ips.len(),
                    });
                    slot.insert(targets.len() - 1);
                }
            };
        match (&service.kind, filter.endpoint) {
            (ServiceKind::ClusterIp(cluster_ips), None) => {
                for port in service.ports.iter().filter(|p| port_matches(p)) {
                    push(base.to_string(), port, cluster_ips);
                }
            }
            (_, Some(label)) => {
                for e in service.endpoints_named(label) {
                    for port in e.ports.iter().filter(|p| port_matches(p)) {
                        push(format!("{}.{base}", e.label()), port, &[e.ip]);
                    }
                }
            }
            (_, None) => {
                for e in &service.endpoints {
                    for port in e.ports.iter().filter(|p| port_matches(p)) {
                        push(format!("{}.{base}", e.label()), port, &[e.ip]);
                    }
                }
            }
        }
        targets
    }

    fn srv_answer(&self, service: &ServiceRecords, base: &str, filter: SrvFilter) -> Found {
        let targets = self.srv_targets(service, base, filter);
        let named_lookup = filter.port.is_some();
        if named_lookup && targets.is_empty() {
            return Found::NxDomain;
        }
        if self.qtype != RecordType::SRV && self.qtype != RecordType::ANY {
            return Found::nodata();
        }
        if targets.is_empty() {
            return Found::nodata();
        }
        // CoreDNS (backend_lookup.go SRV): priority 0, weight 100 split evenly
        // over the (address, port) entries, counted before duplicate targets
        // collapse: a dual-stack Service's one SRV record has weight 50.
        let entries: usize = targets.iter().map(|t| t.entries).sum();
        let weight = u16::try_from(100 / entries.max(1)).unwrap_or(0);
        let mut answers = Vec::with_capacity(targets.len());
        let mut additionals = Vec::new();
        let mut seen_targets: HashSet<&str> = HashSet::new();
        for target in &targets {
            let Some(name) = self.zone_name(&target.relative) else {
                continue;
            };
            answers.push(self.record(RData::SRV(SRV::new(0, weight, target.port, name.clone()))));
            if !seen_targets.insert(&target.relative) {
                continue;
            }
            for ip in &target.ips {
                additionals.push(Record::from_rdata(
                    name.clone(),
                    self.config.ttl,
                    address_rdata(*ip),
                ));
            }
        }
        Found::Records {
            answers,
            additionals,
        }
    }

    fn find_pod(&self, labels: &[&[u8]]) -> Found {
        // labels: [<ip>] <ns>
        let Some((ns, rest)) = labels.split_last() else {
            return Found::nodata(); // pod.<zone>
        };
        if self.config.pods == PodsMode::Disabled {
            return Found::NxDomain;
        }
        let Some(ns) = lower_str(ns) else {
            return Found::NxDomain;
        };
        if !self.snapshot.namespace_exists(&ns) {
            return Found::NxDomain;
        }
        let [label] = rest else {
            return if rest.is_empty() {
                Found::nodata()
            } else {
                Found::NxDomain
            };
        };
        let Some(ip) = std::str::from_utf8(label).ok().and_then(parse_dashed_ip) else {
            return Found::NxDomain;
        };
        if self.config.pods == PodsMode::Verified && !self.snapshot.pod_exists(&ns, &ip) {
            return Found::NxDomain;
        }
        if is_address_type(self.qtype, &ip) {
            Found::records(vec![self.record(address_rdata(ip))])
        } else {
            Found::nodata()
        }
    }

    fn find_reverse(&self, labels: &[&[u8]], ip: Option<IpAddr>) -> Found {
        if labels.is_empty() {
            return self.apex();
        }
        let Some(ip) = ip else {
            return Found::NxDomain;
        };
        let targets = self.snapshot.ptr_targets(&ip);
        let Some(first) = targets.first() else {
            return Found::NxDomain;
        };
        if !matches!(self.qtype, RecordType::PTR | RecordType::ANY) {
            return Found::nodata();
        }
        // A ClusterIP belongs to one service; an endpoint address may back several.
        let owners: &[_] = if first.is_endpoint {
            targets
        } else {
            std::slice::from_ref(first)
        };
        let mut answers: Vec<Record> = Vec::with_capacity(owners.len());
        for owner in owners {
            let Some(target) = Name::from_ascii(format!("{}.svc", owner.relative(ip)))
                .ok()
                .and_then(|n| n.append_domain(&self.config.primary).ok())
            else {
                continue;
            };
            let rdata = RData::PTR(PTR(target));
            if !answers.iter().any(|r| r.data == rdata) {
                answers.push(self.record(rdata));
            }
        }
        Found::records(answers)
    }
}

/// Which SRV records a name asks for: one endpoint's, one port name's, one protocol's.
#[derive(Clone, Copy, Default)]
struct SrvFilter<'q> {
    endpoint: Option<&'q [u8]>,
    port: Option<&'q [u8]>,
    proto: Option<&'q [u8]>,
}

struct SrvTarget {
    relative: String,
    port: u16,
    named: bool,
    ips: Vec<IpAddr>,
    /// The (address, port) entries merged into this target: CoreDNS splits
    /// the weight over them before it drops duplicate targets.
    entries: usize,
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod plugin_tests;

impl ZoneConfig {
    /// Adds CoreDNS's `hosts` table, asked before the zones.
    pub fn set_hosts(&mut self, table: Option<hosts::Hosts>) {
        self.hosts_shadow_zones = table.as_ref().is_some_and(|t| {
            self.zones.iter().any(|(zone, kind)| {
                // A cluster zone the table answers in, wholly or in part.
                let overlaps = t.zones.is_empty()
                    || t.zones.iter().any(|z| z.zone_of(zone) || zone.zone_of(z));
                *kind == ZoneKind::Cluster
                    && overlaps
                    && (!t.passes_on_all_of(zone) || t.names().any(|name| zone.zone_of(name)))
            })
        });
        self.hosts = table.map(std::sync::Arc::new);
    }

    pub fn hosts(&self) -> Option<&hosts::Hosts> {
        self.hosts.as_deref()
    }

    /// The question's name after the `rewrite` rules, if one matched.
    pub fn rewrite(&self, qname: &Name) -> Option<rewrite::Rewritten> {
        self.rewrites.rewrite(qname)
    }

    /// The rcode a rule gives queries of `qtype`, if one does.
    pub fn rcode_for(&self, qtype: RecordType) -> Option<ResponseCode> {
        self.type_rcodes
            .iter()
            .find(|(t, _)| *t == qtype)
            .map(|(_, rcode)| *rcode)
    }

    /// Whether the `hosts` table may answer names of the cluster zones.
    pub fn hosts_shadow_zones(&self) -> bool {
        self.hosts_shadow_zones
    }
}

#[cfg(test)]
mod coredns_handler_tests;
