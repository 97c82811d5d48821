//! Storage (docs/architecture.md §6): one redb file holding the logs, their indexes, actor
//! state and tokens. Records are serde + postcard.
//!
//! This module reads and writes records; it does not decide what may be
//! written (the kernel does) and never commits on its own: every write goes
//! through a transaction the kernel's writer owns, so one activity's changes
//! land together or not at all.

mod digest;
pub mod ids;
mod modules;
mod policies;
mod projections;
mod prune;
pub mod tables;
mod txn;

pub use digest::{Digest, Part};
pub use policies::{PolicyRecord, PolicyVersion};
pub use projections::FoldTxn;
pub use prune::Pruned;
pub use txn::WriteTxn;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

pub use ids::RecentIds;
use tables::*;
use weft_core::identity::ActorState;

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
    #[error("corrupt store: {what}")]
    Corrupt { what: String },
    /// A bug in weft: the batch is abandoned rather than the writer stopped.
    #[error("internal error: {0}")]
    Internal(&'static str),
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
    /// Pulled by backfill rather than published here or delivered.
    pub backfilled: bool,
}

/// A remote actor as its origin describes it (docs/architecture.md §7.2): fetched on first
/// contact, refetched when one of its activities names an unknown key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub id: String,
    pub inbox: String,
    /// The actor document as fetched, JSON text.
    pub document: String,
    pub keys: Vec<weft_core::identity::KeyRecord>,
    /// When the document was fetched (RFC 3339).
    pub fetched_at: String,
}

/// One outbound delivery: an activity to one remote actor's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: u64,
    /// The activity's id; its JSON is read from the log when sent.
    pub activity: String,
    /// The recipient actor's URL (its inbox comes from its document), or
    /// [`SHARED_INBOX`] and a peer's shared inbox URL: one delivery for
    /// all of that peer's recipients of a public or followers' activity.
    pub recipient: String,
    /// The recipient's origin (`scheme://host:port`): one worker each.
    pub origin: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due, milliseconds since the Unix epoch.
    pub next_at_ms: u64,
    pub created_ms: u64,
    pub last_error: Option<String>,
}

/// Where anti-entropy (docs/architecture.md §10) stands with one remote
/// actor's log: what its origin last said its head is, when this node last
/// compared, and what went wrong. Times are ms since the Unix epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    pub actor: String,
    /// The head the origin last showed: (seq, id) of its newest public
    /// activity.
    pub head: Option<(u64, String)>,
    /// When a round last finished without error.
    pub last_sync_ms: Option<u64>,
    /// When a round was last tried.
    pub last_try_ms: Option<u64>,
    pub last_error: Option<String>,
    /// Rounds that failed in a row (the backoff grows with them).
    pub failures: u32,
    /// No round before this.
    pub next_at_ms: u64,
    /// Batches refused because the peer served something wrong.
    pub offences: u64,
    pub last_offence: Option<String>,
    /// Activities sync stored (ever).
    pub stored: u64,
    /// Up to this seq, the holes left in the actor's log were found to be
    /// activities its public outbox does not show (not public): not
    /// looked for again.
    pub checked_through: u64,
}

/// A hole in a remote actor's held log: the first missing seq, and the
/// held (seq, id) just before it.
pub type Hole = (u64, (u64, String));

/// How a [`Job::recipient`] that is a shared inbox, not an actor, starts.
pub const SHARED_INBOX: &str = "shared-inbox:";

impl Job {
    /// The shared inbox this job delivers to, when it is one.
    pub fn shared_inbox(&self) -> Option<&str> {
        self.recipient.strip_prefix(SHARED_INBOX)
    }
}

impl Peer {
    /// The shared inbox the peer's document offers (`endpoints.sharedInbox`),
    /// when it is on the actor's own origin.
    pub fn shared_inbox(&self) -> Option<String> {
        let doc: serde_json::Value = serde_json::from_str(&self.document).ok()?;
        let inbox = weft_core::wire::actor::shared_inbox(&doc)?;
        let origin = weft_core::model::origin(&self.id)?;
        (weft_core::model::origin(inbox).as_deref() == Some(origin.as_str()))
            .then(|| inbox.to_owned())
    }
}

/// A backfill to run once its Follow is accepted: pull `target`'s outbox
/// for `follower`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillJob {
    /// The Follow that asked for it.
    pub follow: String,
    pub follower: String,
    pub target: String,
    /// The Follow's `backfill` object, JSON text.
    pub request: String,
    /// When the Accept arrived (RFC 3339): `last-T` counts back from it.
    pub accepted_at: String,
}

/// An activity from a peer waiting for its verb to be admitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parked {
    /// The verb it waits for.
    pub verb: String,
    pub id: String,
    /// The signed activity, JSON text.
    pub json: String,
    /// Local actors whose inboxes get it once it is ingested.
    pub recipients: Vec<String>,
    /// It came by backfill.
    pub backfilled: bool,
    /// When it arrived (RFC 3339).
    pub received_at: String,
}

impl Parked {
    /// The origin of its author (`scheme://host:port`), or "" when the
    /// activity names none.
    pub fn origin(&self) -> String {
        serde_json::from_str::<ParkedAuthor>(&self.json)
            .ok()
            .and_then(|a| weft_core::model::origin(&a.actor))
            .unwrap_or_default()
    }
}

/// The one field of a parked activity its origin is read from.
#[derive(Deserialize)]
struct ParkedAuthor {
    #[serde(default)]
    actor: String,
}

/// Moves a data folder's projection stores from [`LEGACY_PROJECTION_KV`]
/// to [`PROJECTION_STATE`], once, in the transaction that opens the store:
/// the entries are the same, only their keys' encoding changes.
fn migrate_projection_kv(txn: &WriteTransaction) -> Result<(), StoreError> {
    use redb::TableHandle;
    let mut state = txn.open_table(PROJECTION_STATE)?;
    let legacy = LEGACY_PROJECTION_KV.name();
    if !txn.list_tables()?.any(|t| t.name() == legacy) {
        return Ok(());
    }
    {
        use redb::ReadableTableMetadata;
        let old = txn.open_table(LEGACY_PROJECTION_KV)?;
        let total = old.len()?;
        tracing::info!(
            entries = total,
            "moving the projections' state to the current layout (once)"
        );
        let started = std::time::Instant::now();
        let mut last_said = started;
        for (moved, entry) in old.iter()?.enumerate() {
            let (k, v) = entry?;
            let (projection, key) = k.value();
            state.insert(state_key(projection, key).as_slice(), v.value())?;
            if last_said.elapsed() >= std::time::Duration::from_secs(5) {
                last_said = std::time::Instant::now();
                tracing::info!(moved, of = total, "moving the projections' state");
            }
        }
        tracing::info!(
            entries = total,
            ms = started.elapsed().as_millis() as u64,
            "moved the projections' state"
        );
    }
    txn.delete_table(LEGACY_PROJECTION_KV)?;
    Ok(())
}

/// Fills `parked_by_origin` from `parked` when it is empty and `parked` is
/// not (a data folder from before the index).
fn index_parked_by_origin(txn: &WriteTransaction) -> Result<(), StoreError> {
    use redb::ReadableTableMetadata;
    let parked = txn.open_table(PARKED)?;
    let mut index = txn.open_table(PARKED_BY_ORIGIN)?;
    if !index.is_empty()? || parked.is_empty()? {
        return Ok(());
    }
    for entry in parked.iter()? {
        let (_, v) = entry?;
        let p: Parked = postcard::from_bytes(v.value())?;
        index.insert((p.origin().as_str(), p.verb.as_str(), p.id.as_str()), ())?;
    }
    Ok(())
}

/// Fills [`HELD_FROM`] once in a store made before it existed: a row for
/// every record whose author is not a local actor, keyed as the writer
/// keys it (the author's origin, `published`, the id), so that set
/// reconciliation does not take what is held for missing. (What local
/// actors delivered before [`ADDRESSED`] existed is not known any more:
/// their delivery jobs are gone, so those activities are not offered.)
fn index_held_from(txn: &WriteTransaction) -> Result<(), StoreError> {
    use redb::ReadableTableMetadata;
    const INDEXED: &str = "held_from_indexed";
    #[derive(Deserialize)]
    struct Published {
        #[serde(default)]
        published: String,
    }
    let mut meta = txn.open_table(META)?;
    if meta.get(INDEXED)?.is_some() {
        return Ok(());
    }
    let records = txn.open_table(RECORDS)?;
    let mut held = txn.open_table(HELD_FROM)?;
    if !records.is_empty()? && held.is_empty()? {
        let actors = txn.open_table(ACTORS)?;
        let mut rows = 0u64;
        for entry in records.iter()? {
            let (position, v) = entry?;
            let record: ActivityRecord = postcard::from_bytes(v.value())?;
            if actors.get(record.actor.as_str())?.is_some() {
                continue;
            }
            let Some(origin) = weft_core::model::origin(&record.actor) else {
                continue;
            };
            let published = serde_json::from_str::<Published>(&record.json)
                .map(|p| p.published)
                .unwrap_or_default();
            let key = weft_core::model::setkey::SetKey::of(&record.id, &published);
            held.insert(set_row_key(&origin, &key).as_slice(), position.value())?;
            rows += 1;
        }
        if rows > 0 {
            tracing::info!(
                rows,
                "indexed what this node holds from peers for set reconciliation"
            );
        }
    }
    meta.insert(INDEXED, "1")?;
    Ok(())
}

