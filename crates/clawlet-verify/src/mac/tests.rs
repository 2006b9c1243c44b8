use base64::Engine as _;
use proptest::prelude::*;

use super::*;

fn digest_of(bytes: &[u8]) -> Digest {
    let mut d = empty_digest();
    d.buf[..bytes.len()].copy_from_slice(bytes);
    d.len = bytes.len();
    d
}

proptest! {
    #[test]
    fn hex_encoding_matches_the_hex_crate(bytes in proptest::collection::vec(any::<u8>(), 0..=64)) {
        let encoded = encode(&digest_of(&bytes), Encoding::Hex);
        let reference = hex::encode(&bytes);
        prop_assert_eq!(encoded.as_bytes(), reference.as_bytes());
    }

    #[test]
    fn base64_encoding_matches_the_base64_crate(bytes in proptest::collection::vec(any::<u8>(), 0..=64)) {
        let encoded = encode(&digest_of(&bytes), Encoding::Base64);
        let reference = base64::engine::general_purpose::STANDARD.encode(&bytes);
        prop_assert_eq!(encoded.as_bytes(), reference.as_bytes());
    }

    #[test]
    fn encodings_of_real_digests_are_well_formed(
        key in proptest::collection::vec(any::<u8>(), 1..100),
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        for algorithm in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
            let digest = hmac(algorithm, &key, &[&body]);
            prop_assert_eq!(digest.as_bytes().len(), algorithm.digest_len());
            for encoding in [Encoding::Hex, Encoding::Base64] {
                let encoded = encode(&digest, encoding);
                prop_assert!(well_formed(encoded.as_bytes(), encoding, algorithm.digest_len()));
            }
        }
    }

    #[test]
    fn decimal_renders_like_display(n in any::<i64>()) {
        let (rendered, reference) = (Decimal::new(n), n.to_string());
        prop_assert_eq!(rendered.as_bytes(), reference.as_bytes());
    }

    #[test]
    fn parse_timestamp_inverts_decimal(n in 0..=i64::MAX) {
        prop_assert_eq!(parse_timestamp(Decimal::new(n).as_bytes()), Ok(n));
    }
}

#[test]
fn decimal_renders_every_digit_count_and_both_ends() {
    let mut edges = vec![i64::MIN, i64::MAX, 0, -1];
    let mut power = 1i64;
    for _ in 0..18 {
        edges.extend([power - 1, power, -power, power * 5 + 7]);
        power *= 10;
    }
    for n in edges {
        assert_eq!(Decimal::new(n).as_bytes(), n.to_string().as_bytes(), "{n}");
    }
}

#[test]
fn hmac_is_fed_incrementally_like_one_buffer() {
    let whole = hmac(Algorithm::Sha256, b"key", &[b"123.body"]);
    let parts = hmac(Algorithm::Sha256, b"key", &[b"123", b".", b"body"]);
    assert_eq!(whole.as_bytes(), parts.as_bytes());
}

#[test]
fn parse_timestamp_cases() {
    #[track_caller]
    fn check(input: &str, expected: Result<i64, VerifyError>) {
        assert_eq!(
            parse_timestamp(input.as_bytes()),
            expected,
            "input {input:?}"
        );
    }
    check("0", Ok(0));
    check("1700000000", Ok(1_700_000_000));
    check("01699999990", Ok(1_699_999_990));
    check("9223372036854775807", Ok(i64::MAX));
    check("9223372036854775808", Err(VerifyError::MalformedHeader));
    check("", Err(VerifyError::MalformedHeader));
    check("-5", Err(VerifyError::MalformedHeader));
    check("+5", Err(VerifyError::MalformedHeader));
    check(" 5", Err(VerifyError::MalformedHeader));
    check("5 ", Err(VerifyError::MalformedHeader));
    check("1.5", Err(VerifyError::MalformedHeader));
    check("1e9", Err(VerifyError::MalformedHeader));
    check("hello", Err(VerifyError::MalformedHeader));
    check("١٢٣", Err(VerifyError::MalformedHeader));
}

