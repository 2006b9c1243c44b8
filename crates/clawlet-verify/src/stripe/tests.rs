use super::*;

fn secrets() -> alloc::vec::Vec<Secret> {
    Secret::list(&[SECRET]).unwrap()
}

const SECRET: &str = "whsec_test_secret";
const BODY: &[u8] = b"{\"id\":\"evt_1\"}";
const T: i64 = 1_699_999_990;
const NOW: i64 = 1_700_000_000;

fn v1(secret: &str, t: i64) -> String {
    let header = sign(secret.as_bytes(), t, BODY);
    header
        .split_once(",v1=")
        .map(|(_, sig)| sig.to_owned())
        .unwrap()
}

#[track_caller]
fn check(
    secrets: &[&str],
    header: &str,
    now: i64,
    tolerance: u64,
    expected: Result<usize, VerifyError>,
) {
    let got = Secret::list(secrets).and_then(|secrets| {
        verify(
            &secrets,
            Some(header.as_bytes()),
            BODY,
            UnixTime::from_secs(now),
            (tolerance > 0).then(|| Duration::from_secs(tolerance)),
        )
    });
    assert_eq!(got.map(|v| v.secret_index()), expected, "header {header:?}");
}

#[test]
fn sign_renders_t_then_v1() {
    let header = sign(SECRET.as_bytes(), T, BODY);
    assert_eq!(header, format!("t={T},v1={}", v1(SECRET, T)));
    assert_eq!(header.len(), "t=1699999990,v1=".len() + 64);
}

#[test]
fn verify_cases() {
    use VerifyError::*;
    let good = v1(SECRET, T);
    let zeros = "0".repeat(64);
    check(&[SECRET], &format!("t={T},v1={good}"), NOW, 300, Ok(0));
    check(
        &["whsec_old", SECRET],
        &format!("t={T},v1={good}"),
        NOW,
        300,
        Ok(1),
    );
    check(&[SECRET], &format!("v1={good},t={T}"), NOW, 300, Ok(0));
    check(
        &[SECRET],
        &format!("t={T},v1={zeros},v1={good}"),
        NOW,
        300,
        Ok(0),
    );
    check(
        &[SECRET],
        &format!("t={T},v1=junk,v1={good},v0={zeros}"),
        NOW,
        300,
        Ok(0),
    );
    check(
        &[SECRET],
        &format!("t={T},v1={good},x=1,garbage"),
        NOW,
        300,
        Ok(0),
    );
    check(&[SECRET], &format!("t=0{T},v1={good}"), NOW, 300, Ok(0));
    check(
        &[SECRET],
        &format!("t={T},v0={good}"),
        NOW,
        300,
        Err(NoSignatureForScheme),
    );
    check(
        &[SECRET],
        &format!("t={T}"),
        NOW,
        300,
        Err(NoSignatureForScheme),
    );
    check(
        &[SECRET],
        &format!("v1={good}"),
        NOW,
        300,
        Err(MalformedHeader),
    );
    check(
        &[SECRET],
        &format!("t={T},t={T},v1={good}"),
        NOW,
        300,
        Err(MalformedHeader),
    );
    check(
        &[SECRET],
        &format!("t= {T},v1={good}"),
        NOW,
        300,
        Err(MalformedHeader),
    );
    check(
        &[SECRET],
        &format!("t=abc,v1={good}"),
        NOW,
        300,
        Err(MalformedHeader),
    );
    check(
        &[SECRET],
        &format!("t=-{T},v1={good}"),
        NOW,
        300,
        Err(MalformedHeader),
    );
    check(
        &[SECRET],
        "i'm not even a real signature header",
        NOW,
        300,
        Err(MalformedHeader),
    );
    // No trimming: a space before the key makes it an unknown element.
    check(
        &[SECRET],
        &format!("t={T}, v1={good}"),
        NOW,
        300,
        Err(NoSignatureForScheme),
    );
    check(
        &[SECRET],
        &format!("t={T},v1={good} "),
        NOW,
        300,
        Err(Mismatch),
    );
    check(
        &[SECRET],
        &format!("t={T},v1={}", &good[..32]),
        NOW,
        300,
        Err(Mismatch),
    );
    check(&[SECRET], &format!("t={T},v1="), NOW, 300, Err(Mismatch));
    check(
        &["whsec_other"],
        &format!("t={T},v1={good}"),
        NOW,
        300,
        Err(Mismatch),
    );
    check(&[], &format!("t={T},v1={good}"), NOW, 300, Err(NoSecrets));
    check(
        &[""],
        &format!("t={T},v1={good}"),
        NOW,
        300,
        Err(InvalidSecret),
    );
}

#[test]
fn timestamp_window() {
    use VerifyError::*;
    let header = |t: i64| format!("t={t},v1={}", v1(SECRET, t));
    check(&[SECRET], &header(NOW - 300), NOW, 300, Ok(0));
    check(
        &[SECRET],
        &header(NOW - 301),
        NOW,
        300,
        Err(TimestampTooOld),
    );
    check(&[SECRET], &header(NOW + 300), NOW, 300, Ok(0));
    check(
        &[SECRET],
        &header(NOW + 301),
        NOW,
        300,
        Err(TimestampTooNew),
    );
    check(&[SECRET], &header(12345), NOW, 0, Ok(0));
    check(&[SECRET], &header(NOW + 1_000_000), NOW, 0, Ok(0));
    // A stale forgery is reported as a forgery, not as a clock problem.
    let forged = format!("t={},v1={}", NOW - 1000, "0".repeat(64));
    check(&[SECRET], &forged, NOW, 300, Err(Mismatch));
}

#[test]
fn missing_or_empty_header() {
    assert_eq!(
        verify(
            &secrets(),
            None,
            BODY,
            UnixTime::from_secs(NOW),
            Some(DEFAULT_TOLERANCE)
        ),
        Err(VerifyError::missing(HEADER))
    );
    assert_eq!(
        verify(
            &secrets(),
            Some(b""),
            BODY,
            UnixTime::from_secs(NOW),
            Some(DEFAULT_TOLERANCE)
        ),
        Err(VerifyError::missing(HEADER))
    );
}
