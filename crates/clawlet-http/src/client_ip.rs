//! Which address a request comes from, and whether that address may send.
//!
//! The socket peer is the truth unless it is one of our own reverse proxies; only then are
//! `X-Forwarded-For` and `Forwarded` read, from the right, skipping our proxies, because every
//! entry to the left of the first untrusted one could have been written by the client itself.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::header::FORWARDED;
use ipnet::{IpNet, Ipv4Net};

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// A set of networks; written once at configuration time, read on every request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NetSet(Vec<IpNet>);

impl NetSet {
    /// IPv4-mapped IPv6 networks (`::ffff:192.0.2.0/120`) become their IPv4 form, so that they
    /// match the canonical addresses [`canonical`] produces.
    pub(crate) fn new(nets: &[IpNet]) -> Self {
        Self(nets.iter().map(|net| canonical_net(*net)).collect())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Empty means "no restriction".
    pub(crate) fn allows(&self, ip: IpAddr) -> bool {
        self.is_empty() || self.contains(ip)
    }
}

fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && v6.prefix_len() >= 96
        && let Ok(v4net) = Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(v4net);
    }
    net
}

/// An IPv4 client reaching a dual-stack socket shows up as `::ffff:a.b.c.d`; allowlists and rate
/// limits must see the same key either way.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The address the request comes from: the peer, or what our trusted proxies say the peer was.
///
/// When both `X-Forwarded-For` and `Forwarded` are present and name different clients, neither
/// is believed: a proxy writes one of them, and the other may be the client's own forgery.
pub(crate) fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &NetSet) -> IpAddr {
    let peer = canonical(peer);
    if trusted.is_empty() || !trusted.contains(peer) {
        return peer;
    }
    let xff = joined(headers, X_FORWARDED_FOR)
        .map(|value| walk(peer, value.split(',').map(parse_hop).rev(), trusted));
    let fwd = joined(headers, FORWARDED.as_str())
        .map(|value| walk(peer, value.split(',').map(forwarded_for).rev(), trusted));
    match (xff, fwd) {
        (Some(a), Some(b)) if a != b => peer,
        (Some(ip), _) | (None, Some(ip)) => ip,
        (None, None) => peer,
    }
}

/// The right-most hop not in `trusted`; an unreadable hop stops the walk at the last hop we
/// could read, since nothing to its left can be attributed to anyone.
fn walk(
    peer: IpAddr,
    hops_right_to_left: impl Iterator<Item = Option<IpAddr>>,
    trusted: &NetSet,
) -> IpAddr {
    let mut client = peer;
    for hop in hops_right_to_left {
        let Some(ip) = hop else { break };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    client
}

/// All instances of a header, in order, as one comma-separated list (RFC 9110 section 5.3).
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut out: Option<String> = None;
    for value in headers.get_all(name) {
        let text = value.to_str().unwrap_or("\u{fffd}");
        match &mut out {
            Some(s) => {
                s.push(',');
                s.push_str(text);
            }
            None => out = Some(text.to_owned()),
        }
    }
    out
}

/// One `X-Forwarded-For` entry: a bare address, or one with a port as some proxies write it.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim().trim_matches('"');
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sock) = entry.parse::<SocketAddr>() {
        return Some(canonical(sock.ip()));
    }
    let bracketed = entry.strip_prefix('[')?.strip_suffix(']')?;
    bracketed.parse::<IpAddr>().ok().map(canonical)
}

