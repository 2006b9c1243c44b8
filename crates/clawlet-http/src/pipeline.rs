//! What happens to one request, cheapest check first and nothing parsed before it is verified:
//! client IP → allowlist (403) → rate limit (429) → body size (413) → signature (401) → parse
//! (400/415) → event filter (200 ignored) → publish (200 accepted/duplicate, 503).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use clawlet_bus::Published;
use clawlet_events::{Envelope, Source};
use http_body_util::BodyExt;
use tracing::Instrument as _;

use crate::app::{App, Handler, Runtime};
use crate::client_ip;
use crate::error::ApiError;
use crate::metrics::CONTENT_TYPE;
use crate::spec::ResponseType;

/// How a request that passed every check ended.
enum Done {
    Accepted(String),
    Duplicate(String),
    /// Not in the handler's `events` list: verified, answered 200, not queued.
    Ignored,
    /// GitHub's `ping` on hook creation: verified, answered 200, never queued (no agent has
    /// anything to do with it, and refusing it would mark the hook broken in GitHub's UI).
    Pong,
}

/// What the request log line says besides status and latency.
#[derive(Default)]
struct Trail {
    client_ip: Option<IpAddr>,
    /// `ok`, `off` (unverified handler) or the failure reason; `None` before the check ran.
    verification: Option<&'static str>,
    event_type: Option<String>,
    delivery_id: Option<String>,
    body: Option<Bytes>,
}

pub(crate) async fn receive(State(app): State<App>, request: Request) -> Response {
    let started = Instant::now();
    let runtime = app.0.runtime.load_full();
    let Some(handler) = runtime.by_path.get(request.uri().path()).cloned() else {
        return ApiError::NotFound.into_response();
    };
    let kind = handler.spec.response_type;
    let headers_for_log = (runtime.logging.enabled && runtime.logging.include_headers)
        .then(|| request.headers().clone());
    let mut trail = Trail::default();
    // One span per request, exported over OTLP when the binary sets that up; its fields are filled
    // in as the pipeline learns them.
    let span = tracing::info_span!(
        "webhook",
        otel.kind = "server",
        handler = handler.spec.name.as_str(),
        event_type = tracing::field::Empty,
        delivery_id = tracing::field::Empty,
        status = tracing::field::Empty,
        verification = tracing::field::Empty,
    );
    let result = if request.method() == Method::POST {
        // `serve` puts the peer in every request; without it (another server) there is no
        // client IP to check, and refusing is the only safe answer.
        match request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
        {
            Some(peer) => {
                run(&app, &runtime, &handler, peer.ip(), request, &mut trail)
                    .instrument(span.clone())
                    .await
            }
            None => Err(ApiError::NoPeerAddress),
        }
    } else {
        Err(ApiError::MethodNotAllowed)
    };
    let (response, error) = match result {
        Ok(done) => (render(&done, kind), None),
        Err(err) => (err.render(kind), Some(err)),
    };
    let latency = started.elapsed();
    let status = response.status();
    span.record("status", status.as_u16());
    if let Some(event_type) = &trail.event_type {
        span.record("event_type", event_type.as_str());
    }
    if let Some(delivery_id) = &trail.delivery_id {
        span.record("delivery_id", delivery_id.as_str());
    }
    if let Some(verification) = trail.verification {
        span.record("verification", verification);
    }
    app.0
        .metrics
        .request(&handler.spec.name, status.as_u16(), latency);
    if runtime.logging.enabled {
        log(
            &handler,
            &runtime,
            status,
            latency,
            error.as_ref(),
            &trail,
            headers_for_log.as_ref(),
        );
    }
    response
}

