//! Custom HMAC: one header such as `X-Signature: sha256=<hex>` over the raw body, with the
//! algorithm, the encoding and the prefix configurable.
//!
//! Matching is exact: the value must be the prefix followed by the full digest in lower-case hex or
//! padded standard base64, with nothing around it. The header name is the caller's business.

use alloc::borrow::ToOwned;
use alloc::string::String;

use crate::mac::{self, Encoded};
use crate::{Secret, Verified, VerifyError};

/// The HMAC hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// HMAC-SHA1 (20-byte digest); only for senders that offer nothing better (feature `sha1`).
    Sha1,
    /// HMAC-SHA256 (32-byte digest).
    #[default]
    Sha256,
    /// HMAC-SHA512 (64-byte digest).
    Sha512,
}

/// How the digest is written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// Lower-case hexadecimal.
    #[default]
    Hex,
    /// Standard base64 alphabet with `=` padding.
    Base64,
}

/// A custom HMAC signature scheme.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scheme {
    /// The hash function.
    pub algorithm: Algorithm,
    /// How the digest is written.
    pub encoding: Encoding,
    /// Text before the digest, such as `sha256=`; may be empty.
    pub prefix: String,
}

impl Default for Scheme {
    /// HMAC-SHA256, hex, prefix `sha256=`: the shape GitHub popularised.
    fn default() -> Self {
        Scheme {
            algorithm: Algorithm::Sha256,
            encoding: Encoding::Hex,
            prefix: "sha256=".to_owned(),
        }
    }
}

impl Scheme {
    /// Verifies `body` against the header value under each secret in turn.
    ///
    /// # Errors
    ///
    /// [`VerifyError::NoSecrets`], [`VerifyError::UnsupportedKey`] (SHA-1 without the `sha1`
    /// feature), [`VerifyError::MissingHeader`], [`VerifyError::MalformedHeader`] (wrong prefix,
    /// length or alphabet) or [`VerifyError::Mismatch`].
    pub fn verify(
        &self,
        secrets: &[Secret],
        header: Option<&[u8]>,
        body: &[u8],
    ) -> Result<Verified, VerifyError> {
        if secrets.is_empty() {
            return Err(VerifyError::NoSecrets);
        }
        if self.algorithm == Algorithm::Sha1 && !cfg!(feature = "sha1") {
            return Err(VerifyError::UnsupportedKey);
        }
        let value = mac::present(header, "signature")?;
        let digest = value
            .strip_prefix(self.prefix.as_bytes())
            .filter(|d| mac::well_formed(d, self.encoding, self.algorithm.digest_len()))
            .ok_or(VerifyError::MalformedHeader)?;
        for (index, secret) in secrets.iter().enumerate() {
            if mac::matches(&self.expected(secret.expose(), body), digest) {
                return Ok(Verified::new(index));
            }
        }
        Err(VerifyError::Mismatch)
    }

    /// The header value for `body`: the prefix followed by the encoded digest.
    #[must_use]
    pub fn sign(&self, secret: &[u8], body: &[u8]) -> String {
        let encoded = self.expected(secret, body);
        let mut out = String::with_capacity(self.prefix.len() + encoded.as_bytes().len());
        out.push_str(&self.prefix);
        encoded.push_to(&mut out);
        out
    }

    fn expected(&self, secret: &[u8], body: &[u8]) -> Encoded {
        mac::encode(&mac::hmac(self.algorithm, secret, &[body]), self.encoding)
    }
}

#[cfg(test)]
mod tests;