/// The `for=` node of one `Forwarded` element (RFC 7239); `unknown` and obfuscated names are
/// unreadable.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_hop(value))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> NetSet {
        NetSet::new(
            &list
                .iter()
                .map(|n| n.parse().unwrap())
                .collect::<Vec<IpNet>>(),
        )
    }

    fn check(peer: &str, headers: &[(&str, &str)], trusted: &[&str], expected: &str) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let got = resolve(peer.parse().unwrap(), &map, &nets(trusted));
        assert_eq!(
            got,
            expected.parse::<IpAddr>().unwrap(),
            "peer {peer}, headers {headers:?}, trusted {trusted:?}"
        );
    }

    const PROXY: &[&str] = &["10.0.0.0/8"];

    #[test]
    fn client_ip_resolution() {
        // No trusted proxies: headers are never read.
        check(
            "203.0.113.5",
            &[("x-forwarded-for", "1.2.3.4")],
            &[],
            "203.0.113.5",
        );
        // Peer not trusted: headers ignored.
        check(
            "203.0.113.5",
            &[("x-forwarded-for", "1.2.3.4")],
            PROXY,
            "203.0.113.5",
        );
        // Trusted peer: the right-most untrusted hop.
        check(
            "10.0.0.1",
            &[("x-forwarded-for", "1.2.3.4")],
            PROXY,
            "1.2.3.4",
        );
        check(
            "10.0.0.1",
            &[("x-forwarded-for", "6.6.6.6, 1.2.3.4")],
            PROXY,
            "1.2.3.4",
        );
        check(
            "10.0.0.1",
            &[("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.2")],
            PROXY,
            "1.2.3.4",
        );
        // Several header instances form one list.
        check(
            "10.0.0.1",
            &[
                ("x-forwarded-for", "6.6.6.6"),
                ("x-forwarded-for", "1.2.3.4, 10.9.9.9"),
            ],
            PROXY,
            "1.2.3.4",
        );
        // Every hop trusted: the left-most one is the client.
        check(
            "10.0.0.1",
            &[("x-forwarded-for", "10.1.1.1, 10.2.2.2")],
            PROXY,
            "10.1.1.1",
        );
        // Trusted peer without headers: the peer.
        check("10.0.0.1", &[], PROXY, "10.0.0.1");
        // Garbage stops the walk at the last readable hop.
        check(
            "10.0.0.1",
            &[("x-forwarded-for", "1.2.3.4, nonsense")],
            PROXY,
            "10.0.0.1",
        );
        check(
            "10.0.0.1",
            &[("x-forwarded-for", "nonsense, 10.3.3.3")],
            PROXY,
            "10.3.3.3",
        );
        check("10.0.0.1", &[("x-forwarded-for", "")], PROXY, "10.0.0.1");
        // Ports and brackets as some proxies write them.
        check(
            "10.0.0.1",
            &[("x-forwarded-for", "1.2.3.4:5678")],
            PROXY,
            "1.2.3.4",
        );
        check(
            "10.0.0.1",
            &[("x-forwarded-for", "[2001:db8::1]:443")],
            PROXY,
            "2001:db8::1",
        );
        check(
            "10.0.0.1",
            &[("x-forwarded-for", "[2001:db8::1]")],
            PROXY,
            "2001:db8::1",
        );
        check(
            "10.0.0.1",
            &[("x-forwarded-for", "2001:db8::1")],
            PROXY,
            "2001:db8::1",
        );
        // IPv4-mapped IPv6 is normalised, both for the peer and for hops.
        check("::ffff:203.0.113.5", &[], &[], "203.0.113.5");
        check(
            "::ffff:10.0.0.1",
            &[("x-forwarded-for", "::ffff:1.2.3.4")],
            PROXY,
            "1.2.3.4",
        );
        check(
            "10.0.0.1",
            &[("x-forwarded-for", "1.2.3.4")],
            &["::ffff:10.0.0.0/104"],
            "1.2.3.4",
        );
        // Forwarded (RFC 7239).
        check(
            "10.0.0.1",
            &[("forwarded", "for=1.2.3.4")],
            PROXY,
            "1.2.3.4",
        );
        check(
            "10.0.0.1",
            &[(
                "forwarded",
                "for=6.6.6.6, for=1.2.3.4;proto=https;by=10.0.0.1",
            )],
            PROXY,
            "1.2.3.4",
        );
        check(
            "10.0.0.1",
            &[("forwarded", "For=\"[2001:db8:cafe::17]:4711\"")],
            PROXY,
            "2001:db8:cafe::17",
        );
        check(
            "10.0.0.1",
            &[("forwarded", "for=unknown")],
            PROXY,
            "10.0.0.1",
        );
        check(
            "10.0.0.1",
            &[("forwarded", "for=_hidden, for=10.4.4.4")],
            PROXY,
            "10.4.4.4",
        );
        check(
            "10.0.0.1",
            &[("forwarded", "proto=https")],
            PROXY,
            "10.0.0.1",
        );
        // Both headers agreeing: believed; disagreeing: neither.
        check(
            "10.0.0.1",
            &[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=1.2.3.4")],
            PROXY,
            "1.2.3.4",
        );
        check(
            "10.0.0.1",
            &[("x-forwarded-for", "6.6.6.6"), ("forwarded", "for=1.2.3.4")],
            PROXY,
            "10.0.0.1",
        );
    }

    #[test]
    fn allowlists() {
        fn check(list: &[&str], ip: &str, expected: bool) {
            let set = nets(list);
            assert_eq!(
                set.allows(canonical(ip.parse().unwrap())),
                expected,
                "{list:?} {ip}"
            );
        }
        check(&[], "198.51.100.1", true);
        check(&["192.0.2.0/24"], "192.0.2.77", true);
        check(&["192.0.2.0/24"], "192.0.3.1", false);
        check(&["192.0.2.0/24"], "::ffff:192.0.2.77", true);
        check(&["::ffff:192.0.2.0/120"], "192.0.2.77", true);
        check(&["::ffff:192.0.2.0/120"], "192.0.3.77", false);
        check(&["2001:db8::/32"], "2001:db8:1::1", true);
        check(&["2001:db8::/32"], "192.0.2.1", false);
        check(&["192.0.2.1/32", "2001:db8::/32"], "192.0.2.1", true);
        check(&["0.0.0.0/0"], "8.8.8.8", true);
    }
}
