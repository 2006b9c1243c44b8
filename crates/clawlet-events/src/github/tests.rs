use super::{describe, read};

fn check(event: &str, body: &str, action: Option<&str>, summary: &str) {
    let (got_action, got_summary) = describe(event, read(body).unwrap());
    assert_eq!(got_action.as_deref(), action, "action of {event} {body}");
    assert_eq!(got_summary, summary, "summary of {event} {body}");
}

const REPO: &str = r#""repository":{"full_name":"owner/repo"},"sender":{"login":"octocat"}"#;

#[test]
fn summarises_push() {
    let push = |rest: &str| format!(r#"{{{REPO},{rest}}}"#);
    check(
        "push",
        &push(r#""ref":"refs/heads/main","commits":[{},{},{}]"#),
        None,
        "3 commits pushed to owner/repo@main by octocat",
    );
    check(
        "push",
        &push(r#""ref":"refs/heads/main","commits":[{}]"#),
        None,
        "1 commit pushed to owner/repo@main by octocat",
    );
    check(
        "push",
        &push(r#""ref":"refs/heads/main","commits":[{},{}],"forced":true"#),
        None,
        "2 commits force-pushed to owner/repo@main by octocat",
    );
    check(
        "push",
        &push(r#""ref":"refs/heads/feature/x","created":true,"commits":[]"#),
        None,
        "Branch feature/x created in owner/repo by octocat",
    );
    check(
        "push",
        &push(r#""ref":"refs/heads/new","created":true,"commits":[{}]"#),
        None,
        "1 commit pushed to owner/repo@new by octocat",
    );
    check(
        "push",
        &push(r#""ref":"refs/tags/v1.0","created":true,"commits":[]"#),
        None,
        "Tag v1.0 created in owner/repo by octocat",
    );
    check(
        "push",
        &push(r#""ref":"refs/tags/v1.0","deleted":true,"commits":[]"#),
        None,
        "Tag v1.0 deleted in owner/repo by octocat",
    );
    check(
        "push",
        &push(r#""ref":"refs/heads/old","deleted":true"#),
        None,
        "Branch old deleted in owner/repo by octocat",
    );
    check(
        "push",
        r#"{"ref":"refs/heads/main","commits":[],"pusher":{"name":"pushy"},"repository":{"full_name":"o/r"}}"#,
        None,
        "0 commits pushed to o/r@main by pushy",
    );
    check(
        "push",
        r#"{}"#,
        None,
        "0 commits pushed to an unknown repository@(unknown ref) by someone",
    );
}

#[test]
fn summarises_pull_requests_and_issues() {
    let pr = |action: &str, extra: &str| {
        format!(
            r#"{{"action":"{action}","number":42,"pull_request":{{"title":"Fix it"{extra}}},{REPO}}}"#
        )
    };
    check(
        "pull_request",
        &pr("opened", ""),
        Some("opened"),
        "New PR #42 opened in owner/repo by octocat: Fix it",
    );
    check(
        "pull_request",
        &pr("closed", r#","merged":true"#),
        Some("closed"),
        "PR #42 merged in owner/repo by octocat: Fix it",
    );
    check(
        "pull_request",
        &pr("closed", r#","merged":false"#),
        Some("closed"),
        "PR #42 closed in owner/repo by octocat: Fix it",
    );
    check(
        "pull_request",
        &pr("synchronize", ""),
        Some("synchronize"),
        "PR #42 synchronize in owner/repo by octocat: Fix it",
    );
    let issue = |action: &str, extra: &str| {
        format!(r#"{{"action":"{action}","issue":{{"number":7,"title":"Broken"{extra}}},{REPO}}}"#)
    };
    check(
        "issues",
        &issue("opened", ""),
        Some("opened"),
        "Issue #7 opened in owner/repo by octocat: Broken",
    );
    check(
        "issues",
        &issue("closed", ""),
        Some("closed"),
        "Issue #7 closed in owner/repo by octocat: Broken",
    );
    check(
        "issue_comment",
        &issue("created", ""),
        Some("created"),
        "New comment on issue #7 in owner/repo by octocat: Broken",
    );
    check(
        "issue_comment",
        &issue("created", r#","pull_request":{"url":"u"}"#),
        Some("created"),
        "New comment on PR #7 in owner/repo by octocat: Broken",
    );
    check(
        "issue_comment",
        &issue("deleted", ""),
        Some("deleted"),
        "Comment deleted on issue #7 in owner/repo by octocat: Broken",
    );
    check(
        "issues",
        r#"{"action":"opened","issue":{}}"#,
        Some("opened"),
        "Issue #? opened in an unknown repository by someone: (untitled)",
    );
}

#[test]
fn summarises_release_fork_star_ping() {
    let release = |name: &str| {
        format!(r#"{{"action":"published","release":{{"tag_name":"v2","name":{name}}},{REPO}}}"#)
    };
    check(
        "release",
        &release(r#""""#),
        Some("published"),
        "Release v2 published in owner/repo by octocat",
    );
    check(
        "release",
        &release(r#"null"#),
        Some("published"),
        "Release v2 published in owner/repo by octocat",
    );
    check(
        "release",
        &release(r#""v2""#),
        Some("published"),
        "Release v2 published in owner/repo by octocat",
    );
    check(
        "release",
        &release(r#""Big one""#),
        Some("published"),
        "Release Big one (v2) published in owner/repo by octocat",
    );
    check(
        "fork",
        &format!(r#"{{"forkee":{{"full_name":"fan/repo"}},{REPO}}}"#),
        None,
        "owner/repo forked to fan/repo by octocat",
    );
    check(
        "star",
        &format!(r#"{{"action":"created",{REPO}}}"#),
        Some("created"),
        "owner/repo starred by octocat",
    );
    check(
        "star",
        &format!(r#"{{"action":"deleted",{REPO}}}"#),
        Some("deleted"),
        "owner/repo unstarred by octocat",
    );
    check(
        "ping",
        &format!(r#"{{"zen":"Keep it simple.","hook_id":5,{REPO}}}"#),
        None,
        "Ping for webhook 5 on owner/repo: Keep it simple.",
    );
    check(
        "ping",
        r#"{"hook_id":5,"organization":{"login":"org"}}"#,
        None,
        "Ping for webhook 5 on organization org",
    );
    check("ping", r#"{}"#, None, "Ping for webhook on GitHub");
}

#[test]
fn passes_other_events_through() {
    check(
        "check_run",
        &format!(r#"{{"action":"completed",{REPO}}}"#),
        Some("completed"),
        "GitHub check_run event (completed) in owner/repo by octocat",
    );
    check(
        "member",
        r#"{"organization":{"login":"org"}}"#,
        None,
        "GitHub member event in organization org",
    );
    check("meta", r#"{}"#, None, "GitHub meta event");
}

#[test]
fn falls_back_to_generic_when_the_shape_is_unexpected() {
    // An authenticated body with odd field types still gets a summary instead of a refusal.
    check(
        "push",
        &format!(r#"{{"ref":42,{REPO}}}"#),
        None,
        "GitHub push event in owner/repo by octocat",
    );
    check(
        "pull_request",
        &format!(r#"{{"action":"opened","number":"x",{REPO}}}"#),
        Some("opened"),
        "GitHub pull_request event (opened) in owner/repo by octocat",
    );
    check(
        "issues",
        r#"{"action":7,"issue":{"number":1}}"#,
        None,
        "GitHub issues event",
    );
    check(
        "star",
        r#"{"repository":"owner/repo"}"#,
        None,
        "GitHub star event",
    );
}

#[test]
fn cleans_sender_text() {
    let title = format!("evil\ntitle\r\n2026-01-01 INFO forged{}", "!".repeat(500));
    let body = format!(
        r#"{{"action":"opened","issue":{{"number":1,"title":{}}},"repository":{{"full_name":"o/r\u0000"}},"sender":{{"login":"u\u202e"}}}}"#,
        serde_json::to_string(&title).unwrap()
    );
    let (_, summary) = describe("issues", read(&body).unwrap());
    assert!(
        summary.starts_with("Issue #1 opened in o/r by u: evil title 2026-01-01 INFO forged!!!"),
        "{summary}"
    );
    assert!(summary.ends_with('…'), "{summary}");
    assert!(!summary.chars().any(char::is_control), "{summary}");
}

/// The real deliveries in testdata fit the typed view, so that reading one is also its only check
/// (a field whose type drifted would cost two more passes over every such body).
#[test]
fn real_deliveries_are_read_in_one_pass() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/payloads");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("github_") {
            continue;
        }
        let body = std::fs::read_to_string(&path).unwrap();
        assert!(
            matches!(read(&body), Ok(super::Read::Typed(_))),
            "{name} does not fit the typed view"
        );
        seen += 1;
    }
    assert!(seen >= 9, "only {seen} GitHub payloads found");
}
