//! What happens to one request, cheapest check first and nothing parsed before it is verified:
//! client IP (403 when a trusted proxy names none) → allowlist (403) → rate limit (429) → body
//! size (413) → body budget (503) → signature (401) → parse (400/415) → event filter (200
//! ignored) → publish (200 accepted/duplicate, 503). A batch (SendGrid's array of events) is
//! filtered and published per event (`batch.rs`).

mod batch;

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use clawlet_bus::Published;
use clawlet_events::Source;
use clawlet_ratelimit::Refusal;
use http_body_util::BodyExt;
use tracing::Instrument as _;

use crate::app::{App, Handler, Runtime};
use crate::budget::{BodyBudget, Reservation};
use crate::client_ip;
use crate::error::ApiError;
use crate::handshake::{self, Reply};
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
    /// A sender's registration or liveness handshake, answered as it expects, never queued.
    Handshake(Reply),
    /// A batch whose every selected event is stored now or was before.
    Batch(batch::Outcome),
}

/// What the request log line says besides status and latency.
#[derive(Default)]
struct Trail {
    client_ip: Option<IpAddr>,
    /// The trusted proxy a request came through when it named no usable client address.
    proxy: Option<IpAddr>,
    /// `ok`, `off` (unverified handler) or the failure reason; `None` before the check ran.
    verification: Option<&'static str>,
    event_type: Option<String>,
    delivery_id: Option<String>,
    /// How many events a batch held; its first event's type and id are the two above.
    batch_size: Option<usize>,
    body: Option<Bytes>,
}

