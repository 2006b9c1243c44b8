//! The console's JSON API through the real binary: the admin listener on a port of its own,
//! the token on every endpoint, the login form's cookie, deliveries sent with `send` listed and
//! shown, the live tail, the overview's counts, and no secret in any answer.

use std::time::Duration;

use reqwest::StatusCode;

use crate::harness::{Daemon, StreamGuard, nats_url, send, stream_name};
use crate::providers::GITHUB_SECRET;

const TOKEN: &str = "e2e-console-api-token-4471";
/// How long anything the daemon does in the background may take (a bound).
const BOUND: Duration = Duration::from_secs(20);

/// The daemon's configuration around a `queue:` block (its lines indented by four spaces).
fn config(queue: &str) -> String {
    format!(
        r#"webhooks:
  host: 127.0.0.1
  port: 0
  rate_limit:
    enabled: false
  queue:
{queue}
  admin:
    enabled: true
    host: 127.0.0.1
    port: 0
  handlers:
    github:
      secret: "{GITHUB_SECRET}"
"#
    )
}

/// The console's base URL, from the line the daemon logs before its webhook listening line.
fn console_url(daemon: &Daemon) -> String {
    let logs = daemon.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("operator console at http://"))
        .unwrap_or_else(|| panic!("no console line in the log:\n{logs}"));
    let rest = &line[line.find("http://").unwrap()..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"')
        .unwrap_or(rest.len());
    rest[..end].to_owned()
}

fn deliver(daemon: &Daemon, event: &str, delivery_id: &str) {
    let url = daemon.url("/webhook/github");
    let out = send(&[
        "github",
        "--url",
        &url,
        "--secret",
        GITHUB_SECRET,
        "--event",
        event,
        "--delivery-id",
        delivery_id,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_api_through_the_binary() {
    exercise(&config(
        "    backend: sqlite\n    path: \"{dir}/journal.db\"",
    ))
    .await;
}

/// The same API on a JetStream stream: the console reads it through the bus's NATS admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_api_through_the_binary_on_nats() {
    let Some(nats) = nats_url() else { return };
    let stream = stream_name("console");
    let _cleanup = StreamGuard {
        url: nats.clone(),
        stream: stream.clone(),
    };
    exercise(&config(&format!(
        "    backend: nats\n    nats:\n      url: \"{nats}\"\n      stream: \"{stream}\""
    )))
    .await;
}

async fn exercise(config: &str) {
    let daemon = Daemon::start_with_env(config, &[("CLAWLET_ADMIN_TOKEN", TOKEN)]);
    let base = console_url(&daemon);
    assert_ne!(
        base,
        daemon.url(""),
        "the console has a listener of its own"
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str, auth: Option<&str>| {
        let mut r = client.get(format!("{base}{path}"));
        if let Some(auth) = auth {
            r = r.header("authorization", auth);
        }
        r.send()
    };
    let bearer = format!("Bearer {TOKEN}");

    for path in [
        "/api/overview",
        "/api/events",
        "/api/dead",
        "/api/tail",
        "/api/events/x",
    ] {
        for auth in [None, Some("Bearer wrong-token-wrong-token")] {
            let r = get(path, auth).await.unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path} {auth:?}");
        }
    }
    // The webhook port serves no console.
    let r = client
        .get(daemon.url("/api/overview"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // The login form: a wrong token goes back to the form, the right one sets the cookie.
    let login = |token: &str| {
        client
            .post(format!("{base}/login"))
            .form(&[("token", token)])
            .send()
    };
    let wrong = login("not-the-admin-token").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::SEE_OTHER);
    assert_eq!(wrong.headers()["location"], "/login?error=token");
    let right = login(TOKEN).await.unwrap();
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    let cookie = right.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let r = client
        .get(format!("{base}/api/overview"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // With the cookie but no CSRF token, nothing changes.
    let r = client
        .post(format!("{base}/api/dead/purge"))
        .header("cookie", &session)
        .header("origin", &base)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The live tail, opened before a delivery arrives.
    let mut tail = get("/api/tail", Some(&bearer)).await.unwrap();
    assert_eq!(tail.status(), StatusCode::OK);
    deliver(&daemon, "push", "e2e-console-1");
    let mut seen = String::new();
    tokio::time::timeout(BOUND, async {
        while let Some(chunk) = tail.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("e2e-console-1") {
                break;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the tail never showed the delivery: {seen}"));

    deliver(&daemon, "issues", "e2e-console-2");
    let bad = client
        .post(daemon.url("/webhook/github"))
        .header("x-github-event", "push")
        .header("x-github-delivery", "forged")
        .header("x-hub-signature-256", "sha256=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);

    let json = |path: &'static str| {
        let r = get(path, Some(&bearer));
        async move {
            let r = r.await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            r.text().await.unwrap()
        }
    };
    let events: serde_json::Value = serde_json::from_str(&json("/api/events").await).unwrap();
    let listed: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["delivery_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["e2e-console-2", "e2e-console-1"]);
    let issues: serde_json::Value =
        serde_json::from_str(&json("/api/events?type=issues").await).unwrap();
    assert_eq!(issues["events"].as_array().unwrap().len(), 1);
    let id = events["events"][0]["id"].as_str().unwrap().to_owned();
    let detail = get(&format!("/api/events/{id}"), Some(&bearer))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let overview = json("/api/overview").await;
    let v: serde_json::Value = serde_json::from_str(&overview).unwrap();
    let github = &v["handlers"][0];
    assert_eq!(github["handler"], "github");
    assert_eq!(github["last_hour"]["accepted"], 2, "{overview}");
    let refused: u64 = github["last_hour"]["refused"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(refused, 1, "the forged delivery, by its reason: {overview}");

    for body in [
        &detail,
        &overview,
        &serde_json::to_string(&events).unwrap(),
        &seen,
    ] {
        assert!(!body.contains(GITHUB_SECRET), "{body}");
        assert!(!body.contains(TOKEN), "{body}");
    }
}
