//! The live tail: events as they are stored, from the bus's broadcast channel (fed at publish,
//! so nothing polls the store), as a stream the SSE route writes out.

use std::pin::Pin;
use std::task::{Context, Poll};

use clawlet_bus::DeliveryStatus;
use futures_util::{Stream, StreamExt};
use tokio::sync::broadcast;

use crate::data::EventRow;
use crate::state::Console;

/// One event of the live tail: a listing row, status `pending` (it was just stored).
pub type TailEvent = EventRow;

/// What the tail stream yields.
#[derive(Debug, Clone)]
pub enum TailItem {
    /// A newly stored event.
    Event(TailEvent),
    /// This many events went by while the reader was too slow; it may reload the listing.
    Lagged(u64),
}

/// A stream of newly stored events; it ends when the bus closes.
pub struct TailStream {
    inner: Pin<Box<dyn Stream<Item = TailItem> + Send>>,
}

impl std::fmt::Debug for TailStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TailStream")
    }
}

impl Stream for TailStream {
    type Item = TailItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<TailItem>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl Console {
    /// Follows the events stored from now on.
    pub fn tail(&self) -> TailStream {
        let rx = self.0.bus.subscribe_published();
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(envelope) => {
                    let row = EventRow {
                        id: envelope.id.clone(),
                        handler: envelope.handler.clone(),
                        event_type: envelope.event_type.clone(),
                        action: envelope.action.clone(),
                        delivery_id: envelope.delivery_id.clone(),
                        received_at: envelope.received_at,
                        summary: envelope.summary.clone(),
                        status: DeliveryStatus::Pending,
                    };
                    Some((TailItem::Event(row), rx))
                }
                Err(broadcast::error::RecvError::Lagged(n)) => Some((TailItem::Lagged(n), rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        let stop = self.0.shutdown.clone().cancelled_owned();
        TailStream {
            inner: Box::pin(stream.take_until(stop)),
        }
    }
}
