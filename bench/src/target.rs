//! The URL under load, restricted to loopback so that a benchmark can never flood another host.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Where the load goes: a loopback socket address and the request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The socket to connect to; always a loopback address.
    pub(crate) addr: SocketAddr,
    /// The `Host` header value, as written in the URL.
    pub(crate) authority: String,
    /// Path and query, starting with `/`.
    pub(crate) path: String,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TargetError {
    /// Only plain `http://` is spoken.
    Scheme,
    /// The host is not a literal loopback address (127.0.0.0/8, ::1) or `localhost`.
    NotLoopback(String),
    /// The URL could not be read.
    Malformed(&'static str),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scheme => f.write_str("only http:// URLs are supported"),
            Self::NotLoopback(host) => write!(
                f,
                "refusing to load {host}: the target must be 127.0.0.0/8, [::1] or localhost"
            ),
            Self::Malformed(what) => write!(f, "malformed URL: {what}"),
        }
    }
}

impl std::error::Error for TargetError {}

/// Reads `http://HOST[:PORT][/PATH]`, accepting only loopback hosts.
///
/// Names are not resolved: `localhost` means 127.0.0.1 and anything else must be an IP literal, so
/// that a resolver can never send the load elsewhere.
pub(crate) fn parse_url(url: &str) -> Result<Target, TargetError> {
    let rest = url.strip_prefix("http://").ok_or(TargetError::Scheme)?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    let (host, port) = split_host_port(authority)?;
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse::<IpAddr>()
            .map_err(|_| TargetError::NotLoopback(host.to_owned()))?
    };
    if !ip.is_loopback() {
        return Err(TargetError::NotLoopback(host.to_owned()));
    }
    Ok(Target {
        addr: SocketAddr::new(ip, port),
        authority: authority.to_owned(),
        path,
    })
}

fn split_host_port(authority: &str) -> Result<(&str, u16), TargetError> {
    if authority.is_empty() {
        return Err(TargetError::Malformed("no host"));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or(TargetError::Malformed("unclosed [ in host"))?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or(TargetError::Malformed("junk after ]"))?,
                ),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => 80,
        Some(text) => text
            .parse()
            .map_err(|_| TargetError::Malformed("bad port"))?,
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, expected: Result<(&str, &str), TargetError>) {
        let got = parse_url(url).map(|t| (t.addr.to_string(), t.path));
        let expected = expected.map(|(addr, path)| (addr.to_owned(), path.to_owned()));
        assert_eq!(got, expected, "{url}");
    }

    #[test]
    fn only_loopback_targets_are_accepted() {
        check(
            "http://127.0.0.1:8080/webhook/github",
            Ok(("127.0.0.1:8080", "/webhook/github")),
        );
        check("http://127.45.6.7:9/x?y=1", Ok(("127.45.6.7:9", "/x?y=1")));
        check("http://localhost:9000", Ok(("127.0.0.1:9000", "/")));
        check(
            "http://[::1]:9000/hooks/github",
            Ok(("[::1]:9000", "/hooks/github")),
        );
        check("http://127.0.0.1", Ok(("127.0.0.1:80", "/")));
        check("http://127.0.0.1:1?q", Ok(("127.0.0.1:1", "/?q")));

        check(
            "http://10.0.0.1:80/",
            Err(TargetError::NotLoopback("10.0.0.1".into())),
        );
        check(
            "http://0.0.0.0:80/",
            Err(TargetError::NotLoopback("0.0.0.0".into())),
        );
        check(
            "http://128.0.0.1/",
            Err(TargetError::NotLoopback("128.0.0.1".into())),
        );
        check(
            "http://example.com/",
            Err(TargetError::NotLoopback("example.com".into())),
        );
        check(
            "http://[::2]:80/",
            Err(TargetError::NotLoopback("::2".into())),
        );
        check(
            "http://[::ffff:127.0.0.1]/",
            Err(TargetError::NotLoopback("::ffff:127.0.0.1".into())),
        );
        check("https://127.0.0.1/", Err(TargetError::Scheme));
        check(
            "http://127.0.0.1:http/",
            Err(TargetError::Malformed("bad port")),
        );
        check("http:///x", Err(TargetError::Malformed("no host")));
    }
}
