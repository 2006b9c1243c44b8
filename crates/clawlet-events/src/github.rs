//! GitHub deliveries: the event type and delivery id come from headers, the summary from a
//! partial, borrowed view of the body.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::text::{MAX_FIELD, clean};

/// The headers GitHub documents for its deliveries; signatures are deliberately absent.
pub(crate) const KEPT_HEADERS: &[&str] = &[
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
    "x-github-hook-installation-target-id",
    "x-github-hook-installation-target-type",
    "user-agent",
];

type S<'a> = Cow<'a, str>;

#[derive(Deserialize)]
struct Repo<'a> {
    #[serde(borrow)]
    full_name: Option<S<'a>>,
}

#[derive(Deserialize)]
struct User<'a> {
    #[serde(borrow)]
    login: Option<S<'a>>,
}

/// The fields every summary may name; the fallback view when [`Body`] does not fit.
#[derive(Deserialize)]
pub(crate) struct Common<'a> {
    #[serde(borrow)]
    action: Option<S<'a>>,
    #[serde(borrow)]
    repository: Option<Repo<'a>>,
    #[serde(borrow)]
    organization: Option<User<'a>>,
    #[serde(borrow)]
    sender: Option<User<'a>>,
}

/// Everything any typed summary needs, read in one pass over the body: the union of the fields of
/// push, pull_request, issues, issue_comment, release, fork, star and ping. Each event reads only
/// its own fields.
#[derive(Deserialize)]
pub(crate) struct Body<'a> {
    #[serde(borrow)]
    action: Option<S<'a>>,
    #[serde(borrow)]
    repository: Option<Repo<'a>>,
    #[serde(borrow)]
    organization: Option<User<'a>>,
    #[serde(borrow)]
    sender: Option<User<'a>>,
    // push
    #[serde(borrow, rename = "ref")]
    git_ref: Option<S<'a>>,
    created: Option<bool>,
    deleted: Option<bool>,
    forced: Option<bool>,
    // Zero-sized elements: counting commits allocates nothing.
    commits: Option<Vec<IgnoredAny>>,
    #[serde(borrow)]
    pusher: Option<Pusher<'a>>,
    // pull_request, issues, issue_comment
    number: Option<u64>,
    #[serde(borrow)]
    pull_request: Option<Titled<'a>>,
    #[serde(borrow)]
    issue: Option<Titled<'a>>,
    // release, fork, ping
    #[serde(borrow)]
    release: Option<ReleaseInfo<'a>>,
    #[serde(borrow)]
    forkee: Option<Repo<'a>>,
    #[serde(borrow)]
    zen: Option<S<'a>>,
    hook_id: Option<u64>,
}

#[derive(Deserialize)]
struct Pusher<'a> {
    #[serde(borrow)]
    name: Option<S<'a>>,
}

#[derive(Deserialize)]
struct Titled<'a> {
    number: Option<u64>,
    #[serde(borrow)]
    title: Option<S<'a>>,
    #[serde(default)]
    merged: bool,
    // Present on issues that are pull requests (issue_comment on a PR).
    pull_request: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ReleaseInfo<'a> {
    #[serde(borrow)]
    tag_name: Option<S<'a>>,
    #[serde(borrow)]
    name: Option<S<'a>>,
}

/// Field text for a summary: cleaned, capped, with a placeholder when the sender left it out.
fn f(value: Option<&S<'_>>, missing: &str) -> String {
    match value.map(|v| clean(v, MAX_FIELD)) {
        Some(v) if !v.is_empty() => v,
        _ => missing.to_owned(),
    }
}

fn number(n: Option<u64>) -> String {
    n.map_or_else(|| "?".to_owned(), |n| n.to_string())
}

/// A delivery's body, read once for its summary; reading it also checks that it is JSON.
#[expect(
    clippy::large_enum_variant,
    reason = "lives on the stack for one parse; boxing would cost an allocation per delivery"
)]
pub(crate) enum Read<'a> {
    /// Every field has its documented type.
    Typed(Body<'a>),
    /// Some field does not; these are read from it when they do.
    Common(Common<'a>),
    /// Not even those.
    Neither,
}

/// Reads `json` for [`describe`]. A body that is not JSON is an error; one whose fields do not
/// have the documented types is not: the event is authenticated, and refusing it would only make
/// GitHub retry it.
///
/// A complete typed read is also a complete check of the text, so the usual body costs one pass;
/// only a body that does not fit [`Body`] is checked separately, before the fallback views.
pub(crate) fn read(json: &str) -> Result<Read<'_>, serde_json::Error> {
    if let Ok(body) = serde_json::from_str::<Body<'_>>(json) {
        return Ok(Read::Typed(body));
    }
    serde_json::from_str::<IgnoredAny>(json)?;
    Ok(match serde_json::from_str::<Common<'_>>(json) {
        Ok(common) => Read::Common(common),
        Err(_) => Read::Neither,
    })
}

/// The GitHub `action` (if any) and the summary of a delivery of event `event`.
pub(crate) fn describe(event: &str, read: Read<'_>) -> (Option<String>, String) {
    match read {
        Read::Typed(b) => {
            let action = b.action.as_deref().map(str::to_owned);
            let summary = match typed(event, &b) {
                Some(summary) => summary,
                None => {
                    let common = Common {
                        action: b.action,
                        repository: b.repository,
                        organization: b.organization,
                        sender: b.sender,
                    };
                    generic(event, &common)
                }
            };
            (action, summary)
        }
        Read::Common(c) => (c.action.as_deref().map(str::to_owned), generic(event, &c)),
        Read::Neither => (None, format!("GitHub {} event", clean(event, MAX_FIELD))),
    }
}

