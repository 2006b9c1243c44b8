//! The signed-payload template: parsed once, then streamed part by part into the MAC.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::Name;
use crate::VerifyError;

/// One piece of a signed payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Part {
    /// Fixed text, such as `v0:` or `.`.
    Literal(Name),
    /// The raw request body, byte for byte.
    Body,
    /// The signed timestamp, as a canonical decimal integer in the scheme's unit.
    Timestamp,
    /// The delivery id, read from the scheme's `id` location.
    Id,
    /// The full public URL the sender posted to (scheme, host, path and query).
    Url,
    /// Like [`Part::Url`], but a signature over the same URL with its default port (`:443` for
    /// `https`, `:80` for `http`) written out or left out also verifies: Twilio's own validator
    /// accepts both, since proxies disagree on whether the port reaches the application.
    UrlEitherPort,
    /// The HTTP method, as sent (`POST`).
    Method,
    /// The value of another request header.
    Header(Name),
    /// The value at a JSON pointer in the body (a string's contents, or a number as written).
    Json(Name),
    /// Twilio's form rendering: every form parameter of the body, sorted by name and then by
    /// value, each written as name followed by value. Empty when the URL carries the scheme's
    /// body-hash parameter (a JSON body).
    Form,
}

/// A signed-payload template such as `v0:{timestamp}:{body}`.
///
/// Placeholders: `{body}`, `{timestamp}`, `{id}`, `{url}`, `{url_either_port}`, `{method}`,
/// `{header:Name}`, `{json:/pointer}` and `{form}`; `{{` and `}}` write literal braces. Parsing
/// happens once, when the scheme is built; verification then feeds each part to the MAC without
/// building the string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Template {
    parts: Cow<'static, [Part]>,
}

impl Template {
    /// A template from parts known at compile time (the presets).
    #[must_use]
    pub const fn from_parts(parts: &'static [Part]) -> Template {
        Template {
            parts: Cow::Borrowed(parts),
        }
    }

    /// Parses a template.
    ///
    /// # Errors
    ///
    /// [`VerifyError::InvalidTemplate`] for an unknown placeholder, an empty `{header:}` or
    /// `{json:}`, an unclosed `{` or a lone `}`.
    pub fn parse(text: &str) -> Result<Template, VerifyError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(['{', '}']) {
            literal.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(after) = tail.strip_prefix("{{") {
                literal.push('{');
                rest = after;
                continue;
            }
            if let Some(after) = tail.strip_prefix("}}") {
                literal.push('}');
                rest = after;
                continue;
            }
            if tail.starts_with('}') {
                return Err(VerifyError::InvalidTemplate);
            }
            let end = tail.find('}').ok_or(VerifyError::InvalidTemplate)?;
            let part = placeholder(&tail[1..end])?;
            if !literal.is_empty() {
                parts.push(Part::Literal(Cow::Owned(core::mem::take(&mut literal))));
            }
            parts.push(part);
            rest = &tail[end + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(Cow::Owned(literal)));
        }
        Ok(Template {
            parts: Cow::Owned(parts),
        })
    }

    /// The parts, in order.
    #[must_use]
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    pub(crate) fn uses(&self, wanted: fn(&Part) -> bool) -> bool {
        self.parts.iter().any(wanted)
    }
}

fn placeholder(name: &str) -> Result<Part, VerifyError> {
    let named = |prefix: &str| {
        name.strip_prefix(prefix)
            .filter(|n| !n.is_empty() && !n.contains(['{', '}']))
            .map(|n| Cow::Owned(n.into()))
    };
    Ok(match name {
        "body" => Part::Body,
        "timestamp" => Part::Timestamp,
        "id" => Part::Id,
        "url" => Part::Url,
        "url_either_port" => Part::UrlEitherPort,
        "method" => Part::Method,
        "form" => Part::Form,
        _ => {
            if let Some(header) = named("header:") {
                Part::Header(header)
            } else if let Some(pointer) = named("json:") {
                Part::Json(pointer)
            } else {
                return Err(VerifyError::InvalidTemplate);
            }
        }
    })
}

impl fmt::Display for Template {
    /// The text form, which [`Template::parse`] reads back to an equal template.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in self.parts.iter() {
            match part {
                Part::Literal(text) => {
                    for c in text.chars() {
                        match c {
                            '{' => f.write_str("{{")?,
                            '}' => f.write_str("}}")?,
                            c => fmt::Write::write_char(f, c)?,
                        }
                    }
                }
                Part::Body => f.write_str("{body}")?,
                Part::Timestamp => f.write_str("{timestamp}")?,
                Part::Id => f.write_str("{id}")?,
                Part::Url => f.write_str("{url}")?,
                Part::UrlEitherPort => f.write_str("{url_either_port}")?,
                Part::Method => f.write_str("{method}")?,
                Part::Form => f.write_str("{form}")?,
                Part::Header(name) => write!(f, "{{header:{name}}}")?,
                Part::Json(pointer) => write!(f, "{{json:{pointer}}}")?,
            }
        }
        Ok(())
    }
}