/// What one peer origin's authors hold here: their activities (count, and
/// bytes of JSON text) and fork evidence against them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginUsage {
    pub activities: u64,
    pub bytes: u64,
    pub forks: u64,
}

/// Counts what each peer origin holds in a store made before
/// [`ORIGIN_USAGE`] existed: every record whose author is not a local
/// actor, once.
fn count_origin_usage(txn: &WriteTransaction) -> Result<(), StoreError> {
    use redb::ReadableTableMetadata;
    const COUNTED: &str = "origin_usage_counted";
    let mut meta = txn.open_table(META)?;
    if meta.get(COUNTED)?.is_some() {
        return Ok(());
    }
    let records = txn.open_table(RECORDS)?;
    let actors = txn.open_table(ACTORS)?;
    let mut usage: HashMap<String, OriginUsage> = HashMap::new();
    if !records.is_empty()? {
        for entry in records.iter()? {
            let (_, v) = entry?;
            let record: ActivityRecord = postcard::from_bytes(v.value())?;
            if actors.get(record.actor.as_str())?.is_some() {
                continue;
            }
            if let Some(origin) = weft_core::model::origin(&record.actor) {
                let u = usage.entry(origin).or_default();
                u.activities += 1;
                u.bytes += record.json.len() as u64;
            }
        }
    }
    let forks = txn.open_table(FORKS)?;
    for entry in forks.iter()? {
        let (k, _) = entry?;
        if let Some(origin) = weft_core::model::origin(k.value().0) {
            usage.entry(origin).or_default().forks += 1;
        }
    }
    let mut table = txn.open_table(ORIGIN_USAGE)?;
    for (origin, u) in usage {
        table.insert(origin.as_str(), postcard::to_stdvec(&u)?.as_slice())?;
    }
    meta.insert(COUNTED, "1")?;
    Ok(())
}

/// Where admitting a peer's module stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PendingState {
    /// Found and checked; the module policy wants an operator's approval.
    AwaitingApproval,
    /// Refused (the reason says why); its activities stay parked.
    Refused,
}

impl PendingState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingApproval => "awaiting-approval",
            Self::Refused => "refused",
        }
    }
}

/// A verb this node lacks, as its author's origin defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingModule {
    pub verb: String,
    /// The origin asked (the author's, `scheme://host:port`).
    pub origin: String,
    /// The signed `DefineActivity`, JSON text, when it was found.
    pub define: Option<String>,
    /// Who signed the definition.
    pub definer: Option<String>,
    /// The artifact id it names.
    pub module: Option<String>,
    pub state: PendingState,
    /// Why it is refused, or what approval would admit.
    pub reason: String,
    /// When this was last decided (RFC 3339).
    pub updated_at: String,
}

/// Who a bearer token speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Admin,
    Actor(String),
}

/// The store's file in a node's data folder.
pub const FILE_NAME: &str = "weft.redb";

/// The page cache, in MiB, where the machine's memory cannot be read
/// (see [`default_cache_mb`]).
pub const DEFAULT_CACHE_MB: usize = 32;

/// The page cache a node gets unless `cache_mb` says otherwise: a 512th of
/// the machine's memory, between 16 and 32 MiB (16 up to 8 GB, 32 from
/// 16 GB). The store's reads past it come from the operating system's
/// file cache, which the node's resident memory does not count, so a node
/// stays small whatever its log (measured: 1M activities in about 150 MB
/// resident); a larger cache buys fewer system calls, not speed that was
/// measured (a 1 GiB cache published no faster at 800k activities).
pub fn default_cache_mb() -> usize {
    let total_kb = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<usize>().ok())
    });
    match total_kb {
        Some(kb) => (kb / 1024 / 512).clamp(16, 32),
        None => DEFAULT_CACHE_MB,
    }
}

/// The two set-reconciliation indexes (docs/architecture.md §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetIndex {
    /// What local actors addressed to a remote origin ([`tables::ADDRESSED`]).
    Addressed,
    /// What this node holds from a remote origin's authors
    /// ([`tables::HELD_FROM`]).
    HeldFrom,
    /// What a `replication` policy pruned of a remote origin's authors
    /// ([`tables::PRUNED`]): held, as far as reconciliation goes.
    Pruned,
}

/// The database.
#[derive(Debug)]
pub struct Store {
    db: Database,
    /// The page cache's size, in bytes.
    cache_bytes: usize,
    /// The id index's newest entries (see [`ids`]).
    ids: Arc<RecentIds>,
    /// Whether opening needed redb's full repair.
    repaired: bool,
    /// Whether every commit saves redb's allocator state ([`Store::with_quick_repair`]).
    quick_repair: bool,
    /// A commit without the allocator state is the file's last: a crash
    /// now would leave it to a full repair ([`Store::settle_repair`]).
    unsettled: Arc<AtomicBool>,
}

