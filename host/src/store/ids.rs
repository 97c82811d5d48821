//! The newest part of the id index, kept in memory.
//!
//! Activity ids are content hashes, so every insert into the `activity_ids`
//! table lands on a random page: at a million stored activities each append
//! dirtied a page of its own, and writing those pages back dominated the
//! commit. Instead, the ids of recent appends are held here, keyed by id,
//! and once there are [`FLUSH_AT`] of them they are merged into the table
//! in key order, a slice of at least [`MIN_STEP`] ids per batch (a
//! [`STEPS`]th of them), so each of the table's pages is dirtied about once
//! per merge rather than once per activity, and no one batch stalls on a
//! merge of the whole table.
//!
//! Nothing is lost in a crash: the records themselves (keyed by position,
//! appended in order) are durable, and the `meta` entry [`INDEXED_THROUGH`]
//! says up to which position the table is complete; opening the store reads
//! the records after it back into memory.
//!
//! A lookup is exact for any snapshot: an entry found here is confirmed
//! against the record at its position *in that snapshot* (so entries of
//! uncommitted or newer appends are ignored), and a snapshot taken before a
//! flush that has since removed entries from memory scans the few records
//! it cannot otherwise see. This is not a cache: nothing here is ever
//! evicted except by a committed flush.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use redb::{ReadableTable, StorageError};
use serde::Deserialize;

/// `meta` key: every id at a position at or below this is in the table.
pub const INDEXED_THROUGH: &str = "ids_indexed_through";

/// How many ids are held before a merge into the table starts.
pub const FLUSH_AT: usize = 200_000;

/// A merge is spread over about this many batches…
pub const STEPS: usize = 64;

/// …each writing at least this many ids.
pub const MIN_STEP: usize = 4096;

/// The ids appended since the table was last complete.
#[derive(Debug)]
pub struct RecentIds {
    inner: RwLock<Tail>,
    /// Held ids that make a flush due ([`FLUSH_AT`] but in tests).
    flush_at: usize,
    /// Fewest ids a merge writes per batch ([`MIN_STEP`] but in tests).
    min_step: usize,
}

impl Default for RecentIds {
    fn default() -> Self {
        Self::new(0, [], FLUSH_AT)
    }
}

#[derive(Debug, Default)]
struct Tail {
    /// id → position, for positions above `floor` (and, until the batch
    /// settles, the running batch's appends).
    map: HashMap<Box<str>, u64>,
    /// Every id at a position ≤ `floor` is in the committed table.
    floor: u64,
    /// Appends of the running batch, removed again if it does not commit.
    staged: Vec<(Box<str>, u64)>,
    /// The merge under way, if any.
    merge: Option<Merge>,
}

/// A merge of the ids held when it started into the table.
#[derive(Debug)]
struct Merge {
    /// Those ids in key order.
    sorted: Vec<(Box<str>, u64)>,
    /// How many of them committed batches have written.
    done: usize,
    /// How many the running batch writes (`done` once it commits).
    writing: usize,
    /// The highest position when the merge started: the floor once it ends.
    through: u64,
}

/// The leading field of a stored record: enough to confirm an id without
/// decoding the activity.
#[derive(Deserialize)]
struct IdOnly<'a> {
    id: &'a str,
}

/// The id of the record stored as `bytes`.
pub fn record_id(bytes: &[u8]) -> Option<&str> {
    postcard::take_from_bytes::<IdOnly<'_>>(bytes)
        .ok()
        .map(|(r, _)| r.id)
}

impl RecentIds {
    /// A tail for a table complete through `floor`, holding `entries`
    /// (the ids of the records after it).
    pub fn new(
        floor: u64,
        entries: impl IntoIterator<Item = (String, u64)>,
        flush_at: usize,
    ) -> Self {
        Self {
            flush_at: flush_at.max(1),
            min_step: MIN_STEP,
            inner: RwLock::new(Tail {
                map: entries
                    .into_iter()
                    .map(|(id, p)| (id.into_boxed_str(), p))
                    .collect(),
                floor,
                staged: Vec::new(),
                merge: None,
            }),
        }
    }

