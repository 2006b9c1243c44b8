use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use std::collections::HashSet;

use super::*;
use crate::scheme::{Key, Request, SigningKey, Verifier};
use crate::{Secret, UnixTime, VerifyError};

const NOW_MS: i64 = 1_700_000_000_123;
const URL: &str = "https://hooks.example.com/webhook/in?x=1";

#[test]
fn kinds_are_unique_and_found_by_name() {
    let mut seen = HashSet::new();
    for preset in ALL {
        assert!(seen.insert(preset.kind), "duplicate {}", preset.kind);
        assert_eq!(by_name(preset.kind), Some(preset));
        // Every preset template prints to text that parses back to it.
        let text = preset.scheme.payload.to_string();
        assert_eq!(
            Template::parse(&text).as_ref(),
            Ok(&preset.scheme.payload),
            "{text}"
        );
    }
    assert_eq!(ALL.len(), 29);
    assert_eq!(by_name("Slack"), None);
    assert_eq!(by_name("nope"), None);
}

#[test]
fn table_of_presets() {
    let table: String = ALL
        .iter()
        .chain([&STANDARD_ED25519])
        .map(|p| {
            let s = &p.scheme;
            alloc::format!(
                "{}: {:?} {:?} prefix={:?} {:?} {:?} payload={} ts={:?} needs={:?} handshake={:?}\n",
                p.kind,
                s.signature.location,
                s.algorithm,
                s.signature.prefix,
                s.signature.encoding,
                s.signature.list,
                s.payload,
                s.timestamp.as_ref().map(|t| (&t.source, t.unit, t.tolerance.past.map(|d| d.as_secs()))),
                p.needs,
                p.handshake,
            )
        })
        .collect();
    insta::assert_snapshot!(table);
}

fn signing_key(preset: &Preset, seed: u8) -> SigningKey {
    match preset.scheme.algorithm {
        #[cfg(feature = "ed25519")]
        Algorithm::Ed25519 => SigningKey::ed25519_seed(&[seed; 32]),
        #[cfg(feature = "p256")]
        Algorithm::EcdsaP256Der | Algorithm::EcdsaP256Raw => {
            SigningKey::p256_scalar(&[seed; 32]).unwrap()
        }
        _ => SigningKey::Secret(Secret::new(alloc::format!("secret-{seed}")).unwrap()),
    }
}

fn runnable(preset: &Preset) -> bool {
    match preset.scheme.algorithm {
        Algorithm::HmacSha1 => cfg!(feature = "sha1"),
        Algorithm::Ed25519 => cfg!(feature = "ed25519"),
        Algorithm::EcdsaP256Der | Algorithm::EcdsaP256Raw => cfg!(feature = "p256"),
        _ => true,
    }
}

