//! One declarative signature language: a [`Scheme`] says where the signature is, how it is
//! written, what is signed and with which algorithm; a [`Verifier`] pairs a scheme with keys that
//! were checked once, and verifies requests.
//!
//! ```
//! use std::borrow::Cow;
//! use clawlet_verify::scheme::{
//!     Algorithm, Encoding, Key, List, Location, Request, Scheme, Signature, SigningKey, Template,
//!     TimestampRule, TimestampSource, Unit, Verifier,
//! };
//! use clawlet_verify::{Secret, Tolerance, UnixTime};
//!
//! // `X-Sig: v0=<hex>` over `v0:<X-Timestamp>:<body>`, five minutes each way.
//! let scheme = Scheme {
//!     signature: Signature {
//!         location: Location::Header(Cow::Borrowed("x-sig")),
//!         prefix: Cow::Borrowed("v0="),
//!         encoding: Encoding::HexLower,
//!         list: List::Single,
//!     },
//!     payload: Template::parse("v0:{timestamp}:{body}")?,
//!     algorithm: Algorithm::HmacSha256,
//!     timestamp: Some(TimestampRule {
//!         source: TimestampSource::Location(Location::Header(Cow::Borrowed("x-timestamp"))),
//!         unit: Unit::Seconds,
//!         tolerance: Tolerance::both(std::time::Duration::from_secs(300)),
//!     }),
//!     ..Scheme::default()
//! };
//! let secret = Secret::new("s3cr3t")?;
//! let now = UnixTime::from_secs(1_700_000_000);
//! let body = br#"{"ok":true}"#;
//!
//! let no_headers: [(&str, &str); 0] = [];
//! let signed = scheme.sign(&SigningKey::Secret(secret.clone()), &Request::new(&no_headers, body), now)?;
//! assert_eq!(signed[1], ("x-timestamp".to_owned(), "1700000000".to_owned()));
//!
//! let verifier = Verifier::new(scheme, vec![Key::Secret(secret)])?;
//! let verified = verifier.verify(&Request::new(&signed, body), now)?;
//! assert_eq!(verified.timestamp(), Some(1_700_000_000));
//! # Ok::<(), clawlet_verify::VerifyError>(())
//! ```

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::digest::KeyInit;
use sha2::Digest as _;

use crate::headers::Lookup;
use crate::mac::Decimal;
use crate::{Headers, Secret, Tolerance, UnixTime, Verified, VerifyError, json};

mod template;

pub use template::{Part, Template};

/// A name in a scheme: a header name, a JSON pointer, a prefix. Presets borrow `'static` text;
/// schemes read from configuration own theirs.
pub type Name = Cow<'static, str>;

/// Where a value is found in a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// A header, by case-insensitive name.
    Header(Name),
    /// The first header if present, else the second (Standard Webhooks' `webhook-*` / `svix-*`).
    HeaderOr(Name, Name),
    /// A JSON pointer (RFC 6901) into the body.
    Json(Name),
}

/// How a signature is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Hexadecimal, either case.
    Hex,
    /// Lower-case hexadecimal only; an upper-case digit is malformed.
    HexLower,
    /// Standard base64 (`+/`), padding optional, no stray bits.
    Base64,
    /// The value itself, compared with a shared token ([`Algorithm::Token`]).
    Text,
}

/// How one location holds several signatures.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum List {
    /// Exactly one signature: the prefix, then the encoded signature, nothing else.
    Single,
    /// Entries separated by this byte (spaces around an entry are ignored); every entry that
    /// starts with the prefix is a candidate, others (other versions) are skipped.
    Separated(u8),
    /// `key=value` elements separated by `separator` (`t=…,v1=…`, `ts=…;h1=…`); every element
    /// named `key` is a candidate (after the prefix, usually empty).
    Pairs {
        /// The byte between elements.
        separator: u8,
        /// The element name of a signature (`v1`, `h1`).
        key: Name,
    },
}

/// Where the signature is and how it is written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    /// Where the value is.
    pub location: Location,
    /// Text before each encoded signature (`sha256=`, `v0=`, `v1,`); may be empty.
    pub prefix: Name,
    /// How a signature is encoded.
    pub encoding: Encoding,
    /// How several signatures (rotation) are laid out.
    pub list: List,
}

impl Signature {
    /// Whether a signed value always parses back: a prefix or pair key holding the list's
    /// separator (or `=` in a key, or spaces a separated list trims) would split differently
    /// than it was written.
    fn list_is_unambiguous(&self) -> bool {
        let prefix = self.prefix.as_bytes();
        match &self.list {
            List::Single => true,
            List::Separated(sep) => {
                !prefix.contains(sep)
                    && prefix.first() != Some(&b' ')
                    && prefix.last() != Some(&b' ')
            }
            List::Pairs { separator, key } => {
                !prefix.contains(separator)
                    && !key.is_empty()
                    && !key.as_bytes().contains(separator)
                    && !key.contains('=')
            }
        }
    }
}

/// The signature algorithm. Variants whose crate feature is off are still data, so a preset
/// table stays whole; [`Verifier::new`] then answers [`VerifyError::UnsupportedKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC-SHA1 with a shared secret (feature `sha1`).
    HmacSha1,
    /// HMAC-SHA256 with a shared secret.
    HmacSha256,
    /// HMAC-SHA512 with a shared secret.
    HmacSha512,
    /// Ed25519 with the sender's public key (feature `ed25519`); strict verification.
    Ed25519,
    /// ECDSA P-256 over SHA-256, signature in ASN.1 DER (feature `p256`).
    EcdsaP256Der,
    /// ECDSA P-256 over SHA-256, signature as the 64 bytes `r || s` (feature `p256`).
    EcdsaP256Raw,
    /// No signature: the value must equal a shared token, compared in constant time.
    Token,
}

impl Algorithm {
    fn digest_len(self) -> Option<usize> {
        match self {
            Algorithm::HmacSha1 => Some(20),
            Algorithm::HmacSha256 => Some(32),
            Algorithm::HmacSha512 => Some(64),
            _ => None,
        }
    }

    fn is_hmac(self) -> bool {
        self.digest_len().is_some()
    }

