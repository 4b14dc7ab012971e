//! Client addresses behind proxies: trusted address ranges and the `X-Forwarded-For` rule
//! shared by the identity provider and the gateway.

use std::net::IpAddr;

/// An address range: an IP, or `IP/bits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `fd00::/8` or a single address.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (address, bits) = match text.split_once('/') {
            Some((address, bits)) => (address, Some(bits)),
            None => (text, None),
        };
        let network: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR range"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(bits) => bits
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("{text:?} has an invalid prefix length"))?,
        };
        Ok(Cidr { network, bits })
    }

    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, normalize(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.bits)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is; any other address unchanged.
pub fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is in one of the `trusted` ranges.
pub fn is_trusted(ip: IpAddr, trusted: &[Cidr]) -> bool {
    trusted.iter().any(|range| range.contains(ip))
}

/// The client's address: the TCP peer, or — when the peer is a trusted proxy — the
/// right-most address of the `X-Forwarded-For` chain (`forwarded_for`: the header's values
/// in order, each a comma-separated list) that is not itself a trusted proxy. Anything
/// left of an address we cannot parse is ignored (a client can write anything there).
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &[Cidr],
) -> IpAddr {
    let peer = normalize(peer);
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let chain: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for entry in chain.iter().rev() {
        let Ok(ip) = entry.parse::<IpAddr>() else {
            break;
        };
        client = normalize(ip);
        if !is_trusted(client, trusted) {
            break;
        }
    }
    client
}

/// Where the provider may connect when it fetches a URL a client registered (a `jwks_uri`):
/// never to an address inside the deployment's own networks, which would let a client make
/// the provider reach its metadata service or internal admin ports (SSRF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddressPolicy {
    /// Loopback (127/8, ::1) is reachable: for tests and single-host development only.
    pub allow_loopback: bool,
}

impl AddressPolicy {
    /// Whether a connection to `ip` is allowed: public unicast addresses only, and loopback
    /// when [`AddressPolicy::allow_loopback`] is set. Refused: unspecified, private
    /// (RFC 1918, fc00::/7), shared (100.64/10), link-local (169.254/16 with the cloud
    /// metadata address, fe80::/10), multicast, broadcast, documentation and reserved
    /// ranges, and IPv4-mapped forms of all of them.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = normalize(ip);
        if ip.is_loopback() {
            return self.allow_loopback;
        }
        const REFUSED: [&str; 18] = [
            "0.0.0.0/8",
            "10.0.0.0/8",
            "100.64.0.0/10",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.0.0.0/24",
            "192.0.2.0/24",
            "192.168.0.0/16",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "224.0.0.0/3",
            "::/128",
            "64:ff9b::/96",
            "100::/64",
            "2001:db8::/32",
            "fc00::/7",
            "fe80::/10",
        ];
        let refused = REFUSED
            .iter()
            .filter_map(|range| Cidr::parse(range).ok())
            .any(|range| range.contains(ip));
        let multicast_v6 = matches!(ip, IpAddr::V6(v6) if v6.is_multicast());
        !refused && !multicast_v6
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ranges() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.1")));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains(ip("127.0.0.1")));
        assert!(!one.contains(ip("127.0.0.2")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(Cidr::parse("1.2.3.4/40").is_err());
        assert!(Cidr::parse("nope").is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        // An untrusted peer's header is ignored.
        assert_eq!(
            client_ip(ip("203.0.113.9"), ["198.51.100.1"], &trusted),
            ip("203.0.113.9")
        );
        // Through one trusted proxy.
        assert_eq!(
            client_ip(ip("10.0.0.2"), ["198.51.100.1"], &trusted),
            ip("198.51.100.1")
        );
        // A client-written prefix is skipped: the right-most untrusted address counts.
        assert_eq!(
            client_ip(ip("10.0.0.2"), ["1.1.1.1, 198.51.100.1", "10.0.0.7"], &trusted),
            ip("198.51.100.1")
        );
        // Garbage stops the walk at the last good address.
        assert_eq!(
            client_ip(ip("10.0.0.2"), ["bogus, 10.0.0.5"], &trusted),
            ip("10.0.0.5")
        );
        // No header: the proxy itself.
        assert_eq!(client_ip(ip("10.0.0.2"), [], &trusted), ip("10.0.0.2"));
    }

    #[test]
    fn fetches_reach_only_public_addresses_and_loopback_when_allowed() {
        let strict = AddressPolicy::default();
        let loopback = AddressPolicy { allow_loopback: true };
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(strict.allows(ip(public)), "{public}");
        }
        for internal in [
            "127.0.0.1",
            "127.3.4.5",
            "::1",
            "::ffff:127.0.0.1",
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::",
            "fd00::1",
            "fe80::1",
            "224.0.0.1",
            "255.255.255.255",
            "ff02::1",
        ] {
            assert!(!strict.allows(ip(internal)), "{internal}");
        }
        assert!(loopback.allows(ip("127.0.0.1")) && loopback.allows(ip("::1")));
        assert!(!loopback.allows(ip("169.254.169.254")) && !loopback.allows(ip("10.0.0.1")));
    }
}
