//! The single writer: every change to the database goes through this thread,
//! which group-commits whatever requests are waiting into one durable write
//! transaction and answers each request only after that commit.
//!
//! One fsync per activity would cap the node near the disk's commit rate;
//! batching shares a commit among everyone who arrived while the previous one
//! was on its way to disk. Signing happens before a request gets here (see
//! `sequencer`); the writer re-checks every chain link against the committed
//! tips, so a log can never fork, whatever happened upstream. A request that
//! is refused writes nothing (all checks run before its first write); a
//! storage fault fails the whole batch, so a crash or error leaves all of one
//! activity's changes or none of them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use ed25519_dalek::SigningKey;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use weft_store::WriteTxn;

use super::Metrics;
use super::metrics::Phase;
use super::modules::{Appended, Modules};
use super::{Created, KernelError};
use weft_core::identity::actor::{self, Signature};
use weft_core::identity::{ActorKind, ActorState, KeyStore, token};
use weft_core::model::Signed;
use weft_core::model::setkey::SetKey;
use weft_core::wire::actor::NewActor;
use weft_store::{ActivityRecord, BackfillJob, Batch, Job, OriginUsage, Peer, Role, Store};

/// Work for the federation side, handed over once it is durable.
#[derive(Debug, Clone)]
pub enum Outbound {
    Job(Job),
    Backfill(BackfillJob),
}

/// Milliseconds since the Unix epoch, on the node's clock
/// (`weft_core::clock`).
pub fn now_ms() -> u64 {
    weft_core::clock::now_ms()
}

/// A request to the writer.
#[derive(Debug)]
pub(super) enum Command {
    /// First start: the node's service actor and the admin token.
    Bootstrap {
        service: String,
        admin_token_hash: [u8; 32],
        public_url: String,
        reply: oneshot::Sender<Result<Created, KernelError>>,
    },
    CreateActor {
        name: String,
        kind: ActorKind,
        reply: oneshot::Sender<Result<Created, KernelError>>,
    },
    /// Append a signed activity; `state` is the actor after it.
    Append(Box<Append>),
    /// Revoke a local actor's tokens and keep a new one (its hash).
    ReissueToken {
        actor: String,
        hash: [u8; 32],
        reply: oneshot::Sender<Result<(), KernelError>>,
    },
    /// Keep an artifact's bytes under its id.
    PutArtifact {
        id: String,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), KernelError>>,
    },
    /// Finish the current batch and stop; later commands find the writer
    /// gone and are told the node is shutting down.
    Stop,
    /// Refold a projection from the whole log.
    Rebuild {
        name: String,
        reply: oneshot::Sender<Result<u64, KernelError>>,
    },
    /// Store a verified activity received from a peer (or pulled by backfill).
    Ingest(Box<Ingest>),
    /// Store a staged batch of verified activities all together or not at
    /// all: it runs in a transaction of its own.
    IngestBatch(Box<IngestBatch>),
    /// Delete remote authors' old activities (a `replication` policy's
    /// `keep`) and rebuild every projection from what stays, in a
    /// transaction of its own.
    Prune(Box<Prune>),
    /// Bookkeeping of federation: peers, delivery jobs, backfills.
    Federation {
        writes: Vec<FederationWrite>,
        reply: oneshot::Sender<Result<(), KernelError>>,
    },
}

/// A verified activity from elsewhere on its way into the log.
#[derive(Debug)]
pub(super) struct Ingest {
    pub signed: Signed,
    pub record: ActivityRecord,
    /// Local actors whose inboxes get it.
    pub recipients: Vec<String>,
    /// A backfill this activity (an Accept) starts.
    pub backfill: Option<BackfillJob>,
    /// Local recipients react to it.
    pub reacts: bool,
    pub reply: oneshot::Sender<Result<Ingested, KernelError>>,
}

/// Which remote authors' activities to delete, and what must stay.
pub(super) struct Prune {
    /// (author's origin, author, delete what was published before this,
    /// in ms since the Unix epoch).
    pub prunes: Vec<(String, String, u64)>,
    /// The local actors, whose inboxes lose the deleted activities.
    pub inboxes: Vec<String>,
    /// Activities that stay whatever their age.
    pub spare: Box<dyn Fn(&ActivityRecord) -> bool + Send>,
    pub reply: oneshot::Sender<Result<weft_store::Pruned, KernelError>>,
}

impl std::fmt::Debug for Prune {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prune")
            .field("prunes", &self.prunes)
            .finish_non_exhaustive()
    }
}

/// A staged batch on its way into the log (docs/architecture.md §10):
/// every item is stored, or none is.
#[derive(Debug)]
pub(super) struct IngestBatch {
    /// Each with `reply` unused (the batch answers once).
    pub items: Vec<BatchItem>,
    pub reply: oneshot::Sender<Result<BatchReport, KernelError>>,
}

/// One activity of a staged batch.
#[derive(Debug)]
pub(super) struct BatchItem {
    pub signed: Signed,
    pub record: ActivityRecord,
    pub recipients: Vec<String>,
    pub reacts: bool,
}

/// What a committed batch changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Activities appended.
    pub stored: u64,
    /// Activities that were already here (nothing changed for them).
    pub duplicates: u64,
    /// Global positions of the first and last activity appended.
    pub positions: Option<(u64, u64)>,
}

/// What became of a received activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Appended at this global position.
    Stored(u64),
    /// Already stored: nothing changed.
    Duplicate,
    /// Another activity already holds the author's position `seq`; the
    /// new one is kept as evidence only (`evidence`: unless the caps on
    /// fork evidence were reached, and then not at all).
    Fork {
        seq: u64,
        kept: String,
        evidence: bool,
    },
    /// Its `prev` does not name the stored activity at `seq − 1`, or the
    /// stored activity at `seq + 1` does not name it as its `prev`: the
    /// chain would not link, so it is kept as fork evidence only (as for
    /// [`Ingested::Fork`]). `neighbour` is the stored activity at
    /// `neighbour_seq`.
    Unlinked {
        seq: u64,
        neighbour_seq: u64,
        neighbour: String,
        evidence: bool,
    },
}

