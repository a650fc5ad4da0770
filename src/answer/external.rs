//! CoreDNS's `k8s_external`: the addresses Services are reached at from
//! outside the cluster (`spec.externalIPs`, load balancer ingress) under zones
//! of their own, `<svc>.<ns>.<zone>` and `_<port>._<proto>.<svc>.<ns>.<zone>`;
//! with `headless`, a headless Service's endpoints as well. A, AAAA and SRV;
//! NODATA for other types; the zone's SOA and NS at its apex, and the `dns`
//! subdomain its name server lives in (plugin/k8s_external/external.go,
//! apex.go, msg_to_dns.go).

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::Answer;
use crate::cluster::{ExternalAddress, PortInfo, ServiceKind};
use crate::index::{ServiceRecords, Snapshot};

/// CoreDNS's defaults: the `dns` label for the name server, TTL 5.
pub const DEFAULT_APEX: &str = "dns";
pub const DEFAULT_TTL: u32 = 5;

/// The `k8s_external` zones and how they answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalZones {
    /// Lower case, fully qualified; longest first.
    pub zones: Vec<Name>,
    /// The label of the name server's subdomain (`apex`).
    pub apex: String,
    pub ttl: u32,
    /// Headless Services without external addresses answer with their endpoints.
    pub headless: bool,
}

impl Default for ExternalZones {
    fn default() -> Self {
        ExternalZones {
            zones: Vec::new(),
            apex: DEFAULT_APEX.into(),
            ttl: DEFAULT_TTL,
            headless: false,
        }
    }
}

/// One address a name stands for, with the port and the SRV target it goes with.
struct Target {
    address: ExternalAddress,
    port: u16,
    /// `<svc>.<ns>.<zone>`, or `<endpoint>.<svc>.<ns>.<zone>` for a headless endpoint.
    name: Name,
}

impl ExternalZones {
    /// The zone `qname` is in, if any (the longest).
    pub fn zone_of(&self, qname: &Name) -> Option<&Name> {
        self.zones.iter().find(|zone| zone.zone_of(qname))
    }

    /// The answer for `qname` in `zone`, and the name a CNAME it ends with
    /// leads to (a load balancer's hostname), to be resolved further.
    pub fn answer(
        &self,
        zone: &Name,
        snapshot: &Snapshot,
        (qname, qtype): (&Name, RecordType),
        ns_ips: &[IpAddr],
    ) -> (Answer, Option<Name>) {
        let count = qname.iter().len().saturating_sub(zone.iter().len());
        let relative: Vec<String> = qname
            .iter()
            .take(count)
            .map(|label| String::from_utf8_lossy(label).to_ascii_lowercase())
            .collect();
        let reply = |rcode: ResponseCode, answers: Vec<Record>| Answer {
            authoritative: true,
            answers,
            ..Answer::code(rcode)
        };
        let denial = |rcode: ResponseCode| Answer {
            authority: vec![self.soa(zone, snapshot.serial)],
            ..reply(rcode, Vec::new())
        };
        if relative.is_empty() {
            return (
                self.apex_answer(zone, snapshot, (qname, qtype), ns_ips),
                None,
            );
        }
        if relative.last().is_some_and(|last| *last == self.apex) {
            // The name server's subdomain: `dns` is empty, `ns1.dns` has its addresses.
            let answers = match relative.as_slice() {
                [_] => Vec::new(),
                [ns1, _] if ns1 == "ns1" => self.addresses(qname, ns_ips, qtype),
                _ => return (denial(ResponseCode::NXDomain), None),
            };
            if answers.is_empty() {
                return (denial(ResponseCode::NoError), None);
            }
            return (reply(ResponseCode::NoError, answers), None);
        }
        let Some(targets) = self.targets(zone, snapshot, &relative) else {
            return (denial(ResponseCode::NXDomain), None);
        };
        if targets.is_empty() {
            // The namespace alone: a name with nothing of its own.
            return (denial(ResponseCode::NoError), None);
        }
        let (answers, additionals, chase) = self.records(qname, qtype, &targets);
        if answers.is_empty() {
            return (denial(ResponseCode::NoError), None);
        }
        let answer = Answer {
            additionals,
            ..reply(ResponseCode::NoError, answers)
        };
        (answer, chase)
    }