    fn compiled(self) -> bool {
        match self {
            Algorithm::HmacSha1 => cfg!(feature = "sha1"),
            Algorithm::Ed25519 => cfg!(feature = "ed25519"),
            Algorithm::EcdsaP256Der | Algorithm::EcdsaP256Raw => cfg!(feature = "p256"),
            Algorithm::HmacSha256 | Algorithm::HmacSha512 | Algorithm::Token => true,
        }
    }
}

/// Where the signed timestamp comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TimestampSource {
    /// A header or a body field.
    Location(Location),
    /// An element of the signature value itself ([`List::Pairs`]), such as `t` or `ts`.
    Pair(Name),
    /// Given by the caller with [`Request::timestamp`].
    Caller,
}

/// The unit of a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Seconds since the Unix epoch.
    Seconds,
    /// Milliseconds since the Unix epoch.
    Millis,
    /// Milliseconds since the Unix epoch, signed as written, but checked as HubSpot's library
    /// does: truncated to its second, and an age equal to the past window is already too old.
    MillisWholeSecondsExclusive,
}

/// A signed timestamp and how far from `now` it may be.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TimestampRule {
    /// Where it is.
    pub source: TimestampSource,
    /// Its unit.
    pub unit: Unit,
    /// The accepted distance from `now`, each side.
    pub tolerance: Tolerance,
}

/// A whole signature scheme, as data.
///
/// `id`, `event` and `token` are not checked: they tell the caller where the delivery id (for
/// dedup), the event type and a one-time token live; read them with [`Scheme::extract`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scheme {
    /// Where the signature is and how it is written.
    pub signature: Signature,
    /// What is signed.
    pub payload: Template,
    /// How it is signed.
    pub algorithm: Algorithm,
    /// The signed timestamp, if the scheme has one.
    pub timestamp: Option<TimestampRule>,
    /// Where the delivery id is (also what `{id}` reads).
    pub id: Option<Location>,
    /// Where the event type is.
    pub event: Option<Location>,
    /// Where a one-time token is that the receiver must accept only once (Mailgun).
    pub token: Option<Location>,
    /// A query parameter of the URL carrying the hex SHA-256 of the body (Twilio's `bodySHA256`
    /// for JSON bodies): when present, the body must match it, and `{form}` is empty.
    pub body_hash_param: Option<Name>,
}

impl Default for Scheme {
    /// `X-Signature: sha256=<lower-case hex>` of HMAC-SHA256 over the body, no timestamp: the
    /// shape GitHub popularised.
    fn default() -> Self {
        Scheme {
            signature: Signature {
                location: Location::Header(Cow::Borrowed("x-signature")),
                prefix: Cow::Borrowed("sha256="),
                encoding: Encoding::HexLower,
                list: List::Single,
            },
            payload: Template::from_parts(&[Part::Body]),
            algorithm: Algorithm::HmacSha256,
            timestamp: None,
            id: None,
            event: None,
            token: None,
            body_hash_param: None,
        }
    }
}

/// A key that verifies: a shared secret, or a sender's public key.
#[derive(Clone)]
#[non_exhaustive]
pub enum Key {
    /// An HMAC secret or a shared token.
    Secret(Secret),
    /// An Ed25519 public key.
    #[cfg(feature = "ed25519")]
    Ed25519(ed25519_dalek::VerifyingKey),
    /// A P-256 public key.
    #[cfg(feature = "p256")]
    P256(p256::ecdsa::VerifyingKey),
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Secret(secret) => write!(f, "Key::Secret({secret:?})"),
            #[cfg(feature = "ed25519")]
            Key::Ed25519(_) => f.write_str("Key::Ed25519(public)"),
            #[cfg(feature = "p256")]
            Key::P256(_) => f.write_str("Key::P256(public)"),
        }
    }
}

impl Key {
    /// A shared secret used as is.
    ///
    /// # Errors
    ///
    /// [`VerifyError::InvalidSecret`] when it is empty.
    pub fn secret(secret: impl AsRef<[u8]>) -> Result<Key, VerifyError> {
        Secret::new(secret).map(Key::Secret)
    }

    /// An Ed25519 public key from 64 hex digits (Discord's `public_key`).
    ///
    /// # Errors
    ///
    /// [`VerifyError::UnsupportedKey`] when it is not 32 hex-encoded bytes of a valid point.
    #[cfg(feature = "ed25519")]
    pub fn ed25519_hex(hex: &str) -> Result<Key, VerifyError> {
        let mut bytes = [0u8; 32];
        if decode_hex(hex.trim().as_bytes(), false, &mut bytes) != Some(32) {
            return Err(VerifyError::UnsupportedKey);
        }
        Key::ed25519_bytes(&bytes)
    }

    /// An Ed25519 public key from standard base64 (the part after Standard Webhooks' `whpk_`).
    ///
    /// # Errors
    ///
    /// [`VerifyError::UnsupportedKey`] when it is not 32 base64-encoded bytes of a valid point.
    #[cfg(feature = "ed25519")]
    pub fn ed25519_base64(text: &str) -> Result<Key, VerifyError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| VerifyError::UnsupportedKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| VerifyError::UnsupportedKey)?;
        Key::ed25519_bytes(&bytes)
    }

    #[cfg(feature = "ed25519")]
    fn ed25519_bytes(bytes: &[u8; 32]) -> Result<Key, VerifyError> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(Key::Ed25519)
            .map_err(|_| VerifyError::UnsupportedKey)
    }

    /// A P-256 public key from base64 of its DER SubjectPublicKeyInfo (SendGrid's
    /// `public_key`, also what PEM wraps).
    ///
    /// # Errors
    ///
    /// [`VerifyError::UnsupportedKey`] when it is not such a key.
    #[cfg(feature = "p256")]
    pub fn p256_spki_base64(text: &str) -> Result<Key, VerifyError> {
        use p256::pkcs8::DecodePublicKey as _;
        let der = BASE64
            .decode(text.trim())
            .map_err(|_| VerifyError::UnsupportedKey)?;
        p256::ecdsa::VerifyingKey::from_public_key_der(&der)
            .map(Key::P256)
            .map_err(|_| VerifyError::UnsupportedKey)
    }

    fn fits(&self, algorithm: Algorithm) -> bool {
        match self {
            Key::Secret(_) => algorithm.is_hmac() || algorithm == Algorithm::Token,
            #[cfg(feature = "ed25519")]
            Key::Ed25519(_) => algorithm == Algorithm::Ed25519,
            #[cfg(feature = "p256")]
            Key::P256(_) => matches!(algorithm, Algorithm::EcdsaP256Der | Algorithm::EcdsaP256Raw),
        }
    }
}

