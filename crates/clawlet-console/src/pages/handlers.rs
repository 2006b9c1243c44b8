//! The page routes: each reads the console's data, renders it, and maps a failure to an error
//! page. Forms that change state answer with a redirect (post/redirect/get), so a reload does not
//! repeat the action.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde::Deserialize;
use time::OffsetDateTime;

use super::query::{filter_pairs, link};
use super::{Frame, Notice};
use crate::auth::Session;
use crate::data::{BulkAction, Capabilities, EventFilter, ReplayTarget};
use crate::error::ConsoleError;
use crate::state::Console;

pub(super) fn routes() -> Router<Console> {
    Router::new()
        .route("/login", get(login))
        .route(super::STYLE_PATH, get(style))
        .route(super::SCRIPT_PATH, get(script))
        .route("/", get(overview))
        .route("/events", get(events))
        .route("/events/{id}", get(event))
        .route("/events/{id}/replay", post(replay_event))
        .route("/dead", get(dead))
        .route("/dead/{id}/replay", post(replay_dead))
        .route("/dead/bulk", post(bulk))
        .route("/tail", get(tail))
}

/// What an action did, carried through its redirect in the query string.
#[derive(Debug, Default, Deserialize)]
struct Done {
    replayed: Option<u64>,
    purged: Option<u64>,
}

impl Done {
    fn notice(&self) -> Option<Notice> {
        match (self.replayed, self.purged) {
            (Some(n), _) => Some(Notice::Replayed(n)),
            (None, Some(n)) => Some(Notice::Purged(n)),
            (None, None) => None,
        }
    }
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    error: Option<String>,
}

/// The request's shared page context, owned so that handlers can borrow a [`Frame`] from it.
struct Context {
    csrf: String,
    capabilities: Capabilities,
    notice: Option<Notice>,
}

impl Context {
    fn new(console: &Console, session: &Session, done: Option<&Done>) -> Self {
        Self {
            csrf: session.csrf_token().to_owned(),
            capabilities: console.capabilities(),
            notice: done.and_then(Done::notice),
        }
    }

    fn frame(&self) -> Frame<'_> {
        Frame {
            csrf: &self.csrf,
            capabilities: &self.capabilities,
            notice: self.notice,
            now: OffsetDateTime::now_utc(),
        }
    }

    fn page(&self, markup: Markup) -> Response {
        page(StatusCode::OK, markup)
    }

    fn fail(&self, status: StatusCode, message: &str) -> Response {
        page(
            status,
            super::error(Some(&self.frame()), status.as_u16(), message),
        )
    }

    fn failed(&self, err: &ConsoleError) -> Response {
        if let ConsoleError::Bus(e) = err {
            tracing::warn!(error = %e, "console page failed");
        }
        self.fail(err.status(), &err.public_message())
    }
}

