//! Rules on single values that the library crates enforce again when the daemon builds from the
//! configuration. They live here as well so that `config check`, start-up and reload all refuse a
//! value the same way, naming the file and the key, instead of the daemon failing later with a
//! message that names neither.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// The prefix of a Standard Webhooks secret.
const WHSEC: &str = "whsec_";

/// Standard base64 with or without padding, and no stray bits after the last byte: the alphabet
/// and rules the Standard Webhooks key decoder uses, so that a value this check passes always
/// decodes there.
const WHSEC_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a Standard Webhooks secret must look like, for error messages.
pub(crate) const WHSEC_FORMAT: &str = "expected whsec_<base64>: whsec_ followed by the standard base64 of a non-empty key, as the sender or agent shows it";

/// Why `text` is not a Standard Webhooks secret (`whsec_` and the base64 of a non-empty key), or
/// `None` when it is one. The reason never repeats the value.
pub(crate) fn whsec_problem(text: &str) -> Option<&'static str> {
    let Some(encoded) = text.strip_prefix(WHSEC) else {
        return Some("does not start with whsec_");
    };
    match WHSEC_BASE64.decode(encoded) {
        Ok(key) if key.is_empty() => Some("has no key after whsec_"),
        Ok(_) => None,
        Err(_) => Some("is not base64 after whsec_"),
    }
}

/// Whether `name` is a valid HTTP header name: one or more token characters (RFC 9110, 5.6.2).
pub(crate) fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` can be sent as an HTTP header value: no control characters (a line break
/// would end the header).
pub(crate) fn is_header_value(value: &str) -> bool {
    value.chars().all(|c| c == '\t' || !c.is_control())
}

/// The first character of a handler path that a request cannot carry as it is written.
///
/// A request line holds the path percent-encoded, and handlers are found by comparing it with the
/// configured path byte for byte. A configured `/webhook/ünï` would be logged as ready and never
/// match, and a `%` would make two spellings of one path; so a path keeps to the characters a
/// URI path carries unencoded (RFC 3986: unreserved, sub-delims, `:`, `@` and `/`).
pub(crate) fn unusable_path_char(path: &str) -> Option<char> {
    path.chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/".contains(c)))
}

/// Why `template` is not a signed-payload template a custom signature can use, or `Ok`.
/// Placeholders are `{body}`, `{timestamp}` (needs a timestamp header), `{id}` (needs an id
/// header), `{url}`, `{method}` and `{header:Name}`; a literal brace cannot be written.
pub(crate) fn template(template: &str, has_timestamp: bool, has_id: bool) -> Result<(), String> {
    let mut rest = template;
    let mut body = false;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("has a } that closes nothing".to_owned());
        }
        let Some(len) = rest[open + 1..].find('}') else {
            return Err("has a { that is never closed".to_owned());
        };
        let name = &rest[open + 1..open + 1 + len];
        match name {
            "body" => body = true,
            "url" | "method" => {}
            "timestamp" if has_timestamp => {}
            "timestamp" => {
                return Err("uses {timestamp} but no timestamp_header says where it is".to_owned());
            }
            "id" if has_id => {}
            "id" => return Err("uses {id} but no id_header says where it is".to_owned()),
            _ if name.strip_prefix("header:").is_some_and(is_header_name) => {}
            _ => {
                return Err(format!(
                    "has the unknown placeholder {{{name}}}; use {{body}}, {{timestamp}}, {{id}}, {{url}}, {{method}} or {{header:Name}}"
                ));
            }
        }
        rest = &rest[open + len + 2..];
    }
    if body {
        Ok(())
    } else {
        Err("does not sign {body}, so any body would pass; include {body}".to_owned())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn templates() {
        let cases: &[(&str, bool, bool, Result<(), &str>)] = &[
            ("{body}", false, false, Ok(())),
            ("v0:{timestamp}:{body}", true, false, Ok(())),
            ("{id}.{timestamp}.{body}", true, true, Ok(())),
            ("{method}{url}{body}{header:X-Nonce}", false, false, Ok(())),
            (
                "{timestamp}.{body}",
                false,
                false,
                Err("uses {timestamp} but no timestamp_header says where it is"),
            ),
            (
                "{id}{body}",
                false,
                false,
                Err("uses {id} but no id_header says where it is"),
            ),
            (
                "{bdy}",
                false,
                false,
                Err(
                    "has the unknown placeholder {bdy}; use {body}, {timestamp}, {id}, {url}, {method} or {header:Name}",
                ),
            ),
            ("{body", false, false, Err("has a { that is never closed")),
            ("body}", false, false, Err("has a } that closes nothing")),
            (
                "{url}",
                false,
                false,
                Err("does not sign {body}, so any body would pass; include {body}"),
            ),
        ];
        for (template, ts, id, expected) in cases {
            assert_eq!(
                super::template(template, *ts, *id),
                expected.map_err(str::to_owned),
                "{template}"
            );
        }
    }

    use super::*;

    #[test]
    fn whsec_secrets() {
        for (text, expected) in [
            ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", None),
            ("whsec_YWdlbnQ=", None),
            ("whsec_YWdlbnQ", None),
            ("plainsecret", Some("does not start with whsec_")),
            (
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                Some("does not start with whsec_"),
            ),
            ("whsec_", Some("has no key after whsec_")),
            ("whsec_!!!", Some("is not base64 after whsec_")),
            ("whsec_YWdlbnR=", Some("is not base64 after whsec_")),
            ("whsec_a-b_", Some("is not base64 after whsec_")),
        ] {
            assert_eq!(whsec_problem(text), expected, "{text}");
        }
    }

    #[test]
    fn header_names_and_values() {
        for (name, ok) in [
            ("X-Signature", true),
            ("x-api-key", true),
            ("", false),
            ("X Signature", false),
            ("X-Signature:", false),
            ("Ünï", false),
        ] {
            assert_eq!(is_header_name(name), ok, "{name:?}");
        }
        for (value, ok) in [
            ("Bearer abc", true),
            ("a\tb", true),
            ("a\r\nX-Injected: 1", false),
            ("a\0", false),
        ] {
            assert_eq!(is_header_value(value), ok, "{value:?}");
        }
    }

    #[test]
    fn handler_paths() {
        for (path, expected) in [
            ("/webhook/github", None),
            ("/hooks/a-b_c.d~e/v1:x@y", None),
            ("/webhook/ünï", Some('ü')),
            ("/webhook/a b", Some(' ')),
            ("/webhook/a%20b", Some('%')),
            ("/webhook/a?b", Some('?')),
            ("/webhook/a#b", Some('#')),
        ] {
            assert_eq!(unusable_path_char(path), expected, "{path}");
        }
    }
}