fn typed(event: &str, b: &Body<'_>) -> Option<String> {
    let repo = f(
        b.repository.as_ref().and_then(|r| r.full_name.as_ref()),
        "an unknown repository",
    );
    let sender = b.sender.as_ref().and_then(|s| s.login.as_ref());
    let actor = f(sender, "someone");
    let action = f(b.action.as_ref(), "updated");
    Some(match event {
        "push" => {
            let actor = match sender {
                Some(_) => actor,
                None => f(b.pusher.as_ref().and_then(|p| p.name.as_ref()), "someone"),
            };
            let git_ref = b.git_ref.as_deref().unwrap_or_default();
            let (kind, name) = if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
                ("Tag", tag)
            } else {
                (
                    "Branch",
                    git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref),
                )
            };
            let name = f(Some(&Cow::Borrowed(name)), "(unknown ref)");
            let n = b.commits.as_ref().map_or(0, Vec::len);
            let (created, deleted, forced) = (
                b.created.unwrap_or(false),
                b.deleted.unwrap_or(false),
                b.forced.unwrap_or(false),
            );
            if deleted {
                format!("{kind} {name} deleted in {repo} by {actor}")
            } else if created && kind == "Tag" {
                format!("Tag {name} created in {repo} by {actor}")
            } else if created && n == 0 {
                format!("Branch {name} created in {repo} by {actor}")
            } else {
                let commits = if n == 1 {
                    "1 commit".to_owned()
                } else {
                    format!("{n} commits")
                };
                let verb = if forced { "force-pushed" } else { "pushed" };
                format!("{commits} {verb} to {repo}@{name} by {actor}")
            }
        }
        "pull_request" => {
            let pr = b.pull_request.as_ref();
            let number = number(b.number.or(pr.and_then(|pr| pr.number)));
            let title = f(pr.and_then(|pr| pr.title.as_ref()), "(untitled)");
            match b.action.as_deref() {
                Some("opened") => format!("New PR #{number} opened in {repo} by {actor}: {title}"),
                Some("closed") if pr.is_some_and(|pr| pr.merged) => {
                    format!("PR #{number} merged in {repo} by {actor}: {title}")
                }
                _ => format!("PR #{number} {action} in {repo} by {actor}: {title}"),
            }
        }
        "issues" => {
            let issue = b.issue.as_ref();
            let number = number(issue.and_then(|i| i.number));
            let title = f(issue.and_then(|i| i.title.as_ref()), "(untitled)");
            format!("Issue #{number} {action} in {repo} by {actor}: {title}")
        }
        "issue_comment" => {
            let issue = b.issue.as_ref();
            let kind = if issue.is_some_and(|i| i.pull_request.is_some()) {
                "PR"
            } else {
                "issue"
            };
            let number = number(issue.and_then(|i| i.number));
            let title = f(issue.and_then(|i| i.title.as_ref()), "(untitled)");
            match b.action.as_deref() {
                Some("created") => {
                    format!("New comment on {kind} #{number} in {repo} by {actor}: {title}")
                }
                _ => format!("Comment {action} on {kind} #{number} in {repo} by {actor}: {title}"),
            }
        }
        "release" => {
            let info = b.release.as_ref();
            let tag = f(info.and_then(|r| r.tag_name.as_ref()), "(untagged)");
            let name = info
                .and_then(|r| r.name.as_ref())
                .map(|n| clean(n, MAX_FIELD))
                .unwrap_or_default();
            let what = if name.is_empty() || name == tag {
                tag
            } else {
                format!("{name} ({tag})")
            };
            format!("Release {what} {action} in {repo} by {actor}")
        }
        "fork" => {
            let to = f(
                b.forkee.as_ref().and_then(|r| r.full_name.as_ref()),
                "a new repository",
            );
            format!("{repo} forked to {to} by {actor}")
        }
        "star" => match b.action.as_deref() {
            Some("deleted") => format!("{repo} unstarred by {actor}"),
            _ => format!("{repo} starred by {actor}"),
        },
        "ping" => {
            let hook = b
                .hook_id
                .map_or_else(|| "webhook".to_owned(), |id| format!("webhook {id}"));
            let target = match (&b.repository, &b.organization) {
                (Some(_), _) => repo,
                (None, Some(org)) => format!("organization {}", f(org.login.as_ref(), "(unknown)")),
                (None, None) => "GitHub".to_owned(),
            };
            match b.zen.as_ref() {
                Some(zen) => format!("Ping for {hook} on {target}: {}", clean(zen, MAX_FIELD)),
                None => format!("Ping for {hook} on {target}"),
            }
        }
        _ => return None,
    })
}

/// Every other event: its type and action, and where and by whom when the body says.
fn generic(event: &str, c: &Common<'_>) -> String {
    let event = clean(event, MAX_FIELD);
    let mut out = format!("GitHub {event} event");
    if let Some(action) = c.action.as_ref() {
        out.push_str(&format!(" ({})", clean(action, MAX_FIELD)));
    }
    if let Some(repo) = c.repository.as_ref().and_then(|r| r.full_name.as_ref()) {
        out.push_str(&format!(" in {}", clean(repo, MAX_FIELD)));
    } else if let Some(org) = c.organization.as_ref().and_then(|o| o.login.as_ref()) {
        out.push_str(&format!(" in organization {}", clean(org, MAX_FIELD)));
    }
    if let Some(login) = c.sender.as_ref().and_then(|s| s.login.as_ref()) {
        out.push_str(&format!(" by {}", clean(login, MAX_FIELD)));
    }
    out
}

#[cfg(test)]
mod tests;
