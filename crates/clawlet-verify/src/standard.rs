//! Standard Webhooks (and Svix): `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64> [v1,<base64> …]`, HMAC-SHA256 over `"<id>.<timestamp>.<body>"`,
//! or `v1a,<base64>` Ed25519 signatures with a `whpk_` public key (feature `ed25519`).
//!
//! Behaviour, as in the reference libraries of the standard-webhooks repository:
//! - the HMAC key is the base64 decoding of the secret after an optional `whsec_` prefix; the
//!   Ed25519 public key is the base64 after `whpk_`;
//! - the signature header is a space-separated list; every entry of the key's version (`v1,` for
//!   HMAC, `v1a,` for Ed25519) is tried, other versions and empty entries are ignored, and a
//!   header without any entry for the configured keys fails with
//!   [`VerifyError::NoSignatureForScheme`];
//! - the timestamp is an integer number of seconds (no sign, no fraction) and must lie within the
//!   tolerance on both sides of `now`; the canonical integer is what is signed;
//! - [`verify_headers`] reads `webhook-*` headers and, when they are absent, Svix's `svix-*`.
//!
//! The signature is checked before the timestamp, so a timestamp error always means an authentic
//! but stale delivery. A delivery replayed inside the tolerance passes again: deduplicate on
//! `webhook-id`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::custom::{Algorithm, Encoding};
use crate::mac::{self, Decimal, Encoded};
use crate::{Headers, Tolerance, UnixTime, Verified, VerifyError};

/// The header carrying the message id.
pub const ID_HEADER: &str = "webhook-id";
/// The header carrying the Unix timestamp in seconds.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The header carrying the space-separated signatures.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// Svix's name for [`ID_HEADER`].
pub const SVIX_ID_HEADER: &str = "svix-id";
/// Svix's name for [`TIMESTAMP_HEADER`].
pub const SVIX_TIMESTAMP_HEADER: &str = "svix-timestamp";
/// Svix's name for [`SIGNATURE_HEADER`].
pub const SVIX_SIGNATURE_HEADER: &str = "svix-signature";
/// The tolerance of the Standard Webhooks reference libraries: five minutes each way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

const SECRET_PREFIX: &str = "whsec_";
const PUBLIC_PREFIX: &str = "whpk_";

/// Secrets are generated with or without padding; accept both, reject anything else.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A decoded Standard Webhooks key: an HMAC secret or an Ed25519 public key.
///
/// Decoding happens once, when the configuration is loaded, so that [`verify`] stays
/// allocation-free for HMAC. `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct Key {
    inner: KeyInner,
}

