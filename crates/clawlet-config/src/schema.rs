//! The known keys at every level of the file, so that every unknown key is reported at once with the
//! nearest known spelling. serde's `deny_unknown_fields` would stop at the first one.

use figment::value::Value;

use crate::error::ConfigError;

/// What a value at some key path must look like, as far as key names go.
#[derive(Debug)]
pub(crate) enum Shape {
    /// A scalar or a list of scalars: no keys to check.
    Leaf,
    /// A mapping with exactly these keys.
    Struct(&'static [(&'static str, Shape)]),
    /// A mapping with user-chosen keys (handler and agent names, headers).
    MapOf(&'static Shape),
    /// A list of values of one shape.
    ListOf(&'static Shape),
}

const RATE_LIMIT: Shape = Shape::Struct(&[
    ("enabled", Shape::Leaf),
    ("max_requests", Shape::Leaf),
    ("window_seconds", Shape::Leaf),
]);

const HANDLER: Shape = Shape::Struct(&[
    ("enabled", Shape::Leaf),
    ("path", Shape::Leaf),
    ("kind", Shape::Leaf),
    ("secret", Shape::Leaf),
    ("secrets", Shape::Leaf),
    ("verify", Shape::Leaf),
    ("events", Shape::Leaf),
    ("response_type", Shape::Leaf),
    ("tolerance_seconds", Shape::Leaf),
    ("allow_legacy_sha1", Shape::Leaf),
    ("signature_header", Shape::Leaf),
    ("algorithm", Shape::Leaf),
    ("encoding", Shape::Leaf),
    ("prefix", Shape::Leaf),
    ("event_type_field", Shape::Leaf),
    ("delivery_id_header", Shape::Leaf),
    ("delivery_id_field", Shape::Leaf),
    ("signature", SIGNATURE),
    ("public_key", Shape::Leaf),
    ("public_url", Shape::Leaf),
    ("verify_token", Shape::Leaf),
    ("client_state", Shape::Leaf),
    ("allowed_ips", Shape::Leaf),
    ("rate_limit", RATE_LIMIT),
]);

const SIGNATURE: Shape = Shape::Struct(&[
    ("header", Shape::Leaf),
    ("prefix", Shape::Leaf),
    ("encoding", Shape::Leaf),
    ("algorithm", Shape::Leaf),
    ("signed_payload", Shape::Leaf),
    ("timestamp_header", Shape::Leaf),
    ("timestamp_unit", Shape::Leaf),
    ("id_header", Shape::Leaf),
    ("separator", Shape::Leaf),
]);

const AGENT: Shape = Shape::Struct(&[
    ("kind", Shape::Leaf),
    ("command", Shape::Leaf),
    ("url", Shape::Leaf),
    ("secret", Shape::Leaf),
    ("headers", Shape::MapOf(&Shape::Leaf)),
    ("timeout", Shape::Leaf),
    ("concurrency", Shape::Leaf),
    ("max_attempts", Shape::Leaf),
    ("start", Shape::Leaf),
]);

const ROUTE: Shape = Shape::Struct(&[
    ("handlers", Shape::Leaf),
    ("events", Shape::Leaf),
    ("agent", Shape::Leaf),
]);

/// The global rate limit also says how IPv6 clients are keyed, for every limiter.
const GLOBAL_RATE_LIMIT: Shape = Shape::Struct(&[
    ("enabled", Shape::Leaf),
    ("max_requests", Shape::Leaf),
    ("window_seconds", Shape::Leaf),
    ("ipv6_prefix", Shape::Leaf),
]);

pub(crate) const WEBHOOKS: Shape = Shape::Struct(&[
    ("enabled", Shape::Leaf),
    ("host", Shape::Leaf),
    ("port", Shape::Leaf),
    ("rate_limit", GLOBAL_RATE_LIMIT),
    (
        "ssl",
        Shape::Struct(&[
            ("enabled", Shape::Leaf),
            ("cert", Shape::Leaf),
            ("key", Shape::Leaf),
        ]),
    ),
    ("allowed_ips", Shape::Leaf),
    ("trusted_proxies", Shape::Leaf),
    ("max_body_bytes", Shape::Leaf),
    (
        "logging",
        Shape::Struct(&[
            ("enabled", Shape::Leaf),
            ("level", Shape::Leaf),
            ("include_headers", Shape::Leaf),
            ("include_payload", Shape::Leaf),
            ("format", Shape::Leaf),
        ]),
    ),
    (
        "limits",
        Shape::Struct(&[
            ("header_read_timeout", Shape::Leaf),
            ("request_timeout", Shape::Leaf),
            ("max_connections", Shape::Leaf),
            ("max_header_bytes", Shape::Leaf),
            ("max_inflight_body_bytes", Shape::Leaf),
        ]),
    ),
    (
        "queue",
        Shape::Struct(&[
            ("backend", Shape::Leaf),
            ("path", Shape::Leaf),
            ("dedup_window", Shape::Leaf),
            ("max_pending", Shape::Leaf),
            ("retention", Shape::Leaf),
            (
                "nats",
                Shape::Struct(&[
                    ("url", Shape::Leaf),
                    ("stream", Shape::Leaf),
                    ("duplicate_window", Shape::Leaf),
                    ("replicas", Shape::Leaf),
                    ("max_bytes", Shape::Leaf),
                ]),
            ),
        ]),
    ),
    ("handlers", Shape::MapOf(&HANDLER)),
    ("agents", Shape::MapOf(&AGENT)),
    ("routes", Shape::ListOf(&ROUTE)),
    (
        "telemetry",
        Shape::Struct(&[(
            "otlp",
            Shape::Struct(&[("endpoint", Shape::Leaf), ("service_name", Shape::Leaf)]),
        )]),
    ),
    (
        "admin",
        Shape::Struct(&[
            ("enabled", Shape::Leaf),
            ("host", Shape::Leaf),
            ("port", Shape::Leaf),
            ("token", Shape::Leaf),
        ]),
    ),
]);

/// The one top-level key this daemon reads.
pub(crate) const ROOT_KEY: &str = "webhooks";

/// `parent.key`, or `key` at the top.
pub(crate) fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// Checks the top level: `webhooks` is walked; other keys belong to the rest of Clawlet's
/// `config.yaml` and are left alone with a warning, unless they look like a misspelt `webhooks`.
pub(crate) fn check_root(
    root: &figment::value::Dict,
    origin: &str,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
) {
    for (key, value) in root {
        if key == ROOT_KEY {
            check_keys(value, &WEBHOOKS, ROOT_KEY, origin, errors);
        } else if distance(key, ROOT_KEY) <= 2 {
            errors.push(ConfigError::UnknownKey {
                origin: origin.to_owned(),
                key: key.clone(),
                suggestion: Some(ROOT_KEY.to_owned()),
            });
        } else {
            warnings.push(format!(
                "{origin}: {key}: not read by clawlet-webhookd (only `webhooks:` is); left alone"
            ));
        }
    }
}

/// Reports every key of `value` that `shape` does not know, recursively.
pub(crate) fn check_keys(
    value: &Value,
    shape: &Shape,
    path: &str,
    origin: &str,
    errors: &mut Vec<ConfigError>,
) {
    match (shape, value) {
        (Shape::Struct(fields), Value::Dict(_, dict)) => {
            for (key, child) in dict {
                let here = child_path(path, key);
                match fields.iter().find(|(name, _)| name == key) {
                    Some((_, inner)) => check_keys(child, inner, &here, origin, errors),
                    None => errors.push(ConfigError::UnknownKey {
                        origin: origin.to_owned(),
                        key: here,
                        suggestion: suggest(key, fields.iter().map(|(name, _)| *name)),
                    }),
                }
            }
        }
        (Shape::MapOf(inner), Value::Dict(_, dict)) => {
            for (key, child) in dict {
                check_keys(child, inner, &child_path(path, key), origin, errors);
            }
        }
        (Shape::ListOf(inner), Value::Array(_, items)) => {
            for (i, child) in items.iter().enumerate() {
                check_keys(child, inner, &format!("{path}[{i}]"), origin, errors);
            }
        }
        // A value of the wrong type is reported by typed extraction, with the expected type.
        _ => {}
    }
}

/// The nearest candidate within an edit distance of 2, if any; ties go to the first candidate.
pub(crate) fn suggest<'a>(key: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    candidates
        .map(|c| (distance(key, c), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_owned())
}

/// Levenshtein distance over chars.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance() {
        let check =
            |a: &str, b: &str, expected: usize| assert_eq!(distance(a, b), expected, "{a} / {b}");
        check("", "", 0);
        check("port", "port", 0);
        check("prot", "port", 2);
        check("secert", "secret", 2);
        check("secrets", "secret", 1);
        check("", "abc", 3);
        check("kitten", "sitting", 3);
    }

    #[test]
    fn suggestions() {
        let keys = ["enabled", "host", "port", "handlers"];
        let check = |key: &str, expected: Option<&str>| {
            assert_eq!(
                suggest(key, keys.iter().copied()).as_deref(),
                expected,
                "{key}"
            );
        };
        check("prot", Some("port"));
        check("hots", Some("host"));
        check("handler", Some("handlers"));
        check("enable", Some("enabled"));
        check("completely_different", None);
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::raw::{RawAgent, RawConfig, RawHandler, RawRateLimit, RawRoute};

    /// Every key the schema lists is a field serde reads, and every field is listed: walks a raw
    /// config with every optional value present and compares the key sets level by level.
    fn assert_same_keys(value: &Value, shape: &Shape, path: &str) {
        match (shape, value) {
            (Shape::Struct(fields), Value::Dict(_, dict)) => {
                let mut listed: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
                let mut actual: Vec<&str> = dict.keys().map(String::as_str).collect();
                listed.sort_unstable();
                actual.sort_unstable();
                assert_eq!(listed, actual, "keys at {path}");
                for (k, inner) in *fields {
                    assert_same_keys(&dict[*k], inner, &child_path(path, k));
                }
            }
            (Shape::MapOf(inner), Value::Dict(_, dict)) => {
                assert!(!dict.is_empty(), "{path} needs an entry to compare");
                for (k, v) in dict {
                    assert_same_keys(v, inner, &child_path(path, k));
                }
            }
            (Shape::ListOf(inner), Value::Array(_, items)) => {
                assert!(!items.is_empty(), "{path} needs an item to compare");
                for v in items {
                    assert_same_keys(v, inner, path);
                }
            }
            (Shape::Leaf, _) => {}
            (shape, value) => panic!("{path}: shape {shape:?} does not fit {value:?}"),
        }
    }

    #[test]
    fn schema_lists_exactly_the_fields_serde_reads() {
        let mut raw = RawConfig::default();
        let w = &mut raw.webhooks;
        w.rate_limit.ipv6_prefix = Some(64);
        w.limits.max_inflight_body_bytes = Some(1);
        w.queue.nats.max_bytes = Some(1);
        w.ssl.cert = Some("c".into());
        w.ssl.key = Some("k".into());
        w.telemetry.otlp.endpoint = Some("http://collector".into());
        w.admin.token = Some("t".into());
        w.handlers.insert(
            "h".into(),
            RawHandler {
                path: Some("/p".into()),
                kind: Some("custom".into()),
                secret: Some("s".into()),
                secrets: Some(vec!["s".into()]),
                prefix: Some("x=".into()),
                delivery_id_header: Some("X-Id".into()),
                delivery_id_field: Some("/id".into()),
                tolerance_seconds: Some(1),
                signature: Some(crate::raw::RawSignature {
                    header: Some("h".into()),
                    prefix: Some("p".into()),
                    encoding: Some("hex".into()),
                    algorithm: Some("hmac-sha256".into()),
                    signed_payload: Some("{body}".into()),
                    timestamp_header: Some("t".into()),
                    timestamp_unit: Some("seconds".into()),
                    id_header: Some("i".into()),
                    separator: Some(",".into()),
                }),
                public_key: Some("k".into()),
                public_url: Some("u".into()),
                verify_token: Some("v".into()),
                client_state: Some("c".into()),
                allowed_ips: Some(vec![]),
                rate_limit: Some(RawRateLimit::default()),
                ..RawHandler::default()
            },
        );
        w.agents.insert(
            "a".into(),
            RawAgent {
                kind: Some("http".into()),
                command: Some(vec![]),
                url: Some("http://x".into()),
                secret: Some("s".into()),
                headers: Some([("X-A".to_owned(), "b".to_owned())].into()),
                timeout: Some("1s".into()),
                start: Some("all".into()),
                ..RawAgent::default()
            },
        );
        w.routes.push(RawRoute {
            agent: Some("a".into()),
            ..RawRoute::default()
        });
        let Value::Dict(_, root) = Value::serialize(&raw).unwrap() else {
            panic!("not a map")
        };
        assert_eq!(root.keys().collect::<Vec<_>>(), [ROOT_KEY]);
        assert_same_keys(&root[ROOT_KEY], &WEBHOOKS, ROOT_KEY);
    }
}
