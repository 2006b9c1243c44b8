//! One property test per algorithm of the declarative language: what a scheme signs, it
//! verifies; flip any bit of the body, the signature or the key, and it rejects.

use std::borrow::Cow;

use base64::Engine as _;
use clawlet_verify::scheme::{
    Algorithm, Encoding, Key, List, Location, Request, Scheme, Signature, SigningKey, Template,
    Verifier,
};
use clawlet_verify::{Secret, UnixTime};
use proptest::prelude::*;
use proptest::sample::Index;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn scheme(algorithm: Algorithm) -> Scheme {
    Scheme {
        signature: Signature {
            location: Location::Header(Cow::Borrowed("x-sig")),
            prefix: Cow::Borrowed(""),
            encoding: Encoding::Base64,
            list: List::Single,
        },
        payload: Template::parse("{method} {url}\n{body}").unwrap(),
        algorithm,
        ..Scheme::default()
    }
}

fn flip(bytes: &mut [u8], at: Index, bit: u8) {
    let i = at.index(bytes.len());
    bytes[i] ^= 1 << bit;
}

/// Signs, verifies, then flips one bit of the body, of the decoded signature and of the key.
fn round_trip(
    algorithm: Algorithm,
    key: &SigningKey,
    flipped_key: &SigningKey,
    body: &[u8],
    at: Index,
    bit: u8,
) -> Result<(), TestCaseError> {
    let scheme = scheme(algorithm);
    let now = UnixTime::from_secs(1_700_000_000);
    let none: [(&str, &str); 0] = [];
    let unsigned = Request::new(&none, body)
        .url("https://example.com/h")
        .method("POST");
    let headers = scheme.sign(key, &unsigned, now).unwrap();
    let request = |headers: &Vec<(String, String)>, body: &[u8]| {
        Verifier::new(scheme.clone(), vec![key.verifying_key()])
            .unwrap()
            .verify(
                &Request::new(headers, body)
                    .url("https://example.com/h")
                    .method("POST"),
                now,
            )
    };
    prop_assert!(request(&headers, body).is_ok());

    if !body.is_empty() {
        let mut bad_body = body.to_vec();
        flip(&mut bad_body, at, bit);
        prop_assert!(request(&headers, &bad_body).is_err());
    }

    let mut raw = B64.decode(&headers[0].1).unwrap();
    flip(&mut raw, at, bit);
    let bad_sig = vec![(headers[0].0.clone(), B64.encode(&raw))];
    prop_assert!(request(&bad_sig, body).is_err());

    let other = Verifier::new(scheme.clone(), vec![flipped_key.verifying_key()]).unwrap();
    let verdict = other.verify(
        &Request::new(&headers, body)
            .url("https://example.com/h")
            .method("POST"),
        now,
    );
    prop_assert!(verdict.is_err());
    Ok(())
}

fn bytes(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), len)
}

fn secrets(secret: &[u8], at: Index, bit: u8) -> (SigningKey, SigningKey) {
    let mut flipped = secret.to_vec();
    flip(&mut flipped, at, bit);
    (
        SigningKey::Secret(Secret::new(secret).unwrap()),
        SigningKey::Secret(Secret::new(flipped).unwrap()),
    )
}

proptest! {
    // Public-key arithmetic is slow in debug builds; 64 cases per algorithm still flip every
    // region of body, signature and key many times over.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn hmac_sha256(secret in bytes(1..80), body in bytes(0..512), at in any::<Index>(), bit in 0u8..8) {
        let (key, flipped) = secrets(&secret, at, bit);
        round_trip(Algorithm::HmacSha256, &key, &flipped, &body, at, bit)?;
    }

    #[test]
    fn hmac_sha512(secret in bytes(1..200), body in bytes(0..512), at in any::<Index>(), bit in 0u8..8) {
        let (key, flipped) = secrets(&secret, at, bit);
        round_trip(Algorithm::HmacSha512, &key, &flipped, &body, at, bit)?;
    }

    #[cfg(feature = "sha1")]
    #[test]
    fn hmac_sha1(secret in bytes(1..80), body in bytes(0..512), at in any::<Index>(), bit in 0u8..8) {
        let (key, flipped) = secrets(&secret, at, bit);
        round_trip(Algorithm::HmacSha1, &key, &flipped, &body, at, bit)?;
    }

    #[cfg(feature = "ed25519")]
    #[test]
    fn ed25519(seed in any::<[u8; 32]>(), body in bytes(0..512), at in any::<Index>(), bit in 0u8..8) {
        let mut other = seed;
        flip(&mut other, at, bit);
        round_trip(Algorithm::Ed25519, &SigningKey::ed25519_seed(&seed), &SigningKey::ed25519_seed(&other), &body, at, bit)?;
    }

    #[cfg(feature = "p256")]
    #[test]
    fn ecdsa_p256(scalar in any::<[u8; 32]>(), body in bytes(0..512), at in any::<Index>(), bit in 0u8..8, raw in any::<bool>()) {
        let mut other = scalar;
        flip(&mut other, at, bit);
        // A scalar outside the group (zero, or not below the order) is not a key: skip those.
        let (Ok(key), Ok(flipped)) = (SigningKey::p256_scalar(&scalar), SigningKey::p256_scalar(&other)) else {
            return Ok(());
        };
        let algorithm = if raw { Algorithm::EcdsaP256Raw } else { Algorithm::EcdsaP256Der };
        round_trip(algorithm, &key, &flipped, &body, at, bit)?;
    }

    #[test]
    fn token(secret in bytes(1..40), at in any::<Index>(), bit in 0u8..8) {
        let scheme = Scheme { signature: Signature { encoding: Encoding::Text, ..scheme(Algorithm::Token).signature }, algorithm: Algorithm::Token, ..Scheme::default() };
        let text: String = secret.iter().map(|b| char::from(b'a' + b % 26)).collect();
        let verifier = Verifier::new(scheme, vec![Key::secret(&text).unwrap()]).unwrap();
        let now = UnixTime::from_secs(0);
        let ok = [("x-sig", text.as_str())];
        prop_assert!(verifier.verify(&Request::new(&ok, b""), now).is_ok());
        let mut bad = text.clone().into_bytes();
        flip(&mut bad, at, bit);
        let bad = [("x-sig", bad)];
        prop_assert!(verifier.verify(&Request::new(&bad, b""), now).is_err());
    }
}