/// A key that signs: the sender's side, for `send` commands and tests.
#[derive(Clone)]
#[non_exhaustive]
pub enum SigningKey {
    /// An HMAC secret or a shared token.
    Secret(Secret),
    /// An Ed25519 private key.
    #[cfg(feature = "ed25519")]
    Ed25519(ed25519_dalek::SigningKey),
    /// A P-256 private key.
    #[cfg(feature = "p256")]
    P256(p256::ecdsa::SigningKey),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

impl SigningKey {
    /// An Ed25519 private key from its 32-byte seed.
    #[cfg(feature = "ed25519")]
    #[must_use]
    pub fn ed25519_seed(seed: &[u8; 32]) -> SigningKey {
        SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// A P-256 private key from its 32-byte big-endian scalar.
    ///
    /// # Errors
    ///
    /// [`VerifyError::UnsupportedKey`] when the scalar is zero or not below the group order.
    #[cfg(feature = "p256")]
    pub fn p256_scalar(scalar: &[u8; 32]) -> Result<SigningKey, VerifyError> {
        p256::ecdsa::SigningKey::from_slice(scalar)
            .map(SigningKey::P256)
            .map_err(|_| VerifyError::UnsupportedKey)
    }

    /// The matching verification key.
    #[must_use]
    pub fn verifying_key(&self) -> Key {
        match self {
            SigningKey::Secret(secret) => Key::Secret(secret.clone()),
            #[cfg(feature = "ed25519")]
            SigningKey::Ed25519(key) => Key::Ed25519(key.verifying_key()),
            #[cfg(feature = "p256")]
            SigningKey::P256(key) => Key::P256(*key.verifying_key()),
        }
    }

    /// The public key as the senders publish it: hex for Ed25519 (Discord), base64 of the DER
    /// SubjectPublicKeyInfo for P-256 (SendGrid); `None` for a shared secret.
    #[must_use]
    pub fn public_key_text(&self) -> Option<String> {
        match self {
            SigningKey::Secret(_) => None,
            #[cfg(feature = "ed25519")]
            SigningKey::Ed25519(key) => {
                let mut out = String::with_capacity(64);
                push_hex(&mut out, key.verifying_key().as_bytes());
                Some(out)
            }
            #[cfg(feature = "p256")]
            SigningKey::P256(key) => {
                // SubjectPublicKeyInfo of an uncompressed P-256 point: a fixed DER header naming
                // id-ecPublicKey and prime256v1, then the 65-byte point.
                const SPKI_HEADER: [u8; 26] = [
                    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
                    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
                ];
                let point = key.verifying_key().to_sec1_point(false);
                let mut der = Vec::with_capacity(SPKI_HEADER.len() + point.len());
                der.extend_from_slice(&SPKI_HEADER);
                der.extend_from_slice(point.as_bytes());
                Some(BASE64.encode(der))
            }
        }
    }
}

/// The parts of a request a scheme may read.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    headers: &'a dyn Headers,
    body: &'a [u8],
    url: Option<&'a str>,
    method: Option<&'a str>,
    timestamp: Option<i64>,
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("body_len", &self.body.len())
            .field("url", &self.url)
            .field("method", &self.method)
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

impl<'a> Request<'a> {
    /// The headers and the raw body.
    #[must_use]
    pub fn new(headers: &'a dyn Headers, body: &'a [u8]) -> Request<'a> {
        Request {
            headers,
            body,
            url: None,
            method: None,
            timestamp: None,
        }
    }

    /// The full public URL the sender posted to, for schemes that sign `{url}`.
    #[must_use]
    pub fn url(mut self, url: &'a str) -> Request<'a> {
        self.url = Some(url);
        self
    }

    /// The HTTP method, for schemes that sign `{method}`.
    #[must_use]
    pub fn method(mut self, method: &'a str) -> Request<'a> {
        self.method = Some(method);
        self
    }

    /// The timestamp, in the scheme's unit, for [`TimestampSource::Caller`].
    #[must_use]
    pub fn timestamp(mut self, timestamp: i64) -> Request<'a> {
        self.timestamp = Some(timestamp);
        self
    }
}

/// A scheme paired with keys checked once: the value a receiver keeps per webhook.
#[derive(Debug, Clone)]
pub struct Verifier {
    scheme: Scheme,
    keys: Vec<Key>,
    /// For an HMAC scheme, each key's MAC with the key already absorbed, in `keys`' order.
    keyed: Vec<Keyed>,
}

/// An HMAC with its key absorbed once, at construction: a verification clones it rather than
/// hashing the key's two padded blocks again, which is about 2 % of the work at 7.7 KB.
#[derive(Clone)]
enum Keyed {
    #[cfg(feature = "sha1")]
    Sha1(hmac::Hmac<sha1::Sha1>),
    Sha256(hmac::Hmac<sha2::Sha256>),
    Sha512(hmac::Hmac<sha2::Sha512>),
}

impl Keyed {
    /// The keyed MAC for `algorithm`, or `None` for an algorithm that is not an HMAC.
    fn new(algorithm: Algorithm, key: &[u8]) -> Result<Option<Self>, VerifyError> {
        fn keyed<M: KeyInit>(key: &[u8]) -> Result<M, VerifyError> {
            <M as KeyInit>::new_from_slice(key).map_err(|_| VerifyError::InvalidSecret)
        }
        Ok(Some(match algorithm {
            #[cfg(feature = "sha1")]
            Algorithm::HmacSha1 => Self::Sha1(keyed(key)?),
            Algorithm::HmacSha256 => Self::Sha256(keyed(key)?),
            Algorithm::HmacSha512 => Self::Sha512(keyed(key)?),
            _ => return Ok(None),
        }))
    }

