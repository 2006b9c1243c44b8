//! `clawlet_verify::github`: arbitrary signature headers, body and secrets.
//!
//! Input: `opts \0 secret_a \0 secret_b \0 x-hub-signature-256 \0 x-hub-signature \0 body`, where
//! opts may hold `legacy` (allow SHA-1) and `two` (secrets `[a, b]`, else `[a]`). A missing field
//! is an absent header.
//!
//! Properties: the verdict equals an independent re-implementation of GitHub's rule on every
//! input; `sign` then `verify` accepts whatever the SHA-1 header says; a one-byte change of a
//! valid signature is refused; the legacy header is used only when allowed.
#![no_main]

use clawlet_fuzz::{Fields, Hash, Opts, hex, hmac, mutate};
use clawlet_verify::{Secret, Verified};
use clawlet_verify::{VerifyError, github};
use libfuzzer_sys::fuzz_target;

/// GitHub's rule, written from its documentation: the SHA-256 header alone decides when present;
/// otherwise the SHA-1 header, only when legacy is allowed. First matching secret wins.
fn reference(
    secrets: &[&[u8]],
    sig256: Option<&[u8]>,
    sig1: Option<&[u8]>,
    body: &[u8],
    legacy: bool,
) -> Option<usize> {
    if secrets.is_empty() || secrets.iter().any(|s| s.is_empty()) || body.is_empty() {
        return None;
    }
    let (hash, prefix, value) = match (sig256.filter(|v| !v.is_empty()), sig1) {
        (Some(v), _) => (Hash::Sha256, "sha256=", v),
        (None, Some(v)) if legacy && !v.is_empty() => (Hash::Sha1, "sha1=", v),
        _ => return None,
    };
    secrets
        .iter()
        .position(|s| format!("{prefix}{}", hex(&hmac(hash, s, &[body]))).as_bytes() == value)
}

/// The positional call this target's oracle was written for, over the named-input API; an empty
/// secret fails as configuration does.
fn verify(
    secrets: &[&[u8]],
    sig256: Option<&[u8]>,
    sig1: Option<&[u8]>,
    body: &[u8],
    legacy: bool,
) -> Result<Verified, VerifyError> {
    let secrets = Secret::list(secrets)?;
    let signatures = github::Signatures {
        sha256: sig256,
        sha1: sig1,
    };
    let legacy = if legacy {
        github::Legacy::AllowSha1
    } else {
        github::Legacy::Refuse
    };
    github::verify(&secrets, signatures, body, legacy)
}

fuzz_target!(|data: &[u8]| {
    let mut fields = Fields::new(data);
    let opts = Opts::new(fields.next_field());
    let a = fields.next_field().unwrap_or_default();
    let b = fields.next_field().unwrap_or_default();
    let sig256 = fields.next_field();
    let sig1 = fields.next_field();
    let body = fields.rest();
    let legacy = opts.flag("legacy");
    let secrets: Vec<&[u8]> = if opts.flag("two") {
        vec![a, b]
    } else {
        vec![a]
    };

    let got = verify(&secrets, sig256, sig1, body, legacy);
    assert_eq!(
        got.clone().ok().map(|v| v.secret_index()),
        reference(&secrets, sig256, sig1, body, legacy),
        "verdict differs from the reference: {got:?}"
    );

    if secrets.iter().any(|s| s.is_empty()) || body.is_empty() {
        return;
    }
    // Round trip with the last secret, as after a rotation; the SHA-1 header stays arbitrary and
    // must not matter while the SHA-256 one is present.
    let last = secrets[secrets.len() - 1];
    let header = github::sign(last, body);
    assert_eq!(
        header,
        format!("sha256={}", hex(&hmac(Hash::Sha256, last, &[body])))
    );
    let verified = verify(&secrets, Some(header.as_bytes()), sig1, body, legacy)
        .expect("a fresh signature verifies");
    assert_eq!(github::sign(secrets[verified.secret_index()], body), header);

    let forged = mutate(header.as_bytes(), data).expect("a signature is never empty");
    let got = verify(&secrets, Some(&forged), sig1, body, legacy);
    assert!(got.is_err(), "a changed signature was accepted: {got:?}");

    let header1 = github::sign_sha1(last, body);
    assert_eq!(
        header1,
        format!("sha1={}", hex(&hmac(Hash::Sha1, last, &[body])))
    );
    assert!(verify(&secrets, None, Some(header1.as_bytes()), body, true).is_ok());
    assert_eq!(
        verify(&secrets, None, Some(header1.as_bytes()), body, false),
        Err(VerifyError::LegacySchemeRefused)
    );
    let forged1 = mutate(header1.as_bytes(), data).expect("a signature is never empty");
    assert!(verify(&secrets, None, Some(&forged1), body, true).is_err());
});
