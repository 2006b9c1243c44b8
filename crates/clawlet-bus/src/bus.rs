use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use clawlet_events::Envelope;

mod console;

use crate::admin::AttemptNote;
use crate::dispatch::Handoff;
use crate::local::LocalStore;
use crate::mem::MemStore;
use crate::nats::{NatsStore, StreamLimits};
use crate::spec::Routes;
use crate::sql::{self, InsertLimits, NewEvent};
use crate::store::{
    Claimed, FULL_RETRY_AFTER, Finish, Fresh, Inserted, Payload, Placement, Shared, Work, dur_ms,
    now_ms,
};
use crate::{
    AttemptOutcome, Backend, BusError, BusOptions, Health, ListFilter, Published, ReplaySelector,
    StoredEvent,
};

/// The backends, chosen once at open; every call matches on it (no boxing on the publish path).
pub(crate) enum Store {
    /// The SQLite journal.
    Local(LocalStore),
    /// Plain maps in this process.
    Memory(Box<MemStore>),
    Nats(Box<NatsStore>),
}

struct Inner {
    shared: Arc<Shared>,
    store: Store,
    backend: &'static str,
    /// Where publish hands deliveries straight to the dispatcher; `None` without a dispatcher
    /// (sqlite, memory).
    handoff: ArcSwapOption<Handoff>,
}

/// The queue every accepted event goes through. Cheap to clone; all clones share one backend.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use clawlet_bus::{Backend, Bus, BusOptions};
/// let bus = Bus::open(BusOptions::new(Backend::Memory)).await.unwrap();
/// assert!(!bus.is_durable());
/// assert_eq!(bus.health().depth, 0);
/// # });
/// ```
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("backend", &self.inner.backend)
            .finish_non_exhaustive()
    }
}

impl Bus {
    /// Opens the backend: creates the journal (and its directory) or the JetStream stream.
    pub async fn open(opts: BusOptions) -> Result<Bus, BusError> {
        let shared = Arc::new(Shared::new(
            opts.max_pending,
            opts.dedup_window,
            opts.retention,
        ));
        let backend = opts.backend.name();
        let store = match opts.backend {
            Backend::Sqlite { path } => {
                let shared = Arc::clone(&shared);
                let store = tokio::task::spawn_blocking(move || LocalStore::open(&path, shared))
                    .await
                    .map_err(|e| BusError::Storage(format!("journal open task failed: {e}")))??;
                Store::Local(store)
            }
            Backend::Memory => Store::Memory(Box::default()),
            Backend::Nats {
                url,
                shown_url,
                stream,
                duplicate_window,
                max_bytes,
                replicas,
            } => Store::Nats(Box::new(
                NatsStore::open(
                    &url,
                    &shown_url,
                    StreamLimits {
                        name: stream,
                        duplicate_window,
                        max_bytes,
                        replicas,
                    },
                    Arc::clone(&shared),
                )
                .await?,
            )),
        };
        Ok(Bus {
            inner: Arc::new(Inner {
                shared,
                store,
                backend,
                handoff: ArcSwapOption::empty(),
            }),
        })
    }

    /// Stores `envelope` unless its handler already stored its delivery id within the dedup
    /// window. Returns only once the event is durable in the backend (memory: held in memory).
    pub async fn publish(&self, envelope: &Envelope) -> Result<Published, BusError> {
        self.publish_owned(envelope.clone()).await
    }

    /// [`Bus::publish`] for a caller that no longer needs the envelope: it is handed to the
    /// dispatcher as it is, without a copy of its payload.
    pub async fn publish_owned(&self, envelope: Envelope) -> Result<Published, BusError> {
        // The live tail gets the event without its payload, and only while someone listens.
        let published = &self.inner.shared.published;
        let head = (published.receiver_count() > 0).then(|| console::head(&envelope));
        let result = self.publish_inner(envelope).await;
        if let (Some(head), Ok(Published::Accepted { .. })) = (head, &result) {
            let _ = published.send(std::sync::Arc::new(head));
        }
        result
    }

