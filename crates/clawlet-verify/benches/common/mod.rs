//! What the preset benches share: the body, the HMAC presets they time and a delivery signed
//! for each.

use clawlet_verify::presets::{self, Preset};
use clawlet_verify::scheme::{Algorithm, Location, Request, SigningKey, Verifier};
use clawlet_verify::{Secret, UnixTime};
use hmac::Mac;

const PUSH: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/payloads/github_push.json"
));

/// The URL the presets that sign one are given.
pub(crate) const URL: &str = "https://hooks.example.com/webhook/in";

/// The clock of every verification, in milliseconds.
pub(crate) const NOW_MS: i64 = 1_700_000_000_000;

/// A body of `len` bytes made of repeated real JSON.
pub(crate) fn body_of(len: usize) -> Vec<u8> {
    PUSH.iter().copied().cycle().take(len).collect()
}

/// The bench's HMAC secret.
pub(crate) fn secret() -> Secret {
    let Ok(secret) = Secret::new("bench-secret-0123456789") else {
        panic!("not empty");
    };
    secret
}

/// Raw HMAC of `body` with the `hmac` crate, keyed for each call.
pub(crate) fn raw_hmac<M: Mac + hmac::digest::KeyInit>(key: &[u8], body: &[u8]) -> impl Sized {
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
        panic!("HMAC takes keys of any length");
    };
    mac.update(body);
    mac.finalize().into_bytes()
}

/// Header-signed HMAC presets over the raw body; the in-body and token ones sign no body.
pub(crate) fn hmac_presets() -> impl Iterator<Item = &'static Preset> {
    presets::ALL.iter().filter(|p| {
        matches!(
            p.scheme.algorithm,
            Algorithm::HmacSha1 | Algorithm::HmacSha256 | Algorithm::HmacSha512
        ) && !matches!(p.kind, "mailgun" | "twilio" | "linear")
    })
}

/// A signed delivery for a preset: headers and the verifier.
pub(crate) fn signed(
    preset: &Preset,
    key: &SigningKey,
    body: &[u8],
) -> (Vec<(String, String)>, Verifier) {
    // What a sender and a proxy put beside the signature, so that a lookup searches a real
    // request's worth of headers.
    let mut headers: Vec<(String, String)> = [
        ("host", "hooks.example.com"),
        ("user-agent", "Sender-Hookshot/1.0"),
        ("content-type", "application/json"),
        ("content-length", "7700"),
        ("accept", "*/*"),
        ("accept-encoding", "gzip"),
        ("x-forwarded-for", "192.0.2.10"),
        ("x-forwarded-proto", "https"),
        ("x-request-id", "4bf92f3577b34da6a3ce929d0e0e4736"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
    ]
    .iter()
    .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
    .collect();
    if let Some(Location::Header(name) | Location::HeaderOr(name, _)) = &preset.scheme.id {
        headers.push((name.to_string(), "delivery-1".to_owned()));
    }
    let at = UnixTime::from_millis(NOW_MS);
    let Ok(signature) = preset.scheme.sign(
        key,
        &Request::new(&headers, body).url(URL).method("POST"),
        at,
    ) else {
        panic!("{}: the bench input signs", preset.kind);
    };
    headers.extend(signature);
    let Ok(verifier) = Verifier::new(preset.scheme.clone(), vec![key.verifying_key()]) else {
        panic!("{}: the bench key fits", preset.kind);
    };
    (headers, verifier)
}
