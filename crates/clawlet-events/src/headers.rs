//! Reading the few request headers a parser needs, in any letter case.

use std::collections::BTreeMap;

use crate::ParseError;

/// Header pairs as the transport hands them over.
pub(crate) type Headers<'a> = &'a [(&'a str, &'a [u8])];

/// The single value of header `name`; `None` when absent. A header read for its meaning must be
/// unambiguous text, so a repeated or non-UTF-8 (or empty) one is an error.
pub(crate) fn one<'a>(headers: Headers<'a>, name: &str) -> Result<Option<&'a str>, ParseError> {
    let mut found = None;
    for (n, v) in headers {
        if n.eq_ignore_ascii_case(name) {
            if found.is_some() {
                return Err(ParseError::DuplicateHeader(name.to_ascii_lowercase()));
            }
            found = Some(*v);
        }
    }
    found
        .map(|v| match std::str::from_utf8(v) {
            Ok(s) if !s.trim().is_empty() => Ok(s.trim()),
            _ => Err(ParseError::InvalidHeader(name.to_ascii_lowercase())),
        })
        .transpose()
}

/// Copies the first text value of each of `names` (lower-cased) into the envelope's header map.
/// These are informational, so an unreadable value is left out rather than failing the delivery.
pub(crate) fn keep(headers: Headers<'_>, names: &[&str], into: &mut BTreeMap<String, String>) {
    for name in names {
        let value = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .find_map(|(_, v)| std::str::from_utf8(v).ok());
        if let Some(value) = value {
            into.insert(name.to_ascii_lowercase(), value.trim().to_owned());
        }
    }
}

/// Refuses a body with a `Content-Encoding` other than `identity`: nothing here decodes one, and
/// taking it as it is would read compressed bytes (or a body that lies about them) as the payload.
pub(crate) fn check_encoding(headers: Headers<'_>) -> Result<(), ParseError> {
    for (_, value) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-encoding"))
    {
        let text = String::from_utf8_lossy(value);
        let encoded = text
            .split(',')
            .map(str::trim)
            .any(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("identity"));
        if encoded {
            return Err(ParseError::UnsupportedContentEncoding(crate::text::clean(
                &text, 100,
            )));
        }
    }
    Ok(())
}

/// The body encodings a parser understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Json,
    Form,
}

/// The body encoding from `Content-Type`. A missing header means JSON: some senders (and
/// `curl -d @file`) omit it, and the body is validated as JSON anyway.
pub(crate) fn body_kind(headers: Headers<'_>, allow_form: bool) -> Result<BodyKind, ParseError> {
    let Some(value) = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| *v)
    else {
        return Ok(BodyKind::Json);
    };
    let unsupported = || {
        ParseError::UnsupportedContentType(crate::text::clean(&String::from_utf8_lossy(value), 100))
    };
    let text = std::str::from_utf8(value).map_err(|_| unsupported())?;
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let is_json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if is_json {
        Ok(BodyKind::Json)
    } else if allow_form && essence == "application/x-www-form-urlencoded" {
        Ok(BodyKind::Form)
    } else {
        Err(unsupported())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_one_header_in_any_case() {
        let h: &[(&str, &[u8])] = &[("X-GitHub-Event", b"push"), ("x-github-delivery", b" abc ")];
        assert_eq!(one(h, "x-github-event").unwrap(), Some("push"));
        assert_eq!(one(h, "X-GITHUB-DELIVERY").unwrap(), Some("abc"));
        assert_eq!(one(h, "x-missing").unwrap(), None);
        let dup: &[(&str, &[u8])] = &[("a", b"1"), ("A", b"2")];
        assert!(matches!(one(dup, "a"), Err(ParseError::DuplicateHeader(n)) if n == "a"));
        let bad: &[(&str, &[u8])] = &[("a", b"\xff"), ("b", b"  ")];
        assert!(matches!(one(bad, "a"), Err(ParseError::InvalidHeader(_))));
        assert!(matches!(one(bad, "b"), Err(ParseError::InvalidHeader(_))));
    }

    fn check(content_type: Option<&[u8]>, allow_form: bool, expected: Result<BodyKind, &str>) {
        let headers: Vec<(&str, &[u8])> = content_type
            .into_iter()
            .map(|v| ("Content-Type", v))
            .collect();
        let got = body_kind(&headers, allow_form).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_owned), "{content_type:?}");
    }

    #[test]
    fn refuses_content_encodings() {
        fn check(values: &[&[u8]], expected: Result<(), &str>) {
            let headers: Vec<(&str, &[u8])> =
                values.iter().map(|v| ("Content-Encoding", *v)).collect();
            let got = check_encoding(&headers).map_err(|e| e.to_string());
            assert_eq!(got, expected.map_err(str::to_owned), "{values:?}");
        }
        check(&[], Ok(()));
        check(&[b"identity"], Ok(()));
        check(&[b" Identity "], Ok(()));
        check(&[b""], Ok(()));
        check(&[b"gzip"], Err(r#"unsupported content encoding "gzip""#));
        check(
            &[b"identity, br"],
            Err(r#"unsupported content encoding "identity, br""#),
        );
        check(
            &[b"identity", b"deflate"],
            Err(r#"unsupported content encoding "deflate""#),
        );
        check(&[b"\xff"], Err("unsupported content encoding \"\u{fffd}\""));
    }

    #[test]
    fn classifies_content_types() {
        check(None, false, Ok(BodyKind::Json));
        check(Some(b"application/json"), false, Ok(BodyKind::Json));
        check(
            Some(b"Application/JSON; charset=utf-8"),
            false,
            Ok(BodyKind::Json),
        );
        check(
            Some(b"application/cloudevents+json"),
            false,
            Ok(BodyKind::Json),
        );
        check(
            Some(b"application/x-www-form-urlencoded"),
            true,
            Ok(BodyKind::Form),
        );
        check(
            Some(b"application/x-www-form-urlencoded"),
            false,
            Err(r#"unsupported content type "application/x-www-form-urlencoded""#),
        );
        check(
            Some(b"text/plain"),
            true,
            Err(r#"unsupported content type "text/plain""#),
        );
        check(
            Some(b"text/\nplain\xff"),
            true,
            Err("unsupported content type \"text/ plain\u{fffd}\""),
        );
    }
}