pub(crate) async fn receive(State(app): State<App>, request: Request) -> Response {
    let started = Instant::now();
    let runtime = app.0.runtime.load_full();
    let Some(handler) = runtime.by_path.get(request.uri().path()).cloned() else {
        // Counted by method only: a label per path would let anyone grow the registry without
        // bound. The path goes to the debug log, shortened, for the operator who looks.
        let method = method_label(request.method());
        app.0.metrics.unmatched(method);
        let path = request.uri().path();
        let shown = path
            .get(..path.floor_char_boundary(LOGGED_PATH_MAX))
            .unwrap_or("");
        tracing::debug!(
            target: "clawlet_http::request",
            method,
            path = shown,
            "no handler at this path: answered 404"
        );
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
    // A sender that registers by `GET` passes the same allowlist and rate limit as a delivery.
    let get_handshake = request.method() == Method::GET
        && handler
            .spec
            .verifier
            .handshake()
            .is_some_and(|h| h.is_get());
    let result = if request.method() == Method::POST || get_handshake {
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
    let (response, outcome, error) = match result {
        Ok(done) => {
            let word = done.word();
            (render(done, kind), Some(word), None)
        }
        Err(err) => (err.render(kind), None, Some(err)),
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
    app.0.metrics.answered(
        &handler.spec.name,
        match (outcome, &error) {
            (Some(word), _) => Ok(word),
            (None, Some(err)) => Err(err.reason()),
            (None, None) => Err("unknown"),
        },
    );
    if runtime.logging.enabled {
        // A 503 is the one answer an operator must act on (the queue is full or storage
        // fails), so it is a warning; under a flood, one line a second says how many more
        // there were, and the rest go to debug.
        let level = if status == StatusCode::SERVICE_UNAVAILABLE {
            match app.0.unavailable_log.admit(Instant::now()) {
                Some(suppressed) => Level::Warn { suppressed },
                None => Level::Debug,
            }
        } else {
            Level::Info
        };
        log(
            &handler,
            &runtime,
            Line {
                status,
                latency,
                outcome,
                error: error.as_ref(),
                level,
            },
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

    let client = match client_ip::resolve(peer, &parts.headers, &runtime.trusted_proxies) {
        Ok(client) => client,
        Err(why) => {
            trail.proxy = Some(peer);
            metrics.client_unknown(name, why.code());
            return Err(ApiError::ClientUnknown(why));
        }
    };
    trail.client_ip = Some(client);
    if !handler.allowed_ips.allows(client) {
        metrics.allowlist_refused(name);
        return Err(ApiError::Forbidden);
    }
    let rate_key = runtime.ipv6_prefix.key(client);
    // A newcomer refused only because a flood spent the quota that newcomers share at a full
    // key table has done nothing wrong yet: a signed delivery is read and verified all the same
    // (the body budget bounds what that costs), and refused only if it does not verify. A
    // handler that verifies nothing has no such proof to offer.
    let mut overflowed = None;
    if let Some(limiter) = &handler.limiter {
        match limiter.check(&rate_key) {
            Ok(()) => {}
            Err(Refusal::Overflowed(retry)) if handler.spec.verifier.is_verified() => {
                overflowed = Some(retry);
            }
            Err(refusal) => {
                metrics.rate_limited(name);
                return Err(ApiError::RateLimited {
                    retry_after: refusal.retry().after,
                });
            }
        }
    }

    if let Some(shake) = handler.spec.verifier.handshake()
        && let Some(answer) = handshake::from_query(shake, &parts.method, &parts.uri)
    {
        // Unsigned: nothing vouches for a newcomer the flood left without a quota of its own.
        if let Some(retry) = overflowed {
            metrics.rate_limited(name);
            return Err(ApiError::RateLimited {
                retry_after: retry.after,
            });
        }
        let reply = answer?;
        metrics.handshake(name, shake.label());
        return Ok(Done::Handshake(reply));
    }
    if parts.method != Method::POST {
        return Err(ApiError::MethodNotAllowed);
    }

    // `serve` hands every request the server's budget; a router served some other way has none.
    let budget = parts.extensions.get::<BodyBudget>().unwrap_or(&UNBUDGETED);
    // Held until `run` returns: the body, which the envelope's payload shares, lives until then.
    let (body, _reservation) =
        match read_body(body, &parts.headers, runtime.max_body_bytes, budget).await {
            Ok(read) => read,
            Err(err) => {
                if matches!(err, ApiError::BodyBudget) {
                    metrics.body_budget_refused(name);
                }
                return Err(err);
            }
        };
    if runtime.logging.include_payload {
        trail.body = Some(body.clone());
    }

    if let Err(err) = handler.spec.verifier.verify(
        &parts.headers,
        &body,
        (app.0.clock)(),
        parts.method.as_str(),
        parts.uri.query(),
    ) {
        metrics.verification_failure(name, err.code());
        trail.verification = Some(err.code());
        if let Some(retry) = overflowed {
            metrics.rate_limited(name);
            return Err(ApiError::RateLimited {
                retry_after: retry.after,
            });
        }
        return Err(ApiError::Unauthorized(err));
    }
    trail.verification = Some(if handler.spec.verifier.is_verified() {
        // An authentic sender keeps a quota of its own even while a flood fills the key table.
        if let Some(limiter) = &handler.limiter {
            limiter.admit(&rate_key);
        }
        "ok"
    } else {
        "off"
    });

    if let Some(shake) = handler.spec.verifier.handshake()
        && let Some(answer) = handshake::from_body(shake, &body)
    {
        let reply = answer?;
        metrics.handshake(name, shake.label());
        return Ok(Done::Handshake(reply));
    }

    let header_pairs: Vec<(&str, &[u8])> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    let parsed = clawlet_events::parse_batch(&clawlet_events::Request {
        handler: name,
        source: handler.spec.source,
        headers: &header_pairs,
        body: &body,
        received_at: time::OffsetDateTime::now_utc(),
        custom: &handler.spec.custom,
    })
    .map_err(ApiError::Parse)?;
    let envelope = match parsed {
        clawlet_events::Parsed::One(envelope) => envelope,
        clawlet_events::Parsed::Batch(envelopes) => {
            drop(body);
            return batch::publish(app, handler, envelopes, trail).await;
        }
    };
    trail.event_type = Some(envelope.event_type.clone());
    trail.delivery_id = Some(envelope.delivery_id.clone());

    if handler.spec.source == Source::Github && envelope.event_type == "ping" {
        return Ok(Done::Pong);
    }
    // The handler's `events`, read as routes read theirs.
    if !clawlet_events::selects(
        &handler.spec.events,
        &envelope.event_type,
        envelope.action.as_deref(),
    ) {
        metrics.ignored(name);
        return Ok(Done::Ignored);
    }

    // The envelope's payload shares the body's buffer; the bus writes it from there.
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

/// `len` rounded up to a power of two, but never past `ceiling` (nor below `len`).
fn rounded_up(len: usize, ceiling: usize) -> usize {
    len.checked_next_power_of_two()
        .unwrap_or(len)
        .min(ceiling)
        .max(len)
}

/// Grows `held` to cover `need` bytes: to [`rounded_up`], else to exactly `need`. False when the
/// budget has no room even for that.
fn reserve_up_to(held: &mut Reservation<'_>, need: usize, ceiling: usize) -> bool {
    let have = held.bytes();
    if need as u64 <= have {
        return true;
    }
    held.grow(rounded_up(need, ceiling) as u64 - have) || held.grow(need as u64 - have)
}

/// The budget of a request that `serve` did not hand one: no bound beyond `max_body_bytes`.
static UNBUDGETED: LazyLock<BodyBudget> = LazyLock::new(|| BodyBudget::new(u64::MAX));

/// Reads at most `limit` bytes: a declared length over the limit is refused before reading,
/// and a chunked body is abandoned as soon as it passes the limit.
///
/// The bytes come out of `budget` as they arrive, never ahead of them: a sender that declares a
/// large body and then stalls holds only what it sent. A declared length that does not fit in
/// what the budget has free right now is refused (503) before a byte is read; a frame that does
/// not fit stops the read and is refused the same way. The reservation counts the memory the
/// body occupies: the first frame, then the bytes in the buffer frames are joined in (rounded
/// up to a power of two, never past the declared length or `limit`), and while a buffer is
/// copied into a bigger one, both. A declared length sizes that buffer once, so that a large
/// body is copied once and not at every doubling. It goes back when the returned guard is
/// dropped.
pub(crate) async fn read_body<'b>(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    budget: &'b BodyBudget,
) -> Result<(Bytes, Reservation<'b>), ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    if !budget.has_free(declared.unwrap_or(0)) {
        return Err(ApiError::BodyBudget);
    }
    let mut held = budget.hold();
    // The most a joined buffer is ever sized to: the declared length, else the limit.
    let ceiling = declared
        .and_then(|len| usize::try_from(len).ok())
        .map_or(limit, |len| len.min(limit));
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
        if let Some(buf) = joined.as_mut()
            && buf.capacity() - buf.len() >= data.len()
        {
            // The buffer has room, sized from the declared length: the reservation follows the
            // bytes written into it (in powers of two, as for a buffer that grows).
            if !reserve_up_to(&mut held, total, ceiling) {
                return Err(ApiError::BodyBudget);
            }
            buf.extend_from_slice(&data);
            continue;
        }
        if first.is_none() && joined.is_none() {
            if !held.grow(data.len() as u64) {
                return Err(ApiError::BodyBudget);
            }
            first = Some(data);
            continue;
        }
        // A bigger buffer, and the copy into it: the old buffer (or first frame) is still held
        // while the new one fills, so both are reserved until the copy is done. Reservations are
        // powers of two (less than twice what arrived), so that a body of many small frames is
        // not reserved again at every frame. A body whose length was declared gets its whole
        // buffer at once and is never copied again: capacity nothing was written to is address
        // space, not memory, and the reservation still follows what arrives. A chunked body's
        // buffer grows by powers of two, and a buffer freed by one request suits the next.
        let old = held.bytes();
        let rounded = rounded_up(total, ceiling);
        if !held.grow(rounded as u64) && !held.grow(total as u64) {
            return Err(ApiError::BodyBudget);
        }
        let capacity = if declared.is_some() {
            ceiling
        } else {
            usize::try_from(held.bytes() - old).unwrap_or(total)
        };
        let mut buf = BytesMut::with_capacity(capacity.max(total));
        if let Some(head) = first.take() {
            buf.extend_from_slice(&head);
        }
        if let Some(previous) = joined.take() {
            buf.extend_from_slice(&previous);
        }
        buf.extend_from_slice(&data);
        joined = Some(buf);
        held.release(old);
    }
    let body = match (first, joined) {
        (_, Some(buf)) => buf.freeze(),
        (Some(head), None) => head,
        (None, None) => Bytes::new(),
    };
    Ok((body, held))
}

impl Done {
    /// The word the client reads in `status`, and the log line's `outcome`.
    fn word(&self) -> &'static str {
        match self {
            Self::Accepted(_) => "accepted",
            Self::Duplicate(_) => "duplicate",
            Self::Ignored => "ignored",
            Self::Pong => "pong",
            Self::Handshake(_) => "handshake",
            Self::Batch(outcome) => outcome.word(),
        }
    }

    fn event_id(&self) -> Option<&String> {
        match self {
            Self::Accepted(id) | Self::Duplicate(id) => Some(id),
            Self::Ignored | Self::Pong | Self::Handshake(_) | Self::Batch(_) => None,
        }
    }
}

/// Longest path prefix written to the debug line of a 404.
const LOGGED_PATH_MAX: usize = 200;

/// A bounded label for a request method: the standard ones by name, anything else `other`.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::PATCH, "PATCH"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("other", |(_, label)| label)
}

/// Milliseconds with two decimals (`0.91`), which is all a log reader uses.
fn rounded_ms(latency: Duration) -> f64 {
    (latency.as_secs_f64() * 100_000.0).round() / 100.0
}

/// At most one warning a second, counting the lines it held back.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    state: std::sync::Mutex<ThrottleState>,
}

