//! Each source's rules for type, delivery id and headers, and every error a caller can see.

use clawlet_events::{CustomOptions, ParseError, Source};

use crate::run;

type Headers<'a> = &'a [(&'a str, &'a [u8])];

/// One delivery's expected type, action, delivery id, summary and kept headers.
struct Want<'a> {
    event_type: &'a str,
    action: Option<&'a str>,
    delivery_id: &'a str,
    summary: &'a str,
    headers: &'a [(&'a str, &'a str)],
}

fn check(
    source: Source,
    headers: Headers<'_>,
    body: &str,
    custom: &CustomOptions,
    want: &Want<'_>,
) {
    let e =
        run(source, headers, body.as_bytes(), custom).unwrap_or_else(|err| panic!("{body}: {err}"));
    assert_eq!(e.event_type, want.event_type, "{body}");
    assert_eq!(e.action.as_deref(), want.action, "{body}");
    assert_eq!(e.delivery_id, want.delivery_id, "{body}");
    assert_eq!(e.summary, want.summary, "{body}");
    let kept: Vec<(&str, &str)> = e
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(kept, want.headers, "{body}");
    assert_eq!(e.payload.get(), body.trim(), "{body}");
}

fn check_err(
    source: Source,
    headers: Headers<'_>,
    body: &[u8],
    custom: &CustomOptions,
    code: &str,
) {
    let err = run(source, headers, body, custom).err();
    assert_eq!(
        err.as_ref().map(ParseError::code),
        Some(code),
        "{:?} {err:?}",
        String::from_utf8_lossy(body)
    );
    let err = err.unwrap();
    assert_eq!(
        err.is_unsupported_media_type(),
        code == "unsupported_content_type"
    );
}

const SPEC_BODY: &str = r#"{"event_type":"user.created","timestamp":"2024-01-15T10:30:00Z","data":{"user_id":"123","email":"user@example.com"}}"#;
/// `sha256sum` of `SPEC_BODY`, computed outside this code.
const SPEC_SHA256: &str = "7724d66f76297d5732677f9e4853e8d84b1895e1acf9aa9484e6ad3a51d22aca";

