//! Every payload in testdata/payloads, through `parse`, as GitHub or Stripe delivers it.

use clawlet_events::{CustomOptions, Envelope, Source};

use crate::run;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/payloads");

fn read(file: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{file}")).unwrap()
}

/// Headers as GitHub sends them, plus ones that must never reach an envelope.
fn github_headers<'a>(
    event: &'a str,
    delivery: &'a str,
    content_type: &'a str,
) -> Vec<(&'a str, &'a [u8])> {
    vec![
        ("Content-Type", content_type.as_bytes()),
        ("X-GitHub-Event", event.as_bytes()),
        ("X-GitHub-Delivery", delivery.as_bytes()),
        ("X-GitHub-Hook-ID", b"109948940"),
        ("X-GitHub-Hook-Installation-Target-ID", b"186853002"),
        ("X-GitHub-Hook-Installation-Target-Type", b"repository"),
        ("User-Agent", b"GitHub-Hookshot/044aadd"),
        ("X-Hub-Signature", b"sha1=00"),
        ("X-Hub-Signature-256", b"sha256=00"),
        ("Authorization", b"Bearer secret"),
        ("Cookie", b"session=secret"),
        ("X-Forwarded-For", b"192.0.2.1"),
    ]
}

fn stripe_headers() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("content-type", b"application/json; charset=utf-8"),
        ("stripe-signature", b"t=1,v1=00"),
        (
            "user-agent",
            b"Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        ),
    ]
}

/// The JSON value in a file: the payload agents get is the value itself, without the file's
/// surrounding whitespace.
fn json_text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap().trim()
}

fn snapshot(name: &str, envelope: &Envelope) {
    insta::assert_json_snapshot!(name, envelope, { ".id" => "[uuid-v7]", ".payload" => "[payload]" });
}

fn assert_common(envelope: &Envelope, body: &[u8]) {
    assert_eq!(
        envelope.payload.get(),
        json_text(body),
        "payload must be byte for byte"
    );
    let id = uuid::Uuid::parse_str(&envelope.id).unwrap();
    assert_eq!(id.get_version_num(), 7);
    assert!(!envelope.summary.chars().any(char::is_control));
    for name in envelope.headers.keys() {
        assert!(
            !["authorization", "cookie"].contains(&name.as_str()) && !name.contains("signature"),
            "{name} must not be kept"
        );
    }
}

fn check(file: &str, event_type: &str, action: Option<&str>, delivery_id: &str) {
    let body = read(file);
    let (source, envelope) = if let Some(rest) = file.strip_prefix("github_") {
        let event = rest.split('.').next().unwrap();
        let delivery = format!("delivery-{file}");
        let headers = github_headers(event, &delivery, "application/json");
        (
            Source::Github,
            crate::run(Source::Github, &headers, &body, &CustomOptions::default()).unwrap(),
        )
    } else {
        (
            Source::Stripe,
            run(
                Source::Stripe,
                &stripe_headers(),
                &body,
                &CustomOptions::default(),
            )
            .unwrap(),
        )
    };
    assert_eq!(envelope.source, source, "{file}");
    assert_eq!(envelope.event_type, event_type, "{file}");
    assert_eq!(envelope.action.as_deref(), action, "{file}");
    assert_eq!(envelope.delivery_id, delivery_id, "{file}");
    assert_eq!(envelope.handler, "test-handler");
    assert_common(&envelope, &body);
    snapshot(file.trim_end_matches(".json"), &envelope);
}

#[test]
fn every_payload_parses() {
    let evt = "evt_1Pgc76B7WZ01zgkWwyRHS12y";
    let cases = [
        (
            "github_fork.json",
            "fork",
            None,
            "delivery-github_fork.json",
        ),
        (
            "github_issue_comment.created.json",
            "issue_comment",
            Some("created"),
            "delivery-github_issue_comment.created.json",
        ),
        (
            "github_issues.opened.json",
            "issues",
            Some("opened"),
            "delivery-github_issues.opened.json",
        ),
        (
            "github_ping.json",
            "ping",
            None,
            "delivery-github_ping.json",
        ),
        (
            "github_ping.organization.json",
            "ping",
            None,
            "delivery-github_ping.organization.json",
        ),
        (
            "github_pull_request.opened.json",
            "pull_request",
            Some("opened"),
            "delivery-github_pull_request.opened.json",
        ),
        (
            "github_push.json",
            "push",
            None,
            "delivery-github_push.json",
        ),
        (
            "github_release.published.json",
            "release",
            Some("published"),
            "delivery-github_release.published.json",
        ),
        (
            "github_star.created.json",
            "star",
            Some("created"),
            "delivery-github_star.created.json",
        ),
        (
            "stripe_checkout.session.completed.json",
            "checkout.session.completed",
            None,
            evt,
        ),
        (
            "stripe_customer.created.json",
            "customer.created",
            None,
            evt,
        ),
        (
            "stripe_customer.updated.json",
            "customer.updated",
            None,
            evt,
        ),
        ("stripe_invoice.paid.json", "invoice.paid", None, evt),
        (
            "stripe_invoice.payment_failed.json",
            "invoice.payment_failed",
            None,
            evt,
        ),
        (
            "stripe_payment_intent.payment_failed.json",
            "payment_intent.payment_failed",
            None,
            evt,
        ),
        (
            "stripe_payment_intent.succeeded.json",
            "payment_intent.succeeded",
            None,
            evt,
        ),
    ];
    // Every file in the folder is covered, so a new fixture cannot be forgotten.
    let mut files: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    let listed: Vec<&str> = cases.iter().map(|c| c.0).collect();
    assert_eq!(files, listed);
    for (file, event_type, action, delivery_id) in cases {
        check(file, event_type, action, delivery_id);
    }
}

