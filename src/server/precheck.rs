//! The structural check every query passes before it is decoded for answering:
//! what is dropped, what gets FORMERR, and the source addresses never answered.
//! Pure functions over the bytes as received, so both transports share one rule.
//!
//! The DNS library's decoder is lenient where a server must not be (it skips
//! malformed EDNS options with a warning per message, ignores trailing bytes, and
//! echoes a compressed question byte for byte, so its pointer would land on the
//! reply's own header); this check refuses all of those first.

use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable, BinEncoder};

/// What to do with a message before answering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Well formed: decode and answer it.
    Pass,
    /// Not answered at all (too short for a header, or a response).
    Drop(&'static str),
    /// Answered with FORMERR (header only).
    FormErr(&'static str),
}

/// The largest name on the wire (RFC 1035 3.1).
const MAX_NAME: usize = 255;
/// Compression pointers followed in one name before it counts as a loop.
const MAX_POINTERS: usize = 64;
const OPT: u16 = 41;

/// Checks a query's structure: one question with an uncompressed name, records
/// that fit their lengths, at most one OPT record (in the additional section,
/// owned by the root, with options that fill its data exactly), and nothing after
/// the last record.
pub fn check(packet: &[u8]) -> Verdict {
    if packet.len() < 12 {
        return Verdict::Drop("shorter than a DNS header");
    }
    if packet[2] & 0x80 != 0 {
        return Verdict::Drop("a response (QR=1): never answered");
    }
    let count = |at: usize| usize::from(u16::from_be_bytes([packet[at], packet[at + 1]]));
    let (questions, answers, authorities, additionals) = (count(4), count(6), count(8), count(10));
    if questions != 1 {
        return Verdict::FormErr("not exactly one question");
    }
    let mut at = match question_name_end(packet, 12) {
        Ok(end) => end,
        Err(reason) => return Verdict::FormErr(reason),
    };
    if packet.len() < at + 4 {
        return Verdict::FormErr("question cut short");
    }
    at += 4;
    let mut opt_seen = false;
    let sections = [(answers, false), (authorities, false), (additionals, true)];
    for (records, is_additional) in sections {
        for _ in 0..records {
            match record(packet, at) {
                Ok((end, rtype, root_owner, rdata)) => {
                    if rtype == OPT {
                        if !is_additional {
                            return Verdict::FormErr("OPT record outside the additional section");
                        }
                        if opt_seen {
                            return Verdict::FormErr("two OPT records");
                        }
                        if !root_owner {
                            return Verdict::FormErr("OPT record not owned by the root");
                        }
                        if !options_fit(rdata) {
                            return Verdict::FormErr("malformed EDNS option");
                        }
                        opt_seen = true;
                    }
                    at = end;
                }
                Err(reason) => return Verdict::FormErr(reason),
            }
        }
    }
    if at != packet.len() {
        return Verdict::FormErr("trailing bytes after the last record");
    }
    Verdict::Pass
}

/// The end of the question's name, which must be uncompressed with ordinary labels.
fn question_name_end(packet: &[u8], mut at: usize) -> Result<usize, &'static str> {
    let mut length = 1;
    loop {
        let len = usize::from(*packet.get(at).ok_or("question name cut short")?);
        match len & 0xc0 {
            0x00 => {}
            0xc0 => return Err("compressed question name"),
            _ => return Err("unknown label type in the question"),
        }
        if len == 0 {
            return Ok(at + 1);
        }
        length += len + 1;
        if length > MAX_NAME {
            return Err("question name longer than 255 bytes");
        }
        at += 1 + len;
    }
}

