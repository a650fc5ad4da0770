//! A small DNS message writer for the UDP fast path: no allocation, and names
//! compressed exactly as hickory-proto's encoder compresses them (so the two
//! paths give the same bytes; a differential test holds them to it): every
//! suffix written is remembered (up to 64), later names point to an equal one,
//! labels compared byte for byte.

use hickory_proto::op::Metadata;
use hickory_proto::rr::{Name, RData, Record};

/// Why a message could not be written.
#[derive(Debug, PartialEq, Eq)]
pub enum WireError {
    /// Over the size limit: the caller sends a truncated answer.
    Full,
    /// A record type this writer does not know: the caller uses the general encoder.
    Unsupported,
}

/// Suffixes remembered for compression, as hickory-proto's `BinEncoder` keeps them.
const SUFFIXES: usize = 64;
/// Names compressed at most, as hickory-proto's `Name::emit`.
const COMPRESSED_NAMES: usize = 120;
/// Labels in a name at most (255 bytes).
const MAX_LABELS: usize = 128;

pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
    limit: usize,
    /// Where each remembered suffix starts in the message, and its length
    /// written out in full (a cheap first test before comparing labels).
    suffixes: [u16; SUFFIXES],
    suffix_lens: [u16; SUFFIXES],
    suffix_count: usize,
    compressed_names: usize,
}

impl<'a> Writer<'a> {
    /// Starts a message: header (counts included) and the question as received.
    pub fn new(
        out: &'a mut Vec<u8>,
        limit: u16,
        metadata: &Metadata,
        counts: [u16; 4],
        question_labels: &[&[u8]],
        raw_question: &[u8],
    ) -> Result<Self, WireError> {
        out.clear();
        out.extend_from_slice(&metadata.id.to_be_bytes());
        let mut flags: u16 = 0x8000; // QR
        flags |= (u16::from(u8::from(metadata.op_code)) & 0xf) << 11;
        if metadata.authoritative {
            flags |= 0x0400;
        }
        if metadata.truncation {
            flags |= 0x0200;
        }
        if metadata.recursion_desired {
            flags |= 0x0100;
        }
        if metadata.recursion_available {
            flags |= 0x0080;
        }
        if metadata.authentic_data {
            flags |= 0x0020;
        }
        if metadata.checking_disabled {
            flags |= 0x0010;
        }
        flags |= metadata.response_code.low() as u16 & 0xf;
        out.extend_from_slice(&flags.to_be_bytes());
        for count in counts {
            out.extend_from_slice(&count.to_be_bytes());
        }
        out.extend_from_slice(raw_question);
        let mut writer = Writer {
            out,
            limit: usize::from(limit),
            suffixes: [0; SUFFIXES],
            suffix_lens: [0; SUFFIXES],
            suffix_count: 0,
            // The question is the first name compressed.
            compressed_names: 1,
        };
        // The question is the first name written: each of its suffixes is remembered.
        let mut at = 12u16;
        let mut len = full_length(question_labels);
        for label in question_labels {
            writer.remember(at, len);
            at += label.len() as u16 + 1;
            len -= label.len() as u16 + 1;
        }
        writer.check()?;
        Ok(writer)
    }

    fn check(&self) -> Result<(), WireError> {
        if self.out.len() > self.limit {
            Err(WireError::Full)
        } else {
            Ok(())
        }
    }

    fn remember(&mut self, at: u16, len: u16) {
        if self.suffix_count < SUFFIXES {
            self.suffixes[self.suffix_count] = at;
            self.suffix_lens[self.suffix_count] = len;
            self.suffix_count += 1;
        }
    }

    /// Whether the name written at `at` (pointers followed) equals the one written
    /// out in full at `candidate`, byte for byte.
    fn written_equals(&self, mut at: usize, mut candidate: usize) -> bool {
        let out = &self.out[..];
        // Pointers only go backwards in what we write; the hop bound is a guard.
        for _ in 0..MAX_LABELS * 2 {
            let (Some(&len), Some(&wanted)) = (out.get(at), out.get(candidate)) else {
                return false;
            };
            if len & 0xC0 == 0xC0 {
                let Some(&low) = out.get(at + 1) else {
                    return false;
                };
                at = usize::from(u16::from_be_bytes([len & 0x3F, low]));
                continue;
            }
            if len != wanted {
                return false;
            }
            if len == 0 {
                return true;
            }
            let len = usize::from(len);
            if out.get(at + 1..at + 1 + len) != out.get(candidate + 1..candidate + 1 + len) {
                return false;
            }
            at += 1 + len;
            candidate += 1 + len;
        }
        false
    }

