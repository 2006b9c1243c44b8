//! Request outcomes per handler and minute, kept in memory for a day: the overview's counts and
//! its plot. The HTTP layer feeds it where it counts its Prometheus metrics (the daemon wires a
//! tap from one to the other); handler names come from the configuration, so the map is bounded.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::data::{Counts, HandlerTraffic, MinuteCounts};

/// Minutes kept: one day.
const DAY: usize = 24 * 60;
/// Minutes in the overview's plot and its "last hour" counts.
const HOUR: usize = 60;

/// How the HTTP layer answered one request to a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Stored and queued.
    Accepted,
    /// Already stored within the dedup window.
    Duplicate,
    /// Verified but filtered out by the handler's `events`, or a GitHub ping.
    Ignored,
    /// Refused; the reason is the request log's and the metrics' code for it.
    Refused(&'static str),
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    /// The unix minute this bucket holds; a bucket of another minute is stale.
    minute: i64,
    accepted: u64,
    duplicate: u64,
    ignored: u64,
    refused: Vec<(&'static str, u64)>,
}

#[derive(Debug)]
struct Ring(Vec<Bucket>);

impl Ring {
    fn new() -> Self {
        Self(vec![
            Bucket {
                minute: i64::MIN,
                ..Bucket::default()
            };
            DAY
        ])
    }

    fn slot(minute: i64) -> usize {
        usize::try_from(minute.rem_euclid(DAY as i64)).unwrap_or(0)
    }

    /// The bucket for `minute`, emptied when it held an older minute; `None` when it holds a
    /// newer one (a count for a minute a day gone is dropped, not mixed into today's).
    fn bucket_mut(&mut self, minute: i64) -> Option<&mut Bucket> {
        let bucket = &mut self.0[Self::slot(minute)];
        if bucket.minute > minute {
            return None;
        }
        if bucket.minute != minute {
            *bucket = Bucket {
                minute,
                ..Bucket::default()
            };
        }
        Some(bucket)
    }

    fn bucket(&self, minute: i64) -> Option<&Bucket> {
        let bucket = &self.0[Self::slot(minute)];
        (bucket.minute == minute).then_some(bucket)
    }
}

/// Per-minute request counts by handler. Cheap to clone; clones count into the same table.
#[derive(Debug, Clone, Default)]
pub struct Traffic(Arc<Mutex<HashMap<String, Ring>>>);

impl Traffic {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Ring>> {
        // Counters only: a panic elsewhere leaves nothing half-done worth refusing.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one request answered now.
    pub fn record(&self, handler: &str, outcome: RequestOutcome) {
        self.record_at(handler, outcome, unix_now());
    }

    /// Counts one request answered at `unix_seconds`.
    pub fn record_at(&self, handler: &str, outcome: RequestOutcome, unix_seconds: i64) {
        let minute = unix_seconds.div_euclid(60);
        let mut table = self.lock();
        let ring = match table.get_mut(handler) {
            Some(ring) => ring,
            None => table.entry(handler.to_owned()).or_insert_with(Ring::new),
        };
        let Some(bucket) = ring.bucket_mut(minute) else {
            return;
        };
        match outcome {
            RequestOutcome::Accepted => bucket.accepted += 1,
            RequestOutcome::Duplicate => bucket.duplicate += 1,
            RequestOutcome::Ignored => bucket.ignored += 1,
            RequestOutcome::Refused(reason) => {
                match bucket.refused.iter_mut().find(|(r, _)| *r == reason) {
                    Some((_, n)) => *n += 1,
                    None => bucket.refused.push((reason, 1)),
                }
            }
        }
    }

    /// Each handler in `configured` or with traffic in the last day, by name, as of
    /// `unix_seconds`.
    pub(crate) fn snapshot(&self, configured: &[String], unix_seconds: i64) -> Vec<HandlerTraffic> {
        let now = unix_seconds.div_euclid(60);
        let table = self.lock();
        let mut names: Vec<&str> = configured.iter().map(String::as_str).collect();
        names.extend(table.keys().map(String::as_str));
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .map(|name| {
                let ring = table.get(name);
                let window = |minutes: usize| {
                    let mut counts = Counts::default();
                    let mut refused = BTreeMap::new();
                    for back in 0..minutes as i64 {
                        if let Some(b) = ring.and_then(|r| r.bucket(now - back)) {
                            counts.accepted += b.accepted;
                            counts.duplicate += b.duplicate;
                            counts.ignored += b.ignored;
                            for (reason, n) in &b.refused {
                                *refused.entry((*reason).to_owned()).or_insert(0) += n;
                            }
                        }
                    }
                    counts.refused = refused;
                    counts
                };
                let series = (0..HOUR as i64)
                    .rev()
                    .map(|back| {
                        let minute = now - back;
                        let b = ring.and_then(|r| r.bucket(minute));
                        MinuteCounts {
                            minute: minute * 60,
                            accepted: b.map_or(0, |b| b.accepted),
                            duplicate: b.map_or(0, |b| b.duplicate),
                            ignored: b.map_or(0, |b| b.ignored),
                            refused: b.map_or(0, |b| b.refused.iter().map(|(_, n)| n).sum()),
                        }
                    })
                    .collect();
                HandlerTraffic {
                    handler: name.to_owned(),
                    last_hour: window(HOUR),
                    last_day: window(DAY),
                    series,
                }
            })
            .collect()
    }
}

pub(crate) fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_fall_into_their_minute_and_age_out_of_the_hour_and_the_day() {
        let traffic = Traffic::default();
        // Half a minute into a minute (1_800_000_000 is a whole minute).
        let now = 1_800_000_030;
        let at = |minutes_ago: i64| now - minutes_ago * 60;
        traffic.record_at("gh", RequestOutcome::Accepted, at(0));
        traffic.record_at("gh", RequestOutcome::Accepted, at(59));
        traffic.record_at("gh", RequestOutcome::Duplicate, at(60));
        traffic.record_at("gh", RequestOutcome::Refused("invalid_signature"), at(0));
        traffic.record_at("gh", RequestOutcome::Refused("invalid_signature"), at(1439));
        traffic.record_at("gh", RequestOutcome::Ignored, at(1440));
        let snap = traffic.snapshot(&["stripe".to_owned()], now);
        assert_eq!(snap.len(), 2);
        let gh = &snap[0];
        assert_eq!(gh.handler, "gh");
        assert_eq!((gh.last_hour.accepted, gh.last_hour.duplicate), (2, 0));
        assert_eq!(gh.last_hour.refused_total(), 1);
        assert_eq!((gh.last_day.accepted, gh.last_day.duplicate), (2, 1));
        assert_eq!(gh.last_day.refused["invalid_signature"], 2);
        assert_eq!(gh.last_day.ignored, 0, "a day and a minute ago is gone");
        assert_eq!(gh.series.len(), 60);
        assert_eq!(gh.series[59].accepted, 1);
        assert_eq!(gh.series[59].refused, 1);
        assert_eq!(gh.series[0].accepted, 1);
        assert_eq!(snap[1].handler, "stripe");
        assert_eq!(snap[1].last_day, Counts::default());
    }

    #[test]
    fn a_slot_reused_a_day_later_starts_from_zero() {
        let traffic = Traffic::default();
        let now = 1_800_000_000;
        traffic.record_at("gh", RequestOutcome::Accepted, now - 86_400);
        traffic.record_at("gh", RequestOutcome::Accepted, now);
        let snap = traffic.snapshot(&[], now);
        assert_eq!(snap[0].last_day.accepted, 1);
    }
}