/// Walks a name that may be compressed: pointers must point strictly backwards
/// (which also rules out loops), and the name must stay within 255 bytes.
/// Returns where the name ends in the message and whether it is the root.
fn name_end(packet: &[u8], start: usize) -> Result<(usize, bool), &'static str> {
    let mut at = start;
    let mut end = None;
    let mut length = 1;
    let mut pointers = 0;
    let mut lowest = start;
    loop {
        let len = usize::from(*packet.get(at).ok_or("name cut short")?);
        match len & 0xc0 {
            0x00 if len == 0 => {
                let end = end.unwrap_or(at + 1);
                return Ok((end, length == 1));
            }
            0x00 => {
                length += len + 1;
                if length > MAX_NAME {
                    return Err("name longer than 255 bytes");
                }
                if packet.len() < at + 1 + len {
                    return Err("label cut short");
                }
                at += 1 + len;
            }
            0xc0 => {
                let low = usize::from(*packet.get(at + 1).ok_or("pointer cut short")?);
                let target = ((len & 0x3f) << 8) | low;
                if target >= lowest {
                    return Err("compression pointer not pointing backwards");
                }
                pointers += 1;
                if pointers > MAX_POINTERS {
                    return Err("too many compression pointers");
                }
                end.get_or_insert(at + 2);
                lowest = target;
                at = target;
            }
            _ => return Err("unknown label type"),
        }
    }
}

/// One resource record: its end, type, whether the owner is the root, and its data.
fn record(packet: &[u8], at: usize) -> Result<(usize, u16, bool, &[u8]), &'static str> {
    let (at, root_owner) = name_end(packet, at)?;
    let fixed = packet.get(at..at + 10).ok_or("record cut short")?;
    let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let rdlength = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let rdata = packet
        .get(at + 10..at + 10 + rdlength)
        .ok_or("record data cut short")?;
    Ok((at + 10 + rdlength, rtype, root_owner, rdata))
}

/// The FORMERR reply to a message whose header parses but whose body does not:
/// the header alone, ID, opcode and RD echoed; nothing for a response.
pub fn format_error(packet: &[u8]) -> Option<Vec<u8>> {
    let header = Header::from_bytes(packet.get(..12)?).ok()?;
    if header.metadata.message_type == MessageType::Response {
        return None;
    }
    let mut metadata = Metadata::response_from_request(&header.metadata);
    metadata.response_code = ResponseCode::FormErr;
    let mut out = Vec::with_capacity(12);
    let mut encoder = BinEncoder::new(&mut out);
    Header {
        metadata,
        counts: HeaderCounts::default(),
    }
    .emit(&mut encoder)
    .ok()?;
    Some(out)
}

/// EDNS options (code, length, data) fill the OPT record's data exactly (RFC 6891 6.1.2).
pub fn options_fit(mut rdata: &[u8]) -> bool {
    while !rdata.is_empty() {
        let Some(header) = rdata.get(..4) else {
            return false;
        };
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let Some(rest) = rdata.get(4 + len..) else {
            return false;
        };
        rdata = rest;
    }
    true
}

