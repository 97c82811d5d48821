//! Storage (DESIGN §4): one redb file holding the logs, their indexes, actor
//! state and tokens. Records are serde + postcard.
//!
//! This module reads and writes records; it does not decide what may be
//! written (the kernel does) and never commits on its own: every write goes
//! through a transaction the kernel's writer owns, so one activity's changes
//! land together or not at all.

pub mod tables;

use std::path::Path;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::identity::ActorState;
use tables::*;

/// A storage failure. These are faults of the node, never of the client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is already open in another process (is `weft run` running?)")]
    Locked,
    #[error("database error: {0}")]
    Database(#[from] redb::DatabaseError),
    #[error("transaction error: {0}")]
    Transaction(#[from] redb::TransactionError),
    #[error("table error: {0}")]
    Table(#[from] redb::TableError),
    #[error("storage error: {0}")]
    Storage(#[from] redb::StorageError),
    #[error("commit failed: {0}")]
    Commit(#[from] redb::CommitError),
    #[error("corrupt record: {0}")]
    Codec(#[from] postcard::Error),
}

/// How an activity is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRecord {
    /// The activity id.
    pub id: String,
    /// The signed activity as JSON text, served as is.
    pub json: String,
    pub actor: String,
    pub seq: u64,
    /// Visible to anonymous readers.
    pub public: bool,
}

/// Who a bearer token speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Admin,
    Actor(String),
}

/// The database.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the database file and its tables.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = match Database::create(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(StoreError::Locked),
            Err(e) => return Err(e.into()),
        };
        let txn = db.begin_write()?;
        txn.open_table(RECORDS)?;
        txn.open_table(ACTIVITY_IDS)?;
        txn.open_table(LOG)?;
        txn.open_table(PUBLIC_LOG)?;
        txn.open_table(ACTORS)?;
        txn.open_table(NAMES)?;
        txn.open_table(TOKENS)?;
        txn.open_table(META)?;
        txn.open_table(ARTIFACTS)?;
        txn.open_table(MODULES)?;
        txn.open_table(PROJECTION_KV)?;
        txn.open_table(PROJECTION_STATUS)?;
        txn.commit()?;
        Ok(Self { db })
    }

    pub fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        Ok(self.db.begin_write()?)
    }

    pub fn read(&self) -> Result<Reader, StoreError> {
        Ok(Reader {
            txn: self.db.begin_read()?,
        })
    }

    /// A raw read snapshot, for code that reads tables of its own.
    pub fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.db.begin_read()?)
    }
}

/// Whether a module is a verb or a projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModuleKind {
    Verb,
    Projection,
}

impl ModuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verb => "verb",
            Self::Projection => "projection",
        }
    }
}

/// One definition of a module name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleVersion {
    pub version: u32,
    pub artifact: String,
    /// The Define activity that made this version.
    pub defined_by: String,
    pub defined_at: String,
    /// The Define activity's descriptive fields (description, wit,
    /// language, budgets), as JSON text.
    pub metadata: String,
}

/// A verb or projection name and every version it has had (newest last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRecord {
    pub name: String,
    pub kind: ModuleKind,
    pub versions: Vec<ModuleVersion>,
}

/// How far a projection has folded, and what went wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectionStatus {
    /// Global position of the last activity offered to the fold.
    pub position: u64,
    pub last_activity: Option<String>,
    pub folded: u64,
    pub failed: u64,
    /// The latest failures, newest last (at most 20).
    pub errors: Vec<FoldError>,
}

/// One failed fold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoldError {
    pub position: u64,
    pub activity: String,
    pub message: String,
}

/// A consistent snapshot for reading.
#[derive(Debug)]
pub struct Reader {
    txn: ReadTransaction,
}

impl Reader {
    pub fn actor(&self, id: &str) -> Result<Option<ActorState>, StoreError> {
        let table = self.txn.open_table(ACTORS)?;
        table
            .get(id)?
            .map(|v| Ok(postcard::from_bytes(v.value())?))
            .transpose()
    }

