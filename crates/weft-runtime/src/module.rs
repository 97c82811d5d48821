//! A verb or a projection ready to run, whatever contract version it was
//! built against: its instances (fresh per call, or kept warm for the
//! node's own modules), its budget, and the calls the kernel makes —
//! `validate`, `react`, folds in a session over the writer's transaction,
//! `query`.
//!
//! It runs a module it is given; which modules exist and when they are
//! called is the kernel's registry's business.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use wasmtime::Store;
use wasmtime::component::Component;
use weft_core::model::Signed;
use weft_store::{ModuleKind, RecentIds, Snapshot, StoreError, WriteTxn};

use super::activity::{Activities, v0_1_record, v0_2_record};
use super::bindings::{v0_1, v0_2, v0_3};
use super::host::{Current, HostState, Source, Visible, WriteState};
use super::{Budget, Contract, Runtime, RuntimeError};

/// What a local actor should publish in response to an activity: a draft,
/// as JSON object text, for the node to sign and publish as `actor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub actor: String,
    pub draft: String,
}

/// Why a query has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    NotFound(String),
    BadRequest(String),
}

/// A verb's refusal of an activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    /// The field at fault (`object.content`), when the verb names one
    /// (0.2.0 and later).
    pub field: Option<String>,
}

/// Most activities one `fold-batch` call carries.
const BATCH: usize = 256;

/// An instance and its store.
///
/// A module's instance is made for one call and dropped after it, so that
/// no guest keeps state from one call to the next: what a module answers
/// depends only on its arguments and the store it reads, and a rebuild
/// folds to what incremental folding did even for a module that tries to
/// remember. The exception is [`Reuse::Warm`]: the node's own built-in
/// modules (this binary's genesis bundle, whose source is ours and keeps no
/// state), whose instances are kept between calls, because a fresh instance
/// costs ~50 µs where their folds take a few (slots reset by the pooling
/// allocator: a memory's dirty pages put back, its heap limit lowered).
struct Warm<B> {
    store: Store<HostState>,
    bindings: B,
}

/// Whether a module's instances live for one call or are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// A fresh instance per call: every module but the built-in ones.
    Fresh,
    /// Instances kept between calls: the node's own built-in modules,
    /// compiled without fuel counting ([`Runtime::compile_for`]).
    Warm,
}

/// A world's bindings: how a component of that world is made ready to
/// instantiate, and what its instances keep. Implemented by each contract
/// version's verb and projection bindings only.
trait Bindings: Sized {
    type Pre: Send + Sync;
    const KIND: ModuleKind;
    const CONTRACT: Contract;
    /// Most idle instances kept for [`Reuse::Warm`].
    const KEEP: usize;
    fn prepare(runtime: &Runtime, component: &Component) -> wasmtime::Result<Self::Pre>;
    fn instantiate(pre: &Self::Pre, store: &mut Store<HostState>) -> wasmtime::Result<Self>;
}

macro_rules! bindings {
    ($ty:ty, $pre:ty, $kind:expr, $contract:expr, $keep:expr) => {
        impl Bindings for $ty {
            type Pre = $pre;
            const KIND: ModuleKind = $kind;
            const CONTRACT: Contract = $contract;
            const KEEP: usize = $keep;

            fn prepare(runtime: &Runtime, component: &Component) -> wasmtime::Result<Self::Pre> {
                <$pre>::new(
                    runtime
                        .side_of(component.engine())
                        .linkers
                        .get(Self::KIND, Self::CONTRACT)
                        .ok_or_else(|| {
                            wasmtime::format_err!(
                                "{} has no {} world",
                                Self::CONTRACT,
                                Self::KIND.as_str()
                            )
                        })?
                        .instantiate_pre(component)?,
                )
            }

            fn instantiate(
                pre: &Self::Pre,
                store: &mut Store<HostState>,
            ) -> wasmtime::Result<Self> {
                pre.instantiate(store)
            }
        }
    };
}

