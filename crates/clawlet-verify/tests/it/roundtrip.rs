//! Property tests: what a scheme signs, it verifies; flip one bit anywhere that is signed or
//! carries the signature, and it rejects.

use base64::Engine as _;
use clawlet_verify::custom::{Algorithm, Encoding, Scheme};
use clawlet_verify::standard::Key;
use clawlet_verify::{Secret, UnixTime, github, standard, stripe};
use proptest::prelude::*;
use proptest::sample::Index;

fn secrets() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..80), 1..4)
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..1024)
}

fn non_empty_body() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..1024)
}

fn scheme() -> impl Strategy<Value = Scheme> {
    (
        prop_oneof![
            Just(Algorithm::Sha1),
            Just(Algorithm::Sha256),
            Just(Algorithm::Sha512)
        ],
        prop_oneof![Just(Encoding::Hex), Just(Encoding::Base64)],
        "[ -~]{0,12}",
    )
        .prop_map(|(algorithm, encoding, prefix)| Scheme {
            algorithm,
            encoding,
            prefix,
        })
}

fn flipped(bytes: &[u8], at: Index, bit: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let i = at.index(out.len());
    out[i] ^= 1 << bit;
    out
}

fn wrap(secrets: &[Vec<u8>]) -> Vec<Secret> {
    Secret::list(secrets).unwrap()
}

fn one(secret: &[u8]) -> Vec<Secret> {
    vec![Secret::new(secret).unwrap()]
}

fn sigs<'a>(sha256: Option<&'a [u8]>, sha1: Option<&'a [u8]>) -> github::Signatures<'a> {
    github::Signatures { sha256, sha1 }
}

fn legacy(allow: bool) -> github::Legacy {
    if allow {
        github::Legacy::AllowSha1
    } else {
        github::Legacy::Refuse
    }
}

fn clock(t: i64) -> UnixTime {
    UnixTime::from_secs(t)
}

const FIVE_MINUTES: Option<std::time::Duration> = Some(std::time::Duration::from_secs(300));

/// The index the verifier must report: the first secret equal to the one that signed.
fn first_equal(secrets: &[Vec<u8>], signer: usize) -> usize {
    secrets
        .iter()
        .position(|s| *s == secrets[signer])
        .unwrap_or(signer)
}

