//! Which address a request comes from, and whether that address may send.
//!
//! The socket peer is the truth unless it is one of our own reverse proxies; only then are
//! `X-Forwarded-For` and `Forwarded` read, from the right, skipping our proxies, because every
//! entry to the left of the first untrusted one could have been written by the client itself.
//! A request from one of our proxies whose headers do not name its client is refused: taking the
//! proxy's own address instead would let any client borrow it, with its allowlist entry and its
//! rate-limit bucket.

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

/// Why a request from a trusted proxy has no client address we can believe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unresolved {
    /// Neither `X-Forwarded-For` nor `Forwarded` was sent.
    Missing,
    /// A hop we had to read is empty, `unknown`, an obfuscated name or not an address.
    Unreadable,
    /// Both headers are present and name different clients.
    Conflict,
}

impl Unresolved {
    /// The reason in the request log and the metrics label.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::Missing => "forwarded_missing",
            Self::Unreadable => "forwarded_unreadable",
            Self::Conflict => "forwarded_conflict",
        }
    }
}

/// The address the request comes from: the peer, or what our trusted proxies say the peer was.
///
/// A trusted proxy's own address is never the answer: when its forwarding headers are missing,
/// unreadable, or disagree with each other (a proxy writes one of them, and the other may be the
/// client's own forgery), there is no client address, and the caller refuses the request.
pub(crate) fn resolve(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &NetSet,
) -> Result<IpAddr, Unresolved> {
    let peer = canonical(peer);
    if trusted.is_empty() || !trusted.contains(peer) {
        return Ok(peer);
    }
    let xff = joined(headers, X_FORWARDED_FOR)
        .map(|value| walk(value.split(',').map(parse_hop).rev(), trusted));
    let fwd = joined(headers, FORWARDED.as_str())
        .map(|value| walk(value.split(',').map(forwarded_for).rev(), trusted));
    match (xff, fwd) {
        (None, None) => Err(Unresolved::Missing),
        (Some(Err(err)), _) | (_, Some(Err(err))) => Err(err),
        (Some(Ok(a)), Some(Ok(b))) if a != b => Err(Unresolved::Conflict),
        (Some(Ok(ip)), _) | (None, Some(Ok(ip))) => Ok(ip),
    }
}