// Verbs validate on many threads at once: keep what they leave. Folds run
// one at a time, on the writer.
bindings!(
    v0_1::verb::Verb,
    v0_1::verb::VerbPre<HostState>,
    ModuleKind::Verb,
    Contract::V0_1,
    usize::MAX
);
bindings!(
    v0_2::verb::Verb,
    v0_2::verb::VerbPre<HostState>,
    ModuleKind::Verb,
    Contract::V0_2,
    usize::MAX
);
bindings!(
    v0_1::projection::Projection,
    v0_1::projection::ProjectionPre<HostState>,
    ModuleKind::Projection,
    Contract::V0_1,
    1
);
bindings!(
    v0_2::projection::Projection,
    v0_2::projection::ProjectionPre<HostState>,
    ModuleKind::Projection,
    Contract::V0_2,
    1
);
bindings!(
    v0_3::projection::Projection,
    v0_3::projection::ProjectionPre<HostState>,
    ModuleKind::Projection,
    Contract::V0_3,
    1
);

/// A component ready to instantiate, the budget of every call, and the
/// idle instances of a [`Reuse::Warm`] module.
struct Instances<B: Bindings> {
    name: String,
    runtime: Arc<Runtime>,
    /// The engine the component was compiled on.
    engine: wasmtime::Engine,
    budget: Budget,
    pre: B::Pre,
    /// Idle instances, for [`Reuse::Warm`] only.
    idle: Option<Mutex<Vec<Warm<B>>>>,
}

impl<B: Bindings> Instances<B> {
    fn new(
        runtime: Arc<Runtime>,
        name: &str,
        component: &Component,
        budget: Budget,
        reuse: Reuse,
    ) -> Result<Self, RuntimeError> {
        let pre =
            B::prepare(&runtime, component).map_err(|e| RuntimeError::Invalid(format!("{e:#}")))?;
        Ok(Self {
            name: name.to_owned(),
            runtime,
            engine: component.engine().clone(),
            budget,
            pre,
            idle: (reuse == Reuse::Warm).then(|| Mutex::new(Vec::new())),
        })
    }

    /// An instance armed for one call: an idle one, or a new one.
    fn take(&self) -> Result<Warm<B>, RuntimeError> {
        let kept = self
            .idle
            .as_ref()
            .and_then(|idle| idle.lock().ok().and_then(|mut idle| idle.pop()));
        if let Some(mut warm) = kept {
            self.runtime.arm(&mut warm.store, self.budget)?;
            return Ok(warm);
        }
        let kv = match B::KIND {
            ModuleKind::Projection => self.name.as_str(),
            ModuleKind::Verb => "",
        };
        let mut store = self.runtime.new_store(&self.engine, kv, self.budget);
        self.runtime.arm(&mut store, self.budget)?;
        let bindings = B::instantiate(&self.pre, &mut store).map_err(|e| self.fault(&e))?;
        Ok(Warm { store, bindings })
    }

    /// An instance for the next call of a session that may hold one.
    fn rearm(&self, kept: Option<Warm<B>>) -> Result<Warm<B>, RuntimeError> {
        match kept {
            Some(mut warm) => {
                self.runtime.arm(&mut warm.store, self.budget)?;
                Ok(warm)
            }
            None => self.take(),
        }
    }

    /// Keeps an instance that answered, for [`Reuse::Warm`].
    fn give_back(&self, mut warm: Warm<B>) {
        if let Some(idle) = &self.idle {
            let data = warm.store.data_mut();
            data.source = Source::None;
            data.current = None;
            data.visible = None;
            data.kv.buffer.clear();
            data.kv.buffered_bytes = 0;
            if let Ok(mut idle) = idle.lock() {
                if idle.len() >= B::KEEP {
                    idle.pop();
                }
                idle.push(warm);
            }
        }
    }

    fn fault(&self, error: &wasmtime::Error) -> RuntimeError {
        self.runtime.fault(&self.name, self.budget, error)
    }

    /// Ends the call `call` made on `warm`: logs what it used, and keeps
    /// the instance if it answered. A trapped instance is never reused.
    fn finish<T>(
        &self,
        call: &str,
        warm: Warm<B>,
        result: wasmtime::Result<T>,
    ) -> Result<T, RuntimeError> {
        self.runtime
            .spent(&self.name, call, self.budget, &warm.store);
        match result {
            Ok(answer) => {
                self.give_back(warm);
                Ok(answer)
            }
            Err(e) => Err(self.fault(&e)),
        }
    }
}

/// The JSON text of one activity, for a 0.2.0 call about it whose source
/// may not hold it.
fn current(signed: &Signed, json: &str) -> Option<Arc<Current>> {
    Some(Arc::new(Current::from_iter([(
        signed.id.clone(),
        Arc::from(json),
    )])))
}

/// A verb ready to run, from any thread.
pub struct VerbModule {
    pub name: String,
    pub artifact: String,
    world: VerbWorld,
    /// Whether `react` is called at all (its definition's `reacts`).
    reacts: bool,
}

