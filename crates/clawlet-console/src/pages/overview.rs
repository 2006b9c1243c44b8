//! The overview: traffic per handler, the queue, and the agents.

use maud::{Markup, html};

use super::{Frame, Nav, backend_notes, layout, plot, time_cell};
use crate::data::{AgentOverview, Counts, HandlerTraffic, Overview};

pub(super) fn overview(frame: &Frame<'_>, overview: &Overview) -> Markup {
    layout(
        frame,
        Nav::Overview,
        "Overview",
        html! {
            h1 { "Overview" }
            (backend_notes(frame.capabilities))
            section.cards {
                div.card #queue-depth {
                    span.label { "Queue depth" }
                    span.figure { (overview.queue_depth) }
                    span.muted { "undelivered events" }
                }
                div.card #accepting {
                    span.label { "Intake" }
                    @if overview.accepting {
                        span.figure.ok { "accepting" }
                    } @else {
                        span.figure.bad { "full" }
                        span.muted { "senders get 503 and retry" }
                    }
                }
            }
            h2 { "Handlers" }
            @if overview.handlers.is_empty() {
                p.muted { "No handler is configured." }
            } @else {
                p.legend {
                    span.key.accepted { "accepted" }
                    span.key.ignored { "duplicate or ignored" }
                    span.key.refused { "refused" }
                    " per minute, last 60 minutes"
                }
                table.handlers #handlers {
                    thead {
                        tr {
                            th { "Handler" }
                            th { "Period" }
                            th.num { "Accepted" }
                            th.num { "Duplicate" }
                            th.num { "Ignored" }
                            th { "Refused" }
                            th { "Last hour" }
                        }
                    }
                    @for handler in &overview.handlers { (handler_rows(handler)) }
                }
            }
            h2 { "Agents" }
            @if overview.agents.is_empty() {
                p.muted { "No agent is configured." }
            } @else {
                table.agents #agents {
                    thead {
                        tr {
                            th { "Agent" }
                            th.num { "Backlog" }
                            th.num { "Dead" }
                            th.num { "Success rate" }
                            th { "Last error" }
                        }
                    }
                    tbody {
                        @for agent in &overview.agents { (agent_row(frame, agent)) }
                    }
                }
                p.muted { "Success rate counts attempts since the daemon started." }
            }
        },
    )
}

/// Two rows per handler (last hour, last day) sharing the name and the plot.
fn handler_rows(traffic: &HandlerTraffic) -> Markup {
    html! {
        tbody.handler data-handler=(traffic.handler) {
            tr {
                th rowspan="2" scope="rowgroup" {
                    a href=(super::query::link("/events", &[("handler", traffic.handler.clone())])) {
                        (traffic.handler)
                    }
                }
                td { "hour" }
                (counts_cells(&traffic.last_hour))
                td rowspan="2" { (plot::minutes(&traffic.handler, &traffic.series)) }
            }
            tr {
                td { "day" }
                (counts_cells(&traffic.last_day))
            }
        }
    }
}

fn counts_cells(counts: &Counts) -> Markup {
    html! {
        td.num { (counts.accepted) }
        td.num { (counts.duplicate) }
        td.num { (counts.ignored) }
        td.refused {
            @if counts.refused.is_empty() {
                span.muted { "0" }
            } @else {
                (counts.refused_total()) " "
                span.reasons {
                    @for (i, (reason, n)) in counts.refused.iter().enumerate() {
                        @if i > 0 { ", " }
                        (reason) ": " (n)
                    }
                }
            }
        }
    }
}

fn agent_row(frame: &Frame<'_>, agent: &AgentOverview) -> Markup {
    let unknown = html! { span.muted title="not known on this backend" { "n/a" } };
    html! {
        tr data-agent=(agent.agent) {
            th scope="row" { (agent.agent) }
            td.num {
                @match agent.backlog { Some(n) => (n), None => (unknown) }
            }
            td.num {
                @match agent.dead {
                    Some(0) => "0",
                    Some(n) => a href=(super::query::link("/dead", &[("agent", agent.agent.clone())])) { (n) },
                    None => (unknown),
                }
            }
            td.num {
                @match agent.success_rate {
                    Some(rate) => {
                        (format!("{:.1}%", rate * 100.0))
                        span.muted { " of " (agent.attempts) }
                    }
                    None => span.muted { "no attempts yet" },
                }
            }
            td.error {
                @if let Some(error) = &agent.last_error {
                    @if let Some(at) = agent.last_error_at { (time_cell(frame.now, at)) ": " }
                    code { (error) }
                } @else {
                    span.muted { "none" }
                }
            }
        }
    }
}
