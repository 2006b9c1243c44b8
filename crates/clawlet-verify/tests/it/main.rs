//! Runs every vector of `testdata/signatures/*.json` through the public API, and checks the
//! sign-then-verify round trip of every scheme with proptest.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail loudly on a broken fixture"
)]

use std::collections::BTreeMap;
use std::path::Path;

use clawlet_verify::custom::{Algorithm, Encoding, Scheme};
use clawlet_verify::standard::Key;
use clawlet_verify::{Secret, UnixTime, Verified, VerifyError, custom, github, standard, stripe};
use serde::Deserialize;

mod algorithms;
#[cfg(feature = "http")]
mod http;
mod roundtrip;
mod vectors;

/// One secret, checked as configuration is.
fn secrets(secret: impl AsRef<[u8]>) -> Vec<Secret> {
    vec![Secret::new(secret).unwrap()]
}

/// The vectors' tolerance in seconds, where 0 means unchecked.
fn tolerance(secs: u64) -> Option<std::time::Duration> {
    (secs > 0).then(|| std::time::Duration::from_secs(secs))
}

const SIGNATURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/signatures");

/// One case of a vector file; fields not used by a scheme are absent in its file.
#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_file: Option<String>,
    #[serde(default)]
    now: Option<i64>,
    #[serde(default)]
    tolerance: Option<u64>,
    expect: Expect,
    #[serde(default)]
    accept_if_legacy_sha1: Option<bool>,
    #[serde(default)]
    secret_hex: Option<String>,
    #[serde(default)]
    body_hex: Option<String>,
    #[serde(default)]
    hmac_sha256_hex: Option<String>,
    #[serde(default)]
    truncate_bytes: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Expect {
    Accept,
    Reject,
}

impl Case {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_bytes())
    }

    /// The body, with `body_file` resolved against the folder of the vector files.
    fn body(&self) -> Vec<u8> {
        match (&self.body_file, &self.body) {
            (Some(file), _) => {
                let path = Path::new(SIGNATURES).join(file);
                std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            }
            (None, Some(body)) => body.clone().into_bytes(),
            (None, None) => panic!("{}: neither body nor body_file", self.name),
        }
    }

    fn secret(&self) -> &str {
        self.secret
            .as_deref()
            .unwrap_or_else(|| panic!("{}: no secret", self.name))
    }

    fn now(&self) -> i64 {
        self.now.unwrap_or_else(|| panic!("{}: no now", self.name))
    }
}

fn load(file: &str) -> Vec<Case> {
    let path = Path::new(SIGNATURES).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases: Vec<Case> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(!cases.is_empty(), "{file}: no cases");
    cases
}

fn outcome(result: Result<Verified, VerifyError>) -> String {
    match result {
        Ok(v) => format!("accept (secret {})", v.secret_index()),
        Err(e) => format!("reject {}", e.code()),
    }
}

/// Compares each result with the expectation, collects every failure (so one run names all the
/// broken cases), and returns the outcomes for the snapshot that pins the reason codes.
#[derive(Default)]
struct Report {
    failures: Vec<String>,
    outcomes: String,
}

impl Report {
    fn check(&mut self, name: &str, result: Result<Verified, VerifyError>, expected: Expect) {
        let got = if result.is_ok() {
            Expect::Accept
        } else {
            Expect::Reject
        };
        if got != expected {
            self.failures.push(format!(
                "{name}: expected {expected:?}, got {}",
                outcome(result.clone())
            ));
        }
        self.outcomes
            .push_str(&format!("{name}: {}\n", outcome(result)));
    }

    fn finish(self, file: &str) -> String {
        assert!(
            self.failures.is_empty(),
            "{file}:\n{}",
            self.failures.join("\n")
        );
        self.outcomes
    }
}

#[test]
fn github_vectors() {
    let cases = load("github.json");
    let mut report = Report::default();
    for case in &cases {
        let body = case.body();
        let run = |legacy| {
            github::verify(
                &secrets(case.secret()),
                github::Signatures {
                    sha256: case.header("X-Hub-Signature-256"),
                    sha1: case.header("X-Hub-Signature"),
                },
                &body,
                legacy,
            )
        };
        report.check(&case.name, run(github::Legacy::Refuse), case.expect);
        let legacy_expect = match case.accept_if_legacy_sha1 {
            Some(true) => Expect::Accept,
            Some(false) => Expect::Reject,
            None => case.expect,
        };
        report.check(
            &format!("{} (legacy sha1 allowed)", case.name),
            run(github::Legacy::AllowSha1),
            legacy_expect,
        );
    }
    insta::assert_snapshot!(report.finish("github.json"));
}

