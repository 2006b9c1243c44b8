//! `clawlet_verify::custom::Scheme`: arbitrary prefix, header, body and secrets, for every
//! algorithm and encoding.
//!
//! Input: `opts \0 prefix \0 secret_a \0 secret_b \0 header \0 body`, where opts may hold `sha1` or
//! `sha512` (else SHA-256), `base64` (else hex) and `two` (secrets `[a, b]`).
//!
//! Properties: the verdict equals "the header is exactly prefix + encoded HMAC of the body under a
//! secret" on every input; `sign` then `verify` accepts; a one-byte change is refused.
#![no_main]

use clawlet_fuzz::{Fields, Hash, Opts, base64, hex, hmac, mutate};
use clawlet_verify::custom::{Algorithm, Encoding, Scheme};
use clawlet_verify::{Secret, Verified, VerifyError};
use libfuzzer_sys::fuzz_target;

/// The call this target's oracle was written for, over secrets checked as configuration is.
fn verify(
    scheme: &Scheme,
    secrets: &[&[u8]],
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<Verified, VerifyError> {
    scheme.verify(&Secret::list(secrets)?, header, body)
}

fuzz_target!(|data: &[u8]| {
    let mut fields = Fields::new(data);
    let opts = Opts::new(fields.next_field());
    let prefix = String::from_utf8_lossy(fields.next_field().unwrap_or_default()).into_owned();
    let a = fields.next_field().unwrap_or_default();
    let b = fields.next_field().unwrap_or_default();
    let header = fields.next_field();
    let body = fields.rest();
    let secrets: Vec<&[u8]> = if opts.flag("two") {
        vec![a, b]
    } else {
        vec![a]
    };
    let (algorithm, hash) = if opts.flag("sha1") {
        (Algorithm::Sha1, Hash::Sha1)
    } else if opts.flag("sha512") {
        (Algorithm::Sha512, Hash::Sha512)
    } else {
        (Algorithm::Sha256, Hash::Sha256)
    };
    let encoding = if opts.flag("base64") {
        Encoding::Base64
    } else {
        Encoding::Hex
    };
    let scheme = Scheme {
        algorithm,
        encoding,
        prefix,
    };
    let expected = |secret: &[u8]| {
        let mac = hmac(hash, secret, &[body]);
        let encoded = match encoding {
            Encoding::Base64 => base64(&mac),
            _ => hex(&mac),
        };
        format!("{}{encoded}", scheme.prefix)
    };

    let got = verify(&scheme, &secrets, header, body);
    let reference = if secrets.iter().any(|s| s.is_empty()) || header.is_none_or(<[u8]>::is_empty) {
        None
    } else {
        secrets
            .iter()
            .position(|s| Some(expected(s).as_bytes()) == header)
    };
    assert_eq!(
        got.clone().ok().map(|v| v.secret_index()),
        reference,
        "verdict differs from the reference: {got:?}"
    );

    if secrets.iter().any(|s| s.is_empty()) {
        return;
    }
    let last = secrets[secrets.len() - 1];
    let signed = scheme.sign(last, body);
    assert_eq!(signed, expected(last));
    let verified = verify(&scheme, &secrets, Some(signed.as_bytes()), body)
        .expect("a fresh signature verifies");
    assert_eq!(scheme.sign(secrets[verified.secret_index()], body), signed);

    let forged = mutate(signed.as_bytes(), data).expect("a signature is never empty");
    let got = verify(&scheme, &secrets, Some(&forged), body);
    assert!(got.is_err(), "a changed signature was accepted: {got:?}");
});
