//! The dedup index of the memory and SQLite backends: the delivery ids seen within the dedup
//! window.
//!
//! It holds an entry per delivery id for the whole window, which makes it the largest structure
//! either backend keeps in memory under load, so it is laid out densely and grows in small steps
//! (50 to 60 bytes per delivery id in all, with the table's free slots): entries sit
//! in recording order in fixed-size chunks (40 bytes each), and a hash table maps each key to its
//! entry's sequence number (8 bytes a slot). A `HashMap` from key to entry would leave a third of
//! its 48-byte slots empty on average, double all at once (holding old and new tables together,
//! and stalling publishes while it copies), and still need a queue for expiry.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;
use sha2::{Digest, Sha256};

/// Entries per chunk (160 KiB).
const CHUNK: usize = 4096;

/// The first 128 bits of SHA-256 over the handler and delivery id (length-prefixed, so that no
/// two pairs share an input): a collision is as unlikely as a UUID clash, and 16 bytes stand for
/// strings of up to 256 bytes each.
pub(crate) type DedupKey = [u8; 16];

pub(crate) fn dedup_key(handler: &str, delivery_id: &str) -> DedupKey {
    let mut hasher = Sha256::new();
    hasher.update((handler.len() as u64).to_le_bytes());
    hasher.update(handler.as_bytes());
    hasher.update(delivery_id.as_bytes());
    let digest = hasher.finalize();
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// An event id as a dedup entry keeps it: 16 bytes for the UUIDs publish assigns, the text for
/// any other (so that it reads back exactly as it was).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EventRef {
    Uuid([u8; 16]),
    Text(Box<str>),
}

impl EventRef {
    pub(crate) fn new(id: &str) -> Self {
        let mut canonical = uuid::Uuid::encode_buffer();
        match uuid::Uuid::try_parse(id) {
            // Only the canonical spelling, so that `to_string` gives back `id` itself.
            Ok(uuid) if uuid.hyphenated().encode_lower(&mut canonical) == id => {
                Self::Uuid(uuid.into_bytes())
            }
            _ => Self::Text(id.into()),
        }
    }
}

impl std::fmt::Display for EventRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Uuid(bytes) => uuid::Uuid::from_bytes(*bytes).hyphenated().fmt(f),
            Self::Text(text) => f.write_str(text),
        }
    }
}

/// One recorded delivery id.
#[derive(Debug)]
struct Entry {
    key: DedupKey,
    /// The event's UUID, unless `texts` holds its id.
    id: [u8; 16],
    seen: i64,
}

/// Delivery ids seen, with the event each one was stored as and when it was first seen.
#[derive(Debug, Default)]
pub(crate) struct Dedup {
    /// Entries in recording order, oldest first, in chunks of [`CHUNK`].
    log: VecDeque<Vec<Entry>>,
    /// The sequence number of the first chunk's first entry.
    base: u64,
    /// The sequence number the next entry gets.
    next: u64,
    /// How many of the first chunk's entries have expired.
    front: usize,
    /// The sequence numbers of the live entries, found by their entry's key.
    index: HashTable<u64>,
    hasher: RandomState,
    /// Event ids that are not canonical UUIDs, by sequence number (publish makes UUIDs).
    texts: HashMap<u64, Box<str>>,
}

/// The entry numbered `seq`, which must still be in `log`.
fn entry(log: &VecDeque<Vec<Entry>>, base: u64, seq: u64) -> &Entry {
    let at = usize::try_from(seq - base).unwrap_or(usize::MAX);
    &log[at / CHUNK][at % CHUNK]
}

impl Dedup {
    /// The event stored under `key`, unless [`Dedup::expire`] ended it.
    pub(crate) fn get(&self, key: &DedupKey) -> Option<EventRef> {
        let hash = self.hasher.hash_one(key);
        let seq = *self
            .index
            .find(hash, |&seq| entry(&self.log, self.base, seq).key == *key)?;
        Some(match self.texts.get(&seq) {
            Some(text) => EventRef::Text(text.clone()),
            None => EventRef::Uuid(entry(&self.log, self.base, seq).id),
        })
    }