    async fn publish_inner(&self, envelope: Envelope) -> Result<Published, BusError> {
        // JetStream dedups before anything else, and the store keeps its own count of the
        // backlog, so that a resend to a full queue is still answered as a duplicate.
        if let Store::Nats(store) = &self.inner.store {
            return store.publish(envelope).await;
        }
        let shared = &self.inner.shared;
        if !shared.alive.load(Ordering::Relaxed) {
            return Err(BusError::Closed);
        }
        if shared.pending.load(Ordering::Relaxed) >= shared.max_pending {
            // A delivery already stored is answered `duplicate` even now: refused, its sender
            // would retry something that needs no retry. The lookup costs no serialisation.
            let stored = match &self.inner.store {
                Store::Local(store) => store.stored(&envelope).await?,
                Store::Memory(store) => store.stored(shared, &envelope, now_ms()),
                Store::Nats(_) => None,
            };
            return match stored {
                Some(event_id) => Ok(Published::Duplicate { event_id }),
                None => Err(BusError::Full {
                    retry_after: FULL_RETRY_AFTER,
                }),
            };
        }
        match &self.inner.store {
            Store::Local(store) => self.publish_local(store, envelope).await,
            Store::Memory(store) => self.publish_memory(store, envelope),
            Store::Nats(store) => store.publish(envelope).await,
        }
    }

    /// Stores the event in the journal. Each agent the event is routed to and that has a free
    /// dispatcher slot gets its delivery row written in flight, and the envelope handed to the
    /// dispatcher right after the commit (on the writer thread, so even when the publisher
    /// stopped waiting): no second read of the journal, no second parse. Agents without a free
    /// slot get a pending row that the dispatcher claims later. A `log` agent's line is written
    /// before the commit, and its row written delivered (see [`Placer`]).
    async fn publish_local(
        &self,
        store: &LocalStore,
        envelope: Envelope,
    ) -> Result<Published, BusError> {
        let shared = &self.inner.shared;
        let fresh = Arc::new(Fresh::new(envelope)?);
        // A full queue refuses the event (unless it is a duplicate): under overload, refusals
        // need not pay for compression. Should room appear before the writer stores it, it is
        // stored uncompressed, which every reader takes as well.
        let full = shared.pending.load(Ordering::Relaxed) >= shared.max_pending;
        let event = NewEvent::new(&fresh, !full);
        let handoff = self.inner.handoff.load_full();
        let placing = Arc::clone(&fresh);
        store
            .call_then(
                move |tx| {
                    let shared = tx.shared;
                    let routes = shared.routes.load();
                    let limits = InsertLimits {
                        pending: &shared.pending,
                        max_pending: shared.max_pending,
                        dedup_window_ms: dur_ms(shared.dedup_window),
                        retry_after: FULL_RETRY_AFTER,
                    };
                    let placer = Placer::new(routes.as_deref(), handoff.as_deref(), &placing);
                    let inserted = sql::insert_event_placing(
                        tx.conn,
                        tx.dedup,
                        &event,
                        routes.as_deref(),
                        &limits,
                        now_ms(),
                        &|agent| placer.place(agent),
                    )
                    .inspect_err(|_| placer.give_back())?;
                    if inserted.left_pending {
                        // The dispatcher's next claim queues behind this commit.
                        shared.notify.notify_one();
                    }
                    let delivered = placer.into_delivered();
                    Ok((inserted, delivered, handoff))
                },
                move |result, commit_error| {
                    let (inserted, delivered, handoff) = result?;
                    match commit_error {
                        None => Ok(hand_over(inserted, &delivered, handoff.as_deref(), &fresh)),
                        Some(e) => {
                            if let Some(h) = &handoff {
                                h.slots.release_all(&inserted.taken);
                            }
                            Err(e.clone())
                        }
                    }
                },
            )
            .await
    }

    /// [`Bus::publish_local`] for the memory backend: the same handover, with nothing to commit.
    fn publish_memory(&self, store: &MemStore, envelope: Envelope) -> Result<Published, BusError> {
        let shared = &self.inner.shared;
        let fresh = Arc::new(Fresh::new(envelope)?);
        let handoff = self.inner.handoff.load();
        let routes = shared.routes.load();
        let placer = Placer::new(routes.as_deref(), handoff.as_deref(), &fresh);
        let inserted = store
            .insert(shared, &fresh, routes.as_deref(), now_ms(), &|agent| {
                placer.place(agent)
            })
            .inspect_err(|_| placer.give_back())?;
        if inserted.left_pending {
            shared.notify.notify_one();
        }
        let delivered = placer.into_delivered();
        Ok(hand_over(inserted, &delivered, handoff.as_deref(), &fresh))
    }

