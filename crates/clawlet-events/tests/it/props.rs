//! Arbitrary input never panics, and whatever parses keeps the envelope's promises.

use clawlet_events::{CustomOptions, Envelope, Source};
use proptest::prelude::*;

use crate::run;

const SOURCES: [Source; 4] = [
    Source::Github,
    Source::Stripe,
    Source::Custom,
    Source::Standard,
];

fn headers_for<'a>(event: &'a str, content_type: &'a str) -> Vec<(&'a str, &'a [u8])> {
    vec![
        ("content-type", content_type.as_bytes()),
        ("x-github-event", event.as_bytes()),
        ("x-github-delivery", b"d-1"),
        ("webhook-id", b"msg_1"),
        ("x-event-type", event.as_bytes()),
    ]
}

fn assert_promises(e: &Envelope, body: &[u8]) {
    assert!(!e.summary.chars().any(char::is_control), "{:?}", e.summary);
    assert!(e.summary.chars().count() <= 300);
    assert!(!e.event_type.is_empty() && !e.delivery_id.is_empty());
    if let Ok(text) = std::str::from_utf8(body) {
        // JSON bodies are kept byte for byte (form bodies are decoded, checked elsewhere).
        if text.trim_start().starts_with('{') {
            assert_eq!(
                e.payload.get(),
                text.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\r'))
            );
        }
    }
    let json = e.to_json().unwrap();
    // Spliced by hand, yet what serde writes.
    assert_eq!(json, serde_json::to_string(e).unwrap());
    let back = Envelope::from_json(json.as_bytes()).unwrap();
    assert_eq!(back.to_json().unwrap(), json);
}

/// JSON built from the keys the parsers look for, so that the typed views are reached.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let key = prop::sample::select(vec![
        "type",
        "id",
        "action",
        "data",
        "object",
        "customer",
        "amount",
        "amount_received",
        "amount_total",
        "amount_paid",
        "amount_due",
        "currency",
        "email",
        "name",
        "number",
        "title",
        "pull_request",
        "issue",
        "repository",
        "full_name",
        "sender",
        "login",
        "ref",
        "commits",
        "created",
        "deleted",
        "forced",
        "pusher",
        "release",
        "tag_name",
        "forkee",
        "zen",
        "hook_id",
        "organization",
        "event_type",
        "merged",
        "customer_details",
        "last_payment_error",
        "message",
        "receipt_email",
        "\u{0}",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop::sample::select(vec![
            "usd",
            "jpy",
            "bhd",
            "xx",
            "opened",
            "closed",
            "refs/heads/main",
            "refs/tags/v1",
            "invoice.paid",
            "payment_intent.succeeded",
            "checkout.session.completed",
            "customer.created",
            ""
        ])
        .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

const KNOWN_EVENTS: [&str; 9] = [
    "push",
    "pull_request",
    "issues",
    "issue_comment",
    "release",
    "fork",
    "star",
    "ping",
    "check_run",
];

fn known_events() -> impl Strategy<Value = &'static str> {
    prop::sample::select(KNOWN_EVENTS.to_vec())
}

fn event_names() -> impl Strategy<Value = String> {
    prop_oneof![known_events().prop_map(str::to_owned), ".{0,12}"]
}

fn content_types() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "",
    ])
    .prop_map(str::to_owned)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256), event in event_names(), ct in content_types()) {
        for source in SOURCES {
            if let Ok(e) = run(source, &headers_for(&event, &ct), &body, &CustomOptions::default()) {
                assert_promises(&e, &body);
            }
        }
    }

    #[test]
    fn arbitrary_json_ish_text_never_panics(body in r#"[{}\[\]":,0-9a-z\\ .\-]{0,80}"#, event in event_names()) {
        for source in SOURCES {
            if let Ok(e) = run(source, &headers_for(&event, "application/json"), body.as_bytes(), &CustomOptions::default()) {
                assert_promises(&e, body.as_bytes());
            }
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value(), event in known_events()) {
        let body = serde_json::to_vec(&value).unwrap();
        let pointers = CustomOptions {
            event_type_pointer: "/data/object/name".into(),
            delivery_id_header: Some("x-missing".into()),
            delivery_id_pointer: Some("/data/0/id".into()),
            ..CustomOptions::default()
        };
        for source in SOURCES {
            for custom in [&CustomOptions::default(), &pointers] {
                let result = run(source, &headers_for(event, "application/json"), &body, custom);
                if source == Source::Github && value.is_object() {
                    // GitHub's type and id come from headers: any authenticated object is accepted.
                    prop_assert!(result.is_ok(), "{result:?}");
                }
                if let Ok(e) = result {
                    assert_promises(&e, &body);
                }
            }
        }
    }
}

/// Where SendGrid's events carry their type and id.
fn sendgrid() -> CustomOptions {
    use clawlet_events::{Layout, Place};
    CustomOptions {
        layout: Layout {
            event_type: vec![Place::Pointer("/event".to_owned())],
            delivery_id: vec![Place::Pointer("/sg_event_id".to_owned())],
            split: true,
            ..Layout::default()
        },
        ..CustomOptions::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A batch of events, however it is spaced, splits into one envelope per element whose
    /// payload is that element's text and whose type and id are the element's own.
    #[test]
    fn a_batch_splits_into_its_elements_byte_for_byte(
        elements in prop::collection::vec(("[a-z_.]{1,16}", "[A-Za-z0-9+/=_-]{1,40}", json_value()), 0..8),
        gap in "[ \t\n\r]{0,3}",
    ) {
        let texts: Vec<String> = elements
            .iter()
            .map(|(event, id, extra)| {
                serde_json::to_string(&serde_json::json!({ "event": event, "sg_event_id": id, "extra": extra }))
                    .unwrap()
            })
            .collect();
        let body = format!("{gap}[{gap}{}{gap}]{gap}", texts.join(&format!("{gap},{gap}")));
        let parsed = clawlet_events::parse_batch(&clawlet_events::Request {
            handler: "mail",
            source: Source::Sendgrid,
            headers: &[("content-type", b"application/json")],
            body: &bytes::Bytes::copy_from_slice(body.as_bytes()),
            received_at: time::OffsetDateTime::UNIX_EPOCH,
            custom: &sendgrid(),
        });
        let Ok(clawlet_events::Parsed::Batch(events)) = parsed else {
            panic!("{body}: {parsed:?}");
        };
        prop_assert_eq!(events.len(), texts.len());
        for (e, (text, (event, id, _))) in events.iter().zip(texts.iter().zip(&elements)) {
            prop_assert_eq!(e.payload.get(), text.as_str());
            prop_assert_eq!(&e.event_type, event);
            prop_assert_eq!(&e.delivery_id, id);
            assert_promises(e, text.as_bytes());
        }
    }
}
