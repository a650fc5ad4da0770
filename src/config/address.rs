//! The address and name forms the configuration accepts, as text to values; the
//! error is the message that follows `key `...`: `.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hickory_proto::rr::Name;

/// A cluster zone: a domain name, not the root and not under `arpa`; lower case,
/// fully qualified.
pub fn parse_zone(text: &str) -> Result<Name, String> {
    let trimmed = text.trim().trim_end_matches('.');
    if trimmed.is_empty() {
        return Err(format!(
            "{text:?} is not a zone: the root zone cannot be served"
        ));
    }
    let lower = trimmed.to_ascii_lowercase();
    if lower == "arpa" || lower.ends_with(".arpa") {
        return Err(format!(
            "{text:?} is a reverse zone: in-addr.arpa and ip6.arpa are always served, list only cluster zones"
        ));
    }
    let mut name =
        Name::from_ascii(trimmed).map_err(|e| format!("{text:?} is not a domain name: {e}"))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

/// Any domain name, the root included; lower case, fully qualified.
pub fn parse_domain(text: &str) -> Result<Name, String> {
    let trimmed = text.trim();
    if trimmed == "." {
        return Ok(Name::root());
    }
    let mut name = Name::from_ascii(trimmed.strip_suffix('.').unwrap_or(trimmed))
        .map_err(|e| format!("{text:?} is not a domain name: {e}"))?;
    if name.is_root() {
        return Err(format!("{text:?} is not a domain name"));
    }
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

/// An upstream resolver: `ADDR`, `ADDR:PORT`, `[V6]:PORT` or a bare IPv6 address.
pub fn parse_upstream(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            format!("{text:?} is not an upstream: expected ADDR[:PORT] with an IP address")
        })
}

/// A DNS `listen` entry: as [`parse_listen`], except that no host (`:PORT`, or
/// CoreDNS's `.:PORT`) means every interface of both families, `0.0.0.0:PORT` and
/// `[::]:PORT`, so that dual-stack clusters need no edit.
pub fn parse_dns_listen(text: &str) -> Result<Vec<SocketAddr>, String> {
    let trimmed = text.trim();
    let port = trimmed
        .strip_prefix(':')
        .or_else(|| trimmed.strip_prefix(".:"));
    if let Some(port) = port
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        ]);
    }
    parse_listen(text).map(|addr| vec![addr])
}

/// `ADDR:PORT`, `[V6]:PORT`, a bare address (port 53) or `:PORT`: all interfaces,
/// `[::]:PORT`, which the HTTP endpoints bind dual-stack (IPv4 too).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(SocketAddr::new(ip, 53));
    }
    if let Some(port) = text.strip_prefix(':')
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port));
    }
    Err(format!(
        "{text:?} is not an address: expected ADDR:PORT, [IPV6]:PORT or ADDR"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_forms() {
        assert_eq!(
            parse_listen("[::1]:5353").unwrap(),
            "[::1]:5353".parse().unwrap()
        );
        assert_eq!(
            parse_listen("10.0.0.1").unwrap(),
            "10.0.0.1:53".parse().unwrap()
        );
        assert_eq!(parse_listen(":8080").unwrap(), "[::]:8080".parse().unwrap());
        let both: Vec<SocketAddr> = vec!["0.0.0.0:53".parse().unwrap(), "[::]:53".parse().unwrap()];
        assert_eq!(parse_dns_listen(":53").unwrap(), both);
        assert_eq!(parse_dns_listen(" .:53").unwrap(), both);
        assert_eq!(
            parse_dns_listen("0.0.0.0:53").unwrap(),
            vec!["0.0.0.0:53".parse::<SocketAddr>().unwrap()],
            "an explicit family stays alone"
        );
        assert_eq!(
            parse_dns_listen("[::1]:5353").unwrap(),
            vec!["[::1]:5353".parse::<SocketAddr>().unwrap()]
        );
        assert!(parse_dns_listen(":").is_err());
        assert!(parse_dns_listen(".:x").is_err());
        assert!(parse_dns_listen(":70000").is_err());
        assert!(parse_listen("nonsense").is_err());
        assert_eq!(
            parse_upstream("10.0.0.2").unwrap(),
            "10.0.0.2:53".parse().unwrap()
        );
        assert_eq!(parse_upstream("::1").unwrap(), "[::1]:53".parse().unwrap());
        assert_eq!(
            parse_upstream("[::1]:5300").unwrap(),
            "[::1]:5300".parse().unwrap()
        );
        assert!(parse_upstream("dns.google").is_err());
    }
}
