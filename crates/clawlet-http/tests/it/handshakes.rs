//! Handshakes in process: each is answered as its sender expects only when it verifies, passes
//! the allowlist and rate limit like a delivery, and is counted rather than queued.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use clawlet_events::Source;
use clawlet_http::{App, HandlerRateLimit, HandlerSpec, Handshake, SchemeSpec, Verifier};
use clawlet_ratelimit::Quota;
use clawlet_verify::presets;
use clawlet_verify::scheme::{self, Key, SigningKey};
use clawlet_verify::{Secret, UnixTime};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::{NOW, clock, memory_bus, open_handler, runtime};

const SECRET: &str = "handshake-secret";
const PEER: &str = "203.0.113.7:40000";

fn preset_handler(name: &str, kind: &str, handshake: Handshake) -> HandlerSpec {
    let preset = presets::by_name(kind).unwrap();
    let verifier =
        scheme::Verifier::new(preset.scheme.clone(), vec![Key::secret(SECRET).unwrap()]).unwrap();
    HandlerSpec {
        source: Source::ALL
            .into_iter()
            .find(|s| s.as_str() == kind)
            .unwrap(),
        verifier: Verifier::Scheme(Box::new(SchemeSpec {
            verifier,
            public_url: None,
            client_state: None,
            handshake: Some(handshake),
            signature_header: None,
        })),
        ..open_handler(name)
    }
}

fn secret() -> Secret {
    Secret::new(SECRET).unwrap()
}

async fn router() -> (App, Router) {
    let meta = || Handshake::MetaVerifyToken {
        token: Secret::new("tok").unwrap(),
    };
    let handlers = vec![
        preset_handler("slack", "slack", Handshake::SlackUrlVerification),
        preset_handler(
            "zoom",
            "zoom",
            Handshake::ZoomUrlValidation { secret: secret() },
        ),
        preset_handler("dropbox", "dropbox", Handshake::DropboxChallenge),
        preset_handler("meta", "meta", meta()),
        HandlerSpec {
            allowed_ips: Some(vec!["192.0.2.0/24".parse().unwrap()]),
            ..preset_handler("meta_allowlisted", "meta", meta())
        },
        HandlerSpec {
            rate_limit: HandlerRateLimit::Own(Quota {
                max_requests: 1,
                window: Duration::from_secs(60),
            }),
            ..preset_handler("meta_limited", "meta", meta())
        },
        open_handler("open"),
    ];
    let app = App::new(runtime(handlers), memory_bus(100).await, clock()).unwrap();
    let router = clawlet_http::router(app.clone())
        .layer(Extension(ConnectInfo(PEER.parse::<SocketAddr>().unwrap())));
    (app, router)
}

/// A signed POST for `kind` as its sender builds it, at the fixed clock.
fn signed(kind: &str, body: &str, key: &str) -> Vec<(String, String)> {
    let key = SigningKey::Secret(Secret::new(key).unwrap());
    let headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    let preset = presets::by_name(kind).unwrap();
    let mut out = headers.clone();
    out.extend(
        preset
            .scheme
            .sign(
                &key,
                &scheme::Request::new(&headers, body.as_bytes()),
                UnixTime::from_secs(NOW),
            )
            .unwrap(),
    );
    out
}

async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    headers: &[(String, String)],
    body: &str,
) -> String {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let mut line = response.status().as_u16().to_string();
    for name in ["content-type", "x-content-type-options"] {
        if let Some(value) = response.headers().get(name) {
            line.push_str(&format!(" {name}={}", value.to_str().unwrap()));
        }
    }
    let body = response.into_body().collect().await.unwrap().to_bytes();
    if !body.is_empty() {
        line.push(' ');
        line.push_str(String::from_utf8_lossy(&body).trim_end());
    }
    line
}

/// Method, URI, headers, body, and the expected status, headers and answer.
type Case<'a> = (&'a str, &'a str, Vec<(String, String)>, &'a str, &'a str);

