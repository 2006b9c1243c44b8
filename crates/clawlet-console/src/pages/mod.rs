//! The console's HTML, rendered on the server with `maud`, and the routes that serve it.
//!
//! Every value that came from outside (payloads, headers, summaries, agent errors, filter input) is
//! written through maud's escaping `(value)` splices; nothing here wraps data in `PreEscaped`. The
//! pages carry no inline script, no inline style and no event-handler attributes, because the
//! console's Content-Security-Policy (`script-src 'self'; style-src 'self'`) refuses them: the
//! look lives in `assets/console.css`, the live tail in `assets/console.js`, and every action is a
//! plain `<form method="post">` carrying the session's CSRF token.

mod dead;
mod events;
mod handlers;
mod overview;
mod plot;
mod query;

#[cfg(test)]
mod tests;

use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;

use crate::Console;
use crate::auth::CSRF_FIELD;
use crate::data::Capabilities;

/// The page routes, merged inside the console's auth and security layers.
pub(crate) fn routes() -> axum::Router<Console> {
    handlers::routes()
}

/// The stylesheet, served at [`STYLE_PATH`].
const STYLE_CSS: &str = include_str!("../../assets/console.css");
/// The live tail's script, served at [`SCRIPT_PATH`].
const SCRIPT_JS: &str = include_str!("../../assets/console.js");
const STYLE_PATH: &str = "/assets/console.css";
const SCRIPT_PATH: &str = "/assets/console.js";
/// The Server-Sent Events stream the live tail listens to.
const TAIL_STREAM_PATH: &str = "/api/tail";

/// What every signed-in page needs around its content.
#[derive(Debug, Clone, Copy)]
struct Frame<'a> {
    /// The session's CSRF token, put in every form that changes state.
    csrf: &'a str,
    /// What the backend offers; its notes are shown where a feature is missing.
    capabilities: &'a Capabilities,
    /// What the last action did, after its redirect.
    notice: Option<Notice>,
    /// The time ages are counted from.
    now: OffsetDateTime,
}

/// The outcome of an action, shown once on the page its form redirects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notice {
    /// Deliveries were queued again: this many.
    Replayed(u64),
    /// This many dead events were deleted.
    Purged(u64),
}

/// Which navigation entry is the current page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nav {
    Overview,
    Events,
    Dead,
    Tail,
    None,
}

const NAV: [(Nav, &str, &str); 4] = [
    (Nav::Overview, "/", "Overview"),
    (Nav::Events, "/events", "Events"),
    (Nav::Dead, "/dead", "Dead letters"),
    (Nav::Tail, "/tail", "Live tail"),
];

/// The login form. It posts the token once; the answer sets the session cookie.
fn login(wrong_token: bool) -> Markup {
    document(
        "Sign in",
        html! {
            main.login {
                h1 { "clawlet console" }
                @if wrong_token {
                    p.alert.error role="alert" #login-error { "That token is not the admin token." }
                }
                form method="post" action="/login" {
                    label for="token" { "Admin token" }
                    input #token type="password" name="token" autocomplete="current-password"
                        required autofocus;
                    button type="submit" { "Sign in" }
                }
                p.hint {
                    "The token is the daemon's " code { "webhooks.admin.token" } " setting."
                }
            }
        },
    )
}

/// The live tail: rows are added by `console.js` as the stream announces events.
fn tail(frame: &Frame<'_>) -> Markup {
    layout(
        frame,
        Nav::Tail,
        "Live tail",
        html! {
            h1 { "Live tail" }
            p.muted {
                "Events appear here as they are stored, newest first. Stream: "
                span #tail-status { "connecting" }
            }
            table.events #tail data-source=(TAIL_STREAM_PATH) {
                thead { tr { th { "Summary" } th { "Handler" } th { "Type" } th { "Status" } th { "Received" } } }
                tbody #tail-rows {}
            }
            noscript { p.alert.error { "The live tail needs JavaScript; the Events page works without it." } }
        },
    )
}

/// An error page; `frame` is absent when there is no session to build the navigation from.
fn error(frame: Option<&Frame<'_>>, status: u16, message: &str) -> Markup {
    let title = match status {
        400 => "Bad request",
        403 => "Forbidden",
        404 => "Not found",
        409 => "Changed meanwhile",
        501 => "Not available",
        _ => "Something went wrong",
    };
    let body = html! {
        h1 { (title) }
        p.alert.error role="alert" #error { (message) }
        p { a href="/" { "Back to the overview" } }
    };
    match frame {
        Some(frame) => layout(frame, Nav::None, title, body),
        None => document(title, html! { main.login { (body) } }),
    }
}

/// The page around every signed-in view: navigation, the notice, the content.
fn layout(frame: &Frame<'_>, current: Nav, title: &str, content: Markup) -> Markup {
    document(
        title,
        html! {
            header.top {
                span.brand { "clawlet console" }
                nav {
                    @for (nav, href, label) in NAV {
                        @if nav == current {
                            a.current href=(href) aria-current="page" { (label) }
                        } @else {
                            a href=(href) { (label) }
                        }
                    }
                }
                span.backend title="queue backend" { (frame.capabilities.backend) }
                form.logout method="post" action="/logout" {
                    (csrf_field(frame.csrf))
                    button.link type="submit" { "Sign out" }
                }
            }
            main {
                @if let Some(notice) = frame.notice {
                    p.alert.ok role="status" #notice { (notice_text(notice)) }
                }
                (content)
            }
        },
    )
}

fn notice_text(notice: Notice) -> String {
    match notice {
        Notice::Replayed(n) => format!("Queued {n} {} again.", plural(n, "delivery", "deliveries")),
        Notice::Purged(n) => format!("Purged {n} dead {}.", plural(n, "event", "events")),
    }
}

fn document(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · clawlet console" }
                link rel="stylesheet" href=(STYLE_PATH);
                script src=(SCRIPT_PATH) defer {}
            }
            body { (body) }
        }
    }
}

/// The hidden field that carries the CSRF token in every state-changing form.
fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(token); }
}

/// What the backend cannot show, said plainly, when there is anything.
fn backend_notes(caps: &Capabilities) -> Markup {
    html! {
        @if !caps.notes.is_empty() {
            aside.notes #backend-notes {
                p { strong { "Not available on the " (caps.backend) " backend:" } }
                ul { @for note in &caps.notes { li { (note) } } }
            }
        }
    }
}

/// A status as a small coloured label.
fn status_badge(status: clawlet_bus::DeliveryStatus) -> Markup {
    let label = status_label(status);
    html! { span class=(format!("badge {label}")) { (label) } }
}

fn status_label(status: clawlet_bus::DeliveryStatus) -> &'static str {
    use clawlet_bus::DeliveryStatus;
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Dead => "dead",
    }
}

/// `12s ago`, `5m ago`, `3h ago`, `2d ago`.
fn age(now: OffsetDateTime, then: OffsetDateTime) -> String {
    let secs = (now - then).whole_seconds().max(0);
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86_400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// RFC 3339 in UTC, to the second: enough for a person, and short.
fn timestamp(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// A time as its age, with the exact UTC time on hover and for machines.
fn time_cell(now: OffsetDateTime, t: OffsetDateTime) -> Markup {
    let exact = timestamp(t);
    html! { time datetime=(exact) title=(exact) { (age(now, t)) } }
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}