/// Bounds on what peers' activities may take here, per peer origin
/// (`scheme://host[:port]`) of their authors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestLimits {
    /// Most activities kept from one origin's authors.
    pub max_activities_per_origin: u64,
    /// Most bytes (of JSON text) of them.
    pub max_bytes_per_origin: u64,
    /// Most pieces of fork evidence kept at one (actor, seq).
    pub max_forks_per_position: u64,
    /// Most pieces of fork evidence kept against one origin's authors.
    pub max_forks_per_origin: u64,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            max_activities_per_origin: 5_000_000,
            max_bytes_per_origin: 5 << 30,
            max_forks_per_position: 4,
            max_forks_per_origin: 1_000,
        }
    }
}

/// One change to federation state, written in a batch like any other.
#[derive(Debug, Clone)]
pub enum FederationWrite {
    Peer(Peer),
    /// The job was delivered: forget it.
    JobDone(u64),
    /// The job will be tried again (attempts and time updated).
    JobRetry(Job),
    /// The job gave up: move it to the dead letters.
    JobDead(Job),
    /// Move a dead letter back to the queue, due now.
    Revive {
        id: u64,
        now_ms: u64,
    },
    BackfillDone(String),
    /// Anti-entropy found the dead letter's activity at its recipient's node.
    Healed {
        id: u64,
        at_ms: u64,
    },
    /// Where anti-entropy stands with a remote actor.
    SyncState(weft_store::SyncState),
    /// The reaction to the activity at this position needed no intents.
    ReactionDone(u64),
    /// Keep an activity whose verb is unknown until its module is admitted.
    Park(weft_store::Parked),
    /// A parked activity was ingested (or refused by its now-known verb).
    Unpark {
        verb: String,
        id: String,
    },
    /// Where admitting a peer's module for a verb stands.
    PendingModule(weft_store::PendingModule),
    /// The verb's module was admitted (or the operator dropped the request).
    PendingModuleDone(String),
    /// An artifact fetched for a module that was not admitted after all:
    /// removed unless a module defined here uses it.
    RemoveUnusedArtifact(String),
}

/// A signed activity on its way into the log.
#[derive(Debug)]
pub(super) struct Append {
    pub signed: Signed,
    pub record: ActivityRecord,
    pub state: ActorState,
    pub public_rank: Option<u64>,
    /// Local actors (not the author) whose inboxes get it.
    pub local: Vec<String>,
    /// Remote recipients: (actor URL, origin), one delivery job each.
    pub remote: Vec<(String, String)>,
    /// Local recipients react to it: keep a `reactions` row until they have.
    pub reacts: bool,
    /// This activity is the last intent of the reaction at this position.
    pub completes: Option<u64>,
    pub reply: oneshot::Sender<Result<(), KernelError>>,
}

/// A command's reply channel and its result, held until the batch commits.
struct Held<T> {
    reply: oneshot::Sender<Result<T, KernelError>>,
    result: Result<T, KernelError>,
}

impl<T> Held<T> {
    fn new(reply: oneshot::Sender<Result<T, KernelError>>, result: Result<T, KernelError>) -> Self {
        Self { reply, result }
    }

    /// A command that did not run.
    fn unrun(reply: oneshot::Sender<Result<T, KernelError>>) -> Self {
        Self::new(reply, Err(KernelError::ShuttingDown))
    }

    fn failed_on_storage(&self) -> bool {
        matches!(self.result, Err(KernelError::Store(_)))
    }

    /// Sends the result, or `fault` when the batch did not commit. A
    /// closed reply channel means the client went away; the outcome stands.
    fn answer(self, fault: Option<&str>) {
        let result = match fault {
            Some(f) => Err(KernelError::NotCommitted(f.to_owned())),
            None => self.result,
        };
        let _ = self.reply.send(result);
    }
}

/// A command's result, held until the batch commits.
enum Outcome {
    Created(Held<Created>),
    Appended(Held<()>),
    Rebuilt(Held<u64>),
    Ingested(Held<Ingested>),
    /// A staged batch; an error means nothing of it may be committed.
    Batch(Held<BatchReport>),
    /// An artifact or federation records stored (not an activity).
    Stored(Held<()>),
    Stopped,
}

impl Outcome {
    /// Whether this outcome adds an activity to a log.
    fn appended(&self) -> bool {
        match self {
            Self::Created(held) => held.result.is_ok(),
            Self::Appended(held) => held.result.is_ok(),
            Self::Ingested(held) => matches!(held.result, Ok(Ingested::Stored(_))),
            Self::Batch(held) => held.result.is_ok(),
            Self::Rebuilt(_) | Self::Stored(_) | Self::Stopped => false,
        }
    }

    fn failed_on_storage(&self) -> bool {
        match self {
            Self::Created(held) => held.failed_on_storage(),
            Self::Appended(held) | Self::Stored(held) => held.failed_on_storage(),
            Self::Rebuilt(held) => held.failed_on_storage(),
            Self::Ingested(held) => held.failed_on_storage(),
            Self::Batch(held) => held.failed_on_storage(),
            Self::Stopped => false,
        }
    }

    /// Why the transaction holding this outcome must not commit, other
    /// than storage: a staged batch with a refused item.
    fn aborts(&self) -> Option<String> {
        match self {
            Self::Batch(Held { result: Err(e), .. }) => {
                Some(format!("a staged batch was refused: {e}"))
            }
            _ => None,
        }
    }

