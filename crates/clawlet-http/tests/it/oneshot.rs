//! Every status code, in process, with real payloads signed the way each provider signs them.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use clawlet_bus::Bus;
use clawlet_events::Source;
use clawlet_http::{App, HandlerRateLimit, HandlerSpec, ResponseType, Verifier};
use clawlet_ratelimit::Quota;
use clawlet_verify::{custom, github, standard, stripe};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::{NOW, clock, memory_bus, open_handler, payload, runtime};

const GITHUB_SECRET: &[u8] = b"It's a Secret to Everybody";
const STRIPE_SECRET: &[u8] = b"whsec_test_secret";
const CUSTOM_SECRET: &[u8] = b"custom-secret";
const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The peer every in-process request comes from.
const PEER: &str = "203.0.113.7:40000";

fn custom_scheme() -> custom::Scheme {
    custom::Scheme {
        algorithm: custom::Algorithm::Sha256,
        encoding: custom::Encoding::Hex,
        prefix: "sha256=".to_owned(),
    }
}

fn handlers() -> Vec<HandlerSpec> {
    let github = HandlerSpec {
        name: "github".to_owned(),
        path: "/webhook/github".to_owned(),
        source: Source::Github,
        verifier: Verifier::Github {
            secrets: vec![b"an old secret".to_vec(), GITHUB_SECRET.to_vec()],
            allow_legacy_sha1: false,
        },
        events: vec![
            "push".to_owned(),
            "pull_request.opened".to_owned(),
            "issues".to_owned(),
        ],
        ..open_handler("github")
    };
    let stripe = HandlerSpec {
        name: "stripe".to_owned(),
        path: "/webhook/stripe".to_owned(),
        source: Source::Stripe,
        verifier: Verifier::Stripe {
            secrets: vec![STRIPE_SECRET.to_vec()],
            tolerance_secs: 300,
        },
        ..open_handler("stripe")
    };
    let custom = HandlerSpec {
        verifier: Verifier::Custom {
            header: axum::http::HeaderName::from_static("x-signature"),
            scheme: custom_scheme(),
            secrets: vec![CUSTOM_SECRET.to_vec()],
        },
        response_type: ResponseType::Text,
        ..open_handler("custom")
    };
    let standard = HandlerSpec {
        source: Source::Standard,
        verifier: Verifier::Standard {
            keys: vec![standard::Key::from_secret(STANDARD_SECRET).unwrap()],
            tolerance_secs: 300,
        },
        ..open_handler("standard")
    };
    let allowlisted = HandlerSpec {
        allowed_ips: Some(vec!["192.0.2.0/24".parse().unwrap()]),
        ..open_handler("allowlisted")
    };
    let limited = HandlerSpec {
        rate_limit: HandlerRateLimit::Own(Quota {
            max_requests: 1,
            window: Duration::from_secs(60),
        }),
        ..open_handler("limited")
    };
    vec![
        github,
        stripe,
        custom,
        standard,
        allowlisted,
        limited,
        open_handler("open"),
    ]
}

async fn app_with(bus: Bus) -> (App, Router) {
    let mut spec = runtime(handlers());
    spec.max_body_bytes = 64 * 1024;
    let app = App::new(spec, bus, clock()).unwrap();
    let router = clawlet_http::router(app.clone())
        .layer(Extension(ConnectInfo(PEER.parse::<SocketAddr>().unwrap())));
    (app, router)
}

/// A request as a sender builds it.
struct Send {
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn post(path: &'static str, headers: &[(&'static str, &str)], body: impl Into<Vec<u8>>) -> Send {
    Send {
        method: "POST",
        path,
        headers: headers
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned()))
            .collect(),
        body: body.into(),
    }
}

fn github_delivery(event: &str, delivery: &str, file: &str) -> Send {
    let body = payload(file);
    let signature = github::sign(GITHUB_SECRET, &body);
    post(
        "/webhook/github",
        &[
            ("content-type", "application/json"),
            ("x-github-event", event),
            ("x-github-delivery", delivery),
            ("x-hub-signature-256", &signature),
        ],
        body,
    )
}

