//! `clawlet_verify::stripe`: arbitrary `Stripe-Signature` headers, body, secrets and clock.
//!
//! Input: `opts \0 secret_a \0 secret_b \0 stripe-signature \0 body`, where opts may hold `two`
//! (secrets `[a, b]`), `tol=<secs>` (default 300), `now=<unix>` or `ago=<secs>` (now is the
//! header's own `t` plus this, so that the timestamp check is reached often), and `t=<unix>`
//! for the round trip.
//!
//! Properties: the verdict equals an independent re-implementation of Stripe's rule on every
//! input; `sign` then `verify` accepts, also among other `v1` entries; a one-byte change of the
//! signature is refused; an authentic delivery outside the tolerance is refused.
#![no_main]

use clawlet_fuzz::{Fields, Hash, Opts, hex, hmac, mutate, timestamp};
use clawlet_verify::{Secret, UnixTime, Verified};
use clawlet_verify::{VerifyError, stripe};
use libfuzzer_sys::fuzz_target;

fn elements(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header.split(|&b| b == b',').filter_map(|e| {
        let eq = e.iter().position(|&b| b == b'=')?;
        Some((&e[..eq], &e[eq + 1..]))
    })
}

/// The single `t` of a header, when it has exactly one and it is an integer.
fn the_timestamp(header: &[u8]) -> Option<i64> {
    let mut ts = elements(header).filter(|(k, _)| *k == b"t");
    let (_, first) = ts.next()?;
    if ts.next().is_some() {
        return None;
    }
    timestamp(first)
}

fn within(t: i64, now: i64, tolerance: u64) -> bool {
    tolerance == 0 || (i128::from(now) - i128::from(t)).unsigned_abs() <= u128::from(tolerance)
}

/// Stripe's rule plus this crate's stricter timestamp checks: exactly one integer `t` and any
/// `v1` equal to the hex HMAC-SHA256 of `<t>.<body>` under the whole secret string.
fn reference(
    secrets: &[&[u8]],
    header: Option<&[u8]>,
    body: &[u8],
    now: i64,
    tol: u64,
) -> Option<usize> {
    if secrets.is_empty() || secrets.iter().any(|s| s.is_empty()) {
        return None;
    }
    let header = header.filter(|h| !h.is_empty())?;
    // Every `t` element must be a valid integer, even the ones a duplicate check would reject.
    if elements(header).any(|(k, v)| k == b"t" && timestamp(v).is_none()) {
        return None;
    }
    let t = the_timestamp(header)?;
    let signed = t.to_string();
    let index = secrets.iter().position(|s| {
        let expected = hex(&hmac(Hash::Sha256, s, &[signed.as_bytes(), b".", body]));
        elements(header).any(|(k, v)| k == b"v1" && v == expected.as_bytes())
    })?;
    within(t, now, tol).then_some(index)
}

/// The positional call this target's oracle was written for, over the current API: a tolerance
/// of 0 is no check, an empty secret fails as configuration does.
fn verify(
    secrets: &[&[u8]],
    header: Option<&[u8]>,
    body: &[u8],
    now: i64,
    tol: u64,
) -> Result<Verified, VerifyError> {
    let secrets = Secret::list(secrets)?;
    let tolerance = (tol > 0).then(|| std::time::Duration::from_secs(tol));
    stripe::verify(&secrets, header, body, UnixTime::from_secs(now), tolerance)
}

fuzz_target!(|data: &[u8]| {
    let mut fields = Fields::new(data);
    let opts = Opts::new(fields.next_field());
    let a = fields.next_field().unwrap_or_default();
    let b = fields.next_field().unwrap_or_default();
    let header = fields.next_field();
    let body = fields.rest();
    let secrets: Vec<&[u8]> = if opts.flag("two") {
        vec![a, b]
    } else {
        vec![a]
    };
    let tol = opts
        .int("tol")
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(300);
    let header_t = header.and_then(the_timestamp);
    let now = opts.int("now").unwrap_or_else(|| {
        header_t
            .unwrap_or(0)
            .saturating_add(opts.int("ago").unwrap_or(0))
    });

    let got = verify(&secrets, header, body, now, tol);
    assert_eq!(
        got.clone().ok().map(|v| v.secret_index()),
        reference(&secrets, header, body, now, tol),
        "verdict differs from the reference: {got:?}"
    );

    if secrets.iter().any(|s| s.is_empty()) {
        return;
    }
    let t = opts.int("t").or(header_t).unwrap_or(1_700_000_000);
    let last = secrets[secrets.len() - 1];
    let signed = stripe::sign(last, t, body);
    let v1 = hex(&hmac(
        Hash::Sha256,
        last,
        &[t.to_string().as_bytes(), b".", body],
    ));
    assert_eq!(signed, format!("t={t},v1={v1}"));
    if t < 0 {
        // Signing renders any i64, but a header never carries a sign, so it cannot verify.
        assert!(verify(&secrets, Some(signed.as_bytes()), body, t, tol).is_err());
        return;
    }
    let verified = verify(&secrets, Some(signed.as_bytes()), body, t, tol)
        .expect("a fresh signature verifies");
    assert_eq!(
        stripe::sign(secrets[verified.secret_index()], t, body),
        signed
    );

    // Among other entries, as Stripe sends during a secret roll.
    let crowded = format!("{signed},v1=00,v0={v1},x=y");
    assert!(verify(&secrets, Some(crowded.as_bytes()), body, t, tol).is_ok());

    let forged = format!(
        "t={t},v1={}",
        String::from_utf8_lossy(&mutate(v1.as_bytes(), data).unwrap_or_default())
    );
    let got = verify(&secrets, Some(forged.as_bytes()), body, t, tol);
    assert!(got.is_err(), "a changed signature was accepted: {got:?}");

    // The tolerance is inclusive on both sides, and refusals name the side.
    if tol > 0 {
        let at = |offset: i128| i64::try_from(i128::from(t) + offset).ok();
        let verify = |now| verify(&secrets, Some(signed.as_bytes()), body, now, tol);
        let tol = i128::from(tol);
        for (offset, expected) in [
            (tol, Ok(())),
            (tol + 1, Err(VerifyError::TimestampTooOld)),
            (-tol, Ok(())),
            (-tol - 1, Err(VerifyError::TimestampTooNew)),
        ] {
            if let Some(now) = at(offset) {
                assert_eq!(verify(now).map(drop), expected, "now = t + {offset}");
            }
        }
    }
});
