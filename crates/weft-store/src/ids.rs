//! The newest part of the id index, and of remote authors' logs, kept in
//! memory.
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
//! Remote authors' positions, (author, seq) → id in the `log` table, are
//! held the same way and merged in the same steps: the authors of one
//! batch are many, so their entries land on as many pages of that table.
//! (Local actors' logs are few and written at their ends; they go to the
//! table directly, where their outboxes are paged from.)
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

use std::sync::{Arc, PoisonError, RwLock};

use redb::{ReadableTable, StorageError};
use serde::Deserialize;

/// The tail's maps hash with a fast hasher seeded per process: ids are
/// BLAKE3 hashes and authors URLs, looked up several times per append.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// `meta` key: every id at a position at or below this is in the table.
pub const INDEXED_THROUGH: &str = "ids_indexed_through";

/// How many ids are held before a merge into the table starts. Each held
/// id costs its text (`Arc<str>`), its map entry and, for a remote
/// author's activity, a position entry sharing both; a merge lists them in
/// key order, sharing the text too. Under a heavy inbox load to 1M
/// activities, holding 100,000 put the node's peak resident memory ~20 MiB
/// higher than 50,000 (152–160 against 136–141 MiB) for an inbox rate
/// within the noise: a merge half the size dirties about as many of the
/// table's pages, twice as often, which the batching still keeps far from
/// a page per append.
pub const FLUSH_AT: usize = 50_000;

/// A merge is spread over about this many batches…
pub const STEPS: usize = 64;

/// …each writing at least this many ids.
pub const MIN_STEP: usize = 4096;

/// A remote author's position: (author, seq).
type Slot = (Arc<str>, u64);

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
        Self::new(0, [], [], FLUSH_AT)
    }
}

#[derive(Debug, Default)]
struct Tail {
    /// id → position, for positions above `floor` (and, until the batch
    /// settles, the running batch's appends).
    map: HashMap<Arc<str>, u64>,
    /// Every id at a position ≤ `floor` is in the committed table.
    floor: u64,
    /// (author, seq) → (position, id) of remote authors' activities, for
    /// the same positions as `map`.
    slots: HashMap<Slot, (u64, Arc<str>)>,
    /// The authors named in `slots`, each held once: an inbox's senders
    /// are few beside their activities.
    authors: HashSet<Arc<str>>,
    /// Appends of the running batch, removed again if it does not commit.
    staged: Vec<(Arc<str>, u64)>,
    /// Their remote positions, likewise.
    staged_slots: Vec<(Slot, u64)>,
    /// The merge under way, if any.
    merge: Option<Merge>,
}

impl Tail {
    /// Holds a remote author's position, sharing the text of its id held
    /// for the same append ([`RecentIds::stage`]) and of its author.
    fn hold_slot(&mut self, actor: &str, seq: u64, id: &str, position: u64) -> Slot {
        let id = self
            .map
            .get_key_value(id)
            .map_or_else(|| Arc::from(id), |(held, _)| Arc::clone(held));
        let author = match self.authors.get(actor) {
            Some(held) => Arc::clone(held),
            None => {
                let author: Arc<str> = actor.into();
                self.authors.insert(Arc::clone(&author));
                author
            }
        };
        let slot: Slot = (author, seq);
        self.slots.insert(slot.clone(), (position, id));
        slot
    }
}

/// A merge of the ids held when it started into the table.
#[derive(Debug)]
struct Merge {
    /// Those ids in key order.
    sorted: Vec<(Arc<str>, u64)>,
    /// How many of them committed batches have written.
    done: usize,
    /// How many the running batch writes (`done` once it commits).
    writing: usize,
    /// The highest position when the merge started: the floor once it ends.
    through: u64,
    /// The remote positions held when it started, in key order, with their
    /// ids; written in slices in step with `sorted`.
    slots: Vec<(Slot, Arc<str>)>,
    slots_done: usize,
    slots_writing: usize,
}

/// The leading field of a stored record: enough to confirm an id without
/// decoding the activity.
#[derive(Deserialize)]
struct IdOnly<'a> {
    id: &'a str,
}

/// The fields of a stored record up to its position in its author's log.
#[derive(Deserialize)]
struct SlotOnly<'a> {
    id: &'a str,
    #[serde(rename = "json")]
    _json: &'a str,
    actor: &'a str,
    seq: u64,
}

/// The id of the record stored as `bytes`.
pub fn record_id(bytes: &[u8]) -> Option<&str> {
    postcard::take_from_bytes::<IdOnly<'_>>(bytes)
        .ok()
        .map(|(r, _)| r.id)
}

