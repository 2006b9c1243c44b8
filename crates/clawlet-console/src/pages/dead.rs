//! Dead letters: the list, a replay per event, and replay or purge of a filtered set, each bulk
//! action behind a confirmation step that names how many events it will touch.

use maud::{Markup, html};

use super::events::{Field, event_table, filter_form, pager};
use super::query::{filter_pairs, hidden_fields};
use super::{Frame, Nav, backend_notes, csrf_field, layout, plural};
use crate::data::{BulkAction, BulkPreview, EventFilter, EventPage, EventRow};

const FIELDS: [Field; 6] = [
    Field::Handler,
    Field::Type,
    Field::Agent,
    Field::From,
    Field::To,
    Field::DeliveryId,
];

pub(super) fn dead(
    frame: &Frame<'_>,
    filter: &EventFilter,
    page: &EventPage,
    preview: Option<&BulkPreview>,
) -> Markup {
    let caps = frame.capabilities;
    let agent = filter.agent.clone().unwrap_or_default();
    let replay_one = |row: &EventRow| {
        html! {
            form.inline method="post" action=(format!("/dead/{}/replay", row.id)) {
                (csrf_field(frame.csrf))
                input type="hidden" name="agent" value=(agent);
                button.replay type="submit" { "Replay" }
            }
        }
    };
    layout(
        frame,
        Nav::Dead,
        "Dead letters",
        html! {
            h1 { "Dead letters" }
            p.muted {
                "Events an agent refused until its attempts ran out. Replay one after the agent is fixed, "
                "or replay or purge every event the filter selects."
            }
            (backend_notes(caps))
            @if let Some(preview) = preview { (confirmation(frame, filter, preview)) }
            (filter_form("/dead", filter, &FIELDS))
            (event_table(frame, page, "No dead letter matches this filter.", Some(&replay_one)))
            (pager("/dead", filter, page))
            @if !page.events.is_empty() && preview.is_none() {
                section.bulk #bulk {
                    h2 { "Every dead letter this filter selects" }
                    @if filter_pairs(filter).is_empty() {
                        p.muted { "No filter is set: these act on all dead letters." }
                    }
                    (bulk_form(frame, filter, BulkAction::Replay, None))
                    @if caps.purge {
                        (bulk_form(frame, filter, BulkAction::Purge, None))
                    } @else {
                        p.muted.unavailable { "Purging is not available on the " (caps.backend) " backend." }
                    }
                    p.muted { "Each asks for confirmation with the number of events first." }
                }
            }
        },
    )
}

/// The second step of a bulk action: the count it will act on, and the button that does it.
fn confirmation(frame: &Frame<'_>, filter: &EventFilter, preview: &BulkPreview) -> Markup {
    let verb = action_verb(preview.action);
    let events = plural(preview.count, "dead letter", "dead letters");
    html! {
        section.confirm #confirm {
            @if preview.count == 0 {
                p { "No dead letter matches this filter any more; there is nothing to " (verb) "." }
                a.button.secondary href=(super::query::link("/dead", &filter_pairs(filter))) { "Back" }
            } @else {
                p {
                    strong { (verb_capital(preview.action)) " " (preview.count) " " (events) "?" }
                    @if preview.action == BulkAction::Purge { " A purged event is deleted for good." }
                }
                (bulk_form(frame, filter, preview.action, Some(preview.count)))
                a.button.secondary href=(super::query::link("/dead", &filter_pairs(filter))) { "Cancel" }
            }
        }
    }
}

/// A form over the filtered set: without `confirm` it asks for the count, with it it acts.
fn bulk_form(
    frame: &Frame<'_>,
    filter: &EventFilter,
    action: BulkAction,
    confirm: Option<u64>,
) -> Markup {
    let class = match action {
        BulkAction::Replay => "inline",
        BulkAction::Purge => "inline danger",
    };
    html! {
        form class=(class) method="post" action="/dead/bulk" {
            (csrf_field(frame.csrf))
            (hidden_fields(filter))
            input type="hidden" name="action" value=(action_verb(action));
            @if let Some(count) = confirm {
                input type="hidden" name="confirm" value=(count);
                button #(format!("confirm-{}", action_verb(action))) type="submit" {
                    "Yes, " (action_verb(action)) " " (count)
                }
            } @else {
                button #(format!("bulk-{}", action_verb(action))) type="submit" {
                    (verb_capital(action)) " all matching…"
                }
            }
        }
    }
}

fn action_verb(action: BulkAction) -> &'static str {
    match action {
        BulkAction::Replay => "replay",
        BulkAction::Purge => "purge",
    }
}

fn verb_capital(action: BulkAction) -> &'static str {
    match action {
        BulkAction::Replay => "Replay",
        BulkAction::Purge => "Purge",
    }
}
