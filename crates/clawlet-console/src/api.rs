//! The router: the JSON API under `/api`, login and logout, the pages, and the layers every
//! route goes through (security headers outermost, then authentication and CSRF).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;

use crate::data::{BulkAction, BulkPreview, EventFilter, ReplayTarget};
use crate::error::ConsoleError;
use crate::state::Console;
use crate::tail::TailItem;

/// The largest request body any console route reads.
const MAX_BODY: usize = 64 * 1024;
/// How often an idle live tail gets a comment line, so that proxies keep it open and the page
/// learns quickly when it broke.
const HEARTBEAT: Duration = Duration::from_secs(15);

pub(crate) fn router(console: Console) -> Router {
    let api = Router::new()
        .route("/api/overview", get(overview))
        .route("/api/events", get(events))
        .route("/api/events/{id}", get(event))
        .route("/api/events/{id}/replay", post(replay))
        .route("/api/dead", get(dead))
        .route("/api/dead/replay", post(bulk_replay))
        .route("/api/dead/purge", post(bulk_purge))
        .route("/api/tail", get(tail))
        .route("/api/session", get(session))
        .route("/api/{*rest}", axum::routing::any(api_not_found))
        .route("/login", post(crate::auth::login))
        .route("/logout", post(crate::auth::logout));
    Router::new()
        .merge(crate::pages::routes())
        .merge(api)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(
            console.clone(),
            crate::auth::guard,
        ))
        .layer(middleware::from_fn(crate::security::headers))
        .with_state(console)
}

/// The session's CSRF token, for a script that sends `X-CSRF-Token` (a page has it in its
/// `csrf` fields already). Another origin cannot read this answer.
async fn session(session: crate::auth::Session) -> Response {
    Json(serde_json::json!({
        "csrf_token": session.csrf_token(),
        "bearer": session.is_bearer(),
    }))
    .into_response()
}

async fn api_not_found() -> ConsoleError {
    ConsoleError::NotFound
}

async fn overview(State(console): State<Console>) -> Result<Response, ConsoleError> {
    Ok(Json(console.overview().await?).into_response())
}

/// A query string the filter cannot take is a 400 naming the problem, as JSON.
fn filter(
    query: Result<Query<EventFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<EventFilter, ConsoleError> {
    query
        .map(|Query(f)| f)
        .map_err(|e| ConsoleError::BadRequest(e.body_text()))
}

async fn events(
    State(console): State<Console>,
    query: Result<Query<EventFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ConsoleError> {
    Ok(Json(console.events(&filter(query)?).await?).into_response())
}

async fn dead(
    State(console): State<Console>,
    query: Result<Query<EventFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ConsoleError> {
    Ok(Json(console.dead_letters(&filter(query)?).await?).into_response())
}

async fn event(
    State(console): State<Console>,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    match console.event(&id).await? {
        Some(detail) => Ok(Json(detail).into_response()),
        None => Err(ConsoleError::NotFound),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    #[serde(default)]
    agent: Option<String>,
}

/// A JSON body, or none at all (an empty body means the defaults).
fn json_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ConsoleError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ConsoleError::BadRequest(format!("bad JSON body: {e}")))
}

async fn replay(
    State(console): State<Console>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ConsoleError> {
    let body: ReplayBody = json_body(&body)?;
    let target = match body.agent.filter(|a| !a.is_empty()) {
        Some(agent) => ReplayTarget::Agent(agent),
        None => ReplayTarget::AllRoutes,
    };
    let requeued = console.replay(&id, target).await?;
    Ok(Json(serde_json::json!({ "requeued": requeued })).into_response())
}

/// A bulk action's body: the listing filters, and `confirm` for the second step.
#[derive(Debug, Default, Deserialize)]
struct BulkBody {
    #[serde(flatten)]
    filter: EventFilter,
    #[serde(default)]
    confirm: Option<u64>,
}

async fn bulk(console: Console, action: BulkAction, body: &[u8]) -> Result<Response, ConsoleError> {
    let body: BulkBody = json_body(body)?;
    match body.confirm {
        None => Ok(Json(console.bulk_preview(action, &body.filter).await?).into_response()),
        Some(confirm) => {
            let count = console.bulk_run(action, &body.filter, confirm).await?;
            Ok(Json(BulkPreview { action, count }).into_response())
        }
    }
}

async fn bulk_replay(
    State(console): State<Console>,
    body: axum::body::Bytes,
) -> Result<Response, ConsoleError> {
    bulk(console, BulkAction::Replay, &body).await
}

async fn bulk_purge(
    State(console): State<Console>,
    body: axum::body::Bytes,
) -> Result<Response, ConsoleError> {
    bulk(console, BulkAction::Purge, &body).await
}

/// The live tail over Server-Sent Events: `event` messages with a listing row, `lagged` when
/// the reader fell behind, and a comment every [`HEARTBEAT`].
async fn tail(
    State(console): State<Console>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = console.tail().map(|item| {
        Ok(match item {
            TailItem::Event(row) => Event::default()
                .event("event")
                .id(row.id.clone())
                .json_data(&row)
                .unwrap_or_else(|_| Event::default().comment("unserialisable event")),
            TailItem::Lagged(n) => Event::default().event("lagged").data(n.to_string()),
        })
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
}
