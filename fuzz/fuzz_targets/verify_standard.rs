//! `clawlet_verify::standard`: arbitrary Standard Webhooks headers, body, secrets and clock.
//!
//! Input: `opts \0 secret \0 raw_key \0 webhook-id \0 webhook-timestamp \0 webhook-signature \0
//! body`. `secret` goes through `Key::from_secret` (`whsec_` + base64); with `two` in opts,
//! `raw_key` is added through `Key::from_bytes`. Opts also take `tol=<secs>` (default 300) and
//! `now=<unix>` or `ago=<secs>` (relative to the header's timestamp).
//!
//! Properties: key decoding and the verdict equal an independent re-implementation of the
//! specification on every input; `sign` then `verify` accepts, also among other entries; a
//! one-byte change of the signature is refused; a stale authentic delivery is refused.
#![no_main]

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use clawlet_fuzz::{Fields, Hash, Opts, base64, hmac, mutate, timestamp};
use clawlet_verify::VerifyError;
use clawlet_verify::standard::{self, Key};
use clawlet_verify::{UnixTime, Verified};
use libfuzzer_sys::fuzz_target;

/// The specification's key: base64 (padded or not) after an optional `whsec_`, never empty.
fn reference_key(secret: &str) -> Option<Vec<u8>> {
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    engine.decode(encoded).ok().filter(|k| !k.is_empty())
}

fn within(t: i64, now: i64, tolerance: u64) -> bool {
    tolerance == 0 || (i128::from(now) - i128::from(t)).unsigned_abs() <= u128::from(tolerance)
}

/// Any space-separated `v1,<base64>` entry equal to the HMAC-SHA256 of `<id>.<t>.<body>`.
fn reference(
    keys: &[Vec<u8>],
    id: Option<&[u8]>,
    ts: Option<&[u8]>,
    sig: Option<&[u8]>,
    body: &[u8],
    now: i64,
    tol: u64,
) -> Option<usize> {
    let id = id.filter(|v| !v.is_empty())?;
    let t = timestamp(ts?)?;
    let sig = sig.filter(|v| !v.is_empty())?;
    let signed = t.to_string();
    let index = keys.iter().position(|k| {
        let expected = format!(
            "v1,{}",
            base64(&hmac(
                Hash::Sha256,
                k,
                &[id, b".", signed.as_bytes(), b".", body]
            ))
        );
        sig.split(|&b| b == b' ').any(|e| e == expected.as_bytes())
    })?;
    within(t, now, tol).then_some(index)
}

/// The positional call this target's oracle was written for, over the current API: a tolerance
/// of 0 is no check.
#[allow(clippy::too_many_arguments)]
fn standard_verify(
    keys: &[standard::Key],
    id: Option<&[u8]>,
    timestamp: Option<&[u8]>,
    signature: Option<&[u8]>,
    body: &[u8],
    now: i64,
    tol: u64,
) -> Result<Verified, VerifyError> {
    let delivery = standard::Delivery {
        id,
        timestamp,
        signature,
        body,
    };
    let tolerance = (tol > 0).then(|| std::time::Duration::from_secs(tol));
    standard::verify(keys, delivery, UnixTime::from_secs(now), tolerance)
}

fuzz_target!(|data: &[u8]| {
    let mut fields = Fields::new(data);
    let opts = Opts::new(fields.next_field());
    let secret = String::from_utf8_lossy(fields.next_field().unwrap_or_default());
    let raw_key = fields.next_field().unwrap_or_default();
    let id = fields.next_field();
    let ts = fields.next_field();
    let sig = fields.next_field();
    let body = fields.rest();

    let decoded = Key::from_secret(&secret);
    let expected_key = reference_key(&secret);
    assert_eq!(
        decoded.is_ok(),
        expected_key.is_some(),
        "key decoding differs: {decoded:?}"
    );
    if let Err(e) = &decoded {
        assert_eq!(*e, VerifyError::InvalidSecret);
    }
    let mut keys: Vec<Key> = decoded.into_iter().collect();
    let mut raw_keys: Vec<Vec<u8>> = expected_key.into_iter().collect();
    if opts.flag("two") {
        assert_eq!(Key::from_bytes(raw_key).is_ok(), !raw_key.is_empty());
        if let Ok(k) = Key::from_bytes(raw_key) {
            keys.push(k);
            raw_keys.push(raw_key.to_vec());
        }
    }
    let tol = opts
        .int("tol")
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(300);
    let header_t = ts.and_then(timestamp);
    let now = opts.int("now").unwrap_or_else(|| {
        header_t
            .unwrap_or(0)
            .saturating_add(opts.int("ago").unwrap_or(0))
    });

    let got = standard_verify(&keys, id, ts, sig, body, now, tol);
    assert_eq!(
        got.clone().ok().map(|v| v.secret_index()),
        reference(&raw_keys, id, ts, sig, body, now, tol),
        "verdict differs from the reference: {got:?}"
    );
    if keys.is_empty() {
        assert_eq!(got, Err(VerifyError::NoSecrets));
        return;
    }

    // Round trip with the last key and a UTF-8 id, since `sign` takes the id as text.
    let msg_id = id
        .and_then(|v| std::str::from_utf8(v).ok())
        .filter(|v| !v.is_empty())
        .unwrap_or("msg_fuzz");
    let t = header_t.unwrap_or(1_614_265_330);
    let last = keys.len() - 1;
    let signature = standard::sign(&keys[last], msg_id, t, body).expect("an HMAC key signs");
    let mac = hmac(
        Hash::Sha256,
        &raw_keys[last],
        &[
            msg_id.as_bytes(),
            b".",
            t.to_string().as_bytes(),
            b".",
            body,
        ],
    );
    assert_eq!(signature, format!("v1,{}", base64(&mac)));
    let rendered = t.to_string();
    let verify = |sig: &[u8], now: i64| {
        standard_verify(
            &keys,
            Some(msg_id.as_bytes()),
            Some(rendered.as_bytes()),
            Some(sig),
            body,
            now,
            tol,
        )
    };
    let verified = verify(signature.as_bytes(), t).expect("a fresh signature verifies");
    assert_eq!(
        standard::sign(&keys[verified.secret_index()], msg_id, t, body).expect("an HMAC key signs"),
        signature
    );

    // Among other entries and versions, separated by single and double spaces.
    let crowded = format!("v2,abc  v1,AAAA {signature} v1a,x");
    assert!(verify(crowded.as_bytes(), t).is_ok());

    let forged = mutate(signature.as_bytes(), data).expect("a signature is never empty");
    let got = verify(&forged, t);
    assert!(got.is_err(), "a changed signature was accepted: {got:?}");

    // The tolerance is inclusive on both sides, and refusals name the side.
    if tol > 0 {
        let tol = i128::from(tol);
        for (offset, expected) in [
            (tol, Ok(())),
            (tol + 1, Err(VerifyError::TimestampTooOld)),
            (-tol, Ok(())),
            (-tol - 1, Err(VerifyError::TimestampTooNew)),
        ] {
            if let Ok(now) = i64::try_from(i128::from(t) + offset) {
                let got = verify(signature.as_bytes(), now).map(drop);
                assert_eq!(got, expected, "now = t + {offset}");
            }
        }
    }
});
