//! The events list with its filters, and one event in full.

use maud::{Markup, html};

use super::query::{filter_pairs, input_time, link};
use super::{Frame, Nav, backend_notes, csrf_field, layout, status_badge, time_cell, timestamp};
use crate::data::{EventDetail, EventFilter, EventPage, EventRow};

/// The filter inputs a list offers, in the order shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Handler,
    Type,
    Status,
    Agent,
    From,
    To,
    DeliveryId,
}

pub(super) fn events(frame: &Frame<'_>, filter: &EventFilter, page: &EventPage) -> Markup {
    const FIELDS: [Field; 6] = [
        Field::Handler,
        Field::Type,
        Field::Status,
        Field::From,
        Field::To,
        Field::DeliveryId,
    ];
    layout(
        frame,
        Nav::Events,
        "Events",
        html! {
            h1 { "Events" }
            (backend_notes(frame.capabilities))
            (filter_form("/events", filter, &FIELDS))
            (event_table(frame, page, "No event matches this filter.", None))
            (pager("/events", filter, page))
        },
    )
}

/// A GET form over the list: the filter lives in the URL, so a filtered view can be bookmarked.
pub(super) fn filter_form(action: &str, filter: &EventFilter, fields: &[Field]) -> Markup {
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    html! {
        form.filters method="get" action=(action) {
            @for field in fields {
                @match field {
                    Field::Handler => label { "Handler" input type="text" name="handler" value=(text(&filter.handler)); },
                    Field::Type => label { "Type" input type="text" name="type" value=(text(&filter.event_type)); },
                    Field::Agent => label { "Agent" input type="text" name="agent" value=(text(&filter.agent)); },
                    Field::DeliveryId => label { "Delivery id" input type="text" name="delivery_id" value=(text(&filter.delivery_id)); },
                    Field::From => label { "From (UTC)" input type="datetime-local" step="1" name="from" value=(filter.from.map(input_time).unwrap_or_default()); },
                    Field::To => label { "To (UTC)" input type="datetime-local" step="1" name="to" value=(filter.to.map(input_time).unwrap_or_default()); },
                    Field::Status => label {
                        "Status"
                        select name="status" {
                            @for (value, label) in [("", "any"), ("pending", "pending"), ("delivered", "delivered"), ("dead", "dead")] {
                                @let selected = filter.status.map(super::status_label) == Some(value)
                                    || (value.is_empty() && filter.status.is_none());
                                option value=(value) selected[selected] { (label) }
                            }
                        }
                    },
                }
            }
            button type="submit" { "Filter" }
            a.button.secondary href=(action) { "Clear" }
        }
    }
}

/// The rows of one page; each links to the event's detail.
/// `actions`, when given, adds a last column of buttons for each row.
pub(super) fn event_table(
    frame: &Frame<'_>,
    page: &EventPage,
    empty: &str,
    actions: Option<&dyn Fn(&EventRow) -> Markup>,
) -> Markup {
    html! {
        @if page.events.is_empty() {
            p.muted #no-events { (empty) }
        } @else {
            table.events #events {
                thead {
                    tr {
                        th { "Summary" } th { "Handler" } th { "Type" } th { "Status" } th { "Received" }
                        @if actions.is_some() { th {} }
                    }
                }
                tbody {
                    @for row in &page.events {
                        tr.event data-id=(row.id) data-delivery-id=(row.delivery_id) {
                            td.summary { a href=(format!("/events/{}", row.id)) { (row.summary) } }
                            td { (row.handler) }
                            td { (row.event_type) @if let Some(action) = &row.action { span.muted { "." (action) } } }
                            td { (status_badge(row.status)) }
                            td { (time_cell(frame.now, row.received_at)) }
                            @if let Some(actions) = actions { td.actions { (actions(row)) } }
                        }
                    }
                }
            }
        }
    }
}

/// "Newest" and "Older" links; the cursor comes from the page, the filter from the request.
pub(super) fn pager(path: &str, filter: &EventFilter, page: &EventPage) -> Markup {
    let pairs = filter_pairs(filter);
    let older = page.next_cursor.as_ref().map(|cursor| {
        let mut next = pairs.clone();
        next.push(("cursor", cursor.clone()));
        link(path, &next)
    });
    html! {
        nav.pager {
            @if filter.cursor.is_some() {
                a href=(link(path, &pairs)) { "← Newest" }
            }
            @if let Some(older) = older {
                a #older href=(older) { "Older →" }
            }
        }
    }
}

