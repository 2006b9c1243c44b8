//! The one JSON rule serde_json's skipping parsers do not check: a `\u` escape of a UTF-16
//! surrogate must come as a pair (high `D800`–`DBFF`, then low `DC00`–`DFFF`). The borrowed,
//! partial reads this crate makes (`RawValue`, `IgnoredAny`) skip strings without decoding them,
//! so a lone surrogate would pass and reach agents as a payload that strict JSON parsers, serde_json's
//! own `Value` among them, refuse.

/// Checks every `\u` surrogate escape in `json`, already known to be well-formed JSON apart from
/// this; the error names the byte offset of the first lone one.
pub(crate) fn check_surrogates(json: &str) -> Result<(), serde_json::Error> {
    let bytes = json.as_bytes();
    let mut at = 0;
    // Outside strings a well-formed JSON text has no backslash, so every one found starts an
    // escape. The search is vectorised: most bodies hold few escapes, and this pass reads every
    // byte of every accepted body.
    while let Some(offset) = memchr::memchr(b'\\', &bytes[at..]) {
        let start = at + offset;
        match bytes.get(start + 1) {
            Some(b'u') => {
                let unit = hex4(bytes, start + 2);
                at = start + 6;
                match unit {
                    Some(0xD800..=0xDBFF) => {
                        let low = (bytes.get(at) == Some(&b'\\')
                            && bytes.get(at + 1) == Some(&b'u'))
                        .then(|| hex4(bytes, at + 2))
                        .flatten();
                        if !matches!(low, Some(0xDC00..=0xDFFF)) {
                            return Err(lone(start));
                        }
                        at += 6;
                    }
                    Some(0xDC00..=0xDFFF) => return Err(lone(start)),
                    _ => {}
                }
            }
            // Any other escape is two bytes; the JSON parser has already checked which.
            _ => at = start + 2,
        }
        if at >= bytes.len() {
            break;
        }
    }
    Ok(())
}

fn hex4(bytes: &[u8], from: usize) -> Option<u16> {
    let digits = std::str::from_utf8(bytes.get(from..from + 4)?).ok()?;
    u16::from_str_radix(digits, 16).ok()
}

fn lone(at: usize) -> serde_json::Error {
    serde::de::Error::custom(format_args!(
        "lone UTF-16 surrogate in a \\u escape at byte {at}"
    ))
}

#[cfg(test)]
mod tests {
    use super::check_surrogates;

    #[test]
    fn surrogates_must_pair() {
        fn check(json: &str, ok: bool) {
            assert_eq!(check_surrogates(json).is_ok(), ok, "{json}");
            // The rule is serde_json's own, for a full parse.
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(json).is_ok(),
                ok,
                "{json}"
            );
        }
        check(r#"{"a":"plain"}"#, true);
        check(r#"{"a":"\n\\\"\/\u0041"}"#, true);
        check(r#"{"a":"\ud83d\ude00"}"#, true);
        check(r#"{"a":"\uD83D\uDE00","b":"\\u"}"#, true);
        check(r#"{"a":"\\uDDDD"}"#, true);
        check(r#"{"a":"\uDDDD"}"#, false);
        check(r#"{"a":"\ud83d"}"#, false);
        check(r#"{"a":"\ud83dx"}"#, false);
        check(r#"{"a":"\ud83d\n"}"#, false);
        check(r#"{"a":"\ud83d\ud83d"}"#, false);
        check(r#"{"a":"\ud83d\u0041"}"#, false);
        check(r#"{"\uDC00":1}"#, false);
    }
}