/// Sources never answered, as hickory-server's own loop rules: port 0, and the
/// unspecified, broadcast and multicast addresses (a reply there is a reflection).
pub fn sanitize_source(src: SocketAddr) -> Result<(), &'static str> {
    if src.port() == 0 {
        return Err("source port 0");
    }
    match src.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => Err("unspecified source address"),
        IpAddr::V4(ip) if ip.is_broadcast() => Err("broadcast source address"),
        IpAddr::V4(ip) if ip.is_multicast() => Err("multicast source address"),
        IpAddr::V6(ip) if ip.is_unspecified() => Err("unspecified source address"),
        IpAddr::V6(ip) if ip.is_multicast() => Err("multicast source address"),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => sanitize_source(SocketAddr::from((v4, src.port()))),
            None => Ok(()),
        },
        IpAddr::V4(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `a.b.` type A, class IN, with `extra` appended and the counts given.
    fn query(counts: [u16; 4], extra: &[u8]) -> Vec<u8> {
        let mut packet = vec![0x12, 0x34, 0x01, 0x00];
        for count in counts {
            packet.extend_from_slice(&count.to_be_bytes());
        }
        packet.extend_from_slice(&[1, b'a', 1, b'b', 0, 0, 1, 0, 1]);
        packet.extend_from_slice(extra);
        packet
    }

    fn opt(options: &[u8]) -> Vec<u8> {
        let mut record = vec![0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0];
        record.extend_from_slice(&u16::try_from(options.len()).unwrap().to_be_bytes());
        record.extend_from_slice(options);
        record
    }

    #[test]
    fn plain_queries_pass() {
        assert_eq!(check(&query([1, 0, 0, 0], &[])), Verdict::Pass);
        assert_eq!(check(&query([1, 0, 0, 1], &opt(&[]))), Verdict::Pass);
        // A cookie option (code 10, 8 bytes).
        let cookie = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(check(&query([1, 0, 0, 1], &opt(&cookie))), Verdict::Pass);
    }

    #[test]
    fn structure_errors_are_formerr() {
        let formerr = |packet: &[u8]| matches!(check(packet), Verdict::FormErr(_));
        assert!(formerr(&query([0, 0, 0, 0], &[])));
        assert!(formerr(&query([2, 0, 0, 0], &[])));
        assert!(
            formerr(&query([1, 0, 0, 0], &[0xde, 0xad])),
            "trailing bytes"
        );
        assert!(formerr(&query([1, 0, 0, 1], &[])), "a missing record");
        let two = [opt(&[]), opt(&[])].concat();
        assert!(formerr(&query([1, 0, 0, 2], &two)), "two OPT records");
        assert!(
            formerr(&query([1, 1, 0, 0], &opt(&[]))),
            "OPT in the answers"
        );
        assert!(
            formerr(&query([1, 0, 0, 1], &opt(&[0, 10, 0, 9, 1]))),
            "option too long"
        );
        assert!(
            formerr(&query([1, 0, 0, 1], &opt(&[0, 10]))),
            "option header cut"
        );
        let mut packet = query([1, 0, 0, 0], &[]);
        packet.truncate(packet.len() - 2);
        assert!(formerr(&packet), "question cut short");
    }

    #[test]
    fn names_are_checked() {
        let formerr = |packet: &[u8]| matches!(check(packet), Verdict::FormErr(_));
        let header = [0u8, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        // A pointer to itself, a forward pointer, a pointer in the question.
        for name in [&[0xc0u8, 12][..], &[0xc0, 20], &[1, b'a', 0xc0, 12]] {
            let packet = [&header[..], name, &[0, 1, 0, 1]].concat();
            assert!(formerr(&packet), "{name:?}");
        }
        // Label 64 (an extended label type) and a 256-byte name.
        let packet = [&header[..], &[0x40], &[b'a'; 64], &[0, 0, 1, 0, 1]].concat();
        assert!(formerr(&packet));
        let mut long = Vec::new();
        for _ in 0..5 {
            long.push(50u8);
            long.extend_from_slice(&[b'a'; 50]);
        }
        long.push(0);
        let packet = [&header[..], &long, &[0, 1, 0, 1]].concat();
        assert!(formerr(&packet), "256 bytes");
        // Records may compress backwards, not in a loop.
        let record = [0xc0u8, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 1, 2, 3, 4];
        assert_eq!(check(&query([1, 1, 0, 0], &record)), Verdict::Pass);
        let looped = [0xc0u8, 21, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 1, 2, 3, 4];
        assert!(formerr(&query([1, 1, 0, 0], &looped)));
    }

    #[test]
    fn short_packets_and_responses_are_dropped() {
        assert!(matches!(check(&[0; 11]), Verdict::Drop(_)));
        let mut response = query([1, 0, 0, 0], &[]);
        response[2] |= 0x80;
        assert!(matches!(check(&response), Verdict::Drop(_)));
    }

    #[test]
    fn sources_that_are_never_answered() {
        for bad in [
            "127.0.0.1:0",
            "0.0.0.0:53",
            "255.255.255.255:53",
            "224.0.0.1:53",
            "[::]:53",
            "[ff02::1]:53",
            "[::ffff:255.255.255.255]:53",
        ] {
            assert!(sanitize_source(bad.parse().unwrap()).is_err(), "{bad}");
        }
        for good in ["127.0.0.1:5300", "[::1]:5300", "10.0.0.1:1"] {
            assert!(sanitize_source(good.parse().unwrap()).is_ok(), "{good}");
        }
    }
}