    /// A name, compressed (`compress`) or only remembered for later names, as
    /// hickory-proto's `Name::emit` does it: written out in full, then each
    /// suffix in turn looked up; the first one found becomes a pointer.
    fn write_name(&mut self, name: &Name, compress: bool) -> Result<(), WireError> {
        let start = self.out.len();
        for label in name.iter() {
            self.out.push(label.len() as u8);
            self.out.extend_from_slice(label);
        }
        self.out.push(0);
        let end = self.out.len();
        let compress = compress && self.compressed_names < COMPRESSED_NAMES;
        if compress {
            self.compressed_names += 1;
        }
        let mut at = start;
        while self.out[at] != 0 {
            // The suffix at `at`, written out in full, root included.
            let len = (end - at) as u16;
            if compress
                && let Some(target) = (0..self.suffix_count)
                    .filter(|&k| self.suffix_lens[k] == len)
                    .map(|k| self.suffixes[k])
                    .find(|&stored| self.written_equals(usize::from(stored), at))
            {
                self.out.truncate(at);
                self.out.extend_from_slice(&(0xC000 | target).to_be_bytes());
                return Ok(());
            }
            // Past 0x3FFF a suffix cannot be pointed to.
            if let Ok(offset) = u16::try_from(at)
                && offset < 0x3FFF
            {
                self.remember(offset, len);
            }
            at += usize::from(self.out[at]) + 1;
        }
        Ok(())
    }

    /// A compressed name.
    fn name(&mut self, name: &Name) -> Result<(), WireError> {
        self.write_name(name, true)
    }

    pub fn record(&mut self, record: &Record) -> Result<(), WireError> {
        self.record_with_ttl(record, record.ttl)
    }

    /// A record with another TTL (a cached one, counted down).
    pub fn record_with_ttl(&mut self, record: &Record, ttl: u32) -> Result<(), WireError> {
        let start = self.out.len();
        self.name(&record.name)?;
        self.out
            .extend_from_slice(&u16::from(record.record_type()).to_be_bytes());
        self.out
            .extend_from_slice(&u16::from(record.dns_class).to_be_bytes());
        self.out.extend_from_slice(&ttl.to_be_bytes());
        let length_at = self.out.len();
        self.out.extend_from_slice(&[0, 0]);
        match &record.data {
            RData::A(a) => self.out.extend_from_slice(&a.0.octets()),
            RData::AAAA(aaaa) => self.out.extend_from_slice(&aaaa.0.octets()),
            RData::SRV(srv) => {
                self.out.extend_from_slice(&srv.priority.to_be_bytes());
                self.out.extend_from_slice(&srv.weight.to_be_bytes());
                self.out.extend_from_slice(&srv.port.to_be_bytes());
                // Not compressed (RFC 2782), but later names may point into it.
                self.write_name(&srv.target, false)?;
            }
            RData::PTR(ptr) => self.name(&ptr.0)?,
            RData::CNAME(cname) => self.name(&cname.0)?,
            RData::NS(ns) => self.name(&ns.0)?,
            RData::SOA(soa) => {
                self.name(&soa.mname)?;
                self.name(&soa.rname)?;
                for value in [
                    soa.serial,
                    soa.refresh as u32,
                    soa.retry as u32,
                    soa.expire as u32,
                    soa.minimum,
                ] {
                    self.out.extend_from_slice(&value.to_be_bytes());
                }
            }
            RData::TXT(txt) => {
                for string in txt.txt_data.iter() {
                    let len = u8::try_from(string.len()).map_err(|_| WireError::Unsupported)?;
                    self.out.push(len);
                    self.out.extend_from_slice(string);
                }
            }
            _ => {
                self.out.truncate(start);
                return Err(WireError::Unsupported);
            }
        }
        let length = u16::try_from(self.out.len() - length_at - 2).map_err(|_| WireError::Full)?;
        self.out[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
        self.check()
    }

    /// An A or AAAA record owned by the question's name (spelled as asked).
    pub fn address_at_question(&mut self, ttl: u32, ip: std::net::IpAddr) -> Result<(), WireError> {
        // Compressed like any owner name: a pointer to the question.
        if self.compressed_names >= COMPRESSED_NAMES {
            return Err(WireError::Unsupported);
        }
        self.compressed_names += 1;
        self.out.extend_from_slice(&0xC00Cu16.to_be_bytes());
        let (rtype, length): (u16, u16) = if ip.is_ipv4() { (1, 4) } else { (28, 16) };
        self.out.extend_from_slice(&rtype.to_be_bytes());
        self.out.extend_from_slice(&1u16.to_be_bytes()); // IN
        self.out.extend_from_slice(&ttl.to_be_bytes());
        self.out.extend_from_slice(&length.to_be_bytes());
        match ip {
            std::net::IpAddr::V4(v4) => self.out.extend_from_slice(&v4.octets()),
            std::net::IpAddr::V6(v6) => self.out.extend_from_slice(&v6.octets()),
        }
        self.check()
    }

    /// The OPT pseudo-record: root owner, payload size as class, DO flag.
    pub fn opt(&mut self, payload: u16, dnssec_ok: bool) -> Result<(), WireError> {
        self.out.push(0);
        self.out.extend_from_slice(&41u16.to_be_bytes());
        self.out.extend_from_slice(&payload.to_be_bytes());
        let flags: u16 = if dnssec_ok { 0x8000 } else { 0 };
        self.out.extend_from_slice(&[0, 0]); // extended rcode, version 0
        self.out.extend_from_slice(&flags.to_be_bytes());
        self.out.extend_from_slice(&[0, 0]); // no options
        self.check()
    }
}

/// A name's length on the wire without compression (labels of at most 63
/// bytes, at most 128 of them: it fits a u16).
fn full_length(labels: &[&[u8]]) -> u16 {
    1 + labels.iter().map(|l| l.len() as u16 + 1).sum::<u16>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode};
    use hickory_proto::rr::rdata::{A, CNAME, SRV};

