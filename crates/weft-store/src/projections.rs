//! The projections' area of the store: each projection's key-value state,
//! its status (what it folded, its last errors) and the position of a build
//! under way; and [`FoldTxn`], the writer's transaction lent to a run of
//! folds with the tables they use opened once.
//!
//! A projection's keys live under `{projection}\0{key}` in one table, so a
//! projection's state is one contiguous range. What a fold may write, and
//! when its writes are kept, is the runtime's business, not this module's.

use std::collections::BTreeMap;
use std::sync::Arc;

use redb::{ReadableTable, Table};

use crate::tables::{
    ACTIVITY_IDS, PROJECTION_BUILDS, PROJECTION_STATE, PROJECTION_STATUS, RECORDS, split_state_key,
    state_key,
};
use crate::{ActivityRecord, ProjectionStatus, RecentIds, Snapshot, StoreError, WriteTxn};

impl WriteTxn {
    /// Projection `name`'s status as this transaction has it.
    pub fn projection_status(&self, name: &str) -> Result<Option<ProjectionStatus>, StoreError> {
        status_in(&self.txn.open_table(PROJECTION_STATUS)?, name)
    }

    pub fn put_projection_status(
        &self,
        name: &str,
        status: &ProjectionStatus,
    ) -> Result<(), StoreError> {
        self.txn
            .open_table(PROJECTION_STATUS)?
            .insert(name, postcard::to_stdvec(status)?.as_slice())?;
        Ok(())
    }

    /// Starts building projection `name` from the whole log: its status
    /// goes now, its state in [`WriteTxn::clear_projection_state`] steps.
    pub fn start_build(&self, name: &str) -> Result<(), StoreError> {
        self.txn.open_table(PROJECTION_BUILDS)?.insert(name, 0)?;
        self.txn.open_table(PROJECTION_STATUS)?.remove(name)?;
        Ok(())
    }

    /// The next position a build of `name` folds (0: its old state is still
    /// being cleared), or `None` if it is not being built.
    pub fn build_position(&self, name: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .txn
            .open_table(PROJECTION_BUILDS)?
            .get(name)?
            .map(|v| v.value()))
    }

    pub fn set_build_position(&self, name: &str, next: u64) -> Result<(), StoreError> {
        self.txn.open_table(PROJECTION_BUILDS)?.insert(name, next)?;
        Ok(())
    }

    /// Ends the build of `name` (done, or its module gone).
    pub fn end_build(&self, name: &str) -> Result<(), StoreError> {
        self.txn.open_table(PROJECTION_BUILDS)?.remove(name)?;
        Ok(())
    }

    /// Removes up to `most` of projection `name`'s keys. Answers how many
    /// keys it found, up to `most + 1`: more than `most` means some are left.
    pub fn clear_projection_state(&self, name: &str, most: u64) -> Result<u64, StoreError> {
        let most = usize::try_from(most).unwrap_or(usize::MAX);
        let mut kv = self.txn.open_table(PROJECTION_STATE)?;
        let prefix = state_key(name, "");
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for entry in kv.range(prefix.as_slice()..)?.take(most.saturating_add(1)) {
            let (k, _) = entry?;
            if !k.value().starts_with(&prefix) {
                break;
            }
            keys.push(k.value().to_vec());
        }
        for key in keys.iter().take(most) {
            kv.remove(key.as_slice())?;
        }
        Ok(keys.len() as u64)
    }
}

/// The tables a run of folds reads and writes.
struct FoldTables<'txn> {
    kv: Table<'txn, &'static [u8], &'static str>,
    ids: Table<'txn, &'static [u8], u64>,
    records: Table<'txn, u64, &'static [u8]>,
}

self_cell::self_cell!(
    /// The writer's transaction with the fold tables opened.
    struct FoldCell {
        owner: WriteTxn,
        #[not_covariant]
        dependent: FoldTables,
    }
);

/// The writer's transaction lent to a run of folds (or a verb's reactions),
/// with the tables they use opened once rather than on every host call.
pub struct FoldTxn {
    cell: FoldCell,
    /// The id index's newest entries.
    ids: Arc<RecentIds>,
}

impl std::fmt::Debug for FoldTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FoldTxn").finish_non_exhaustive()
    }
}

impl FoldTxn {
    /// Opens the fold tables in `txn`; `ids` is the store's
    /// [`crate::Store::recent_ids`]. On failure `txn` is dropped (aborted),
    /// as the batch it belongs to cannot commit.
    pub fn open(txn: WriteTxn, ids: Arc<RecentIds>) -> Result<Self, StoreError> {
        let cell = FoldCell::try_new(txn, |txn| {
            Ok::<_, StoreError>(FoldTables {
                kv: txn.txn.open_table(PROJECTION_STATE)?,
                ids: txn.txn.open_table(ACTIVITY_IDS)?,
                records: txn.txn.open_table(RECORDS)?,
            })
        })?;
        Ok(Self { cell, ids })
    }