    /// Whether publish would be tried, and how many events are undelivered. No I/O.
    pub fn health(&self) -> Health {
        let shared = &self.inner.shared;
        let depth = shared.pending.load(Ordering::Relaxed);
        Health {
            accepting: shared.alive.load(Ordering::Relaxed) && depth < shared.max_pending,
            depth,
            backend: self.inner.backend,
        }
    }

    /// `sqlite`, `memory` or `nats`.
    pub fn backend_name(&self) -> &'static str {
        self.inner.backend
    }

    /// False only for the memory backend, whose events die with the process.
    pub fn is_durable(&self) -> bool {
        self.inner.backend != "memory"
    }

    /// Journal transactions committed since open (sqlite, memory; 0 for nats). Concurrent
    /// publishes share transactions, so this grows slower than the number of publishes.
    pub fn transactions(&self) -> u64 {
        self.inner.shared.transactions.load(Ordering::Relaxed)
    }

    /// Sends the selected events to their agents again, through this process (so a running
    /// dispatcher starts at once). Returns how many events were requeued. The memory backend
    /// forgets delivered events, so only pending and dead ones can be replayed there.
    pub async fn replay(&self, selector: ReplaySelector) -> Result<u64, BusError> {
        let n = match &self.inner.store {
            Store::Local(store) => store.replay(selector).await?,
            Store::Memory(store) => store.replay(&self.inner.shared, &selector, now_ms()),
            Store::Nats(_) => return Err(self.unsupported()),
        };
        self.inner.shared.notify.notify_one();
        Ok(n)
    }

    /// The journal's events, newest first (sqlite, memory).
    pub async fn list(&self, filter: ListFilter) -> Result<Vec<StoredEvent>, BusError> {
        match &self.inner.store {
            Store::Local(store) => store.list(filter).await,
            Store::Memory(store) => store.list(&filter, now_ms()),
            Store::Nats(_) => Err(self.unsupported()),
        }
    }

    /// One event of the journal (sqlite, memory).
    pub async fn show(&self, id: &str) -> Result<Option<StoredEvent>, BusError> {
        match &self.inner.store {
            Store::Local(store) => store.show(id.to_owned()).await,
            Store::Memory(store) => store.show(id),
            Store::Nats(_) => Err(self.unsupported()),
        }
    }

    /// Applies retention now (it also runs periodically): prunes delivered events older than
    /// `retention` and dedup entries older than `dedup_window`. Returns the events pruned.
    pub async fn prune(&self) -> Result<u64, BusError> {
        match &self.inner.store {
            Store::Local(store) => store.prune().await,
            Store::Memory(store) => Ok(store.prune(&self.inner.shared, now_ms())),
            Store::Nats(store) => store.prune(self.inner.shared.retention).await,
        }
    }

    fn unsupported(&self) -> BusError {
        BusError::Unsupported {
            backend: self.inner.backend,
        }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// Where publish hands deliveries to a running dispatcher (sqlite, memory); `None` stops it.
    pub(crate) fn set_handoff(&self, handoff: Option<Arc<Handoff>>) {
        self.inner.handoff.store(handoff);
    }

    /// Registers routes for publish-time routing.
    pub(crate) fn set_routes(&self, routes: Routes) {
        self.inner.shared.routes.store(Some(Arc::new(routes)));
    }

    /// Routes the events stored before any routes were registered.
    pub(crate) async fn route_unrouted(&self) -> Result<u64, BusError> {
        let shared = &self.inner.shared;
        let n = match &self.inner.store {
            Store::Nats(_) => return Ok(0),
            Store::Memory(store) => match shared.routes.load_full() {
                Some(routes) => store.route_unrouted(shared, &routes, now_ms()),
                None => 0,
            },
            Store::Local(store) => store.route_unrouted().await?,
        };
        shared.notify.notify_one();
        Ok(n)
    }

    pub(crate) async fn claim(
        &self,
        limit: impl Fn(&str) -> usize + Send + 'static,
    ) -> Result<Claimed, BusError> {
        match &self.inner.store {
            Store::Local(store) => store.claim(limit).await,
            Store::Memory(store) => Ok(store.claim(&limit, now_ms())),
            Store::Nats(_) => Err(self.unsupported()),
        }
    }

    /// Records an attempt's outcome (`note`, when an attempt was made, goes to the attempts
    /// history first: the memory backend forgets an event once it is delivered).
    pub(crate) async fn finish(
        &self,
        event_id: String,
        agent: String,
        outcome: Finish,
        note: Option<AttemptNote>,
    ) -> Result<(), BusError> {
        match &self.inner.store {
            Store::Local(store) => store.finish(event_id, agent, outcome, note).await,
            Store::Memory(store) => {
                if let Some(note) = &note {
                    store.record_attempt(&event_id, &agent, note);
                }
                store.finish(&self.inner.shared, &event_id, &agent, &outcome, now_ms());
                Ok(())
            }
            Store::Nats(_) => Err(self.unsupported()),
        }
    }
}

