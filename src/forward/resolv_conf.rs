//! The `nameserver` lines of a resolv.conf file.

use std::net::{IpAddr, SocketAddr};

/// Upstreams from resolv.conf text: each `nameserver` address on port 53.
pub fn nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let line = line.split(['#', ';']).next()?.trim();
            let mut words = line.split_whitespace();
            if words.next()? != "nameserver" {
                return None;
            }
            // A link-local IPv6 address may carry a zone (`fe80::1%eth0`); drop it.
            let address = words.next()?.split('%').next()?;
            address
                .parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, 53))
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
                    options ndots:5\nnameserver bogus\n";
        assert_eq!(
            nameservers(text),
            vec![
                "10.0.0.2:53".parse::<SocketAddr>().unwrap(),
                "[fd00::53]:53".parse().unwrap()
            ]
        );
    }
}