fn page(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

async fn login(Query(query): Query<LoginQuery>) -> Response {
    let wrong = query.error.as_deref() == Some("token");
    page(StatusCode::OK, super::login(wrong))
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", super::STYLE_CSS)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", super::SCRIPT_JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Assets change only with the binary; revalidating is cheap on loopback.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn overview(
    State(console): State<Console>,
    session: Session,
    Query(done): Query<Done>,
) -> Response {
    let cx = Context::new(&console, &session, Some(&done));
    match console.overview().await {
        Ok(overview) => cx.page(super::overview::overview(&cx.frame(), &overview)),
        Err(err) => cx.failed(&err),
    }
}

async fn events(
    State(console): State<Console>,
    session: Session,
    filter: Result<Query<EventFilter>, QueryRejection>,
) -> Response {
    let cx = Context::new(&console, &session, None);
    let Query(filter) = match filter {
        Ok(filter) => filter,
        Err(rejection) => return cx.fail(StatusCode::BAD_REQUEST, &rejection.body_text()),
    };
    match console.events(&filter).await {
        Ok(page) => cx.page(super::events::events(&cx.frame(), &filter, &page)),
        Err(err) => cx.failed(&err),
    }
}

async fn event(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let cx = Context::new(&console, &session, Some(&done));
    match console.event(&id).await {
        Ok(Some(detail)) => cx.page(super::events::event(&cx.frame(), &detail)),
        Ok(None) => cx.fail(StatusCode::NOT_FOUND, "No event has this id."),
        Err(err) => cx.failed(&err),
    }
}

async fn dead(
    State(console): State<Console>,
    session: Session,
    filter: Result<Query<EventFilter>, QueryRejection>,
    Query(done): Query<Done>,
) -> Response {
    let cx = Context::new(&console, &session, Some(&done));
    let Query(filter) = match filter {
        Ok(filter) => filter,
        Err(rejection) => return cx.fail(StatusCode::BAD_REQUEST, &rejection.body_text()),
    };
    match console.dead_letters(&filter).await {
        Ok(page) => cx.page(super::dead::dead(&cx.frame(), &filter, &page, None)),
        Err(err) => cx.failed(&err),
    }
}

async fn tail(State(console): State<Console>, session: Session) -> Response {
    let cx = Context::new(&console, &session, None);
    cx.page(super::tail(&cx.frame()))
}

/// The replay forms' one field besides the CSRF token: the agent, empty for every route.
fn target(fields: &[(String, String)]) -> ReplayTarget {
    match field(fields, "agent") {
        Some(agent) if !agent.is_empty() => ReplayTarget::Agent(agent.to_owned()),
        _ => ReplayTarget::AllRoutes,
    }
}

async fn replay_event(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    match console.replay(&id, target(&fields)).await {
        Ok(n) => see_other(&link(
            &format!("/events/{id}"),
            &[("replayed", n.to_string())],
        )),
        Err(err) => Context::new(&console, &session, None).failed(&err),
    }
}

async fn replay_dead(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let fields = form_fields(&body);
    let target = target(&fields);
    let mut back = Vec::new();
    if let ReplayTarget::Agent(agent) = &target {
        back.push(("agent", agent.clone()));
    }
    match replay_dead_deliveries(&console, &id, target).await {
        Ok(n) => {
            back.push(("replayed", n.to_string()));
            see_other(&link("/dead", &back))
        }
        Err(err) => Context::new(&console, &session, None).failed(&err),
    }
}

/// A dead letter's replay sends it again only to the agents that gave up on it: an agent that
/// already took the event would otherwise get it twice. Where the backend can only replay to
/// every route, that is what happens (its notes say so).
async fn replay_dead_deliveries(
    console: &Console,
    id: &str,
    target: ReplayTarget,
) -> Result<u64, ConsoleError> {
    if target != ReplayTarget::AllRoutes || !console.capabilities().replay_to_agent {
        return console.replay(id, target).await;
    }
    let detail = console.event(id).await?.ok_or(ConsoleError::NotFound)?;
    let dead = detail
        .deliveries
        .iter()
        .filter(|d| d.status == clawlet_bus::DeliveryStatus::Dead);
    let mut replayed = 0;
    for delivery in dead {
        replayed += console
            .replay(id, ReplayTarget::Agent(delivery.agent.clone()))
            .await?;
    }
    Ok(replayed)
}

/// Both steps of a bulk action. Without `confirm` it shows how many dead letters the filter
/// selects and asks again; with it, it acts only if that count still holds.
async fn bulk(State(console): State<Console>, session: Session, body: Bytes) -> Response {
    let cx = Context::new(&console, &session, None);
    let fields = form_fields(&body);
    let action = match field(&fields, "action") {
        Some("replay") => BulkAction::Replay,
        Some("purge") => BulkAction::Purge,
        _ => {
            return cx.fail(
                StatusCode::BAD_REQUEST,
                "The action must be replay or purge.",
            );
        }
    };
    let filter = match filter_from_form(&fields) {
        Ok(filter) => filter,
        Err(message) => return cx.fail(StatusCode::BAD_REQUEST, &message),
    };
    let confirm = match field(&fields, "confirm").map(str::parse::<u64>) {
        None => None,
        Some(Ok(count)) => Some(count),
        Some(Err(_)) => {
            return cx.fail(StatusCode::BAD_REQUEST, "The confirmation is not a count.");
        }
    };
    let Some(confirm) = confirm else {
        let preview = match console.bulk_preview(action, &filter).await {
            Ok(preview) => preview,
            Err(err) => return cx.failed(&err),
        };
        return match console.dead_letters(&filter).await {
            Ok(page) => cx.page(super::dead::dead(
                &cx.frame(),
                &filter,
                &page,
                Some(&preview),
            )),
            Err(err) => cx.failed(&err),
        };
    };
    match console.bulk_run(action, &filter, confirm).await {
        Ok(n) => {
            let mut back = filter_pairs(&filter);
            back.push(match action {
                BulkAction::Replay => ("replayed", n.to_string()),
                BulkAction::Purge => ("purged", n.to_string()),
            });
            see_other(&link("/dead", &back))
        }
        Err(err) => cx.failed(&err),
    }
}

fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// A urlencoded form body as its pairs, in order.
fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The filter fields of a bulk form, read with the same rules as a listing's query string.
fn filter_from_form(fields: &[(String, String)]) -> Result<EventFilter, String> {
    const NAMES: [&str; 7] = [
        "handler",
        "type",
        "status",
        "agent",
        "from",
        "to",
        "delivery_id",
    ];
    let map: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .filter(|(k, _)| NAMES.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|err| err.to_string())
}
