use super::*;

/// Missing-header errors compared by kind; each module names its own headers.
fn norm<T>(r: Result<T, VerifyError>) -> Result<T, VerifyError> {
    r.map_err(|e| match e {
        VerifyError::MissingHeader { .. } => VerifyError::missing(""),
        e => e,
    })
}

const SECRET: &str = "It's a Secret to Everybody";
const BODY: &[u8] = b"Hello, World!";
const SIG_256: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
const SIG_SHA1: &str = "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59";

#[track_caller]
fn check(
    secrets: &[&str],
    sig_256: Option<&str>,
    sig_sha1: Option<&str>,
    legacy: bool,
    expected: Result<usize, VerifyError>,
) {
    let got = norm(Secret::list(secrets).and_then(|secrets| {
        verify(
            &secrets,
            Signatures {
                sha256: sig_256.map(str::as_bytes),
                sha1: sig_sha1.map(str::as_bytes),
            },
            BODY,
            if legacy {
                Legacy::AllowSha1
            } else {
                Legacy::Refuse
            },
        )
    }));
    assert_eq!(got.map(|v| v.secret_index()), expected);
}

#[test]
fn sign_matches_the_published_vectors() {
    assert_eq!(sign(SECRET.as_bytes(), BODY), SIG_256);
    assert_eq!(sign_sha1(SECRET.as_bytes(), BODY), SIG_SHA1);
}

#[test]
fn verify_cases() {
    use VerifyError::*;
    check(&[SECRET], Some(SIG_256), None, false, Ok(0));
    check(&["other", SECRET], Some(SIG_256), None, false, Ok(1));
    check(&[SECRET], Some(SIG_256), Some(SIG_SHA1), false, Ok(0));
    check(&[], Some(SIG_256), None, false, Err(NoSecrets));
    check(
        &[SECRET, ""],
        Some(SIG_256),
        None,
        false,
        Err(InvalidSecret),
    );
    check(&[SECRET], None, None, false, Err(VerifyError::missing("")));
    check(
        &[SECRET],
        Some(""),
        None,
        true,
        Err(VerifyError::missing("")),
    );
    check(
        &[SECRET],
        None,
        Some(SIG_SHA1),
        false,
        Err(LegacySchemeRefused),
    );
    check(
        &[SECRET],
        Some(""),
        Some(SIG_SHA1),
        false,
        Err(LegacySchemeRefused),
    );
    check(&[SECRET], None, Some(SIG_SHA1), true, Ok(0));
    check(&["other", SECRET], None, Some(SIG_SHA1), true, Ok(1));
    check(&["wrong"], None, Some(SIG_SHA1), true, Err(Mismatch));
    check(
        &[SECRET],
        None,
        Some(&SIG_SHA1[5..]),
        true,
        Err(MalformedHeader),
    );
    check(
        &[SECRET],
        Some(&SIG_256[7..]),
        None,
        false,
        Err(MalformedHeader),
    );
    check(
        &[SECRET],
        Some(&SIG_256.to_uppercase()),
        None,
        false,
        Err(MalformedHeader),
    );
    check(
        &[SECRET],
        Some(&format!("{SIG_256} ")),
        None,
        false,
        Err(MalformedHeader),
    );
    check(
        &[SECRET],
        Some(&SIG_256[..70]),
        None,
        false,
        Err(MalformedHeader),
    );
    check(
        &[SECRET],
        Some("sha256="),
        None,
        false,
        Err(MalformedHeader),
    );
    check(&["wrong"], Some(SIG_256), None, false, Err(Mismatch));
    // A bad sha256 never falls back to a good sha1: no downgrade.
    let zero = format!("sha256={}", "0".repeat(64));
    check(&[SECRET], Some(&zero), Some(SIG_SHA1), true, Err(Mismatch));
}

#[test]
fn empty_body_is_refused_even_when_correctly_signed() {
    let sig = sign(SECRET.as_bytes(), b"");
    let got = verify(
        &Secret::list(&[SECRET]).unwrap(),
        Signatures {
            sha256: Some(sig.as_bytes()),
            sha1: None,
        },
        b"",
        Legacy::Refuse,
    );
    assert_eq!(got, Err(VerifyError::EmptyBody));
}