#[test]
fn custom_senders() {
    let default = CustomOptions::default();
    let hash = sha256_hex(SPEC_BODY.as_bytes());
    assert_eq!(hash, SPEC_SHA256);
    check(
        Source::Custom,
        &[],
        SPEC_BODY,
        &default,
        &Want {
            event_type: "user.created",
            action: None,
            delivery_id: &hash,
            summary: "Event user.created received by test-handler",
            headers: &[],
        },
    );
    let with_header = CustomOptions {
        delivery_id_header: Some("X-Request-Id".into()),
        ..CustomOptions::default()
    };
    check(
        Source::Custom,
        &[
            ("x-request-id", b"req-7"),
            ("X-Signature", b"sha256=00"),
            ("X-Event-Type", b"ignored.by.pointer"),
        ],
        SPEC_BODY,
        &with_header,
        &Want {
            event_type: "user.created",
            action: None,
            delivery_id: "req-7",
            summary: "Event user.created received by test-handler",
            headers: &[
                ("x-event-type", "ignored.by.pointer"),
                ("x-request-id", "req-7"),
            ],
        },
    );
    // The configured header is absent: the pointer is next, then the body hash.
    let with_both = CustomOptions {
        event_type_pointer: "/kind/name".into(),
        delivery_id_header: Some("X-Request-Id".into()),
        delivery_id_pointer: Some("/meta/seq".into()),
        ..CustomOptions::default()
    };
    check(
        Source::Custom,
        &[],
        r#"{"kind":{"name":"order.paid"},"meta":{"seq":981}}"#,
        &with_both,
        &Want {
            event_type: "order.paid",
            action: None,
            delivery_id: "981",
            summary: "Event order.paid received by test-handler",
            headers: &[],
        },
    );
    let body = r#"{"kind":{},"meta":{}}"#;
    check(
        Source::Custom,
        &[("X-Event-Type", b"from.header")],
        body,
        &with_both,
        &Want {
            event_type: "from.header",
            action: None,
            delivery_id: &sha256_hex(body.as_bytes()),
            summary: "Event from.header received by test-handler",
            headers: &[("x-event-type", "from.header")],
        },
    );
    let body = r#"{"data":{}}"#;
    check(
        Source::Custom,
        &[],
        body,
        &default,
        &Want {
            event_type: "custom",
            action: None,
            delivery_id: &sha256_hex(body.as_bytes()),
            summary: "Event custom received by test-handler",
            headers: &[],
        },
    );
    // The same bytes give the same dedup key; different bytes a different one.
    let a = run(Source::Custom, &[], SPEC_BODY.as_bytes(), &default).unwrap();
    let b = run(
        Source::Custom,
        &[],
        SPEC_BODY.replace("123", "124").as_bytes(),
        &default,
    )
    .unwrap();
    assert_eq!(a.delivery_id, hash);
    assert_ne!(a.delivery_id, b.delivery_id);
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn standard_webhooks_senders() {
    let default = CustomOptions::default();
    let headers: Headers<'_> = &[
        ("webhook-id", b"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"),
        ("webhook-timestamp", b"1674087231"),
        (
            "webhook-signature",
            b"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
        ),
    ];
    let kept = &[
        ("webhook-id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"),
        ("webhook-timestamp", "1674087231"),
    ];
    check(
        Source::Standard,
        headers,
        r#"{"type":"invoice.created","timestamp":"2023-01-19T00:13:51Z","data":{}}"#,
        &default,
        &Want {
            event_type: "invoice.created",
            action: None,
            delivery_id: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
            summary: "Event invoice.created received by test-handler",
            headers: kept,
        },
    );
    check(
        Source::Standard,
        headers,
        SPEC_BODY,
        &default,
        &Want {
            event_type: "user.created",
            action: None,
            delivery_id: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
            summary: "Event user.created received by test-handler",
            headers: kept,
        },
    );
    check(
        Source::Standard,
        headers,
        r#"{"data":{}}"#,
        &default,
        &Want {
            event_type: "standard",
            action: None,
            delivery_id: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
            summary: "Event standard received by test-handler",
            headers: kept,
        },
    );
    check(
        Source::Standard,
        &[("svix-id", b"msg_svix"), ("svix-signature", b"v1,x")],
        r#"{"type":"a.b"}"#,
        &default,
        &Want {
            event_type: "a.b",
            action: None,
            delivery_id: "msg_svix",
            summary: "Event a.b received by test-handler",
            headers: &[("svix-id", "msg_svix")],
        },
    );
    check_err(
        Source::Standard,
        &[],
        br#"{"type":"a.b"}"#,
        &default,
        "missing_delivery_id",
    );
}

#[test]
fn unknown_events_pass_through() {
    let default = CustomOptions::default();
    check(
        Source::Github,
        &[
            ("X-GitHub-Event", b"workflow_run"),
            ("X-GitHub-Delivery", b"d-9"),
        ],
        r#"{"action":"completed","workflow_run":{"id":1},"repository":{"full_name":"o/r"},"sender":{"login":"bot"}}"#,
        &default,
        &Want {
            event_type: "workflow_run",
            action: Some("completed"),
            delivery_id: "d-9",
            summary: "GitHub workflow_run event (completed) in o/r by bot",
            headers: &[
                ("x-github-delivery", "d-9"),
                ("x-github-event", "workflow_run"),
            ],
        },
    );
    check(
        Source::Stripe,
        &[],
        r#"{"id":"evt_9","object":"event","type":"charge.dispute.created","data":{"object":{"id":"dp_1","object":"dispute"}}}"#,
        &default,
        &Want {
            event_type: "charge.dispute.created",
            action: None,
            delivery_id: "evt_9",
            summary: "Stripe event charge.dispute.created for dispute dp_1",
            headers: &[],
        },
    );
}

