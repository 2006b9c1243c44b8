//! URLs as the daemon shows them: an agent URL (or the NATS server's) often carries a credential
//! (`user:password@`, a `?token=`), filled in from the environment. `config check` prints them
//! through [`redact_url`], and the daemon's wiring hands the bus each URL's shown form for its log
//! lines and `last_error`, so that one function, held to `testdata/redaction/urls.json`, decides
//! what is hidden everywhere.

use serde::Serializer;

/// Serialises a URL the way [`redact_url`] shows it.
pub(crate) fn serialize_url<S: Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redact_url(url))
}

/// Serialises a comma-separated list of URLs (a NATS cluster's servers), each the way
/// [`redact_url`] shows it.
pub(crate) fn serialize_url_list<S: Serializer>(
    urls: &str,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let shown: Vec<String> = urls.split(',').map(redact_url).collect();
    serializer.serialize_str(&shown.join(","))
}

/// What stands in for a hidden part.
const REDACTED: &str = "[redacted]";

/// `url` with its userinfo and every query value replaced by `[redacted]`, and a fragment hidden
/// whole: `http://user:pw@host/events?token=t` becomes
/// `http://[redacted]@host/events?token=[redacted]`. Scheme, host, port, path and query names
/// stay, which is what a reader needs to tell agents apart. Where the userinfo cannot be told
/// apart from the rest (a host that is not `name[:port]`, or an `@` after a host without
/// userinfo, as a password with an unescaped `/` leaves it), everything after the scheme is
/// hidden. Without a scheme (`user:pw@host/events`), whatever comes before an `@` is hidden too.
///
/// ```
/// assert_eq!(
///     clawlet_config::redact_url("https://u:p@example.test:8443/a?x=1&y"),
///     "https://[redacted]@example.test:8443/a?x=[redacted]&[redacted]"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let mut out = String::with_capacity(url.len() + 16);
    out.push_str(scheme);
    let rest = if scheme.is_empty() {
        // Not a URL, or one missing its scheme: an `@` outside the query still ends a userinfo
        // (the last one, as a password may hold `@` or `/`).
        let end = rest.find(['?', '#']).unwrap_or(rest.len());
        match rest[..end].rfind('@') {
            Some(at) => {
                out.push_str(REDACTED);
                &rest[at..]
            }
            None => rest,
        }
    } else {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let host = match authority.rfind('@') {
            Some(at) => {
                out.push_str(REDACTED);
                out.push('@');
                &authority[at + 1..]
            }
            None => authority,
        };
        // An `@` after a host without userinfo: a password holding `/`, `?` or `#` cut the
        // authority short, and part of it reads as the host.
        let cut_short = host.len() == authority.len() && path.contains('@');
        if cut_short || !plausible_host(host) {
            out.push_str(REDACTED);
            return out;
        }
        out.push_str(host);
        path
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((rest, _)) => (rest, true),
        None => (rest, false),
    };
    match rest.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    out.push('&');
                }
                match pair.split_once('=') {
                    Some((name, _)) => {
                        out.push_str(name);
                        out.push('=');
                        out.push_str(REDACTED);
                    }
                    // A bare item may be the credential itself (`?s3cr3t`).
                    None if pair.is_empty() => {}
                    None => out.push_str(REDACTED),
                }
            }
        }
        None => out.push_str(rest),
    }
    if fragment {
        out.push('#');
        out.push_str(REDACTED);
    }
    out
}

/// Whether `host` reads as `name[:port]` or `[v6][:port]`. A password with an unescaped `/`, `?`
/// or `#` ends the authority early and leaves `user:pa` where the host should be: a port that is
/// not a number gives it away.
fn plausible_host(host: &str) -> bool {
    let (name, port) = match host.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, after)) => {
                let port = match after.strip_prefix(':') {
                    Some(port) => port,
                    None if after.is_empty() => "",
                    None => return false,
                };
                if !addr
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || ":.%".contains(c))
                {
                    return false;
                }
                ("", port)
            }
            None => return false,
        },
        None => host.split_once(':').unwrap_or((host, "")),
    };
    name.chars()
        .all(|c| c.is_alphanumeric() || "-._%".contains(c))
        && port.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_are_redacted_as_the_shared_table_says() {
        let table: Vec<serde_json::Value> = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/redaction/urls.json"
        )))
        .unwrap();
        assert!(table.len() >= 10, "{} cases", table.len());
        for case in &table {
            let (url, expected) = (case["url"].as_str().unwrap(), case["shown"].as_str());
            assert_eq!(Some(redact_url(url).as_str()), expected, "{url}");
            for secret in case["secrets"].as_array().unwrap() {
                let secret = secret.as_str().unwrap();
                assert!(
                    !redact_url(url).contains(secret),
                    "{secret} shown for {url}"
                );
            }
        }
    }

    #[test]
    fn each_server_of_a_list_is_redacted() {
        let mut shown = serde_json::Serializer::new(Vec::new());
        super::serialize_url_list("nats://a:pw1@h1:4222,nats://h2:4222?t=tk", &mut shown).unwrap();
        assert_eq!(
            String::from_utf8(shown.into_inner()).unwrap(),
            r#""nats://[redacted]@h1:4222,nats://h2:4222?t=[redacted]""#
        );
    }
}