    pub fn actor_id_by_name(&self, name: &str) -> Result<Option<String>, StoreError> {
        let table = self.txn.open_table(NAMES)?;
        Ok(table.get(name)?.map(|v| v.value().to_owned()))
    }

    pub fn actor_by_name(&self, name: &str) -> Result<Option<ActorState>, StoreError> {
        match self.actor_id_by_name(name)? {
            Some(id) => self.actor(&id),
            None => Ok(None),
        }
    }

    /// Local usernames in order.
    pub fn local_names(&self) -> Result<Vec<String>, StoreError> {
        let table = self.txn.open_table(NAMES)?;
        let mut names = Vec::new();
        for entry in table.iter()? {
            names.push(entry?.0.value().to_owned());
        }
        Ok(names)
    }

    pub fn activity(&self, id: &str) -> Result<Option<ActivityRecord>, StoreError> {
        let ids = self.txn.open_table(ACTIVITY_IDS)?;
        let Some(position) = ids.get(id.as_bytes())?.map(|v| v.value()) else {
            return Ok(None);
        };
        let records = self.txn.open_table(RECORDS)?;
        records
            .get(position)?
            .map(|v| Ok(postcard::from_bytes(v.value())?))
            .transpose()
    }

    pub fn activity_at(&self, actor: &str, seq: u64) -> Result<Option<String>, StoreError> {
        let table = self.txn.open_table(LOG)?;
        Ok(table
            .get((actor.as_bytes(), seq))?
            .map(|v| v.value().to_owned()))
    }

    /// Activity ids of `actor` at seqs in `from..=to`, in seq order.
    pub fn log_range(
        &self,
        actor: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, String)>, StoreError> {
        let table = self.txn.open_table(LOG)?;
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        let actor = actor.as_bytes();
        for entry in table.range((actor, from)..=(actor, to))? {
            let (key, value) = entry?;
            out.push((key.value().1, value.value().to_owned()));
        }
        Ok(out)
    }

    /// Seqs of `actor`'s public activities with ranks in `from..=to`.
    pub fn public_range(&self, actor: &str, from: u64, to: u64) -> Result<Vec<u64>, StoreError> {
        let table = self.txn.open_table(PUBLIC_LOG)?;
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        let actor = actor.as_bytes();
        for entry in table.range((actor, from)..=(actor, to))? {
            out.push(entry?.1.value());
        }
        Ok(out)
    }

    /// The public rank of the first public activity after `seq`, found by
    /// binary search over the public index (ranks and seqs rise together).
    pub fn public_rank_after(
        &self,
        actor: &str,
        seq: u64,
        public_count: u64,
    ) -> Result<u64, StoreError> {
        let table = self.txn.open_table(PUBLIC_LOG)?;
        let (mut lo, mut hi) = (1, public_count + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = table
                .get((actor.as_bytes(), mid))?
                .map(|v| v.value())
                .unwrap_or(u64::MAX);
            if at > seq {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(lo)
    }

    pub fn role(&self, token_hash: &[u8; 32]) -> Result<Option<Role>, StoreError> {
        let table = self.txn.open_table(TOKENS)?;
        table
            .get(token_hash.as_slice())?
            .map(|v| Ok(postcard::from_bytes(v.value())?))
            .transpose()
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let table = self.txn.open_table(META)?;
        Ok(table.get(key)?.map(|v| v.value().to_owned()))
    }

    pub fn artifact(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let table = self.txn.open_table(ARTIFACTS)?;
        Ok(table.get(id)?.map(|v| v.value().to_vec()))
    }

    pub fn modules(&self) -> Result<Vec<ModuleRecord>, StoreError> {
        let table = self.txn.open_table(MODULES)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(postcard::from_bytes(entry?.1.value())?);
        }
        Ok(out)
    }

    pub fn module(&self, name: &str) -> Result<Option<ModuleRecord>, StoreError> {
        let table = self.txn.open_table(MODULES)?;
        table
            .get(name)?
            .map(|v| Ok(postcard::from_bytes(v.value())?))
            .transpose()
    }

    pub fn projection_status(&self, name: &str) -> Result<ProjectionStatus, StoreError> {
        let table = self.txn.open_table(PROJECTION_STATUS)?;
        Ok(table
            .get(name)?
            .map(|v| postcard::from_bytes(v.value()))
            .transpose()?
            .unwrap_or_default())
    }
}

/// The tables of one write transaction, opened once per batch.
pub struct Batch<'t> {
    records: redb::Table<'t, u64, &'static [u8]>,
    ids: redb::Table<'t, &'static [u8], u64>,
    log: redb::Table<'t, (&'static [u8], u64), &'static str>,
    public_log: redb::Table<'t, (&'static [u8], u64), u64>,
    actors: redb::Table<'t, &'static str, &'static [u8]>,
    names: redb::Table<'t, &'static str, &'static str>,
    tokens: redb::Table<'t, &'static [u8], &'static [u8]>,
    meta: redb::Table<'t, &'static str, &'static str>,
    artifacts: redb::Table<'t, &'static str, &'static [u8]>,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").finish_non_exhaustive()
    }
}