    /// Records `key`, which [`Dedup::get`] does not hold, as first seen at `now`.
    pub(crate) fn insert(&mut self, key: DedupKey, id: EventRef, now: i64) {
        let seq = self.next;
        self.next += 1;
        let id = match id {
            EventRef::Uuid(bytes) => bytes,
            EventRef::Text(text) => {
                self.texts.insert(seq, text);
                [0; 16]
            }
        };
        let entry_now = Entry { key, id, seen: now };
        match self.log.back_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push(entry_now),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(entry_now);
                self.log.push_back(chunk);
            }
        }
        let Self {
            log,
            base,
            index,
            hasher,
            ..
        } = self;
        index.insert_unique(hasher.hash_one(key), seq, |&s| {
            hasher.hash_one(entry(log, *base, s).key)
        });
    }

    /// Ends the entries first seen before `cutoff`.
    pub(crate) fn expire(&mut self, cutoff: i64) {
        while let Some(chunk) = self.log.front() {
            let Some(oldest) = chunk.get(self.front) else {
                // Used up: dropped once full, since only the last chunk still takes entries.
                if chunk.len() < CHUNK {
                    break;
                }
                self.log.pop_front();
                self.base += CHUNK as u64;
                self.front = 0;
                continue;
            };
            if oldest.seen >= cutoff {
                break;
            }
            let seq = self.base + self.front as u64;
            let hash = self.hasher.hash_one(oldest.key);
            if let Ok(found) = self.index.find_entry(hash, |&s| s == seq) {
                found.remove();
            }
            self.texts.remove(&seq);
            self.front += 1;
        }
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Where the entries recorded from now on start, for [`Dedup::rollback`].
    pub(crate) fn mark(&self) -> u64 {
        self.next
    }

    /// Ends the entries recorded since `mark`, newest first: the SQLite backend's entries of a
    /// transaction that did not commit. Expiry never reaches them (they are newer than any cutoff
    /// applied meanwhile), so this only takes entries off the end of the log.
    pub(crate) fn rollback(&mut self, mark: u64) {
        while self.next > mark.max(self.base + self.front as u64) {
            let seq = self.next - 1;
            let Some(chunk) = self.log.back_mut() else {
                break;
            };
            let Some(last) = chunk.pop() else {
                self.log.pop_back();
                continue;
            };
            let hash = self.hasher.hash_one(last.key);
            if let Ok(found) = self.index.find_entry(hash, |&s| s == seq) {
                found.remove();
            }
            self.texts.remove(&seq);
            self.next = seq;
            if chunk.is_empty() {
                self.log.pop_back();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> DedupKey {
        dedup_key("github", &n.to_string())
    }

    /// A UUID for even `n`, text for odd.
    fn id_of(n: usize) -> String {
        if n.is_multiple_of(2) {
            uuid::Uuid::from_u128(u128::try_from(n).unwrap()).to_string()
        } else {
            format!("e{n}")
        }
    }

    /// Enough entries to fill several chunks and spread over every shard; expiry ends exactly
    /// those first seen before the cutoff, chunk boundaries or not.
    #[test]
    fn expiry_ends_exactly_the_entries_before_the_cutoff() {
        let mut dedup = Dedup::default();
        let total = CHUNK * 3 + 17;
        for n in 0..total {
            dedup.insert(key(n), EventRef::new(&id_of(n)), i64::try_from(n).unwrap());
        }
        assert_eq!(dedup.len(), total);
        assert_eq!(dedup.texts.len(), total / 2, "odd ids are text");

        for cutoff in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 5, total] {
            dedup.expire(i64::try_from(cutoff).unwrap());
            assert_eq!(dedup.len(), total - cutoff, "cutoff {cutoff}");
            assert!(dedup.get(&key(cutoff.saturating_sub(1))).is_none() || cutoff == 0);
            if cutoff < total {
                assert_eq!(
                    dedup.get(&key(cutoff)).map(|id| id.to_string()),
                    Some(id_of(cutoff))
                );
            }
        }
        assert!(dedup.log.len() <= 1, "used-up chunks are dropped");
        assert!(dedup.texts.is_empty());

        // Filling up again after everything expired.
        dedup.insert(
            key(0),
            EventRef::new("again"),
            i64::try_from(total).unwrap(),
        );
        assert_eq!(
            dedup.get(&key(0)).map(|id| id.to_string()).as_deref(),
            Some("again")
        );
        dedup.expire(i64::try_from(total).unwrap() + 1);
        assert_eq!(dedup.len(), 0);
    }

    /// A transaction that did not commit takes its entries back out, across chunk boundaries,
    /// and leaves older ones (expired or not) as they were.
    #[test]
    fn rollback_ends_exactly_the_entries_since_the_mark() {
        let mut dedup = Dedup::default();
        let kept = CHUNK + 10;
        for n in 0..kept {
            dedup.insert(key(n), EventRef::new(&id_of(n)), i64::try_from(n).unwrap());
        }
        dedup.expire(5);
        let mark = dedup.mark();
        let total = 2 * CHUNK + 3;
        for n in kept..total {
            dedup.insert(key(n), EventRef::new(&id_of(n)), i64::try_from(n).unwrap());
        }
        dedup.rollback(mark);
        assert_eq!(dedup.len(), kept - 5);
        assert_eq!(dedup.mark(), mark);
        assert!((kept..total).all(|n| dedup.get(&key(n)).is_none()));
        assert!((5..kept).all(|n| dedup.get(&key(n)).map(|id| id.to_string()) == Some(id_of(n))));
        assert!(dedup.texts.keys().all(|&seq| seq < mark));

        // Recording goes on where the rolled-back entries were.
        dedup.insert(
            key(total),
            EventRef::new("next"),
            i64::try_from(total).unwrap(),
        );
        assert_eq!(
            dedup.get(&key(total)).map(|id| id.to_string()).as_deref(),
            Some("next")
        );
        dedup.expire(i64::try_from(kept).unwrap());
        assert_eq!(dedup.len(), 1, "only the entry recorded after the rollback");

        // Everything rolled back, down to an empty log.
        let mut empty = Dedup::default();
        let mark = empty.mark();
        empty.insert(key(0), EventRef::new("e0"), 0);
        empty.rollback(mark);
        assert_eq!((empty.len(), empty.log.len()), (0, 0));
        empty.insert(key(1), EventRef::new("e1"), 1);
        assert_eq!(
            empty.get(&key(1)).map(|id| id.to_string()).as_deref(),
            Some("e1")
        );
    }

    /// Ids that are not canonical UUIDs come back as they were, and leave with their entry.
    #[test]
    fn ids_come_back_exactly() {
        let mut dedup = Dedup::default();
        let uuid = "0190a5e4-1c2d-7e3f-8a4b-5c6d7e8f9a0b";
        dedup.insert(key(1), EventRef::new(uuid), 0);
        dedup.insert(key(2), EventRef::new("e2"), 1);
        dedup.insert(
            key(3),
            EventRef::new("00000000-0000-0000-0000-000000000000"),
            2,
        );
        let id = |dedup: &Dedup, n| dedup.get(&key(n)).map(|id| id.to_string());
        assert_eq!(id(&dedup, 1).as_deref(), Some(uuid));
        assert_eq!(id(&dedup, 2).as_deref(), Some("e2"));
        assert_eq!(
            id(&dedup, 3).as_deref(),
            Some("00000000-0000-0000-0000-000000000000")
        );
        dedup.expire(2);
        assert_eq!((id(&dedup, 1), id(&dedup, 2)), (None, None));
        assert!(dedup.texts.is_empty());
        assert_eq!(dedup.len(), 1);
    }
}
