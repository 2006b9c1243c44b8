//! Who may use the console, and which requests may change state.
//!
//! - The API takes `Authorization: Bearer <token>`, compared in constant time. A Bearer request
//!   carries no ambient credential a browser could send on another site's behalf, so it needs no
//!   CSRF token.
//! - The login form (`POST /login`, field `token`) opens a session: a random id kept in a
//!   server-side map with an expiry, sent back in an `HttpOnly; SameSite=Strict` cookie. The
//!   cookie never holds the token. A new token (reload) ends every session.
//! - A state-changing request authenticated by the cookie must come from this origin
//!   (`Sec-Fetch-Site`, else `Origin`, when the browser sends them) and carry the session's CSRF
//!   token, in the `X-CSRF-Token` header or the `csrf` form field (a synchronizer token).
//! - With `token: none` (loopback only), every request is let in as one anonymous session whose
//!   CSRF token is made at start: the origin and token checks still apply to changes.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::state::Console;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "clawlet_console";
/// The header a script sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field a page's form sends the CSRF token in.
pub const CSRF_FIELD: &str = "csrf";

/// How long a session lasts after login.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; the oldest goes first when a login finds the map full.
const MAX_SESSIONS: usize = 1024;
/// The largest form body read to find the CSRF field.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// How a request was let in; pages take it as an extractor to embed the CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    csrf: String,
    bearer: bool,
}

impl Session {
    /// The token forms must send back in the `csrf` field (or scripts in `X-CSRF-Token`).
    /// Empty for a Bearer request, which needs none.
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// Whether the request came with the Bearer token rather than a session cookie.
    pub fn is_bearer(&self) -> bool {
        self.bearer
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // The auth layer puts it on every request it lets through.
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(StatusCode::UNAUTHORIZED)
    }
}

struct Entry {
    csrf: String,
    expires: Instant,
    created: Instant,
}

/// Open sessions, by id, plus the anonymous one used with `token: none`.
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Entry>>,
    anonymous_csrf: String,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            anonymous_csrf: random_token(),
        }
    }
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a session; returns its id (the cookie's value).
    pub(crate) fn open(&self) -> String {
        let now = Instant::now();
        let id = random_token();
        let mut map = self.lock();
        map.retain(|_, e| e.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.created)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            id.clone(),
            Entry {
                csrf: random_token(),
                expires: now + SESSION_TTL,
                created: now,
            },
        );
        id
    }

    /// The CSRF token of a live session.
    fn csrf(&self, id: &str) -> Option<String> {
        let map = self.lock();
        map.get(id)
            .filter(|e| e.expires > Instant::now())
            .map(|e| e.csrf.clone())
    }

    pub(crate) fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| value.get(7..).unwrap_or_default())
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// Routes anyone may reach: the login form and the static assets (no data in them).
fn is_public(method: &Method, path: &str) -> bool {
    path == "/login" && (*method == Method::GET || *method == Method::POST)
        || path.starts_with("/assets/") && *method == Method::GET
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// What an unauthenticated request gets: 401 for the API, the login page for a page.
fn refuse(path: &str) -> Response {
    if path == "/api" || path.starts_with("/api/") {
        let body = serde_json::json!({ "error": "a valid admin token is required" });
        let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"clawlet-console\""),
        );
        response
    } else {
        Redirect::to("/login").into_response()
    }
}

fn forbidden(why: &'static str) -> Response {
    let body = serde_json::json!({ "error": why });
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

/// Whether the browser says the request comes from this origin. Requests without the
/// headers (non-browser clients, which carry no ambient cookie of a victim) go on to the token.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

/// The authentication and CSRF layer, over every route.
pub(crate) async fn guard(
    State(console): State<Console>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    if is_public(&method, &path) {
        if !is_safe(&method) && !same_origin(request.headers()) {
            return forbidden("cross-origin request refused");
        }
        return next.run(request).await;
    }
    let live = console.0.live.load_full();
    let session = match &live.token {
        None => Session {
            csrf: console.0.sessions.anonymous_csrf.clone(),
            bearer: false,
        },
        Some(token) => {
            if let Some(offered) = bearer(request.headers()) {
                if !token.matches(offered) {
                    return refuse(&path);
                }
                let mut request = request;
                request.extensions_mut().insert(Session {
                    csrf: String::new(),
                    bearer: true,
                });
                return next.run(request).await;
            }
            match session_cookie(request.headers()).and_then(|id| console.0.sessions.csrf(id)) {
                Some(csrf) => Session {
                    csrf,
                    bearer: false,
                },
                None => return refuse(&path),
            }
        }
    };
    let mut request = request;
    if !is_safe(&method) {
        if !same_origin(request.headers()) {
            return forbidden("cross-origin request refused");
        }
        let (checked, ok) = match check_csrf(request, &session.csrf).await {
            Ok(pair) => pair,
            Err(response) => return response,
        };
        if !ok {
            return forbidden("missing or wrong CSRF token");
        }
        request = checked;
    }
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// Finds the CSRF token in the header or, for a form, in its `csrf` field (the body is read and
/// put back for the handler).
async fn check_csrf(request: Request, expected: &str) -> Result<(Request, bool), Response> {
    let matches = |offered: &[u8]| -> bool {
        !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(offered))
    };
    if let Some(offered) = request.headers().get(CSRF_HEADER) {
        let ok = matches(offered.as_bytes());
        return Ok((request, ok));
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((request, false));
    }
    let (parts, body) = request.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
    let ok = form_urlencoded_field(&bytes, CSRF_FIELD).is_some_and(|v| matches(v.as_bytes()));
    Ok((Request::from_parts(parts, Body::from(bytes)), ok))
}

fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The login form's fields.
#[derive(serde::Deserialize)]
pub(crate) struct LoginForm {
    token: String,
}

/// `POST /login`: a right token opens a session and goes to the overview; a wrong one goes back
/// to the form with `?error=token`.
pub(crate) async fn login(
    State(console): State<Console>,
    axum::extract::Form(form): axum::extract::Form<LoginForm>,
) -> Response {
    let live = console.0.live.load_full();
    let accepted = live
        .token
        .as_ref()
        .is_none_or(|t| t.matches(form.token.as_bytes()));
    if !accepted {
        tracing::warn!("console login refused: wrong token");
        return Redirect::to("/login?error=token").into_response();
    }
    let id = console.0.sessions.open();
    let cookie = format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /logout`: ends the session and clears the cookie.
pub(crate) async fn logout(State(console): State<Console>, headers: HeaderMap) -> Response {
    if let Some(id) = session_cookie(&headers) {
        console.0.sessions.close(id);
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("clawlet_console=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}