impl<'t> Batch<'t> {
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            records: txn.open_table(RECORDS)?,
            ids: txn.open_table(ACTIVITY_IDS)?,
            log: txn.open_table(LOG)?,
            public_log: txn.open_table(PUBLIC_LOG)?,
            actors: txn.open_table(ACTORS)?,
            names: txn.open_table(NAMES)?,
            tokens: txn.open_table(TOKENS)?,
            meta: txn.open_table(META)?,
            artifacts: txn.open_table(ARTIFACTS)?,
        })
    }

    pub fn actor(&self, id: &str) -> Result<Option<ActorState>, StoreError> {
        self.actors
            .get(id)?
            .map(|v| Ok(postcard::from_bytes(v.value())?))
            .transpose()
    }

    pub fn put_actor(&mut self, state: &ActorState) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(state)?;
        self.actors.insert(state.id.as_str(), bytes.as_slice())?;
        Ok(())
    }

    pub fn name_taken(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.names.get(name)?.is_some())
    }

    pub fn put_name(&mut self, name: &str, actor: &str) -> Result<(), StoreError> {
        self.names.insert(name, actor)?;
        Ok(())
    }

    pub fn put_token(&mut self, hash: &[u8; 32], role: &Role) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(role)?;
        self.tokens.insert(hash.as_slice(), bytes.as_slice())?;
        Ok(())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.meta.get(key)?.map(|v| v.value().to_owned()))
    }

    pub fn put_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.meta.insert(key, value)?;
        Ok(())
    }

    /// The next global position.
    pub fn next_position(&self) -> Result<u64, StoreError> {
        Ok(self
            .records
            .last()?
            .map(|(k, _)| k.value() + 1)
            .unwrap_or(1))
    }

    pub fn has_artifact(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.artifacts.get(id)?.is_some())
    }

    pub fn put_artifact(&mut self, id: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.artifacts.insert(id, bytes)?;
        Ok(())
    }

    /// Appends an activity to its actor's log, indexing it as public with
    /// `public_rank` when that is `Some`.
    pub fn append(
        &mut self,
        position: u64,
        id: &str,
        record: &ActivityRecord,
        public_rank: Option<u64>,
    ) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(record)?;
        self.records.insert(position, bytes.as_slice())?;
        self.ids.insert(id.as_bytes(), position)?;
        self.log.insert((record.actor.as_bytes(), record.seq), id)?;
        if let Some(rank) = public_rank {
            self.public_log
                .insert((record.actor.as_bytes(), rank), record.seq)?;
        }
        Ok(())
    }
}