impl Store {
    /// Opens (or creates) the database file and its tables.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, default_cache_mb(), ids::FLUSH_AT)
    }

    /// [`Store::open`] with a page cache of `cache_mb` MiB, merging held
    /// ids into the id table once `flush_at` are held (tests use a small
    /// number to exercise merges).
    ///
    /// Every write transaction is a quick-repair one (see
    /// [`Store::begin_write`]), so after a crash redb finds its allocator
    /// state saved with the last commit and opens at once; only a file
    /// whose last commit was not one (written by an older weft) is
    /// repaired by walking the whole file. The time opening took, and
    /// whether a full repair ran, are logged.
    pub fn open_with(path: &Path, cache_mb: usize, flush_at: usize) -> Result<Self, StoreError> {
        let started = Instant::now();
        // redb reports a repair when it sets up a new file, too: that is
        // no store left open by a crash.
        let fresh = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
        let repaired = Arc::new(AtomicBool::new(false));
        let db = match Database::builder()
            .set_cache_size(cache_mb.max(1).saturating_mul(1 << 20))
            .set_repair_callback({
                let repaired = repaired.clone();
                move |_| repaired.store(true, Ordering::Relaxed)
            })
            .create(path)
        {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(StoreError::Locked),
            Err(e) => return Err(e.into()),
        };
        let opened = started.elapsed();
        let repaired = repaired.load(Ordering::Relaxed) && !fresh;
        if repaired {
            tracing::warn!(
                path = %path.display(),
                repair_ms = opened.as_millis() as u64,
                "the store was not closed cleanly and its last commit kept no allocator state: \
                 redb repaired it by walking the whole file"
            );
        }
        let mut txn = db.begin_write()?;
        txn.set_quick_repair(true);
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
        txn.open_table(POLICIES)?;
        migrate_projection_kv(&txn)?;
        txn.open_table(PROJECTION_STATUS)?;
        txn.open_table(PROJECTION_BUILDS)?;
        txn.open_table(PROJECTION_GENERATIONS)?;
        txn.open_table(PROJECTION_REBUILDS)?;
        txn.open_table(PROJECTION_DROPS)?;
        txn.open_table(INBOX)?;
        txn.open_table(PEERS)?;
        txn.open_table(EVIDENCE)?;
        txn.open_table(FORKS)?;
        txn.open_table(ORIGIN_USAGE)?;
        count_origin_usage(&txn)?;
        txn.open_table(DELIVERIES)?;
        txn.open_table(DEAD_LETTERS)?;
        txn.open_table(BACKFILLS)?;
        txn.open_table(HEALED)?;
        txn.open_table(SYNC_STATE)?;
        txn.open_table(REACTIONS)?;
        txn.open_table(PARKED)?;
        index_parked_by_origin(&txn)?;
        txn.open_table(PENDING_MODULES)?;
        txn.open_table(ADDRESSED)?;
        txn.open_table(HELD_FROM)?;
        txn.open_table(PRUNED)?;
        index_held_from(&txn)?;
        let ids = {
            let records = txn.open_table(RECORDS)?;
            let mut meta = txn.open_table(META)?;
            let stored = meta
                .get(ids::INDEXED_THROUGH)?
                .map(|v| v.value().to_owned());
            let through = match stored {
                Some(text) => text.parse::<u64>().map_err(|_| {
                    StoreError::Storage(redb::StorageError::Corrupted(format!(
                        "meta `{}` is `{text}`, not a position",
                        ids::INDEXED_THROUGH
                    )))
                })?,
                // A store from before the tail existed indexed every id.
                None => {
                    let last = records.last()?.map_or(0, |(k, _)| k.value());
                    meta.insert(ids::INDEXED_THROUGH, last.to_string().as_str())?;
                    last
                }
            };
            let mut held = Vec::new();
            let mut slots = Vec::new();
            for entry in records.range(through + 1..)? {
                let (position, bytes) = entry?;
                let (id, actor, seq) = ids::record_slot(bytes.value()).ok_or_else(|| {
                    StoreError::Storage(redb::StorageError::Corrupted(format!(
                        "the record at position {} has no readable id",
                        position.value()
                    )))
                })?;
                held.push((id.to_owned(), position.value()));
                if seq > 0 {
                    slots.push((actor.to_owned(), seq, id.to_owned(), position.value()));
                }
            }
            RecentIds::new(through, held, slots, flush_at)
        };
        txn.commit()?;
        tracing::info!(
            path = %path.display(),
            open_ms = opened.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            full_repair = repaired,
            ids_held = ids.len(),
            "store opened"
        );
        Ok(Self {
            db,
            cache_bytes: cache_mb.max(1).saturating_mul(1 << 20),
            ids: Arc::new(ids),
            repaired,
            quick_repair: true,
            unsettled: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Whether commits save redb's allocator state (quick repair, the
    /// default). With it every commit is two-phase (two flushes to disk)
    /// and writes the allocator state, and a node killed at any moment
    /// reopens at once. Without it a commit makes one flush and writes
    /// less — the inbox took 21–31% more activities per second here — and
    /// is as durable; but a node killed while commits of that kind are the
    /// file's last walks the whole file when it opens (7.5 s for 1M
    /// activities, 2 GB, here). [`Store::settle_repair`] makes the file
    /// quick to open again once the writer is idle.
    #[must_use]
    pub fn with_quick_repair(mut self, on: bool) -> Self {
        self.quick_repair = on;
        self
    }

    /// Whether commits save the allocator state ([`Store::with_quick_repair`]).
    pub fn quick_repair(&self) -> bool {
        self.quick_repair
    }

    /// Whether the last commit saved no allocator state: a crash now
    /// would leave the file to a full repair ([`Store::settle_repair`]).
    pub fn unsettled(&self) -> bool {
        self.unsettled.load(Ordering::Relaxed)
    }

    /// Commits an empty quick-repair transaction if the last commit saved
    /// no allocator state ([`Store::with_quick_repair`] off), so that a
    /// crash from now until the next commit leaves a file that opens at
    /// once. For the writer to call when it has had nothing to do for a
    /// moment: under a steady load it never has, and commits go on without.
    pub fn settle_repair(&self) -> Result<(), StoreError> {
        if !self.unsettled.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let mut txn = self.db.begin_write()?;
        txn.set_quick_repair(true);
        let settled = txn.commit();
        if settled.is_err() {
            self.unsettled.store(true, Ordering::Relaxed);
        }
        Ok(settled?)
    }

    /// The page cache's size, in bytes.
    pub fn cache_bytes(&self) -> usize {
        self.cache_bytes
    }

    /// Whether opening needed redb's full repair: the file was left open
    /// (a crash) after a commit that saved no allocator state, which no
    /// commit of [`Store::begin_write`] does.
    pub fn repaired(&self) -> bool {
        self.repaired
    }

    /// A write transaction. It commits with quick repair (two-phase, with
    /// the allocator state saved), so a crash never leaves the file
    /// needing a full repair — unless the store was opened
    /// [`Store::with_quick_repair`] off.
    pub fn begin_write(&self) -> Result<WriteTxn, StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_quick_repair(self.quick_repair);
        let unsettled = (!self.quick_repair).then(|| self.unsettled.clone());
        Ok(WriteTxn::new(txn, unsettled))
    }

    pub fn read(&self) -> Result<Reader, StoreError> {
        Ok(Reader {
            txn: self.db.begin_read()?,
            ids: self.ids.clone(),
        })
    }

    /// A raw read snapshot, for code that reads tables of its own.
    pub fn begin_read(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot {
            txn: self.db.begin_read()?,
            ids: self.ids.clone(),
        })
    }

    /// The id index's newest entries, which a write transaction's lookups
    /// and appends go through.
    pub fn recent_ids(&self) -> &Arc<RecentIds> {
        &self.ids
    }
}

/// A read snapshot, with what it needs to find activities by id.
#[derive(Debug)]
pub struct Snapshot {
    txn: ReadTransaction,
    ids: Arc<RecentIds>,
}

impl std::ops::Deref for Snapshot {
    type Target = ReadTransaction;

    fn deref(&self) -> &ReadTransaction {
        &self.txn
    }
}

impl Snapshot {
    /// The activity `id` as this snapshot has it.
    pub fn activity(&self, id: &str) -> Result<Option<ActivityRecord>, StoreError> {
        activity_in(&self.ids, &self.txn, id)
    }
}

/// The activity `id` as `txn` sees it.
fn activity_in(
    ids: &RecentIds,
    txn: &ReadTransaction,
    id: &str,
) -> Result<Option<ActivityRecord>, StoreError> {
    let table = txn.open_table(ACTIVITY_IDS)?;
    let records = txn.open_table(RECORDS)?;
    let id = weft_core::model::cid::internal(id);
    let position = ids.position(id, &table, &records, || {
        indexed_through(&txn.open_table(META).map_err(table_fault)?)
    })?;
    let Some(position) = position else {
        return Ok(None);
    };
    records
        .get(position)?
        .map(|v| Ok(postcard::from_bytes(v.value())?))
        .transpose()
}

/// A table that cannot be opened in a read snapshot: every table is
/// created when the store opens, so this is a storage fault.
fn table_fault(e: redb::TableError) -> redb::StorageError {
    match e {
        redb::TableError::Storage(e) => e,
        other => redb::StorageError::Corrupted(other.to_string()),
    }
}

/// The `meta` entry [`ids::INDEXED_THROUGH`].
fn indexed_through(
    meta: &impl ReadableTable<&'static str, &'static str>,
) -> Result<u64, redb::StorageError> {
    Ok(meta
        .get(ids::INDEXED_THROUGH)?
        .and_then(|v| v.value().parse().ok())
        .unwrap_or(0))
}

/// The newest position in `records` (0 when empty).
fn last_position_in(records: &impl ReadableTable<u64, &'static [u8]>) -> Result<u64, StoreError> {
    Ok(records.last()?.map_or(0, |(k, _)| k.value()))
}

/// At most `limit` records at positions `from..=to` of `records`, in log
/// order.
fn records_in(
    records: &impl ReadableTable<u64, &'static [u8]>,
    from: u64,
    to: u64,
    limit: usize,
) -> Result<Vec<(u64, ActivityRecord)>, StoreError> {
    if from > to {
        return Ok(Vec::new());
    }
    let mut found = Vec::with_capacity(limit.min(512));
    for entry in records.range(from..=to)?.take(limit) {
        let (k, v) = entry?;
        found.push((k.value(), postcard::from_bytes(v.value())?));
    }
    Ok(found)
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
    ids: Arc<RecentIds>,
}

impl Reader {
    pub fn actor(&self, id: &str) -> Result<Option<ActorState>, StoreError> {
        let table = self.txn.open_table(ACTORS)?;
        table
            .get(id)?
            .map(|v| Ok(postcard::from_bytes(v.value())?))
            .transpose()
    }