#[test]
fn stripe_amounts_use_the_currency_minor_unit() {
    let default = CustomOptions::default();
    for (amount, currency, summary) in [
        (
            2999,
            "usd",
            "Payment of $29.99 received from customer cus_123",
        ),
        (
            2999,
            "eur",
            "Payment of €29.99 received from customer cus_123",
        ),
        (
            2999,
            "jpy",
            "Payment of ¥2,999 received from customer cus_123",
        ),
        (
            2999,
            "bhd",
            "Payment of 2.999 BHD received from customer cus_123",
        ),
        (
            2999,
            "xts",
            "Payment of 29.99 XTS received from customer cus_123",
        ),
    ] {
        let body = format!(
            r#"{{"id":"evt_1","type":"payment_intent.succeeded","data":{{"object":{{"id":"pi_1","amount":{amount},"currency":"{currency}","customer":"cus_123"}}}}}}"#
        );
        check(
            Source::Stripe,
            &[],
            &body,
            &default,
            &Want {
                event_type: "payment_intent.succeeded",
                action: None,
                delivery_id: "evt_1",
                summary,
                headers: &[],
            },
        );
    }
}

#[test]
fn hostile_text_cannot_forge_log_lines() {
    let title = format!("a\nb\r\n{}\u{202e}c{}", "\u{7}", "x".repeat(10_000));
    let body = format!(
        r#"{{"action":"opened","issue":{{"number":1,"title":{}}},"repository":{{"full_name":"o/r"}}}}"#,
        serde_json::to_string(&title).unwrap()
    );
    let e = run(
        Source::Github,
        &[("X-GitHub-Event", b"issues"), ("X-GitHub-Delivery", b"d")],
        body.as_bytes(),
        &CustomOptions::default(),
    )
    .unwrap();
    assert!(
        e.summary
            .starts_with("Issue #1 opened in o/r by someone: a b cxxx"),
        "{}",
        e.summary
    );
    assert!(e.summary.chars().count() <= 300);
    assert!(!e.summary.chars().any(|c| c.is_control() || c == '\u{202e}'));
}

