//! The `nameserver` lines of a resolv.conf file.

use std::net::SocketAddr;

/// Upstreams from resolv.conf text: each `nameserver` address, on port 53. An
/// explicit port (`ADDR:PORT`, `[V6]:PORT`) is accepted too, for a resolver on
/// another port; libc resolvers skip such lines, so a file shared with them should
/// not use it.
pub fn nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let line = line.split(['#', ';']).next()?.trim();
            let mut words = line.split_whitespace();
            if words.next()? != "nameserver" {
                return None;
            }
            // A link-local IPv6 address may carry a zone (`fe80::1%eth0`); drop it.
            let address = words.next()?;
            let address = match address.split_once('%') {
                Some((ip, zone)) => match zone.split_once(']') {
                    Some((_, port)) => format!("{ip}]{port}"),
                    None => ip.to_string(),
                },
                None => address.to_string(),
            };
            crate::config::parse_upstream(&address).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nameservers_and_skips_the_rest() {
        let text = "# generated\nsearch default.svc.cluster.local svc.cluster.local\n\
                    nameserver 10.0.0.2\nnameserver  fd00::53 # second\n; nameserver 1.1.1.1\n\
                    options ndots:5\nnameserver bogus\nnameserver fe80::1%eth0\n";
        assert_eq!(
            nameservers(text),
            vec![
                "10.0.0.2:53".parse::<SocketAddr>().unwrap(),
                "[fd00::53]:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap(),
            ]
        );
    }

    #[test]
    fn explicit_ports_are_kept() {
        let text = "nameserver 127.0.0.1:5300\nnameserver [::1]:5301\n\
                    nameserver [fe80::1%eth0]:5302\nnameserver 10.0.0.1:99999\n";
        assert_eq!(
            nameservers(text),
            vec![
                "127.0.0.1:5300".parse::<SocketAddr>().unwrap(),
                "[::1]:5301".parse().unwrap(),
                "[fe80::1]:5302".parse().unwrap(),
            ]
        );
    }
}