async fn run(
    app: &App,
    runtime: &Runtime,
    handler: &Handler,
    peer: IpAddr,
    request: Request,
    trail: &mut Trail,
) -> Result<Done, ApiError> {
    let name = handler.spec.name.as_str();
    let metrics = &app.0.metrics;
    let (parts, body) = request.into_parts();

    let client = client_ip::resolve(peer, &parts.headers, &runtime.trusted_proxies);
    trail.client_ip = Some(client);
    if !handler.allowed_ips.allows(client) {
        metrics.allowlist_refused(name);
        return Err(ApiError::Forbidden);
    }
    if let Some(limiter) = &handler.limiter
        && let Err(retry) = limiter.check(&client)
    {
        metrics.rate_limited(name);
        return Err(ApiError::RateLimited {
            retry_after: retry.after,
        });
    }

    let body = read_body(body, &parts.headers, runtime.max_body_bytes).await?;
    if runtime.logging.include_payload {
        trail.body = Some(body.clone());
    }

    if let Err(err) = handler
        .spec
        .verifier
        .verify(&parts.headers, &body, (app.0.clock)())
    {
        metrics.verification_failure(name, err.code());
        trail.verification = Some(err.code());
        return Err(ApiError::Unauthorized(err));
    }
    trail.verification = Some(if handler.spec.verifier.is_verified() {
        "ok"
    } else {
        "off"
    });

    let header_pairs: Vec<(&str, &[u8])> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    let envelope = clawlet_events::parse(&clawlet_events::Request {
        handler: name,
        source: handler.spec.source,
        headers: &header_pairs,
        body: &body,
        received_at: time::OffsetDateTime::now_utc(),
        custom: &handler.spec.custom,
    })
    .map_err(ApiError::Parse)?;
    trail.event_type = Some(envelope.event_type.clone());
    trail.delivery_id = Some(envelope.delivery_id.clone());

    if handler.spec.source == Source::Github && envelope.event_type == "ping" {
        return Ok(Done::Pong);
    }
    if !wanted(&handler.spec.events, &envelope) {
        metrics.ignored(name);
        return Ok(Done::Ignored);
    }

    // The envelope holds its own copy of the payload: a large body is not held twice while the
    // bus stores it.
    drop(body);
    match app.0.bus.publish_owned(envelope).await {
        Ok(Published::Accepted { event_id }) => Ok(Done::Accepted(event_id)),
        Ok(Published::Duplicate { event_id }) => {
            metrics.duplicate(name);
            Ok(Done::Duplicate(event_id))
        }
        Err(err) => Err(ApiError::Unavailable(err)),
    }
}

/// An empty list takes everything; an entry names a type (`pull_request`) or a type and
/// action (`pull_request.opened`).
fn wanted(events: &[String], envelope: &Envelope) -> bool {
    events.is_empty()
        || events.iter().any(|wanted| {
            wanted == &envelope.event_type
                || envelope.action.as_deref().is_some_and(|action| {
                    wanted
                        .strip_prefix(envelope.event_type.as_str())
                        .and_then(|rest| rest.strip_prefix('.'))
                        == Some(action)
                })
        })
}

/// Reads at most `limit` bytes: a declared length over the limit is refused before reading,
/// and a chunked body is abandoned as soon as it passes the limit.
pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut body = body;
    // Most bodies arrive in one frame: keep it as is, and copy only when a second one comes.
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ApiError::BadBody)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        match (&mut first, &mut joined) {
            (None, None) => first = Some(data),
            (Some(head), None) => {
                let capacity = declared
                    .and_then(|len| usize::try_from(len).ok())
                    .unwrap_or(total)
                    .clamp(total, limit);
                let mut buf = BytesMut::with_capacity(capacity);
                buf.extend_from_slice(head);
                buf.extend_from_slice(&data);
                first = None;
                joined = Some(buf);
            }
            (_, Some(buf)) => buf.extend_from_slice(&data),
        }
    }
    Ok(match (first, joined) {
        (_, Some(buf)) => buf.freeze(),
        (Some(head), None) => head,
        (None, None) => Bytes::new(),
    })
}