#[tokio::test]
async fn handshake_edges() {
    let (app, router) = router().await;
    let slack = r#"{"token":"t","challenge":"ch4ll3nge","type":"url_verification"}"#;
    let zoom = r#"{"payload":{"plainToken":"pt"},"event_ts":1,"event":"endpoint.url_validation"}"#;
    let none: Vec<(String, String)> = Vec::new();
    let cases: Vec<Case<'_>> = vec![
        (
            "POST",
            "/webhook/slack",
            signed("slack", slack, SECRET),
            slack,
            r#"200 content-type=application/json {"challenge":"ch4ll3nge"}"#,
        ),
        // A handshake is answered only when it verifies.
        (
            "POST",
            "/webhook/slack",
            signed("slack", slack, "wrong"),
            slack,
            r#"401 content-type=application/json {"error":"invalid signature"}"#,
        ),
        (
            "POST",
            "/webhook/slack",
            none.clone(),
            slack,
            r#"401 content-type=application/json {"error":"invalid signature"}"#,
        ),
        (
            "POST",
            "/webhook/zoom",
            signed("zoom", zoom, SECRET),
            zoom,
            r#"200 content-type=application/json {"encryptedToken":"877124e72bbfa2165437a241442eeef845b408a0f0155c612d3db58efd49aab3","plainToken":"pt"}"#,
        ),
        (
            "GET",
            "/webhook/dropbox?challenge=abc",
            none.clone(),
            "",
            "200 content-type=text/plain; charset=utf-8 x-content-type-options=nosniff abc",
        ),
        // A GET that is no handshake is refused as before.
        (
            "GET",
            "/webhook/dropbox",
            none.clone(),
            "",
            r#"405 content-type=application/json {"error":"method not allowed"}"#,
        ),
        (
            "GET",
            "/webhook/open?challenge=abc",
            none.clone(),
            "",
            r#"405 content-type=application/json {"error":"method not allowed"}"#,
        ),
        (
            "GET",
            "/webhook/meta?hub.mode=subscribe&hub.verify_token=tok&hub.challenge=42",
            none.clone(),
            "",
            "200 content-type=text/plain; charset=utf-8 x-content-type-options=nosniff 42",
        ),
        (
            "GET",
            "/webhook/meta?hub.mode=subscribe&hub.verify_token=bad&hub.challenge=42",
            none.clone(),
            "",
            r#"401 content-type=application/json {"error":"invalid signature"}"#,
        ),
        // GET handshakes pass the allowlist and the rate limit like any delivery.
        (
            "GET",
            "/webhook/meta_allowlisted?hub.mode=subscribe&hub.verify_token=tok&hub.challenge=42",
            none.clone(),
            "",
            r#"403 content-type=application/json {"error":"forbidden"}"#,
        ),
        (
            "GET",
            "/webhook/meta_limited?hub.mode=subscribe&hub.verify_token=tok&hub.challenge=1",
            none.clone(),
            "",
            "200 content-type=text/plain; charset=utf-8 x-content-type-options=nosniff 1",
        ),
        (
            "GET",
            "/webhook/meta_limited?hub.mode=subscribe&hub.verify_token=tok&hub.challenge=2",
            none.clone(),
            "",
            r#"429 content-type=application/json {"error":"too many requests"}"#,
        ),
    ];
    for (method, uri, headers, body, expected) in cases {
        assert_eq!(
            call(&router, method, uri, &headers, body).await,
            expected,
            "{method} {uri}"
        );
    }
    let metrics = app.metrics().encode(0);
    for line in [
        "clawlet_webhook_handshakes_total{handler=\"slack\",handshake=\"slack_url_verification\"} 1",
        "clawlet_webhook_handshakes_total{handler=\"zoom\",handshake=\"zoom_url_validation\"} 1",
        "clawlet_webhook_handshakes_total{handler=\"dropbox\",handshake=\"dropbox_challenge\"} 1",
        "clawlet_webhook_handshakes_total{handler=\"meta\",handshake=\"meta_verify_token\"} 1",
        "clawlet_webhook_handshakes_total{handler=\"meta_limited\",handshake=\"meta_verify_token\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    assert!(
        !metrics.contains("handler=\"meta_allowlisted\",handshake"),
        "{metrics}"
    );
}