#[test]
fn stripe_vectors() {
    let cases = load("stripe.json");
    let mut report = Report::default();
    for case in &cases {
        let body = case.body();
        let result = stripe::verify(
            &secrets(case.secret()),
            case.header("Stripe-Signature"),
            &body,
            UnixTime::from_secs(case.now()),
            tolerance(case.tolerance.unwrap_or(300)),
        );
        report.check(&case.name, result, case.expect);
    }
    insta::assert_snapshot!(report.finish("stripe.json"));
}

#[test]
fn standard_webhooks_vectors() {
    let cases = load("standard-webhooks.json");
    let mut report = Report::default();
    for case in &cases {
        let body = case.body();
        let key = Key::from_secret(case.secret()).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let result = standard::verify(
            &[key],
            standard::Delivery {
                id: case.header("webhook-id"),
                timestamp: case.header("webhook-timestamp"),
                signature: case.header("webhook-signature"),
                body: &body,
            },
            UnixTime::from_secs(case.now()),
            tolerance(case.tolerance.unwrap_or(300)),
        );
        report.check(&case.name, result, case.expect);
    }
    insta::assert_snapshot!(report.finish("standard-webhooks.json"));
}

/// RFC 4231 tests the primitive under the custom scheme (HMAC-SHA256, bare hex).
///
/// Test case 5 publishes only the first 128 bits of the MAC. The primitive is checked on those
/// bytes, and the truncated value itself must NOT verify: this crate never accepts a truncated
/// signature, so "accept" there means "the primitive agrees", not "the header passes".
#[test]
fn hmac_sha256_vectors() {
    let cases = load("hmac-sha256.json");
    let bare_hex = Scheme {
        algorithm: Algorithm::Sha256,
        encoding: Encoding::Hex,
        prefix: String::new(),
    };
    let base64 = Scheme {
        encoding: Encoding::Base64,
        ..bare_hex.clone()
    };
    let mut report = Report::default();
    for case in &cases {
        let name = &case.name;
        let hex_field = |f: &Option<String>, what: &str| {
            hex::decode(f.as_deref().unwrap_or_else(|| panic!("{name}: no {what}"))).unwrap()
        };
        let secret = hex_field(&case.secret_hex, "secret_hex");
        let body = hex_field(&case.body_hex, "body_hex");
        let published = case.hmac_sha256_hex.as_deref().unwrap();
        if let Some(text) = &case.body {
            assert_eq!(text.as_bytes(), body, "{name}: body and body_hex differ");
        }
        if let Some(text) = &case.secret {
            assert_eq!(
                text.as_bytes(),
                secret,
                "{name}: secret and secret_hex differ"
            );
        }
        let signed = bare_hex.sign(&secret, &body);
        match case.truncate_bytes {
            Some(n) => {
                let agrees = signed.len() == 64 && signed[..2 * n] == *published;
                let truncated =
                    bare_hex.verify(&secrets(&secret), Some(published.as_bytes()), &body);
                assert_eq!(
                    truncated,
                    Err(VerifyError::MalformedHeader),
                    "{name}: truncated MAC passed"
                );
                let result = if agrees {
                    bare_hex.verify(&secrets(&secret), Some(signed.as_bytes()), &body)
                } else {
                    Err(VerifyError::Mismatch)
                };
                report.check(&format!("{name} (first {n} bytes)"), result, case.expect);
                report.check(
                    &format!("{name} (truncated header)"),
                    truncated,
                    Expect::Reject,
                );
            }
            None => {
                let result = bare_hex.verify(&secrets(&secret), Some(published.as_bytes()), &body);
                report.check(name, result, case.expect);
                let tag = hex::decode(published).unwrap();
                let as_base64 = base64_of(&tag);
                let result = base64.verify(&secrets(&secret), Some(as_base64.as_bytes()), &body);
                report.check(&format!("{name} (base64)"), result, case.expect);
                assert_eq!(
                    signed, published,
                    "{name}: sign differs from the published MAC"
                );
                assert_eq!(
                    base64.sign(&secret, &body),
                    as_base64,
                    "{name}: base64 sign"
                );
            }
        }
    }
    insta::assert_snapshot!(report.finish("hmac-sha256.json"));
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `custom::Scheme::default()` is the GitHub shape: both must agree on the GitHub vectors.
#[test]
fn default_custom_scheme_agrees_with_github_on_accepted_vectors() {
    let cases = load("github.json");
    let scheme = custom::Scheme::default();
    for case in cases.iter().filter(|c| c.expect == Expect::Accept) {
        let body = case.body();
        let header = case.header("X-Hub-Signature-256");
        assert!(
            scheme
                .verify(&secrets(case.secret()), header, &body)
                .is_ok(),
            "{}",
            case.name
        );
    }
}
