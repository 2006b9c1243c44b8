//! clawlet-verify in a small axum service: Slack and Standard Webhooks (Svix) deliveries, each
//! verified from the `HeaderMap` and the raw body in one call.
//!
//! Run: `SLACK_SIGNING_SECRET=… STANDARD_WEBHOOK_SECRET=whsec_… cargo run -p clawlet-verify --example axum --features http`
//!
//! What the shape gets right:
//! - the body is taken as raw `Bytes` and verified before anything parses it (a re-serialised
//!   JSON body would not match its signature);
//! - a body limit bounds what an unauthenticated client can make the service hash;
//! - errors map by kind: 400 for a malformed request, 401 for a bad or stale signature, 500 for a
//!   misconfiguration, and the reason code goes to the logs, not to the client.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use clawlet_verify::scheme::{Key, Request, Verifier};
use clawlet_verify::{ErrorKind, Secret, VerifyError, presets, standard};

/// Deliveries larger than this are refused before any hashing.
const BODY_LIMIT: usize = 1 << 20;

struct App {
    slack: Verifier,
    standard: Vec<standard::Key>,
}

fn status(err: &VerifyError) -> StatusCode {
    match err.kind() {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Misconfigured => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn slack(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    match app
        .slack
        .verify(&Request::new(&headers, &body), SystemTime::now())
    {
        // Dedup would key on the event id here: a replay inside five minutes verifies again.
        Ok(_) => StatusCode::OK,
        Err(err) => status(&err),
    }
}

async fn svix(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let verified = standard::verify_headers(
        &app.standard,
        &headers,
        &body,
        SystemTime::now(),
        Some(standard::DEFAULT_TOLERANCE),
    );
    match verified {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(err) => status(&err),
    }
}

fn router(app: App) -> Router {
    Router::new()
        .route("/slack", post(slack))
        .route("/svix", post(svix))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(Arc::new(app))
}

fn config() -> Result<App, String> {
    let env = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    let slack_secret = Secret::new(env("SLACK_SIGNING_SECRET")?)
        .map_err(|e| format!("SLACK_SIGNING_SECRET: {e}"))?;
    let slack = Verifier::new(presets::SLACK.scheme, vec![Key::Secret(slack_secret)])
        .map_err(|e| format!("slack: {e}"))?;
    let standard = standard::Key::parse(&env("STANDARD_WEBHOOK_SECRET")?).map_err(|e| {
        format!("STANDARD_WEBHOOK_SECRET: {e} (expected whsec_<base64> or whpk_<base64>)")
    })?;
    Ok(App {
        slack,
        standard: vec![standard],
    })
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let app = config()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000")
        .await
        .map_err(|e| format!("127.0.0.1:3000: {e}"))?;
    axum::serve(listener, router(app))
        .await
        .map_err(|e| format!("serve: {e}"))
}
