//! The JSON API and the auth layer over it.

use axum::http::{HeaderValue, Method, StatusCode, header};
use futures_util::StreamExt;

use super::*;

/// Every route that needs the token, with a body where it takes one.
const PROTECTED: &[(&str, &str, &str)] = &[
    ("GET", "/api/overview", ""),
    ("GET", "/api/events", ""),
    ("GET", "/api/events/some-id", ""),
    ("POST", "/api/events/some-id/replay", "{}"),
    ("GET", "/api/dead", ""),
    ("POST", "/api/dead/replay", "{}"),
    ("POST", "/api/dead/purge", "{}"),
    ("GET", "/api/tail", ""),
    ("GET", "/api/session", ""),
    ("GET", "/api/nothing-here", ""),
    ("POST", "/logout", ""),
];

#[tokio::test]
async fn every_endpoint_refuses_a_missing_or_wrong_token() {
    let w = world(false, None).await;
    let wrong = format!("Bearer {TOKEN}x");
    let cases = [
        None,
        Some("Bearer "),
        Some(wrong.as_str()),
        Some("Basic YWRtaW46YWRtaW4="),
    ];
    for (method, path, body) in PROTECTED {
        for auth in cases {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let response = send(&w.console, request(method.clone(), path, auth, body)).await;
            let status = response.status();
            if path.starts_with("/api") {
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} with {auth:?}"
                );
                assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
            } else {
                assert_eq!(
                    status,
                    StatusCode::SEE_OTHER,
                    "{method} {path} with {auth:?}"
                );
                assert_eq!(response.headers()[header::LOCATION], "/login");
            }
            assert!(!text(response).await.contains(TOKEN));
        }
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let w = world(false, None).await;
    let requests = [
        request(Method::GET, "/api/overview", None, ""),
        request(Method::GET, "/api/overview", Some(&bearer()), ""),
        request(Method::GET, "/api/events/missing", Some(&bearer()), ""),
        request(Method::GET, "/login", None, ""),
        request(Method::GET, "/", None, ""),
    ];
    for r in requests {
        let path = r.uri().path().to_owned();
        let response = send(&w.console, r).await;
        let h = response.headers();
        assert_eq!(
            h[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "{path}"
        );
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer", "{path}");
        assert_eq!(h[header::CACHE_CONTROL], "no-store", "{path}");
    }
}

fn form(path: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::HOST, "console.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// Logs in through the form; returns the `Cookie` header value.
async fn login(console: &Console) -> String {
    let response = send(console, form("/login", &format!("token={TOKEN}"))).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/");
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains(TOKEN),
        "the cookie holds a session, not the token"
    );
    cookie.split(';').next().unwrap().to_owned()
}

