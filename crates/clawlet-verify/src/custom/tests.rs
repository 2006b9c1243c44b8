use super::*;

/// Missing-header errors compared by kind; each module names its own headers.
fn norm<T>(r: Result<T, VerifyError>) -> Result<T, VerifyError> {
    r.map_err(|e| match e {
        VerifyError::MissingHeader { .. } => VerifyError::missing(""),
        e => e,
    })
}

fn scheme(algorithm: Algorithm, encoding: Encoding, prefix: &str) -> Scheme {
    Scheme {
        algorithm,
        encoding,
        prefix: prefix.to_owned(),
    }
}

#[track_caller]
fn check(
    scheme: &Scheme,
    secrets: &[&str],
    header: Option<&str>,
    expected: Result<usize, VerifyError>,
) {
    let got = norm(
        Secret::list(secrets)
            .and_then(|secrets| scheme.verify(&secrets, header.map(str::as_bytes), b"payload")),
    );
    assert_eq!(
        got.map(|v| v.secret_index()),
        expected,
        "{scheme:?} {header:?}"
    );
}

#[test]
fn default_is_sha256_hex_with_prefix() {
    assert_eq!(
        Scheme::default(),
        scheme(Algorithm::Sha256, Encoding::Hex, "sha256=")
    );
}

#[test]
fn sign_has_the_expected_shape() {
    #[track_caller]
    fn check(algorithm: Algorithm, encoding: Encoding, prefix: &str, len: usize) {
        let s = scheme(algorithm, encoding, prefix);
        let header = s.sign(b"k", b"payload");
        assert!(header.starts_with(prefix), "{header}");
        assert_eq!(header.len(), prefix.len() + len, "{header}");
    }
    check(Algorithm::Sha1, Encoding::Hex, "sha1=", 40);
    check(Algorithm::Sha256, Encoding::Hex, "", 64);
    check(Algorithm::Sha512, Encoding::Hex, "sha512=", 128);
    check(Algorithm::Sha1, Encoding::Base64, "", 28);
    check(Algorithm::Sha256, Encoding::Base64, "v1=", 44);
    check(Algorithm::Sha512, Encoding::Base64, "", 88);
}

#[test]
fn verify_cases() {
    use VerifyError::*;
    for algorithm in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
        for encoding in [Encoding::Hex, Encoding::Base64] {
            for prefix in ["", "sha=", "X "] {
                let s = scheme(algorithm, encoding, prefix);
                let good = s.sign(b"secret", b"payload");
                check(&s, &["secret"], Some(&good), Ok(0));
                check(&s, &["old", "secret"], Some(&good), Ok(1));
                check(&s, &["other"], Some(&good), Err(Mismatch));
                check(&s, &[], Some(&good), Err(NoSecrets));
                check(&s, &[""], Some(&good), Err(InvalidSecret));
                check(&s, &["secret"], None, Err(VerifyError::missing("")));
                check(&s, &["secret"], Some(""), Err(VerifyError::missing("")));
                check(
                    &s,
                    &["secret"],
                    Some(&good[..good.len() - 1]),
                    Err(MalformedHeader),
                );
                check(
                    &s,
                    &["secret"],
                    Some(&format!("{good} ")),
                    Err(MalformedHeader),
                );
                check(
                    &s,
                    &["secret"],
                    Some(&format!(" {good}")),
                    Err(MalformedHeader),
                );
                check(
                    &s,
                    &["secret"],
                    Some(prefix),
                    Err(if prefix.is_empty() {
                        VerifyError::missing("")
                    } else {
                        MalformedHeader
                    }),
                );
            }
        }
    }
    // Hex must be lower case; the other algorithm's length is malformed.
    let s = Scheme::default();
    let good = s.sign(b"secret", b"payload");
    check(
        &s,
        &["secret"],
        Some(&good.to_uppercase().replace("SHA256=", "sha256=")),
        Err(MalformedHeader),
    );
    check(
        &s,
        &["secret"],
        Some(&scheme(Algorithm::Sha1, Encoding::Hex, "sha256=").sign(b"secret", b"payload")),
        Err(MalformedHeader),
    );
}
