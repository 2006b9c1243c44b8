//! The pages in-process, through the whole router (auth, CSRF and security layers included):
//! what a browser gets for each route, before and after signing in.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use clawlet_bus::{Backend, Bus, BusOptions};
use clawlet_console::{AdminToken, Console, ConsoleOptions, SESSION_COOKIE};
use http_body_util::BodyExt;
use tower::ServiceExt;

const TOKEN: &str = "pages-it-admin-token";

async fn app() -> Router {
    let bus = Bus::open(BusOptions::new(Backend::Memory))
        .await
        .expect("a memory bus");
    let mut options = ConsoleOptions::new(bus, AdminToken::new(TOKEN));
    options.handlers = vec!["github".to_owned()];
    options.agents = vec!["inbox".to_owned()];
    clawlet_console::router(Console::new(options))
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn call(app: &Router, request: Request<Body>) -> Reply {
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("the router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::empty()).unwrap()
}

fn post_form(path: &str, cookie: Option<&str>, form: &str) -> Request<Body> {
    let mut request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::from(form.to_owned())).unwrap()
}

/// Signs in through the form; returns the cookie and the CSRF token the pages carry.
async fn sign_in(app: &Router) -> (String, String) {
    let reply = call(app, post_form("/login", None, &format!("token={TOKEN}"))).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let set_cookie = reply.headers[header::SET_COOKIE].to_str().unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    assert!(
        cookie.starts_with(&format!("{SESSION_COOKIE}=")),
        "{set_cookie}"
    );
    let page = call(app, get("/tail", Some(&cookie))).await;
    let marker = r#"name="csrf" value=""#;
    let start = page
        .body
        .find(marker)
        .expect("the page carries a CSRF field")
        + marker.len();
    let csrf = page.body[start..start + page.body[start..].find('"').unwrap()].to_owned();
    assert!(!csrf.is_empty());
    (cookie, csrf)
}

#[tokio::test]
async fn without_a_session_every_page_leads_to_the_login_form() {
    let app = app().await;
    for path in ["/", "/events", "/events/some-id", "/dead", "/tail"] {
        let reply = call(&app, get(path, None)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(reply.headers[header::LOCATION], "/login", "{path}");
    }
    let login = call(&app, get("/login", None)).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(
        login
            .body
            .contains(r#"<form method="post" action="/login">"#),
        "{}",
        login.body
    );
    assert!(!login.body.contains("login-error"));
    let refused = call(&app, get("/login?error=token", None)).await;
    assert!(refused.body.contains("That token is not the admin token."));
}

#[tokio::test]
async fn the_assets_are_embedded_and_served_with_their_types() {
    let app = app().await;
    let check = |path: &'static str, content_type: &'static str, needle: &'static str| {
        let app = app.clone();
        async move {
            let reply = call(&app, get(path, None)).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}");
            assert_eq!(reply.headers[header::CONTENT_TYPE], content_type, "{path}");
            assert!(reply.body.contains(needle), "{path}");
        }
    };
    check("/assets/console.css", "text/css; charset=utf-8", "svg.plot").await;
    check(
        "/assets/console.js",
        "text/javascript; charset=utf-8",
        "EventSource",
    )
    .await;
}

#[tokio::test]
async fn signed_in_every_page_renders_under_the_strict_policy() {
    let app = app().await;
    let (cookie, _) = sign_in(&app).await;
    for (path, heading) in [
        ("/", "<h1>Overview</h1>"),
        ("/events", "<h1>Events</h1>"),
        (
            "/events?handler=github&status=dead&from=2026-01-01T00:00",
            "<h1>Events</h1>",
        ),
        ("/dead", "<h1>Dead letters</h1>"),
        ("/tail", "<h1>Live tail</h1>"),
    ] {
        let reply = call(&app, get(path, Some(&cookie))).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        assert!(
            reply.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        let csp = reply.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(reply.body.contains(heading), "{path}: {}", reply.body);
        assert!(reply.body.contains("github") || path != "/", "{path}");
    }
}

#[tokio::test]
async fn a_bad_filter_or_an_unknown_event_is_an_error_page_that_escapes_the_input() {
    let app = app().await;
    let (cookie, _) = sign_in(&app).await;
    let reply = call(&app, get("/events?status=%3Cb%3Ebold", Some(&cookie))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("&lt;b&gt;bold"), "{}", reply.body);
    assert!(!reply.body.contains("<b>bold"), "{}", reply.body);
    let reply = call(&app, get("/events/no-such-event", Some(&cookie))).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(
        reply.body.contains("No event has this id."),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn a_form_post_without_the_csrf_token_is_refused_and_a_bulk_action_asks_first() {
    let app = app().await;
    let (cookie, csrf) = sign_in(&app).await;
    for form in [
        "action=purge&confirm=0",
        "action=purge&confirm=0&csrf=wrong",
    ] {
        let reply = call(&app, post_form("/dead/bulk", Some(&cookie), form)).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{form}: {}",
            reply.body
        );
    }
    // With the token, the first step only asks.
    let form = format!("csrf={csrf}&action=purge");
    let reply = call(&app, post_form("/dead/bulk", Some(&cookie), &form)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body.contains("nothing to purge"), "{}", reply.body);
    // A count that no longer holds is refused rather than acted on.
    let form = format!("csrf={csrf}&action=replay&confirm=5");
    let reply = call(&app, post_form("/dead/bulk", Some(&cookie), &form)).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    let form = format!("csrf={csrf}&action=explode");
    let reply = call(&app, post_form("/dead/bulk", Some(&cookie), &form)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
}
