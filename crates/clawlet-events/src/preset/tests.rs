use super::{Layout, Place};
use crate::{CustomOptions, Request, Source, parse};

fn header(name: &str) -> Place {
    Place::Header(name.to_owned())
}

fn pointer(p: &str) -> Place {
    Place::Pointer(p.to_owned())
}

/// (source, layout, headers, body) → `type | action | delivery id | summary`, or the error code.
fn check(source: Source, layout: Layout, headers: &[(&str, &[u8])], body: &str, expected: &str) {
    let custom = CustomOptions {
        layout,
        ..CustomOptions::default()
    };
    let got = parse(&Request {
        handler: "hooks",
        source,
        headers,
        body: &bytes::Bytes::copy_from_slice(body.as_bytes()),
        received_at: time::OffsetDateTime::UNIX_EPOCH,
        custom: &custom,
    })
    .map_or_else(
        |e| e.code().to_owned(),
        |e| {
            format!(
                "{} | {} | {} | {}",
                e.event_type,
                e.action.as_deref().unwrap_or("-"),
                e.delivery_id,
                e.summary
            )
        },
    );
    assert_eq!(got, expected, "{source} {body}");
}

const JSON: (&str, &[u8]) = ("content-type", b"application/json");
const FORM: (&str, &[u8]) = ("content-type", b"application/x-www-form-urlencoded");

#[test]
fn places_are_tried_in_order_and_the_body_hash_is_the_last_resort() {
    let gitlab = Layout {
        event_type: vec![pointer("/object_kind"), header("x-gitlab-event")],
        action: vec![pointer("/object_attributes/action")],
        delivery_id: vec![header("x-gitlab-event-uuid"), header("idempotency-key")],
        ..Layout::default()
    };
    check(
        Source::Gitlab,
        gitlab.clone(),
        &[JSON, ("X-Gitlab-Event-UUID", b"u-1")],
        r#"{"object_kind":"merge_request","object_attributes":{"action":"open"},"project":{"path_with_namespace":"g/p"}}"#,
        "merge_request | open | u-1 | GitLab merge_request open: g/p",
    );
    check(
        Source::Gitlab,
        gitlab.clone(),
        &[
            JSON,
            ("X-Gitlab-Event", b"Push Hook"),
            ("Idempotency-Key", b"k-2"),
        ],
        r#"{"ref":"main"}"#,
        "Push Hook | - | k-2 | GitLab Push Hook received by hooks",
    );
    check(
        Source::Gitlab,
        gitlab.clone(),
        &[JSON],
        r#"{"ref":"main"}"#,
        "missing_event_type",
    );
    check(
        Source::Gitlab,
        gitlab,
        &[JSON, ("X-Gitlab-Event", b"Push Hook")],
        "{}",
        // SHA-256 of `{}`.
        "Push Hook | - | 44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a | GitLab Push Hook received by hooks",
    );
}

#[test]
fn forms_and_arrays_only_where_the_layout_takes_them() {
    let twilio = Layout {
        event_type: vec![pointer("/MessageStatus")],
        fallback_type: "message".to_owned(),
        delivery_id: vec![header("i-twilio-idempotency-token")],
        form: true,
        ..Layout::default()
    };
    check(
        Source::Twilio,
        twilio.clone(),
        &[FORM, ("I-Twilio-Idempotency-Token", b"t-1")],
        "MessageSid=SM1&MessageStatus=delivered",
        "delivered | - | t-1 | Twilio delivered: SM1",
    );
    check(
        Source::Twilio,
        twilio,
        &[FORM, ("I-Twilio-Idempotency-Token", b"t-2")],
        "MessageSid=SM2&Body=hi",
        "message | - | t-2 | Twilio message: SM2",
    );
    check(
        Source::Sentry,
        Layout {
            fallback_type: "x".to_owned(),
            ..Layout::default()
        },
        &[FORM],
        "a=1",
        "unsupported_content_type",
    );
    let batched = Layout {
        event_type: vec![pointer("/0/subscriptionType")],
        delivery_id: vec![pointer("/0/eventId")],
        array: true,
        ..Layout::default()
    };
    check(
        Source::Hubspot,
        batched.clone(),
        &[JSON],
        r#"[{"subscriptionType":"contact.creation","eventId":"e1","objectId":7}]"#,
        "contact.creation | - | e1 | HubSpot contact.creation: 7",
    );
    check(
        Source::Paddle,
        Layout {
            array: false,
            ..batched
        },
        &[JSON],
        r#"[{"event":"delivered"}]"#,
        "not_an_object",
    );
}

#[test]
fn a_layout_with_a_bad_pointer_is_refused_at_validation() {
    let custom = CustomOptions {
        layout: Layout {
            delivery_id: vec![pointer("event_id")],
            ..Layout::default()
        },
        ..CustomOptions::default()
    };
    assert_eq!(custom.validate().unwrap_err().code(), "invalid_pointer");
}