    fn answer(self, fault: Option<&str>) {
        match self {
            Self::Created(held) => held.answer(fault),
            Self::Appended(held) | Self::Stored(held) => held.answer(fault),
            Self::Rebuilt(held) => held.answer(fault),
            Self::Ingested(held) => held.answer(fault),
            // A refused batch is answered with its own reason.
            Self::Batch(held) if held.result.is_err() => held.answer(None),
            Self::Batch(held) => held.answer(fault),
            Self::Stopped => {}
        }
    }
}

/// The writer's state.
pub(super) struct Writer {
    store: Arc<Store>,
    keys: Arc<RwLock<KeyStore>>,
    modules: Arc<dyn Modules>,
    metrics: Arc<Metrics>,
    max_batch: usize,
    /// Committed (seq, id) of each actor's log tip, filled on first use.
    tips: HashMap<String, (u64, String)>,
    /// Where new delivery jobs and backfills go once committed.
    outbound: Arc<std::sync::Mutex<Option<mpsc::UnboundedSender<Outbound>>>>,
    /// Rebuild requests answered when their projection has caught up.
    waiting: HashMap<String, Vec<RebuildReply>>,
    /// What peers may store here; read at the start of every batch.
    limits: Arc<RwLock<IngestLimits>>,
    /// Since when build steps have committed lazily, if any has since the
    /// last durable commit ([`WriteTxn::commit_lazily`]).
    lazy_since: Option<Instant>,
}

/// How long build steps may commit lazily before one commits durably: the
/// most build work a crash makes the node redo.
const LAZY_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a writer without quick repair waits for work before it saves
/// the store's allocator state ([`Writer::next_command`]).
const SETTLE_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

type RebuildReply = oneshot::Sender<Result<u64, KernelError>>;

impl Writer {
    pub(super) fn new(
        store: Arc<Store>,
        keys: Arc<RwLock<KeyStore>>,
        modules: Arc<dyn Modules>,
        metrics: Arc<Metrics>,
        max_batch: usize,
        outbound: Arc<std::sync::Mutex<Option<mpsc::UnboundedSender<Outbound>>>>,
        limits: Arc<RwLock<IngestLimits>>,
    ) -> Self {
        Self {
            store,
            keys,
            modules,
            metrics,
            max_batch: max_batch.max(1),
            tips: HashMap::new(),
            outbound,
            waiting: HashMap::new(),
            limits,
            lazy_since: None,
        }
    }