/// The (id, author, seq) of the record stored as `bytes`.
pub fn record_slot(bytes: &[u8]) -> Option<(&str, &str, u64)> {
    postcard::take_from_bytes::<SlotOnly<'_>>(bytes)
        .ok()
        .map(|(r, _)| (r.id, r.actor, r.seq))
}

/// The log table's type.
type LogTable<'t> = redb::Table<'t, (&'static [u8], u64), &'static str>;

impl RecentIds {
    /// A tail for tables complete through `floor`, holding `entries`
    /// (the ids of the records after it) and `slots` (the (author, seq,
    /// id, position) of those whose authors are remote; listing local
    /// ones too is harmless: their entries are in the table already).
    pub fn new(
        floor: u64,
        entries: impl IntoIterator<Item = (String, u64)>,
        slots: impl IntoIterator<Item = (String, u64, String, u64)>,
        flush_at: usize,
    ) -> Self {
        let mut tail = Tail {
            map: entries
                .into_iter()
                .map(|(id, p)| (Arc::from(id), p))
                .collect(),
            floor,
            ..Tail::default()
        };
        for (actor, seq, id, position) in slots {
            tail.hold_slot(&actor, seq, &id, position);
        }
        Self {
            flush_at: flush_at.max(1),
            min_step: MIN_STEP,
            inner: RwLock::new(tail),
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
        let id: Arc<str> = id.into();
        tail.map.insert(Arc::clone(&id), position);
        tail.staged.push((id, position));
    }

    /// Records a remote author's activity appended by the running batch
    /// (besides [`RecentIds::stage`] of its id).
    pub fn stage_slot(&self, actor: &str, seq: u64, id: &str, position: u64) {
        let mut tail = self.write();
        let slot = tail.hold_slot(actor, seq, id, position);
        tail.staged_slots.push((slot, position));
    }

    /// The id at `actor`'s `seq` as seen by a transaction whose `records`
    /// and `log` tables are given and whose `meta` says the tables are
    /// complete through `indexed_through` (read lazily); exact in the same
    /// way as [`RecentIds::position`].
    pub fn slot(
        &self,
        actor: &str,
        seq: u64,
        log: &impl ReadableTable<(&'static [u8], u64), &'static str>,
        records: &impl ReadableTable<u64, &'static [u8]>,
        indexed_through: impl FnOnce() -> Result<u64, StorageError>,
    ) -> Result<Option<String>, StorageError> {
        let (candidate, floor) = {
            let tail = self.read();
            let key: Slot = (actor.into(), seq);
            (tail.slots.get(&key).cloned(), tail.floor)
        };
        if let Some((p, id)) = candidate
            && records
                .get(p)?
                .is_some_and(|r| record_id(r.value()) == Some(&*id))
        {
            return Ok(Some(id.to_string()));
        }
        if let Some(id) = log.get((actor.as_bytes(), seq))? {
            return Ok(Some(id.value().to_owned()));
        }
        let seen = indexed_through()?;
        if seen < floor {
            for entry in records.range(seen + 1..=floor)? {
                let (_, r) = entry?;
                if let Some((id, a, s)) = record_slot(r.value())
                    && a == actor
                    && s == seq
                {
                    return Ok(Some(id.to_owned()));
                }
            }
        }
        Ok(None)
    }

    /// The held (seq, id) of `actor` with the highest seq above `above`,
    /// among the remote positions held here and confirmed against
    /// `records` (so uncommitted appends are not seen). A snapshot older
    /// than the latest flush may miss one the flush moved to the table;
    /// callers use this to find what to fetch, where missing one only
    /// fetches a duplicate.
    pub fn newest_slot(
        &self,
        actor: &str,
        above: u64,
        records: &impl ReadableTable<u64, &'static [u8]>,
    ) -> Result<Option<(u64, String)>, StorageError> {
        let mut candidates: Vec<(u64, u64, Arc<str>)> = {
            let tail = self.read();
            tail.slots
                .iter()
                .filter(|((a, seq), _)| &**a == actor && *seq > above)
                .map(|((_, seq), (p, id))| (*seq, *p, id.clone()))
                .collect()
        };
        candidates.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
        for (seq, position, id) in candidates {
            if records
                .get(position)?
                .is_some_and(|r| record_id(r.value()) == Some(&*id))
            {
                return Ok(Some((seq, id.to_string())));
            }
        }
        Ok(None)
    }

    /// The held (seq, id) of `actor` at seqs `from..=to` among the remote
    /// positions held here, confirmed against `records`, in seq order.
    pub fn slots_of(
        &self,
        actor: &str,
        from: u64,
        to: u64,
        records: &impl ReadableTable<u64, &'static [u8]>,
    ) -> Result<Vec<(u64, String)>, StorageError> {
        let mut candidates: Vec<(u64, u64, Arc<str>)> = {
            let tail = self.read();
            tail.slots
                .iter()
                .filter(|((a, seq), _)| &**a == actor && (from..=to).contains(seq))
                .map(|((_, seq), (p, id))| (*seq, *p, id.clone()))
                .collect()
        };
        candidates.sort_unstable_by_key(|c| c.0);
        let mut out = Vec::with_capacity(candidates.len());
        for (seq, position, id) in candidates {
            if records
                .get(position)?
                .is_some_and(|r| record_id(r.value()) == Some(&*id))
            {
                out.push((seq, id.to_string()));
            }
        }
        Ok(out)
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
        log: &mut LogTable<'_>,
        last: u64,
    ) -> Result<Option<u64>, StorageError> {
        // The slice is copied out so that lookups are not held up while it
        // is written.
        let (slice, end, slots, slots_end, ends) = {
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
                // Sized up front: a growing list would hold twice the room.
                let mut sorted: Vec<(Arc<str>, u64)> = Vec::with_capacity(tail.map.len());
                sorted.extend(
                    tail.map
                        .iter()
                        .filter(|(_, p)| **p <= through)
                        .map(|(k, v)| (k.clone(), *v)),
                );
                sorted.sort_unstable();
                let mut slots: Vec<(Slot, Arc<str>)> = Vec::with_capacity(tail.slots.len());
                slots.extend(
                    tail.slots
                        .iter()
                        .filter(|(_, (p, _))| *p <= through)
                        .map(|(k, (_, id))| (k.clone(), id.clone())),
                );
                slots.sort_unstable();
                tail.merge = Some(Merge {
                    sorted,
                    done: 0,
                    writing: 0,
                    through,
                    slots,
                    slots_done: 0,
                    slots_writing: 0,
                });
            }
            let Some(merge) = tail.merge.as_ref() else {
                return Ok(None);
            };
            let step = (merge.sorted.len() / STEPS).max(self.min_step);
            let end = (merge.done + step).min(merge.sorted.len());
            let ends = (end == merge.sorted.len()).then_some(merge.through);
            // The positions keep pace with the ids, and end with them.
            let slots_end = if ends.is_some() {
                merge.slots.len()
            } else {
                (merge.slots.len() * end / merge.sorted.len().max(1)).max(merge.slots_done)
            };
            (
                merge.sorted[merge.done..end].to_vec(),
                end,
                merge.slots[merge.slots_done..slots_end].to_vec(),
                slots_end,
                ends,
            )
        };
        for (id, position) in &slice {
            ids.insert(id.as_bytes(), *position)?;
        }
        for ((actor, seq), id) in &slots {
            log.insert((actor.as_bytes(), *seq), &**id)?;
        }
        if let Some(merge) = self.write().merge.as_mut() {
            merge.writing = end;
            merge.slots_writing = slots_end;
        }
        Ok(ends)
    }

    /// Forgets ids (and remote positions) whose records a committed
    /// transaction deleted ([`crate::WriteTxn::prune`]), here and in the
    /// part of a merge not yet written, so that no later merge writes them
    /// into the tables again. Call it on the writer's thread, between
    /// batches (a merge's written part is then committed, and the deleting
    /// transaction removed those rows from the tables itself).
    pub fn forget(&self, gone: &[(String, Option<(String, u64)>)]) {
        let mut tail = self.write();
        let ids: std::collections::HashSet<&str> = gone.iter().map(|(id, _)| id.as_str()).collect();
        let slots: std::collections::HashSet<(&str, u64)> = gone
            .iter()
            .filter_map(|(_, slot)| slot.as_ref().map(|(a, s)| (a.as_str(), *s)))
            .collect();
        tail.map.retain(|id, _| !ids.contains(&**id));
        tail.slots
            .retain(|(actor, seq), _| !slots.contains(&(&**actor, *seq)));
        if let Some(merge) = tail.merge.as_mut() {
            let done = merge.done;
            let mut i = 0;
            merge.sorted.retain(|(id, _)| {
                i += 1;
                i <= done || !ids.contains(&**id)
            });
            merge.writing = merge.done;
            let done = merge.slots_done;
            let mut i = 0;
            merge.slots.retain(|((actor, seq), _)| {
                i += 1;
                i <= done || !slots.contains(&(&**actor, *seq))
            });
            merge.slots_writing = merge.slots_done;
        }
    }

    /// The running batch committed (`true`) or was dropped.
    pub fn settle(&self, committed: bool) {
        let mut tail = self.write();
        let staged = std::mem::take(&mut tail.staged);
        let staged_slots = std::mem::take(&mut tail.staged_slots);
        if committed {
            let ended = tail.merge.as_mut().and_then(|merge| {
                merge.done = merge.done.max(merge.writing);
                merge.slots_done = merge.slots_done.max(merge.slots_writing);
                (merge.done == merge.sorted.len()).then_some(merge.through)
            });
            if let Some(floor) = ended {
                tail.merge = None;
                tail.map.retain(|_, p| *p > floor);
                tail.slots.retain(|_, (p, _)| *p > floor);
                // An author is held by the set and by each of its slots.
                tail.authors.retain(|a| Arc::strong_count(a) > 1);
                tail.floor = floor;
            }
        } else {
            if let Some(merge) = tail.merge.as_mut() {
                merge.writing = merge.done;
                merge.slots_writing = merge.slots_done;
            }
            for (id, position) in staged {
                if tail.map.get(&id) == Some(&position) {
                    tail.map.remove(&id);
                }
            }
            for (slot, position) in staged_slots {
                if tail.slots.get(&slot).is_some_and(|(p, _)| *p == position) {
                    tail.slots.remove(&slot);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ActivityRecord;
    use crate::tables::{ACTIVITY_IDS, LOG, RECORDS};
    use redb::ReadableDatabase;

    /// The record of `id`, by the remote author `r` at seq `seq`.
    fn record(id: &str, seq: u64) -> Vec<u8> {
        postcard::to_stdvec(&ActivityRecord {
            id: id.into(),
            json: "{}".into(),
            actor: "r".into(),
            seq,
            public: false,
            backfilled: false,
        })
        .unwrap_or_default()
    }

    #[test]
    fn record_ids_are_read_from_the_prefix() {
        assert_eq!(record_id(&record("bxyz", 7)), Some("bxyz"));
        assert_eq!(record_slot(&record("bxyz", 7)), Some(("bxyz", "r", 7)));
        assert_eq!(record_id(&[]), None);
        assert_eq!(record_slot(&[1]), None);
    }

    /// Lookups are exact for every snapshot while a merge runs over
    /// several batches, after it, for a snapshot older than it, and after a
    /// dropped batch.
    #[test]
    fn lookups_are_exact_across_a_merge() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = redb::Database::create(dir.path().join("t.redb"))?;
        let tail = RecentIds::new(0, [], [], 2).with_min_step(1);
        // Appends one batch; answers the floor a merge it ended set.
        let write = |ids: &[(&str, u64)], commit: bool| -> anyhow::Result<Option<u64>> {
            let txn = db.begin_write()?;
            let ended = {
                let mut records = txn.open_table(RECORDS)?;
                let mut table = txn.open_table(ACTIVITY_IDS)?;
                let mut log = txn.open_table(LOG)?;
                for (id, p) in ids {
                    // The author's seq is the position plus 10.
                    records.insert(*p, record(id, p + 10).as_slice())?;
                    tail.stage(id, *p);
                    tail.stage_slot("r", p + 10, id, *p);
                }
                tail.flush(&mut table, &mut log, ids.last().map_or(0, |l| l.1))?
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
        // The id at the author's seq, through the held positions.
        let at = |txn: &redb::ReadTransaction, seq: u64, through: u64| -> anyhow::Result<_> {
            let log = txn.open_table(LOG)?;
            let records = txn.open_table(RECORDS)?;
            Ok(tail.slot("r", seq, &log, &records, || Ok(through))?)
        };
        // Whether both tables have the id's entries.
        let in_table = |id: &str| -> anyhow::Result<bool> {
            let txn = db.begin_read()?;
            let Some(p) = txn.open_table(ACTIVITY_IDS)?.get(id.as_bytes())? else {
                return Ok(false);
            };
            let logged = txn.open_table(LOG)?.get(("r".as_bytes(), p.value() + 10))?;
            anyhow::ensure!(logged.is_some_and(|l| l.value() == id), "{id}'s log entry");
            Ok(true)
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
            assert_eq!(at(&new, p + 10, 2)?.as_deref(), Some(id), "{id}");
        }
        // The old snapshot still finds what it could see, and only that.
        assert_eq!(find(&old, "b", 0)?, Some(2));
        assert_eq!(at(&old, 12, 0)?.as_deref(), Some("b"));
        assert_eq!(find(&old, "c", 0)?, None);
        assert_eq!(at(&old, 13, 0)?, None);
        assert_eq!(find(&new, "z", 2)?, None);
        assert_eq!(
            tail.read().slots.len(),
            2,
            "the merged positions leave memory"
        );
        Ok(())
    }

    /// An id forgotten while a merge is under way (its record deleted, as
    /// a prune does) is not written into the tables by the rest of the
    /// merge, and lookups find it nowhere; the others are unaffected.
    #[test]
    fn a_forgotten_id_stays_out_of_a_merge() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = redb::Database::create(dir.path().join("t.redb"))?;
        let tail = RecentIds::new(0, [], [], 2).with_min_step(1);
        let write = |ids: &[(&str, u64)]| -> anyhow::Result<Option<u64>> {
            let txn = db.begin_write()?;
            let ended = {
                let mut records = txn.open_table(RECORDS)?;
                let mut table = txn.open_table(ACTIVITY_IDS)?;
                let mut log = txn.open_table(LOG)?;
                for (id, p) in ids {
                    records.insert(*p, record(id, p + 10).as_slice())?;
                    tail.stage(id, *p);
                    tail.stage_slot("r", p + 10, id, *p);
                }
                tail.flush(&mut table, &mut log, ids.last().map_or(0, |l| l.1))?
            };
            txn.commit()?;
            tail.settle(true);
            Ok(ended)
        };
        assert_eq!(write(&[("a", 1), ("b", 2)])?, Some(0));
        // A merge of a and b starts; a is written.
        assert_eq!(write(&[("c", 3)])?, None);
        // b's record goes, then b is forgotten.
        let txn = db.begin_write()?;
        txn.open_table(RECORDS)?.remove(2)?;
        txn.commit()?;
        tail.forget(&[("b".into(), Some(("r".into(), 12)))]);
        // The merge ends without b.
        assert_eq!(write(&[("d", 4)])?, Some(2));
        let txn = db.begin_read()?;
        let ids = txn.open_table(ACTIVITY_IDS)?;
        let log = txn.open_table(LOG)?;
        let records = txn.open_table(RECORDS)?;
        assert!(ids.get("b".as_bytes())?.is_none());
        assert!(log.get(("r".as_bytes(), 12))?.is_none());
        assert_eq!(tail.position("b", &ids, &records, || Ok(2))?, None);
        assert_eq!(tail.slot("r", 12, &log, &records, || Ok(2))?, None);
        for (id, p) in [("a", 1), ("c", 3), ("d", 4)] {
            assert_eq!(
                tail.position(id, &ids, &records, || Ok(2))?,
                Some(p),
                "{id}"
            );
        }
        Ok(())
    }

    /// A remote author's position holds the very text of its id held for
    /// the same append, and a merge lists the held texts without copying
    /// them: memory per held activity is one id's text.
    #[test]
    fn held_ids_are_shared_not_copied() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = redb::Database::create(dir.path().join("t.redb"))?;
        let tail = RecentIds::new(0, [], [], 1).with_min_step(1);
        tail.stage("bxyz", 1);
        tail.stage_slot("r", 7, "bxyz", 1);
        tail.stage("babc", 2);
        tail.stage_slot("r", 8, "babc", 2);
        tail.settle(true);
        {
            let held = tail.read();
            let (id, _) = held.map.get_key_value("bxyz").expect("held");
            let (_, slot_id) = held.slots.get(&(Arc::from("r"), 7)).expect("held");
            assert!(Arc::ptr_eq(id, slot_id));
            let authors: Vec<&Arc<str>> = held.slots.keys().map(|(a, _)| a).collect();
            assert!(Arc::ptr_eq(authors[0], authors[1]));
            assert_eq!(held.authors.len(), 1);
        }
        let txn = db.begin_write()?;
        {
            let mut ids = txn.open_table(crate::tables::ACTIVITY_IDS)?;
            let mut log = txn.open_table(crate::tables::LOG)?;
            tail.stage("bnext", 3);
            tail.flush(&mut ids, &mut log, 3)?;
        }
        let held = tail.read();
        let merge = held.merge.as_ref().expect("a merge started");
        let (id, _) = held.map.get_key_value("bxyz").expect("held");
        assert_eq!(merge.sorted.len(), 2);
        assert!(merge.sorted.iter().any(|(held, _)| Arc::ptr_eq(id, held)));
        Ok(())
    }
}
