//! Standard Webhooks (and Svix): `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64> [v1,<base64> …]`, HMAC-SHA256 over `"<id>.<timestamp>.<body>"`.
//!
//! Behaviour, as in the reference libraries of the standard-webhooks repository:
//! - the key is the base64 decoding of the secret after an optional `whsec_` prefix;
//! - the signature header is a space-separated list; every `v1,` entry is tried, other versions
//!   and empty entries (two spaces in a row) are ignored, and a header without any `v1,` entry
//!   fails with [`VerifyError::NoSignatureForScheme`];
//! - the timestamp is an integer number of seconds (no sign, no fraction) and must lie within the
//!   tolerance on both sides of `now_unix`; the canonical integer is what is signed.
//!
//! The signature is checked before the timestamp, so a timestamp error always means an authentic
//! but stale delivery. A tolerance of 0 disables the timestamp check.

use core::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::custom::{Algorithm, Encoding};
use crate::mac::{self, Decimal, Encoded};
use crate::{Verified, VerifyError};

/// The header carrying the message id.
pub const ID_HEADER: &str = "webhook-id";
/// The header carrying the Unix timestamp in seconds.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The header carrying the space-separated signatures.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// The tolerance of the Standard Webhooks reference libraries, in seconds, on both sides of now.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

const SECRET_PREFIX: &str = "whsec_";

/// Secrets are generated with or without padding; accept both, reject anything else.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A decoded Standard Webhooks signing key.
///
/// Decoding happens once, when the configuration is loaded, so that [`verify`] stays
/// allocation-free. `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct Key {
    bytes: Vec<u8>,
}

impl Key {
    /// Decodes a secret such as `whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`: an optional `whsec_`
    /// prefix followed by standard base64 (padding optional).
    ///
    /// # Errors
    ///
    /// [`VerifyError::InvalidSecret`] when the rest is not base64 or decodes to nothing.
    pub fn from_secret(secret: &str) -> Result<Key, VerifyError> {
        let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
        let bytes = SECRET_BASE64
            .decode(encoded)
            .map_err(|_| VerifyError::InvalidSecret)?;
        if bytes.is_empty() {
            return Err(VerifyError::InvalidSecret);
        }
        Ok(Key { bytes })
    }

    /// Wraps raw key bytes, for callers that store keys decoded.
    ///
    /// # Errors
    ///
    /// [`VerifyError::InvalidSecret`] when `bytes` is empty.
    pub fn from_bytes(bytes: &[u8]) -> Result<Key, VerifyError> {
        if bytes.is_empty() {
            return Err(VerifyError::InvalidSecret);
        }
        Ok(Key {
            bytes: bytes.to_vec(),
        })
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key([redacted])")
    }
}

/// Verifies a Standard Webhooks delivery against each key in turn.
///
/// `id`, `timestamp` and `signature` are the raw values of [`ID_HEADER`], [`TIMESTAMP_HEADER`]
/// and [`SIGNATURE_HEADER`]; `now_unix` is the current time in Unix seconds.
///
/// # Errors
///
/// [`VerifyError::NoSecrets`], [`VerifyError::MissingHeader`], [`VerifyError::MalformedHeader`]
/// (a timestamp that is not a non-negative integer), [`VerifyError::NoSignatureForScheme`],
/// [`VerifyError::Mismatch`], [`VerifyError::TimestampTooOld`] or
/// [`VerifyError::TimestampTooNew`].
pub fn verify(
    keys: &[Key],
    id: Option<&[u8]>,
    timestamp: Option<&[u8]>,
    signature: Option<&[u8]>,
    body: &[u8],
    now_unix: i64,
    tolerance_secs: u64,
) -> Result<Verified, VerifyError> {
    if keys.is_empty() {
        return Err(VerifyError::NoSecrets);
    }
    let id = mac::present(id)?;
    let timestamp_value = mac::present(timestamp)?;
    let signature = mac::present(signature)?;
    let timestamp = mac::parse_timestamp(timestamp_value)?;
    if v1_entries(signature).next().is_none() {
        return Err(VerifyError::NoSignatureForScheme);
    }
    let rendered = Decimal::new(timestamp);
    for (index, key) in keys.iter().enumerate() {
        let expected = expected(key, id, rendered.as_bytes(), body);
        if v1_entries(signature).any(|value| mac::matches(&expected, value)) {
            mac::check_timestamp(timestamp, now_unix, tolerance_secs)?;
            return Ok(Verified::new(index));
        }
    }
    Err(VerifyError::Mismatch)
}

fn v1_entries(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    header
        .split(|&b| b == b' ')
        .filter_map(|entry| entry.strip_prefix(b"v1,"))
}

fn expected(key: &Key, id: &[u8], timestamp: &[u8], body: &[u8]) -> Encoded {
    let digest = mac::hmac(
        Algorithm::Sha256,
        &key.bytes,
        &[id, b".", timestamp, b".", body],
    );
    mac::encode(&digest, Encoding::Base64)
}

/// The value of [`SIGNATURE_HEADER`] for `body` sent as message `id` at `timestamp`:
/// `v1,<base64>`.
#[must_use]
pub fn sign(key: &Key, id: &str, timestamp: i64, body: &[u8]) -> String {
    let rendered = Decimal::new(timestamp);
    let encoded = expected(key, id.as_bytes(), rendered.as_bytes(), body);
    let mut out = String::with_capacity(3 + 44);
    out.push_str("v1,");
    encoded.push_to(&mut out);
    out
}

#[cfg(test)]
mod tests;
