//! The `http` feature: one call per scheme straight from an `http::HeaderMap`, as a service sees
//! real deliveries (Svix sends `svix-*` headers).

use clawlet_verify::scheme::{Request, SigningKey, Verifier};
use clawlet_verify::standard::{self, Key};
use clawlet_verify::{Secret, UnixTime, VerifyError, github, presets, stripe};
use http::{HeaderMap, HeaderValue};

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS: i64 = 1_614_265_330;
const BODY: &[u8] = br#"{"test": 2432232314}"#;
/// The signature the Standard Webhooks reference libraries give for the values above.
const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn map(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn svix() -> HeaderMap {
    map(&[
        ("svix-id", MSG_ID),
        ("svix-timestamp", "1614265330"),
        ("svix-signature", SIG),
    ])
}

#[test]
fn svix_headers_verify_with_the_standard_module_and_the_preset() {
    let keys = [Key::from_secret(WHSEC).unwrap()];
    let now = UnixTime::from_secs(TS + 10);
    let verified =
        standard::verify_headers(&keys, &svix(), BODY, now, Some(standard::DEFAULT_TOLERANCE))
            .unwrap();
    assert_eq!(verified.timestamp(), Some(TS));

    // The preset reads the same headers; its key is the decoded secret.
    let secret =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &WHSEC[6..]).unwrap();
    let verifier = Verifier::new(
        presets::STANDARD.scheme,
        vec![clawlet_verify::scheme::Key::secret(secret).unwrap()],
    )
    .unwrap();
    assert_eq!(
        verifier
            .verify(&Request::new(&svix(), BODY), now)
            .map(|v| v.secret_index()),
        Ok(0)
    );

    let webhook = map(&[
        ("webhook-id", MSG_ID),
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", SIG),
    ]);
    assert!(
        standard::verify_headers(
            &keys,
            &webhook,
            BODY,
            now,
            Some(standard::DEFAULT_TOLERANCE)
        )
        .is_ok()
    );
}

#[test]
fn missing_and_repeated_headers_are_named_and_refused() {
    let keys = [Key::from_secret(WHSEC).unwrap()];
    let now = UnixTime::from_secs(TS);
    let partial = map(&[("svix-id", MSG_ID), ("svix-signature", SIG)]);
    let err = standard::verify_headers(&keys, &partial, BODY, now, None).unwrap_err();
    assert_eq!(
        err,
        VerifyError::MissingHeader {
            header: "webhook-timestamp".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "the webhook-timestamp header or body field is missing or empty"
    );

    let mut repeated = svix();
    repeated.append("svix-signature", HeaderValue::from_static("v1,AAAA"));
    assert_eq!(
        standard::verify_headers(&keys, &repeated, BODY, now, None),
        Err(VerifyError::MalformedHeader)
    );
}

#[test]
fn github_and_stripe_from_a_header_map() {
    let secrets = [Secret::new("gh").unwrap()];
    let headers = map(&[("X-Hub-Signature-256", &github::sign(b"gh", BODY))]);
    assert!(github::verify_headers(&secrets, &headers, BODY, github::Legacy::Refuse).is_ok());
    let err = github::verify_headers(&secrets, &HeaderMap::new(), BODY, github::Legacy::Refuse)
        .unwrap_err();
    assert_eq!(
        err,
        VerifyError::MissingHeader {
            header: github::SIGNATURE_256_HEADER.into()
        }
    );

    let secrets = [Secret::new("whsec_s").unwrap()];
    let headers = map(&[("Stripe-Signature", &stripe::sign(b"whsec_s", TS, BODY))]);
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(TS as u64 + 1);
    assert!(
        stripe::verify_headers(
            &secrets,
            &headers,
            BODY,
            now,
            Some(stripe::DEFAULT_TOLERANCE)
        )
        .is_ok()
    );
}

#[test]
fn a_preset_from_a_header_map() {
    let key = SigningKey::Secret(Secret::new("slack-secret").unwrap());
    let now = UnixTime::from_secs(TS);
    let none: [(&str, &str); 0] = [];
    let mut headers = HeaderMap::new();
    for (name, value) in presets::SLACK
        .scheme
        .sign(&key, &Request::new(&none, BODY), now)
        .unwrap()
    {
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    let verifier = Verifier::new(presets::SLACK.scheme, vec![key.verifying_key()]).unwrap();
    assert!(verifier.verify(&Request::new(&headers, BODY), now).is_ok());
    let err = verifier
        .verify(&Request::new(&headers, BODY), UnixTime::from_secs(TS + 301))
        .unwrap_err();
    assert_eq!(
        (err.code(), err.kind()),
        (
            "timestamp_too_old",
            clawlet_verify::ErrorKind::Unauthenticated
        )
    );
}