enum VerbWorld {
    V0_1(Instances<v0_1::verb::Verb>),
    V0_2(Instances<v0_2::verb::Verb>),
}

impl std::fmt::Debug for VerbModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerbModule")
            .field("name", &self.name)
            .field("artifact", &self.artifact)
            .field("contract", &self.contract())
            .finish()
    }
}

impl VerbModule {
    /// Makes `component` (compiled by [`Runtime::compile`]) runnable as
    /// verb `name`, under the contract version it was built against.
    pub fn new(
        runtime: Arc<Runtime>,
        name: &str,
        artifact: &str,
        component: &Component,
        budget: Budget,
        reuse: Reuse,
    ) -> Result<Self, RuntimeError> {
        let world = match runtime.contract(ModuleKind::Verb, component)? {
            Contract::V0_1 => {
                VerbWorld::V0_1(Instances::new(runtime, name, component, budget, reuse)?)
            }
            Contract::V0_2 => {
                VerbWorld::V0_2(Instances::new(runtime, name, component, budget, reuse)?)
            }
            contract @ Contract::V0_3 => {
                return Err(RuntimeError::Invalid(format!(
                    "{contract} has no verb world: build verbs against {}",
                    Contract::newest(ModuleKind::Verb)
                )));
            }
        };
        Ok(Self {
            name: name.to_owned(),
            artifact: artifact.to_owned(),
            world,
            reacts: true,
        })
    }

    pub fn contract(&self) -> Contract {
        match self.world {
            VerbWorld::V0_1(_) => Contract::V0_1,
            VerbWorld::V0_2(_) => Contract::V0_2,
        }
    }

    /// Whether local recipients of the verb's activities are asked how
    /// they react: `false` when its definition says `"reacts": false` (its
    /// `react` never asks for anything), and the node then never calls it.
    pub fn reacting(mut self, reacts: bool) -> Self {
        self.reacts = reacts;
        self
    }

    /// Whether [`VerbModule::react`] is worth calling (see
    /// [`VerbModule::reacting`]).
    pub fn reacts(&self) -> bool {
        self.reacts
    }

    /// Is the activity allowed? `Ok(Err(refusal))` is the verb's refusal.
    pub fn validate(
        &self,
        signed: &Signed,
        json: &str,
        source: Source,
    ) -> Result<Result<(), Refusal>, RuntimeError> {
        match &self.world {
            VerbWorld::V0_1(instances) => {
                let mut warm = instances.take()?;
                warm.store.data_mut().source = source;
                let activity = v0_1_record(&signed.id, json, false);
                let result = warm.bindings.call_validate(&mut warm.store, &activity);
                let answer = instances.finish("validate", warm, result)?;
                Ok(answer.map_err(|r| Refusal {
                    message: r.message,
                    field: None,
                }))
            }
            VerbWorld::V0_2(instances) => {
                let mut warm = instances.take()?;
                let data = warm.store.data_mut();
                data.source = source;
                data.current = current(signed, json);
                let activity = v0_2_record(&signed.id, json, false);
                let result = warm.bindings.call_validate(&mut warm.store, &activity);
                let answer = instances.finish("validate", warm, result)?;
                Ok(answer.map_err(|r| Refusal {
                    message: r.message,
                    field: r.field.filter(|f| !f.is_empty()),
                }))
            }
        }
    }

    /// What `recipient` (a local actor) does about the activity, reading
    /// the log from `source` (a committed snapshot, or the writer's
    /// transaction), which is handed back in place whatever happens.
    pub fn react(
        &self,
        signed: &Signed,
        json: &str,
        recipient: &str,
        source: &mut Source,
    ) -> Result<Vec<Intent>, RuntimeError> {
        match &self.world {
            VerbWorld::V0_1(instances) => {
                let mut warm = instances.take()?;
                warm.store.data_mut().source = std::mem::take(source);
                let activity = v0_1_record(&signed.id, json, false);
                let context = v0_1::types::Context {
                    recipient: recipient.to_owned(),
                };
                let result = warm
                    .bindings
                    .call_react(&mut warm.store, &activity, &context);
                *source = std::mem::take(&mut warm.store.data_mut().source);
                let intents = instances.finish("react", warm, result)?;
                Ok(intents
                    .into_iter()
                    .map(|i| Intent {
                        actor: i.actor,
                        draft: i.draft,
                    })
                    .collect())
            }
            VerbWorld::V0_2(instances) => {
                let mut warm = instances.take()?;
                let data = warm.store.data_mut();
                data.source = std::mem::take(source);
                data.current = current(signed, json);
                let activity = v0_2_record(&signed.id, json, false);
                let context = v0_2::types::Context {
                    recipient: recipient.to_owned(),
                };
                let result = warm
                    .bindings
                    .call_react(&mut warm.store, &activity, &context);
                *source = std::mem::take(&mut warm.store.data_mut().source);
                let intents = instances.finish("react", warm, result)?;
                Ok(intents
                    .into_iter()
                    .map(|i| Intent {
                        actor: i.actor,
                        draft: i.draft,
                    })
                    .collect())
            }
        }
    }
}