fn form_encode(body: &[u8]) -> Vec<u8> {
    let mut out = b"payload=".to_vec();
    for &b in body {
        match b {
            b' ' => out.push(b'+'),
            b if b.is_ascii_alphanumeric() || b"-._*".contains(&b) => out.push(b),
            b => out.extend_from_slice(format!("%{b:02X}").as_bytes()),
        }
    }
    out
}

#[test]
fn form_encoded_github_bodies_match_their_json_form() {
    for file in [
        "github_push.json",
        "github_pull_request.opened.json",
        "github_issues.opened.json",
    ] {
        let body = read(file);
        let event = file
            .trim_start_matches("github_")
            .split('.')
            .next()
            .unwrap();
        let json = run(
            Source::Github,
            &github_headers(event, "d-1", "application/json"),
            &body,
            &CustomOptions::default(),
        )
        .unwrap();
        let form_body = form_encode(&body);
        let headers = github_headers(event, "d-1", "application/x-www-form-urlencoded");
        let form = run(
            Source::Github,
            &headers,
            &form_body,
            &CustomOptions::default(),
        )
        .unwrap();
        assert_eq!(
            form.payload.get(),
            json_text(&body),
            "{file}: the payload is the decoded JSON"
        );
        assert_eq!(form.summary, json.summary, "{file}");
        assert_eq!(form.action, json.action, "{file}");
        assert_eq!(form.event_type, json.event_type, "{file}");
    }
}

#[test]
fn envelopes_round_trip_through_json() {
    for entry in std::fs::read_dir(DIR).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let body = std::fs::read(&path).unwrap();
        let envelope = if let Some(rest) = name.strip_prefix("github_") {
            let event = rest.split('.').next().unwrap();
            run(
                Source::Github,
                &github_headers(event, "d-1", "application/json"),
                &body,
                &CustomOptions::default(),
            )
        } else {
            run(
                Source::Stripe,
                &stripe_headers(),
                &body,
                &CustomOptions::default(),
            )
        }
        .unwrap();
        let json = envelope.to_json().unwrap();
        assert_eq!(json, serde_json::to_string(&envelope).unwrap(), "{name}");
        let back = Envelope::from_json(json.as_bytes()).unwrap();
        assert_eq!(back.to_json().unwrap(), json, "{name}");
        assert_eq!(back.payload.get(), json_text(&body), "{name}");
        assert_eq!(back.received_at, crate::RECEIVED_AT);
        // The contract's field names, in one place.
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = vec![
            "action",
            "delivery_id",
            "handler",
            "headers",
            "id",
            "payload",
            "received_at",
            "source",
            "summary",
            "type",
        ];
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected, "{name}");
    }
}

/// Whether `inner` lies inside `outer` in memory: the same bytes, not a copy of them.
fn inside(inner: &[u8], outer: &[u8]) -> bool {
    let (outer, inner) = (outer.as_ptr_range(), inner.as_ptr_range());
    outer.start <= inner.start && inner.end <= outer.end
}

/// A JSON body's payload is the body's own buffer, trimmed, for every kind of sender; only a
/// form body, whose JSON is decoded out of it, gets a payload of its own.
#[test]
fn a_json_payload_shares_the_body_buffer_and_a_form_payload_does_not() {
    let push = read("github_push.json");
    let mut spaced = b"\n  ".to_vec();
    spaced.extend_from_slice(&push);
    spaced.extend_from_slice(b"\r\n");
    let custom = CustomOptions::default();
    for (body, content_type, shared) in [
        (push.clone(), "application/json", true),
        (spaced, "application/json", true),
        (
            form_encode(&push),
            "application/x-www-form-urlencoded",
            false,
        ),
    ] {
        let body = bytes::Bytes::from(body);
        let headers = github_headers("push", "d-1", content_type);
        let envelope = clawlet_events::parse(&clawlet_events::Request {
            handler: "h",
            source: Source::Github,
            headers: &headers,
            body: &body,
            received_at: time::OffsetDateTime::UNIX_EPOCH,
            custom: &custom,
        })
        .unwrap();
        assert_eq!(envelope.payload.get(), json_text(&push), "{content_type}");
        assert_eq!(
            inside(envelope.payload.get().as_bytes(), &body),
            shared,
            "{content_type}"
        );
        // The JSON in pieces carries the same buffer on to the journal and to agents.
        let json = envelope.json_pieces().unwrap();
        let clawlet_events::EnvelopeJson::Pieces { payload, .. } = &json else {
            panic!("json_pieces gives pieces");
        };
        assert_eq!(inside(payload.as_bytes(), &body), shared, "{content_type}");
    }
}