#[derive(Clone)]
enum KeyInner {
    Hmac(Vec<u8>),
    #[cfg(feature = "ed25519")]
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl Key {
    /// Decodes an HMAC secret such as `whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`: an optional
    /// `whsec_` prefix followed by standard base64 (padding optional).
    ///
    /// # Errors
    ///
    /// [`VerifyError::InvalidSecret`] when the rest is not base64 or decodes to nothing.
    pub fn from_secret(secret: &str) -> Result<Key, VerifyError> {
        let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
        let bytes = SECRET_BASE64
            .decode(encoded)
            .map_err(|_| VerifyError::InvalidSecret)?;
        Key::from_bytes(&bytes)
    }

    /// Decodes an Ed25519 public key `whpk_<base64>` (feature `ed25519`).
    ///
    /// # Errors
    ///
    /// [`VerifyError::InvalidSecret`] when the prefix is missing, the base64 is invalid, it is
    /// not a valid Ed25519 public key, or the feature is off.
    pub fn from_public_key(key: &str) -> Result<Key, VerifyError> {
        let encoded = key
            .strip_prefix(PUBLIC_PREFIX)
            .ok_or(VerifyError::InvalidSecret)?;
        Key::from_public(encoded)
    }

    /// A `whpk_` public key or else a `whsec_` secret: what a configuration file holds.
    ///
    /// # Errors
    ///
    /// As [`Key::from_public_key`] or [`Key::from_secret`].
    pub fn parse(text: &str) -> Result<Key, VerifyError> {
        if text.starts_with(PUBLIC_PREFIX) {
            Key::from_public_key(text)
        } else {
            Key::from_secret(text)
        }
    }

    #[cfg(feature = "ed25519")]
    fn from_public(encoded: &str) -> Result<Key, VerifyError> {
        let bytes = SECRET_BASE64
            .decode(encoded)
            .map_err(|_| VerifyError::InvalidSecret)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| VerifyError::InvalidSecret)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| VerifyError::InvalidSecret)?;
        Ok(Key {
            inner: KeyInner::Ed25519(key),
        })
    }

    #[cfg(not(feature = "ed25519"))]
    fn from_public(_: &str) -> Result<Key, VerifyError> {
        Err(VerifyError::InvalidSecret)
    }

    /// Wraps raw HMAC key bytes, for callers that store keys decoded.
    ///
    /// # Errors
    ///
    /// [`VerifyError::InvalidSecret`] when `bytes` is empty.
    pub fn from_bytes(bytes: &[u8]) -> Result<Key, VerifyError> {
        if bytes.is_empty() {
            return Err(VerifyError::InvalidSecret);
        }
        Ok(Key {
            inner: KeyInner::Hmac(bytes.to_vec()),
        })
    }

    /// The HMAC key bytes, for tests.
    #[cfg(test)]
    fn hmac_bytes(&self) -> &[u8] {
        match &self.inner {
            KeyInner::Hmac(bytes) => bytes,
            #[cfg(feature = "ed25519")]
            KeyInner::Ed25519(public) => public.as_bytes(),
        }
    }

    /// The HMAC key, or `None` for a public key (which cannot sign).
    fn secret_bytes(&self) -> Option<&[u8]> {
        match &self.inner {
            KeyInner::Hmac(bytes) => Some(bytes),
            #[cfg(feature = "ed25519")]
            KeyInner::Ed25519(_) => None,
        }
    }

    /// The signature version this key checks: `v1` or `v1a`.
    fn version(&self) -> &'static [u8] {
        match self.inner {
            KeyInner::Hmac(_) => b"v1,",
            #[cfg(feature = "ed25519")]
            KeyInner::Ed25519(_) => b"v1a,",
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key([redacted])")
    }
}

/// The parts of a delivery Standard Webhooks reads: the raw values of the three headers (absent
/// or empty counts as missing) and the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delivery<'a> {
    /// The value of [`ID_HEADER`].
    pub id: Option<&'a [u8]>,
    /// The value of [`TIMESTAMP_HEADER`].
    pub timestamp: Option<&'a [u8]>,
    /// The value of [`SIGNATURE_HEADER`].
    pub signature: Option<&'a [u8]>,
    /// The raw body.
    pub body: &'a [u8],
}

/// Verifies a Standard Webhooks delivery against each key in turn; `tolerance` bounds the
/// timestamp on both sides of `now` (`None` disables the check).
///
/// # Errors
///
/// [`VerifyError::NoSecrets`], [`VerifyError::MissingHeader`], [`VerifyError::MalformedHeader`]
/// (a timestamp that is not a non-negative integer), [`VerifyError::NoSignatureForScheme`],
/// [`VerifyError::Mismatch`], [`VerifyError::TimestampTooOld`] or
/// [`VerifyError::TimestampTooNew`].
pub fn verify(
    keys: &[Key],
    delivery: Delivery<'_>,
    now: impl Into<UnixTime>,
    tolerance: Option<Duration>,
) -> Result<Verified, VerifyError> {
    if keys.is_empty() {
        return Err(VerifyError::NoSecrets);
    }
    let id = mac::present(delivery.id, ID_HEADER)?;
    let timestamp_value = mac::present(delivery.timestamp, TIMESTAMP_HEADER)?;
    let signature = mac::present(delivery.signature, SIGNATURE_HEADER)?;
    let timestamp = mac::parse_timestamp(timestamp_value)?;
    if !keys
        .iter()
        .any(|key| entries(signature, key.version()).next().is_some())
    {
        return Err(VerifyError::NoSignatureForScheme);
    }
    let rendered = Decimal::new(timestamp);
    for (index, key) in keys.iter().enumerate() {
        if matches(key, signature, id, rendered.as_bytes(), delivery.body) {
            mac::check_timestamp(timestamp, now.into(), Tolerance::from(tolerance))?;
            return Ok(Verified::new(index).with_timestamp(timestamp));
        }
    }
    Err(VerifyError::Mismatch)
}