    /// What the name stands for: `None` for a name that does not exist,
    /// empty for the namespace alone.
    fn targets(
        &self,
        zone: &Name,
        snapshot: &Snapshot,
        relative: &[String],
    ) -> Option<Vec<Target>> {
        let (namespace, rest) = relative.split_last()?;
        if !snapshot.namespace_exists(namespace) {
            return None;
        }
        let Some((service_name, prefix)) = rest.split_last() else {
            return Some(Vec::new());
        };
        // `<endpoint>.`, or `_<port>._<proto>.` (any case, `*` or `any` for all).
        let (endpoint, port, proto) = match prefix {
            [] => (None, None, None),
            [endpoint] => (Some(endpoint.as_str()), None, None),
            [port, proto] => (None, Some(strip(port)), Some(strip(proto))),
            _ => return None,
        };
        let service = snapshot.service(&format!("{service_name}.{namespace}"))?;
        let base = Name::from_ascii(format!("{service_name}.{namespace}"))
            .ok()?
            .append_domain(zone)
            .ok()?;
        let matches = |p: &PortInfo| {
            let named = p.name.as_deref().unwrap_or_default();
            wild_or(port, named) && wild_or(proto, &p.protocol)
        };
        let mut targets = Vec::new();
        if self.headless && service.external.is_empty() && service.kind == ServiceKind::Headless {
            for e in service.endpoints.iter() {
                let label = e.label();
                if endpoint.is_some_and(|wanted| wanted != label) {
                    continue;
                }
                let Some(name) = Name::from_ascii(&*label)
                    .ok()
                    .and_then(|l| l.append_domain(&base).ok())
                else {
                    continue;
                };
                for p in e.ports.iter().filter(|p| matches(p)) {
                    targets.push(Target {
                        address: ExternalAddress::Ip(e.ip),
                        port: p.port,
                        name: name.clone(),
                    });
                }
            }
        } else if endpoint.is_none() {
            targets = external_targets(service, &base, &matches);
        }
        // A Service with nothing to show (no external address, no port that
        // matches) is as if it were not there.
        (!targets.is_empty()).then_some(targets)
    }

    /// The records for `qtype`: the answers, the additional section and the
    /// name a CNAME leads to.
    fn records(
        &self,
        qname: &Name,
        qtype: RecordType,
        targets: &[Target],
    ) -> (Vec<Record>, Vec<Record>, Option<Name>) {
        let mut answers: Vec<Record> = Vec::new();
        let mut additionals: Vec<Record> = Vec::new();
        let mut chase = None;
        let record =
            |owner: &Name, rdata: RData| Record::from_rdata(owner.clone(), self.ttl, rdata);
        match qtype {
            RecordType::A | RecordType::AAAA => {
                for target in targets {
                    let rdata = match (&target.address, qtype) {
                        (ExternalAddress::Ip(IpAddr::V4(v4)), RecordType::A) => RData::A(A(*v4)),
                        (ExternalAddress::Ip(IpAddr::V6(v6)), RecordType::AAAA) => {
                            RData::AAAA(AAAA(*v6))
                        }
                        (ExternalAddress::Hostname(host), _) => {
                            let Ok(host) = Name::from_ascii(format!("{host}.")) else {
                                continue;
                            };
                            chase.get_or_insert_with(|| host.clone());
                            RData::CNAME(CNAME(host))
                        }
                        _ => continue,
                    };
                    let rr = record(qname, rdata);
                    if !answers.contains(&rr) {
                        answers.push(rr);
                    }
                }
            }
            RecordType::SRV => {
                let weight = u16::try_from(100 / targets.len().max(1))
                    .unwrap_or(1)
                    .max(1);
                for target in targets {
                    let host = match &target.address {
                        ExternalAddress::Hostname(host) => {
                            Name::from_ascii(format!("{host}.")).ok()
                        }
                        ExternalAddress::Ip(_) => Some(target.name.clone()),
                    };
                    let Some(host) = host else { continue };
                    let srv = record(
                        qname,
                        RData::SRV(SRV::new(0, weight, target.port, host.clone())),
                    );
                    if !answers.contains(&srv) {
                        answers.push(srv);
                    }
                    let address = match target.address {
                        ExternalAddress::Ip(IpAddr::V4(v4)) => RData::A(A(v4)),
                        ExternalAddress::Ip(IpAddr::V6(v6)) => RData::AAAA(AAAA(v6)),
                        ExternalAddress::Hostname(_) => continue,
                    };
                    let extra = record(&host, address);
                    if !additionals.contains(&extra) {
                        additionals.push(extra);
                    }
                }
            }
            _ => {}
        }
        (answers, additionals, chase)
    }