    /// The MAC of what `feed` streams.
    fn digest(
        &self,
        feed: impl FnOnce(&mut dyn FnMut(&[u8])) -> Result<(), VerifyError>,
    ) -> Result<crate::mac::Digest, VerifyError> {
        fn run<M: hmac::Mac + Clone>(
            keyed: &M,
            feed: impl FnOnce(&mut dyn FnMut(&[u8])) -> Result<(), VerifyError>,
        ) -> Result<crate::mac::Digest, VerifyError> {
            let mut mac = keyed.clone();
            feed(&mut |part| mac.update(part))?;
            Ok(crate::mac::Digest::from_slice(&mac.finalize().into_bytes()))
        }
        match self {
            #[cfg(feature = "sha1")]
            Self::Sha1(mac) => run(mac, feed),
            Self::Sha256(mac) => run(mac, feed),
            Self::Sha512(mac) => run(mac, feed),
        }
    }
}

impl fmt::Debug for Keyed {
    /// Key material: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyed([redacted])")
    }
}

impl Verifier {
    /// Checks that the keys fit the scheme and the scheme is complete.
    ///
    /// # Errors
    ///
    /// [`VerifyError::NoSecrets`] for no key, [`VerifyError::UnsupportedKey`] for a key of
    /// another kind than the algorithm needs or an algorithm whose feature is off,
    /// [`VerifyError::InvalidTemplate`] when the template reads `{timestamp}` or `{id}` and the
    /// scheme says nowhere where they are, a pair timestamp is used with a non-pair list, or the
    /// prefix or pair key holds the list's separator (a signed value would not parse back).
    pub fn new(scheme: Scheme, keys: Vec<Key>) -> Result<Verifier, VerifyError> {
        if keys.is_empty() {
            return Err(VerifyError::NoSecrets);
        }
        if !scheme.algorithm.compiled() || !keys.iter().all(|k| k.fits(scheme.algorithm)) {
            return Err(VerifyError::UnsupportedKey);
        }
        scheme.check()?;
        let mut keyed = Vec::new();
        for key in &keys {
            if let Key::Secret(secret) = key
                && let Some(mac) = Keyed::new(scheme.algorithm, secret.expose())?
            {
                keyed.push(mac);
            }
        }
        Ok(Verifier {
            scheme,
            keys,
            keyed,
        })
    }

    /// The scheme.
    #[must_use]
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// Verifies a request at time `now`.
    ///
    /// The signature is checked before the timestamp, so a timestamp error always means an
    /// authentic but stale delivery (a replay or a clock problem), never a forgery. A delivery
    /// replayed inside the tolerance passes again: deduplicate on the delivery id.
    ///
    /// # Errors
    ///
    /// Any [`VerifyError`] of kind bad request or unauthenticated.
    pub fn verify(
        &self,
        request: &Request<'_>,
        now: impl Into<UnixTime>,
    ) -> Result<Verified, VerifyError> {
        let scheme = &self.scheme;
        let raw = scheme.read(&scheme.signature.location, request)?;
        let timestamp = scheme.read_timestamp(request, &raw)?;
        let candidates = Candidates::new(&scheme.signature, scheme.algorithm, &raw)?;
        let mut index = self.matching_key(&candidates, request, timestamp)?;
        if index.is_none()
            && scheme.payload.uses(|p| matches!(p, Part::UrlEitherPort))
            && let Some(other) = request.url.and_then(other_port_form)
        {
            // Only a first miss pays for the second URL form.
            let other_request = Request {
                url: Some(&other),
                ..*request
            };
            index = self.matching_key(&candidates, &other_request, timestamp)?;
        }
        match index {
            Some(index) => {
                scheme.check_body_hash(request)?;
                let mut verified = Verified::new(index);
                if let (Some(rule), Some(ts)) = (&scheme.timestamp, timestamp) {
                    rule.tolerance
                        .check_millis(aged_from_millis(ts, rule.unit), now.into())?;
                    // In i64: a 128-bit division is a call into the compiler's runtime.
                    let secs = match rule.unit {
                        Unit::Seconds => ts,
                        Unit::Millis | Unit::MillisWholeSecondsExclusive => ts.div_euclid(1000),
                    };
                    verified = verified.with_timestamp(secs);
                }
                Ok(verified)
            }
            None => Err(VerifyError::Mismatch),
        }
    }

    /// The index of the first key whose signature `request` carries.
    fn matching_key(
        &self,
        candidates: &Candidates<'_>,
        request: &Request<'_>,
        timestamp: Option<i64>,
    ) -> Result<Option<usize>, VerifyError> {
        for (index, key) in self.keys.iter().enumerate() {
            let keyed = self.keyed.get(index);
            if self
                .scheme
                .matches(key, keyed, candidates, request, timestamp)?
            {
                return Ok(Some(index));
            }
        }
        Ok(None)
    }
}

/// The other form of `url` that Twilio's own validator also accepts: with its port removed when
/// it names one (any port, as that validator does), or with the scheme's default port added when
/// it names none; `None` for another scheme or no authority.
fn other_port_form(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default = if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else if scheme.eq_ignore_ascii_case("http") {
        "80"
    } else {
        return None;
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = &authority[authority.rfind('@').map_or(0, |at| at + 1)..];
    if host_port.is_empty() {
        return None;
    }
    // Where the host and port end in `url`; a `:` inside `[…]` belongs to an IPv6 address.
    let end = scheme.len() + 3 + authority.len();
    let port = host_port
        .rfind(':')
        .filter(|&colon| !host_port[colon..].contains(']'))
        .map(|colon| &host_port[colon + 1..]);
    match port {
        None => {
            let mut other = String::with_capacity(url.len() + 1 + default.len());
            other.push_str(&url[..end]);
            other.push(':');
            other.push_str(default);
            other.push_str(&url[end..]);
            Some(other)
        }
        Some(port) => {
            let cut = end - port.len() - 1;
            let mut other = String::with_capacity(url.len() - port.len() - 1);
            other.push_str(&url[..cut]);
            other.push_str(&url[end..]);
            Some(other)
        }
    }
}

impl Scheme {
    fn check(&self) -> Result<(), VerifyError> {
        let incomplete = (self.payload.uses(|p| matches!(p, Part::Timestamp))
            && self.timestamp.is_none())
            || (self.payload.uses(|p| matches!(p, Part::Id)) && self.id.is_none())
            || matches!(
                (&self.timestamp, &self.signature.list),
                (
                    Some(TimestampRule {
                        source: TimestampSource::Pair(_),
                        ..
                    }),
                    List::Single | List::Separated(_)
                )
            );
        if incomplete || !self.signature.list_is_unambiguous() {
            return Err(VerifyError::InvalidTemplate);
        }
        Ok(())
    }

    /// Reads a location (the scheme's `id`, `event` or `token`, or any other) from a request:
    /// a header's value, or a body field (a string's decoded contents, a number as written).
    /// `None` when it is absent, empty or the body is not valid JSON.
    #[must_use]
    pub fn extract<'a>(
        location: &Location,
        headers: &'a dyn Headers,
        body: &'a [u8],
    ) -> Option<Cow<'a, [u8]>> {
        let value = match location {
            Location::Header(name) => headers.get(name).map(Cow::Borrowed),
            Location::HeaderOr(first, second) => headers
                .get(first)
                .or_else(|| headers.get(second))
                .map(Cow::Borrowed),
            Location::Json(pointer) => json::lookup(body, pointer),
        };
        value.filter(|v| !v.is_empty())
    }