/// [`verify`] reading the three headers from a request: `webhook-*`, or Svix's `svix-*` when
/// `webhook-id` is absent. A real Svix delivery verifies as is.
///
/// # Errors
///
/// As [`verify`] (a missing header is named with its `webhook-*` name), and
/// [`VerifyError::MalformedHeader`] for a repeated header.
pub fn verify_headers(
    keys: &[Key],
    headers: &dyn Headers,
    body: &[u8],
    now: impl Into<UnixTime>,
    tolerance: Option<Duration>,
) -> Result<Verified, VerifyError> {
    let names = if headers.get(ID_HEADER).is_none() && headers.get(SVIX_ID_HEADER).is_some() {
        [SVIX_ID_HEADER, SVIX_TIMESTAMP_HEADER, SVIX_SIGNATURE_HEADER]
    } else {
        [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER]
    };
    if names.iter().any(|name| headers.is_repeated(name)) {
        return Err(VerifyError::MalformedHeader);
    }
    let delivery = Delivery {
        id: headers.get(names[0]),
        timestamp: headers.get(names[1]),
        signature: headers.get(names[2]),
        body,
    };
    verify(keys, delivery, now, tolerance)
}

fn entries<'a>(header: &'a [u8], version: &'static [u8]) -> impl Iterator<Item = &'a [u8]> {
    header
        .split(|&b| b == b' ')
        .filter_map(move |entry| entry.strip_prefix(version))
}

fn matches(key: &Key, signature: &[u8], id: &[u8], timestamp: &[u8], body: &[u8]) -> bool {
    match &key.inner {
        KeyInner::Hmac(bytes) => {
            let expected = expected(bytes, id, timestamp, body);
            entries(signature, key.version()).any(|value| mac::matches(&expected, value))
        }
        #[cfg(feature = "ed25519")]
        KeyInner::Ed25519(public) => {
            let mut message = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
            for part in [id, b".", timestamp, b".", body] {
                message.extend_from_slice(part);
            }
            entries(signature, key.version()).any(|value| {
                let mut sig = [0u8; 64];
                SECRET_BASE64.decode_slice(value, &mut sig) == Ok(64)
                    && public
                        .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&sig))
                        .is_ok()
            })
        }
    }
}

fn expected(key: &[u8], id: &[u8], timestamp: &[u8], body: &[u8]) -> Encoded {
    let digest = mac::hmac(Algorithm::Sha256, key, &[id, b".", timestamp, b".", body]);
    mac::encode(&digest, Encoding::Base64)
}

/// The value of [`SIGNATURE_HEADER`] for `body` sent as message `id` at `timestamp` (Unix
/// seconds): `v1,<base64>`.
///
/// # Errors
///
/// [`VerifyError::UnsupportedKey`] for a `whpk_` public key, which cannot sign.
pub fn sign(key: &Key, id: &str, timestamp: i64, body: &[u8]) -> Result<String, VerifyError> {
    let bytes = key.secret_bytes().ok_or(VerifyError::UnsupportedKey)?;
    let rendered = Decimal::new(timestamp);
    let encoded = expected(bytes, id.as_bytes(), rendered.as_bytes(), body);
    let mut out = String::with_capacity(3 + 44);
    out.push_str("v1,");
    encoded.push_to(&mut out);
    Ok(out)
}

/// The `v1a,<base64>` signature of an Ed25519 private key, and the `whpk_…` public key that
/// verifies it.
#[cfg(feature = "ed25519")]
#[must_use]
pub fn sign_ed25519(
    key: &ed25519_dalek::SigningKey,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> (String, String) {
    use ed25519_dalek::Signer as _;
    let rendered = Decimal::new(timestamp);
    let mut message = Vec::new();
    for part in [id.as_bytes(), b".", rendered.as_bytes(), b".", body] {
        message.extend_from_slice(part);
    }
    let signature = key.sign(&message);
    let mut out = String::from("v1a,");
    SECRET_BASE64.encode_string(signature.to_bytes(), &mut out);
    let mut public = String::from(PUBLIC_PREFIX);
    SECRET_BASE64.encode_string(key.verifying_key().as_bytes(), &mut public);
    (out, public)
}

#[cfg(test)]
mod tests;