#[test]
fn check_timestamp_cases() {
    #[track_caller]
    fn check(t: i64, now: i64, tolerance: u64, expected: Result<(), VerifyError>) {
        assert_eq!(
            check_timestamp(
                t,
                UnixTime::from_secs(now),
                Tolerance::from(
                    (tolerance > 0).then(|| core::time::Duration::from_secs(tolerance))
                ),
            ),
            expected,
            "t={t} now={now} tolerance={tolerance}"
        );
    }
    check(1000, 1000, 300, Ok(()));
    check(700, 1000, 300, Ok(()));
    check(699, 1000, 300, Err(VerifyError::TimestampTooOld));
    check(1300, 1000, 300, Ok(()));
    check(1301, 1000, 300, Err(VerifyError::TimestampTooNew));
    check(0, i64::MAX, 300, Err(VerifyError::TimestampTooOld));
    check(i64::MAX, i64::MIN, u64::MAX, Ok(()));
    check(i64::MAX, i64::MIN, 300, Err(VerifyError::TimestampTooNew));
    check(0, i64::MAX, 0, Ok(()));
    check(i64::MAX, 0, 0, Ok(()));
}

#[test]
fn well_formed_cases() {
    #[track_caller]
    fn check(value: &str, encoding: Encoding, len: usize, expected: bool) {
        assert_eq!(
            well_formed(value.as_bytes(), encoding, len),
            expected,
            "{value:?} {encoding:?} {len}"
        );
    }
    let hex64 = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    check(hex64, Encoding::Hex, 32, true);
    check(&hex64.to_uppercase(), Encoding::Hex, 32, false);
    check(&hex64[..62], Encoding::Hex, 32, false);
    check(&format!("{hex64} "), Encoding::Hex, 32, false);
    check(&format!("{}g", &hex64[..63]), Encoding::Hex, 32, false);
    check("", Encoding::Hex, 32, false);
    let b64 = "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    check(b64, Encoding::Base64, 32, true);
    check(&b64[..43], Encoding::Base64, 32, false);
    check(&b64.replace('=', "A"), Encoding::Base64, 32, false);
    check(&b64.replace('+', "-"), Encoding::Base64, 32, false);
    check(&b64.replace('g', "="), Encoding::Base64, 32, false);
    // 20 bytes: 27 symbols and one '='; 64 bytes: 86 symbols and two.
    check(&format!("{}=", "A".repeat(27)), Encoding::Base64, 20, true);
    check(&format!("{}==", "A".repeat(86)), Encoding::Base64, 64, true);
    check(&format!("{}=", "A".repeat(87)), Encoding::Base64, 64, false);
}

#[test]
fn matches_never_accepts_a_truncated_flipped_or_empty_value() {
    // 28 base64 characters: three whole words and a four-byte tail.
    let expected = encode(&hmac(Algorithm::Sha1, b"k", &[b"b"]), Encoding::Base64);
    let full = expected.as_bytes().to_vec();
    assert!(matches(&expected, &full));
    for len in 0..full.len() {
        assert!(!matches(&expected, &full[..len]), "prefix of length {len}");
    }
    let mut longer = full.clone();
    longer.push(b'0');
    assert!(!matches(&expected, &longer));
    for i in 0..full.len() {
        for bit in 0..8 {
            let mut flipped = full.clone();
            flipped[i] ^= 1 << bit;
            assert!(!matches(&expected, &flipped), "byte {i} bit {bit}");
        }
    }
    let empty = encode(&empty_digest(), Encoding::Hex);
    assert!(!matches(&empty, b""));
}

#[test]
fn present_treats_empty_as_missing() {
    assert_eq!(present(None, "x-sig"), Err(VerifyError::missing("x-sig")));
    assert_eq!(
        present(Some(b""), "x-sig"),
        Err(VerifyError::missing("x-sig"))
    );
    assert_eq!(present(Some(b" "), "x-sig"), Ok(&b" "[..]));
}