/// The session's CSRF token, as a script reads it from `/api/session`.
async fn csrf_of(cookie: &str, console: &Console) -> String {
    let mut r = request(Method::GET, "/api/session", None, "");
    r.headers_mut()
        .insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
    let response = send(console, r).await;
    assert_eq!(response.status(), StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    v["csrf_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn login_opens_a_session_and_a_wrong_token_is_refused() {
    let w = world(false, None).await;
    let response = send(&w.console, form("/login", "token=not-the-token")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/login?error=token");
    assert!(!response.headers().contains_key(header::SET_COOKIE));

    let cookie = login(&w.console).await;
    let mut r = request(Method::GET, "/api/overview", None, "");
    r.headers_mut()
        .insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
    assert_eq!(send(&w.console, r).await.status(), StatusCode::OK);

    let mut r = request(Method::GET, "/api/overview", None, "");
    r.headers_mut().insert(
        header::COOKIE,
        HeaderValue::from_static("clawlet_console=forged"),
    );
    assert_eq!(send(&w.console, r).await.status(), StatusCode::UNAUTHORIZED);

    // A login posted from another site is refused before the token is looked at.
    let mut r = form("/login", &format!("token={TOKEN}"));
    r.headers_mut()
        .insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
    assert_eq!(send(&w.console, r).await.status(), StatusCode::FORBIDDEN);

    // A new token ends the sessions opened with the old one.
    w.console.reload(
        Some(AdminToken::new("another-admin-token-1234")),
        Vec::new(),
        Vec::new(),
    );
    let mut r = request(Method::GET, "/api/overview", None, "");
    r.headers_mut()
        .insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
    assert_eq!(send(&w.console, r).await.status(), StatusCode::UNAUTHORIZED);
}

/// A case's name, the headers it adds, and the status it gets.
type Case = (&'static str, Vec<(&'static str, String)>, StatusCode);

#[tokio::test]
async fn a_state_change_with_the_cookie_needs_the_csrf_token_and_this_origin() {
    let w = world(false, None).await;
    let e = envelope("github", "push", "d-csrf", now_ms());
    w.bus.publish(&e).await.unwrap();
    let cookie = login(&w.console).await;
    let csrf = csrf_of(&cookie, &w.console).await;
    let path = "/api/dead/replay";
    let post = |extra: &[(&'static str, String)]| {
        let mut r = request(Method::POST, path, None, "{}");
        r.headers_mut()
            .insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
        for (k, v) in extra {
            r.headers_mut()
                .insert(*k, HeaderValue::from_str(v).unwrap());
        }
        r
    };
    let cases: [Case; 6] = [
        ("no token", vec![], StatusCode::FORBIDDEN),
        (
            "wrong token",
            vec![("x-csrf-token", "nope".to_owned())],
            StatusCode::FORBIDDEN,
        ),
        (
            "token, cross-site",
            vec![
                ("x-csrf-token", csrf.clone()),
                ("sec-fetch-site", "cross-site".to_owned()),
            ],
            StatusCode::FORBIDDEN,
        ),
        (
            "token, other origin",
            vec![
                ("x-csrf-token", csrf.clone()),
                ("origin", "http://evil.test".to_owned()),
            ],
            StatusCode::FORBIDDEN,
        ),
        (
            "token, same origin",
            vec![
                ("x-csrf-token", csrf.clone()),
                ("origin", "http://console.test".to_owned()),
            ],
            StatusCode::OK,
        ),
        (
            "token, same-origin fetch",
            vec![
                ("x-csrf-token", csrf.clone()),
                ("sec-fetch-site", "same-origin".to_owned()),
            ],
            StatusCode::OK,
        ),
    ];
    for (name, extra, status) in cases {
        assert_eq!(
            send(&w.console, post(&extra)).await.status(),
            status,
            "{name}"
        );
    }
    // A form carries it in its `csrf` field.
    let mut r = form("/logout", &format!("csrf={csrf}"));
    r.headers_mut()
        .insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
    assert_eq!(send(&w.console, r).await.status(), StatusCode::SEE_OTHER);
    let mut r = form("/logout", "csrf=");
    r.headers_mut()
        .insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
    assert_eq!(
        send(&w.console, r).await.status(),
        StatusCode::SEE_OTHER,
        "after logout the session is gone: back to the login page"
    );
    // A Bearer call needs no CSRF token.
    let r = request(Method::POST, path, Some(&bearer()), "{}");
    assert_eq!(send(&w.console, r).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn pages_of_events_by_cursor_return_each_event_once_in_order() {
    for sqlite in [true, false] {
        let w = world(sqlite, None).await;
        let base = now_ms() - 100_000;
        let mut ids = Vec::new();
        for i in 0..137 {
            // Ties on the receipt time across page ends.
            let e = envelope(
                "github",
                if i % 3 == 0 { "push" } else { "issues" },
                &format!("d{i:03}"),
                base + i / 4,
            );
            ids.push(e.id.clone());
            w.bus.publish(&e).await.unwrap();
        }
        ids.sort_by(|a, b| b.cmp(a));
        for limit in [1, 10, 50, 137, 500] {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let path = match &cursor {
                    Some(c) => format!("/api/events?limit={limit}&cursor={c}"),
                    None => format!("/api/events?limit={limit}"),
                };
                let page = json(&w.console, &path).await;
                seen.extend(
                    page["events"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e["id"].as_str().unwrap().to_owned()),
                );
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            assert_eq!(seen, ids, "sqlite {sqlite}, limit {limit}");
        }
        let pushes = json(&w.console, "/api/events?type=push&limit=500").await;
        assert_eq!(
            pushes["events"].as_array().unwrap().len(),
            46,
            "sqlite {sqlite}"
        );
        let one = json(&w.console, "/api/events?delivery_id=d042").await;
        assert_eq!(one["events"].as_array().unwrap().len(), 1);
        assert_eq!(one["events"][0]["delivery_id"], "d042");
        let none = json(&w.console, "/api/events?handler=stripe").await;
        assert!(none["events"].as_array().unwrap().is_empty());
        let bad = send(
            &w.console,
            request(Method::GET, "/api/events?status=lost", Some(&bearer()), ""),
        )
        .await;
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let bad = send(
            &w.console,
            request(Method::GET, "/api/events?cursor=xyz", Some(&bearer()), ""),
        )
        .await;
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    }
}

/// A delivery that fails goes dead (one attempt allowed); replayed once the agent recovers, it
/// reaches the agent, and the detail shows both attempts.
#[tokio::test]
async fn a_dead_letter_replayed_after_the_agent_recovers_reaches_it() {
    for sqlite in [true, false] {
        let mut agent = agent().await;
        let w = world(sqlite, Some(&agent)).await;
        let e = envelope("github", "push", "d-dead", now_ms());
        w.bus.publish(&e).await.unwrap();
        let dead = wait_for(&w.console, "/api/dead", |v| {
            v["events"].as_array().unwrap().len() == 1
        })
        .await;
        assert_eq!(dead["events"][0]["id"], e.id.as_str());
        let detail = json(&w.console, &format!("/api/events/{}", e.id)).await;
        assert_eq!(detail["status"], "dead");
        assert_eq!(detail["attempts"].as_array().unwrap().len(), 1, "{detail}");
        assert_eq!(detail["attempts"][0]["outcome"], "failed");
        assert!(
            detail["attempts"][0]["error"]
                .as_str()
                .unwrap()
                .contains("500"),
            "{detail}"
        );

        agent.healthy.store(true, Ordering::SeqCst);
        let r = request(
            Method::POST,
            &format!("/api/events/{}/replay", e.id),
            Some(&bearer()),
            r#"{"agent":"hook"}"#,
        );
        let response = send(&w.console, r).await;
        assert_eq!(response.status(), StatusCode::OK);
        let got = tokio::time::timeout(BOUND, agent.received.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, e.id);
        if sqlite {
            let detail = wait_for(&w.console, &format!("/api/events/{}", e.id), |v| {
                v["status"] == "delivered"
            })
            .await;
            let outcomes: Vec<&str> = detail["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["outcome"].as_str().unwrap())
                .collect();
            assert_eq!(outcomes, ["failed", "delivered"]);
        }
        // To an agent the event was never routed to: nothing to replay.
        let r = request(
            Method::POST,
            &format!("/api/events/{}/replay", e.id),
            Some(&bearer()),
            r#"{"agent":"other"}"#,
        );
        assert_eq!(send(&w.console, r).await.status(), StatusCode::NOT_FOUND);
    }
}

/// Polls the API until `done` holds (a bounded wait for the dispatcher, which runs apart).
async fn wait_for(
    console: &Console,
    path: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let v = json(console, path).await;
        if done(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never got there: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn bulk_actions_take_a_count_then_the_same_count() {
    for sqlite in [true, false] {
        let agent = agent().await;
        let w = world(sqlite, Some(&agent)).await;
        for i in 0..5 {
            let t = if i < 3 { "push" } else { "issues" };
            w.bus
                .publish(&envelope("github", t, &format!("bulk{i}"), now_ms()))
                .await
                .unwrap();
        }
        wait_for(&w.console, "/api/dead?limit=10", |v| {
            v["events"].as_array().unwrap().len() == 5
        })
        .await;
        let post = |path: &str, body: &str| request(Method::POST, path, Some(&bearer()), body);
        let preview = send(&w.console, post("/api/dead/purge", r#"{"type":"push"}"#)).await;
        let preview: serde_json::Value = serde_json::from_str(&text(preview).await).unwrap();
        assert_eq!(preview, serde_json::json!({"action": "purge", "count": 3}));
        let wrong = send(
            &w.console,
            post("/api/dead/purge", r#"{"type":"push","confirm":2}"#),
        )
        .await;
        assert_eq!(wrong.status(), StatusCode::CONFLICT);
        let done = send(
            &w.console,
            post("/api/dead/purge", r#"{"type":"push","confirm":3}"#),
        )
        .await;
        assert_eq!(done.status(), StatusCode::OK);
        let left = json(&w.console, "/api/dead").await;
        assert_eq!(
            left["events"].as_array().unwrap().len(),
            2,
            "sqlite {sqlite}"
        );
        let replay = send(&w.console, post("/api/dead/replay", r#"{"confirm":2}"#)).await;
        let replay: serde_json::Value = serde_json::from_str(&text(replay).await).unwrap();
        assert_eq!(replay["count"], 2);
        // Purged ids stay known to dedup: a resend is a duplicate.
        let again = w
            .bus
            .publish(&envelope("github", "push", "bulk0", now_ms()))
            .await
            .unwrap();
        assert!(
            matches!(again, clawlet_bus::Published::Duplicate { .. }),
            "{again:?}"
        );
    }
}

#[tokio::test]
async fn the_live_tail_streams_a_new_event() {
    let w = world(true, None).await;
    let response = send(
        &w.console,
        request(Method::GET, "/api/tail", Some(&bearer()), ""),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body().into_data_stream();
    let e = envelope("github", "push", "d-tail", now_ms());
    w.bus.publish(&e).await.unwrap();
    let mut got = String::new();
    let found = tokio::time::timeout(BOUND, async {
        while let Some(chunk) = body.next().await {
            got.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
            if got.contains(&e.id) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(found, "{got}");
    assert!(got.contains("event: event"), "{got}");
    assert!(got.contains("\"summary\":\"github push d-tail\""), "{got}");
    assert!(!got.contains(HEADER_SECRET));
}

/// Every response of every endpoint, scanned for the token and the credentials in play.
#[tokio::test]
async fn no_secret_appears_in_any_response() {
    let agent = agent().await;
    let w = world(true, Some(&agent)).await;
    let e = envelope("github", "push", "d-secret", now_ms());
    w.bus.publish(&e).await.unwrap();
    wait_for(&w.console, "/api/dead", |v| {
        v["events"].as_array().unwrap().len() == 1
    })
    .await;
    let id = e.id.as_str();
    let paths = [
        ("GET", "/api/overview".to_owned(), ""),
        ("GET", "/api/events".to_owned(), ""),
        ("GET", format!("/api/events/{id}"), ""),
        ("GET", "/api/dead".to_owned(), ""),
        ("POST", "/api/dead/replay".to_owned(), "{}"),
        ("POST", "/api/dead/purge".to_owned(), "{}"),
        ("POST", format!("/api/events/{id}/replay"), "{}"),
        ("GET", "/api/events/none".to_owned(), ""),
        ("GET", "/".to_owned(), ""),
        ("GET", "/login".to_owned(), ""),
    ];
    let mut scanned = 0;
    for (method, path, body) in &paths {
        for auth in [Some(bearer()), None] {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let response = send(&w.console, request(method, path, auth.as_deref(), body)).await;
            let headers = format!("{:?}", response.headers());
            let body = text(response).await;
            for secret in [TOKEN, HEADER_SECRET, AGENT_SECRET, AGENT_CREDENTIAL] {
                assert!(
                    !body.contains(secret) && !headers.contains(secret),
                    "{path}: {body}"
                );
            }
            scanned += 1;
        }
    }
    assert_eq!(scanned, 20);
    let detail = json(&w.console, &format!("/api/events/{id}")).await;
    let headers = detail["headers"].as_array().unwrap();
    assert!(
        headers
            .iter()
            .any(|h| h[0] == "x-api-key" && h[1] == "[redacted]"),
        "{detail}"
    );
    assert!(
        headers
            .iter()
            .any(|h| h[0] == "x-github-event" && h[1] == "push"),
        "{detail}"
    );
    assert!(
        detail["payload"].as_str().unwrap().contains("<script>"),
        "the API gives text, raw"
    );
}

#[tokio::test]
async fn the_overview_counts_traffic_and_agents() {
    let agent = agent().await;
    let w = world(true, Some(&agent)).await;
    w.traffic.record("github", RequestOutcome::Duplicate);
    w.bus
        .publish(&envelope("github", "push", "d-ov", now_ms()))
        .await
        .unwrap();
    let v = wait_for(&w.console, "/api/overview", |v| v["agents"][0]["dead"] == 1).await;
    let gh = &v["handlers"][0];
    assert_eq!(gh["handler"], "github");
    assert_eq!(gh["last_hour"]["accepted"], 1);
    assert_eq!(gh["last_hour"]["duplicate"], 1);
    assert_eq!(gh["last_day"]["refused"]["invalid_signature"], 1);
    assert_eq!(gh["series"].as_array().unwrap().len(), 60);
    assert_eq!(v["handlers"][1]["handler"], "stripe");
    let hook = &v["agents"][0];
    assert_eq!(hook["agent"], "hook");
    assert_eq!(hook["backlog"], 0);
    assert_eq!(hook["attempts"], 1);
    assert_eq!(hook["success_rate"], 0.0);
    assert!(hook["last_error"].as_str().unwrap().contains("500"), "{v}");
    assert_eq!(v["capabilities"]["backend"], "sqlite");
}