    /// The same tail with merges written at least `min_step` ids a batch.
    pub fn with_min_step(mut self, min_step: usize) -> Self {
        self.min_step = min_step.max(1);
        self
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tail> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Tail> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many ids are held.
    pub fn len(&self) -> usize {
        self.read().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records an append of the running batch.
    pub fn stage(&self, id: &str, position: u64) {
        let mut tail = self.write();
        tail.map.insert(id.into(), position);
        tail.staged.push((id.into(), position));
    }

    /// The position of `id` as seen by a transaction whose `records` and
    /// `ids` tables are given and whose `meta` says the table is complete
    /// through `indexed_through` (read lazily: only a miss needs it).
    pub fn position(
        &self,
        id: &str,
        ids: &impl ReadableTable<&'static [u8], u64>,
        records: &impl ReadableTable<u64, &'static [u8]>,
        indexed_through: impl FnOnce() -> Result<u64, StorageError>,
    ) -> Result<Option<u64>, StorageError> {
        let (candidate, floor) = {
            let tail = self.read();
            (tail.map.get(id).copied(), tail.floor)
        };
        if let Some(p) = candidate
            && records
                .get(p)?
                .is_some_and(|r| record_id(r.value()) == Some(id))
        {
            return Ok(Some(p));
        }
        if let Some(p) = ids.get(id.as_bytes())? {
            return Ok(Some(p.value()));
        }
        // A snapshot from before the latest flush: the ids that flush took
        // out of memory are not in its table either.
        let seen = indexed_through()?;
        if seen < floor {
            for entry in records.range(seen + 1..=floor)? {
                let (p, r) = entry?;
                if record_id(r.value()) == Some(id) {
                    return Ok(Some(p.value()));
                }
            }
        }
        Ok(None)
    }

    /// [`RecentIds::position`] in the writer's transaction: the newest
    /// state, whose table is complete through the current floor, so it
    /// never needs the older-snapshot scan.
    pub fn newest_position(
        &self,
        id: &str,
        ids: &impl ReadableTable<&'static [u8], u64>,
        records: &impl ReadableTable<u64, &'static [u8]>,
    ) -> Result<Option<u64>, StorageError> {
        self.position(id, ids, records, || Ok(u64::MAX))
    }

    /// Writes the running batch's slice of the merge under way, starting
    /// one if enough ids are held; `last` is the batch's last position.
    /// Answers the new floor to record as [`INDEXED_THROUGH`] when this
    /// slice ends the merge. Nothing here is final until
    /// [`RecentIds::settle`].
    pub fn flush(
        &self,
        ids: &mut redb::Table<'_, &'static [u8], u64>,
        last: u64,
    ) -> Result<Option<u64>, StorageError> {
        // The slice is copied out so that lookups are not held up while it
        // is written.
        let (slice, end, ends) = {
            let mut tail = self.write();
            if tail.merge.is_none() {
                if tail.map.len() < self.flush_at {
                    return Ok(None);
                }
                // Only committed appends: the running batch's own may yet
                // be dropped.
                let through = tail
                    .staged
                    .iter()
                    .map(|(_, p)| p.saturating_sub(1))
                    .min()
                    .unwrap_or(last);
                let mut sorted: Vec<(Box<str>, u64)> = tail
                    .map
                    .iter()
                    .filter(|(_, p)| **p <= through)
                    .map(|(k, v)| (k.clone(), *v))
                    .collect();
                sorted.sort_unstable();
                tail.merge = Some(Merge {
                    sorted,
                    done: 0,
                    writing: 0,
                    through,
                });
            }
            let Some(merge) = tail.merge.as_ref() else {
                return Ok(None);
            };
            let step = (merge.sorted.len() / STEPS).max(self.min_step);
            let end = (merge.done + step).min(merge.sorted.len());
            let ends = (end == merge.sorted.len()).then_some(merge.through);
            (merge.sorted[merge.done..end].to_vec(), end, ends)
        };
        for (id, position) in &slice {
            ids.insert(id.as_bytes(), *position)?;
        }
        if let Some(merge) = self.write().merge.as_mut() {
            merge.writing = end;
        }
        Ok(ends)
    }

    /// The running batch committed (`true`) or was dropped.
    pub fn settle(&self, committed: bool) {
        let mut tail = self.write();
        let staged = std::mem::take(&mut tail.staged);
        if committed {
            let ended = tail.merge.as_mut().and_then(|merge| {
                merge.done = merge.done.max(merge.writing);
                (merge.done == merge.sorted.len()).then_some(merge.through)
            });
            if let Some(floor) = ended {
                tail.merge = None;
                tail.map.retain(|_, p| *p > floor);
                tail.floor = floor;
            }
        } else {
            if let Some(merge) = tail.merge.as_mut() {
                merge.writing = merge.done;
            }
            for (id, position) in staged {
                if tail.map.get(&id) == Some(&position) {
                    tail.map.remove(&id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ActivityRecord;
    use crate::store::tables::{ACTIVITY_IDS, RECORDS};
    use redb::ReadableDatabase;

    fn record(id: &str) -> Vec<u8> {
        postcard::to_stdvec(&ActivityRecord {
            id: id.into(),
            json: "{}".into(),
            actor: "a".into(),
            seq: 1,
            public: false,
            backfilled: false,
        })
        .unwrap_or_default()
    }

    #[test]
    fn record_ids_are_read_from_the_prefix() {
        assert_eq!(record_id(&record("bxyz")), Some("bxyz"));
        assert_eq!(record_id(&[]), None);
    }

    /// Lookups are exact for every snapshot while a merge runs over
    /// several batches, after it, for a snapshot older than it, and after a
    /// dropped batch.
    #[test]
    fn lookups_are_exact_across_a_merge() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = redb::Database::create(dir.path().join("t.redb"))?;
        let tail = RecentIds::new(0, [], 2).with_min_step(1);
        // Appends one batch; answers the floor a merge it ended set.
        let write = |ids: &[(&str, u64)], commit: bool| -> anyhow::Result<Option<u64>> {
            let txn = db.begin_write()?;
            let ended = {
                let mut records = txn.open_table(RECORDS)?;
                let mut table = txn.open_table(ACTIVITY_IDS)?;
                for (id, p) in ids {
                    records.insert(*p, record(id).as_slice())?;
                    tail.stage(id, *p);
                }
                tail.flush(&mut table, ids.last().map_or(0, |l| l.1))?
            };
            if commit {
                txn.commit()?;
            }
            tail.settle(commit);
            Ok(ended)
        };
        let find = |txn: &redb::ReadTransaction, id: &str, through: u64| -> anyhow::Result<_> {
            let ids = txn.open_table(ACTIVITY_IDS)?;
            let records = txn.open_table(RECORDS)?;
            Ok(tail.position(id, &ids, &records, || Ok(through))?)
        };
        let in_table = |id: &str| -> anyhow::Result<bool> {
            Ok(db
                .begin_read()?
                .open_table(ACTIVITY_IDS)?
                .get(id.as_bytes())?
                .is_some())
        };
        // Two held ids start a merge of the committed ones: none yet.
        assert_eq!(write(&[("a", 1), ("b", 2)], true)?, Some(0));
        let old = db.begin_read()?;
        assert_eq!(find(&old, "a", 0)?, Some(1));
        assert_eq!(find(&old, "c", 0)?, None);

        // The next merge takes a and b, one per batch (its own append, c,
        // is left for later).
        assert_eq!(write(&[("c", 3)], true)?, None);
        assert!(in_table("a")? && !in_table("b")? && !in_table("c")?);
        // A dropped batch leaves neither its append nor its slice behind.
        assert_eq!(write(&[("z", 4)], false)?, Some(2));
        assert!(!in_table("b")?);
        assert_eq!(tail.len(), 3);
        assert_eq!(write(&[("d", 4)], true)?, Some(2));
        assert!(in_table("b")? && !in_table("c")?);
        assert_eq!(tail.len(), 2, "a and b leave memory once merged");

        let new = db.begin_read()?;
        for (id, p) in [("a", 1), ("b", 2), ("c", 3), ("d", 4)] {
            assert_eq!(find(&new, id, 2)?, Some(p), "{id}");
        }
        // The old snapshot still finds what it could see, and only that.
        assert_eq!(find(&old, "b", 0)?, Some(2));
        assert_eq!(find(&old, "c", 0)?, None);
        assert_eq!(find(&new, "z", 2)?, None);
        Ok(())
    }
}