#[derive(Debug, Default)]
struct ThrottleState {
    last: Option<Instant>,
    suppressed: u64,
}

/// The shortest gap between two throttled warnings.
const THROTTLE_EVERY: Duration = Duration::from_secs(1);

impl Throttle {
    /// `Some(held back since the last warning)` when a warning may be written at `now`;
    /// `None` (and one more held back) otherwise.
    pub(crate) fn admit(&self, now: Instant) -> Option<u64> {
        // A poisoned lock only means a panic elsewhere mid-update of two counters.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match state.last {
            Some(last) if now.saturating_duration_since(last) < THROTTLE_EVERY => {
                state.suppressed += 1;
                None
            }
            _ => {
                state.last = Some(now);
                Some(std::mem::take(&mut state.suppressed))
            }
        }
    }
}

/// The level of one request line.
#[derive(Debug, Clone, Copy)]
enum Level {
    Debug,
    Info,
    /// With how many such lines went to debug since the last warning.
    Warn {
        suppressed: u64,
    },
}

/// What the request line says about the answer.
struct Line<'a> {
    status: StatusCode,
    latency: Duration,
    /// `accepted`, `duplicate`, `ignored` or `pong` for a 200; `None` for a refusal.
    outcome: Option<&'static str>,
    error: Option<&'a ApiError>,
    level: Level,
}