fn render(done: &Done, kind: ResponseType) -> Response {
    let (status, event_id) = match done {
        Done::Accepted(id) => ("accepted", Some(id)),
        Done::Duplicate(id) => ("duplicate", Some(id)),
        Done::Ignored => ("ignored", None),
        Done::Pong => ("pong", None),
    };
    match (kind, event_id) {
        (ResponseType::Json, Some(id)) => {
            Json(serde_json::json!({ "status": status, "event_id": id })).into_response()
        }
        (ResponseType::Json, None) => Json(serde_json::json!({ "status": status })).into_response(),
        (ResponseType::Text, Some(id)) => format!("{status} {id}\n").into_response(),
        (ResponseType::Text, None) => format!("{status}\n").into_response(),
    }
}

fn log(
    handler: &Handler,
    runtime: &Runtime,
    status: StatusCode,
    latency: Duration,
    error: Option<&ApiError>,
    trail: &Trail,
    headers: Option<&HeaderMap>,
) {
    let headers = headers.map(|headers| redacted_headers(headers, &handler.redacted));
    let payload = trail
        .body
        .as_ref()
        .filter(|_| runtime.logging.include_payload)
        .map(|body| String::from_utf8_lossy(body).into_owned());
    tracing::info!(
        target: "clawlet_http::request",
        handler = handler.spec.name.as_str(),
        status = status.as_u16(),
        event_type = trail.event_type.as_deref(),
        delivery_id = trail.delivery_id.as_deref(),
        client_ip = trail.client_ip.map(tracing::field::display),
        latency_ms = latency.as_secs_f64() * 1000.0,
        reason = error.map(ApiError::reason),
        headers = headers.as_deref(),
        payload = payload.as_deref(),
        "webhook request"
    );
}

/// `name: value` pairs joined by `; `, with credentials and signatures as `[redacted]`.
pub(crate) fn redacted_headers(headers: &HeaderMap, redacted: &[axum::http::HeaderName]) -> String {
    let mut out = String::new();
    for (name, value) in headers {
        if !out.is_empty() {
            out.push_str("; ");
        }
        let shown = if redacted.contains(name) {
            "[redacted]".into()
        } else {
            String::from_utf8_lossy(value.as_bytes())
        };
        let _ = write!(out, "{name}: {shown}");
    }
    out
}

#[derive(serde::Serialize)]
struct HealthBody<'a> {
    status: &'static str,
    queue_depth: u64,
    backend: &'static str,
    handlers: &'a [String],
}

