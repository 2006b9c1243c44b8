use sha2::{Digest, Sha256};

use super::MAX_BATCH;
use crate::{CustomOptions, Layout, Parsed, Place, Request, Source, parse_batch};

const JSON: (&str, &[u8]) = ("content-type", b"application/json");

/// Where SendGrid's events carry their type and id, as the daemon's SendGrid row says.
fn sendgrid() -> Layout {
    Layout {
        event_type: vec![Place::Pointer("/event".to_owned())],
        delivery_id: vec![Place::Pointer("/sg_event_id".to_owned())],
        split: true,
        ..Layout::default()
    }
}

fn run(source: Source, layout: Layout, headers: &[(&str, &[u8])], body: &[u8]) -> String {
    let custom = CustomOptions {
        layout,
        ..CustomOptions::default()
    };
    let line =
        |e: &crate::Envelope| format!("{} | {} | {}", e.event_type, e.delivery_id, e.summary);
    match parse_batch(&Request {
        handler: "mail",
        source,
        headers,
        body: &bytes::Bytes::copy_from_slice(body),
        received_at: time::OffsetDateTime::UNIX_EPOCH,
        custom: &custom,
    }) {
        Ok(Parsed::One(e)) => format!("one: {}", line(&e)),
        Ok(Parsed::Batch(events)) => {
            let lines: Vec<String> = events.iter().map(line).collect();
            format!("batch of {}: {}", events.len(), lines.join("; "))
        }
        Err(e) => format!("{}: {e}", e.code()),
    }
}

/// A SendGrid body → `batch of N: type | delivery id | summary; …`, `one: …`, or `code: message`.
fn check(body: &str, expected: &str) {
    let got = run(Source::Sendgrid, sendgrid(), &[JSON], body.as_bytes());
    assert_eq!(got, expected, "{body}");
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The two-event batch of SendGrid's documented shape that the SDK vectors sign.
fn recorded_batch() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/signatures/sendgrid.json"
    );
    let cases: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let accept = cases
        .as_array()
        .unwrap()
        .iter()
        .find(|case| case["name"] == "accept")
        .unwrap();
    accept["body"].as_str().unwrap().to_owned()
}

/// A SendGrid batch split into its events; panics when `body` is not split.
fn split(body: &bytes::Bytes) -> Vec<crate::Envelope> {
    let custom = CustomOptions {
        layout: sendgrid(),
        ..CustomOptions::default()
    };
    let parsed = parse_batch(&Request {
        handler: "mail",
        source: Source::Sendgrid,
        headers: &[JSON],
        body,
        received_at: time::OffsetDateTime::UNIX_EPOCH,
        custom: &custom,
    });
    let Ok(Parsed::Batch(events)) = parsed else {
        panic!("not a batch: {}: {parsed:?}", String::from_utf8_lossy(body));
    };
    events
}

#[test]
fn each_element_is_an_envelope_whose_payload_is_the_element_as_sent() {
    let body = recorded_batch();
    let events = split(&bytes::Bytes::from(body.clone()));
    let got: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e.event_type.as_str(),
                e.delivery_id.as_str(),
                e.summary.as_str(),
            )
        })
        .collect();
    let subject = "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0";
    assert_eq!(
        got,
        [
            (
                "processed",
                "rbtnWrG1DVDGGGFHFyun0A==",
                format!("SendGrid processed: {subject}").as_str()
            ),
            (
                "delivered",
                "7kOB3yJt5rgbXWJrp9CeoA==",
                format!("SendGrid delivered: {subject}").as_str()
            ),
        ]
    );
    // The body is exactly `[` + the payloads joined by `,` + `]`: each payload is its element's
    // bytes, nothing added, nothing lost.
    let payloads: Vec<&str> = events.iter().map(|e| e.payload.get()).collect();
    assert_eq!(format!("[{}]", payloads.join(",")), body);
    for e in &events {
        assert_eq!(e.source, Source::Sendgrid);
        assert_eq!(e.handler, "mail");
        assert!(e.headers.is_empty(), "{:?}", e.headers);
        // The summary names the message, never the recipient's address.
        assert!(!e.summary.contains('@'), "{}", e.summary);
    }
    assert_ne!(events[0].id, events[1].id);
}

#[test]
fn payloads_keep_the_spacing_they_were_sent_with() {
    let first = "{ \"event\" : \"open\",\n  \"sg_event_id\" : \"a\" }";
    let second =
        "{\"event\":\"click\",\"sg_event_id\":\"b\",\"url\":\"https://example.com/\\u00e9\"}";
    let body = format!("[\n  {first} ,\t{second}\n]\n");
    let events = split(&bytes::Bytes::from(body));
    let payloads: Vec<&str> = events.iter().map(|e| e.payload.get()).collect();
    assert_eq!(payloads, [first, second]);
}

