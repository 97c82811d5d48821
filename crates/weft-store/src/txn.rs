//! The writer's transaction: [`WriteTxn`], the one handle through which
//! everything one batch of activities changes (log, indexes, projections,
//! jobs) is written and committed together.
//!
//! Layers above the store hold a `WriteTxn` and pass it around (the kernel's
//! writer lends it to the registry, which lends it to each projection's fold
//! session); they read and write through its typed methods, here and in the
//! area modules (`projections`, `modules`), never through tables. What it
//! is not: a general transaction API; a method exists for each thing the
//! kernel does.

use crate::tables::{ACTORS, REACTIONS, RECORDS};
use crate::{ActivityRecord, StoreError};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::ReadableTable;

/// An open write transaction. Dropping it without [`WriteTxn::commit`]
/// aborts it: nothing it wrote is kept.
pub struct WriteTxn {
    pub(crate) txn: redb::WriteTransaction,
    /// Set when a commit without the allocator state lands
    /// (`Store::with_quick_repair` off).
    unsettled: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for WriteTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTxn").finish_non_exhaustive()
    }
}

impl WriteTxn {
    pub(crate) fn new(txn: redb::WriteTransaction, unsettled: Option<Arc<AtomicBool>>) -> Self {
        Self { txn, unsettled }
    }

    /// Makes everything written durable, at once.
    pub fn commit(self) -> Result<(), StoreError> {
        self.txn.commit()?;
        if let Some(unsettled) = self.unsettled {
            unsettled.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Makes everything written visible to later transactions and to
    /// readers, but not yet durable: a crash loses it, with every commit
    /// like it since the last [`WriteTxn::commit`], which makes them all
    /// durable at once (as closing the store does). For work the node can
    /// redo and has told no one is done, such as a projection's build step:
    /// it skips the two flushes to disk and the saving of the allocator
    /// state that a durable commit makes, and a crash leaves the state of
    /// the last durable commit, whole.
    pub fn commit_lazily(mut self) -> Result<(), StoreError> {
        self.txn
            .set_durability(redb::Durability::None)
            .map_err(|_| StoreError::Internal("a lazy commit of a transaction with a savepoint"))?;
        Ok(self.txn.commit()?)
    }

    /// Drops everything written.
    pub fn abort(self) -> Result<(), StoreError> {
        Ok(self.txn.abort()?)
    }

    /// Whether `id` is an actor of this node (local or known remote).
    pub fn has_actor(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.txn.open_table(ACTORS)?.get(id)?.is_some())
    }

    /// The position of the last activity in the log, 0 for an empty log.
    pub fn last_position(&self) -> Result<u64, StoreError> {
        crate::last_position_in(&self.txn.open_table(RECORDS)?)
    }

    /// At most `limit` activities at positions `from..=to`, in log order.
    pub fn records(
        &self,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<(u64, ActivityRecord)>, StoreError> {
        crate::records_in(&self.txn.open_table(RECORDS)?, from, to, limit)
    }

    /// Marks the activities at `positions` as having reactions to deliver.
    pub fn put_reactions(
        &self,
        positions: impl IntoIterator<Item = u64>,
    ) -> Result<(), StoreError> {
        let mut rows = self.txn.open_table(REACTIONS)?;
        for position in positions {
            rows.insert(position, ())?;
        }
        Ok(())
    }
}
