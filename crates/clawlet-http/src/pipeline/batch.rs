//! A verified batch (SendGrid's array of events, split by `clawlet_events::parse_batch`): each
//! event passes the handler's `events` filter and is published on its own, under its own
//! delivery id, and the request is answered 2xx only once every selected event is stored now or
//! was before.
//!
//! The events are published together: the journal's writer commits concurrent publishes in one
//! transaction, so a batch costs about one commit rather than one per event. When any publish
//! fails, the batch gets what a failed single publish gets (503 with `Retry-After`) and the
//! sender resends it whole; the events stored meanwhile are then answered as duplicates and the
//! rest are stored, so nothing is stored twice and nothing is lost.

use axum::Json;
use axum::response::{IntoResponse, Response};
use clawlet_bus::Published;
use clawlet_events::Envelope;
use futures_util::future::join_all;

use super::{Done, Trail};
use crate::app::{App, Handler};
use crate::error::ApiError;
use crate::spec::ResponseType;

/// What a batch's events came to, answered to the sender.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Outcome {
    /// `accepted` when any event was stored now, else `duplicate` when any was stored before,
    /// else `ignored` (every event left out by the filter, or an empty batch).
    status: &'static str,
    /// Events stored now.
    accepted: u64,
    /// Events already stored (their delivery id is in the dedup window).
    duplicate: u64,
    /// Events the handler's `events` list leaves out: verified, not stored.
    ignored: u64,
    /// The stored event id of each event stored now or before, in the order of the batch.
    event_ids: Vec<String>,
}

impl Outcome {
    /// The word of the answer's `status`, the request log's `outcome` and the console's count.
    pub(crate) fn word(&self) -> &'static str {
        self.status
    }

    /// `{"status":…,"accepted":…,"duplicate":…,"ignored":…,"event_ids":[…]}`, or as text
    /// `<status> accepted=<n> duplicate=<n> ignored=<n>` followed by the event ids.
    pub(crate) fn render(&self, kind: ResponseType) -> Response {
        match kind {
            ResponseType::Json => Json(self).into_response(),
            ResponseType::Text => {
                let mut line = format!(
                    "{} accepted={} duplicate={} ignored={}",
                    self.status, self.accepted, self.duplicate, self.ignored
                );
                for id in &self.event_ids {
                    line.push(' ');
                    line.push_str(id);
                }
                line.push('\n');
                line.into_response()
            }
        }
    }
}

/// Filters and publishes the events of one batch; see the module's documentation.
pub(super) async fn publish(
    app: &App,
    handler: &Handler,
    envelopes: Vec<Envelope>,
    trail: &mut Trail,
) -> Result<Done, ApiError> {
    let name = handler.spec.name.as_str();
    trail.batch_size = Some(envelopes.len());
    if let Some(first) = envelopes.first() {
        trail.event_type = Some(first.event_type.clone());
        trail.delivery_id = Some(first.delivery_id.clone());
    }
    let total = envelopes.len();
    let selected: Vec<Envelope> = envelopes
        .into_iter()
        .filter(|e| {
            clawlet_events::selects(&handler.spec.events, &e.event_type, e.action.as_deref())
        })
        .collect();
    let ignored = total - selected.len();
    let results = join_all(
        selected
            .into_iter()
            .map(|envelope| app.0.bus.publish_owned(envelope)),
    )
    .await;
    let mut event_ids = Vec::with_capacity(results.len());
    let (mut accepted, mut duplicate) = (0u64, 0u64);
    for result in results {
        // The first failure in the batch's order answers for it.
        match result.map_err(ApiError::Unavailable)? {
            Published::Accepted { event_id } => {
                accepted += 1;
                event_ids.push(event_id);
            }
            Published::Duplicate { event_id } => {
                duplicate += 1;
                event_ids.push(event_id);
            }
        }
    }
    let ignored = ignored as u64;
    // Counted only for a batch answered 2xx, as a single delivery's are: a refused batch comes
    // back whole, and is counted then.
    app.0.metrics.batch(name, duplicate, ignored);
    let status = if accepted > 0 {
        "accepted"
    } else if duplicate > 0 {
        "duplicate"
    } else {
        "ignored"
    };
    Ok(Done::Batch(Outcome {
        status,
        accepted,
        duplicate,
        ignored,
        event_ids,
    }))
}
