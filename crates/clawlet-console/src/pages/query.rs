//! Filters written back into links and forms: the next page keeps the filter it was asked with.

use maud::{Markup, html};
use time::OffsetDateTime;

use crate::data::EventFilter;

/// The filter's fields as `(name, value)` pairs, in the names the query string uses; unset
/// fields are left out. The cursor is not among them: each link sets its own.
pub(super) fn filter_pairs(filter: &EventFilter) -> Vec<(&'static str, String)> {
    let status = filter.status.map(|s| super::status_label(s).to_owned());
    [
        ("handler", filter.handler.clone()),
        ("type", filter.event_type.clone()),
        ("status", status),
        ("agent", filter.agent.clone()),
        ("from", filter.from.map(input_time)),
        ("to", filter.to.map(input_time)),
        ("delivery_id", filter.delivery_id.clone()),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| (name, v)))
    .collect()
}

/// `path?name=value&…`, each part percent-encoded as a form would send it.
pub(super) fn link(path: &str, pairs: &[(&str, String)]) -> String {
    let mut out = path.to_owned();
    for (i, (name, value)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        encode_into(&mut out, name);
        out.push('=');
        encode_into(&mut out, value);
    }
    out
}

/// The filter again as hidden fields, for a form that acts on the filtered set.
pub(super) fn hidden_fields(filter: &EventFilter) -> Markup {
    html! {
        @for (name, value) in filter_pairs(filter) {
            input type="hidden" name=(name) value=(value);
        }
    }
}

/// The value a `datetime-local` input shows: UTC, to the second.
pub(super) fn input_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Percent-encodes everything but the characters a query never needs escaped.
fn encode_into(out: &mut String, text: &str) {
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0x0f)]));
            }
        }
    }
}