/// The right-most hop not in `trusted`, or the left-most hop when every one is trusted (our own
/// proxies vouch for it). A hop that cannot be read before an untrusted one is found makes the
/// whole list unreadable: the hops to its left cannot be attributed to anyone. Hops to the left
/// of the first untrusted one were written by the client and are never read.
fn walk(
    hops_right_to_left: impl Iterator<Item = Option<IpAddr>>,
    trusted: &NetSet,
) -> Result<IpAddr, Unresolved> {
    let mut client = None;
    for hop in hops_right_to_left {
        let ip = hop.ok_or(Unresolved::Unreadable)?;
        client = Some(ip);
        if !trusted.contains(ip) {
            break;
        }
    }
    client.ok_or(Unresolved::Unreadable)
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

/// The `for=` node of one `Forwarded` element (RFC 7239); an element without one, `unknown`
/// and obfuscated names (`_hidden`) are unreadable.
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

    /// `expected` is an address, or the code of the reason there is none.
    fn check(peer: &str, headers: &[(&str, &str)], trusted: &[&str], expected: &str) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let got = match resolve(peer.parse().unwrap(), &map, &nets(trusted)) {
            Ok(ip) => ip.to_string(),
            Err(reason) => reason.code().to_owned(),
        };
        assert_eq!(
            got, expected,
            "peer {peer}, headers {headers:?}, trusted {trusted:?}"
        );
    }

    /// Peer, headers, trusted proxies, and the address or refusal expected.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str], &'a str);

    const PROXY: &[&str] = &["10.0.0.0/8"];
    const XFF: &str = "x-forwarded-for";
    const FWD: &str = "forwarded";
    const MISSING: &str = "forwarded_missing";
    const UNREADABLE: &str = "forwarded_unreadable";
    const CONFLICT: &str = "forwarded_conflict";

    #[test]
    fn client_ip_resolution() {
        let cases: &[Case<'_>] = &[
            // No trusted proxies: headers are never read, whatever they hold.
            ("203.0.113.5", &[(XFF, "1.2.3.4")], &[], "203.0.113.5"),
            ("203.0.113.5", &[(XFF, "unknown")], &[], "203.0.113.5"),
            // Peer not trusted: headers ignored, even garbage or a conflict.
            ("203.0.113.5", &[(XFF, "1.2.3.4")], PROXY, "203.0.113.5"),
            ("203.0.113.5", &[(XFF, "")], PROXY, "203.0.113.5"),
            (
                "203.0.113.5",
                &[(XFF, "1.2.3.4"), (FWD, "for=5.6.7.8")],
                PROXY,
                "203.0.113.5",
            ),
            // Trusted peer: the right-most untrusted hop.
            ("10.0.0.1", &[(XFF, "1.2.3.4")], PROXY, "1.2.3.4"),
            ("10.0.0.1", &[(XFF, "6.6.6.6, 1.2.3.4")], PROXY, "1.2.3.4"),
            (
                "10.0.0.1",
                &[(XFF, "6.6.6.6, 1.2.3.4, 10.0.0.2")],
                PROXY,
                "1.2.3.4",
            ),
            // Several header instances form one list.
            (
                "10.0.0.1",
                &[(XFF, "6.6.6.6"), (XFF, "1.2.3.4, 10.9.9.9")],
                PROXY,
                "1.2.3.4",
            ),
            // Every hop trusted: the left-most one, which our own proxies vouch for.
            (
                "10.0.0.1",
                &[(XFF, "10.1.1.1, 10.2.2.2")],
                PROXY,
                "10.1.1.1",
            ),
            // Trusted peer without headers: nobody is named, and the proxy is not the answer.
            ("10.0.0.1", &[], PROXY, MISSING),
            ("10.0.0.1", &[("x-real-ip", "1.2.3.4")], PROXY, MISSING),
            // A hop we must read that is not an address: refused, never the proxy.
            ("10.0.0.1", &[(XFF, "")], PROXY, UNREADABLE),
            ("10.0.0.1", &[(XFF, " ")], PROXY, UNREADABLE),
            ("10.0.0.1", &[(XFF, "unknown")], PROXY, UNREADABLE),
            ("10.0.0.1", &[(XFF, "nonsense")], PROXY, UNREADABLE),
            ("10.0.0.1", &[(XFF, "1.2.3.4, nonsense")], PROXY, UNREADABLE),
            ("10.0.0.1", &[(XFF, "1.2.3.4,")], PROXY, UNREADABLE),
            (
                "10.0.0.1",
                &[(XFF, "nonsense, 10.3.3.3")],
                PROXY,
                UNREADABLE,
            ),
            ("10.0.0.1", &[(XFF, "1.2.3.4/32")], PROXY, UNREADABLE),
            // Garbage to the left of the client was written by the client: ignored.
            ("10.0.0.1", &[(XFF, "nonsense, 1.2.3.4")], PROXY, "1.2.3.4"),
            ("10.0.0.1", &[(XFF, "unknown, , 1.2.3.4")], PROXY, "1.2.3.4"),
            // Ports and brackets as some proxies write them.
            ("10.0.0.1", &[(XFF, "1.2.3.4:5678")], PROXY, "1.2.3.4"),
            (
                "10.0.0.1",
                &[(XFF, "[2001:db8::1]:443")],
                PROXY,
                "2001:db8::1",
            ),
            ("10.0.0.1", &[(XFF, "[2001:db8::1]")], PROXY, "2001:db8::1"),
            ("10.0.0.1", &[(XFF, "2001:db8::1")], PROXY, "2001:db8::1"),
            // IPv4-mapped IPv6 is normalised, both for the peer and for hops.
            ("::ffff:203.0.113.5", &[], &[], "203.0.113.5"),
            (
                "::ffff:10.0.0.1",
                &[(XFF, "::ffff:1.2.3.4")],
                PROXY,
                "1.2.3.4",
            ),
            (
                "10.0.0.1",
                &[(XFF, "1.2.3.4")],
                &["::ffff:10.0.0.0/104"],
                "1.2.3.4",
            ),
            ("::ffff:10.0.0.1", &[], PROXY, MISSING),
            // Forwarded (RFC 7239).
            ("10.0.0.1", &[(FWD, "for=1.2.3.4")], PROXY, "1.2.3.4"),
            (
                "10.0.0.1",
                &[(FWD, "for=6.6.6.6, for=1.2.3.4;proto=https;by=10.0.0.1")],
                PROXY,
                "1.2.3.4",
            ),
            (
                "10.0.0.1",
                &[(FWD, "For=\"[2001:db8:cafe::17]:4711\"")],
                PROXY,
                "2001:db8:cafe::17",
            ),
            ("10.0.0.1", &[(FWD, "for=unknown")], PROXY, UNREADABLE),
            ("10.0.0.1", &[(FWD, "for=_hidden")], PROXY, UNREADABLE),
            (
                "10.0.0.1",
                &[(FWD, "for=_hidden, for=10.4.4.4")],
                PROXY,
                UNREADABLE,
            ),
            (
                "10.0.0.1",
                &[(FWD, "for=_hidden, for=1.2.3.4")],
                PROXY,
                "1.2.3.4",
            ),
            ("10.0.0.1", &[(FWD, "for=")], PROXY, UNREADABLE),
            ("10.0.0.1", &[(FWD, "proto=https")], PROXY, UNREADABLE),
            ("10.0.0.1", &[(FWD, "")], PROXY, UNREADABLE),
            // Both headers agreeing: believed.
            (
                "10.0.0.1",
                &[(XFF, "1.2.3.4"), (FWD, "for=1.2.3.4")],
                PROXY,
                "1.2.3.4",
            ),
            (
                "10.0.0.1",
                &[(XFF, "6.6.6.6, 1.2.3.4"), (FWD, "for=1.2.3.4;proto=https")],
                PROXY,
                "1.2.3.4",
            ),
            // Disagreeing, or one of them unreadable: neither is believed, nor is the proxy.
            (
                "10.0.0.1",
                &[(XFF, "6.6.6.6"), (FWD, "for=1.2.3.4")],
                PROXY,
                CONFLICT,
            ),
            (
                "10.0.0.1",
                &[(XFF, "1.2.3.4"), (FWD, "for=1.2.3.4, for=6.6.6.6")],
                PROXY,
                CONFLICT,
            ),
            (
                "10.0.0.1",
                &[(XFF, "1.2.3.4"), (FWD, "for=unknown")],
                PROXY,
                UNREADABLE,
            ),
            (
                "10.0.0.1",
                &[(XFF, "unknown"), (FWD, "for=1.2.3.4")],
                PROXY,
                UNREADABLE,
            ),
            (
                "10.0.0.1",
                &[(XFF, "1.2.3.4"), (FWD, "proto=https")],
                PROXY,
                UNREADABLE,
            ),
            // The case: nginx writes X-Forwarded-For, the client adds Forwarded.
            (
                "127.0.0.1",
                &[(XFF, "203.0.113.9"), (FWD, "for=192.30.252.1")],
                &["127.0.0.1/32"],
                CONFLICT,
            ),
        ];
        for (peer, headers, trusted, expected) in cases {
            check(peer, headers, trusted, expected);
        }
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
