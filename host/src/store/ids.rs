//! The newest part of the id index, kept in memory.
//!
//! Activity ids are content hashes, so every insert into the `activity_ids`
//! table lands on a random page: at a million stored activities each append
//! dirtied a page of its own, and writing those pages back dominated the
//! commit. Instead, the ids of recent appends are held here, keyed by id,
//! and written to the table in one sorted run once there are
//! [`FLUSH_AT`] of them, which dirties each of the table's pages about once
//! per run rather than once per activity.
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

/// How many ids are held before they are written to the table in one run.
pub const FLUSH_AT: usize = 200_000;

/// The ids appended since the table was last complete.
#[derive(Debug)]
pub struct RecentIds {
    inner: RwLock<Tail>,
    /// Held ids that make a flush due ([`FLUSH_AT`] but in tests).
    flush_at: usize,
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
    /// The floor a flush in the running batch will set once it commits.
    flushing: Option<u64>,
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
            inner: RwLock::new(Tail {
                map: entries
                    .into_iter()
                    .map(|(id, p)| (id.into_boxed_str(), p))
                    .collect(),
                floor,
                staged: Vec::new(),
                flushing: None,
            }),
        }
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

    /// Whether a flush is due.
    pub fn flush_due(&self) -> bool {
        let tail = self.read();
        tail.flushing.is_none() && tail.map.len() >= self.flush_at
    }

    /// Writes every held id into `ids` in one sorted run, for the running
    /// batch to commit; answers the new floor to record as
    /// [`INDEXED_THROUGH`]. `last` is the batch's last position.
    pub fn flush(
        &self,
        ids: &mut redb::Table<'_, &'static [u8], u64>,
        last: u64,
    ) -> Result<u64, StorageError> {
        let mut entries: Vec<(Box<str>, u64)> = {
            let tail = self.read();
            tail.map.iter().map(|(k, v)| (k.clone(), *v)).collect()
        };
        entries.sort_unstable();
        for (id, position) in &entries {
            ids.insert(id.as_bytes(), *position)?;
        }
        self.write().flushing = Some(last);
        Ok(last)
    }

    /// The running batch committed (`true`) or was dropped.
    pub fn settle(&self, committed: bool) {
        let mut tail = self.write();
        let staged = std::mem::take(&mut tail.staged);
        let flushing = tail.flushing.take();
        if committed {
            if let Some(floor) = flushing {
                tail.map.retain(|_, p| *p > floor);
                tail.floor = floor;
            }
        } else {
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

    /// Lookups are exact for every snapshot: before a flush, after it, and
    /// for a snapshot older than a flush that emptied the tail.
    #[test]
    fn lookups_are_exact_across_a_flush() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = redb::Database::create(dir.path().join("t.redb"))?;
        let tail = RecentIds::default();
        let write = |ids: &[(&str, u64)], flush: bool| -> anyhow::Result<()> {
            let txn = db.begin_write()?;
            {
                let mut records = txn.open_table(RECORDS)?;
                let mut table = txn.open_table(ACTIVITY_IDS)?;
                for (id, p) in ids {
                    records.insert(*p, record(id).as_slice())?;
                    tail.stage(id, *p);
                }
                if flush {
                    tail.flush(&mut table, ids.last().map_or(0, |l| l.1))?;
                }
            }
            txn.commit()?;
            tail.settle(true);
            Ok(())
        };
        let find = |txn: &redb::ReadTransaction, id: &str, through: u64| -> anyhow::Result<_> {
            let ids = txn.open_table(ACTIVITY_IDS)?;
            let records = txn.open_table(RECORDS)?;
            Ok(tail.position(id, &ids, &records, || Ok(through))?)
        };
        write(&[("a", 1), ("b", 2)], false)?;
        let old = db.begin_read()?;
        assert_eq!(find(&old, "a", 0)?, Some(1));
        assert_eq!(find(&old, "c", 0)?, None);

        // A dropped batch leaves nothing behind.
        tail.stage("z", 3);
        tail.settle(false);
        assert_eq!(tail.len(), 2);

        write(&[("c", 3)], true)?;
        assert!(tail.is_empty());
        let new = db.begin_read()?;
        assert_eq!(find(&new, "a", 3)?, Some(1));
        assert_eq!(find(&new, "c", 3)?, Some(3));
        // The old snapshot still finds what it could see, and only that.
        assert_eq!(find(&old, "b", 0)?, Some(2));
        assert_eq!(find(&old, "c", 0)?, None);
        assert_eq!(find(&new, "z", 3)?, None);
        Ok(())
    }
}