/// A projection ready to run: folds by the writer, queries from any thread.
pub struct ProjectionModule {
    pub name: String,
    pub artifact: String,
    world: ProjectionWorld,
    /// The activity types it folds, when its definition says (`folds`):
    /// others are not passed to it, and count as folded.
    folds: Option<BTreeSet<String>>,
}

enum ProjectionWorld {
    V0_1(Instances<v0_1::projection::Projection>),
    V0_2(Instances<v0_2::projection::Projection>),
    V0_3(Instances<v0_3::projection::Projection>),
}

impl std::fmt::Debug for ProjectionModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionModule")
            .field("name", &self.name)
            .field("artifact", &self.artifact)
            .field("contract", &self.contract())
            .finish()
    }
}

impl ProjectionModule {
    /// Makes `component` (compiled by [`Runtime::compile`]) runnable as
    /// projection `name`, under the contract version it was built against.
    pub fn new(
        runtime: Arc<Runtime>,
        name: &str,
        artifact: &str,
        component: &Component,
        budget: Budget,
        reuse: Reuse,
    ) -> Result<Self, RuntimeError> {
        let world = match runtime.contract(ModuleKind::Projection, component)? {
            Contract::V0_1 => {
                ProjectionWorld::V0_1(Instances::new(runtime, name, component, budget, reuse)?)
            }
            Contract::V0_2 => {
                ProjectionWorld::V0_2(Instances::new(runtime, name, component, budget, reuse)?)
            }
            Contract::V0_3 => {
                ProjectionWorld::V0_3(Instances::new(runtime, name, component, budget, reuse)?)
            }
        };
        Ok(Self {
            name: name.to_owned(),
            artifact: artifact.to_owned(),
            world,
            folds: None,
        })
    }

    pub fn contract(&self) -> Contract {
        match self.world {
            ProjectionWorld::V0_1(_) => Contract::V0_1,
            ProjectionWorld::V0_2(_) => Contract::V0_2,
            ProjectionWorld::V0_3(_) => Contract::V0_3,
        }
    }

    /// Passes only activities of these types to the module
    /// (its definition's `folds`); `None`: every activity.
    pub fn folding_only(mut self, kinds: Option<BTreeSet<String>>) -> Self {
        self.folds = kinds;
        self
    }

    /// Whether the module is passed every activity (its definition has no
    /// `folds`).
    pub fn folds_everything(&self) -> bool {
        self.folds.is_none()
    }

    /// Whether the module is passed activities of type `kind`.
    pub fn folds(&self, kind: &str) -> bool {
        self.folds.as_ref().is_none_or(|k| k.contains(kind))
    }

    /// Whether the module is passed any activity of `run`.
    pub fn passes_any(&self, run: &Activities<'_>) -> bool {
        self.folds.is_none() || run.kinds().any(|kind| self.folds(kind))
    }

    /// Which activities of `run` the module is passed; without `folds`,
    /// all of them, and no activity's type is read.
    pub fn passed(&self, run: &Activities<'_>) -> Vec<bool> {
        match self.folds {
            None => vec![true; run.len()],
            Some(_) => run.kinds().map(|kind| self.folds(kind)).collect(),
        }
    }