proptest! {
    #[test]
    fn github_round_trip(secrets in secrets(), pick in any::<Index>(), body in non_empty_body(), allow in any::<bool>()) {
        let signer = pick.index(secrets.len());
        let sig = github::sign(&secrets[signer], &body);
        let verified = github::verify(&wrap(&secrets), sigs(Some(sig.as_bytes()), None), &body, legacy(allow)).unwrap();
        prop_assert_eq!(verified.secret_index(), first_equal(&secrets, signer));
        let sha1 = github::sign_sha1(&secrets[signer], &body);
        prop_assert!(github::verify(&wrap(&secrets), sigs(None, Some(sha1.as_bytes())), &body, legacy(true)).is_ok());
    }

    #[test]
    fn github_rejects_any_flip(secret in proptest::collection::vec(any::<u8>(), 1..80), body in non_empty_body(), at in any::<Index>(), bit in 0u8..8) {
        let sig = github::sign(&secret, &body);
        let bad_body = flipped(&body, at, bit);
        prop_assert!(github::verify(&one(&secret), sigs(Some(sig.as_bytes()), None), &bad_body, legacy(false)).is_err());
        let bad_sig = flipped(sig.as_bytes(), at, bit);
        prop_assert!(github::verify(&one(&secret), sigs(Some(&bad_sig), None), &body, legacy(false)).is_err());
        let sha1 = github::sign_sha1(&secret, &body);
        let bad_sha1 = flipped(sha1.as_bytes(), at, bit);
        prop_assert!(github::verify(&one(&secret), sigs(None, Some(&bad_sha1)), &body, legacy(true)).is_err());
    }

    #[test]
    fn stripe_round_trip(secrets in secrets(), pick in any::<Index>(), body in body(), t in 0..=i64::MAX) {
        let signer = pick.index(secrets.len());
        let header = stripe::sign(&secrets[signer], t, &body);
        let verified = stripe::verify(&wrap(&secrets), Some(header.as_bytes()), &body, clock(t), FIVE_MINUTES).unwrap();
        prop_assert_eq!(verified.secret_index(), first_equal(&secrets, signer));
    }

    #[test]
    fn stripe_rejects_any_flip(secret in proptest::collection::vec(any::<u8>(), 1..80), body in non_empty_body(), t in 0..=i64::MAX, at in any::<Index>(), bit in 0u8..8) {
        let header = stripe::sign(&secret, t, &body);
        let bad_body = flipped(&body, at, bit);
        prop_assert!(stripe::verify(&one(&secret), Some(header.as_bytes()), &bad_body, clock(t), None).is_err());
        // The header holds both the timestamp and the signature: every bit of it matters.
        let bad_header = flipped(header.as_bytes(), at, bit);
        prop_assert!(stripe::verify(&one(&secret), Some(&bad_header), &body, clock(t), None).is_err());
    }

    #[test]
    fn standard_round_trip(keys in secrets(), pick in any::<Index>(), id in "[ -~]{1,40}", body in body(), t in 0..=i64::MAX) {
        let signer = pick.index(keys.len());
        let decoded: Vec<Key> = keys.iter().map(|k| Key::from_bytes(k).unwrap()).collect();
        let sig = standard::sign(&decoded[signer], &id, t, &body).unwrap();
        let ts = t.to_string();
        let verified = standard::verify(&decoded, standard::Delivery { id: Some(id.as_bytes()), timestamp: Some(ts.as_bytes()), signature: Some(sig.as_bytes()), body: &body }, clock(t), FIVE_MINUTES).unwrap();
        prop_assert_eq!(verified.secret_index(), first_equal(&keys, signer));
        // The textual secret decodes to the same key.
        let text = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(&keys[signer]));
        let from_text = Key::from_secret(&text).unwrap();
        prop_assert_eq!(standard::sign(&from_text, &id, t, &body).unwrap(), sig);
    }

    #[test]
    fn standard_rejects_any_flip(key in proptest::collection::vec(any::<u8>(), 1..80), id in "[ -~]{1,40}", body in non_empty_body(), t in 0..=i64::MAX, at in any::<Index>(), bit in 0u8..8) {
        let key = Key::from_bytes(&key).unwrap();
        let sig = standard::sign(&key, &id, t, &body).unwrap();
        let ts = t.to_string();
        let run = |id: &[u8], ts: &[u8], sig: &[u8], body: &[u8]| {
            standard::verify(std::slice::from_ref(&key), standard::Delivery { id: Some(id), timestamp: Some(ts), signature: Some(sig), body }, clock(t), None)
        };
        prop_assert!(run(id.as_bytes(), ts.as_bytes(), sig.as_bytes(), &body).is_ok());
        prop_assert!(run(&flipped(id.as_bytes(), at, bit), ts.as_bytes(), sig.as_bytes(), &body).is_err());
        prop_assert!(run(id.as_bytes(), &flipped(ts.as_bytes(), at, bit), sig.as_bytes(), &body).is_err());
        prop_assert!(run(id.as_bytes(), ts.as_bytes(), &flipped(sig.as_bytes(), at, bit), &body).is_err());
        prop_assert!(run(id.as_bytes(), ts.as_bytes(), sig.as_bytes(), &flipped(&body, at, bit)).is_err());
    }

    #[test]
    fn custom_round_trip(scheme in scheme(), secrets in secrets(), pick in any::<Index>(), body in body()) {
        let signer = pick.index(secrets.len());
        let header = scheme.sign(&secrets[signer], &body);
        let verified = scheme.verify(&wrap(&secrets), Some(header.as_bytes()), &body).unwrap();
        prop_assert_eq!(verified.secret_index(), first_equal(&secrets, signer));
    }

    #[test]
    fn custom_rejects_any_flip(scheme in scheme(), secret in proptest::collection::vec(any::<u8>(), 1..80), body in non_empty_body(), at in any::<Index>(), bit in 0u8..8) {
        let header = scheme.sign(&secret, &body);
        prop_assert!(scheme.verify(&one(&secret), Some(header.as_bytes()), &flipped(&body, at, bit)).is_err());
        prop_assert!(scheme.verify(&one(&secret), Some(&flipped(header.as_bytes(), at, bit)), &body).is_err());
    }
}
