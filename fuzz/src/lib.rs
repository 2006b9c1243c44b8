//! Shared pieces of the fuzz targets: how an input is split into fields, and reference
//! computations the targets check the crates against.
//!
//! Inputs are plain bytes so that seeds can be written by hand: fields are separated by NUL bytes
//! and the last field (always the body) takes the rest of the input, NULs included. Header values
//! never hold a NUL on the wire, so nothing realistic is lost. The first field of the verify
//! targets is a comma-separated option list such as `legacy,two,ago=10,tol=300`.
//!
//! The reference computations use the `hmac`, `sha1`, `sha2`, `hex` and `base64` crates directly,
//! not `clawlet-verify`'s own encoders, so a target's oracle is independent of the code under test.

use base64::Engine as _;
use hmac::{Hmac, Mac};

/// Splits a fuzz input into NUL-separated fields.
pub struct Fields<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    /// Starts splitting `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: Some(data) }
    }

    /// The next field, up to the next NUL; `None` once the input is used up, so that a short
    /// input leaves the later headers absent rather than empty.
    pub fn next_field(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match rest.iter().position(|&b| b == 0) {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }

    /// Everything not yet taken, NULs included; empty when used up.
    pub fn rest(self) -> &'a [u8] {
        self.rest.unwrap_or_default()
    }
}

/// A comma-separated option list: `flag` or `key=value` items, unknown ones ignored.
pub struct Opts<'a> {
    text: &'a str,
}

impl<'a> Opts<'a> {
    /// Reads the option field; a non-UTF-8 field is treated as empty.
    pub fn new(field: Option<&'a [u8]>) -> Self {
        let text = field
            .and_then(|f| std::str::from_utf8(f).ok())
            .unwrap_or_default();
        Self { text }
    }

    fn items(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> {
        self.text.split(',').map(|item| match item.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (item.trim(), None),
        })
    }

    /// Whether the bare flag `name` is present.
    pub fn flag(&self, name: &str) -> bool {
        self.items().any(|(k, v)| k == name && v.is_none())
    }

    /// The integer value of `name=<n>`, if present and parseable.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.items()
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v?.parse().ok())
    }
}

/// The hash functions the schemes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// HMAC-SHA1.
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

/// HMAC of the concatenation of `parts` under `key`, computed with the `hmac` crate directly.
pub fn hmac(hash: Hash, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
            panic!("HMAC accepts keys of every length");
        };
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
    match hash {
        Hash::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
        Hash::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        Hash::Sha512 => run::<Hmac<sha2::Sha512>>(key, parts),
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Parses a timestamp the way both timestamped schemes specify it: ASCII digits only, no sign,
/// fitting in an `i64`.
pub fn timestamp(value: &[u8]) -> Option<i64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// `value` with one byte changed: position and XOR mask come from `seed`, and the mask is never
/// zero, so the result always differs from `value`. `None` for an empty value.
pub fn mutate(value: &[u8], seed: &[u8]) -> Option<Vec<u8>> {
    if value.is_empty() {
        return None;
    }
    let h = seed.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut out = value.to_vec();
    let pos = usize::try_from(h % out.len() as u64).unwrap_or(0);
    let mask = u8::try_from((h >> 32) & 0xff).unwrap_or(1).max(1);
    out[pos] ^= mask;
    Some(out)
}