/// Chooses where publish puts each delivery of the event it stores ([`Placement`]), and keeps
/// what it did: the dispatcher slots it took, to give back if the event is not stored after all,
/// and the deliveries it made, to count once the event is.
///
/// A `log` agent's delivery is a line in the daemon's own log, which cannot fail, so it is made
/// here rather than handed to the dispatcher: before the commit, which keeps it at least once
/// (a failed commit is answered with an error, and the sender's retry writes the line again),
/// and without the second journal write that recording an attempt's outcome would cost.
struct Placer<'a> {
    routes: Option<&'a Routes>,
    handoff: Option<&'a Handoff>,
    fresh: &'a Fresh,
    taken: RefCell<Vec<String>>,
    /// Each agent delivered here, with how long its line took.
    delivered: RefCell<Vec<(String, Duration)>>,
}

impl<'a> Placer<'a> {
    fn new(routes: Option<&'a Routes>, handoff: Option<&'a Handoff>, fresh: &'a Fresh) -> Self {
        Self {
            routes,
            handoff,
            fresh,
            taken: RefCell::default(),
            delivered: RefCell::default(),
        }
    }

    /// Deliveries are made only while a dispatcher runs (`handoff`): a stopped one leaves them
    /// all pending, the log lines included, for the next start.
    fn place(&self, agent: &str) -> Placement {
        let Some(handoff) = self.handoff else {
            return Placement::Pending;
        };
        if self.routes.is_some_and(|r| r.delivers_inline(agent)) {
            let started = Instant::now();
            crate::agent::log_line(agent, &self.fresh.envelope);
            self.delivered
                .borrow_mut()
                .push((agent.to_owned(), started.elapsed()));
            Placement::Delivered
        } else if handoff.slots.try_take(agent) {
            self.taken.borrow_mut().push(agent.to_owned());
            Placement::InFlight
        } else {
            Placement::Pending
        }
    }

    /// The event was not stored: the slots taken go back to the dispatcher.
    fn give_back(&self) {
        if let Some(h) = self.handoff {
            h.slots.release_all(&self.taken.borrow());
        }
    }

    fn into_delivered(self) -> Vec<(String, Duration)> {
        self.delivered.into_inner()
    }
}

/// Once the event is stored: passes the deliveries an insert took a slot for to the dispatcher,
/// and counts the ones made while storing it.
fn hand_over(
    inserted: Inserted,
    delivered: &[(String, Duration)],
    handoff: Option<&Handoff>,
    fresh: &Arc<Fresh>,
) -> Published {
    if let (Some(handoff), Published::Accepted { event_id }) = (handoff, &inserted.published) {
        for (agent, took) in delivered {
            handoff
                .observer
                .attempt(agent, AttemptOutcome::Delivered, *took);
        }
        for agent in inserted.taken {
            handoff.send(Work {
                event_id: event_id.clone(),
                agent,
                attempts: 0,
                payload: Payload::Fresh(Arc::clone(fresh)),
            });
        }
    }
    inserted.published
}
