use super::*;

/// Missing-header errors compared by kind; each module names its own headers.
fn norm<T>(r: Result<T, VerifyError>) -> Result<T, VerifyError> {
    r.map_err(|e| match e {
        VerifyError::MissingHeader { .. } => VerifyError::missing(""),
        e => e,
    })
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS: &str = "1614265330";
const NOW: i64 = 1_614_265_330;
const BODY: &[u8] = b"{\"test\": 2432232314}";
const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn key() -> Key {
    Key::from_secret(SECRET).unwrap()
}

#[track_caller]
fn check(
    keys: &[Key],
    headers: (Option<&str>, Option<&str>, Option<&str>),
    now: i64,
    expected: Result<usize, VerifyError>,
) {
    let (id, ts, sig) = headers;
    let got = norm(verify(
        keys,
        Delivery {
            id: id.map(str::as_bytes),
            timestamp: ts.map(str::as_bytes),
            signature: sig.map(str::as_bytes),
            body: BODY,
        },
        UnixTime::from_secs(now),
        Some(DEFAULT_TOLERANCE),
    ));
    assert_eq!(
        got.map(|v| v.secret_index()),
        expected,
        "{headers:?} now={now}"
    );
}

#[test]
fn sign_matches_the_official_vector() {
    assert_eq!(sign(&key(), ID, NOW, BODY).unwrap(), SIG);
}

#[test]
fn key_from_secret_cases() {
    #[track_caller]
    fn check(secret: &str, expected: Result<usize, VerifyError>) {
        assert_eq!(
            Key::from_secret(secret).map(|k| k.hmac_bytes().len()),
            expected,
            "{secret:?}"
        );
    }
    check(SECRET, Ok(24));
    check(&SECRET[6..], Ok(24));
    check("whsec_AAAA", Ok(3));
    check("whsec_AA==", Ok(1));
    check("whsec_AA", Ok(1));
    check("whsec_", Err(VerifyError::InvalidSecret));
    check("", Err(VerifyError::InvalidSecret));
    check("whsec_not base64!", Err(VerifyError::InvalidSecret));
    check("whsec_AA-_", Err(VerifyError::InvalidSecret));
    assert_eq!(
        Key::from_bytes(b"").map(|_| ()),
        Err(VerifyError::InvalidSecret)
    );
    assert_eq!(
        Key::from_bytes(key().hmac_bytes()).map(|k| k.hmac_bytes().to_vec()),
        Ok(key().hmac_bytes().to_vec())
    );
}

#[test]
fn key_debug_is_redacted() {
    let debug = format!("{:?}", key());
    assert_eq!(debug, "Key([redacted])");
}

#[test]
fn verify_cases() {
    use VerifyError::*;
    let other = Key::from_secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
    check(&[key()], (Some(ID), Some(TS), Some(SIG)), NOW, Ok(0));
    check(
        &[other.clone(), key()],
        (Some(ID), Some(TS), Some(SIG)),
        NOW,
        Ok(1),
    );
    check(
        std::slice::from_ref(&other),
        (Some(ID), Some(TS), Some(SIG)),
        NOW,
        Err(Mismatch),
    );
    check(&[], (Some(ID), Some(TS), Some(SIG)), NOW, Err(NoSecrets));
    check(
        &[key()],
        (None, Some(TS), Some(SIG)),
        NOW,
        Err(VerifyError::missing("")),
    );
    check(
        &[key()],
        (Some(ID), None, Some(SIG)),
        NOW,
        Err(VerifyError::missing("")),
    );
    check(
        &[key()],
        (Some(ID), Some(TS), None),
        NOW,
        Err(VerifyError::missing("")),
    );
    check(
        &[key()],
        (Some(ID), Some(""), Some(SIG)),
        NOW,
        Err(VerifyError::missing("")),
    );
    check(
        &[key()],
        (Some(ID), Some("hello"), Some(SIG)),
        NOW,
        Err(MalformedHeader),
    );
    check(
        &[key()],
        (Some(ID), Some("1614265330.5"), Some(SIG)),
        NOW,
        Err(MalformedHeader),
    );
    check(
        &[key()],
        (Some(ID), Some("0001614265330"), Some(SIG)),
        NOW,
        Ok(0),
    );
    let listed = format!("v2,AAAA  v1,bad {SIG}");
    check(&[key()], (Some(ID), Some(TS), Some(&listed)), NOW, Ok(0));
    check(
        &[key()],
        (Some(ID), Some(TS), Some(&SIG.replace("v1,", "v2,"))),
        NOW,
        Err(NoSignatureForScheme),
    );
    check(
        &[key()],
        (Some(ID), Some(TS), Some(&SIG[..SIG.len() - 1])),
        NOW,
        Err(Mismatch),
    );
    check(
        &[key()],
        (Some(ID), Some(TS), Some("v1,")),
        NOW,
        Err(Mismatch),
    );
    check(
        &[key()],
        (Some("msg_other"), Some(TS), Some(SIG)),
        NOW,
        Err(Mismatch),
    );
}

#[test]
fn timestamp_window_is_checked_both_ways() {
    use VerifyError::*;
    let ok = (Some(ID), Some(TS), Some(SIG));
    check(&[key()], ok, NOW + 300, Ok(0));
    check(&[key()], ok, NOW + 301, Err(TimestampTooOld));
    check(&[key()], ok, NOW - 300, Ok(0));
    check(&[key()], ok, NOW - 301, Err(TimestampTooNew));
}