    /// The apex: its SOA, its NS (with the name server's addresses), NODATA
    /// for the rest.
    fn apex_answer(
        &self,
        zone: &Name,
        snapshot: &Snapshot,
        (qname, qtype): (&Name, RecordType),
        ns_ips: &[IpAddr],
    ) -> Answer {
        let soa = self.soa(zone, snapshot.serial);
        let mut answer = Answer {
            authoritative: true,
            ..Answer::code(ResponseCode::NoError)
        };
        match qtype {
            RecordType::SOA => answer.answers.push(soa),
            RecordType::NS => {
                let ns1 = self.ns1(zone);
                answer.answers.push(Record::from_rdata(
                    qname.clone(),
                    self.ttl,
                    RData::NS(NS(ns1.clone())),
                ));
                for qtype in [RecordType::A, RecordType::AAAA] {
                    answer
                        .additionals
                        .extend(self.addresses(&ns1, ns_ips, qtype));
                }
            }
            _ => answer.authority.push(soa),
        }
        answer
    }

    fn addresses(&self, owner: &Name, ips: &[IpAddr], qtype: RecordType) -> Vec<Record> {
        ips.iter()
            .filter_map(|ip| match (ip, qtype) {
                (IpAddr::V4(v4), RecordType::A) => Some(RData::A(A(*v4))),
                (IpAddr::V6(v6), RecordType::AAAA) => Some(RData::AAAA(AAAA(*v6))),
                _ => None,
            })
            .map(|rdata| Record::from_rdata(owner.clone(), self.ttl, rdata))
            .collect()
    }

    /// `ns1.<apex>.<zone>`.
    fn ns1(&self, zone: &Name) -> Name {
        Name::from_ascii(format!("ns1.{}", self.apex))
            .ok()
            .and_then(|name| name.append_domain(zone).ok())
            .unwrap_or_else(|| zone.clone())
    }

    /// The zone's SOA as CoreDNS writes it: `ns1.<apex>.<zone>`,
    /// `hostmaster.<apex>.<zone>`, the index's serial, the TTL as minimum.
    fn soa(&self, zone: &Name, serial: u32) -> Record {
        let hostmaster = Name::from_ascii(format!("hostmaster.{}", self.apex))
            .ok()
            .and_then(|name| name.append_domain(zone).ok())
            .unwrap_or_else(|| zone.clone());
        let soa = SOA::new(
            self.ns1(zone),
            hostmaster,
            serial,
            7200,
            1800,
            86400,
            self.ttl,
        );
        Record::from_rdata(zone.clone(), self.ttl, RData::SOA(soa))
    }
}

/// Each external address with each port that matches.
fn external_targets(
    service: &ServiceRecords,
    base: &Name,
    matches: &dyn Fn(&PortInfo) -> bool,
) -> Vec<Target> {
    let mut targets = Vec::new();
    for address in service.external.iter() {
        for p in service.ports.iter().filter(|p| matches(p)) {
            targets.push(Target {
                address: address.clone(),
                port: p.port,
                name: base.clone(),
            });
        }
    }
    targets
}

fn strip(label: &str) -> &str {
    label.strip_prefix('_').unwrap_or(label)
}

/// CoreDNS's `match`: a wanted value of `*` or `any` (or none) takes anything.
fn wild_or(wanted: Option<&str>, value: &str) -> bool {
    match wanted {
        None | Some("*" | "any") => true,
        Some(wanted) => wanted.eq_ignore_ascii_case(value),
    }
}

#[cfg(test)]
#[path = "external_tests.rs"]
mod tests;