fn stripe_delivery(file: &str, timestamp: i64) -> Send {
    let body = payload(file);
    let signature = stripe::sign(STRIPE_SECRET, timestamp, &body);
    post(
        "/webhook/stripe",
        &[
            ("content-type", "application/json"),
            ("stripe-signature", &signature),
        ],
        body,
    )
}

/// Sends one request; returns status, `Retry-After`, `Allow`, content type and body.
async fn call(router: &Router, send: Send) -> (StatusCode, String) {
    let mut request = Request::builder().method(send.method).uri(send.path);
    for (name, value) in &send.headers {
        request = request.header(*name, value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(send.body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let mut line = format!("{}", status.as_u16());
    for name in ["content-type", "retry-after", "allow"] {
        if let Some(value) = response.headers().get(name) {
            line.push_str(&format!(" {name}={}", value.to_str().unwrap()));
        }
    }
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    if !body.is_empty() {
        line.push_str(&format!(" {}", redact_event_id(body.trim_end())));
    }
    (status, line)
}

/// Event ids are fresh UUIDv7s; the snapshot shows that one is there, and tests that need the
/// value compare the raw bodies.
fn redact_event_id(body: &str) -> String {
    if let Ok(mut json) = serde_json::from_str::<serde_json::Value>(body) {
        if let Some(id) = json.get_mut("event_id") {
            assert!(id.as_str().is_some_and(|id| !id.is_empty()), "{body}");
            *id = "[event_id]".into();
        }
        return json.to_string();
    }
    match body.split_once(' ') {
        Some((word @ ("accepted" | "duplicate"), id)) if !id.is_empty() => {
            format!("{word} [event_id]")
        }
        _ => body.to_owned(),
    }
}

#[tokio::test]
async fn every_status_code() {
    let bus = memory_bus(10_000).await;
    let (_app, router) = app_with(bus.clone()).await;
    let standard_key = standard::Key::from_secret(STANDARD_SECRET).unwrap();
    let custom_body = br#"{"event_type":"user.created","data":{"user_id":"123"}}"#.to_vec();

    let mut cases: Vec<(&str, Send)> = vec![
        (
            "github push, signed",
            github_delivery("push", "d-1", "github_push.json"),
        ),
        (
            "github push, same delivery again",
            github_delivery("push", "d-1", "github_push.json"),
        ),
        (
            "github pull_request.opened, in the events list",
            github_delivery("pull_request", "d-2", "github_pull_request.opened.json"),
        ),
        (
            "github star, not in the events list",
            github_delivery("star", "d-3", "github_star.created.json"),
        ),
        (
            "github ping",
            github_delivery("ping", "d-4", "github_ping.json"),
        ),
    ];
    let mut wrong = github_delivery("push", "d-5", "github_push.json");
    wrong
        .headers
        .retain(|(name, _)| *name != "x-hub-signature-256");
    wrong.headers.push((
        "x-hub-signature-256",
        github::sign(b"wrong secret", &payload("github_push.json")),
    ));
    cases.push(("github push, wrong secret", wrong));
    let mut unsigned = github_delivery("push", "d-6", "github_push.json");
    unsigned
        .headers
        .retain(|(name, _)| *name != "x-hub-signature-256");
    cases.push(("github push, no signature", unsigned));
    let mut tampered = github_delivery("push", "d-7", "github_push.json");
    tampered.body.push(b' ');
    cases.push(("github push, body changed after signing", tampered));
    let mut text = github_delivery("push", "d-8", "github_push.json");
    text.headers.retain(|(name, _)| *name != "content-type");
    text.headers.push(("content-type", "text/plain".to_owned()));
    cases.push(("github push, text/plain", text));
    let not_json = b"this is not json".to_vec();
    cases.push((
        "github, signed body that is not JSON",
        post(
            "/webhook/github",
            &[
                ("content-type", "application/json"),
                ("x-github-event", "push"),
                ("x-github-delivery", "d-9"),
                (
                    "x-hub-signature-256",
                    &github::sign(GITHUB_SECRET, &not_json),
                ),
            ],
            not_json,
        ),
    ));
    let mut no_delivery = github_delivery("push", "d-10", "github_push.json");
    no_delivery
        .headers
        .retain(|(name, _)| *name != "x-github-delivery");
    cases.push(("github push, no delivery id", no_delivery));
    cases.push((
        "stripe invoice.paid, signed now",
        stripe_delivery("stripe_invoice.paid.json", NOW),
    ));
    cases.push((
        "stripe invoice.paid, signed 20 minutes ago",
        stripe_delivery("stripe_invoice.paid.json", NOW - 1200),
    ));
    cases.push((
        "custom, signed, text answers",
        post(
            "/webhook/custom",
            &[
                ("content-type", "application/json"),
                (
                    "x-signature",
                    &custom_scheme().sign(CUSTOM_SECRET, &custom_body),
                ),
            ],
            custom_body.clone(),
        ),
    ));
    cases.push((
        "custom, wrong signature, text answers",
        post(
            "/webhook/custom",
            &[
                ("content-type", "application/json"),
                ("x-signature", "sha256=00"),
            ],
            custom_body.clone(),
        ),
    ));
    cases.push((
        "standard webhooks, signed",
        post(
            "/webhook/standard",
            &[
                ("content-type", "application/json"),
                ("webhook-id", "msg_1"),
                ("webhook-timestamp", &NOW.to_string()),
                (
                    "webhook-signature",
                    &standard::sign(&standard_key, "msg_1", NOW, &custom_body).unwrap(),
                ),
            ],
            custom_body.clone(),
        ),
    ));
    cases.push((
        "standard webhooks, replayed an hour later",
        post(
            "/webhook/standard",
            &[
                ("content-type", "application/json"),
                ("webhook-id", "msg_2"),
                ("webhook-timestamp", &(NOW - 3600).to_string()),
                (
                    "webhook-signature",
                    &standard::sign(&standard_key, "msg_2", NOW - 3600, &custom_body).unwrap(),
                ),
            ],
            custom_body.clone(),
        ),
    ));
    cases.push((
        "from an address not on the handler's allowlist",
        post(
            "/webhook/allowlisted",
            &[("content-type", "application/json")],
            custom_body.clone(),
        ),
    ));
    cases.push((
        "rate limited handler, first request",
        post(
            "/webhook/limited",
            &[("content-type", "application/json")],
            custom_body.clone(),
        ),
    ));
    cases.push((
        "rate limited handler, second request",
        post(
            "/webhook/limited",
            &[("content-type", "application/json")],
            custom_body.clone(),
        ),
    ));
    cases.push((
        "body over max_body_bytes",
        post(
            "/webhook/open",
            &[("content-type", "application/json")],
            vec![b' '; 64 * 1024 + 1],
        ),
    ));
    cases.push((
        "GET on a handler path",
        Send {
            method: "GET",
            path: "/webhook/github",
            headers: Vec::new(),
            body: Vec::new(),
        },
    ));
    cases.push(("unknown path", post("/webhook/nope", &[], Vec::new())));
    cases.push((
        "POST /health",
        Send {
            method: "POST",
            path: "/health",
            headers: Vec::new(),
            body: Vec::new(),
        },
    ));
    cases.push((
        "GET /health",
        Send {
            method: "GET",
            path: "/health",
            headers: Vec::new(),
            body: Vec::new(),
        },
    ));

    let mut table = String::new();
    for (name, send) in cases {
        let (_, line) = call(&router, send).await;
        table.push_str(&format!("{name}: {line}\n"));
    }
    insta::assert_snapshot!(table);

    // Accepted: github push, pull_request, stripe, custom, standard, open handlers' first
    // requests. Ignored, ping, duplicate and refused requests are not queued.
    assert_eq!(bus.health().depth, 6);
}

#[tokio::test]
async fn a_duplicate_names_the_first_event() {
    let (_app, router) = app_with(memory_bus(10).await).await;
    let first = raw_body(&router, github_delivery("push", "same", "github_push.json")).await;
    let again = raw_body(&router, github_delivery("push", "same", "github_push.json")).await;
    assert_eq!(first["status"], "accepted");
    assert_eq!(again["status"], "duplicate");
    assert_eq!(first["event_id"], again["event_id"]);
}

async fn raw_body(router: &Router, send: Send) -> serde_json::Value {
    let mut request = Request::builder().method(send.method).uri(send.path);
    for (name, value) in &send.headers {
        request = request.header(*name, value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(send.body)).unwrap())
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after_and_health_says_so() {
    let bus = memory_bus(1).await;
    let (_app, router) = app_with(bus.clone()).await;
    let mut table = String::new();
    for (name, send) in [
        (
            "first push",
            github_delivery("push", "q-1", "github_push.json"),
        ),
        (
            "second push, queue full",
            github_delivery("push", "q-2", "github_push.json"),
        ),
        (
            "health",
            Send {
                method: "GET",
                path: "/health",
                headers: Vec::new(),
                body: Vec::new(),
            },
        ),
    ] {
        let (_, line) = call(&router, send).await;
        table.push_str(&format!("{name}: {line}\n"));
    }
    insta::assert_snapshot!(table);
    assert_eq!(bus.health().depth, 1);
}

/// With a global limit of 2 per minute, a handler whose own limit is off takes every request,
/// one that has no setting of its own shares the global limit, and one with its own quota keeps it.
#[tokio::test]
async fn a_handler_limit_that_is_off_is_not_the_global_limit() {
    let quota = |max_requests| Quota {
        max_requests,
        window: Duration::from_secs(60),
    };
    let mut spec = runtime(vec![
        HandlerSpec {
            rate_limit: HandlerRateLimit::Off,
            ..open_handler("off")
        },
        open_handler("global"),
        HandlerSpec {
            rate_limit: HandlerRateLimit::Own(quota(3)),
            ..open_handler("own")
        },
    ]);
    spec.rate_limit = Some(quota(2));
    let app = App::new(spec, memory_bus(100).await, clock()).unwrap();
    let router = clawlet_http::router(app)
        .layer(Extension(ConnectInfo(PEER.parse::<SocketAddr>().unwrap())));
    let mut got = Vec::new();
    for path in ["/webhook/off", "/webhook/global", "/webhook/own"] {
        let mut statuses = Vec::new();
        for _ in 0..5 {
            let send = post(
                path,
                &[("content-type", "application/json")],
                b"{}".to_vec(),
            );
            statuses.push(call(&router, send).await.0.as_u16());
        }
        got.push((path, statuses));
    }
    assert_eq!(
        got,
        [
            ("/webhook/off", vec![200; 5]),
            ("/webhook/global", vec![200, 200, 429, 429, 429]),
            ("/webhook/own", vec![200, 200, 200, 429, 429]),
        ]
    );
}

#[tokio::test]
async fn metrics_count_requests_refusals_and_duplicates() {
    let (_app, router) = app_with(memory_bus(100).await).await;
    for send in [
        github_delivery("push", "m-1", "github_push.json"),
        github_delivery("push", "m-1", "github_push.json"),
        post(
            "/webhook/allowlisted",
            &[("content-type", "application/json")],
            b"{}".to_vec(),
        ),
        post(
            "/webhook/limited",
            &[("content-type", "application/json")],
            b"{}".to_vec(),
        ),
        post(
            "/webhook/limited",
            &[("content-type", "application/json")],
            b"{}".to_vec(),
        ),
        github_delivery("star", "m-2", "github_star.created.json"),
    ] {
        call(&router, send).await;
    }
    let mut bad = github_delivery("push", "m-3", "github_push.json");
    bad.body.push(b'\n');
    call(&router, bad).await;

    let response = router
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        clawlet_http::METRICS_CONTENT_TYPE
    );
    let text = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(text.to_vec()).unwrap();
    for expected in [
        r#"clawlet_webhook_requests_total{handler="github",status="200"} 3"#,
        r#"clawlet_webhook_requests_total{handler="github",status="401"} 1"#,
        r#"clawlet_webhook_requests_total{handler="limited",status="429"} 1"#,
        r#"clawlet_webhook_verification_failures_total{handler="github",reason="mismatch"} 1"#,
        r#"clawlet_webhook_rate_limited_total{handler="limited"} 1"#,
        r#"clawlet_webhook_allowlist_refused_total{handler="allowlisted"} 1"#,
        r#"clawlet_webhook_duplicates_total{handler="github"} 1"#,
        r#"clawlet_webhook_ignored_total{handler="github"} 1"#,
        "clawlet_queue_depth 2",
        r#"clawlet_webhook_request_duration_seconds_count{handler="github"} 4"#,
    ] {
        assert!(
            text.lines().any(|line| line == expected),
            "missing {expected:?} in\n{text}"
        );
    }
}

#[tokio::test]
async fn reload_swaps_secrets_and_handlers_atomically() {
    let bus = memory_bus(100).await;
    let (app, router) = app_with(bus).await;
    assert_eq!(
        call(&router, github_delivery("push", "r-1", "github_push.json"))
            .await
            .0,
        200
    );
    // Rotate the GitHub secret away, remove the custom handler.
    let mut spec = runtime(
        handlers()
            .into_iter()
            .filter(|h| h.name != "custom")
            .map(|mut h| {
                if h.name == "github" {
                    h.verifier = Verifier::Github {
                        secrets: vec![b"new secret".to_vec()],
                        allow_legacy_sha1: false,
                    };
                }
                h
            })
            .collect(),
    );
    spec.max_body_bytes = 64 * 1024;
    app.reload(spec).unwrap();
    assert_eq!(
        call(&router, github_delivery("push", "r-2", "github_push.json"))
            .await
            .0,
        401
    );
    assert_eq!(
        call(&router, post("/webhook/custom", &[], Vec::new()))
            .await
            .0,
        404
    );
    assert!(!app.handler_names().contains(&"custom".to_owned()));

    // An invalid spec is refused and the running one stays.
    let mut broken = runtime(vec![open_handler("a"), open_handler("a")]);
    broken.max_body_bytes = 1;
    let err = app.reload(broken).unwrap_err();
    assert_eq!(err.to_string(), "handler a: the name is used twice");
    assert_eq!(
        call(&router, github_delivery("push", "r-3", "github_push.json"))
            .await
            .0,
        401
    );
}

/// A prepared runtime serves nothing until it is installed, so that a reload can build every
/// part before it swaps any; dropping it leaves the running one in place.
#[tokio::test]
async fn a_prepared_runtime_changes_nothing_until_installed() {
    let (app, router) = app_with(memory_bus(100).await).await;
    let github = |delivery: &'static str| github_delivery("push", delivery, "github_push.json");
    let rotated = || {
        runtime(
            handlers()
                .into_iter()
                .map(|mut h| {
                    if h.name == "github" {
                        h.verifier = Verifier::Github {
                            secrets: vec![b"new secret".to_vec()],
                            allow_legacy_sha1: false,
                        };
                    }
                    h
                })
                .collect(),
        )
    };
    let prepared = app.prepare(rotated()).unwrap();
    assert_eq!(call(&router, github("p-1")).await.0, 200);
    drop(prepared);
    assert_eq!(call(&router, github("p-2")).await.0, 200);
    let prepared = app.prepare(rotated()).unwrap();
    app.install(prepared);
    assert_eq!(call(&router, github("p-3")).await.0, 401);
    // The checks `check` runs are the ones `prepare` runs.
    let broken = runtime(vec![open_handler("a"), open_handler("a")]);
    assert_eq!(
        broken.check().unwrap_err().to_string(),
        app.prepare(broken).unwrap_err().to_string()
    );
}

#[tokio::test]
async fn invalid_specs_are_refused_with_a_message_naming_the_handler() {
    let bus = memory_bus(1).await;
    let check = |handlers: Vec<HandlerSpec>,
                 rate_limit: Option<Quota>,
                 max_body_bytes: usize,
                 expected: &str| {
        let mut spec = runtime(handlers);
        spec.max_body_bytes = max_body_bytes;
        spec.rate_limit = rate_limit;
        let err = App::new(spec, bus.clone(), clock()).unwrap_err();
        assert_eq!(err.to_string(), expected);
    };
    let at = |name: &str, path: &str| HandlerSpec {
        path: path.to_owned(),
        ..open_handler(name)
    };
    let ok = 1024;
    check(
        vec![at("a", "/x"), at("b", "/x")],
        None,
        ok,
        "handler b: path /x is already used by handler a",
    );
    check(
        vec![at("a", "/x"), at("a", "/y")],
        None,
        ok,
        "handler a: the name is used twice",
    );
    check(vec![at("", "/x")], None, ok, "a handler has an empty name");
    check(
        vec![at("a", "/health")],
        None,
        ok,
        "handler a: path /health is not allowed (it must start with / and not be /health or /metrics)",
    );
    check(
        vec![at("a", "webhook")],
        None,
        ok,
        "handler a: path webhook is not allowed (it must start with / and not be /health or /metrics)",
    );
    check(
        vec![at("a", "/x")],
        None,
        0,
        "max_body_bytes must be at least 1",
    );
    check(
        vec![at("a", "/x")],
        Some(Quota {
            max_requests: 0,
            window: Duration::from_secs(1),
        }),
        ok,
        "rate_limit: rate limit: max_requests must be at least 1",
    );
    check(
        vec![HandlerSpec {
            rate_limit: HandlerRateLimit::Own(Quota {
                max_requests: 5,
                window: Duration::ZERO,
            }),
            ..at("a", "/x")
        }],
        None,
        ok,
        "handler a: rate limit: window of 0ns is too short for 5 requests",
    );
    check(
        vec![HandlerSpec {
            custom: clawlet_events::CustomOptions {
                event_type_pointer: "event_type".to_owned(),
                ..clawlet_events::CustomOptions::default()
            },
            ..at("a", "/x")
        }],
        None,
        ok,
        "handler a: JSON pointer \"event_type\" must be empty or start with '/'",
    );
}

/// The request log for one signed GitHub push under `logging`.
async fn logged(logging: clawlet_http::LogSpec) -> String {
    let capture = crate::LogCapture::start();
    let mut spec = runtime(handlers());
    spec.logging = logging;
    let app = App::new(spec, memory_bus(10).await, clock()).unwrap();
    let router = clawlet_http::router(app)
        .layer(Extension(ConnectInfo(PEER.parse::<SocketAddr>().unwrap())));
    let mut send = github_delivery("push", "log-1", "github_push.json");
    send.headers
        .push(("authorization", "Bearer top-secret-token".to_owned()));
    send.headers
        .push(("cookie", "session=top-secret-cookie".to_owned()));
    assert_eq!(call(&router, send).await.0, 200);
    let mut wrong = github_delivery("push", "log-2", "github_push.json");
    wrong.body.push(b' ');
    assert_eq!(call(&router, wrong).await.0, 401);
    capture.finish()
}

#[tokio::test]
async fn one_log_line_per_request_with_secrets_redacted() {
    let signature = github::sign(GITHUB_SECRET, &payload("github_push.json"));
    let log = logged(clawlet_http::LogSpec {
        enabled: true,
        include_headers: true,
        include_payload: false,
    })
    .await;
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("webhook request"))
        .collect();
    assert_eq!(lines.len(), 2, "log was: {log:?}");
    for expected in [
        "handler=\"github\"",
        "status=200",
        "event_type=\"push\"",
        "delivery_id=\"log-1\"",
        "client_ip=203.0.113.7",
        "latency_ms=",
        "x-github-event: push",
        "x-hub-signature-256: [redacted]",
        "authorization: [redacted]",
        "cookie: [redacted]",
    ] {
        assert!(
            lines[0].contains(expected),
            "missing {expected} in {}",
            lines[0]
        );
    }
    assert!(lines[1].contains("status=401"), "{}", lines[1]);
    assert!(lines[1].contains("reason=\"mismatch\""), "{}", lines[1]);
    for secret in [signature.as_str(), "top-secret", "payload="] {
        assert!(!log.contains(secret), "{secret} leaked into {log}");
    }

    let with_payload = logged(clawlet_http::LogSpec {
        enabled: true,
        include_headers: false,
        include_payload: true,
    })
    .await;
    assert!(with_payload.contains("payload="), "{with_payload}");
    assert!(
        with_payload.contains("refs/tags/simple-tag"),
        "{with_payload}"
    );
    assert!(!with_payload.contains("top-secret"), "{with_payload}");

    let silent = logged(clawlet_http::LogSpec {
        enabled: false,
        include_headers: true,
        include_payload: true,
    })
    .await;
    assert!(!silent.contains("webhook request"), "{silent}");
}