    /// Lends `txn` to this projection for a run of folds into its first
    /// generation's state ([`ProjectionModule::session_in`]).
    pub fn session(
        &self,
        txn: WriteTxn,
        ids: Arc<RecentIds>,
    ) -> Result<FoldSession<'_>, StoreError> {
        self.session_in(txn, ids, &self.name)
    }

    /// Lends `txn` to this projection for a run of folds into the state
    /// under `namespace` (a generation of it: [`weft_store::tables::namespace`]),
    /// opening the tables the folds use once; `ids` is the store's
    /// [`weft_store::Store::recent_ids`]. On failure `txn` is dropped
    /// (aborted).
    pub fn session_in(
        &self,
        txn: WriteTxn,
        ids: Arc<RecentIds>,
        namespace: &str,
    ) -> Result<FoldSession<'_>, StoreError> {
        let source = WriteState::open(txn, ids)?;
        let warm = match &self.world {
            ProjectionWorld::V0_1(_) => Held::V0_1(None),
            ProjectionWorld::V0_2(_) => Held::V0_2(None),
            ProjectionWorld::V0_3(_) => Held::V0_3(None),
        };
        Ok(FoldSession {
            module: self,
            warm,
            source: Some(source),
            current: None,
            namespace: namespace.to_owned(),
        })
    }

    /// Answers a query from a committed snapshot of its first generation's
    /// state ([`ProjectionModule::query_in`]).
    pub fn query(
        &self,
        snapshot: Snapshot,
        path: &str,
        params: &[(String, String)],
    ) -> Result<Result<String, QueryError>, RuntimeError> {
        self.query_in(snapshot, &self.name, path, params, None)
    }

    /// Answers a query from a committed snapshot of the state under
    /// `namespace` (the generation served); its `log.get` answers only what
    /// `visible` lets through, when given.
    pub fn query_in(
        &self,
        snapshot: Snapshot,
        namespace: &str,
        path: &str,
        params: &[(String, String)],
        visible: Option<Visible>,
    ) -> Result<Result<String, QueryError>, RuntimeError> {
        let ready = |store: &mut Store<HostState>, snapshot: Snapshot| {
            let data = store.data_mut();
            data.source = Source::Read(snapshot);
            data.visible = visible;
            data.kv.projection.clear();
            data.kv.projection.push_str(namespace);
            data.kv.writable = false;
            data.kv.buffer.clear();
        };
        match &self.world {
            ProjectionWorld::V0_1(instances) => {
                let mut warm = instances.take()?;
                ready(&mut warm.store, snapshot);
                let result = warm.bindings.call_query(&mut warm.store, path, params);
                Ok(instances
                    .finish("query", warm, result)?
                    .map_err(|e| match e {
                        v0_1::types::QueryError::NotFound(m) => QueryError::NotFound(m),
                        v0_1::types::QueryError::BadRequest(m) => QueryError::BadRequest(m),
                    }))
            }
            ProjectionWorld::V0_2(instances) => {
                let mut warm = instances.take()?;
                ready(&mut warm.store, snapshot);
                let result = warm.bindings.call_query(&mut warm.store, path, params);
                Ok(instances
                    .finish("query", warm, result)?
                    .map_err(|e| match e {
                        v0_2::types::QueryError::NotFound(m) => QueryError::NotFound(m),
                        v0_2::types::QueryError::BadRequest(m) => QueryError::BadRequest(m),
                    }))
            }
            ProjectionWorld::V0_3(instances) => {
                let mut warm = instances.take()?;
                ready(&mut warm.store, snapshot);
                let result = warm.bindings.call_query(&mut warm.store, path, params);
                Ok(instances
                    .finish("query", warm, result)?
                    .map_err(|e| match e {
                        v0_3::types::QueryError::NotFound(m) => QueryError::NotFound(m),
                        v0_3::types::QueryError::BadRequest(m) => QueryError::BadRequest(m),
                    }))
            }
        }
    }
}

/// What one fold did.
#[derive(Debug)]
pub enum Folded {
    /// The fold succeeded; its writes are kept.
    Applied,
    /// The projection returned an error; nothing it wrote is kept.
    Refused(String),
    /// The module trapped, ran out of fuel or hit its deadline; nothing it
    /// wrote is kept and its instance is discarded.
    Fault(RuntimeError),
}

/// The instance a session keeps between calls ([`Reuse::Warm`] only).
enum Held {
    V0_1(Option<Warm<v0_1::projection::Projection>>),
    V0_2(Option<Warm<v0_2::projection::Projection>>),
    V0_3(Option<Warm<v0_3::projection::Projection>>),
}

/// A projection folding runs of activities in the writer's transaction.
/// Only successful folds' writes reach the store. [`FoldSession::finish`]
/// gives the transaction back.
pub struct FoldSession<'m> {
    module: &'m ProjectionModule,
    warm: Held,
    /// `None` only while a call runs (the store holds it).
    source: Option<WriteState>,
    /// The JSON of the activities folded, when the transaction does not
    /// hold them (a dry run).
    current: Option<Arc<Current>>,
    /// Where the state folded into lives (a generation of the projection).
    namespace: String,
}