    /// Like [`Scheme::extract`], with the errors verification reports.
    fn read<'a>(
        &self,
        location: &Location,
        request: &Request<'a>,
    ) -> Result<Cow<'a, [u8]>, VerifyError> {
        // One lookup per header name: `lookup` also says whether the header is repeated.
        let headers = request.headers;
        let found = match location {
            Location::Header(name) => headers.lookup(name),
            Location::HeaderOr(first, second) => match headers.lookup(first) {
                Lookup::Absent => headers.lookup(second),
                found => found,
            },
            Location::Json(_) => {
                return Scheme::extract(location, headers, request.body)
                    .ok_or_else(|| VerifyError::missing(location_name(location)));
            }
        };
        match found {
            Lookup::Repeated => Err(VerifyError::MalformedHeader),
            Lookup::Once(value) if !value.is_empty() => Ok(Cow::Borrowed(value)),
            Lookup::Once(_) | Lookup::Absent => Err(VerifyError::missing(location_name(location))),
        }
    }

    fn read_timestamp(
        &self,
        request: &Request<'_>,
        signature: &[u8],
    ) -> Result<Option<i64>, VerifyError> {
        let Some(rule) = &self.timestamp else {
            return Ok(None);
        };
        let value = match &rule.source {
            TimestampSource::Caller => {
                return request
                    .timestamp
                    .map(Some)
                    .ok_or(VerifyError::missing("timestamp"));
            }
            TimestampSource::Location(location) => self.read(location, request)?,
            TimestampSource::Pair(name) => {
                let List::Pairs { separator, .. } = &self.signature.list else {
                    return Err(VerifyError::InvalidTemplate);
                };
                let mut found = None;
                for (key, value) in pairs(signature, *separator) {
                    if key == name.as_bytes() {
                        if found.is_some() {
                            return Err(VerifyError::MalformedHeader);
                        }
                        found = Some(value);
                    }
                }
                Cow::Borrowed(found.ok_or(VerifyError::MalformedHeader)?)
            }
        };
        crate::mac::parse_timestamp(&value).map(Some)
    }

    fn matches(
        &self,
        key: &Key,
        keyed: Option<&Keyed>,
        candidates: &Candidates<'_>,
        request: &Request<'_>,
        timestamp: Option<i64>,
    ) -> Result<bool, VerifyError> {
        match (key, self.algorithm) {
            (Key::Secret(secret), Algorithm::Token) => {
                Ok(candidates.any(|c| secret.matches_token(c)))
            }
            (Key::Secret(secret), algorithm) => {
                let digest = match keyed {
                    Some(mac) => mac.digest(|sink| self.feed(request, timestamp, sink))?,
                    None => self.hmac(algorithm, secret.expose(), request, timestamp)?,
                };
                Ok(candidates.any_decoded(|sig| crate::mac::ct_eq(sig, digest.as_bytes())))
            }
            #[cfg(feature = "ed25519")]
            (Key::Ed25519(public), _) => {
                let mut message = Vec::new();
                self.feed(request, timestamp, &mut |part| {
                    message.extend_from_slice(part)
                })?;
                Ok(candidates.any_decoded(|sig| {
                    <[u8; 64]>::try_from(sig).is_ok_and(|sig| {
                        public
                            .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&sig))
                            .is_ok()
                    })
                }))
            }
            #[cfg(feature = "p256")]
            (Key::P256(public), algorithm) => {
                use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
                let mut hasher = sha2::Sha256::new();
                self.feed(request, timestamp, &mut |part| hasher.update(part))?;
                let prehash = hasher.finalize();
                Ok(candidates.any_decoded(|sig| {
                    let sig = if algorithm == Algorithm::EcdsaP256Der {
                        p256::ecdsa::Signature::from_der(sig).ok()
                    } else {
                        p256::ecdsa::Signature::from_slice(sig).ok()
                    };
                    sig.is_some_and(|sig| public.verify_prehash(&prehash, &sig).is_ok())
                }))
            }
        }
    }

    fn hmac(
        &self,
        algorithm: Algorithm,
        key: &[u8],
        request: &Request<'_>,
        timestamp: Option<i64>,
    ) -> Result<crate::mac::Digest, VerifyError> {
        fn run<M: hmac::Mac + KeyInit>(
            scheme: &Scheme,
            key: &[u8],
            request: &Request<'_>,
            timestamp: Option<i64>,
        ) -> Result<crate::mac::Digest, VerifyError> {
            let mut mac =
                <M as KeyInit>::new_from_slice(key).map_err(|_| VerifyError::InvalidSecret)?;
            scheme.feed(request, timestamp, &mut |part| mac.update(part))?;
            Ok(crate::mac::Digest::from_slice(&mac.finalize().into_bytes()))
        }
        match algorithm {
            #[cfg(feature = "sha1")]
            Algorithm::HmacSha1 => run::<hmac::Hmac<sha1::Sha1>>(self, key, request, timestamp),
            Algorithm::HmacSha256 => run::<hmac::Hmac<sha2::Sha256>>(self, key, request, timestamp),
            Algorithm::HmacSha512 => run::<hmac::Hmac<sha2::Sha512>>(self, key, request, timestamp),
            _ => Err(VerifyError::UnsupportedKey),
        }
    }

    /// Streams the signed payload, part by part.
    fn feed(
        &self,
        request: &Request<'_>,
        timestamp: Option<i64>,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), VerifyError> {
        for part in self.payload.parts() {
            match part {
                Part::Literal(text) => sink(text.as_bytes()),
                Part::Body => sink(request.body),
                Part::Timestamp => {
                    let ts = timestamp.ok_or(VerifyError::InvalidTemplate)?;
                    sink(Decimal::new(ts).as_bytes());
                }
                Part::Id => {
                    let location = self.id.as_ref().ok_or(VerifyError::InvalidTemplate)?;
                    sink(&self.read(location, request)?);
                }
                Part::Url | Part::UrlEitherPort => {
                    sink(request.url.ok_or(VerifyError::InvalidTemplate)?.as_bytes());
                }
                Part::Method => sink(
                    request
                        .method
                        .ok_or(VerifyError::InvalidTemplate)?
                        .as_bytes(),
                ),
                Part::Header(name) => sink(&self.read(&Location::Header(name.clone()), request)?),
                Part::Json(pointer) => sink(&self.read(&Location::Json(pointer.clone()), request)?),
                Part::Form => {
                    let json_body = self
                        .body_hash_param
                        .as_ref()
                        .zip(request.url)
                        .is_some_and(|(param, url)| query_param(url, param).is_some());
                    if !json_body {
                        for (name, value) in sorted_form(request.body) {
                            sink(&name);
                            sink(&value);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn check_body_hash(&self, request: &Request<'_>) -> Result<(), VerifyError> {
        let Some((param, url)) = self.body_hash_param.as_ref().zip(request.url) else {
            return Ok(());
        };
        let Some(expected) = query_param(url, param) else {
            return Ok(());
        };
        let digest = sha2::Sha256::digest(request.body);
        let mut buf = [0u8; MAX_DECODED];
        let matches = decode(&expected, Encoding::Hex, &mut buf)
            .is_some_and(|n| crate::mac::ct_eq(&buf[..n], &digest));
        if matches {
            Ok(())
        } else {
            Err(VerifyError::BodyHashMismatch)
        }
    }

    /// The value to place at the signature location for `request` signed at `at`: the prefix
    /// and the encoded signature, or for [`List::Pairs`] the whole `t=…,v1=…` value.
    ///
    /// For a scheme that reads its timestamp or id from the body, the body must already hold
    /// the same values; `at` is what `{timestamp}` signs.
    ///
    /// # Errors
    ///
    /// [`VerifyError::UnsupportedKey`] when the key does not fit, [`VerifyError::InvalidTemplate`]
    /// when the template needs a URL, method or id the request lacks, or
    /// [`VerifyError::MissingHeader`] for a header the template reads.
    pub fn signature_value(
        &self,
        key: &SigningKey,
        request: &Request<'_>,
        at: UnixTime,
    ) -> Result<String, VerifyError> {
        if !self.algorithm.compiled() || !key.verifying_key().fits(self.algorithm) {
            return Err(VerifyError::UnsupportedKey);
        }
        self.check()?;
        let timestamp = self.timestamp.as_ref().map(|rule| match rule.source {
            TimestampSource::Caller => request.timestamp.unwrap_or_else(|| in_unit(at, rule.unit)),
            _ => in_unit(at, rule.unit),
        });
        let raw = self.raw_signature(key, request, timestamp)?;
        let mut encoded = String::from(self.signature.prefix.as_ref());
        match self.signature.encoding {
            Encoding::Hex | Encoding::HexLower => push_hex(&mut encoded, &raw),
            Encoding::Base64 => encoded.push_str(&BASE64.encode(&raw)),
            Encoding::Text => encoded.push_str(&String::from_utf8_lossy(&raw)),
        }
        Ok(match &self.signature.list {
            List::Pairs { separator, key } => {
                let mut out = String::new();
                if let (
                    Some(TimestampRule {
                        source: TimestampSource::Pair(name),
                        ..
                    }),
                    Some(ts),
                ) = (&self.timestamp, timestamp)
                {
                    out.push_str(name);
                    out.push('=');
                    out.push_str(
                        core::str::from_utf8(Decimal::new(ts).as_bytes()).unwrap_or_default(),
                    );
                    out.push(char::from(*separator));
                }
                out.push_str(key);
                out.push('=');
                out.push_str(&encoded);
                out
            }
            List::Single | List::Separated(_) => encoded,
        })
    }

    /// The headers a sender adds for `request` signed at `at`: the signature header, and the
    /// timestamp header when the scheme reads one. Locations in the body are the caller's to
    /// fill (see [`Scheme::signature_value`]).
    ///
    /// # Errors
    ///
    /// As [`Scheme::signature_value`].
    pub fn sign(
        &self,
        key: &SigningKey,
        request: &Request<'_>,
        at: UnixTime,
    ) -> Result<Vec<(String, String)>, VerifyError> {
        let value = self.signature_value(key, request, at)?;
        let mut headers = Vec::with_capacity(2);
        if let Some(name) = header_name(&self.signature.location) {
            headers.push((String::from(name), value));
        }
        if let Some(TimestampRule {
            source: TimestampSource::Location(location),
            unit,
            ..
        }) = &self.timestamp
            && let Some(name) = header_name(location)
        {
            let ts = Decimal::new(in_unit(at, *unit));
            headers.push((
                String::from(name),
                String::from_utf8_lossy(ts.as_bytes()).into_owned(),
            ));
        }
        Ok(headers)
    }

    fn raw_signature(
        &self,
        key: &SigningKey,
        request: &Request<'_>,
        timestamp: Option<i64>,
    ) -> Result<Vec<u8>, VerifyError> {
        match key {
            SigningKey::Secret(secret) if self.algorithm == Algorithm::Token => {
                Ok(secret.expose().to_vec())
            }
            SigningKey::Secret(secret) => Ok(self
                .hmac(self.algorithm, secret.expose(), request, timestamp)?
                .as_bytes()
                .to_vec()),
            #[cfg(feature = "ed25519")]
            SigningKey::Ed25519(private) => {
                use ed25519_dalek::Signer as _;
                let mut message = Vec::new();
                self.feed(request, timestamp, &mut |part| {
                    message.extend_from_slice(part)
                })?;
                Ok(private.sign(&message).to_bytes().to_vec())
            }
            #[cfg(feature = "p256")]
            SigningKey::P256(private) => {
                use p256::ecdsa::signature::hazmat::PrehashSigner as _;
                let mut hasher = sha2::Sha256::new();
                self.feed(request, timestamp, &mut |part| hasher.update(part))?;
                let signature: p256::ecdsa::Signature = private
                    .sign_prehash(&hasher.finalize())
                    .map_err(|_| VerifyError::UnsupportedKey)?;
                Ok(if self.algorithm == Algorithm::EcdsaP256Der {
                    signature.to_der().as_bytes().to_vec()
                } else {
                    signature.to_bytes().to_vec()
                })
            }
        }
    }
}

fn header_name(location: &Location) -> Option<&str> {
    match location {
        Location::Header(name) | Location::HeaderOr(name, _) => Some(name),
        Location::Json(_) => None,
    }
}

fn location_name(location: &Location) -> Name {
    match location {
        Location::Header(name) | Location::HeaderOr(name, _) | Location::Json(name) => name.clone(),
    }
}

fn in_unit(at: UnixTime, unit: Unit) -> i64 {
    match unit {
        Unit::Seconds => at.as_secs(),
        Unit::Millis | Unit::MillisWholeSecondsExclusive => at.as_millis(),
    }
}

fn to_millis(timestamp: i64, unit: Unit) -> i128 {
    match unit {
        Unit::Seconds => i128::from(timestamp) * 1000,
        Unit::Millis | Unit::MillisWholeSecondsExclusive => i128::from(timestamp),
    }
}

/// The instant, in milliseconds, that the tolerance measures the age from.
fn aged_from_millis(timestamp: i64, unit: Unit) -> i128 {
    match unit {
        // In whole milliseconds, `age < window` is `age + 1 ms <= window`: one millisecond
        // earlier than the truncated second turns the inclusive check into the exclusive one.
        Unit::MillisWholeSecondsExclusive => i128::from(timestamp.div_euclid(1000)) * 1000 - 1,
        Unit::Seconds | Unit::Millis => to_millis(timestamp, unit),
    }
}

/// The signature values a request offers, after the list layout and the prefix.
struct Candidates<'a> {
    raw: &'a [u8],
    signature: &'a Signature,
    /// The list's first signatures, found in one pass when the list is checked, so that each
    /// key's comparison does not parse the header again.
    first: [&'a [u8]; FIRST_CANDIDATES],
    /// How many of `first` are filled.
    count: usize,
    /// Whether `first` holds every signature in the list; a longer list is parsed again.
    complete: bool,
    /// A single (non-list) signature, decoded once when its shape is checked.
    decoded: [u8; MAX_DECODED],
    /// How many bytes of `decoded` are filled; `None` for a list or a text signature.
    decoded_len: Option<usize>,
}

/// How many signatures a list keeps from its one pass: more than any sender rotates through.
const FIRST_CANDIDATES: usize = 8;

impl<'a> Candidates<'a> {
    /// Inlined into its one caller, so that the value is built where it is kept instead of
    /// being copied there (it is a few hundred bytes).
    #[inline(always)]
    fn new(
        signature: &'a Signature,
        algorithm: Algorithm,
        raw: &'a [u8],
    ) -> Result<Candidates<'a>, VerifyError> {
        let mut candidates = Candidates {
            raw,
            signature,
            first: [&[]; FIRST_CANDIDATES],
            count: 0,
            complete: true,
            decoded: [0; MAX_DECODED],
            decoded_len: None,
        };
        match &signature.list {
            List::Single => {
                let value = strip_prefix(raw, signature.prefix.as_bytes())
                    .ok_or(VerifyError::MalformedHeader)?;
                // Only the shape is checked here, never the content: a sender bug answers
                // `malformed_header`, apart from a wrong signature.
                if signature.encoding != Encoding::Text {
                    let n = decode(value, signature.encoding, &mut candidates.decoded)
                        .ok_or(VerifyError::MalformedHeader)?;
                    let fits = match algorithm {
                        Algorithm::Ed25519 | Algorithm::EcdsaP256Raw => n == 64,
                        Algorithm::EcdsaP256Der => (8..=MAX_DECODED).contains(&n),
                        Algorithm::Token => true,
                        hmac => Some(n) == hmac.digest_len(),
                    };
                    if !fits {
                        return Err(VerifyError::MalformedHeader);
                    }
                    candidates.decoded_len = Some(n);
                }
                candidates.first[0] = value;
                candidates.count = 1;
            }
            List::Separated(_) | List::Pairs { .. } => {
                let mut first = [&[][..]; FIRST_CANDIDATES];
                let mut count = 0;
                let mut all = candidates.iter();
                for (slot, value) in first.iter_mut().zip(all.by_ref()) {
                    *slot = value;
                    count += 1;
                }
                let complete = all.next().is_none();
                if count == 0 {
                    return Err(VerifyError::NoSignatureForScheme);
                }
                candidates.first = first;
                candidates.count = count;
                candidates.complete = complete;
            }
        }
        Ok(candidates)
    }

    /// Whether `check` holds for any signature in the list.
    fn any(&self, mut check: impl FnMut(&'a [u8]) -> bool) -> bool {
        if self.complete {
            self.first[..self.count].iter().any(|c| check(c))
        } else {
            self.iter().any(check)
        }
    }

    /// Whether `check` holds for any signature in the list once decoded; a malformed one is
    /// skipped.
    fn any_decoded(&self, mut check: impl FnMut(&[u8]) -> bool) -> bool {
        if let Some(n) = self.decoded_len {
            return check(&self.decoded[..n]);
        }
        let mut buf = [0u8; MAX_DECODED];
        self.any(|c| decode(c, self.signature.encoding, &mut buf).is_some_and(|n| check(&buf[..n])))
    }

    fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        signatures(self.raw, self.signature)
    }
}

/// The signatures in the header value `raw`, as `signature` lays them out, prefix removed.
fn signatures<'a>(raw: &'a [u8], signature: &'a Signature) -> Signatures<'a> {
    Signatures {
        rest: Some(raw),
        list: &signature.list,
        prefix: signature.prefix.as_bytes(),
    }
}

/// [`signatures`]: one pass over the value, entry by entry.
struct Signatures<'a> {
    /// What is left to read; `None` once the last entry was read.
    rest: Option<&'a [u8]>,
    list: &'a List,
    prefix: &'a [u8],
}

impl<'a> Iterator for Signatures<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let rest = self.rest?;
            let value = match self.list {
                List::Single => {
                    self.rest = None;
                    Some(rest)
                }
                List::Separated(separator) => {
                    let (entry, after) = split_at_byte(rest, *separator);
                    self.rest = after;
                    Some(trim_spaces(entry))
                }
                List::Pairs { separator, key } => {
                    let (entry, after) = split_at_byte(rest, *separator);
                    self.rest = after;
                    entry
                        .iter()
                        .position(|&b| b == b'=')
                        .filter(|&eq| same(&entry[..eq], key.as_bytes()))
                        .map(|eq| &entry[eq + 1..])
                }
            };
            let stripped = value.and_then(|v| strip_prefix(v, self.prefix));
            if stripped.is_some() {
                return stripped;
            }
        }
    }
}