    /// Serves commands until every sender is gone. While a projection is
    /// being built, one build step follows each batch, and steps run
    /// back to back while no command waits.
    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut batch = Vec::with_capacity(self.max_batch);
        let mut stopping = false;
        // A clock to wait for commands with, for a store without quick
        // repair ([`Writer::next_command`]).
        let waiter = (!self.store.quick_repair())
            .then(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .inspect_err(|e| tracing::error!(error = %e, "no clock for the writer: the store's allocator state is saved only by commits"))
                    .ok()
            })
            .flatten();
        loop {
            let first = if self.modules.building() {
                match rx.try_recv() {
                    Ok(cmd) => cmd,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        self.build_step();
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                }
            } else {
                // Nothing to build: what the last steps committed lazily is
                // made durable before the writer waits.
                self.settle_lazy();
                match self.next_command(&mut rx, waiter.as_ref()) {
                    Some(cmd) => cmd,
                    None => break,
                }
            };
            // A staged batch commits in a transaction of its own, so that
            // refusing it takes nothing else with it.
            let mut alone = None;
            match first {
                Command::Stop => break,
                cmd @ (Command::IngestBatch(_) | Command::Prune(_)) => alone = Some(cmd),
                cmd => batch.push(cmd),
            }
            while alone.is_none() && batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(Command::Stop) => {
                        stopping = true;
                        break;
                    }
                    Ok(cmd @ (Command::IngestBatch(_) | Command::Prune(_))) => alone = Some(cmd),
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.commit_batch(&mut batch);
            }
            match alone {
                Some(Command::Prune(prune)) => self.prune(*prune),
                Some(cmd) => {
                    batch.push(cmd);
                    self.commit_batch(&mut batch);
                }
                None => {}
            }
            if stopping {
                break;
            }
            if self.modules.building() {
                self.build_step();
            }
        }
        self.settle_lazy();
        tracing::debug!("writer stopped");
    }

    /// Deletes what `prune` names and starts rebuilding every projection,
    /// in one transaction: the projections never show a state that folds
    /// activities the log no longer holds, once their builds catch up.
    fn prune(&mut self, prune: Prune) {
        let recent = self.store.recent_ids().clone();
        let result = (|| {
            let txn = self.store.begin_write()?;
            let mut all = weft_store::Pruned::default();
            for (origin, actor, before_ms) in &prune.prunes {
                let one = txn.prune(origin, actor, *before_ms, &prune.inboxes, &*prune.spare)?;
                all.activities += one.activities;
                all.bytes += one.bytes;
                all.forgotten.extend(one.forgotten);
            }
            let txn = if all.activities > 0 {
                self.modules.restart_builds(txn)?
            } else {
                txn
            };
            txn.commit()?;
            Ok::<_, weft_store::StoreError>(all)
        })();
        match &result {
            Ok(pruned) => {
                recent.forget(&pruned.forgotten);
                self.modules.committed(Vec::new(), true);
            }
            Err(e) => {
                tracing::error!(error = %e, "pruning failed; nothing was deleted");
                self.modules.committed(Vec::new(), false);
            }
        }
        let _ = prune.reply.send(result.map_err(KernelError::from));
    }

    /// Makes the build steps committed lazily durable, if there are any.
    fn settle_lazy(&mut self) {
        if self.lazy_since.is_none() {
            return;
        }
        match self.store.begin_write().and_then(WriteTxn::commit) {
            Ok(()) => self.lazy_since = None,
            Err(e) => tracing::error!(error = %e, "could not make the last build steps durable"),
        }
    }

    /// The next command, waiting for it. With quick repair off and a
    /// commit without the allocator state the file's last, the writer
    /// waits [`SETTLE_AFTER`] at most, then saves the allocator state
    /// ([`Store::settle_repair`]) and waits on: an idle node's file opens
    /// at once after a crash, and a busy one, whose next requests arrive
    /// within moments of each commit, is not slowed. `None`: every sender
    /// is gone.
    fn next_command(
        &self,
        rx: &mut mpsc::Receiver<Command>,
        waiter: Option<&tokio::runtime::Runtime>,
    ) -> Option<Command> {
        if let Some(waiter) = waiter.filter(|_| self.store.unsettled()) {
            // The timer is made inside the runtime, whose clock it needs.
            let waited =
                waiter.block_on(async { tokio::time::timeout(SETTLE_AFTER, rx.recv()).await });
            match waited {
                Ok(next) => return next,
                Err(_) => {
                    if let Err(e) = self.store.settle_repair() {
                        tracing::error!(error = %e, "could not save the store's allocator state");
                    }
                }
            }
        }
        rx.blocking_recv()
    }

    /// Takes one step of building a projection, in its own transaction,
    /// and answers the rebuild requests of one that has caught up. The
    /// step commits lazily (a crash makes the node fold it again), unless
    /// it ends a build, whose requests are answered only once it is
    /// durable, or steps have committed lazily for [`LAZY_FOR`].
    fn build_step(&mut self) {
        let started = Instant::now();
        let result = self
            .store
            .begin_write()
            .map_err(|e| e.to_string())
            .and_then(|txn| {
                let (txn, done) = self.modules.build_step(txn).map_err(|e| e.to_string())?;
                let lazy = done.is_none() && self.lazy_since.is_none_or(|t| t.elapsed() < LAZY_FOR);
                if lazy {
                    txn.commit_lazily().map_err(|e| e.to_string())?;
                    self.lazy_since.get_or_insert_with(Instant::now);
                } else {
                    txn.commit().map_err(|e| e.to_string())?;
                    self.lazy_since = None;
                }
                Ok(done)
            });
        self.metrics.spent(Phase::Fold, started);
        if result.is_ok() {
            self.modules.committed(Vec::new(), true);
        }
        match result {
            Ok(Some((name, count))) => {
                for reply in self.waiting.remove(&name).unwrap_or_default() {
                    let _ = reply.send(Ok(count));
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "a projection build step failed; trying again shortly");
                self.modules.committed(Vec::new(), false);
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
    }

    fn commit_batch(&mut self, batch: &mut Vec<Command>) {
        let mut pending_tips = HashMap::new();
        let mut appended: Vec<Appended> = Vec::new();
        let mut rebuilds = Vec::new();
        let mut woken = Vec::new();
        let txn = match self.store.begin_write() {
            Ok(txn) => txn,
            Err(e) => {
                refuse(batch, &e.to_string());
                return;
            }
        };
        let started = Instant::now();
        let mut table_fault = None;
        let recent = self.store.recent_ids().clone();
        let mut outcomes = match Batch::open(&txn, &recent) {
            Ok(mut tables) => {
                let mut actors = HashMap::new();
                let mut usage = HashMap::new();
                let limits = self.limits.read().map(|l| *l).unwrap_or_default();
                let mut cx = Cx {
                    tables: &mut tables,
                    pending: &mut pending_tips,
                    appended: &mut appended,
                    actors: &mut actors,
                    position: None,
                    woken: &mut woken,
                    ingested: HashMap::new(),
                    usage: &mut usage,
                    limits,
                };
                let outcomes = batch
                    .drain(..)
                    .filter_map(|cmd| match cmd {
                        Command::Rebuild { name, reply } => {
                            rebuilds.push((name, reply));
                            None
                        }
                        cmd => Some(self.apply(&txn, &mut cx, cmd)),
                    })
                    .collect::<Vec<_>>();
                // Each actor's state is written once per batch, as of its
                // last append.
                if let Err(e) = actors
                    .values()
                    .try_for_each(|state| tables.put_actor(state))
                {
                    table_fault = Some(format!("writing actor states failed: {e}"));
                } else if let Err(e) = usage
                    .iter()
                    .try_for_each(|(origin, u)| tables.put_origin_usage(origin, u))
                {
                    table_fault = Some(format!("writing peer origins' usage failed: {e}"));
                } else if let Err(e) = tables.flush_ids() {
                    table_fault = Some(format!("writing the id index failed: {e}"));
                }
                outcomes
            }
            Err(e) => {
                refuse(batch, &e.to_string());
                return;
            }
        };
        let mut fault = outcomes
            .iter()
            .any(Outcome::failed_on_storage)
            .then(|| "a storage error occurred while writing".to_owned())
            .or(table_fault)
            .or_else(|| outcomes.iter().find_map(Outcome::aborts));
        // Policies take effect in the transaction that appends them.
        if fault.is_none()
            && let Err(e) = appended
                .iter()
                .try_for_each(|item| crate::policy::record(&txn, &item.signed, item.position))
        {
            fault = Some(format!("recording a policy failed: {e}"));
        }
        self.metrics.spent(Phase::Append, started);
        let mut started = Instant::now();
        let mut txn = Some(txn);
        if fault.is_none() {
            match txn.take().map(|t| self.modules.fold(t, &appended)) {
                Some(Ok(t)) => txn = Some(t),
                Some(Err(e)) => fault = Some(format!("folding failed: {e}")),
                None => {}
            }
            self.metrics.spent(Phase::Fold, started);
            started = Instant::now();
            match txn.take().map(|t| self.modules.react(t, &mut appended)) {
                Some(Ok(t)) => txn = Some(t),
                Some(Err(e)) => fault = Some(format!("reacting failed: {e}")),
                None => {}
            }
            self.metrics.spent(Phase::React, started);
            started = Instant::now();
        }
        let mut continuing = Vec::new();
        for (name, reply) in rebuilds {
            let result = match txn.take() {
                Some(t) if fault.is_none() => match self.modules.rebuild(t, &name) {
                    Ok((t, result)) => {
                        txn = Some(t);
                        match result {
                            Ok(Some(count)) => Ok(count),
                            // Answered once the build has caught up.
                            Ok(None) => {
                                continuing.push((name, reply));
                                continue;
                            }
                            Err(e) => Err(KernelError::NotFound(e)),
                        }
                    }
                    Err(e) => {
                        fault = Some(format!("rebuilding {name} failed: {e}"));
                        Err(KernelError::Store(e))
                    }
                },
                other => {
                    txn = other;
                    Err(KernelError::NotCommitted(
                        "an earlier write in the batch failed".into(),
                    ))
                }
            };
            outcomes.push(Outcome::Rebuilt(Held::new(reply, result)));
        }
        self.metrics.spent(Phase::Fold, started);
        let started = Instant::now();
        if fault.is_none() {
            fault = match self.flush_keys() {
                Err(e) => Some(e),
                Ok(()) => txn
                    .take()
                    .and_then(|t| t.commit().err().map(|e| e.to_string())),
            };
        }
        self.metrics.spent(Phase::Commit, started);
        recent.settle(fault.is_none());
        match &fault {
            None => {
                // A durable commit: the lazy ones before it are durable too.
                self.lazy_since = None;
                let count = outcomes.iter().filter(|o| o.appended()).count() as u64;
                self.metrics.committed(outcomes.len() as u64, count);
                self.tips.extend(pending_tips);
                self.modules.committed(appended, true);
                for (name, reply) in continuing {
                    self.waiting.entry(name).or_default().push(reply);
                }
                if !woken.is_empty()
                    && let Some(tx) = self.outbound.lock().ok().and_then(|o| o.clone())
                {
                    for item in woken {
                        let _ = tx.send(item);
                    }
                }
            }
            Some(f) => {
                tracing::error!(error = %f, batch = outcomes.len(), "batch not committed");
                self.metrics
                    .failed_commits
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.tips.clear();
                self.modules.committed(appended, false);
                for (_, reply) in continuing {
                    let _ = reply.send(Err(KernelError::NotCommitted(f.clone())));
                }
            }
        }
        for outcome in outcomes {
            outcome.answer(fault.as_deref());
        }
    }

    fn flush_keys(&self) -> Result<(), String> {
        let mut keys = self
            .keys
            .write()
            .map_err(|_| "the key store lock is poisoned".to_owned())?;
        keys.flush().map_err(|e| e.to_string())
    }

    fn apply(&mut self, txn: &WriteTxn, cx: &mut Cx<'_, '_>, cmd: Command) -> Outcome {
        // Folds get the transaction later; these steps only write tables.
        let _ = txn;
        match cmd {
            Command::Bootstrap {
                service,
                admin_token_hash,
                public_url,
                reply,
            } => {
                let result = self.bootstrap(cx, &service, &admin_token_hash, &public_url);
                Outcome::Created(Held::new(reply, result))
            }
            Command::CreateActor { name, kind, reply } => {
                let result = self.create_actor(cx, &name, kind, None);
                Outcome::Created(Held::new(reply, result))
            }
            Command::Append(append) => {
                let append = *append;
                let (local, remote) = (&append.local, &append.remote);
                let result = self
                    .append(
                        cx,
                        append.signed,
                        append.record,
                        append.state,
                        append.public_rank,
                    )
                    .and_then(|position| {
                        if append.reacts
                            && let Some(last) = cx.appended.last_mut()
                        {
                            last.reacts = true;
                        }
                        if let Some(done) = append.completes {
                            cx.tables.delete_reaction(done)?;
                        }
                        Self::address(cx, position, local, remote)
                    });
                Outcome::Appended(Held::new(append.reply, result))
            }
            Command::PutArtifact { id, bytes, reply } => {
                let result = cx
                    .tables
                    .put_artifact(&id, &bytes)
                    .map_err(KernelError::from);
                Outcome::Stored(Held::new(reply, result))
            }
            Command::Ingest(ingest) => {
                let ingest = *ingest;
                let result = Self::ingest(
                    cx,
                    ingest.signed,
                    ingest.record,
                    &ingest.recipients,
                    ingest.backfill,
                    ingest.reacts,
                );
                Outcome::Ingested(Held::new(ingest.reply, result))
            }
            Command::IngestBatch(batch) => {
                let batch = *batch;
                let result = Self::ingest_batch(cx, batch.items);
                Outcome::Batch(Held::new(batch.reply, result))
            }
            Command::Federation { writes, reply } => {
                let result = writes.into_iter().try_for_each(|w| Self::federation(cx, w));
                Outcome::Stored(Held::new(reply, result))
            }
            Command::ReissueToken { actor, hash, reply } => {
                let result = cx
                    .tables
                    .replace_actor_tokens(&actor, &hash)
                    .map(|_| ())
                    .map_err(KernelError::from);
                Outcome::Stored(Held::new(reply, result))
            }
            Command::Rebuild { reply, .. } => Outcome::Rebuilt(Held::new(
                reply,
                Err(KernelError::NotCommitted(
                    "rebuilds run after the batch".into(),
                )),
            )),
            Command::Prune(prune) => {
                let _ = prune.reply.send(Err(KernelError::NotCommitted(
                    "pruning runs in a transaction of its own".into(),
                )));
                Outcome::Stopped
            }
            Command::Stop => Outcome::Stopped,
        }
    }

    fn append(
        &mut self,
        cx: &mut Cx<'_, '_>,
        signed: Signed,
        record: ActivityRecord,
        state: ActorState,
        public_rank: Option<u64>,
    ) -> Result<u64, KernelError> {
        let tip = match cx
            .pending
            .get(&state.id)
            .or_else(|| self.tips.get(&state.id))
        {
            Some(tip) => tip.clone(),
            None => {
                let stored = cx
                    .tables
                    .actor(&state.id)?
                    .ok_or_else(|| KernelError::NotFound(format!("actor {}", state.id)))?;
                (stored.tip_seq, stored.tip_id)
            }
        };
        if signed.header.seq != tip.0 + 1 || signed.header.prev.as_deref() != Some(tip.1.as_str()) {
            return Err(KernelError::NotCommitted(format!(
                "{}'s log moved on (an earlier write failed); retry",
                state.username
            )));
        }
        let position = cx.position()?;
        cx.tables
            .append(position, &signed.id, &record, public_rank)?;
        cx.pending
            .insert(state.id.clone(), (signed.header.seq, signed.id.clone()));
        cx.actors.insert(state.id.clone(), state);
        cx.appended.push(Appended {
            position,
            signed,
            json: record.json,
            backfilled: false,
            reacts: false,
            intents: Vec::new(),
        });
        Ok(position)
    }

    /// Puts a just-appended local activity into local recipients' inboxes
    /// and writes one delivery job per remote recipient.
    fn address(
        cx: &mut Cx<'_, '_>,
        position: u64,
        local: &[String],
        remote: &[(String, String)],
    ) -> Result<(), KernelError> {
        for recipient in local {
            cx.tables.put_inbox(recipient, position)?;
        }
        if remote.is_empty() {
            return Ok(());
        }
        let Some((activity, key)) = cx.appended.last().map(|a| {
            let key = SetKey::of(&a.signed.id, &a.signed.header.published);
            (a.signed.id.clone(), key)
        }) else {
            return Ok(());
        };
        // Set reconciliation's index: one row per origin it goes to.
        let mut origins: Vec<&str> = remote.iter().map(|(_, o)| o.as_str()).collect();
        origins.sort_unstable();
        origins.dedup();
        for origin in origins {
            cx.tables.put_addressed(origin, &key, position)?;
        }
        let now = now_ms();
        for (recipient, origin) in remote {
            let job = Job {
                id: cx.tables.next_job_id()?,
                activity: activity.clone(),
                recipient: recipient.clone(),
                origin: origin.clone(),
                attempts: 0,
                next_at_ms: now,
                created_ms: now,
                last_error: None,
            };
            cx.tables.put_job(&job)?;
            cx.woken.push(Outbound::Job(job));
        }
        Ok(())
    }

    /// Stores a verified activity from elsewhere: a duplicate changes
    /// nothing, a second activity at a known position is kept only as fork
    /// evidence.
    fn ingest(
        cx: &mut Cx<'_, '_>,
        signed: Signed,
        record: ActivityRecord,
        recipients: &[String],
        backfill: Option<BackfillJob>,
        reacts: bool,
    ) -> Result<Ingested, KernelError> {
        // A foreign activity is in no chain: known by its id alone.
        let slot = if signed.foreign.is_some() {
            if cx.tables.has_activity(&signed.id)? {
                return Ok(Ingested::Duplicate);
            }
            None
        } else {
            let seq = signed.header.seq;
            let author = signed.header.actor.as_str();
            let slot = (author.to_owned(), seq);
            if let Some(held) = cx.ingested.get(&slot) {
                if *held == signed.id {
                    return Ok(Ingested::Duplicate);
                }
            } else if cx.tables.has_activity(&signed.id)? {
                return Ok(Ingested::Duplicate);
            }
            let held = match cx.ingested.get(&slot) {
                Some(id) => Some(id.clone()),
                None => cx.tables.activity_at(author, seq)?,
            };
            if let Some(kept) = held {
                let evidence = cx.keep_fork(author, seq, &signed.id, &record.json)?;
                return Ok(Ingested::Fork {
                    seq,
                    kept,
                    evidence,
                });
            }
            if let Some((neighbour_seq, neighbour)) = Self::unlinked(cx, &signed)? {
                let evidence = cx.keep_fork(author, seq, &signed.id, &record.json)?;
                return Ok(Ingested::Unlinked {
                    seq,
                    neighbour_seq,
                    neighbour,
                    evidence,
                });
            }
            Some(slot)
        };
        // Within the author's origin's quota.
        let origin = weft_core::model::origin(&signed.header.actor);
        if let Some(origin) = &origin {
            let limits = cx.limits;
            let usage = cx.usage(origin)?;
            let bytes = record.json.len() as u64;
            if usage.activities >= limits.max_activities_per_origin
                || usage.bytes.saturating_add(bytes) > limits.max_bytes_per_origin
            {
                return Err(KernelError::Quota(format!(
                    "{origin} already holds {} activities ({} bytes) on this node, its quota (`[federation] max_activities_per_origin` {}, `max_bytes_per_origin` {}); nothing more from its actors is kept",
                    usage.activities,
                    usage.bytes,
                    limits.max_activities_per_origin,
                    limits.max_bytes_per_origin
                )));
            }
            usage.activities += 1;
            usage.bytes += bytes;
        }
        let position = cx.position()?;
        cx.tables.append_remote(position, &record)?;
        if let Some(origin) = &origin {
            let key = SetKey::of(&signed.id, &signed.header.published);
            cx.tables.put_held_from(origin, &key, position)?;
        }
        if let Some(evidence) = &signed.foreign {
            cx.tables.put_evidence(&signed.id, evidence)?;
        }
        for recipient in recipients {
            cx.tables.put_inbox(recipient, position)?;
        }
        if let Some(job) = backfill {
            cx.tables.put_backfill(&job)?;
            cx.woken.push(Outbound::Backfill(job));
        }
        if let Some(slot) = slot {
            cx.ingested.insert(slot, signed.id.clone());
        }
        cx.appended.push(Appended {
            position,
            signed,
            json: record.json,
            backfilled: record.backfilled,
            reacts,
            intents: Vec::new(),
        });
        Ok(Ingested::Stored(position))
    }

    /// Stores every item of a staged batch, in order, or refuses the
    /// batch at its first item that would not be stored as it is: a fork,
    /// an activity that does not link with its stored neighbours, or one
    /// past its origin's quota. Duplicates change nothing and are fine.
    /// The caller aborts the transaction when this fails.
    fn ingest_batch(
        cx: &mut Cx<'_, '_>,
        items: Vec<BatchItem>,
    ) -> Result<BatchReport, KernelError> {
        let mut report = BatchReport::default();
        for item in items {
            let id = item.signed.id.clone();
            let refused = |reason: String| KernelError::BatchRefused {
                id: id.clone(),
                reason,
            };
            match Self::ingest(
                cx,
                item.signed,
                item.record,
                &item.recipients,
                None,
                item.reacts,
            ) {
                Ok(Ingested::Stored(position)) => {
                    report.stored += 1;
                    report.positions = Some(match report.positions {
                        Some((first, _)) => (first, position),
                        None => (position, position),
                    });
                }
                Ok(Ingested::Duplicate) => report.duplicates += 1,
                Ok(Ingested::Fork { seq, kept, .. }) => {
                    return Err(refused(format!(
                        "a fork: this node holds {kept} at its author's seq {seq}"
                    )));
                }
                Ok(Ingested::Unlinked {
                    seq,
                    neighbour_seq,
                    neighbour,
                    ..
                }) => {
                    return Err(refused(format!(
                        "seq {seq} does not link through `prev` with {neighbour} at seq {neighbour_seq}"
                    )));
                }
                Err(e @ (KernelError::Store(_) | KernelError::Quota(_))) => return Err(e),
                Err(e) => return Err(refused(e.to_string())),
            }
        }
        Ok(report)
    }

    /// The stored neighbour `signed` does not link with, if any: the
    /// activity at `seq − 1` when `prev` is not its id, or the activity at
    /// `seq + 1` when its `prev` is not `signed`'s id. Gaps are fine.
    fn unlinked(
        cx: &mut Cx<'_, '_>,
        signed: &Signed,
    ) -> Result<Option<(u64, String)>, KernelError> {
        let author = signed.header.actor.as_str();
        let seq = signed.header.seq;
        let at = |cx: &mut Cx<'_, '_>, seq: u64| -> Result<Option<String>, KernelError> {
            Ok(match cx.ingested.get(&(author.to_owned(), seq)) {
                Some(id) => Some(id.clone()),
                None => cx.tables.activity_at(author, seq)?,
            })
        };
        if seq > 1
            && let Some(before) = at(cx, seq - 1)?
            && signed.header.prev.as_deref() != Some(before.as_str())
        {
            return Ok(Some((seq - 1, before)));
        }
        if let Some(after) = at(cx, seq + 1)? {
            let links = cx
                .tables
                .record(&after)?
                .and_then(|r| serde_json::from_str::<Value>(&r.json).ok())
                .is_some_and(|v| v.get("prev").and_then(Value::as_str) == Some(&signed.id));
            if !links {
                return Ok(Some((seq + 1, after)));
            }
        }
        Ok(None)
    }

    fn federation(cx: &mut Cx<'_, '_>, write: FederationWrite) -> Result<(), KernelError> {
        match write {
            FederationWrite::Peer(peer) => cx.tables.put_peer(&peer)?,
            FederationWrite::JobDone(id) => {
                cx.tables.delete_job(id)?;
            }
            FederationWrite::JobRetry(job) => cx.tables.put_job(&job)?,
            FederationWrite::JobDead(job) => {
                cx.tables.delete_job(job.id)?;
                cx.tables.put_dead_letter(&job)?;
            }
            FederationWrite::Revive { id, now_ms } => {
                let mut job = cx
                    .tables
                    .take_dead_letter(id)?
                    .ok_or_else(|| KernelError::NotFound(format!("dead letter {id}")))?;
                job.attempts = 0;
                job.next_at_ms = now_ms;
                cx.tables.put_job(&job)?;
                cx.woken.push(Outbound::Job(job));
            }
            FederationWrite::BackfillDone(follow) => cx.tables.delete_backfill(&follow)?,
            // A dead letter retried or gone since is nothing to heal.
            FederationWrite::Healed { id, at_ms } => {
                cx.tables.put_healed(id, at_ms)?;
            }
            FederationWrite::SyncState(state) => cx.tables.put_sync_state(&state)?,
            FederationWrite::ReactionDone(position) => cx.tables.delete_reaction(position)?,
            FederationWrite::Park(parked) => cx.tables.put_parked(&parked)?,
            FederationWrite::Unpark { verb, id } => cx.tables.delete_parked(&verb, &id)?,
            FederationWrite::PendingModule(pending) => cx.tables.put_pending_module(&pending)?,
            FederationWrite::PendingModuleDone(verb) => cx.tables.delete_pending_module(&verb)?,
            FederationWrite::RemoveUnusedArtifact(id) => {
                cx.tables.remove_unused_artifact(&id)?;
            }
        }
        Ok(())
    }

    fn bootstrap(
        &mut self,
        cx: &mut Cx<'_, '_>,
        service: &str,
        admin_token_hash: &[u8; 32],
        public_url: &str,
    ) -> Result<Created, KernelError> {
        if cx.tables.meta("service_actor")?.is_some() {
            return Err(KernelError::Conflict(
                "the node is already initialised".into(),
            ));
        }
        let created = self.create_actor(cx, service, ActorKind::Service, Some(public_url))?;
        cx.tables.put_token(admin_token_hash, &Role::Admin)?;
        cx.tables.put_meta("service_actor", &created.id)?;
        cx.tables.put_meta("public_url", public_url)?;
        Ok(created)
    }

    fn create_actor(
        &mut self,
        cx: &mut Cx<'_, '_>,
        name: &str,
        kind: ActorKind,
        public_url: Option<&str>,
    ) -> Result<Created, KernelError> {
        if cx.tables.name_taken(name)? {
            return Err(KernelError::Conflict(format!(
                "an actor named `{name}` already exists on this node"
            )));
        }
        let base = match public_url {
            Some(url) => url.to_owned(),
            None => cx.tables.meta("public_url")?.ok_or_else(|| {
                KernelError::NotFound("the node's public URL (run `weft init`)".into())
            })?,
        };
        let id = format!("{}/actors/{name}", base.trim_end_matches('/'));
        let key_id = format!("{id}#key-1");
        let secret = SigningKey::generate(&mut rand::rngs::OsRng);
        let map = NewActor {
            id: &id,
            kind,
            username: name,
            name: Some(name),
            key_id: &key_id,
            key: &secret.verifying_key(),
            published: &super::now_after(""),
        }
        .create();
        let signed = Signed::sign(map, &key_id, &secret)?.with_url_id();
        let mut state = actor::apply(None, &signed, Signature::Trusted)?;
        let json = signed.to_json_string();
        self.modules.validate(&signed, &json)?;

        // Every check passed: from here on only storage can fail.
        self.keys
            .write()
            .map_err(|_| KernelError::NotCommitted("the key store lock is poisoned".into()))?
            .insert(key_id, secret);
        let token = token::generate();
        state.public_count = 1;
        let record = ActivityRecord {
            id: signed.id.clone(),
            json: json.clone(),
            actor: id.clone(),
            seq: 1,
            public: true,
            backfilled: false,
        };
        let position = cx.position()?;
        cx.tables.append(position, &signed.id, &record, Some(1))?;
        cx.tables.put_actor(&state)?;
        cx.tables.put_name(name, &id)?;
        cx.tables
            .put_token(&token::hash(&token), &Role::Actor(id.clone()))?;
        cx.appended.push(Appended {
            position,
            signed,
            json: json.clone(),
            backfilled: false,
            reacts: false,
            intents: Vec::new(),
        });
        Ok(Created {
            id,
            name: name.to_owned(),
            token,
            activity: json,
        })
    }
}

/// What one batch accumulates while its commands are applied.
pub(super) struct Cx<'a, 't> {
    tables: &'a mut Batch<'t>,
    pending: &'a mut HashMap<String, (u64, String)>,
    appended: &'a mut Vec<Appended>,
    /// Actor states to write at the end of the batch.
    actors: &'a mut HashMap<String, ActorState>,
    position: Option<u64>,
    /// Jobs and backfills to hand out once the batch is durable.
    woken: &'a mut Vec<Outbound>,
    /// (author, seq) → id of the activities ingested in this batch.
    ingested: HashMap<(String, u64), String>,
    /// Peer origins' usage as this batch leaves it, written at its end.
    usage: &'a mut HashMap<String, OriginUsage>,
    limits: IngestLimits,
}

impl Cx<'_, '_> {
    /// `origin`'s usage as of this batch.
    fn usage(&mut self, origin: &str) -> Result<&mut OriginUsage, KernelError> {
        if !self.usage.contains_key(origin) {
            let stored = self.tables.origin_usage(origin)?;
            self.usage.insert(origin.to_owned(), stored);
        }
        self.usage
            .get_mut(origin)
            .ok_or(KernelError::Store(weft_store::StoreError::Internal(
                "origin usage vanished",
            )))
    }

    /// Keeps `json` as fork evidence against `author` at `seq`, unless the
    /// caps say there is enough already; answers whether it was kept.
    fn keep_fork(
        &mut self,
        author: &str,
        seq: u64,
        id: &str,
        json: &str,
    ) -> Result<bool, KernelError> {
        let limits = self.limits;
        let Some(origin) = weft_core::model::origin(author) else {
            return Ok(false);
        };
        if self.usage(&origin)?.forks >= limits.max_forks_per_origin
            || self.tables.forks_at(author, seq)? >= limits.max_forks_per_position
        {
            return Ok(false);
        }
        self.tables.put_fork(author, seq, id, json)?;
        self.usage(&origin)?.forks += 1;
        Ok(true)
    }

    /// The next global position in the append order.
    fn position(&mut self) -> Result<u64, KernelError> {
        let next = match self.position {
            Some(p) => p,
            None => self.tables.next_position()?,
        };
        self.position = Some(next + 1);
        Ok(next)
    }
}

/// Answers every command of `batch` with `fault`: none of them ran.
fn refuse(batch: &mut Vec<Command>, fault: &str) {
    for cmd in batch.drain(..) {
        let outcome = match cmd {
            Command::Bootstrap { reply, .. } | Command::CreateActor { reply, .. } => {
                Outcome::Created(Held::unrun(reply))
            }
            Command::Append(append) => Outcome::Appended(Held::unrun(append.reply)),
            Command::PutArtifact { reply, .. }
            | Command::Federation { reply, .. }
            | Command::ReissueToken { reply, .. } => Outcome::Stored(Held::unrun(reply)),
            Command::Rebuild { reply, .. } => Outcome::Rebuilt(Held::unrun(reply)),
            Command::Ingest(ingest) => Outcome::Ingested(Held::unrun(ingest.reply)),
            Command::IngestBatch(batch) => Outcome::Batch(Held::unrun(batch.reply)),
            Command::Prune(prune) => {
                let _ = prune
                    .reply
                    .send(Err(KernelError::NotCommitted(fault.to_owned())));
                continue;
            }
            Command::Stop => Outcome::Stopped,
        };
        outcome.answer(Some(fault));
    }
}