impl std::fmt::Debug for FoldSession<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FoldSession")
            .field("projection", &self.module.name)
            .finish_non_exhaustive()
    }
}

/// A session's transaction went missing: a bug in the session, never the
/// module's doing; the batch must not commit.
fn lost_transaction() -> StoreError {
    StoreError::Internal("a fold session lost its transaction")
}

/// How a call on a session's instance ended.
enum Called<T> {
    /// The module answered: its writes of the call are kept when `keep`.
    Answered(T),
    /// It trapped, ran out of a budget, or the instance could not be had.
    Fault(RuntimeError),
}

impl FoldSession<'_> {
    /// Makes activities' JSON text ([`Activities::texts`]) readable by the
    /// module's `log.get` although the transaction does not hold them: a
    /// dry run's folds.
    pub fn with_texts(&mut self, texts: Arc<Current>) {
        self.current = Some(texts);
    }

    /// Folds a run of activities in order; later folds of the session see
    /// the writes of earlier successful ones. Answers what each fold did.
    /// `Err` is a storage failure: the transaction must not be committed.
    ///
    /// A 0.2.0 projection folds the run with `fold-batch`, in slices of at
    /// most [`BATCH`], each under the budget of one call; a slice that
    /// faults (a trap, its budget spent) is halved and folded again, down
    /// to single `fold` calls, so the outcome is each activity's own
    /// `fold` under its own budget — as a 0.1.0 projection folds, one call
    /// per activity.
    ///
    /// Activities of a type the module does not fold (its definition's
    /// `folds`) are not passed to it: they count as folded.
    pub fn fold(&mut self, run: &Activities<'_>) -> Result<Vec<Folded>, StoreError> {
        let mut out = Vec::with_capacity(run.len());
        let module = self.module;
        let wanted = module.passed(run);
        if !wanted.iter().any(|w| *w) {
            out.extend((0..run.len()).map(|_| Folded::Applied));
            return Ok(out);
        }
        match module.world {
            // Passed the whole run, the records are made once for every
            // projection of the version; else only those it is passed.
            ProjectionWorld::V0_1(_) if wanted.iter().all(|w| *w) => {
                for activity in run.v0_1() {
                    out.push(self.fold_one_v0_1(activity)?);
                }
            }
            ProjectionWorld::V0_1(_) => {
                for (at, wanted) in wanted.iter().enumerate() {
                    out.push(match wanted {
                        true => self.fold_one_v0_1(&run.v0_1_at(at))?,
                        false => Folded::Applied,
                    });
                }
            }
            ProjectionWorld::V0_2(_) | ProjectionWorld::V0_3(_) => {
                // Each stretch of wanted activities in `fold-batch` (0.2.0)
                // or packed `fold` (0.3.0) calls.
                let packed = matches!(module.world, ProjectionWorld::V0_3(_));
                let mut at = 0;
                while at < run.len() {
                    let end = (at..run.len())
                        .find(|i| wanted[*i] != wanted[at])
                        .unwrap_or(run.len());
                    if wanted[at] && packed {
                        for start in (at..end).step_by(BATCH) {
                            self.fold_packed(run, start..(start + BATCH).min(end), &mut out)?;
                        }
                    } else if wanted[at] {
                        for slice in run.v0_2_of(at..end).chunks(BATCH) {
                            self.fold_slice(slice, &mut out)?;
                        }
                    } else {
                        out.extend((at..end).map(|_| Folded::Applied));
                    }
                    at = end;
                }
            }
        }
        Ok(out)
    }

    /// Hands the session's source (and the texts of its activities) to a
    /// store for a call, clearing the call's write buffer.
    fn lend(&mut self, store: &mut Store<HostState>) -> Result<(), StoreError> {
        let source = self.source.take().ok_or_else(lost_transaction)?;
        let data = store.data_mut();
        data.source = Source::Write(source);
        data.current = self.current.clone();
        data.kv.projection.clear();
        data.kv.projection.push_str(&self.namespace);
        data.kv.writable = true;
        data.kv.buffer.clear();
        data.kv.buffered_bytes = 0;
        Ok(())
    }

    /// Takes the source back after a call, keeping the call's writes if
    /// `keep`.
    fn reclaim(&mut self, store: &mut Store<HostState>, keep: bool) -> Result<(), StoreError> {
        let data = store.data_mut();
        let Source::Write(mut source) = std::mem::take(&mut data.source) else {
            return Err(lost_transaction());
        };
        data.current = None;
        let mut writes = std::mem::take(&mut data.kv.buffer);
        if keep {
            source.keep(&mut writes);
        }
        self.source = Some(source);
        Ok(())
    }

    fn fold_one_v0_1(&mut self, activity: &v0_1::types::Activity) -> Result<Folded, StoreError> {
        let module = self.module;
        let ProjectionWorld::V0_1(instances) = &module.world else {
            return Err(StoreError::Internal(
                "a 0.1.0 fold of a projection of another version",
            ));
        };
        let kept = match &mut self.warm {
            Held::V0_1(kept) => kept.take(),
            Held::V0_2(_) | Held::V0_3(_) => None,
        };
        let called = self.run_on(
            instances,
            kept,
            Held::V0_1,
            "fold",
            |bindings, store| bindings.call_fold(store, activity),
            Result::is_ok,
        )?;
        Ok(match called {
            Called::Answered(Ok(())) => Folded::Applied,
            Called::Answered(Err(message)) => Folded::Refused(message),
            Called::Fault(e) => Folded::Fault(e),
        })
    }

    /// Runs `call` on the session's 0.2.0 instance ([`FoldSession::run_on`]).
    fn call_v0_2<T>(
        &mut self,
        what: &str,
        call: impl FnOnce(&v0_2::projection::Projection, &mut Store<HostState>) -> wasmtime::Result<T>,
        keep: impl FnOnce(&T) -> bool,
    ) -> Result<Called<T>, StoreError> {
        let module = self.module;
        let ProjectionWorld::V0_2(instances) = &module.world else {
            return Err(StoreError::Internal(
                "a 0.2.0 fold of a projection of another version",
            ));
        };
        let kept = match &mut self.warm {
            Held::V0_2(kept) => kept.take(),
            Held::V0_1(_) | Held::V0_3(_) => None,
        };
        self.run_on(instances, kept, Held::V0_2, what, call, keep)
    }

    /// Runs `call` on the session's 0.3.0 instance ([`FoldSession::run_on`]).
    fn call_v0_3<T>(
        &mut self,
        call: impl FnOnce(&v0_3::projection::Projection, &mut Store<HostState>) -> wasmtime::Result<T>,
        keep: impl FnOnce(&T) -> bool,
    ) -> Result<Called<T>, StoreError> {
        let module = self.module;
        let ProjectionWorld::V0_3(instances) = &module.world else {
            return Err(StoreError::Internal(
                "a 0.3.0 fold of a projection of another version",
            ));
        };
        let kept = match &mut self.warm {
            Held::V0_3(kept) => kept.take(),
            Held::V0_1(_) | Held::V0_2(_) => None,
        };
        self.run_on(instances, kept, Held::V0_3, "fold", call, keep)
    }

    /// Runs `call` on an instance of `instances` — `kept`, the one the
    /// session holds, or a new one — with the source lent, keeping the
    /// call's writes when `keep` says so of its answer. An instance that
    /// answered is held for the session's next call (as `hold` makes it);
    /// a trapped one is never reused.
    fn run_on<B: Bindings, T>(
        &mut self,
        instances: &Instances<B>,
        kept: Option<Warm<B>>,
        hold: fn(Option<Warm<B>>) -> Held,
        what: &str,
        call: impl FnOnce(&B, &mut Store<HostState>) -> wasmtime::Result<T>,
        keep: impl FnOnce(&T) -> bool,
    ) -> Result<Called<T>, StoreError> {
        let mut warm = match instances.rearm(kept) {
            Ok(warm) => warm,
            Err(e) => return Ok(Called::Fault(e)),
        };
        self.lend(&mut warm.store)?;
        let result = call(&warm.bindings, &mut warm.store);
        instances
            .runtime
            .spent(&instances.name, what, instances.budget, &warm.store);
        let keeps = result.as_ref().is_ok_and(keep);
        self.reclaim(&mut warm.store, keeps)?;
        match result {
            Ok(answer) => {
                if instances.idle.is_some() {
                    self.warm = hold(Some(warm));
                }
                Ok(Called::Answered(answer))
            }
            Err(e) => Ok(Called::Fault(instances.fault(&e))),
        }
    }

    /// Folds `slice` with one `fold-batch` call, or, if that faults or
    /// answers for another number of activities, each half of it again;
    /// a single activity is folded with `fold`.
    fn fold_slice(
        &mut self,
        slice: &[v0_2::types::Activity],
        out: &mut Vec<Folded>,
    ) -> Result<(), StoreError> {
        if let [activity] = slice {
            let called = self.call_v0_2(
                "fold",
                |bindings, store| bindings.call_fold(store, activity),
                Result::is_ok,
            )?;
            out.push(match called {
                Called::Answered(Ok(())) => Folded::Applied,
                Called::Answered(Err(message)) => Folded::Refused(message),
                Called::Fault(e) => Folded::Fault(e),
            });
            return Ok(());
        }
        let asked = slice.len();
        let called = self.call_v0_2(
            "fold-batch",
            |bindings, store| bindings.call_fold_batch(store, slice),
            |results: &Vec<Result<(), String>>| results.len() == asked,
        )?;
        match called {
            Called::Answered(results) if results.len() == asked => {
                out.extend(results.into_iter().map(|r| match r {
                    Ok(()) => Folded::Applied,
                    Err(message) => Folded::Refused(message),
                }));
                Ok(())
            }
            Called::Answered(results) => {
                tracing::debug!(projection = %self.module.name, asked, answered = results.len(), "a fold-batch answered for another number of activities; folding its halves");
                self.halve(slice, out)
            }
            Called::Fault(e) => {
                tracing::debug!(projection = %self.module.name, error = %e, activities = asked, "a fold-batch faulted; folding its halves");
                self.halve(slice, out)
            }
        }
    }

    fn halve(
        &mut self,
        slice: &[v0_2::types::Activity],
        out: &mut Vec<Folded>,
    ) -> Result<(), StoreError> {
        let (first, second) = slice.split_at(slice.len() / 2);
        self.fold_slice(first, out)?;
        self.fold_slice(second, out)
    }

    /// Folds the activities of `run` at `range` with one 0.3.0 `fold`
    /// call of their packed run, or, if that faults or answers for another
    /// number of activities, each half of it again, down to runs of one;
    /// a run of one that faults is that activity's fault.
    fn fold_packed(
        &mut self,
        run: &Activities<'_>,
        range: std::ops::Range<usize>,
        out: &mut Vec<Folded>,
    ) -> Result<(), StoreError> {
        let asked = range.len();
        let packed = run.v0_3_of(range.clone());
        let called = self.call_v0_3(
            |bindings, store| packed.fold(bindings, store),
            |results: &Vec<Result<(), String>>| results.len() == asked,
        )?;
        let failed = match called {
            Called::Answered(results) if results.len() == asked => {
                out.extend(results.into_iter().map(|r| match r {
                    Ok(()) => Folded::Applied,
                    Err(message) => Folded::Refused(message),
                }));
                return Ok(());
            }
            Called::Answered(results) => RuntimeError::Invalid(format!(
                "its fold answered for {} activities of a run of {asked}",
                results.len()
            )),
            Called::Fault(e) => e,
        };
        if asked <= 1 {
            out.extend((asked == 1).then_some(Folded::Fault(failed)));
            return Ok(());
        }
        tracing::debug!(projection = %self.module.name, error = %failed, activities = asked, "a packed fold failed; folding its halves");
        let middle = range.start + asked / 2;
        self.fold_packed(run, range.start..middle, out)?;
        self.fold_packed(run, middle..range.end, out)
    }

    /// Ends the session: the successful folds' writes go to the store, the
    /// instance back to the pool and the transaction to the caller. `Err`
    /// is a storage failure: the transaction is dropped (aborted).
    pub fn finish(mut self) -> Result<WriteTxn, StoreError> {
        match (&mut self.warm, &self.module.world) {
            (Held::V0_1(kept), ProjectionWorld::V0_1(instances)) => {
                if let Some(warm) = kept.take() {
                    instances.give_back(warm);
                }
            }
            (Held::V0_2(kept), ProjectionWorld::V0_2(instances)) => {
                if let Some(warm) = kept.take() {
                    instances.give_back(warm);
                }
            }
            (Held::V0_3(kept), ProjectionWorld::V0_3(instances)) => {
                if let Some(warm) = kept.take() {
                    instances.give_back(warm);
                }
            }
            _ => {}
        }
        match self.source.take() {
            Some(state) => state.finish(&self.namespace),
            None => Err(lost_transaction()),
        }
    }
}