    /// Whether `id` is an actor this node keeps (without decoding it).
    pub fn has_actor(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.txn.open_table(ACTORS)?.get(id)?.is_some())
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
        activity_in(&self.ids, &self.txn, id)
    }

    /// The id stored at `actor`'s `seq`, if any.
    pub fn activity_at(&self, actor: &str, seq: u64) -> Result<Option<String>, StoreError> {
        let log = self.txn.open_table(LOG)?;
        let records = self.txn.open_table(RECORDS)?;
        Ok(self.ids.slot(actor, seq, &log, &records, || {
            indexed_through(&self.txn.open_table(META).map_err(table_fault)?)
        })?)
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

    /// How many activities `recipient`'s inbox holds.
    /// How many actors this node has (its service actor included), and
    /// how many activities they published.
    pub fn local_usage(&self) -> Result<(u64, u64), StoreError> {
        let names = self.txn.open_table(NAMES)?;
        let actors = self.txn.open_table(ACTORS)?;
        let mut published = 0;
        for entry in names.iter()? {
            let (_, id) = entry?;
            if let Some(bytes) = actors.get(id.value())? {
                let state: ActorState = postcard::from_bytes(bytes.value())?;
                published += state.tip_seq;
            }
        }
        Ok((redb::ReadableTableMetadata::len(&names)?, published))
    }

    pub fn inbox_count(&self, recipient: &str) -> Result<u64, StoreError> {
        let table = self.txn.open_table(INBOX)?;
        let key = recipient.as_bytes();
        Ok(table
            .range((key, 0)..=(key, u64::MAX))?
            .next_back()
            .transpose()?
            .map_or(0, |(k, _)| k.value().1))
    }

    /// The inbox entries `from..=to` (1-based, oldest first) of `recipient`.
    pub fn inbox_range(
        &self,
        recipient: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<ActivityRecord>, StoreError> {
        let table = self.txn.open_table(INBOX)?;
        let records = self.txn.open_table(RECORDS)?;
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        let key = recipient.as_bytes();
        for entry in table.range((key, from)..=(key, to))? {
            let position = entry?.1.value();
            if let Some(bytes) = records.get(position)? {
                out.push(postcard::from_bytes(bytes.value())?);
            }
        }
        Ok(out)
    }

    /// The HTTP signature that brought the foreign activity `id`, if it
    /// is one.
    pub fn evidence(
        &self,
        id: &str,
    ) -> Result<Option<weft_core::model::envelope::HttpEvidence>, StoreError> {
        let table = self.txn.open_table(EVIDENCE)?;
        table
            .get(id)?
            .map(|v| Ok(postcard::from_bytes(v.value())?))
            .transpose()
    }

    /// The ids of the remote actors kept as peers under `origin`
    /// (`scheme://host[:port]`), at most `limit`, in id order.
    pub fn peers_under(&self, origin: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let table = self.txn.open_table(PEERS)?;
        let start = format!("{}/", origin.trim_end_matches('/'));
        let mut out = Vec::new();
        for entry in table.range(start.as_str()..)? {
            let (k, _) = entry?;
            let id = k.value();
            if !id.starts_with(&start) || out.len() >= limit {
                break;
            }
            out.push(id.to_owned());
        }
        Ok(out)
    }

    pub fn peer(&self, id: &str) -> Result<Option<Peer>, StoreError> {
        let table = self.txn.open_table(PEERS)?;
        table
            .get(id)?
            .map(|v| Ok(postcard::from_bytes(v.value())?))
            .transpose()
    }

    /// What the peer origin `origin` holds here.
    pub fn origin_usage(&self, origin: &str) -> Result<OriginUsage, StoreError> {
        let table = self.txn.open_table(ORIGIN_USAGE)?;
        Ok(table
            .get(origin)?
            .map(|v| postcard::from_bytes(v.value()))
            .transpose()?
            .unwrap_or_default())
    }

    /// Fork evidence: (actor, seq, the other activity's id, its JSON).
    pub fn forks(&self) -> Result<Vec<(String, u64, String, String)>, StoreError> {
        let table = self.txn.open_table(FORKS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            let (actor, seq, other) = k.value();
            out.push((
                actor.to_owned(),
                seq,
                other.to_owned(),
                v.value().to_owned(),
            ));
        }
        Ok(out)
    }

    /// Deliveries still to do.
    pub fn jobs(&self) -> Result<Vec<Job>, StoreError> {
        Self::all_jobs(&self.txn.open_table(DELIVERIES)?)
    }

    /// Deliveries that gave up.
    pub fn dead_letters(&self) -> Result<Vec<Job>, StoreError> {
        Self::all_jobs(&self.txn.open_table(DEAD_LETTERS)?)
    }

    fn all_jobs(table: &redb::ReadOnlyTable<u64, &[u8]>) -> Result<Vec<Job>, StoreError> {
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(postcard::from_bytes(entry?.1.value())?);
        }
        Ok(out)
    }

    /// Dead letters found healed, with when: id → ms.
    pub fn healed(&self) -> Result<HashMap<u64, u64>, StoreError> {
        let table = self.txn.open_table(HEALED)?;
        let mut out = HashMap::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            out.insert(k.value(), v.value());
        }
        Ok(out)
    }

    /// Where anti-entropy stands with each remote actor it has tried.
    pub fn sync_states(&self) -> Result<Vec<SyncState>, StoreError> {
        let table = self.txn.open_table(SYNC_STATE)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(postcard::from_bytes(entry?.1.value())?);
        }
        Ok(out)
    }

    pub fn sync_state(&self, actor: &str) -> Result<Option<SyncState>, StoreError> {
        let table = self.txn.open_table(SYNC_STATE)?;
        table
            .get(actor)?
            .map(|v| Ok(postcard::from_bytes(v.value())?))
            .transpose()
    }

    /// The first seq of `actor`'s log above `after` that this node lacks
    /// while holding a later one (a hole, not the tail), and the held
    /// (seq, id) just before it; looked for among at most `limit` held
    /// entries. `None`: no hole there.
    pub fn first_hole(
        &self,
        actor: &str,
        after: u64,
        limit: usize,
    ) -> Result<Option<Hole>, StoreError> {
        let log = self.txn.open_table(LOG)?;
        let mut held: Vec<(u64, String)> = Vec::new();
        for entry in log.range((actor.as_bytes(), after)..=(actor.as_bytes(), u64::MAX))? {
            let (k, v) = entry?;
            held.push((k.value().1, v.value().to_owned()));
            if held.len() >= limit {
                break;
            }
        }
        let upto = held.last().map_or(u64::MAX, |h| h.0);
        let records = self.txn.open_table(RECORDS)?;
        held.extend(self.ids.slots_of(actor, after, upto, &records)?);
        held.sort_unstable_by_key(|h| h.0);
        held.dedup_by_key(|h| h.0);
        Ok(held
            .windows(2)
            .find(|pair| pair[1].0 > pair[0].0 + 1)
            .map(|pair| (pair[0].0 + 1, pair[0].clone())))
    }

    /// Every row of `origin` in the set index `index`, in (published, id)
    /// order, handed to `each` with its position (0 for
    /// [`SetIndex::Pruned`]: it holds none); how many there were.
    pub fn set_rows(
        &self,
        index: SetIndex,
        origin: &str,
        mut each: impl FnMut(weft_core::model::setkey::SetKey, u64),
    ) -> Result<u64, StoreError> {
        fn rows<V: redb::Value + 'static>(
            table: &impl ReadableTable<&'static [u8], V>,
            origin: &str,
            each: &mut impl FnMut(weft_core::model::setkey::SetKey, u64),
            position: impl Fn(V::SelfType<'_>) -> u64,
        ) -> Result<u64, StoreError> {
            let (start, end) = set_row_range(origin);
            let mut count = 0;
            for entry in table.range(start.as_slice()..end.as_slice())? {
                let (k, v) = entry?;
                let key = split_set_row_key(k.value()).ok_or_else(|| StoreError::Corrupt {
                    what: "a set index row whose key is not (origin, published, id)".into(),
                })?;
                each(key, position(v.value()));
                count += 1;
            }
            Ok(count)
        }
        match index {
            SetIndex::Addressed => rows(&self.txn.open_table(ADDRESSED)?, origin, &mut each, |p| p),
            SetIndex::HeldFrom => rows(&self.txn.open_table(HELD_FROM)?, origin, &mut each, |p| p),
            SetIndex::Pruned => rows(&self.txn.open_table(PRUNED)?, origin, &mut each, |()| 0),
        }
    }

    /// Whether a `replication` policy pruned the activity with set key
    /// `key` by an author of `origin`.
    pub fn was_pruned(
        &self,
        origin: &str,
        key: &weft_core::model::setkey::SetKey,
    ) -> Result<bool, StoreError> {
        let table = self.txn.open_table(PRUNED)?;
        Ok(table.get(set_row_key(origin, key).as_slice())?.is_some())
    }

    /// The position of the activity with set key `key` delivered to
    /// `origin`, if there is one.
    pub fn addressed(
        &self,
        origin: &str,
        key: &weft_core::model::setkey::SetKey,
    ) -> Result<Option<u64>, StoreError> {
        let table = self.txn.open_table(ADDRESSED)?;
        Ok(table
            .get(set_row_key(origin, key).as_slice())?
            .map(|v| v.value()))
    }

    /// The newest activity of `actor` this node holds: (seq, id).
    pub fn held_tip(&self, actor: &str) -> Result<Option<(u64, String)>, StoreError> {
        let log = self.txn.open_table(LOG)?;
        let stored = log
            .range((actor.as_bytes(), 0)..=(actor.as_bytes(), u64::MAX))?
            .next_back()
            .transpose()?
            .map(|(k, v)| (k.value().1, v.value().to_owned()));
        let records = self.txn.open_table(RECORDS)?;
        let recent = self
            .ids
            .newest_slot(actor, stored.as_ref().map_or(0, |s| s.0), &records)?;
        Ok(recent.or(stored))
    }

    /// At most `limit` records at positions `from..=to`, in log order (what
    /// [`WriteTxn::records`] reads, from this snapshot).
    pub fn records(
        &self,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<(u64, ActivityRecord)>, StoreError> {
        records_in(&self.txn.open_table(RECORDS)?, from, to, limit)
    }

    /// How many deliveries are queued and how many gave up (without
    /// reading them).
    pub fn job_counts(&self) -> Result<(u64, u64), StoreError> {
        use redb::ReadableTableMetadata;
        let queued = self.txn.open_table(DELIVERIES)?.len()?;
        let dead = self.txn.open_table(DEAD_LETTERS)?.len()?;
        Ok((queued, dead))
    }

    pub fn dead_letter(&self, id: u64) -> Result<Option<Job>, StoreError> {
        let table = self.txn.open_table(DEAD_LETTERS)?;
        table
            .get(id)?
            .map(|v| Ok(postcard::from_bytes(v.value())?))
            .transpose()
    }

    /// Activities whose local recipients have not finished reacting, as
    /// (position, record).
    pub fn pending_reactions(&self) -> Result<Vec<(u64, ActivityRecord)>, StoreError> {
        let table = self.txn.open_table(REACTIONS)?;
        let records = self.txn.open_table(RECORDS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let position = entry?.0.value();
            if let Some(bytes) = records.get(position)? {
                out.push((position, postcard::from_bytes(bytes.value())?));
            }
        }
        Ok(out)
    }

    /// How many activities are parked, for every verb.
    pub fn parked_count(&self) -> Result<u64, StoreError> {
        Ok(redb::ReadableTableMetadata::len(
            &self.txn.open_table(PARKED)?,
        )?)
    }

    /// Parked activities, of `verb` only when given, oldest verb first.
    pub fn parked(&self, verb: Option<&str>) -> Result<Vec<Parked>, StoreError> {
        let table = self.txn.open_table(PARKED)?;
        let mut out = Vec::new();
        let range = match verb {
            Some(v) => table.range((v, "")..)?,
            None => table.range::<(&str, &str)>(..)?,
        };
        for entry in range {
            let (k, v) = entry?;
            if verb.is_some_and(|verb| k.value().0 != verb) {
                break;
            }
            out.push(postcard::from_bytes(v.value())?);
        }
        Ok(out)
    }

    /// How many activities by authors at `origin` are parked, counting up
    /// to `limit` at most.
    pub fn parked_from(&self, origin: &str, limit: u64) -> Result<u64, StoreError> {
        let table = self.txn.open_table(PARKED_BY_ORIGIN)?;
        let mut n = 0;
        for entry in table.range((origin, "", "")..)? {
            if entry?.0.value().0 != origin || n >= limit {
                break;
            }
            n += 1;
        }
        Ok(n)
    }

    pub fn is_parked(&self, verb: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self.txn.open_table(PARKED)?.get((verb, id))?.is_some())
    }

    pub fn pending_modules(&self) -> Result<Vec<PendingModule>, StoreError> {
        let table = self.txn.open_table(PENDING_MODULES)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(postcard::from_bytes(entry?.1.value())?);
        }
        Ok(out)
    }

    pub fn pending_module(&self, verb: &str) -> Result<Option<PendingModule>, StoreError> {
        let table = self.txn.open_table(PENDING_MODULES)?;
        table
            .get(verb)?
            .map(|v| Ok(postcard::from_bytes(v.value())?))
            .transpose()
    }

    /// Backfills accepted but not finished.
    pub fn backfills(&self) -> Result<Vec<BackfillJob>, StoreError> {
        let table = self.txn.open_table(BACKFILLS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(postcard::from_bytes(entry?.1.value())?);
        }
        Ok(out)
    }

    /// Projections being built, with the next position each folds (0:
    /// still clearing its old state).
    pub fn projection_builds(&self) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        let table = self.txn.open_table(PROJECTION_BUILDS)?;
        let mut out = std::collections::BTreeMap::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            out.insert(k.value().to_owned(), v.value());
        }
        Ok(out)
    }

    /// The newest global position of the log (0 when empty).
    pub fn last_position(&self) -> Result<u64, StoreError> {
        last_position_in(&self.txn.open_table(RECORDS)?)
    }

    /// The generation of projection `name`'s state that is served.
    pub fn projection_generation(&self, name: &str) -> Result<u64, StoreError> {
        projections::generation_in(&self.txn.open_table(PROJECTION_GENERATIONS)?, name)
    }

    /// Whether a replaced generation's keys are left to remove.
    pub fn has_projection_drops(&self) -> Result<bool, StoreError> {
        Ok(self.txn.open_table(PROJECTION_DROPS)?.first()?.is_some())
    }

    /// Rebuilds under way: projection name → the generation it builds.
    pub fn projection_rebuilds(
        &self,
    ) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        let table = self.txn.open_table(PROJECTION_REBUILDS)?;
        let mut out = std::collections::BTreeMap::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            out.insert(k.value().to_owned(), v.value());
        }
        Ok(out)
    }

    pub fn projection_status(&self, name: &str) -> Result<ProjectionStatus, StoreError> {
        Ok(
            projections::status_in(&self.txn.open_table(PROJECTION_STATUS)?, name)?
                .unwrap_or_default(),
        )
    }
}