/// `value` without `prefix`, or `None` when it does not start with it; an empty prefix costs
/// no comparison.
fn strip_prefix<'a>(value: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    if prefix.is_empty() {
        Some(value)
    } else {
        value.strip_prefix(prefix)
    }
}

/// `value` up to the first `separator`, and what follows it (`None` when there is none).
fn split_at_byte(value: &[u8], separator: u8) -> (&[u8], Option<&[u8]>) {
    match find_byte(value, separator) {
        Some(at) => (&value[..at], Some(&value[at + 1..])),
        None => (value, None),
    }
}

/// Byte equality of two short values (a pair's key), without a call into `memcmp`.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

fn trim_spaces(mut s: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' '] = s {
        s = rest;
    }
    s
}

/// `key=value` elements split at the first `=`; an element without `=` is ignored.
fn pairs(raw: &[u8], separator: u8) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = Some(raw);
    core::iter::from_fn(move || {
        loop {
            let (element, after) = split_at_byte(rest?, separator);
            rest = after;
            if let Some(eq) = element.iter().position(|&b| b == b'=') {
                return Some((&element[..eq], &element[eq + 1..]));
            }
        }
    })
}

/// The index of the first `needle` in `haystack`, eight bytes at a time: a signature header is
/// mostly long runs of digits between its separators, and a byte-by-byte scan of it was the
/// verifier's largest cost after the MAC.
fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let pattern = ONES * u64::from(needle);
    let mut chunks = haystack.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        // A zero byte of `word` is a match. The lowest flagged byte is the first zero: a false
        // flag can only sit above a true one (a borrow), never below it.
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let word = u64::from_le_bytes(bytes) ^ pattern;
        let zero = word.wrapping_sub(ONES) & !word & HIGH;
        if zero != 0 {
            return Some(offset + (zero.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|at| offset + at)
}

/// The longest decoded signature: an ECDSA P-256 signature in DER.
const MAX_DECODED: usize = 72;

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes one signature into `out`; `None` when it is malformed or too long. Never allocates.
fn decode(value: &[u8], encoding: Encoding, out: &mut [u8; MAX_DECODED]) -> Option<usize> {
    match encoding {
        Encoding::Hex => decode_hex(value, true, out),
        Encoding::HexLower => decode_hex(value, false, out),
        Encoding::Base64 => {
            if value.len() > MAX_DECODED.div_ceil(3) * 4 {
                return None;
            }
            BASE64.decode_slice(value, out).ok().filter(|&n| n > 0)
        }
        Encoding::Text => None,
    }
}

/// Each byte's value as a hex digit, or [`NOT_HEX`]; the second table refuses upper case.
const HEX_DIGITS: [[u8; 256]; 2] = [hex_table(true), hex_table(false)];
const NOT_HEX: u8 = 0xff;

const fn hex_table(upper: bool) -> [u8; 256] {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        if upper {
            table[b'A' as usize + i] = 10 + i as u8;
        }
        i += 1;
    }
    table
}

