//! Every page rendered from hostile data: markup in payloads, headers, summaries and errors must
//! come out as text, and no page may carry what the CSP refuses (inline script or style).

use std::collections::BTreeMap;

use clawlet_bus::DeliveryStatus;
use time::macros::datetime;

use super::*;
use crate::data::{
    AgentOverview, AttemptView, BulkAction, BulkPreview, Counts, DeliveryView, EventDetail,
    EventFilter, EventPage, EventRow, HandlerTraffic, MinuteCounts, Overview,
};

const HOSTILE: &str =
    r#"<script>document.title='pwned'</script><img src=x onerror="window.pwned=1">"#;
const ESCAPED: &str = "&lt;script&gt;document.title='pwned'&lt;/script&gt;&lt;img src=x onerror=&quot;window.pwned=1&quot;&gt;";

fn caps(notes: &[&str]) -> Capabilities {
    Capabilities {
        backend: "sqlite",
        events: true,
        attempt_history: true,
        keeps_delivered: true,
        replay_to_agent: true,
        purge: true,
        agent_backlog: true,
        notes: notes.iter().map(|n| (*n).to_owned()).collect(),
    }
}

fn frame(caps: &Capabilities) -> Frame<'_> {
    Frame {
        csrf: "csrf-token-123",
        capabilities: caps,
        notice: None,
        now: datetime!(2026-01-31 12:00:00 UTC),
    }
}

fn row(text: &str) -> EventRow {
    EventRow {
        id: "0190aaaa-0000-7000-8000-000000000001".to_owned(),
        handler: text.to_owned(),
        event_type: text.to_owned(),
        action: Some(text.to_owned()),
        delivery_id: text.to_owned(),
        received_at: datetime!(2026-01-31 11:58:30 UTC),
        summary: text.to_owned(),
        status: DeliveryStatus::Dead,
    }
}

fn filter(text: &str) -> EventFilter {
    EventFilter {
        handler: Some(text.to_owned()),
        event_type: Some(text.to_owned()),
        agent: Some(text.to_owned()),
        delivery_id: Some(text.to_owned()),
        cursor: Some("c1".to_owned()),
        ..EventFilter::default()
    }
}

fn page(text: &str) -> EventPage {
    EventPage {
        events: vec![row(text)],
        next_cursor: Some(text.to_owned()),
    }
}

fn detail(text: &str) -> EventDetail {
    EventDetail {
        row: row(text),
        headers: vec![(text.to_owned(), text.to_owned())],
        payload: format!("{{\"body\":{text:?}}}"),
        payload_pretty: format!("{{\n  \"body\": {text:?}\n}}"),
        deliveries: vec![DeliveryView {
            agent: text.to_owned(),
            status: DeliveryStatus::Dead,
            attempts: 3,
            last_error: Some(text.to_owned()),
            next_attempt_at: None,
        }],
        attempts: vec![AttemptView {
            agent: text.to_owned(),
            at: datetime!(2026-01-31 11:59:00 UTC),
            outcome: text.to_owned(),
            latency_ms: 12.34,
            error: Some(text.to_owned()),
        }],
    }
}

fn overview_of(text: &str) -> Overview {
    let counts = Counts {
        accepted: 5,
        duplicate: 1,
        ignored: 2,
        refused: BTreeMap::from([(text.to_owned(), 3)]),
    };
    Overview {
        generated_at: datetime!(2026-01-31 12:00:00 UTC),
        queue_depth: 7,
        accepting: true,
        handlers: vec![HandlerTraffic {
            handler: text.to_owned(),
            last_hour: counts.clone(),
            last_day: counts,
            series: vec![MinuteCounts::default(); 60],
        }],
        agents: vec![AgentOverview {
            agent: text.to_owned(),
            backlog: Some(2),
            dead: Some(1),
            attempts: 4,
            delivered: 3,
            success_rate: Some(0.75),
            last_error: Some(text.to_owned()),
            last_error_at: Some(datetime!(2026-01-31 11:00:00 UTC)),
        }],
        capabilities: caps(&[]),
    }
}

/// Every page, rendered with `text` in every field that takes outside data.
fn every_page(text: &str) -> Vec<(&'static str, String)> {
    let caps = caps(&[text]);
    let frame = frame(&caps);
    let preview = BulkPreview {
        action: BulkAction::Purge,
        count: 2,
    };
    vec![
        ("login", login(true).into_string()),
        (
            "overview",
            overview::overview(&frame, &overview_of(text)).into_string(),
        ),
        (
            "events",
            events::events(&frame, &filter(text), &page(text)).into_string(),
        ),
        ("event", events::event(&frame, &detail(text)).into_string()),
        (
            "dead",
            dead::dead(&frame, &filter(text), &page(text), None).into_string(),
        ),
        (
            "dead confirm",
            dead::dead(&frame, &filter(text), &page(text), Some(&preview)).into_string(),
        ),
        ("tail", tail(&frame).into_string()),
        ("error", error(Some(&frame), 404, text).into_string()),
    ]
}

#[test]
fn outside_data_is_escaped_on_every_page() {
    for (name, html) in every_page(HOSTILE) {
        assert!(
            !html.contains("<script>document"),
            "{name}: raw script in\n{html}"
        );
        assert!(!html.contains("<img"), "{name}: raw img in\n{html}");
        if name != "login" && name != "tail" {
            assert!(
                html.contains(ESCAPED),
                "{name}: the text is missing or escaped oddly\n{html}"
            );
        }
    }
}