/// The tables of one write transaction, opened once per batch.
pub struct Batch<'t> {
    /// For the tables written rarely, opened when used.
    txn: &'t WriteTransaction,
    records: redb::Table<'t, u64, &'static [u8]>,
    ids: redb::Table<'t, &'static [u8], u64>,
    log: redb::Table<'t, (&'static [u8], u64), &'static str>,
    public_log: redb::Table<'t, (&'static [u8], u64), u64>,
    actors: redb::Table<'t, &'static str, &'static [u8]>,
    names: redb::Table<'t, &'static str, &'static str>,
    tokens: redb::Table<'t, &'static [u8], &'static [u8]>,
    meta: redb::Table<'t, &'static str, &'static str>,
    artifacts: redb::Table<'t, &'static str, &'static [u8]>,
    inbox: redb::Table<'t, (&'static [u8], u64), u64>,
    peers: redb::Table<'t, &'static str, &'static [u8]>,
    forks: redb::Table<'t, (&'static str, u64, &'static str), &'static str>,
    deliveries: redb::Table<'t, u64, &'static [u8]>,
    dead_letters: redb::Table<'t, u64, &'static [u8]>,
    backfills: redb::Table<'t, &'static str, &'static [u8]>,
    reactions: redb::Table<'t, u64, ()>,
    addressed: redb::Table<'t, &'static [u8], u64>,
    held_from: redb::Table<'t, &'static [u8], u64>,
    recent: &'t RecentIds,
    /// Each inbox's last number as this batch has written it, so that a
    /// batch for one recipient looks its inbox's end up once.
    inbox_ends: HashMap<String, u64>,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").finish_non_exhaustive()
    }
}