fn render(done: Done, kind: ResponseType) -> Response {
    let done = match done {
        Done::Handshake(reply) => return reply.into_response(),
        Done::Batch(outcome) => return outcome.render(kind),
        other => other,
    };
    let (status, event_id) = (done.word(), done.event_id());
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
    line: Line<'_>,
    trail: &Trail,
    headers: Option<&HeaderMap>,
) {
    let headers = headers.map(|headers| redacted_headers(headers, &handler.redacted));
    let payload = trail
        .body
        .as_ref()
        .filter(|_| runtime.logging.include_payload)
        .map(|body| String::from_utf8_lossy(body).into_owned());
    let suppressed = match line.level {
        Level::Warn { suppressed } if suppressed > 0 => Some(suppressed),
        _ => None,
    };
    // A callsite's level is fixed, so each level is its own copy of the one line.
    macro_rules! request_line {
        ($level:expr) => {
            tracing::event!(
                target: "clawlet_http::request",
                $level,
                handler = handler.spec.name.as_str(),
                status = line.status.as_u16(),
                outcome = line.outcome,
                event_type = trail.event_type.as_deref(),
                delivery_id = trail.delivery_id.as_deref(),
                batch_size = trail.batch_size,
                client_ip = trail.client_ip.map(tracing::field::display),
                proxy = trail.proxy.map(tracing::field::display),
                latency_ms = rounded_ms(line.latency),
                reason = line.error.map(ApiError::reason),
                suppressed_since_last = suppressed,
                headers = headers.as_deref(),
                payload = payload.as_deref(),
                "webhook request"
            )
        };
    }
    match line.level {
        Level::Debug => request_line!(tracing::Level::DEBUG),
        Level::Info => request_line!(tracing::Level::INFO),
        Level::Warn { .. } => request_line!(tracing::Level::WARN),
    }
}

/// Whether a header's value must never be logged: its name marks a credential
/// ([`clawlet_events::is_credential_header`], shared with the operator console), or it is one of
/// the handler's own signature headers (`also`), whatever it is called.
pub(crate) fn is_credential(name: &HeaderName, also: &[HeaderName]) -> bool {
    clawlet_events::is_credential_header(name.as_str()) || also.contains(name)
}

