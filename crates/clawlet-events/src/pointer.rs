//! RFC 6901 JSON pointers evaluated over raw JSON, one level at a time, without building a tree:
//! each step skims one object or array and borrows the member it names.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::ParseError;

/// A JSON string, borrowed from the input when it has no escapes.
#[derive(Deserialize)]
#[serde(transparent)]
pub(crate) struct Str<'a>(#[serde(borrow)] pub(crate) Cow<'a, str>);

/// Checks that `pointer` is a syntactically valid JSON pointer.
pub(crate) fn validate(pointer: &str) -> Result<(), ParseError> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(ParseError::InvalidPointer(pointer.to_owned()))
    }
}

/// The value `pointer` names inside `root`, or `None` when there is none.
pub(crate) fn resolve<'a>(
    root: &'a RawValue,
    pointer: &str,
) -> Result<Option<&'a RawValue>, ParseError> {
    validate(pointer)?;
    let mut current = root;
    // The first split piece is the empty string before the leading '/'.
    for token in pointer.split('/').skip(1) {
        let token = unescape(token);
        let mut de = serde_json::Deserializer::from_str(current.get());
        match (Step { token: &token }).deserialize(&mut de) {
            Ok(Some(next)) => current = next,
            // A scalar has no members, so a pointer into it names nothing.
            Ok(None) | Err(_) => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// The string at `pointer`, or `None` when it is missing or not a string.
pub(crate) fn string_at<'a>(
    root: &'a RawValue,
    pointer: &str,
) -> Result<Option<Cow<'a, str>>, ParseError> {
    Ok(resolve(root, pointer)?
        .and_then(|v| serde_json::from_str::<Str<'a>>(v.get()).ok())
        .map(|s| s.0))
}

/// The string or number at `pointer` as text (numbers as written), or `None` otherwise.
pub(crate) fn id_at<'a>(
    root: &'a RawValue,
    pointer: &str,
) -> Result<Option<Cow<'a, str>>, ParseError> {
    let Some(value) = resolve(root, pointer)? else {
        return Ok(None);
    };
    let text = value.get();
    if text.starts_with('"') {
        return Ok(serde_json::from_str::<Str<'a>>(text).ok().map(|s| s.0));
    }
    let is_number = text.starts_with(|c: char| c == '-' || c.is_ascii_digit());
    Ok(is_number.then_some(Cow::Borrowed(text)))
}

fn unescape(token: &str) -> Cow<'_, str> {
    if token.contains('~') {
        Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(token)
    }
}

/// One pointer step: the member named `token` of an object, or the element at index `token` of
/// an array. The first of duplicate object keys wins.
struct Step<'t> {
    token: &'t str,
}

impl<'de> DeserializeSeed<'de> for Step<'_> {
    type Value = Option<&'de RawValue>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Step<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object or array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            if found.is_none() && key.0 == self.token {
                found = Some(map.next_value::<&'de RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // RFC 6901: an array index is "0" or digits without a leading zero.
        let index = match self.token.as_bytes() {
            [b'0'] => Some(0),
            [b'1'..=b'9', rest @ ..] if rest.iter().all(u8::is_ascii_digit) => {
                self.token.parse::<usize>().ok()
            }
            _ => None,
        };
        let mut found = None;
        let mut i = 0usize;
        loop {
            if Some(i) == index {
                match seq.next_element::<&'de RawValue>()? {
                    Some(v) => found = Some(v),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i = i.saturating_add(1);
        }
        Ok(found)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"event_type":"user.created","meta":{"id":"evt_1","n":42,"a/b":"slash","m~n":"tilde"},
        "list":[10,{"k":"v"},"x"],"dup":"first","dup":"second","esc":"caf\u00e9","":"empty"}"#;

    fn check(pointer: &str, expected: Option<&str>) {
        let root: &RawValue = serde_json::from_str(DOC).unwrap();
        let got = resolve(root, pointer).unwrap().map(RawValue::get);
        assert_eq!(got, expected, "pointer {pointer:?}");
    }

    #[test]
    fn resolves_pointers() {
        check("/event_type", Some(r#""user.created""#));
        check("/meta/id", Some(r#""evt_1""#));
        check("/meta/n", Some("42"));
        check("/meta/a~1b", Some(r#""slash""#));
        check("/meta/m~0n", Some(r#""tilde""#));
        check("/list/0", Some("10"));
        check("/list/1/k", Some(r#""v""#));
        check("/list/2", Some(r#""x""#));
        check("/list/3", None);
        check("/list/01", None);
        check("/list/-", None);
        check("/list/99999999999999999999999", None);
        check("/dup", Some(r#""first""#));
        check("/", Some(r#""empty""#));
        check("/missing", None);
        check("/meta/n/deeper", None);
        check("/event_type/0", None);
    }

    #[test]
    fn reads_strings_and_ids() {
        let root: &RawValue = serde_json::from_str(DOC).unwrap();
        assert_eq!(string_at(root, "/esc").unwrap().as_deref(), Some("café"));
        assert_eq!(string_at(root, "/meta/n").unwrap(), None);
        assert_eq!(id_at(root, "/meta/n").unwrap().as_deref(), Some("42"));
        assert_eq!(id_at(root, "/meta/id").unwrap().as_deref(), Some("evt_1"));
        assert_eq!(id_at(root, "/list/1").unwrap(), None);
        assert!(matches!(
            string_at(root, "event_type"),
            Err(ParseError::InvalidPointer(_))
        ));
        assert_eq!(resolve(root, "").unwrap().map(RawValue::get), Some(DOC));
    }
}