impl<'t> Batch<'t> {
    /// The tables of `txn`; appends and lookups by id go through `recent`
    /// (the store's [`Store::recent_ids`]).
    pub fn open(txn: &'t WriteTxn, recent: &'t RecentIds) -> Result<Self, StoreError> {
        let txn = &txn.txn;
        Ok(Self {
            txn,
            recent,
            records: txn.open_table(RECORDS)?,
            ids: txn.open_table(ACTIVITY_IDS)?,
            log: txn.open_table(LOG)?,
            public_log: txn.open_table(PUBLIC_LOG)?,
            actors: txn.open_table(ACTORS)?,
            names: txn.open_table(NAMES)?,
            tokens: txn.open_table(TOKENS)?,
            meta: txn.open_table(META)?,
            artifacts: txn.open_table(ARTIFACTS)?,
            inbox: txn.open_table(INBOX)?,
            peers: txn.open_table(PEERS)?,
            forks: txn.open_table(FORKS)?,
            deliveries: txn.open_table(DELIVERIES)?,
            dead_letters: txn.open_table(DEAD_LETTERS)?,
            backfills: txn.open_table(BACKFILLS)?,
            reactions: txn.open_table(REACTIONS)?,
            addressed: txn.open_table(ADDRESSED)?,
            held_from: txn.open_table(HELD_FROM)?,
            inbox_ends: HashMap::new(),
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

    /// Revokes every token of the actor `actor` and keeps `hash` as its
    /// one token; how many were revoked.
    pub fn replace_actor_tokens(
        &mut self,
        actor: &str,
        hash: &[u8; 32],
    ) -> Result<u64, StoreError> {
        let role = Role::Actor(actor.to_owned());
        let mut old = Vec::new();
        for entry in self.tokens.iter()? {
            let (k, v) = entry?;
            if postcard::from_bytes::<Role>(v.value())? == role {
                old.push(k.value().to_vec());
            }
        }
        for key in &old {
            self.tokens.remove(key.as_slice())?;
        }
        self.put_token(hash, &role)?;
        Ok(old.len() as u64)
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
        self.recent.stage(id, position);
        self.log.insert((record.actor.as_bytes(), record.seq), id)?;
        if let Some(rank) = public_rank {
            self.public_log
                .insert((record.actor.as_bytes(), rank), record.seq)?;
        }
        Ok(())
    }

    /// Whether an activity with this id is stored.
    pub fn has_activity(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .recent
            .newest_position(id, &self.ids, &self.records)?
            .is_some())
    }

    /// Writes this batch's slice of a merge of held ids into the id table,
    /// starting one if enough are held. The tail settles when the batch
    /// commits or is dropped ([`RecentIds::settle`]).
    pub fn flush_ids(&mut self) -> Result<(), StoreError> {
        let last = self.records.last()?.map_or(0, |(k, _)| k.value());
        if let Some(through) = self.recent.flush(&mut self.ids, &mut self.log, last)? {
            self.meta
                .insert(ids::INDEXED_THROUGH, through.to_string().as_str())?;
        }
        Ok(())
    }

    /// The id stored at `actor`'s `seq`, if any.
    pub fn activity_at(&self, actor: &str, seq: u64) -> Result<Option<String>, StoreError> {
        Ok(self
            .recent
            .slot(actor, seq, &self.log, &self.records, || Ok(u64::MAX))?)
    }

    /// Stores an activity of a remote actor at its position in that actor's
    /// (gappy) log. That position is held in memory until a merge writes it
    /// to the `log` table (see [`ids`]).
    pub fn append_remote(
        &mut self,
        position: u64,
        record: &ActivityRecord,
    ) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(record)?;
        self.records.insert(position, bytes.as_slice())?;
        self.recent.stage(&record.id, position);
        // A foreign activity (seq 0) has no position in a log.
        if record.seq > 0 {
            self.recent
                .stage_slot(&record.actor, record.seq, &record.id, position);
        }
        Ok(())
    }

    /// Keeps the HTTP signature that brought the foreign activity `id`.
    pub fn put_evidence(
        &mut self,
        id: &str,
        evidence: &weft_core::model::envelope::HttpEvidence,
    ) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(evidence)?;
        self.txn
            .open_table(EVIDENCE)?
            .insert(id, bytes.as_slice())?;
        Ok(())
    }

    /// Records that the local activity at `position`, with set key `key`,
    /// was delivered to the remote `origin` (set reconciliation's index;
    /// once per origin).
    pub fn put_addressed(
        &mut self,
        origin: &str,
        key: &weft_core::model::setkey::SetKey,
        position: u64,
    ) -> Result<(), StoreError> {
        self.addressed
            .insert(set_row_key(origin, key).as_slice(), position)?;
        Ok(())
    }

    /// Records that the activity at `position`, with set key `key`, by an
    /// author of the remote `origin`, is stored here.
    pub fn put_held_from(
        &mut self,
        origin: &str,
        key: &weft_core::model::setkey::SetKey,
        position: u64,
    ) -> Result<(), StoreError> {
        self.held_from
            .insert(set_row_key(origin, key).as_slice(), position)?;
        Ok(())
    }

    /// Adds the activity at `position` to `recipient`'s inbox.
    pub fn put_inbox(&mut self, recipient: &str, position: u64) -> Result<(), StoreError> {
        let key = recipient.as_bytes();
        let n = match self.inbox_ends.get(recipient) {
            Some(n) => *n,
            None => self
                .inbox
                .range((key, 0)..=(key, u64::MAX))?
                .next_back()
                .transpose()?
                .map_or(0, |(k, _)| k.value().1),
        };
        self.inbox.insert((key, n + 1), position)?;
        self.inbox_ends.insert(recipient.to_owned(), n + 1);
        Ok(())
    }