pub(super) fn event(frame: &Frame<'_>, detail: &EventDetail) -> Markup {
    let row = &detail.row;
    let caps = frame.capabilities;
    layout(
        frame,
        Nav::Events,
        &format!("Event {}", row.id),
        html! {
            p.crumbs { a href="/events" { "Events" } " / " (row.id) }
            h1.summary #summary { (row.summary) }
            (backend_notes(caps))
            dl.facts {
                dt { "Status" } dd { (status_badge(row.status)) }
                dt { "Handler" } dd { (row.handler) }
                dt { "Type" } dd { (row.event_type) @if let Some(action) = &row.action { "." (action) } }
                dt { "Delivery id" } dd { code { (row.delivery_id) } }
                dt { "Event id" } dd { code { (row.id) } }
                dt { "Received" } dd { (time_cell(frame.now, row.received_at)) " · " (timestamp(row.received_at)) }
            }

            h2 { "Deliveries" }
            @if detail.deliveries.is_empty() {
                p.muted { "No route sent this event to an agent." }
            } @else {
                table #deliveries {
                    thead {
                        tr { th { "Agent" } th { "Status" } th.num { "Attempts" } th { "Last error" } th { "Next attempt" } th {} }
                    }
                    tbody {
                        @for delivery in &detail.deliveries {
                            tr data-agent=(delivery.agent) {
                                th scope="row" { (delivery.agent) }
                                td { (status_badge(delivery.status)) }
                                td.num { (delivery.attempts) }
                                td.error { @if let Some(e) = &delivery.last_error { code { (e) } } }
                                td { @if let Some(at) = delivery.next_attempt_at { (timestamp(at)) } }
                                td {
                                    @if caps.replay_to_agent {
                                        (replay_form(frame, &row.id, Some(&delivery.agent)))
                                    }
                                }
                            }
                        }
                    }
                }
                div.actions {
                    (replay_form(frame, &row.id, None))
                    @if !caps.replay_to_agent {
                        span.muted { "Replaying to a single agent is not available on the " (caps.backend) " backend." }
                    }
                }
            }

            h2 { "Attempts" }
            @if !caps.attempt_history {
                p.muted.unavailable {
                    "The " (caps.backend) " backend does not keep each attempt; the deliveries above show the count and the last error."
                }
            } @else if detail.attempts.is_empty() {
                p.muted { "No attempt yet." }
            } @else {
                table #attempts {
                    thead { tr { th { "Time" } th { "Agent" } th { "Outcome" } th.num { "Latency" } th { "Error" } } }
                    tbody {
                        @for attempt in &detail.attempts {
                            tr.attempt data-agent=(attempt.agent) {
                                td { (time_cell(frame.now, attempt.at)) }
                                td { (attempt.agent) }
                                td { span class=(format!("badge {}", outcome_class(&attempt.outcome))) { (attempt.outcome) } }
                                td.num { (format!("{:.1} ms", attempt.latency_ms)) }
                                td.error { @if let Some(e) = &attempt.error { code { (e) } } }
                            }
                        }
                    }
                }
            }

            h2 { "Headers" }
            p.muted { "Credentials are shown as [redacted], as in the request log." }
            table.headers #headers {
                tbody {
                    @for (name, value) in &detail.headers {
                        tr { th scope="row" { code { (name) } } td { code { (value) } } }
                    }
                }
            }

            h2 { "Payload" }
            details.payload #payload open {
                summary { "Payload, pretty-printed (" (detail.payload.len()) " bytes as received)" }
                pre { code { (detail.payload_pretty) } }
            }
            @if detail.payload_pretty != detail.payload {
                details.payload #payload-raw {
                    summary { "Payload as received" }
                    pre { code { (detail.payload) } }
                }
            }
        },
    )
}

/// A one-button form: replay to `agent`, or to every route when `agent` is `None`.
pub(super) fn replay_form(frame: &Frame<'_>, id: &str, agent: Option<&str>) -> Markup {
    html! {
        form.inline method="post" action=(format!("/events/{id}/replay")) {
            (csrf_field(frame.csrf))
            input type="hidden" name="agent" value=(agent.unwrap_or_default());
            @match agent {
                Some(agent) => button type="submit" data-agent=(agent) { "Replay to " (agent) },
                None => button #replay-all type="submit" { "Replay to all routes" },
            }
        }
    }
}

fn outcome_class(outcome: &str) -> &'static str {
    match outcome {
        "delivered" => "delivered",
        "timed_out" => "pending",
        _ => "dead",
    }
}
