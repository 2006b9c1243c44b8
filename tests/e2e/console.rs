//! The operator console in real headless Chromium (Debian's `chromium` and `chromium-driver`),
//! against the daemon binary: signing in, the events list and its filters, an event in full, a
//! dead letter replayed after its agent recovers, bulk purge behind its confirmation, the live
//! tail, hostile payloads shown as text, and a cross-origin form refused. Each test saves a
//! screenshot of every page it visits under `target/tmp/console-screenshots/<test>/`.

mod browser;

use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::Locator;

use crate::harness::{Daemon, send};
use crate::providers::GITHUB_SECRET;
use browser::Browser;

const ADMIN_TOKEN: &str = "console-e2e-admin-token-9f3k2";

/// The longest a whole browser test may take (a bound, not an expectation).
const TEST_BOUND: Duration = Duration::from_secs(150);

/// How long anything the daemon does in the background may take before a test gives up.
const SETTLE_BOUND: Duration = Duration::from_secs(20);

/// A daemon with the console on a loopback port of its own, a GitHub handler, and `agents` with
/// every event routed to each of them.
struct Console {
    daemon: Daemon,
    admin: String,
}

impl Console {
    fn start(agents: &str, routes: &str) -> Console {
        let config = format!(
            r#"webhooks:
  host: 127.0.0.1
  port: 0
  rate_limit:
    enabled: false
  queue:
    backend: sqlite
    path: "{{dir}}/journal.db"
  admin:
    enabled: true
    host: 127.0.0.1
    port: 0
    token: "${{CLAWLET_ADMIN_TOKEN}}"
  handlers:
    github:
      secret: "{GITHUB_SECRET}"
  agents:
{agents}
  routes:
{routes}"#
        );
        let daemon = Daemon::start_with_env(&config, &[("CLAWLET_ADMIN_TOKEN", ADMIN_TOKEN)]);
        let admin = admin_url(&daemon);
        Console { daemon, admin }
    }