    pub fn put_peer(&mut self, peer: &Peer) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(peer)?;
        self.peers.insert(peer.id.as_str(), bytes.as_slice())?;
        Ok(())
    }

    pub fn put_fork(
        &mut self,
        actor: &str,
        seq: u64,
        other: &str,
        json: &str,
    ) -> Result<(), StoreError> {
        self.forks.insert((actor, seq, other), json)?;
        Ok(())
    }

    /// How many pieces of fork evidence are kept at `actor`'s `seq`.
    pub fn forks_at(&self, actor: &str, seq: u64) -> Result<u64, StoreError> {
        Ok(self
            .forks
            .range((actor, seq, "")..(actor, seq + 1, ""))?
            .count() as u64)
    }

    /// What the peer origin `origin` holds here, as of this batch's start.
    pub fn origin_usage(&self, origin: &str) -> Result<OriginUsage, StoreError> {
        Ok(self
            .txn
            .open_table(ORIGIN_USAGE)?
            .get(origin)?
            .map(|v| postcard::from_bytes(v.value()))
            .transpose()?
            .unwrap_or_default())
    }

    pub fn put_origin_usage(
        &mut self,
        origin: &str,
        usage: &OriginUsage,
    ) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(usage)?;
        self.txn
            .open_table(ORIGIN_USAGE)?
            .insert(origin, bytes.as_slice())?;
        Ok(())
    }

    /// The stored record of the activity `id`, if there is one.
    pub fn record(&self, id: &str) -> Result<Option<ActivityRecord>, StoreError> {
        let Some(position) = self.recent.newest_position(id, &self.ids, &self.records)? else {
            return Ok(None);
        };
        Ok(self
            .records
            .get(position)?
            .map(|v| postcard::from_bytes(v.value()))
            .transpose()?)
    }

    /// A fresh job id (a counter kept in `meta`).
    pub fn next_job_id(&mut self) -> Result<u64, StoreError> {
        let next = self
            .meta("next_job")?
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(1);
        self.put_meta("next_job", &(next + 1).to_string())?;
        Ok(next)
    }

    pub fn put_job(&mut self, job: &Job) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(job)?;
        self.deliveries.insert(job.id, bytes.as_slice())?;
        Ok(())
    }

    /// Removes a job; whether it was there.
    pub fn delete_job(&mut self, id: u64) -> Result<bool, StoreError> {
        Ok(self.deliveries.remove(id)?.is_some())
    }

    pub fn put_dead_letter(&mut self, job: &Job) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(job)?;
        self.dead_letters.insert(job.id, bytes.as_slice())?;
        Ok(())
    }

    /// Marks a dead letter healed (at `at_ms`); false if there is none.
    pub fn put_healed(&mut self, id: u64, at_ms: u64) -> Result<bool, StoreError> {
        if self.dead_letters.get(id)?.is_none() {
            return Ok(false);
        }
        self.txn.open_table(HEALED)?.insert(id, at_ms)?;
        Ok(true)
    }

    pub fn put_sync_state(&mut self, state: &SyncState) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(state)?;
        self.txn
            .open_table(SYNC_STATE)?
            .insert(state.actor.as_str(), bytes.as_slice())?;
        Ok(())
    }

    /// Takes a job out of the dead letters.
    pub fn take_dead_letter(&mut self, id: u64) -> Result<Option<Job>, StoreError> {
        self.txn.open_table(HEALED)?.remove(id)?;
        let removed = self.dead_letters.remove(id)?;
        removed
            .map(|v| Ok(postcard::from_bytes(v.value())?))
            .transpose()
    }

    pub fn put_backfill(&mut self, job: &BackfillJob) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(job)?;
        self.backfills
            .insert(job.follow.as_str(), bytes.as_slice())?;
        Ok(())
    }

    pub fn delete_reaction(&mut self, position: u64) -> Result<(), StoreError> {
        self.reactions.remove(position)?;
        Ok(())
    }

    pub fn delete_backfill(&mut self, follow: &str) -> Result<(), StoreError> {
        self.backfills.remove(follow)?;
        Ok(())
    }

    pub fn put_parked(&mut self, parked: &Parked) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(parked)?;
        self.txn
            .open_table(PARKED)?
            .insert((parked.verb.as_str(), parked.id.as_str()), bytes.as_slice())?;
        self.txn.open_table(PARKED_BY_ORIGIN)?.insert(
            (
                parked.origin().as_str(),
                parked.verb.as_str(),
                parked.id.as_str(),
            ),
            (),
        )?;
        Ok(())
    }

    pub fn delete_parked(&mut self, verb: &str, id: &str) -> Result<(), StoreError> {
        let removed: Option<Parked> = {
            let mut table = self.txn.open_table(PARKED)?;
            let removed = table.remove((verb, id))?;
            removed
                .map(|b| postcard::from_bytes(b.value()))
                .transpose()?
        };
        if let Some(parked) = removed {
            self.txn
                .open_table(PARKED_BY_ORIGIN)?
                .remove((parked.origin().as_str(), verb, id))?;
        }
        Ok(())
    }

    pub fn put_pending_module(&mut self, pending: &PendingModule) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(pending)?;
        self.txn
            .open_table(PENDING_MODULES)?
            .insert(pending.verb.as_str(), bytes.as_slice())?;
        Ok(())
    }

    pub fn delete_pending_module(&mut self, verb: &str) -> Result<(), StoreError> {
        self.txn.open_table(PENDING_MODULES)?.remove(verb)?;
        Ok(())
    }

    /// Removes the artifact `id` unless a version of a module defined here
    /// names it; answers whether it went.
    pub fn remove_unused_artifact(&mut self, id: &str) -> Result<bool, StoreError> {
        let used = {
            let modules = self.txn.open_table(MODULES)?;
            let mut used = false;
            for entry in modules.iter()? {
                let record: ModuleRecord = postcard::from_bytes(entry?.1.value())?;
                if record.versions.iter().any(|v| v.artifact == id) {
                    used = true;
                    break;
                }
            }
            used
        };
        if used {
            return Ok(false);
        }
        Ok(self.artifacts.remove(id)?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTHOR: &str = "http://127.0.0.1:9/actors/a";

    /// A peer's shared inbox counts only on the peer's own origin, and a
    /// job names it with a prefix no actor URL has.
    #[test]
    fn shared_inboxes_are_the_peers_own() {
        let peer = |endpoints: serde_json::Value| Peer {
            id: "https://m.example/users/a".into(),
            inbox: "https://m.example/users/a/inbox".into(),
            document: serde_json::json!({"endpoints": endpoints}).to_string(),
            keys: Vec::new(),
            fetched_at: String::new(),
        };
        assert_eq!(
            peer(serde_json::json!({"sharedInbox": "https://m.example/inbox"})).shared_inbox(),
            Some("https://m.example/inbox".to_owned())
        );
        assert_eq!(
            peer(serde_json::json!({"sharedInbox": "https://evil.example/inbox"})).shared_inbox(),
            None
        );
        assert_eq!(peer(serde_json::json!({})).shared_inbox(), None);
        let job = Job {
            id: 1,
            activity: "b".into(),
            recipient: format!("{SHARED_INBOX}https://m.example/inbox"),
            origin: "https://m.example".into(),
            attempts: 0,
            next_at_ms: 0,
            created_ms: 0,
            last_error: None,
        };
        assert_eq!(job.shared_inbox(), Some("https://m.example/inbox"));
        let direct = Job {
            recipient: "https://m.example/users/a".into(),
            ..job
        };
        assert_eq!(direct.shared_inbox(), None);
    }

    /// A data folder made before `projection_state` keeps its projection
    /// stores: opening it moves every entry over, once, and drops the old
    /// table.
    #[test]
    fn projection_stores_move_to_byte_keys() -> anyhow::Result<()> {
        use redb::TableHandle;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("weft.redb");
        {
            let db = Database::create(&path)?;
            let txn = db.begin_write()?;
            {
                let mut old = txn.open_table(LEGACY_PROJECTION_KV)?;
                old.insert(("feed", "count"), "2")?;
                old.insert(("feed", "feed\u{1f}a\u{1f}1"), "bid1")?;
                old.insert(("follower-graph", "followers\u{1f}b\u{1f}a"), "bid2")?;
            }
            txn.commit()?;
        }
        let read = |store: &Store| -> anyhow::Result<Vec<(String, String, String)>> {
            let txn = store.begin_read()?;
            let table = txn.open_table(PROJECTION_STATE)?;
            let mut out = Vec::new();
            for entry in table.iter()? {
                let (k, v) = entry?;
                let (p, key) = split_state_key(k.value()).ok_or_else(|| anyhow::anyhow!("key"))?;
                out.push((p.to_owned(), key.to_owned(), v.value().to_owned()));
            }
            let tables: Vec<String> = txn.list_tables()?.map(|t| t.name().to_owned()).collect();
            anyhow::ensure!(!tables.iter().any(|t| t == "projection_kv"), "{tables:?}");
            Ok(out)
        };
        let expected = vec![
            ("feed".to_owned(), "count".to_owned(), "2".to_owned()),
            ("feed".into(), "feed\u{1f}a\u{1f}1".into(), "bid1".into()),
            (
                "follower-graph".into(),
                "followers\u{1f}b\u{1f}a".into(),
                "bid2".into(),
            ),
        ];
        let store = Store::open(&path)?;
        assert_eq!(read(&store)?, expected);
        drop(store);
        // Opening again changes nothing.
        assert_eq!(read(&Store::open(&path)?)?, expected);
        Ok(())
    }

    /// A new store is no repaired one. A store left open, as a killed
    /// process leaves it, opens again with no full repair and every commit
    /// in place: each commit saved redb's allocator state. A file whose
    /// last commit saved none (plain redb) is repaired, and the store says
    /// so.
    #[test]
    fn a_crashed_store_opens_without_a_full_repair() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("weft.redb");
        // A copy of the file taken while it is open is what a SIGKILL
        // right after the last commit leaves on disk.
        let crashed = dir.path().join("crashed.redb");
        let store = Store::open(&path)?;
        assert!(!store.repaired(), "a new store reads as repaired");
        append(&store, 1, 50, true)?;
        std::fs::copy(&path, &crashed)?;
        let reopened = Store::open(&crashed)?;
        assert!(
            !reopened.repaired(),
            "a quick-repair file needed a full repair"
        );
        let read = reopened.read()?;
        assert_eq!(read.last_position()?, 50);
        assert_eq!(read.activity("bid50")?.map(|r| r.seq), Some(50));
        drop((read, reopened, store));

        let plain = dir.path().join("plain.redb");
        let db = Database::create(&plain)?;
        let txn = db.begin_write()?;
        txn.open_table(META)?.insert("k", "v")?;
        txn.commit()?;
        let crashed = dir.path().join("plain-crashed.redb");
        std::fs::copy(&plain, &crashed)?;
        let reopened = Store::open(&crashed)?;
        assert!(
            reopened.repaired(),
            "a plain redb file left open was not repaired"
        );
        assert_eq!(reopened.read()?.meta("k")?.as_deref(), Some("v"));
        Ok(())
    }

    /// With quick repair off, commits keep everything they wrote through a
    /// crash, but a file whose last commit was one of them needs a full
    /// repair to open; once the store is settled it opens at once again.
    #[test]
    fn without_quick_repair_a_crash_costs_a_full_repair_until_settled() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("weft.redb");
        let store = Store::open(&path)?.with_quick_repair(false);
        append(&store, 1, 50, true)?;
        // What a SIGKILL right after the last commit leaves on disk.
        let crashed = dir.path().join("crashed.redb");
        std::fs::copy(&path, &crashed)?;
        {
            let reopened = Store::open(&crashed)?;
            assert!(
                reopened.repaired(),
                "a file whose last commit saved no allocator state opened without a full repair"
            );
            let read = reopened.read()?;
            assert_eq!(read.last_position()?, 50);
            assert_eq!(read.activity("bid50")?.map(|r| r.seq), Some(50));
        }
        store.settle_repair()?;
        let settled = dir.path().join("settled.redb");
        std::fs::copy(&path, &settled)?;
        let reopened = Store::open(&settled)?;
        assert!(!reopened.repaired(), "a settled file needed a full repair");
        assert_eq!(reopened.read()?.last_position()?, 50);
        // Settling twice commits nothing more; a store with quick repair
        // on has nothing to settle.
        store.settle_repair()?;
        Store::open(&dir.path().join("other.redb"))?.settle_repair()?;
        Ok(())
    }

    /// A lazy commit (a build step's) is seen at once by readers; a crash
    /// before the next durable commit loses it whole (the file holds the
    /// last durable commit, and opens without a full repair), and the next
    /// durable commit keeps it.
    #[test]
    fn a_lazy_commit_is_seen_at_once_and_kept_by_the_next_durable_one() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("weft.redb");
        let store = Store::open(&path)?;
        let put = |key: &str, lazy: bool| -> anyhow::Result<()> {
            let txn = store.begin_write()?;
            Batch::open(&txn, store.recent_ids())?.put_meta(key, "1")?;
            if lazy {
                txn.commit_lazily()?;
            } else {
                txn.commit()?;
            }
            Ok(())
        };
        put("durable", false)?;
        put("lazy", true)?;
        assert_eq!(store.read()?.meta("lazy")?.as_deref(), Some("1"));
        // What a SIGKILL now leaves on disk.
        let crashed = dir.path().join("crashed.redb");
        std::fs::copy(&path, &crashed)?;
        {
            let reopened = Store::open(&crashed)?;
            assert!(!reopened.repaired(), "a lazy commit left a file to repair");
            let read = reopened.read()?;
            assert_eq!(read.meta("durable")?.as_deref(), Some("1"));
            assert_eq!(read.meta("lazy")?, None, "a lazy commit outlived a crash");
        }
        put("later", false)?;
        let crashed = dir.path().join("crashed-later.redb");
        std::fs::copy(&path, &crashed)?;
        let read = Store::open(&crashed)?.read()?;
        assert_eq!(
            read.meta("lazy")?.as_deref(),
            Some("1"),
            "the durable commit after a lazy one did not keep it"
        );
        assert_eq!(read.meta("later")?.as_deref(), Some("1"));
        Ok(())
    }

    fn record(n: u64) -> ActivityRecord {
        ActivityRecord {
            id: format!("bid{n}"),
            json: format!("{{\"n\":{n}}}"),
            actor: AUTHOR.into(),
            seq: n,
            public: false,
            backfilled: false,
        }
    }

    /// Appends `from..=to` in one batch; answers whether it committed.
    fn append(store: &Store, from: u64, to: u64, commit: bool) -> anyhow::Result<()> {
        let txn = store.begin_write()?;
        {
            let mut batch = Batch::open(&txn, store.recent_ids())?;
            for n in from..=to {
                assert!(!batch.has_activity(&format!("bid{n}"))?);
                assert_eq!(batch.activity_at(AUTHOR, n)?, None);
                batch.append_remote(n, &record(n))?;
                assert!(batch.has_activity(&format!("bid{n}"))?);
                assert_eq!(batch.activity_at(AUTHOR, n)?, Some(format!("bid{n}")));
            }
            batch.flush_ids()?;
        }
        if commit {
            txn.commit()?;
        }
        store.recent_ids().settle(commit);
        Ok(())
    }

    fn parked(verb: &str, n: u64, author: &str) -> Parked {
        Parked {
            verb: verb.into(),
            id: format!("bid{n}"),
            json: serde_json::json!({"actor": author, "type": verb}).to_string(),
            recipients: Vec::new(),
            backfilled: false,
            received_at: "2026-11-22T00:00:00.000Z".into(),
        }
    }

    /// Parked activities are counted by their author's origin as they are
    /// kept and removed, and a data folder without that index (from before
    /// it) gets it when opened.
    #[test]
    fn parked_activities_are_counted_by_origin() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("weft.redb");
        let (a, b) = ("http://a.test:1", "https://B.test");
        {
            let store = Store::open(&path)?;
            let txn = store.begin_write()?;
            {
                let mut batch = Batch::open(&txn, store.recent_ids())?;
                batch.put_parked(&parked("Poll", 1, &format!("{a}/actors/x")))?;
                batch.put_parked(&parked("Quiz", 2, &format!("{a}/actors/y")))?;
                batch.put_parked(&parked("Poll", 3, "https://b.test/actors/z"))?;
                batch.delete_parked("Quiz", "bid2")?;
                batch.delete_parked("Quiz", "no such id")?;
            }
            txn.commit()?;
            let reader = store.read()?;
            assert_eq!(reader.parked_from(a, 10)?, 1);
            assert_eq!(reader.parked_from(&b.to_ascii_lowercase(), 10)?, 1);
            assert_eq!(reader.parked_from("http://c.test", 10)?, 0);
            // As an older data folder would be: parked, but no index.
            let txn = store.begin_write()?;
            txn.txn.delete_table(PARKED_BY_ORIGIN)?;
            txn.commit()?;
        }
        let store = Store::open(&path)?;
        let reader = store.read()?;
        assert_eq!(reader.parked_from(a, 10)?, 1);
        assert_eq!(reader.parked_from("https://b.test", 10)?, 1);
        assert_eq!(reader.parked_count()?, 2);
        Ok(())
    }

    /// A data folder from before the `held_from` index gets it when opened:
    /// a row per remote author's activity, keyed by its origin, published
    /// time and id, and none for a local actor's; and only once.
    #[test]
    fn an_older_data_folder_gets_its_held_from_index() -> anyhow::Result<()> {
        use weft_core::model::setkey::SetKey;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("weft.redb");
        let published = "2026-11-22T00:00:00.000Z";
        {
            let store = Store::open(&path)?;
            let txn = store.begin_write()?;
            {
                let mut batch = Batch::open(&txn, store.recent_ids())?;
                let mut remote = record(1);
                remote.json = serde_json::json!({"published": published}).to_string();
                batch.append_remote(1, &remote)?;
                let local = ActivityRecord {
                    actor: "http://127.0.0.1:8/actors/me".into(),
                    ..record(2)
                };
                batch.append_remote(2, &local)?;
                batch.flush_ids()?;
            }
            // The index asks only whether an author is a local actor.
            txn.txn
                .open_table(ACTORS)?
                .insert("http://127.0.0.1:8/actors/me", &[][..])?;
            txn.commit()?;
            store.recent_ids().settle(true);
            // As an older data folder would be: records, no index.
            let txn = store.begin_write()?;
            txn.txn.open_table(META)?.remove("held_from_indexed")?;
            txn.commit()?;
        }
        let store = Store::open(&path)?;
        let reader = store.read()?;
        let mut rows = Vec::new();
        reader.set_rows(SetIndex::HeldFrom, "http://127.0.0.1:9", |key, p| {
            rows.push((key, p));
        })?;
        assert_eq!(rows, vec![(SetKey::of("bid1", published), 1)]);
        let mut local = 0;
        reader.set_rows(SetIndex::HeldFrom, "http://127.0.0.1:8", |_, _| local += 1)?;
        assert_eq!(local, 0, "a local actor's activity is not held from a peer");
        assert_eq!(reader.meta("held_from_indexed")?.as_deref(), Some("1"));
        Ok(())
    }

    /// Every activity is found by id, and by its author and seq, whether
    /// those are still held in memory or were flushed to the tables, after
    /// a dropped batch, and after the store is opened again (what is held
    /// is read back from the records).
    #[test]
    fn ids_are_found_before_and_after_flushes_and_restarts() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("weft.redb");
        let found = |store: &Store, n: u64| -> anyhow::Result<bool> {
            let reader = store.read()?;
            let by_id = reader.activity(&format!("bid{n}"))?.map(|r| r.seq) == Some(n);
            let by_seq = reader.activity_at(AUTHOR, n)? == Some(format!("bid{n}"));
            anyhow::ensure!(by_id == by_seq, "{n}: found by id {by_id}, by seq {by_seq}");
            Ok(by_id)
        };
        {
            let store = Store::open_with(&path, 64, 4)?;
            append(&store, 1, 3, true)?;
            assert_eq!(store.recent_ids().len(), 3);
            let before_flush = store.read()?;
            append(&store, 4, 5, true)?;
            // Five held ids started a merge of the committed three, which
            // one batch wrote: the table has them, memory the other two.
            assert_eq!(store.recent_ids().len(), 2);
            assert_eq!(
                store.read()?.meta(ids::INDEXED_THROUGH)?.as_deref(),
                Some("3")
            );
            for n in 1..=5 {
                assert!(found(&store, n)?, "{n}");
                // A snapshot from before the flush sees what it saw.
                assert_eq!(before_flush.activity(&format!("bid{n}"))?.is_some(), n <= 3);
                assert_eq!(before_flush.activity_at(AUTHOR, n)?.is_some(), n <= 3);
            }
            append(&store, 6, 7, false)?;
            assert!(!found(&store, 6)?);
            assert_eq!(store.recent_ids().len(), 2);
            append(&store, 6, 7, true)?;
            assert!(found(&store, 7)?);
        }
        let store = Store::open_with(&path, 64, 4)?;
        assert_eq!(store.recent_ids().len(), 2);
        for n in 1..=7 {
            assert!(found(&store, n)?, "{n} after reopening");
        }
        assert!(!found(&store, 8)?);
        let txn = store.begin_write()?;
        let batch = Batch::open(&txn, store.recent_ids())?;
        assert!(batch.has_activity("bid2")? && batch.has_activity("bid7")?);
        assert_eq!(batch.activity_at(AUTHOR, 7)?.as_deref(), Some("bid7"));
        assert_eq!(batch.activity_at(AUTHOR, 8)?, None);
        Ok(())
    }
}