#[test]
fn batches_and_their_refusals() {
    let open = r#"{"event":"open","sg_event_id":"a","sg_message_id":"m1"}"#;
    check(
        &format!("[{open}]"),
        "batch of 1: open | a | SendGrid open: m1",
    );
    // An authentic batch with nothing in it stores nothing, and is not refused.
    check("[]", "batch of 0: ");
    check(" [ ] ", "batch of 0: ");
    // No `sg_event_id`: the element's own hash is its id, so a resend is still a duplicate.
    let bare = r#"{"event":"bounce"}"#;
    check(
        &format!("[{bare}]"),
        &format!(
            "batch of 1: bounce | {} | SendGrid bounce received by mail",
            sha256(bare)
        ),
    );
    check(
        r#"[{"event":"open","sg_event_id":""}]"#,
        &format!(
            "batch of 1: open | {} | SendGrid open received by mail",
            sha256(r#"{"event":"open","sg_event_id":""}"#)
        ),
    );
    // A number is taken as written.
    check(
        r#"[{"event":"open","sg_event_id":17}]"#,
        "batch of 1: open | 17 | SendGrid open received by mail",
    );
    // One bad element refuses the whole batch, and the error says which.
    check(
        &format!("[{open},{{\"sg_event_id\":\"b\"}}]"),
        "missing_event_type: batch element 1: the event type is missing",
    );
    check(
        &format!("[{open},1]"),
        "not_an_object: batch element 1: body is JSON but not an object",
    );
    check(
        &format!("[[{open}]]"),
        "not_an_object: batch element 0: body is JSON but not an object",
    );
    check(
        &format!(
            "[{{\"event\":\"open\",\"sg_event_id\":\"{}\"}}]",
            "x".repeat(257)
        ),
        "invalid_delivery_id: batch element 0: the delivery id is too long or contains control characters",
    );
    check(
        r#"[{"event":"open\u0007","sg_event_id":"a"}]"#,
        "invalid_event_type: batch element 0: the event type is too long or contains control characters",
    );
    // Not JSON, or not only JSON.
    for body in [
        format!("[{open},]"),
        format!("[{open}] [{open}]"),
        format!("[{open}"),
        r#"[{"event":"open","sg_event_id":"\ud800"}]"#.to_owned(),
    ] {
        assert_eq!(run_code(&body), "invalid_json", "{body}");
    }
    // An object is one event, read as any other delivery.
    check(open, "one: open | a | SendGrid open: m1");
    check("1", "not_an_object: body is JSON but not an object");
}

fn run_code(body: &str) -> String {
    let got = run(Source::Sendgrid, sendgrid(), &[JSON], body.as_bytes());
    got.split(':').next().unwrap_or_default().to_owned()
}

#[test]
fn content_type_and_encoding_are_checked_as_for_one_event() {
    let body = br#"[{"event":"open","sg_event_id":"a"}]"#;
    let form = (
        "content-type",
        b"application/x-www-form-urlencoded".as_slice(),
    );
    let gzip = ("content-encoding", b"gzip".as_slice());
    for (headers, code) in [
        (vec![form], "unsupported_content_type"),
        (vec![JSON, gzip], "unsupported_content_encoding"),
    ] {
        let got = run(Source::Sendgrid, sendgrid(), &headers, body);
        assert!(got.starts_with(code), "{got}");
    }
}

#[test]
fn a_batch_is_bounded_by_element_count() {
    let element = r#"{"event":"open"}"#;
    let body = |n: usize| format!("[{}]", vec![element; n].join(","));
    let got = run(
        Source::Sendgrid,
        sendgrid(),
        &[JSON],
        body(MAX_BATCH).as_bytes(),
    );
    assert!(
        got.starts_with(&format!("batch of {MAX_BATCH}: ")),
        "{}",
        got.chars().take(80).collect::<String>()
    );
    check(
        &body(MAX_BATCH + 1),
        &format!("batch_too_large: the batch holds more than {MAX_BATCH} events"),
    );
}

#[test]
fn only_a_splitting_layout_splits() {
    let body = br#"[{"event":"open","sg_event_id":"a","objectId":7}]"#;
    // A layout that takes arrays whole reads the array as one event.
    let whole = Layout {
        event_type: vec![Place::Pointer("/0/event".to_owned())],
        array: true,
        ..Layout::default()
    };
    assert_eq!(
        run(Source::Hubspot, whole, &[JSON], body),
        format!(
            "one: open | {} | HubSpot open: 7",
            sha256(std::str::from_utf8(body).unwrap())
        )
    );
    // GitHub, Stripe, Standard Webhooks and custom handlers have no layout to split by.
    let got = run(Source::Custom, sendgrid(), &[JSON], body);
    assert!(got.starts_with("not_an_object"), "{got}");
    // Splitting alone does not let `parse` take the array as one event.
    let custom = CustomOptions {
        layout: sendgrid(),
        ..CustomOptions::default()
    };
    let one = crate::parse(&Request {
        handler: "mail",
        source: Source::Sendgrid,
        headers: &[JSON],
        body: &bytes::Bytes::from_static(body),
        received_at: time::OffsetDateTime::UNIX_EPOCH,
        custom: &custom,
    });
    assert_eq!(one.unwrap_err().code(), "not_an_object");
}

/// Each element's payload is a slice of the request body, not a copy of it.
#[test]
fn each_payload_shares_the_body_buffer() {
    let body = bytes::Bytes::from_static(
        br#"[{"event":"open","sg_event_id":"a"}, {"event":"click","sg_event_id":"b"}]"#,
    );
    let events = split(&body);
    let outer = body.as_ptr_range();
    for event in &events {
        let inner = event.payload.get().as_bytes().as_ptr_range();
        assert!(
            outer.start <= inner.start && inner.end <= outer.end,
            "{} was copied",
            event.delivery_id
        );
    }
    assert_eq!(events.len(), 2);
}