/// Decodes hex through a table, without a branch per digit: an invalid digit sets high bits
/// that are checked once at the end.
fn decode_hex(value: &[u8], upper: bool, out: &mut [u8]) -> Option<usize> {
    if value.is_empty() || !value.len().is_multiple_of(2) || value.len() / 2 > out.len() {
        return None;
    }
    let table = &HEX_DIGITS[usize::from(!upper)];
    let mut invalid = 0u8;
    for (slot, pair) in out.iter_mut().zip(value.chunks_exact(2)) {
        let (high, low) = (table[usize::from(pair[0])], table[usize::from(pair[1])]);
        invalid |= high | low;
        *slot = (high << 4) | (low & 0x0f);
    }
    (invalid & 0xf0 == 0).then_some(value.len() / 2)
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}

/// The decoded value of query parameter `name` in `url`, if present.
fn query_param<'a>(url: &'a str, name: &str) -> Option<Cow<'a, [u8]>> {
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key.as_bytes()).as_ref() == name.as_bytes())
            .then(|| percent_decode(value.as_bytes()))
    })
}

/// `application/x-www-form-urlencoded` pairs, sorted by name then value, duplicates dropped,
/// as Twilio's libraries render them.
/// A decoded form parameter: name and value.
type FormPair<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

fn sorted_form(body: &[u8]) -> Vec<FormPair<'_>> {
    let mut pairs: Vec<_> = body
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let eq = pair.iter().position(|&b| b == b'=');
            let (key, value) = eq.map_or((pair, &b""[..]), |i| (&pair[..i], &pair[i + 1..]));
            (percent_decode(key), percent_decode(value))
        })
        .collect();
    pairs.sort();
    pairs.dedup();
    pairs
}

/// Form decoding: `+` is a space, `%XX` a byte; a malformed escape stays as written.
fn percent_decode(s: &[u8]) -> Cow<'_, [u8]> {
    if !s.iter().any(|&b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let hex = |c: u8| {
            char::from(c)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
        };
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                s.get(i + 1).copied().and_then(hex),
                s.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push((h << 4) | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// The hex SHA-256 of a body, as a URL's body-hash parameter carries it (Twilio's `bodySHA256`).
#[must_use]
pub fn body_sha256_hex(body: &[u8]) -> String {
    let mut out = String::with_capacity(64);
    push_hex(&mut out, &sha2::Sha256::digest(body));
    out
}

#[cfg(test)]
mod tests;