#[test]
fn errors() {
    let default = CustomOptions::default();
    let gh =
        |event: &'static [u8], delivery: &'static [u8]| -> Vec<(&'static str, &'static [u8])> {
            vec![("X-GitHub-Event", event), ("X-GitHub-Delivery", delivery)]
        };
    let ok = gh(b"push", b"d-1");
    let with_ct = |ct: &'static [u8]| {
        let mut h = gh(b"push", b"d-1");
        h.push(("Content-Type", ct));
        h
    };
    let form = with_ct(b"application/x-www-form-urlencoded");
    check_err(
        Source::Github,
        &with_ct(b"text/plain"),
        b"{}",
        &default,
        "unsupported_content_type",
    );
    check_err(
        Source::Github,
        &with_ct(b"multipart/form-data; boundary=x"),
        b"{}",
        &default,
        "unsupported_content_type",
    );
    check_err(
        Source::Stripe,
        &[("content-type", b"application/x-www-form-urlencoded")],
        b"{}",
        &default,
        "unsupported_content_type",
    );
    check_err(
        Source::Custom,
        &[("content-type", b"text/xml")],
        b"<a/>",
        &default,
        "unsupported_content_type",
    );
    check_err(Source::Github, &ok, b"", &default, "invalid_json");
    check_err(Source::Github, &ok, b"{", &default, "invalid_json");
    check_err(Source::Github, &ok, b"{} {}", &default, "invalid_json");
    check_err(
        Source::Github,
        &ok,
        b"{\"a\":\"\xff\"}",
        &default,
        "invalid_json",
    );
    // GitHub bodies are checked by the typed read: a fault in a field it skips, or one of the
    // wrong type, is still found.
    check_err(
        Source::Github,
        &ok,
        b"{\"ref\":\"refs/heads/x\",\"other\":tru}",
        &default,
        "invalid_json",
    );
    check_err(
        Source::Github,
        &ok,
        b"{\"ref\":5,\"a\":[}",
        &default,
        "invalid_json",
    );
    check_err(Source::Github, &ok, b"[]", &default, "not_an_object");
    check_err(
        Source::Custom,
        &[],
        b"\"user.created\"",
        &default,
        "not_an_object",
    );
    check_err(Source::Custom, &[], b"42", &default, "not_an_object");
    check_err(Source::Stripe, &[], b"null", &default, "not_an_object");
    check_err(
        Source::Github,
        &form,
        b"payload=%7B",
        &default,
        "invalid_json",
    );
    check_err(
        Source::Github,
        &form,
        b"body=%7B%7D",
        &default,
        "invalid_form",
    );
    check_err(
        Source::Github,
        &form,
        b"payload=%ZZ",
        &default,
        "invalid_form",
    );
    check_err(
        Source::Github,
        &[("X-GitHub-Delivery", b"d")],
        b"{}",
        &default,
        "missing_event_type",
    );
    check_err(
        Source::Github,
        &gh(b"", b"d"),
        b"{}",
        &default,
        "invalid_header",
    );
    check_err(
        Source::Github,
        &[("X-GitHub-Event", b"push")],
        b"{}",
        &default,
        "missing_delivery_id",
    );
    check_err(
        Source::Github,
        &gh(b"push\xff", b"d"),
        b"{}",
        &default,
        "invalid_header",
    );
    check_err(
        Source::Github,
        &[
            ("X-GitHub-Event", b"push"),
            ("x-github-event", b"ping"),
            ("X-GitHub-Delivery", b"d"),
        ],
        b"{}",
        &default,
        "duplicate_header",
    );
    check_err(
        Source::Github,
        &gh(b"push\x01", b"d"),
        b"{}",
        &default,
        "invalid_event_type",
    );
    let long = "d".repeat(257);
    check_err(
        Source::Github,
        &[
            ("X-GitHub-Event", b"push"),
            ("X-GitHub-Delivery", long.as_bytes()),
        ],
        b"{}",
        &default,
        "invalid_delivery_id",
    );
    check_err(
        Source::Stripe,
        &[],
        br#"{"id":"evt_1"}"#,
        &default,
        "missing_event_type",
    );
    check_err(
        Source::Stripe,
        &[],
        br#"{"type":"invoice.paid"}"#,
        &default,
        "missing_delivery_id",
    );
    check_err(
        Source::Stripe,
        &[],
        br#"{"type":"invoice.paid","id":""}"#,
        &default,
        "missing_delivery_id",
    );
    check_err(
        Source::Custom,
        &[],
        br#"{"event_type":"a\nb"}"#,
        &default,
        "invalid_event_type",
    );
    let bad_pointer = CustomOptions {
        event_type_pointer: "event_type".into(),
        ..CustomOptions::default()
    };
    check_err(Source::Custom, &[], b"{}", &bad_pointer, "invalid_pointer");
    assert!(bad_pointer.validate().is_err());
    assert!(CustomOptions::default().validate().is_ok());
    let bad_delivery_pointer = CustomOptions {
        delivery_id_pointer: Some("id".into()),
        ..CustomOptions::default()
    };
    assert!(
        matches!(bad_delivery_pointer.validate(), Err(ParseError::InvalidPointer(p)) if p == "id")
    );
}

/// A case name, the source, the headers and the body.
type ErrorCase<'a> = (&'a str, Source, Vec<(&'a str, &'a [u8])>, &'a [u8]);

#[test]
fn error_messages() {
    let default = CustomOptions::default();
    let cases: Vec<ErrorCase<'_>> = vec![
        (
            "415",
            Source::Github,
            vec![("content-type", b"text/plain; charset=\"x\"")],
            b"{}",
        ),
        ("bad json", Source::Stripe, vec![], b"{\"id\": tru}"),
        ("array", Source::Stripe, vec![], b"[1]"),
        (
            "form",
            Source::Github,
            vec![("content-type", b"application/x-www-form-urlencoded")],
            b"x=1",
        ),
        ("no event", Source::Github, vec![], b"{}"),
        (
            "no delivery",
            Source::Github,
            vec![("x-github-event", b"push")],
            b"{}",
        ),
        (
            "dup",
            Source::Custom,
            vec![("x-event-type", b"a"), ("X-Event-Type", b"b")],
            b"{}",
        ),
        (
            "bad header",
            Source::Custom,
            vec![("x-event-type", b"\xfe")],
            b"{}",
        ),
        (
            "bad type",
            Source::Custom,
            vec![("x-event-type", b"a\tb")],
            b"{}",
        ),
    ];
    let mut out = String::new();
    for (name, source, headers, body) in cases {
        let err = run(source, &headers, body, &default).unwrap_err();
        out.push_str(&format!("{name}: [{}] {err}\n", err.code()));
    }
    insta::assert_snapshot!(out);
}
