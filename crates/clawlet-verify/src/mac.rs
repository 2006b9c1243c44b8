//! Shared machinery: HMAC into stack buffers, encodings, constant-time comparison and timestamps.
//!
//! Everything here works on fixed-size stack buffers so that a successful verification never
//! touches the heap.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use subtle::{Choice, ConstantTimeEq};

use alloc::string::String;

use crate::custom::{Algorithm, Encoding};
use crate::{Tolerance, UnixTime, VerifyError};

/// The largest digest the crate computes (SHA-512).
const MAX_DIGEST: usize = 64;
/// The longest encoding of [`MAX_DIGEST`] bytes (hex: 128, base64: 88).
const MAX_ENCODED: usize = 2 * MAX_DIGEST;

/// A digest held on the stack.
pub(crate) struct Digest {
    buf: [u8; MAX_DIGEST],
    len: usize,
}

impl Digest {
    /// Copies a MAC output; anything longer than [`MAX_DIGEST`] is cut, which no HMAC here yields.
    pub(crate) fn from_slice(bytes: &[u8]) -> Digest {
        let mut digest = empty_digest();
        let len = bytes.len().min(MAX_DIGEST);
        digest.buf[..len].copy_from_slice(&bytes[..len]);
        digest.len = len;
        digest
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// An encoded digest held on the stack; always ASCII.
pub(crate) struct Encoded {
    buf: [u8; MAX_ENCODED],
    len: usize,
}

impl Encoded {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Appends the encoding to `out`; used by the signing functions only.
    pub(crate) fn push_to(&self, out: &mut String) {
        out.extend(self.as_bytes().iter().map(|&b| char::from(b)));
    }
}

/// HMAC of the concatenation of `parts` under `key`, fed incrementally so no buffer is built.
pub(crate) fn hmac(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Digest {
    match algorithm {
        #[cfg(feature = "sha1")]
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
        // Without SHA-1 compiled in, nothing matches; the callers refuse SHA-1 before this.
        #[cfg(not(feature = "sha1"))]
        Algorithm::Sha1 => empty_digest(),
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, parts),
    }
}

fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Digest {
    // HMAC takes keys of any length (long keys are hashed first), so `new_from_slice` cannot fail
    // for `Hmac<D>`; `KeyInit::new` over a padded key would need the block size instead.
    let mut mac = match <M as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return empty_digest(),
    };
    for part in parts {
        mac.update(part);
    }
    let out = mac.finalize().into_bytes();
    let mut digest = empty_digest();
    digest.len = out.len();
    digest.buf[..out.len()].copy_from_slice(&out);
    digest
}

/// A zero-length digest: its encoding is empty, and an empty encoding never matches because every
/// signature value is checked for the full length first.
fn empty_digest() -> Digest {
    Digest {
        buf: [0; MAX_DIGEST],
        len: 0,
    }
}

impl Algorithm {
    /// Digest length in bytes.
    pub(crate) fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }
}

