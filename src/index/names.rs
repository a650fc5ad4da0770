//! Pure name helpers: endpoint labels, pod labels and reverse names.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The label an address gets when its endpoint has no hostname (CoreDNS's form):
/// IPv4 dots become dashes (`10-244-1-10`); IPv6 colons become dashes and a
/// trailing dash gets a `0` so the label never ends in `-` (`fd00--0`).
pub fn dashed_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => {
            let mut label = v6.to_string().replace([':', '.'], "-");
            if label.ends_with('-') {
                label.push('0');
            }
            label
        }
    }
}

/// Whether `label` is exactly [`dashed_ip`] of `ip`, without allocating for IPv4.
pub fn dashed_ip_is(ip: IpAddr, label: &str) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let mut parts = label.split('-');
            v4.octets().iter().all(|octet| {
                parts.next().is_some_and(|part| {
                    part.bytes().all(|b| b.is_ascii_digit())
                        && part.parse::<u8>().ok() == Some(*octet)
                        && (part == "0" || !part.starts_with('0'))
                })
            }) && parts.next().is_none()
        }
        IpAddr::V6(_) => dashed_ip(ip) == label,
    }
}

/// The addresses whose [`dashed_ip`] is exactly `label`: none, one, or (for
/// `--ffff-a-b-c-d`) both `::ffff:a:b:c:d` and the IPv4-mapped `::ffff:a.b.c.d`,
/// which share that label. Other spellings of an address are refused.
pub fn endpoint_label_ips(label: &str) -> impl Iterator<Item = IpAddr> + '_ {
    let mapped = label
        .strip_prefix("--ffff-")
        .and_then(|v4| match parse_dashed_ip(v4) {
            Some(IpAddr::V4(v4)) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
            _ => None,
        });
    parse_dashed_ip(label)
        .into_iter()
        .chain(mapped)
        .filter(move |ip| dashed_ip_is(*ip, label))
}

/// Reads a pod label back into an address: `10-244-1-10` or `fd00--1`.
pub fn parse_dashed_ip(label: &str) -> Option<IpAddr> {
    if label.bytes().filter(|b| *b == b'-').count() == 3 && !label.contains("--") {
        let v4: Ipv4Addr = label.replace('-', ".").parse().ok()?;
        return Some(IpAddr::V4(v4));
    }
    let v6: Ipv6Addr = label.replace('-', ":").parse().ok()?;
    Some(IpAddr::V6(v6))
}

/// The reverse owner of an address, fully qualified, lower case.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa.")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(73);
            for byte in v6.octets().iter().rev() {
                for nibble in [byte & 0xf, byte >> 4] {
                    name.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                    name.push('.');
                }
            }
            name.push_str("ip6.arpa.");
            name
        }
    }
}

/// Reads the labels in front of `in-addr.arpa` (4, most specific first) back into an address.
pub fn parse_reverse_v4(labels: &[&[u8]]) -> Option<IpAddr> {
    if labels.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, label) in labels.iter().enumerate() {
        let text = std::str::from_utf8(label).ok()?;
        // Reject "01" and "+1": a reverse name has exactly one spelling.
        if text.is_empty() || (text.len() > 1 && text.starts_with('0')) {
            return None;
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        octets[3 - i] = text.parse().ok()?;
    }
    Some(IpAddr::V4(Ipv4Addr::from(octets)))
}

/// Reads the 32 nibble labels in front of `ip6.arpa` back into an address.
pub fn parse_reverse_v6(labels: &[&[u8]]) -> Option<IpAddr> {
    if labels.len() != 32 {
        return None;
    }
    let mut value: u128 = 0;
    for label in labels.iter().rev() {
        let [digit] = label else { return None };
        let nibble = char::from(*digit).to_digit(16)?;
        value = (value << 4) | u128::from(nibble);
    }
    Some(IpAddr::V6(Ipv6Addr::from(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn dashed_labels_follow_coredns() {
        assert_eq!(dashed_ip(ip("10.244.1.10")), "10-244-1-10");
        assert_eq!(dashed_ip(ip("1234:abcd::3")), "1234-abcd--3");
        assert_eq!(dashed_ip(ip("fd00::")), "fd00--0");
    }

    #[test]
    fn dashed_labels_parse_back() {
        assert_eq!(parse_dashed_ip("10-244-1-10"), Some(ip("10.244.1.10")));
        assert_eq!(parse_dashed_ip("1234-abcd--3"), Some(ip("1234:abcd::3")));
        assert_eq!(parse_dashed_ip("fd00--0"), Some(ip("fd00::")));
        assert_eq!(parse_dashed_ip("web-0"), None);
        assert_eq!(parse_dashed_ip("10-244-1-300"), None);
        assert!(dashed_ip_is(ip("10.244.1.10"), "10-244-1-10"));
        assert!(!dashed_ip_is(ip("10.244.1.10"), "10-244-01-10"));
        assert!(!dashed_ip_is(ip("10.244.1.10"), "10-244-1-10-1"));
        assert!(!dashed_ip_is(ip("10.244.1.10"), "10-244-1"));
        assert!(dashed_ip_is(ip("1234:abcd::3"), "1234-abcd--3"));
        assert!(!dashed_ip_is(ip("10.244.1.10"), "10-244-+1-10"));
        assert!(!dashed_ip_is(ip("1234:abcd::3"), "1234-abcd-0-0-0-0-0-3"));
    }

    #[test]
    fn every_endpoint_label_reads_back_to_its_address() {
        for text in [
            "10.244.1.10",
            "0.0.0.0",
            "1234:abcd::3",
            "fd00::",
            "::ffff:10.0.0.1",
            "::1",
            "::",
        ] {
            let addr = ip(text);
            let label = dashed_ip(addr);
            assert!(endpoint_label_ips(&label).any(|ip| ip == addr), "{text}");
        }
        assert_eq!(endpoint_label_ips("010-0-0-1").count(), 0);
        assert_eq!(endpoint_label_ips("web-0").count(), 0);
        assert_eq!(endpoint_label_ips("--ffff-10-0-0-1").count(), 2);
    }

    #[test]
    fn reverse_names_round_trip() {
        for text in ["10.96.0.10", "fd00:10:96::a", "2001:db8::1"] {
            let addr = ip(text);
            let name = reverse_name(addr);
            let labels: Vec<&[u8]> = name
                .trim_end_matches('.')
                .split('.')
                .map(str::as_bytes)
                .collect();
            let parsed = match addr {
                IpAddr::V4(_) => parse_reverse_v4(&labels[..4]),
                IpAddr::V6(_) => parse_reverse_v6(&labels[..32]),
            };
            assert_eq!(parsed, Some(addr), "{name}");
        }
        assert_eq!(reverse_name(ip("10.96.0.10")), "10.0.96.10.in-addr.arpa.");
    }

    #[test]
    fn malformed_reverse_names_are_rejected() {
        assert_eq!(parse_reverse_v4(&[b"1", b"2", b"3"]), None);
        assert_eq!(parse_reverse_v4(&[b"1", b"2", b"3", b"256"]), None);
        assert_eq!(parse_reverse_v4(&[b"01", b"2", b"3", b"4"]), None);
        assert_eq!(parse_reverse_v6(&[&b"g"[..]; 32]), None);
        assert_eq!(parse_reverse_v6(&[&b"1"[..]; 31]), None);
    }
}
