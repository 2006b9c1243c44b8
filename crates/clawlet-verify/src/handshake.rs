//! Pure helpers for the registration handshakes senders perform before (or besides) signed
//! deliveries. The transport decides when to answer; these compute the answers.

use alloc::string::String;

use base64::Engine as _;
use hmac::Mac as _;
use hmac::digest::KeyInit;

use crate::{Secret, VerifyError, json};

fn hmac_sha256(secret: &Secret, message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of every length, so this constructor cannot fail; a zero digest would
    // never be accepted by a sender anyway.
    match <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.expose()) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0; 32],
    }
}

/// Zoom `endpoint.url_validation`: the `encryptedToken` to answer next to `plainToken`,
/// `hex(HMAC-SHA256(secret, plainToken))`.
#[must_use]
pub fn zoom_encrypted_token(secret: &Secret, plain_token: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = hmac_sha256(secret, plain_token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// Twitter (X) CRC: the `response_token` for a `crc_token`,
/// `sha256=` followed by `base64(HMAC-SHA256(consumer secret, crc_token))`.
#[must_use]
pub fn twitter_crc_response(secret: &Secret, crc_token: &str) -> String {
    let digest = hmac_sha256(secret, crc_token.as_bytes());
    let mut out = String::from("sha256=");
    base64::engine::general_purpose::STANDARD.encode_string(digest, &mut out);
    out
}

/// Whether a received token (Meta's `hub.verify_token`, a Graph `clientState`) equals the
/// configured one, in constant time with respect to both content and length.
#[must_use]
pub fn token_matches(configured: &Secret, received: &[u8]) -> bool {
    configured.matches_token(received)
}

/// Microsoft Graph: every notification of `{"value": [...]}` carries `clientState` equal to the
/// configured one, and there is at least one.
///
/// # Errors
///
/// [`VerifyError::MissingHeader`] (naming `/value/<n>/clientState`) when the body has no
/// notification or one lacks the field, [`VerifyError::Mismatch`] when one differs.
pub fn msgraph_client_state(configured: &Secret, body: &[u8]) -> Result<(), VerifyError> {
    let mut index = 0usize;
    loop {
        let item = alloc::format!("/value/{index}");
        if json::lookup(body, &item).is_none() {
            break;
        }
        let field = alloc::format!("{item}/clientState");
        let value = json::lookup(body, &field).ok_or_else(|| VerifyError::missing(field))?;
        if !configured.matches_token(&value) {
            return Err(VerifyError::Mismatch);
        }
        index += 1;
    }
    if index == 0 {
        return Err(VerifyError::missing("/value/0/clientState"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::new(s).unwrap()
    }

    #[test]
    fn zoom_token_is_hex_hmac() {
        // Computed independently with Python: hmac.new(b"secret", b"plain", sha256).hexdigest()
        assert_eq!(
            zoom_encrypted_token(&secret("secret"), "plain"),
            "a237566e044b73e6a1e54bd59974547487fa5f8143025ce0d04d82e7ee4c5e34"
        );
    }

    #[test]
    fn twitter_crc_is_prefixed_base64_hmac() {
        // base64(hmac.new(b"secret", b"plain", sha256).digest())
        assert_eq!(
            twitter_crc_response(&secret("secret"), "plain"),
            "sha256=ojdWbgRLc+ah5UvVmXRUdIf6X4FDAlzg0E2C5+5MXjQ="
        );
    }

    #[test]
    fn msgraph_checks_every_notification() {
        let s = secret("state-1");
        let check = |body: &str| msgraph_client_state(&s, body.as_bytes());
        assert_eq!(
            check(r#"{"value":[{"clientState":"state-1"},{"clientState":"state-1"}]}"#),
            Ok(())
        );
        assert_eq!(
            check(r#"{"value":[{"clientState":"state-1"},{"clientState":"other"}]}"#),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            check(r#"{"value":[{"clientState":"state-1"},{}]}"#),
            Err(VerifyError::missing("/value/1/clientState"))
        );
        assert_eq!(
            check(r#"{"value":[]}"#),
            Err(VerifyError::missing("/value/0/clientState"))
        );
        assert_eq!(
            check("not json"),
            Err(VerifyError::missing("/value/0/clientState"))
        );
    }

    #[test]
    fn token_comparison() {
        assert!(token_matches(&secret("abc"), b"abc"));
        assert!(!token_matches(&secret("abc"), b"abd"));
        assert!(!token_matches(&secret("abc"), b"ab"));
    }
}