    fn question(name: &str) -> (Vec<u8>, Vec<Vec<u8>>) {
        let name = Name::from_ascii(name).unwrap();
        let labels: Vec<Vec<u8>> = name.iter().map(<[u8]>::to_vec).collect();
        let mut raw = Vec::new();
        for label in &labels {
            raw.push(label.len() as u8);
            raw.extend_from_slice(label);
        }
        raw.extend_from_slice(&[0, 0, 1, 0, 1]);
        (raw, labels)
    }

    #[test]
    fn owners_compress_to_the_question_and_targets_to_its_suffix() {
        let qname = "Web-0.Nginx.default.svc.cluster.local.";
        let (raw, labels) = question(qname);
        let labels: Vec<&[u8]> = labels.iter().map(Vec::as_slice).collect();
        let mut metadata = Metadata::new(7, MessageType::Response, OpCode::Query);
        metadata.authoritative = true;
        let owner = Name::from_ascii(qname).unwrap();
        let target = Name::from_ascii("other.default.svc.cluster.local.").unwrap();
        let records = [
            Record::from_rdata(owner.clone(), 5, RData::A(A::new(10, 0, 0, 1))),
            Record::from_rdata(owner.clone(), 5, RData::CNAME(CNAME(target.clone()))),
            Record::from_rdata(owner, 5, RData::SRV(SRV::new(0, 100, 80, target.clone()))),
        ];
        let mut out = Vec::new();
        let mut writer =
            Writer::new(&mut out, 1232, &metadata, [1, 3, 0, 1], &labels, &raw).unwrap();
        for record in &records {
            writer.record(record).unwrap();
        }
        writer.opt(1232, true).unwrap();
        // The A record: a 2-byte pointer owner + type, class, ttl, length, address.
        let a_start = 12 + raw.len();
        assert_eq!(&out[a_start..a_start + 2], &[0xC0, 0x0C]);
        let message = Message::from_vec(&out).expect("decodable");
        assert!(message.metadata.authoritative);
        assert_eq!(message.answers.len(), 3);
        assert_eq!(
            message.answers[0].name.to_string(),
            qname,
            "the question's spelling"
        );
        assert_eq!(
            message.answers[1].data.to_string(),
            "other.default.svc.cluster.local."
        );
        assert_eq!(
            message.answers[2].data.to_string(),
            "0 100 80 other.default.svc.cluster.local."
        );
        assert!(message.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok));
    }

    #[test]
    fn the_limit_is_enforced() {
        let (raw, labels) = question("big.default.svc.cluster.local.");
        let labels: Vec<&[u8]> = labels.iter().map(Vec::as_slice).collect();
        let metadata = Metadata::new(1, MessageType::Response, OpCode::Query);
        let owner = Name::from_ascii("big.default.svc.cluster.local.").unwrap();
        let mut out = Vec::new();
        let mut writer =
            Writer::new(&mut out, 512, &metadata, [1, 100, 0, 0], &labels, &raw).unwrap();
        let record = Record::from_rdata(owner, 5, RData::A(A::new(10, 0, 0, 1)));
        let result = (0..100).try_for_each(|_| writer.record(&record));
        assert_eq!(result, Err(WireError::Full));
    }
}