    /// A console whose one agent takes every event: an exec agent, so that each attempt is
    /// recorded (the built-in log agent writes its line at publish and keeps no attempt).
    fn start_working() -> Console {
        Self::start(
            "    worker:\n      kind: exec\n      command: [\"/bin/sh\", \"-c\", \"cat > /dev/null\"]\n      timeout: 10s\n",
            "    - agent: worker\n",
        )
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.admin, path)
    }

    /// The daemon's state directory (where the exec agents below leave their files).
    fn dir(&self) -> PathBuf {
        self.daemon
            .config
            .parent()
            .expect("the config is in the state directory")
            .to_owned()
    }

    /// Sends a signed GitHub delivery through `clawlet-webhookd send` and checks it was stored.
    fn send(&self, event: &str, delivery_id: &str, payload: Option<&Path>) {
        let url = self.daemon.url("/webhook/github");
        let mut args = vec![
            "github",
            "--url",
            &url,
            "--secret",
            GITHUB_SECRET,
            "--event",
            event,
            "--delivery-id",
            delivery_id,
        ];
        let payload = payload.map(|p| p.display().to_string());
        if let Some(payload) = &payload {
            args.extend(["--payload", payload]);
        }
        let out = send(&args);
        assert!(
            out.status.success(),
            "send {event} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The console's address, from the line the daemon logs when its admin listener is bound.
fn admin_url(daemon: &Daemon) -> String {
    let deadline = std::time::Instant::now() + SETTLE_BOUND;
    loop {
        let logs = daemon.logs();
        if let Some(url) = logs
            .lines()
            .filter(|line| line.contains("console"))
            .find_map(|line| {
                let rest = &line[line.find("http://")?..];
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == '"')
                    .unwrap_or(rest.len());
                Some(rest[..end].trim_end_matches('/').to_owned())
            })
        {
            return url;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon never said where the console listens; log:\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Signs in through the login form and waits for the overview.
async fn sign_in(browser: &Browser, console: &Console) {
    browser.goto(&console.url("/login")).await;
    fill_and_submit(browser, ADMIN_TOKEN).await;
    assert!(
        browser.wait_for_text("h1", "Overview", SETTLE_BOUND).await,
        "signing in with the token did not reach the overview:\n{}",
        browser.text().await
    );
}

async fn fill_and_submit(browser: &Browser, token: &str) {
    let field = browser
        .client
        .find(Locator::Css("input[name=token]"))
        .await
        .expect("the login form has a token field");
    field.send_keys(token).await.expect("typing the token");
    browser
        .client
        .find(Locator::Css("main.login button[type=submit]"))
        .await
        .expect("the login form has a submit button")
        .click()
        .await
        .expect("submitting the login form");
}

/// Runs a browser test within [`TEST_BOUND`], or skips it when Chromium is not installed.
async fn with_browser<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Browser) -> Fut,
    Fut: std::future::Future<Output = Browser>,
{
    let Some(browser) = Browser::start(name).await else {
        return;
    };
    match tokio::time::timeout(TEST_BOUND, test(browser)).await {
        Ok(browser) => browser.close().await,
        Err(_) => panic!("{name} did not finish within {TEST_BOUND:?}"),
    }
}

/// Loads `url` until an element matching `css` contains `needle`, at most [`SETTLE_BOUND`]: the
/// daemon delivers in the background, and a page shows what was true when it was rendered.
async fn reload_until(browser: &Browser, url: &str, css: &str, needle: &str) -> bool {
    let deadline = tokio::time::Instant::now() + SETTLE_BOUND;
    loop {
        browser.goto(url).await;
        if browser.wait_for_text(css, needle, Duration::ZERO).await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `done` holds, at most `bound` (the daemon delivers in the background).
async fn eventually(bound: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + bound;
    while !done() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sign_in_takes_the_token_and_refuses_a_wrong_one() {
    let console = Console::start_working();
    with_browser("sign_in", |browser| async move {
        // A page without a session leads to the login form.
        browser.goto(&console.url("/events")).await;
        assert!(
            browser
                .wait_for_text("main.login h1", "clawlet console", SETTLE_BOUND)
                .await
        );
        browser.screenshot("login").await;

        fill_and_submit(&browser, "not-the-admin-token").await;
        assert!(
            browser
                .wait_for_text("#login-error", "not the admin token", SETTLE_BOUND)
                .await,
            "a wrong token was not refused:\n{}",
            browser.text().await
        );
        browser.screenshot("login-refused").await;
        browser.goto(&console.url("/events")).await;
        assert!(
            browser
                .client
                .find(Locator::Css("main.login"))
                .await
                .is_ok(),
            "a wrong token opened a session"
        );

        // Some traffic so that the overview has something to show: accepted, duplicate, refused.
        for (event, id) in [
            ("push", "signin-1"),
            ("issues", "signin-2"),
            ("push", "signin-1"),
        ] {
            console.send(event, id, None);
        }
        let refused = send(&[
            "github",
            "--url",
            &console.daemon.url("/webhook/github"),
            "--secret",
            "a-wrong-secret",
            "--event",
            "push",
        ]);
        assert!(!refused.status.success(), "a wrong signature was accepted");

        sign_in(&browser, &console).await;
        let handlers = browser
            .client
            .find(Locator::Css("#handlers tbody[data-handler=github]"))
            .await
            .expect("the overview lists the github handler")
            .text()
            .await
            .unwrap();
        assert!(handlers.contains("github"), "{handlers}");
        assert!(
            browser
                .client
                .find(Locator::Css("#handlers svg.plot polyline.accepted"))
                .await
                .is_ok(),
            "the overview has no plot"
        );
        assert!(browser.text().await.contains("Queue depth"));
        browser.screenshot("overview").await;

        // Signing out ends the session.
        browser
            .client
            .find(Locator::Css("form.logout button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert!(
            browser
                .wait_for_text("main.login h1", "clawlet console", SETTLE_BOUND)
                .await
        );
        browser.goto(&console.url("/")).await;
        assert!(
            browser
                .client
                .find(Locator::Css("main.login"))
                .await
                .is_ok()
        );
        browser
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_events_page_lists_sent_deliveries_and_its_filters_narrow_them() {
    let console = Console::start_working();
    for (event, id) in [
        ("push", "list-push-1"),
        ("push", "list-push-2"),
        ("issues", "list-issues-1"),
        ("pull_request", "list-pr-1"),
    ] {
        console.send(event, id, None);
    }
    with_browser("events", |browser| async move {
        sign_in(&browser, &console).await;
        browser.goto(&console.url("/events")).await;
        let ids = delivery_ids(&browser).await;
        for id in ["list-push-1", "list-push-2", "list-issues-1", "list-pr-1"] {
            assert!(ids.contains(&id.to_owned()), "{id} is not listed: {ids:?}");
        }
        browser.screenshot("events").await;

        // Filter by type through the form.
        type_into(&browser, "form.filters input[name=type]", "push").await;
        submit_filters(&browser, "type=push").await;
        let ids = delivery_ids(&browser).await;
        assert_eq!(sorted(ids), ["list-push-1", "list-push-2"]);
        browser.screenshot("events-filtered-by-type").await;

        // Filter by delivery id (and clear the type first).
        browser.goto(&console.url("/events")).await;
        type_into(
            &browser,
            "form.filters input[name=delivery_id]",
            "list-issues-1",
        )
        .await;
        submit_filters(&browser, "delivery_id=list-issues-1").await;
        assert_eq!(delivery_ids(&browser).await, ["list-issues-1"]);

        // The status and handler filters: everything went to the log agent, nothing is dead.
        browser.goto(&console.url("/events?status=dead")).await;
        assert!(delivery_ids(&browser).await.is_empty());
        browser.goto(&console.url("/events?handler=nobody")).await;
        assert!(delivery_ids(&browser).await.is_empty());
        browser
            .goto(&console.url("/events?handler=github&type=pull_request"))
            .await;
        assert_eq!(delivery_ids(&browser).await, ["list-pr-1"]);

        // A time range that ends before anything arrived selects nothing.
        browser
            .goto(&console.url("/events?to=2000-01-01T00:00"))
            .await;
        assert!(delivery_ids(&browser).await.is_empty());

        // The detail page: payload, summary, deliveries and attempts.
        browser
            .goto(&console.url("/events?delivery_id=list-pr-1"))
            .await;
        browser
            .client
            .find(Locator::Css("#events td.summary a"))
            .await
            .expect("the row links to its detail")
            .click()
            .await
            .unwrap();
        assert!(
            browser
                .wait_for_text("#payload", "pull_request", SETTLE_BOUND)
                .await,
            "the detail page does not show the payload:\n{}",
            browser.text().await
        );
        let detail = browser.client.current_url().await.unwrap().to_string();
        assert!(
            reload_until(&browser, &detail, "#attempts tr.attempt", "delivered").await,
            "the detail page does not show the attempt:\n{}",
            browser.text().await
        );
        let headers = browser
            .client
            .find(Locator::Css("#headers"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            headers.to_lowercase().contains("x-github-event"),
            "{headers}"
        );
        assert!(
            !headers.contains(GITHUB_SECRET),
            "a secret reached the page: {headers}"
        );
        // The payload folds away.
        let open = browser
            .eval("return document.getElementById('payload').open;")
            .await;
        assert_eq!(open, serde_json::Value::Bool(true));
        browser
            .client
            .find(Locator::Css("#payload summary"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let open = browser
            .eval("return document.getElementById('payload').open;")
            .await;
        assert_eq!(open, serde_json::Value::Bool(false));
        browser
            .client
            .find(Locator::Css("#payload summary"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        browser.screenshot("event").await;
        browser
    })
    .await;
}

/// An exec agent that fails until `ready` exists in the state directory, then writes what it
/// received to `received.json`.
fn flaky_agent() -> String {
    "    flaky:\n      kind: exec\n      command: [\"/bin/sh\", \"-c\", \"test -f {dir}/ready && cat > {dir}/received.json.new && mv {dir}/received.json.new {dir}/received.json\"]\n      timeout: 10s\n      max_attempts: 1\n".to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_replays_a_dead_letter_once_the_agent_recovers() {
    // `steady` takes the event at once; only `flaky` gives up on it, so only `flaky` gets the
    // replay of the dead letter.
    let steady = "    steady:\n      kind: exec\n      command: [\"/bin/sh\", \"-c\", \"cat > /dev/null && echo run >> {dir}/steady.runs\"]\n      timeout: 10s\n";
    let console = Console::start(
        &format!("{}{steady}", flaky_agent()),
        "    - agent: flaky\n    - agent: steady\n",
    );
    console.send("issues", "dead-1", None);
    with_browser("dead_letters", |browser| async move {
        sign_in(&browser, &console).await;
        let row = "#events tr[data-delivery-id=dead-1]";
        assert!(
            reload_until(&browser, &console.url("/dead"), row, "").await,
            "the failed delivery never showed as dead"
        );
        browser.screenshot("dead").await;

        // The agent recovers; the operator replays the event from the page.
        std::fs::write(console.dir().join("ready"), b"").unwrap();
        browser
            .client
            .find(Locator::Css(
                "#events tr[data-delivery-id=dead-1] button.replay",
            ))
            .await
            .expect("the dead letter has a replay button")
            .click()
            .await
            .unwrap();
        assert!(
            browser
                .wait_for_text("#notice", "Queued", SETTLE_BOUND)
                .await,
            "no notice after the replay:\n{}",
            browser.text().await
        );
        let received = console.dir().join("received.json");
        assert!(
            eventually(SETTLE_BOUND, || received.exists()).await,
            "the replayed event never reached the agent"
        );
        let envelope: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&received).unwrap()).unwrap();
        assert_eq!(envelope["delivery_id"], "dead-1", "{envelope}");
        browser.screenshot("dead-replayed").await;

        // The event's page shows the failed attempt and the one that delivered.
        browser
            .goto(&console.url("/events?delivery_id=dead-1"))
            .await;
        browser
            .client
            .find(Locator::Css("#events td.summary a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let detail = browser.client.current_url().await.unwrap().to_string();
        let flaky = "#attempts tr.attempt[data-agent=flaky]";
        assert!(
            reload_until(&browser, &detail, flaky, "delivered").await,
            "the replayed delivery's attempt is not shown:\n{}",
            browser.text().await
        );
        let count = |css: &'static str| {
            let browser = &browser;
            async move {
                browser
                    .client
                    .find_all(Locator::Css(css))
                    .await
                    .unwrap()
                    .len()
            }
        };
        assert_eq!(count(flaky).await, 2, "a failed and a delivered attempt");
        assert_eq!(
            count("#attempts tr.attempt[data-agent=steady]").await,
            1,
            "the agent that had the event got it again"
        );
        let runs = std::fs::read_to_string(console.dir().join("steady.runs")).unwrap();
        assert_eq!(runs.lines().count(), 1, "steady ran again on the replay");
        browser.screenshot("event-replayed").await;
        browser
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_purges_dead_letters_only_after_the_confirmation_step() {
    let console = Console::start(&flaky_agent(), "    - agent: flaky\n");
    for id in ["purge-1", "purge-2", "purge-3"] {
        console.send("push", id, None);
    }
    with_browser("bulk_purge", |browser| async move {
        sign_in(&browser, &console).await;
        for id in ["purge-1", "purge-2", "purge-3"] {
            let row = format!("#events tr[data-delivery-id={id}]");
            assert!(
                reload_until(&browser, &console.url("/dead"), &row, "").await,
                "{id} never showed as dead"
            );
        }

        // Narrow to two of them, ask to purge: the page asks first and changes nothing.
        browser
            .goto(&console.url("/dead?delivery_id=purge-2"))
            .await;
        assert_eq!(delivery_ids(&browser).await, ["purge-2"]);
        click(&browser, "#bulk-purge").await;
        assert!(
            browser
                .wait_for_text("#confirm", "Purge 1 dead letter?", SETTLE_BOUND)
                .await,
            "{}",
            browser.text().await
        );
        browser.screenshot("dead-confirm-purge").await;
        browser.goto(&console.url("/dead")).await;
        assert_eq!(
            delivery_ids(&browser).await.len(),
            3,
            "asking purged something"
        );

        browser
            .goto(&console.url("/dead?delivery_id=purge-2"))
            .await;
        click(&browser, "#bulk-purge").await;
        assert!(
            browser
                .wait_for_text("#confirm", "Purge 1", SETTLE_BOUND)
                .await
        );
        click(&browser, "#confirm-purge").await;
        assert!(
            browser
                .wait_for_text("#notice", "Purged 1 dead event", SETTLE_BOUND)
                .await,
            "{}",
            browser.text().await
        );
        browser.goto(&console.url("/dead")).await;
        assert_eq!(sorted(delivery_ids(&browser).await), ["purge-1", "purge-3"]);

        // Bulk replay of the rest, after the agent recovers.
        std::fs::write(console.dir().join("ready"), b"").unwrap();
        click(&browser, "#bulk-replay").await;
        assert!(
            browser
                .wait_for_text("#confirm", "Replay 2 dead letters?", SETTLE_BOUND)
                .await
        );
        click(&browser, "#confirm-replay").await;
        assert!(
            browser
                .wait_for_text("#notice", "Queued", SETTLE_BOUND)
                .await
        );
        let received = console.dir().join("received.json");
        assert!(
            eventually(SETTLE_BOUND, || received.exists()).await,
            "the bulk replay never reached the agent"
        );
        browser
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_live_tail_shows_a_new_event_within_two_seconds() {
    let console = Console::start_working();
    with_browser("tail", |browser| async move {
        sign_in(&browser, &console).await;
        browser.goto(&console.url("/tail")).await;
        assert!(
            browser
                .wait_for_text("#tail-status", "live", SETTLE_BOUND)
                .await,
            "the live tail never connected:\n{}",
            browser.text().await
        );
        for id in ["tail-1", "tail-2"] {
            console.send("issues", id, None);
            // The issue's requirement: a stored event is on the page within 2 s.
            let row = format!("#tail-rows tr[data-delivery-id={id}]");
            let shown = browser
                .wait_for_text(&row, "", Duration::from_secs(2))
                .await;
            assert!(shown, "{id} did not appear on the live tail within 2 s");
        }
        browser.screenshot("tail").await;
        browser
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_shows_markup_in_a_payload_as_text_and_runs_none_of_it() {
    let console = Console::start_working();
    const MARKUP: &str = r#"<script>document.title='pwned';window.pwned=1</script><img src=x onerror="window.pwned=2;document.title='pwned'">"#;
    let payload = console.dir().join("hostile.json");
    let body = serde_json::json!({
        "action": "opened",
        "issue": { "number": 7, "title": MARKUP, "html_url": "https://example.invalid/7",
                   "user": { "login": MARKUP } },
        "repository": { "full_name": "octocat/hello-world" },
        "sender": { "login": MARKUP },
    });
    std::fs::write(&payload, serde_json::to_vec(&body).unwrap()).unwrap();
    console.send("issues", "hostile-1", Some(&payload));
    with_browser("hostile", |browser| async move {
        sign_in(&browser, &console).await;
        let check_page = |name: &'static str| {
            let browser = &browser;
            async move {
                let side_effect = browser
                    .eval("return [document.title, typeof window.pwned];")
                    .await;
                assert!(
                    !side_effect[0]
                        .as_str()
                        .unwrap_or_default()
                        .contains("pwned"),
                    "{name}: the payload's script ran: {side_effect}"
                );
                assert_eq!(
                    side_effect[1], "undefined",
                    "{name}: the payload's markup ran"
                );
                let images = browser.client.find_all(Locator::Css("img")).await.unwrap();
                assert!(
                    images.is_empty(),
                    "{name}: the payload's <img> became an element"
                );
                let scripts = browser
                    .eval("return Array.from(document.scripts).map(s => s.src);")
                    .await;
                assert_eq!(
                    scripts.as_array().map(Vec::len),
                    Some(1),
                    "{name}: a script element beyond the console's own: {scripts}"
                );
            }
        };
        browser
            .goto(&console.url("/events?delivery_id=hostile-1"))
            .await;
        assert_eq!(delivery_ids(&browser).await, ["hostile-1"]);
        check_page("events").await;
        browser.screenshot("events-hostile").await;

        browser
            .client
            .find(Locator::Css("#events td.summary a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert!(
            browser
                .wait_for_text("#payload", "onerror", SETTLE_BOUND)
                .await
        );
        // Shown as the text it is.
        let payload = browser
            .client
            .find(Locator::Css("#payload pre"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            payload.contains("<script>document.title='pwned'"),
            "{payload}"
        );
        check_page("event").await;
        browser.screenshot("event-hostile").await;

        // The live tail builds its rows from the stream's JSON: as text too.
        browser.goto(&console.url("/tail")).await;
        assert!(
            browser
                .wait_for_text("#tail-status", "live", SETTLE_BOUND)
                .await
        );
        console.send(
            "issues",
            "hostile-2",
            Some(&console.dir().join("hostile.json")),
        );
        assert!(
            browser
                .wait_for_text(
                    "#tail-rows tr[data-delivery-id=hostile-2]",
                    "",
                    Duration::from_secs(2)
                )
                .await
        );
        check_page("tail").await;
        browser
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_refuses_a_cross_origin_form_post_without_the_csrf_token() {
    let console = Console::start(&flaky_agent(), "    - agent: flaky\n");
    console.send("push", "csrf-1", None);
    // Another origin on loopback (another port: same site, so the SameSite cookie is sent; the
    // CSRF defences must refuse it all the same). Its page posts a purge as soon as it loads.
    let target = console.url("/dead/bulk");
    let attacker = serve_once(format!(
        r#"<!doctype html><title>elsewhere</title>
<form id=f method=post action="{target}">
<input type=hidden name=action value=purge><input type=hidden name=confirm value=1>
</form><script>document.getElementById('f').submit()</script>"#
    ))
    .await;
    with_browser("csrf", |browser| async move {
        sign_in(&browser, &console).await;
        let row = "#events tr[data-delivery-id=csrf-1]";
        assert!(
            reload_until(&browser, &console.url("/dead"), row, "").await,
            "the failed delivery never showed as dead"
        );

        browser.goto(&attacker).await;
        // The form posts on load; wait for the console's answer to replace the page.
        let answered = browser.wait_for_text("body", "refused", SETTLE_BOUND).await;
        let answer = browser.text().await;
        assert!(answered, "the cross-origin post was not refused: {answer}");
        browser.screenshot("csrf-refused").await;

        browser.goto(&console.url("/dead")).await;
        assert_eq!(
            delivery_ids(&browser).await,
            ["csrf-1"],
            "the cross-origin post changed the state"
        );
        browser
    })
    .await;
}

/// Serves `html` at `/` on a loopback port of its own, for the rest of the test.
async fn serve_once(html: String) -> String {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let html = html.clone();
            async move { axum::response::Html(html) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/")
}

async fn delivery_ids(browser: &Browser) -> Vec<String> {
    let value = browser
        .eval(
            "return Array.from(document.querySelectorAll('#events tr[data-delivery-id]'))\
             .map(row => row.dataset.deliveryId);",
        )
        .await;
    serde_json::from_value(value).expect("a list of delivery ids")
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

async fn type_into(browser: &Browser, css: &str, text: &str) {
    let field = browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|err| panic!("no {css}: {err}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Submits the filter form and waits for the page whose address carries `expected`.
async fn submit_filters(browser: &Browser, expected: &str) {
    click(browser, "form.filters button[type=submit]").await;
    let deadline = tokio::time::Instant::now() + SETTLE_BOUND;
    loop {
        let url = browser.client.current_url().await.unwrap();
        if url.query().is_some_and(|q| q.contains(expected)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the filtered page never loaded (still at {url})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    browser
        .client
        .wait()
        .at_most(SETTLE_BOUND)
        .for_element(Locator::Css("form.filters"))
        .await
        .expect("the filtered page loads");
}

async fn click(browser: &Browser, css: &str) {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|err| panic!("no {css}: {err}"))
        .click()
        .await
        .unwrap_or_else(|err| panic!("clicking {css}: {err}"));
}