    /// Gives the transaction back.
    pub fn into_txn(self) -> WriteTxn {
        self.cell.into_owner()
    }

    /// The JSON of activity `id` (a content id), as this transaction has it:
    /// earlier activities of the same batch included.
    pub fn activity_json(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.cell.with_dependent(|_, tables| {
            let Some(p) = self.ids.newest_position(id, &tables.ids, &tables.records)? else {
                return Ok(None);
            };
            Ok(match tables.records.get(p)? {
                Some(v) => Some(postcard::from_bytes::<ActivityRecord>(v.value())?.json),
                None => None,
            })
        })
    }

    /// Projection `projection`'s value at `key`.
    pub fn kv_get(&self, projection: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.cell
            .with_dependent(|_, tables| get(&tables.kv, projection, key))
    }

    /// Projection `projection`'s entries from `from` on, in key order, to
    /// `visit` until it answers `false`.
    pub fn kv_scan(
        &self,
        projection: &str,
        from: &str,
        visit: impl FnMut(&str, &str) -> bool,
    ) -> Result<(), StoreError> {
        self.cell
            .with_dependent(|_, tables| scan(&tables.kv, projection, from, visit))
    }

    /// Writes `writes` to projection `projection`'s state: `None` deletes.
    pub fn kv_apply(
        &mut self,
        projection: &str,
        writes: &BTreeMap<String, Option<String>>,
    ) -> Result<(), StoreError> {
        self.cell.with_dependent_mut(|_, tables| {
            let mut stored = state_key(projection, "");
            let base = stored.len();
            for (key, value) in writes {
                stored.truncate(base);
                stored.extend_from_slice(key.as_bytes());
                match value {
                    Some(v) => tables.kv.insert(stored.as_slice(), v.as_str())?,
                    None => tables.kv.remove(stored.as_slice())?,
                };
            }
            Ok(())
        })
    }
}

impl Snapshot {
    /// Projection `projection`'s value at `key`, as of this snapshot.
    pub fn kv_get(&self, projection: &str, key: &str) -> Result<Option<String>, StoreError> {
        get(&self.txn.open_table(PROJECTION_STATE)?, projection, key)
    }

    /// Projection `projection`'s entries from `from` on, in key order, to
    /// `visit` until it answers `false`.
    pub fn kv_scan(
        &self,
        projection: &str,
        from: &str,
        visit: impl FnMut(&str, &str) -> bool,
    ) -> Result<(), StoreError> {
        scan(
            &self.txn.open_table(PROJECTION_STATE)?,
            projection,
            from,
            visit,
        )
    }

    /// Every projection's entries as (projection, key, value), in the
    /// table's order (by projection, then key): the whole state at once,
    /// for checks that compare it.
    pub fn kv_entries(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.txn.open_table(PROJECTION_STATE)?.iter()? {
            let (k, v) = entry?;
            let (projection, key) =
                split_state_key(k.value()).ok_or_else(|| StoreError::Corrupt {
                    what: "a projection state key that is not `{projection}\\0{key}` in UTF-8"
                        .into(),
                })?;
            out.push((projection.to_owned(), key.to_owned(), v.value().to_owned()));
        }
        Ok(out)
    }
}

/// Projection `name`'s status in `table`.
pub(crate) fn status_in(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<Option<ProjectionStatus>, StoreError> {
    table
        .get(name)?
        .map(|v| Ok(postcard::from_bytes(v.value())?))
        .transpose()
}

/// `projection`'s value at `key` in `kv`.
fn get(
    kv: &impl ReadableTable<&'static [u8], &'static str>,
    projection: &str,
    key: &str,
) -> Result<Option<String>, StoreError> {
    Ok(kv
        .get(state_key(projection, key).as_slice())?
        .map(|v| v.value().to_owned()))
}

/// The entries of `projection` from key `from` on, to `visit`.
fn scan(
    kv: &impl ReadableTable<&'static [u8], &'static str>,
    projection: &str,
    from: &str,
    mut visit: impl FnMut(&str, &str) -> bool,
) -> Result<(), StoreError> {
    let own = state_key(projection, "");
    for entry in kv.range(state_key(projection, from).as_slice()..)? {
        let (k, v) = entry?;
        let Some(key) = k.value().strip_prefix(own.as_slice()) else {
            break;
        };
        let key = std::str::from_utf8(key).map_err(|_| StoreError::Corrupt {
            what: format!("projection `{projection}`'s store holds a key that is not UTF-8"),
        })?;
        if !visit(key, v.value()) {
            break;
        }
    }
    Ok(())
}