impl Encoding {
    /// Length of the encoding of `n` bytes (base64 is padded).
    pub(crate) fn encoded_len(self, n: usize) -> usize {
        match self {
            Encoding::Hex => 2 * n,
            Encoding::Base64 => n.div_ceil(3) * 4,
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes a digest as lower-case hex or padded standard base64.
pub(crate) fn encode(digest: &Digest, encoding: Encoding) -> Encoded {
    let mut out = Encoded {
        buf: [0; MAX_ENCODED],
        len: 0,
    };
    let bytes = digest.as_bytes();
    match encoding {
        Encoding::Hex => {
            for (i, &b) in bytes.iter().enumerate() {
                out.buf[2 * i] = HEX[usize::from(b >> 4)];
                out.buf[2 * i + 1] = HEX[usize::from(b & 0x0f)];
            }
            out.len = 2 * bytes.len();
        }
        Encoding::Base64 => {
            let mut n = 0;
            for chunk in bytes.chunks(3) {
                let b0 = chunk[0];
                let b1 = chunk.get(1).copied().unwrap_or(0);
                let b2 = chunk.get(2).copied().unwrap_or(0);
                let quad = [
                    B64[usize::from(b0 >> 2)],
                    B64[usize::from(((b0 & 0x03) << 4) | (b1 >> 4))],
                    if chunk.len() > 1 {
                        B64[usize::from(((b1 & 0x0f) << 2) | (b2 >> 6))]
                    } else {
                        b'='
                    },
                    if chunk.len() > 2 {
                        B64[usize::from(b2 & 0x3f)]
                    } else {
                        b'='
                    },
                ];
                out.buf[n..n + 4].copy_from_slice(&quad);
                n += 4;
            }
            out.len = n;
        }
    }
    out
}

/// Checks that `value` has exactly the shape of an encoded digest of `digest_len` bytes.
///
/// Only the shape is checked here, never the content, so this leaks nothing about the expected
/// value; it lets the caller report `malformed_header` (a sender bug) apart from `mismatch`.
pub(crate) fn well_formed(value: &[u8], encoding: Encoding, digest_len: usize) -> bool {
    if value.len() != encoding.encoded_len(digest_len) {
        return false;
    }
    match encoding {
        Encoding::Hex => value
            .iter()
            .all(|&b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        Encoding::Base64 => {
            let padding = value.len() - (digest_len * 4).div_ceil(3);
            let (data, pad) = value.split_at(value.len() - padding);
            data.iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
                && pad.iter().all(|&b| b == b'=')
        }
    }
}

/// Constant-time equality of an expected encoding and a received value.
///
/// A length difference returns false at once: lengths are public (they follow from the algorithm),
/// so a truncated or empty value can never compare equal. The content is compared eight bytes at a
/// time with `subtle`, because `subtle` puts an optimisation barrier behind every comparison and
/// a byte-wise loop would spend more time in barriers than a 7 KB body spends in SHA-256.
pub(crate) fn matches(expected: &Encoded, received: &[u8]) -> bool {
    ct_eq(expected.as_bytes(), received)
}

/// Constant-time equality of two byte strings, as [`matches`] describes; an empty one never
/// matches.
pub(crate) fn ct_eq(expected: &[u8], received: &[u8]) -> bool {
    if expected.is_empty() || expected.len() != received.len() {
        return false;
    }
    let words = expected.chunks_exact(8).zip(received.chunks_exact(8));
    let mut equal = Choice::from(1);
    for (a, b) in words {
        equal &= word(a).ct_eq(&word(b));
    }
    let tail = expected.len() - expected.len() % 8;
    equal &= expected[tail..].ct_eq(&received[tail..]);
    bool::from(equal)
}

fn word(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    u64::from_ne_bytes(word)
}

/// A header value that is absent or empty counts as missing.
pub(crate) fn present<'a>(
    header: Option<&'a [u8]>,
    name: &'static str,
) -> Result<&'a [u8], VerifyError> {
    match header {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(VerifyError::missing(name)),
    }
}

/// Parses a non-negative decimal integer made only of ASCII digits (no sign, no spaces, no
/// fraction). Leading zeros are allowed because both Stripe and Standard Webhooks libraries parse
/// the timestamp to an integer and sign its canonical rendering.
pub(crate) fn parse_timestamp(value: &[u8]) -> Result<i64, VerifyError> {
    if value.is_empty() {
        return Err(VerifyError::MalformedHeader);
    }
    let mut n: i64 = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return Err(VerifyError::MalformedHeader);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(i64::from(b - b'0')))
            .ok_or(VerifyError::MalformedHeader)?;
    }
    Ok(n)
}

/// The canonical decimal rendering of a timestamp, on the stack.
pub(crate) struct Decimal {
    buf: [u8; 20],
    start: usize,
}

impl Decimal {
    /// Two digits per division, from a table: a timestamp is rendered for every verification.
    pub(crate) fn new(n: i64) -> Self {
        const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
            2021222324252627282930313233343536373839\
            4041424344454647484950515253545556575859\
            6061626364656667686970717273747576777879\
            8081828384858687888990919293949596979899";
        let mut buf = [0u8; 20];
        let mut start = buf.len();
        let mut v = n.unsigned_abs();
        while v >= 100 {
            let pair = (v % 100) as usize * 2;
            v /= 100;
            start -= 2;
            buf[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        if v >= 10 {
            let pair = v as usize * 2;
            start -= 2;
            buf[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        } else {
            start -= 1;
            buf[start] = b'0' + v as u8;
        }
        if n < 0 {
            start -= 1;
            buf[start] = b'-';
        }
        Decimal { buf, start }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// Compares a signed timestamp in seconds with the injected clock.
pub(crate) fn check_timestamp(
    timestamp: i64,
    now: UnixTime,
    tolerance: Tolerance,
) -> Result<(), VerifyError> {
    tolerance.check_millis(i128::from(timestamp) * 1000, now)
}

#[cfg(test)]
mod tests;