pub(crate) async fn health(State(app): State<App>) -> Response {
    let health = app.0.bus.health();
    let runtime = app.0.runtime.load();
    let (status, word) = if health.accepting {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    let body = HealthBody {
        status: word,
        queue_depth: health.depth,
        backend: health.backend,
        handlers: &runtime.names,
    };
    (status, Json(body)).into_response()
}

pub(crate) async fn metrics(State(app): State<App>) -> Response {
    let depth = app.0.bus.health().depth;
    let text = app.0.metrics.encode(depth);
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderName;
    use futures_util::stream;

    use super::*;

    fn envelope(event_type: &str, action: Option<&str>) -> Envelope {
        Envelope {
            id: "e".to_owned(),
            handler: "h".to_owned(),
            source: Source::Github,
            event_type: event_type.to_owned(),
            action: action.map(str::to_owned),
            delivery_id: "d".to_owned(),
            received_at: time::OffsetDateTime::UNIX_EPOCH,
            summary: String::new(),
            headers: std::collections::BTreeMap::new(),
            payload: clawlet_events::Payload::from_json("{}").unwrap(),
        }
    }

    #[test]
    fn event_filter() {
        fn check(events: &[&str], event_type: &str, action: Option<&str>, expected: bool) {
            let events: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
            assert_eq!(
                wanted(&events, &envelope(event_type, action)),
                expected,
                "{events:?} {event_type} {action:?}"
            );
        }
        check(&[], "push", None, true);
        check(&["push"], "push", None, true);
        check(&["push"], "pull_request", Some("opened"), false);
        check(&["pull_request"], "pull_request", Some("opened"), true);
        check(
            &["pull_request.opened"],
            "pull_request",
            Some("opened"),
            true,
        );
        check(
            &["pull_request.opened"],
            "pull_request",
            Some("closed"),
            false,
        );
        check(&["pull_request.opened"], "pull_request", None, false);
        check(
            &["pull_request.opene"],
            "pull_request",
            Some("opened"),
            false,
        );
        check(
            &["pull_requestXopened"],
            "pull_request",
            Some("opened"),
            false,
        );
        check(&["invoice.paid"], "invoice.paid", None, true);
        check(&["invoice"], "invoice.paid", None, false);
        check(&["push", "invoice.paid"], "invoice.paid", None, true);
    }

    #[test]
    fn secrets_never_reach_the_log() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json"),
            ("authorization", "Bearer abc"),
            ("cookie", "session=1"),
            ("x-hub-signature-256", "sha256=ff"),
            ("stripe-signature", "t=1,v1=ff"),
            ("webhook-signature", "v1,abc"),
            ("x-my-signature", "deadbeef"),
            ("x-github-event", "push"),
        ] {
            headers.insert(HeaderName::from_static(name), value.parse().unwrap());
        }
        let mut redacted: Vec<HeaderName> = crate::app::ALWAYS_REDACTED
            .iter()
            .map(|name| HeaderName::from_static(name))
            .collect();
        redacted.push(HeaderName::from_static("x-my-signature"));
        assert_eq!(
            redacted_headers(&headers, &redacted),
            "content-type: application/json; authorization: [redacted]; cookie: [redacted]; \
             x-hub-signature-256: [redacted]; stripe-signature: [redacted]; \
             webhook-signature: [redacted]; x-my-signature: [redacted]; x-github-event: push"
        );
    }

    async fn read(
        chunks: &[&'static [u8]],
        declared: Option<u64>,
        limit: usize,
    ) -> Result<Bytes, u16> {
        let body = Body::from_stream(stream::iter(
            chunks
                .iter()
                .map(|chunk| Ok::<_, std::io::Error>(Bytes::from_static(chunk)))
                .collect::<Vec<_>>(),
        ));
        let mut headers = HeaderMap::new();
        if let Some(len) = declared {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        read_body(body, &headers, limit)
            .await
            .map_err(|err| err.status().as_u16())
    }

    #[tokio::test]
    async fn bodies_are_read_up_to_the_limit() {
        async fn check(
            chunks: &[&'static [u8]],
            declared: Option<u64>,
            limit: usize,
            expected: Result<&[u8], u16>,
        ) {
            let got = read(chunks, declared, limit).await;
            assert_eq!(
                got.as_deref().map_err(|s| *s),
                expected,
                "{chunks:?} {declared:?} {limit}"
            );
        }
        check(&[], None, 10, Ok(b"")).await;
        check(&[b"abc"], Some(3), 10, Ok(b"abc")).await;
        check(&[b"abc", b"def"], None, 10, Ok(b"abcdef")).await;
        check(&[b"abc", b"def", b"g"], Some(7), 7, Ok(b"abcdefg")).await;
        check(&[b"abcde", b"fghij"], None, 10, Ok(b"abcdefghij")).await;
        // Over the limit: by declaration, in the first chunk, or only after several.
        check(&[b"abc"], Some(11), 10, Err(413)).await;
        check(&[b"abcdefghijk"], None, 10, Err(413)).await;
        check(&[b"abcde", b"fghij", b"k"], None, 10, Err(413)).await;
    }

    #[tokio::test]
    async fn reading_stops_at_the_chunk_that_crosses_the_limit() {
        // An endless body: reading it whole would never finish.
        let endless = Body::from_stream(stream::repeat_with(|| {
            Ok::<_, std::io::Error>(Bytes::from_static(&[b' '; 1024]))
        }));
        let err = read_body(endless, &HeaderMap::new(), 100 * 1024)
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn a_broken_body_is_a_bad_request() {
        let broken = Body::from_stream(stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Err(std::io::Error::other("client went away")),
        ]));
        let err = read_body(broken, &HeaderMap::new(), 100).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
}
