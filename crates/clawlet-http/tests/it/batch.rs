//! SendGrid batches in process: each event of a signed array is filtered, deduplicated and stored
//! on its own, and the request is answered 2xx only once every selected event is stored.

use std::net::SocketAddr;

use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use clawlet_bus::{Bus, ListFilter};
use clawlet_events::{CustomOptions, Layout, Place, Source};
use clawlet_http::{App, HandlerSpec, ResponseType, SchemeSpec, Verifier};
use clawlet_verify::UnixTime;
use clawlet_verify::presets;
use clawlet_verify::scheme::{self, Key, SigningKey};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{NOW, clock, memory_bus, open_handler, runtime};

const PEER: &str = "203.0.113.7:40000";
/// The P-256 scalar these tests sign with.
const SCALAR: [u8; 32] = [7; 32];

/// Where SendGrid's events carry their type and id, as the daemon's SendGrid row says.
fn layout() -> CustomOptions {
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

fn sendgrid(name: &str, key: Key) -> HandlerSpec {
    let verifier = scheme::Verifier::new(presets::SENDGRID.scheme.clone(), vec![key]).unwrap();
    HandlerSpec {
        source: Source::Sendgrid,
        verifier: Verifier::Scheme(Box::new(SchemeSpec {
            verifier,
            public_url: None,
            client_state: None,
            handshake: None,
            signature_header: None,
        })),
        custom: layout(),
        ..open_handler(name)
    }
}

fn key() -> Key {
    SigningKey::p256_scalar(&SCALAR).unwrap().verifying_key()
}

/// `sendgrid` takes every event; `filtered` only `delivered` and `bounce`, and answers in text.
async fn app_with(bus: Bus) -> Router {
    let handlers = vec![
        sendgrid("sendgrid", key()),
        HandlerSpec {
            events: vec!["delivered".to_owned(), "bounce".to_owned()],
            response_type: ResponseType::Text,
            ..sendgrid("filtered", key())
        },
    ];
    let app = App::new(runtime(handlers), bus, clock()).unwrap();
    clawlet_http::router(app).layer(Extension(ConnectInfo(PEER.parse::<SocketAddr>().unwrap())))
}

/// A batch of `(event, sg_event_id)` as SendGrid writes it.
fn batch(events: &[(&str, &str)]) -> String {
    let events: Vec<Value> = events
        .iter()
        .map(|(event, id)| {
            json!({ "email": "user@example.com", "timestamp": NOW, "event": event,
                "sg_event_id": id, "sg_message_id": format!("m-{id}") })
        })
        .collect();
    serde_json::to_string(&events).unwrap()
}

/// POSTs `body` to `/webhook/<handler>` signed with the test key at the test clock.
async fn post(router: &Router, handler: &str, body: &str) -> (u16, String) {
    let headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    let signed = presets::SENDGRID
        .scheme
        .sign(
            &SigningKey::p256_scalar(&SCALAR).unwrap(),
            &scheme::Request::new(&headers, body.as_bytes()),
            UnixTime::from_secs(NOW),
        )
        .unwrap();
    send(router, handler, headers.into_iter().chain(signed), body).await
}

async fn send(
    router: &Router,
    handler: &str,
    headers: impl IntoIterator<Item = (String, String)>,
    body: &str,
) -> (u16, String) {
    let mut request = Request::post(format!("/webhook/{handler}"));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry = response.headers().get("retry-after").is_some();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let mut text = String::from_utf8(body.to_vec()).unwrap();
    if retry {
        text.push_str(" (retry-after)");
    }
    (status, text)
}

/// The stored `(delivery id, event id)` of `handler`'s events, in delivery id order.
async fn stored(bus: &Bus, handler: &str) -> Vec<(String, String)> {
    let mut events: Vec<(String, String)> = bus
        .list(ListFilter {
            handler: Some(handler.to_owned()),
            limit: 1000,
            ..ListFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.envelope.delivery_id, e.envelope.id))
        .collect();
    events.sort();
    events
}

fn answer(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The answer without its event ids, which are fresh UUIDs.
fn counts(answer: &Value) -> String {
    format!(
        "{} accepted={} duplicate={} ignored={} ids={}",
        answer["status"].as_str().unwrap(),
        answer["accepted"],
        answer["duplicate"],
        answer["ignored"],
        answer["event_ids"].as_array().unwrap().len()
    )
}

/// SendGrid's two-event batch from the SDK vectors, signed by SendGrid's SDK tooling, is stored
/// as two events whose payloads are the elements byte for byte.
#[tokio::test]
async fn a_recorded_batch_is_stored_as_one_event_per_element() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/signatures/sendgrid.json"
    );
    let cases: Vec<Value> = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let case = cases.iter().find(|c| c["name"] == "accept").unwrap();
    assert_eq!(case["now"], NOW, "the vector is signed at the test clock");
    let bus = memory_bus(100).await;
    let handler = sendgrid(
        "recorded",
        Key::p256_spki_base64(case["public_key"].as_str().unwrap()).unwrap(),
    );
    let app = App::new(runtime(vec![handler]), bus.clone(), clock()).unwrap();
    let router = clawlet_http::router(app)
        .layer(Extension(ConnectInfo(PEER.parse::<SocketAddr>().unwrap())));
    let headers = case["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(n, v)| (n.clone(), v.as_str().unwrap().to_owned()));
    let body = case["body"].as_str().unwrap();
    let (status, text) = send(&router, "recorded", headers, body).await;
    assert_eq!(status, 200, "{text}");
    let answer = answer(&text);
    assert_eq!(
        counts(&answer),
        "accepted accepted=2 duplicate=0 ignored=0 ids=2"
    );

    let events = bus.list(ListFilter::default()).await.unwrap();
    let elements: Vec<Value> = serde_json::from_str(body).unwrap();
    assert_eq!(events.len(), 2);
    for (i, element) in elements.iter().enumerate() {
        let id = element["sg_event_id"].as_str().unwrap();
        let event = events
            .iter()
            .find(|e| e.envelope.delivery_id == id)
            .unwrap_or_else(|| panic!("{id} not stored"));
        assert_eq!(
            event.envelope.event_type,
            element["event"].as_str().unwrap()
        );
        assert_eq!(answer["event_ids"][i], event.envelope.id.as_str());
        let payload = event.envelope.payload.get();
        assert!(
            body.contains(payload),
            "{payload} is not a slice of the body"
        );
        assert_eq!(serde_json::from_str::<Value>(payload).unwrap(), *element);
    }
}

#[tokio::test]
async fn a_resent_batch_is_answered_duplicate_and_stores_nothing_new() {
    let bus = memory_bus(100).await;
    let router = app_with(bus.clone()).await;
    let body = batch(&[("processed", "a"), ("delivered", "b"), ("open", "c")]);
    let (status, first) = post(&router, "sendgrid", &body).await;
    assert_eq!(status, 200, "{first}");
    let first = answer(&first);
    assert_eq!(
        counts(&first),
        "accepted accepted=3 duplicate=0 ignored=0 ids=3"
    );
    let stored_first = stored(&bus, "sendgrid").await;
    let ids: Vec<&str> = stored_first.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);

    let (status, again) = post(&router, "sendgrid", &body).await;
    assert_eq!(status, 200, "{again}");
    let again = answer(&again);
    assert_eq!(
        counts(&again),
        "duplicate accepted=0 duplicate=3 ignored=0 ids=3"
    );
    // Each duplicate names the event first stored for it, in the order of the batch.
    assert_eq!(again["event_ids"], first["event_ids"]);
    assert_eq!(stored(&bus, "sendgrid").await, stored_first);

    let metrics = router
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    let metrics = String::from_utf8(metrics.to_vec()).unwrap();
    for expected in [
        // Dedup hits per event; requests per request.
        r#"clawlet_webhook_duplicates_total{handler="sendgrid"} 3"#,
        r#"clawlet_webhook_requests_total{handler="sendgrid",status="200"} 2"#,
        "clawlet_queue_depth 3",
    ] {
        assert!(
            metrics.lines().any(|line| line == expected),
            "missing {expected:?} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn a_batch_whose_first_event_is_stored_stores_the_other_two() {
    let bus = memory_bus(100).await;
    let router = app_with(bus.clone()).await;
    let (status, one) = post(&router, "sendgrid", &batch(&[("processed", "a")])).await;
    assert_eq!(status, 200, "{one}");
    let one = answer(&one);

    let body = batch(&[("processed", "a"), ("delivered", "b"), ("open", "c")]);
    let (status, three) = post(&router, "sendgrid", &body).await;
    assert_eq!(status, 200, "{three}");
    let three = answer(&three);
    assert_eq!(
        counts(&three),
        "accepted accepted=2 duplicate=1 ignored=0 ids=3"
    );
    assert_eq!(three["event_ids"][0], one["event_ids"][0]);
    let ids: Vec<String> = stored(&bus, "sendgrid")
        .await
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
}

#[tokio::test]
async fn events_outside_the_handlers_list_are_not_stored() {
    let bus = memory_bus(100).await;
    let router = app_with(bus.clone()).await;
    let body = batch(&[("delivered", "a"), ("open", "b"), ("bounce", "c")]);
    let (status, text) = post(&router, "filtered", &body).await;
    assert_eq!(status, 200, "{text}");
    let events = stored(&bus, "filtered").await;
    let ids: Vec<&str> = events.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(ids, ["a", "c"]);
    assert_eq!(
        text,
        format!(
            "accepted accepted=2 duplicate=0 ignored=1 {} {}\n",
            events[0].1, events[1].1
        )
    );
    // A batch the filter leaves out whole is verified, answered, and stores nothing.
    let (status, text) = post(&router, "filtered", &batch(&[("open", "d")])).await;
    assert_eq!(
        (status, text.as_str()),
        (200, "ignored accepted=0 duplicate=0 ignored=1\n")
    );
    assert_eq!(stored(&bus, "filtered").await.len(), 2);
}

#[tokio::test]
async fn one_bad_event_refuses_the_batch_and_an_empty_one_stores_nothing() {
    let bus = memory_bus(100).await;
    let router = app_with(bus.clone()).await;
    let good = batch(&[("delivered", "a")]);
    let good = good.trim_end_matches(']');
    for body in [
        format!(r#"{good},{{"sg_event_id":"b"}}]"#),
        format!("{good},42]"),
    ] {
        let (status, text) = post(&router, "sendgrid", &body).await;
        assert_eq!(
            (status, text.as_str()),
            (400, r#"{"error":"invalid payload"}"#),
            "{body}"
        );
    }
    assert!(stored(&bus, "sendgrid").await.is_empty());

    let (status, text) = post(&router, "sendgrid", "[]").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        counts(&answer(&text)),
        "ignored accepted=0 duplicate=0 ignored=0 ids=0"
    );
    assert!(stored(&bus, "sendgrid").await.is_empty());
    // Unsigned, the same batch is refused before it is read.
    let (status, _) = send(
        &router,
        "sendgrid",
        [("content-type".to_owned(), "application/json".to_owned())],
        &batch(&[("delivered", "z")]),
    )
    .await;
    assert_eq!(status, 401);
}

/// A queue with room for two: the third event of a batch cannot be stored, so the batch gets
/// 503 and is resent whole; on the resend the two stored events are duplicates, never stored
/// twice.
#[tokio::test]
async fn a_batch_that_cannot_be_stored_whole_is_refused_with_retry_after() {
    let bus = memory_bus(2).await;
    let router = app_with(bus.clone()).await;
    let body = batch(&[("processed", "a"), ("delivered", "b"), ("open", "c")]);
    for _ in 0..2 {
        let (status, text) = post(&router, "sendgrid", &body).await;
        assert_eq!(
            (status, text.as_str()),
            (503, r#"{"error":"temporarily unavailable"} (retry-after)"#)
        );
        assert_eq!(stored(&bus, "sendgrid").await.len(), 2);
    }
}

#[tokio::test]
async fn the_request_line_names_the_first_event_and_the_batch_size() {
    let capture = crate::LogCapture::start();
    let mut spec = runtime(vec![sendgrid("sendgrid", key())]);
    spec.logging.enabled = true;
    let app = App::new(spec, memory_bus(10).await, clock()).unwrap();
    let router = clawlet_http::router(app)
        .layer(Extension(ConnectInfo(PEER.parse::<SocketAddr>().unwrap())));
    let body = batch(&[("processed", "a"), ("delivered", "b"), ("open", "c")]);
    assert_eq!(post(&router, "sendgrid", &body).await.0, 200);
    let log = capture.finish();
    let line = log
        .lines()
        .find(|l| l.contains("webhook request"))
        .unwrap_or_else(|| panic!("no request line in {log:?}"));
    for expected in [
        "status=200",
        "outcome=\"accepted\"",
        "event_type=\"processed\"",
        "delivery_id=\"a\"",
        "batch_size=3",
    ] {
        assert!(line.contains(expected), "missing {expected} in {line}");
    }
}
