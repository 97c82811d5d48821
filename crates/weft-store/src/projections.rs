//! The projections' area of the store: each projection's key-value state,
//! its status (what it folded, its last errors) and the position of a build
//! under way; and [`FoldTxn`], the writer's transaction lent to a run of
//! folds with the tables they use opened once.
//!
//! A projection's keys live under `{namespace}\0{key}` in one table, so a
//! projection's state is one contiguous range. The namespace is the
//! projection's name for its first generation and `{name}#{n}` for the n-th
//! ([`crate::tables::namespace`]): a rebuild builds the next generation
//! beside the one served and swaps it in, in one transaction, when it has
//! caught up; the old one's keys are then removed in steps. What a fold may
//! write, and when its writes are kept, is the runtime's business, not this
//! module's.

use std::collections::BTreeMap;
use std::sync::Arc;

use redb::{ReadableTable, Table};

use crate::tables::{
    ACTIVITY_IDS, PROJECTION_BUILDS, PROJECTION_DROPS, PROJECTION_GENERATIONS, PROJECTION_REBUILDS,
    PROJECTION_STATE, PROJECTION_STATUS, RECORDS, namespace, split_namespace, split_state_key,
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

    /// Ends the build of `name` (done, or its module gone), and the
    /// rebuild it was, if any.
    pub fn end_build(&self, name: &str) -> Result<(), StoreError> {
        self.txn.open_table(PROJECTION_BUILDS)?.remove(name)?;
        self.txn.open_table(PROJECTION_REBUILDS)?.remove(name)?;
        Ok(())
    }

    /// The generation of projection `name`'s state that is served.
    pub fn projection_generation(&self, name: &str) -> Result<u64, StoreError> {
        generation_in(&self.txn.open_table(PROJECTION_GENERATIONS)?, name)
    }

    /// The generation a rebuild of `name` under way builds, if one is.
    pub fn rebuild_target(&self, name: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .txn
            .open_table(PROJECTION_REBUILDS)?
            .get(name)?
            .map(|v| v.value()))
    }

    /// Starts rebuilding projection `name` from the whole log into its next
    /// generation, beside the one served (which keeps its state and status
    /// until [`WriteTxn::swap_generation`]). A rebuild under way starts
    /// again. Answers the generation it builds.
    pub fn start_rebuild(&self, name: &str) -> Result<u64, StoreError> {
        let target = match self.rebuild_target(name)? {
            Some(target) => target,
            None => self.projection_generation(name)? + 1,
        };
        self.txn
            .open_table(PROJECTION_REBUILDS)?
            .insert(name, target)?;
        self.txn.open_table(PROJECTION_BUILDS)?.insert(name, 0)?;
        self.txn
            .open_table(PROJECTION_STATUS)?
            .remove(namespace(name, target).as_str())?;
        Ok(target)
    }

    /// Serves generation `target` of `name`, which a rebuild has built:
    /// its status becomes the projection's, the rebuild ends, and the
    /// generation served until now is dropped (its keys in
    /// [`WriteTxn::drop_step`]s).
    pub fn swap_generation(&self, name: &str, target: u64) -> Result<(), StoreError> {
        let old = self.projection_generation(name)?;
        self.txn
            .open_table(PROJECTION_GENERATIONS)?
            .insert(name, target)?;
        let mut status = self.txn.open_table(PROJECTION_STATUS)?;
        let built = status
            .remove(namespace(name, target).as_str())?
            .map(|v| v.value().to_vec());
        match built {
            Some(built) => status.insert(name, built.as_slice())?,
            None => status.remove(name)?,
        };
        drop(status);
        if old != target {
            self.txn
                .open_table(PROJECTION_DROPS)?
                .insert(namespace(name, old).as_str(), ())?;
        }
        self.end_build(name)
    }

    /// Removes up to `most` keys of a dropped generation. Answers whether
    /// any dropped generation's keys are left after it.
    pub fn drop_step(&self, most: u64) -> Result<bool, StoreError> {
        let first = self
            .txn
            .open_table(PROJECTION_DROPS)?
            .first()?
            .map(|(k, _)| k.value().to_owned());
        let Some(dropped) = first else {
            return Ok(false);
        };
        if self.clear_projection_state(&dropped, most)? <= most {
            self.txn
                .open_table(PROJECTION_DROPS)?
                .remove(dropped.as_str())?;
        }
        self.has_drops()
    }

    /// Whether a dropped generation's keys are left to remove.
    pub fn has_drops(&self) -> Result<bool, StoreError> {
        Ok(self.txn.open_table(PROJECTION_DROPS)?.first()?.is_some())
    }

    /// Removes up to `most` of the keys under namespace `name` (a
    /// projection's generation). Answers how many keys it found, up to
    /// `most + 1`: more than `most` means some are left.
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
    /// The generation of projection `name`'s state that this snapshot serves.
    pub fn projection_generation(&self, name: &str) -> Result<u64, StoreError> {
        generation_in(&self.txn.open_table(PROJECTION_GENERATIONS)?, name)
    }

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
    /// order of projection name, then key: the whole state served at
    /// once (the generation of each projection that is served), for checks
    /// that compare it.
    pub fn kv_entries(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut out = Vec::new();
        served_state(&self.txn, |name, key, value| {
            out.push((name.to_owned(), key.to_owned(), value.to_owned()));
        })?;
        // By projection name, whatever the generations' namespaces.
        out.sort();
        Ok(out)
    }
}

/// Every entry of the generation each projection serves, as (projection
/// name, key, value), to `visit`, in the state table's order: a
/// projection's entries come together, in key order. A rebuild's
/// generation and a replaced one's keys are left out.
pub(crate) fn served_state(
    txn: &redb::ReadTransaction,
    mut visit: impl FnMut(&str, &str, &str),
) -> Result<(), StoreError> {
    let generations = txn.open_table(PROJECTION_GENERATIONS)?;
    for entry in txn.open_table(PROJECTION_STATE)?.iter()? {
        let (k, v) = entry?;
        let (space, key) = split_state_key(k.value()).ok_or_else(|| StoreError::Corrupt {
            what: "a projection state key that is not `{projection}\\0{key}` in UTF-8".into(),
        })?;
        let (name, generation) = split_namespace(space);
        if generation == generation_in(&generations, name)? {
            visit(name, key, v.value());
        }
    }
    Ok(())
}

/// The generation of projection `name` served, in `table`.
pub(crate) fn generation_in(
    table: &impl ReadableTable<&'static str, u64>,
    name: &str,
) -> Result<u64, StoreError> {
    Ok(table.get(name)?.map_or(0, |v| v.value()))
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
