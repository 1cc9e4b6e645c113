//! Who may send callbacks: an IP allowlist (Adjust's ranges by default) and the trusted proxies
//! whose `X-Forwarded-For` is believed.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

/// Adjust's callback source ranges: the union of the ranges Adjust documents for its callback
/// servers and those production receivers allow in practice.
pub const ADJUST_RANGES: &[&str] = &[
    "178.162.216.64/26",
    "178.162.216.128/26",
    "178.162.216.192/26",
    "178.162.200.128/26",
    "178.162.219.0/24",
    "23.19.48.0/22",
    "86.48.44.0/22",
    "173.208.60.0/23",
    "185.84.200.0/23",
    "185.129.40.0/22",
    "185.151.204.0/22",
    "185.230.36.0/22",
    "185.255.24.0/22",
    "195.244.54.0/24",
    "199.101.182.0/23",
    "2a0b:14c0::/32",
];

/// A set of networks. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) match as IPv4.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    nets: Vec<IpNetwork>,
}

/// Unwraps `::ffff:a.b.c.d` into `a.b.c.d`.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Allowlist {
    pub fn new(nets: Vec<IpNetwork>) -> Self {
        Allowlist { nets }
    }

    /// Adjust's ranges.
    pub fn adjust() -> Self {
        Allowlist::new(
            ADJUST_RANGES
                .iter()
                .map(|n| n.parse().expect("valid built-in range"))
                .collect(),
        )
    }

    pub fn extend(&mut self, nets: impl IntoIterator<Item = IpNetwork>) {
        self.nets.extend(nets);
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn len(&self) -> usize {
        self.nets.len()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// Pairs of networks, one from each list, that share addresses.
    pub fn overlaps<'a>(&'a self, other: &'a Allowlist) -> Vec<(IpNetwork, IpNetwork)> {
        let mut out = Vec::new();
        for a in &self.nets {
            for b in &other.nets {
                if a.contains(b.network()) || b.contains(a.network()) {
                    out.push((*a, *b));
                }
            }
        }
        out
    }
}

/// The client of a request: the TCP peer, unless the peer is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` entry that is not a trusted proxy. `None` (the request is then
/// refused) when a trusted peer sends no `X-Forwarded-For`, or an entry up to the client is not an
/// IP address: the proxy itself is never taken as the client.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a str>,
    trusted: &Allowlist,
) -> Option<IpAddr> {
    let peer = canonical(peer);
    if !trusted.contains(peer) {
        return Some(peer);
    }
    let entries: Vec<&str> = forwarded_for
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.is_empty() {
        return None;
    }
    let mut client = peer;
    for entry in entries.iter().rev() {
        let ip = canonical(parse_forwarded(entry)?);
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    Some(client)
}

/// An `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    if let Ok(sa) = entry.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|e| e.split(']').next())
        .and_then(|e| e.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn adjust_ranges_match_v4_v6_and_mapped() {
        let a = Allowlist::adjust();
        assert!(a.contains(ip("178.162.216.70")));
        assert!(a.contains(ip("::ffff:178.162.216.70")));
        assert!(a.contains(ip("2a0b:14c0:1::5")));
        assert!(!a.contains(ip("127.0.0.1")));
        assert!(!a.contains(ip("178.162.217.1")));
    }

    #[test]
    fn overlapping_ranges_are_found() {
        let nets = |v: &[&str]| Allowlist::new(v.iter().map(|n| n.parse().unwrap()).collect());
        let allow = nets(&["10.0.0.0/8", "178.162.216.64/26"]);
        assert_eq!(allow.overlaps(&nets(&["10.1.0.0/16"])).len(), 1);
        assert_eq!(allow.overlaps(&nets(&["0.0.0.0/0"])).len(), 2);
        assert!(
            allow
                .overlaps(&nets(&["127.0.0.1/32", "::1/128"]))
                .is_empty()
        );
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = Allowlist::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let xff = ["203.0.113.9, 178.162.216.70", "10.0.0.2"];
        // Peer is a trusted proxy: walk from the right, skipping trusted hops.
        assert_eq!(
            client_ip(ip("10.0.0.1"), xff.iter().copied(), &trusted),
            Some(ip("178.162.216.70"))
        );
        // Peer is not trusted: the header is ignored.
        assert_eq!(
            client_ip(ip("198.51.100.1"), xff.iter().copied(), &trusted),
            Some(ip("198.51.100.1"))
        );
        // Trusted peer without header (or an empty one): no client, not the proxy.
        assert_eq!(
            client_ip(ip("10.0.0.1"), std::iter::empty(), &trusted),
            None
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), [" , "].into_iter(), &trusted),
            None
        );
        // Garbage entry: no client.
        assert_eq!(
            client_ip(ip("10.0.0.1"), ["nonsense"].into_iter(), &trusted),
            None
        );
        // Ports and brackets.
        assert_eq!(
            client_ip(ip("10.0.0.1"), ["[2a0b:14c0::1]:443"].into_iter(), &trusted),
            Some(ip("2a0b:14c0::1"))
        );
        assert_eq!(
            client_ip(
                ip("::ffff:10.0.0.1"),
                ["178.162.216.70:1234"].into_iter(),
                &trusted
            ),
            Some(ip("178.162.216.70"))
        );
    }
}
