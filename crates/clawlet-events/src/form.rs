//! GitHub's `application/x-www-form-urlencoded` deliveries: `payload=<percent-encoded JSON>`.
//!
//! Decoded strictly, not lossily: a malformed escape or invalid UTF-8 is an error rather than a
//! replacement character silently written into the payload agents receive.

use crate::ParseError;

/// The decoded text of the one `payload` field of a form-encoded body.
pub(crate) fn payload_field(body: &[u8]) -> Result<String, ParseError> {
    let mut payload = None;
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        if decode(key)? != b"payload" {
            continue;
        }
        if payload.is_some() {
            return Err(ParseError::InvalidForm("more than one payload field"));
        }
        payload = Some(decode(value)?);
    }
    let bytes = payload.ok_or(ParseError::InvalidForm("no payload field"))?;
    String::from_utf8(bytes).map_err(|_| ParseError::InvalidForm("payload is not UTF-8"))
}

/// A form-encoded body as JSON text: its `payload` field when it has one (interactive
/// callbacks carry their JSON there), else every field as a JSON object of strings. A field
/// named twice is refused, since which value counts would be a guess.
pub(crate) fn as_json(body: &[u8]) -> Result<String, ParseError> {
    let mut fields = serde_json::Map::new();
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let key = String::from_utf8(decode(key)?)
            .map_err(|_| ParseError::InvalidForm("a field name is not UTF-8"))?;
        let value = String::from_utf8(decode(value)?)
            .map_err(|_| ParseError::InvalidForm("a field value is not UTF-8"))?;
        if fields
            .insert(key, serde_json::Value::String(value))
            .is_some()
        {
            return Err(ParseError::InvalidForm("a field appears more than once"));
        }
    }
    if let Some(serde_json::Value::String(payload)) = fields.get("payload") {
        return Ok(payload.clone());
    }
    serde_json::to_string(&fields).map_err(ParseError::InvalidJson)
}

fn decode(input: &[u8]) -> Result<Vec<u8>, ParseError> {
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    // Copy runs of plain bytes at once; only '+' and '%' need work.
    while let Some(i) = rest.iter().position(|&b| b == b'+' || b == b'%') {
        out.extend_from_slice(&rest[..i]);
        if rest[i] == b'+' {
            out.push(b' ');
            rest = &rest[i + 1..];
            continue;
        }
        let hi = rest.get(i + 1).and_then(|&c| hex_value(c));
        let lo = rest.get(i + 2).and_then(|&c| hex_value(c));
        match (hi, lo) {
            (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
            _ => return Err(ParseError::InvalidForm("malformed percent escape")),
        }
        rest = &rest[i + 3..];
    }
    out.extend_from_slice(rest);
    Ok(out)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{as_json, payload_field};

    #[test]
    fn a_form_becomes_its_payload_or_an_object_of_its_fields() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("payload=%7B%22a%22%3A1%7D", Ok(r#"{"a":1}"#)),
            (
                "To=%2B15551234567&Body=hi+there",
                Ok(r#"{"Body":"hi there","To":"+15551234567"}"#),
            ),
            ("flag", Ok(r#"{"flag":""}"#)),
            ("", Ok("{}")),
            ("a=1&a=2", Err("a field appears more than once")),
            ("a=%ff", Err("a field value is not UTF-8")),
            ("a=%zz", Err("malformed percent escape")),
        ];
        for (body, expected) in cases {
            let got = as_json(body.as_bytes()).map_err(|e| e.to_string());
            let expected = expected
                .map(str::to_owned)
                .map_err(|e| format!("form-encoded body is invalid: {e}"));
            assert_eq!(got, expected, "{body:?}");
        }
    }

    fn check(body: &str, expected: Result<&str, &str>) {
        let got = payload_field(body.as_bytes()).map_err(|e| e.to_string());
        assert_eq!(
            got.as_deref(),
            expected
                .map_err(|e| format!("form-encoded body is invalid: {e}"))
                .as_deref(),
            "{body:?}"
        );
    }

    #[test]
    fn decodes_the_payload_field() {
        check("payload=%7B%22a%22%3A1%7D", Ok(r#"{"a":1}"#));
        check("payload=%7b%22a%22%3a%22x+y%22%7d", Ok(r#"{"a":"x y"}"#));
        check("other=1&payload=%7B%7D&more", Ok("{}"));
        check("pay%6coad=%7B%7D", Ok("{}"));
        check("payload=caf%C3%A9", Ok("café"));
        check("payload=", Ok(""));
        check("payload", Ok(""));
        check("", Err("no payload field"));
        check("payloadx=1", Err("no payload field"));
        check("payload=1&payload=2", Err("more than one payload field"));
        check("payload=%7", Err("malformed percent escape"));
        check("payload=%zz", Err("malformed percent escape"));
        check("payload=%", Err("malformed percent escape"));
        check("payload=%FF", Err("payload is not UTF-8"));
    }

    proptest::proptest! {
        #[test]
        fn decodes_what_a_form_encoder_wrote(text in ".{0,64}", plus in proptest::bool::ANY) {
            let mut body = String::from("a=1&payload=");
            for b in text.bytes() {
                match b {
                    b' ' if plus => body.push('+'),
                    b if b.is_ascii_alphanumeric() => body.push(char::from(b)),
                    b => body.push_str(&format!("%{b:02x}")),
                }
            }
            proptest::prop_assert_eq!(payload_field(body.as_bytes()).unwrap(), text);
        }
    }
}