/// A delivery as the sender would make it: headers and body.
fn deliver(preset: &Preset, key: &SigningKey, at: UnixTime) -> (Vec<(String, String)>, Vec<u8>) {
    let scheme = &preset.scheme;
    let mut headers: Vec<(String, String)> =
        vec![("content-type".into(), "application/json".into())];
    if let Some(Location::Header(name) | Location::HeaderOr(name, _)) = &scheme.id {
        headers.push((name.to_string(), "delivery-1".into()));
    }
    let body: Vec<u8> = match preset.kind {
        "linear" => alloc::format!(
            r#"{{"action":"create","webhookTimestamp":{}}}"#,
            at.as_millis()
        )
        .into_bytes(),
        "twilio" => b"CallSid=CA1&From=%2B15550001111&Body=hi+there".to_vec(),
        "mailgun" => {
            let unsigned = alloc::format!(
                r#"{{"signature":{{"timestamp":"{}","token":"tok-1","signature":""}},"event-data":{{"event":"delivered"}}}}"#,
                at.as_secs()
            );
            let none: [(&str, &str); 0] = [];
            let value = scheme
                .signature_value(key, &Request::new(&none, unsigned.as_bytes()), at)
                .unwrap();
            return (
                headers,
                unsigned
                    .replace(
                        r#""signature":"""#,
                        &alloc::format!(r#""signature":"{value}""#),
                    )
                    .into_bytes(),
            );
        }
        "msgraph" => {
            let none: [(&str, &str); 0] = [];
            let value = scheme
                .signature_value(key, &Request::new(&none, b""), at)
                .unwrap();
            return (
                headers,
                alloc::format!(
                    r#"{{"value":[{{"clientState":"{value}","changeType":"created"}}]}}"#
                )
                .into_bytes(),
            );
        }
        _ => br#"{"type":"ping","id":"evt_1"}"#.to_vec(),
    };
    let signed = {
        let request = Request::new(&headers, &body).url(URL).method("POST");
        scheme.sign(key, &request, at).unwrap()
    };
    headers.extend(signed);
    (headers, body)
}

fn verify(
    preset: &Preset,
    keys: Vec<Key>,
    headers: &[(String, String)],
    body: &[u8],
    now: UnixTime,
) -> Result<Verified, VerifyError> {
    Verifier::new(preset.scheme.clone(), keys)?
        .verify(&Request::new(&headers, body).url(URL).method("POST"), now)
}

use crate::Verified;

#[test]
fn every_preset_signs_what_it_verifies_and_rejects_tampering() {
    let now = UnixTime::from_millis(NOW_MS);
    for preset in ALL.iter().chain([&STANDARD_ED25519]) {
        if !runnable(preset) {
            continue;
        }
        let kind = preset.kind;
        let key = signing_key(preset, 1);
        let other = signing_key(preset, 2);
        let (headers, body) = deliver(preset, &key, now);

        let verified = verify(preset, vec![key.verifying_key()], &headers, &body, now)
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(verified.secret_index(), 0, "{kind}");
        if preset.scheme.timestamp.is_some() {
            assert_eq!(verified.timestamp(), Some(now.as_secs()), "{kind}");
        }

        // Rotation: the old key first, the new one second.
        let rotated = verify(
            preset,
            vec![other.verifying_key(), key.verifying_key()],
            &headers,
            &body,
            now,
        );
        assert_eq!(rotated.map(|v| v.secret_index()), Ok(1), "{kind}");

        assert_eq!(
            verify(preset, vec![other.verifying_key()], &headers, &body, now),
            Err(VerifyError::Mismatch),
            "{kind}: wrong key"
        );

        let signs_body = preset.scheme.algorithm != Algorithm::Token
            && preset
                .scheme
                .payload
                .uses(|p| matches!(p, Part::Body | Part::Form));
        if signs_body {
            let mut tampered = body.clone();
            // Changes a value, keeping JSON (and form) syntax intact.
            let at = tampered.iter().position(|&b| b == b'1').unwrap();
            tampered[at] = b'2';
            assert_eq!(
                verify(preset, vec![key.verifying_key()], &headers, &tampered, now),
                Err(VerifyError::Mismatch),
                "{kind}: tampered body"
            );
        }

        if let Some(rule) = &preset.scheme.timestamp {
            let window = rule.tolerance.past.unwrap().as_millis() as i64;
            let late = UnixTime::from_millis(NOW_MS + window + 1000);
            let early = UnixTime::from_millis(NOW_MS - window - 1000);
            assert_eq!(
                verify(preset, vec![key.verifying_key()], &headers, &body, late),
                Err(VerifyError::TimestampTooOld),
                "{kind}: stale"
            );
            assert_eq!(
                verify(preset, vec![key.verifying_key()], &headers, &body, early),
                Err(VerifyError::TimestampTooNew),
                "{kind}: future"
            );
        }

        if let Location::Header(name) | Location::HeaderOr(name, _) =
            &preset.scheme.signature.location
        {
            let stripped: Vec<_> = headers
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case(name))
                .cloned()
                .collect();
            assert_eq!(
                verify(preset, vec![key.verifying_key()], &stripped, &body, now)
                    .map_err(|e| e.code()),
                Err("missing_header"),
                "{kind}: no signature"
            );
            let malformed: Vec<_> = headers
                .iter()
                .map(|(k, v)| {
                    if k.eq_ignore_ascii_case(name) {
                        (k.clone(), alloc::format!("{v}!"))
                    } else {
                        (k.clone(), v.clone())
                    }
                })
                .collect();
            let err =
                verify(preset, vec![key.verifying_key()], &malformed, &body, now).unwrap_err();
            assert!(
                matches!(err, VerifyError::MalformedHeader | VerifyError::Mismatch),
                "{kind}: malformed header gave {err:?}"
            );
        }
    }
}

#[test]
fn svix_headers_verify_as_standard() {
    let key = SigningKey::Secret(Secret::new("whsec-bytes").unwrap());
    let now = UnixTime::from_secs(1_700_000_000);
    let (headers, body) = deliver(&STANDARD, &key, now);
    let svix: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.replace("webhook-", "svix-"), v.clone()))
        .collect();
    assert!(svix.iter().any(|(k, _)| k == "svix-signature"));
    assert!(verify(&STANDARD, vec![key.verifying_key()], &svix, &body, now).is_ok());
}

#[test]
fn mailgun_token_and_ids_are_exposed() {
    let key = signing_key(&MAILGUN, 1);
    let now = UnixTime::from_secs(1_700_000_000);
    let (headers, body) = deliver(&MAILGUN, &key, now);
    let mailgun = MAILGUN;
    let token = mailgun.scheme.token.as_ref().unwrap();
    assert_eq!(
        Scheme::extract(token, &headers, &body).as_deref(),
        Some(&b"tok-1"[..])
    );
    let event = mailgun.scheme.event.as_ref().unwrap();
    assert_eq!(
        Scheme::extract(event, &headers, &body).as_deref(),
        Some(&b"delivered"[..])
    );
}
