//! Shared secrets checked once, when the configuration is loaded.

use alloc::vec::Vec;
use core::fmt;

use subtle::ConstantTimeEq;

use crate::VerifyError;

/// A non-empty shared secret: an HMAC key or a token compared for equality.
///
/// An empty secret would let anyone sign, so it is refused here, once, instead of surfacing as a
/// per-request `invalid_secret`. `Debug` prints `Secret([redacted])`.
#[derive(Clone)]
pub struct Secret {
    bytes: Vec<u8>,
}

impl Secret {
    /// Wraps the secret bytes as the sender uses them (no decoding).
    ///
    /// # Errors
    ///
    /// [`VerifyError::InvalidSecret`] when `secret` is empty.
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Secret, VerifyError> {
        let bytes = secret.as_ref();
        if bytes.is_empty() {
            return Err(VerifyError::InvalidSecret);
        }
        Ok(Secret {
            bytes: bytes.to_vec(),
        })
    }

    /// Wraps every secret of a rotation list.
    ///
    /// # Errors
    ///
    /// [`VerifyError::NoSecrets`] for an empty list, [`VerifyError::InvalidSecret`] when one
    /// secret is empty.
    pub fn list<S: AsRef<[u8]>>(secrets: &[S]) -> Result<Vec<Secret>, VerifyError> {
        if secrets.is_empty() {
            return Err(VerifyError::NoSecrets);
        }
        secrets.iter().map(Secret::new).collect()
    }

    /// The secret bytes, for computing a MAC.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether `received` equals this secret, in time independent of where they differ and of
    /// their lengths (both sides are hashed first, so only equal digests compare equal).
    #[must_use]
    pub fn matches_token(&self, received: &[u8]) -> bool {
        use sha2::Digest as _;
        let expected = sha2::Sha256::digest(&self.bytes);
        let received = sha2::Sha256::digest(received);
        bool::from(expected.as_slice().ct_eq(received.as_slice()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_secrets_are_refused_once() {
        assert_eq!(Secret::new("").unwrap_err(), VerifyError::InvalidSecret);
        assert_eq!(
            Secret::list::<&str>(&[]).unwrap_err(),
            VerifyError::NoSecrets
        );
        assert_eq!(
            Secret::list(&["a", ""]).unwrap_err(),
            VerifyError::InvalidSecret
        );
        assert_eq!(Secret::list(&["a", "b"]).unwrap().len(), 2);
    }

    #[test]
    fn debug_is_redacted() {
        let secret = Secret::new("hunter2").unwrap();
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
    }

    #[test]
    fn token_comparison() {
        let secret = Secret::new("token-1").unwrap();
        assert!(secret.matches_token(b"token-1"));
        for wrong in [&b""[..], b"token-", b"token-11", b"token-2", b"TOKEN-1"] {
            assert!(!secret.matches_token(wrong), "{wrong:?}");
        }
    }
}