/// `name: value` pairs joined by `; `, with credentials and signatures as `[redacted]`.
pub(crate) fn redacted_headers(headers: &HeaderMap, also: &[HeaderName]) -> String {
    let mut out = String::new();
    for (name, value) in headers {
        if !out.is_empty() {
            out.push_str("; ");
        }
        let shown = if is_credential(name, also) {
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

    #[test]
    fn latency_is_logged_with_two_decimals() {
        for (micros, ms) in [
            (910, 0.91),
            (911, 0.91),
            (915, 0.92),
            (0, 0.0),
            (12_345_678, 12_345.68),
        ] {
            assert_eq!(
                rounded_ms(Duration::from_micros(micros)).to_string(),
                ms.to_string(),
                "{micros} µs"
            );
        }
        assert_eq!(
            rounded_ms(Duration::from_nanos(910_900)).to_string(),
            "0.91"
        );
    }

    #[test]
    fn method_labels_are_a_fixed_set() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::POST), "POST");
        let custom = Method::from_bytes(b"X-ANYTHING-A-CLIENT-LIKES").unwrap();
        assert_eq!(method_label(&custom), "other");
    }

    /// One warning a second: the requests in between are counted, and the next warning says
    /// how many there were.
    #[test]
    fn the_throttle_admits_one_warning_a_second_and_counts_the_rest() {
        let throttle = Throttle::default();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(throttle.admit(at(0)), Some(0));
        assert_eq!(throttle.admit(at(10)), None);
        assert_eq!(throttle.admit(at(999)), None);
        assert_eq!(throttle.admit(at(1000)), Some(2));
        assert_eq!(throttle.admit(at(1500)), None);
        assert_eq!(throttle.admit(at(5000)), Some(1));
        assert_eq!(throttle.admit(at(6000)), Some(0));
    }

    #[test]
    fn credentials_are_recognised_by_name() {
        let own = [HeaderName::from_static("x-my-check")];
        let check = |name: &str, expected: bool| {
            let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
            assert_eq!(is_credential(&name, &own), expected, "{name}");
        };
        for (name, expected) in [
            ("Authorization", true),
            ("Proxy-Authorization", true),
            ("Cookie", true),
            ("Set-Cookie", true),
            ("X-Hub-Signature", true),
            ("X-Hub-Signature-256", true),
            ("Stripe-Signature", true),
            ("Webhook-Signature", true),
            ("Svix-Signature", true),
            ("X-Api-Key", true),
            ("X-API-KEY", true),
            ("X-Gitlab-Token", true),
            ("X-Shopify-Hmac-Sha256", true),
            ("X-Hmac", true),
            ("X-Line-Signature", true),
            ("X-Request-Signed", true),
            ("X-Sign", true),
            ("X-Amz-Credential", true),
            ("X-Credentials", true),
            ("X-Session-Id", true),
            ("Session", true),
            ("X-Auth-Token", true),
            ("X-Client-Secret", true),
            ("X-Password", true),
            ("Api-Keys", true),
            ("X-Twilio-Signature", true),
            ("X-My-Check", true),
            // Not credentials: shown as sent.
            ("Content-Type", false),
            ("User-Agent", false),
            ("X-GitHub-Event", false),
            ("X-GitHub-Delivery", false),
            ("Webhook-Id", false),
            ("Keep-Alive", false),
            ("X-Forwarded-For", false),
        ] {
            check(name, expected);
        }
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
            ("x-api-key", "k-123"),
            ("x-gitlab-token", "glt-123"),
            ("x-my-check", "deadbeef"),
            ("x-github-event", "push"),
        ] {
            headers.insert(HeaderName::from_static(name), value.parse().unwrap());
        }
        assert_eq!(
            redacted_headers(&headers, &[HeaderName::from_static("x-my-check")]),
            "content-type: application/json; authorization: [redacted]; cookie: [redacted]; \
             x-hub-signature-256: [redacted]; stripe-signature: [redacted]; \
             webhook-signature: [redacted]; x-api-key: [redacted]; x-gitlab-token: [redacted]; \
             x-my-check: [redacted]; x-github-event: push"
        );
    }

    async fn read(
        chunks: &[&'static [u8]],
        declared: Option<u64>,
        limit: usize,
    ) -> Result<Bytes, u16> {
        read_within(chunks, declared, limit, &BodyBudget::new(u64::MAX)).await
    }

    async fn read_within(
        chunks: &[&'static [u8]],
        declared: Option<u64>,
        limit: usize,
        budget: &BodyBudget,
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
        read_body(body, &headers, limit, budget)
            .await
            .map(|(body, _held)| body)
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
        let err = read_body(endless, &HeaderMap::new(), 100 * 1024, &UNBUDGETED)
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
        let err = read_body(broken, &HeaderMap::new(), 100, &UNBUDGETED)
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn bodies_are_read_within_the_budget() {
        async fn check(
            chunks: &[&'static [u8]],
            declared: Option<u64>,
            budget: u64,
            expected: Result<&[u8], u16>,
        ) {
            let budget = BodyBudget::new(budget);
            let got = read_within(chunks, declared, 100, &budget).await;
            assert_eq!(
                got.as_deref().map_err(|s| *s),
                expected,
                "{chunks:?} {declared:?}"
            );
            assert_eq!(budget.used(), 0, "the reservation outlived the read");
        }
        check(&[b"abcdef"], Some(6), 6, Ok(b"abcdef")).await;
        check(&[], None, 0, Ok(b"")).await;
        // Joining two frames holds the first while the copy fills: 3 + 6.
        check(&[b"abc", b"def"], None, 9, Ok(b"abcdef")).await;
        check(&[b"abc", b"def"], None, 8, Err(503)).await;
        // When the doubled buffer (4 + 8) does not fit, the exact one (4 + 5) still may.
        check(&[b"ab", b"cd", b"e"], None, 12, Ok(b"abcde")).await;
        check(&[b"ab", b"cd", b"e"], None, 9, Ok(b"abcde")).await;
        check(&[b"ab", b"cd", b"e"], None, 8, Err(503)).await;
        // A declared length sizes the buffer once, at the second frame (the first, 2, and the
        // 4 copied, at most 6 held then); after that it is written in place, never copied again.
        check(&[b"ab", b"cd", b"ef"], Some(6), 6, Ok(b"abcdef")).await;
        check(&[b"ab", b"cd", b"ef"], Some(6), 5, Err(503)).await;
        let bytes: &[&'static [u8]] = &[b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h"];
        check(bytes, Some(8), 8, Ok(b"abcdefgh")).await;
        // Without one, the buffer doubles and each copy holds both: 4 + 8 at the last.
        check(bytes, None, 12, Ok(b"abcdefgh")).await;
        check(bytes, None, 11, Err(503)).await;
        // A declared length over the budget is refused before a byte is read.
        check(&[b"abcdefg"], Some(7), 6, Err(503)).await;
        // A chunked body is refused at the chunk that does not fit.
        check(&[b"abc", b"defg"], None, 6, Err(503)).await;
        // The body limit still comes first.
        check(&[b"abc"], Some(101), 6, Err(413)).await;
    }

    /// A sender that declared a large body holds only the bytes it sent so far: the rest of
    /// the budget stays free for others while it stalls.
    #[tokio::test]
    async fn a_declared_length_is_not_reserved_before_it_arrives() {
        let budget = BodyBudget::new(100);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        let body = Body::from_stream(tokio_stream_from(rx));
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(90u64));
        let reading = tokio::spawn({
            let budget = budget.clone();
            async move {
                read_body(body, &headers, 1_000, &budget)
                    .await
                    .map(|(body, _held)| body)
                    .map_err(|err| err.status())
            }
        });
        tx.send(Ok(Bytes::from_static(&[b'a'; 10]))).await.unwrap();
        // Until the first frame has been read, nothing at all is held.
        let deadline = Instant::now() + Duration::from_secs(20);
        while budget.used() == 0 {
            assert!(Instant::now() < deadline, "the first frame was never read");
            tokio::task::yield_now().await;
        }
        assert_eq!(budget.used(), 10, "only what arrived is held");
        assert!(budget.has_free(90));
        tx.send(Ok(Bytes::from_static(&[b'b'; 80]))).await.unwrap();
        drop(tx);
        let body = reading.await.unwrap().unwrap();
        assert_eq!(body.len(), 90);
        assert_eq!(budget.used(), 0);
    }

    /// The receiving end of a channel as a body stream.
    fn tokio_stream_from(
        rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
        stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
    }

    #[tokio::test]
    async fn a_declared_body_over_the_budget_is_not_read() {
        // A body that fails when read: refusing it must not touch it.
        let untouchable = Body::from_stream(stream::iter(vec![Err::<Bytes, _>(
            std::io::Error::other("read"),
        )]));
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(50u64));
        let budget = BodyBudget::new(100);
        let held = budget.reserve(60).unwrap();
        let err = read_body(untouchable, &headers, 1_000, &budget)
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(budget.used(), 60);
        // What is read is held until the guard goes.
        drop(held);
        let (body, guard) = read_body(Body::from("0123456789"), &HeaderMap::new(), 1_000, &budget)
            .await
            .unwrap();
        assert_eq!(&body[..], b"0123456789");
        assert_eq!(budget.used(), 10);
        drop(guard);
        assert_eq!(budget.used(), 0);
    }
}