#[test]
fn no_page_carries_what_the_csp_refuses() {
    for (name, html) in every_page("plain") {
        let lower = html.to_ascii_lowercase();
        assert!(!lower.contains(" style="), "{name}: inline style\n{html}");
        assert!(!lower.contains("<style"), "{name}: style element\n{html}");
        assert!(
            !lower.contains("javascript:"),
            "{name}: javascript URL\n{html}"
        );
        for attribute in [
            " onclick=",
            " onload=",
            " onerror=",
            " onsubmit=",
            " onchange=",
        ] {
            assert!(!lower.contains(attribute), "{name}: {attribute}\n{html}");
        }
        // The one script element is the embedded file, with no inline body.
        assert_eq!(
            lower.matches("<script").count(),
            lower
                .matches(r#"<script src="/assets/console.js" defer></script>"#)
                .count(),
            "{name}: inline script\n{html}"
        );
    }
}

#[test]
fn every_form_that_changes_state_carries_the_csrf_token() {
    for (name, html) in every_page("plain") {
        for form in html.split("<form").skip(1) {
            let form = &form[..form.find("</form>").unwrap_or(form.len())];
            let posts = form.contains(r#"method="post""#);
            let login = form.contains(r#"action="/login""#);
            if posts && !login {
                assert!(
                    form.contains(r#"name="csrf" value="csrf-token-123""#),
                    "{name}: a form without the CSRF token: {form}"
                );
            }
        }
    }
}

#[test]
fn ages_are_short_and_never_negative() {
    let now = datetime!(2026-01-31 12:00:00 UTC);
    let check = |then, expected: &str| assert_eq!(age(now, then), expected);
    check(datetime!(2026-01-31 12:00:05 UTC), "0s ago");
    check(datetime!(2026-01-31 11:59:15 UTC), "45s ago");
    check(datetime!(2026-01-31 11:55:00 UTC), "5m ago");
    check(datetime!(2026-01-31 09:00:00 UTC), "3h ago");
    check(datetime!(2026-01-29 12:00:00 UTC), "2d ago");
}

#[test]
fn links_keep_the_filter_and_encode_it() {
    let check = |pairs: &[(&str, String)], expected: &str| {
        assert_eq!(query::link("/events", pairs), expected);
    };
    check(&[], "/events");
    check(
        &[("handler", "github".to_owned())],
        "/events?handler=github",
    );
    check(
        &[
            ("type", "a b&c=d".to_owned()),
            ("cursor", "x/y+z".to_owned()),
        ],
        "/events?type=a%20b%26c%3Dd&cursor=x%2Fy%2Bz",
    );
    check(
        &[("delivery_id", "é".to_owned())],
        "/events?delivery_id=%C3%A9",
    );
}

#[test]
fn the_older_link_carries_the_filter_and_the_next_cursor() {
    let caps = caps(&[]);
    let html = events::events(
        &frame(&caps),
        &EventFilter {
            handler: Some("github".to_owned()),
            status: Some(DeliveryStatus::Dead),
            ..EventFilter::default()
        },
        &EventPage {
            events: vec![row("x")],
            next_cursor: Some("abc".to_owned()),
        },
    )
    .into_string();
    assert!(
        html.contains(r#"href="/events?handler=github&amp;status=dead&amp;cursor=abc""#),
        "{html}"
    );
    assert!(html.contains(r#"<option value="dead" selected>"#), "{html}");
}

#[test]
fn what_a_backend_lacks_is_said_on_the_page() {
    let mut caps = caps(&["attempts are not kept"]);
    caps.backend = "nats";
    caps.attempt_history = false;
    caps.replay_to_agent = false;
    caps.purge = false;
    let frame = frame(&caps);
    let event = events::event(&frame, &detail("x")).into_string();
    assert!(event.contains("attempts are not kept"), "{event}");
    assert!(event.contains("does not keep each attempt"), "{event}");
    assert!(
        event.contains("single agent is not available on the nats backend"),
        "{event}"
    );
    assert!(!event.contains("Replay to x"), "{event}");
    let dead = dead::dead(&frame, &EventFilter::default(), &page("x"), None).into_string();
    assert!(
        dead.contains("Purging is not available on the nats backend"),
        "{dead}"
    );
    assert!(!dead.contains("bulk-purge"), "{dead}");
}

#[test]
fn the_confirmation_step_repeats_the_filter_and_the_count() {
    let caps = caps(&[]);
    let preview = BulkPreview {
        action: BulkAction::Replay,
        count: 3,
    };
    let html = dead::dead(
        &frame(&caps),
        &EventFilter {
            agent: Some("inbox".to_owned()),
            ..EventFilter::default()
        },
        &page("x"),
        Some(&preview),
    )
    .into_string();
    let confirm = &html[html.find(r#"id="confirm""#).unwrap()..];
    assert!(confirm.contains(r#"name="confirm" value="3""#), "{confirm}");
    assert!(
        confirm.contains(r#"name="agent" value="inbox""#),
        "{confirm}"
    );
    assert!(
        confirm.contains(r#"name="action" value="replay""#),
        "{confirm}"
    );
    assert!(confirm.contains("Replay 3 dead letters?"), "{confirm}");
}
