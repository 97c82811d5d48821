//! The WASM runtime (docs/architecture.md §5): compiles components, checks they import
//! nothing outside the contract, caches compiled code on disk, and runs
//! verbs and projections under fuel, a wall-clock deadline and a memory cap.
//!
//! It knows how to call a module, not which modules exist or when to call
//! them: that is the kernel's registry.

mod activity;
mod bindings;
mod cache;
mod compile;
pub mod host;
mod limiter;
mod module;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

use bindings::{v0_1, v0_2, v0_3};
use host::{HostState, Kv, Source};
use limiter::Meter;
use weft_store::ModuleKind;

pub use activity::{Activities, Parsed};
pub use host::Visible;
pub use module::{
    FoldSession, Folded, Intent, ProjectionModule, QueryError, Refusal, Reuse, VerbModule,
};

/// How much a module may use per call. Configured in `weft.toml` under
/// `[runtime]`. The defaults end a hostile call (a loop, a memory hog, a
/// host-call storm) within about 40 ms of one core here, holding at most
/// `memory_bytes` of linear memory plus its tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Fuel (roughly, WebAssembly instructions) per call. Running out is a
    /// deterministic rejection. The host's work in imports is charged
    /// against a second budget of the same size.
    pub fuel_per_call: u64,
    /// Wall-clock backstop per call, in milliseconds; hitting it is a
    /// transient failure.
    pub deadline_ms: u64,
    /// Linear memory per call, in bytes, across all of a component's
    /// memories.
    pub memory_bytes: usize,
    /// Elements of any one table.
    pub table_elements: usize,
    /// The WebAssembly stack of a call, in bytes; deeper recursion traps.
    pub max_stack_bytes: usize,
    /// Largest artifact accepted, in bytes.
    pub max_artifact_bytes: usize,
    /// Largest function body in an artifact, in bytes (a compile bomb is
    /// one enormous function).
    pub max_function_bytes: usize,
    /// Most functions in an artifact, across its modules.
    pub max_functions: usize,
    /// How long compiling one artifact may take, in milliseconds.
    pub compile_timeout_ms: u64,
    /// Most bytes one fold may write.
    pub max_write_bytes: usize,
    /// Activities folded per step when a projection is built (defined, or
    /// rebuilt): the writer takes one step between its batches, so
    /// publishing goes on while a projection catches up with a long log.
    pub build_step: u64,
    /// Threads that run `validate` and `query` calls (0: one per core).
    pub workers: usize,
    /// Calls that may wait for a worker; past that the node answers 503.
    pub worker_queue: usize,
    /// Most `react` calls one activity causes (one per local recipient).
    pub max_reactions: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel_per_call: 40_000_000,
            deadline_ms: 1_000,
            memory_bytes: 64 << 20,
            table_elements: 100_000,
            max_stack_bytes: 512 << 10,
            max_artifact_bytes: 64 << 20,
            max_function_bytes: 1 << 20,
            max_functions: 200_000,
            compile_timeout_ms: 120_000,
            max_write_bytes: 8 << 20,
            build_step: 2_000,
            workers: 0,
            worker_queue: 256,
            max_reactions: 64,
        }
    }
}

/// What one module may use per call: the budget its definition declares
/// (`fuel`, `memory`), capped by the node's [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub fuel: u64,
    pub memory: usize,
}

impl Limits {
    /// The budget of a module that declares `fuel` and `memory` (either may
    /// be absent: the node's limit applies).
    pub fn budget(&self, fuel: Option<u64>, memory: Option<u64>) -> Budget {
        Budget {
            fuel: fuel.map_or(self.fuel_per_call, |f| f.min(self.fuel_per_call)),
            memory: memory.map_or(self.memory_bytes, |m| {
                usize::try_from(m).map_or(self.memory_bytes, |m| m.min(self.memory_bytes))
            }),
        }
    }
}

/// Why a module cannot be used, or a call did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("the artifact is {size} bytes, over the node's limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("not a usable WebAssembly component: {0}")]
    Invalid(String),
    #[error(
        "the component imports `{0}`, which is outside the weft:module contract (modules get no WASI, clock, randomness or I/O)"
    )]
    ForbiddenImport(String),
    #[error("the component does not export `{0}`, which a {1} must")]
    MissingExport(String, &'static str),
    #[error("module `{module}` ran out of fuel ({fuel} units); the activity is rejected")]
    OutOfFuel { module: String, fuel: u64 },
    #[error("module `{module}` hit the wall-clock deadline of {ms} ms (transient; retry)")]
    Deadline { module: String, ms: u64 },
    #[error("module `{module}` trapped: {message}")]
    Trap { module: String, message: String },
    #[error("compiled-module cache: {0}")]
    Cache(String),
    #[error("module `{module}` cannot run now: every instance slot is in use (transient; retry)")]
    Busy { module: String },
}

impl RuntimeError {
    /// Whether retrying the same call could succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Deadline { .. } | Self::Cache(_) | Self::Busy { .. }
        )
    }
}

/// A published version of the contract (`sdk/wit/`) a module is built
/// against. A node runs modules of every version side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Contract {
    /// `weft:module@0.1.0`.
    V0_1,
    /// `weft:module@0.2.0`.
    V0_2,
    /// `weft:module@0.3.0` (projections only).
    V0_3,
}

impl Contract {
    /// Newest first: the order in which a component is tried.
    pub const ALL: [Contract; 3] = [Contract::V0_3, Contract::V0_2, Contract::V0_1];

    /// The newest contract with a world for modules of `kind`: what the
    /// built-in modules and the Rust SDK target.
    pub fn newest(kind: ModuleKind) -> Self {
        match kind {
            ModuleKind::Verb => Self::V0_2,
            ModuleKind::Projection => Self::V0_3,
        }
    }

    /// Whether the contract has a world for modules of `kind` (0.3.0 has
    /// none for verbs).
    pub fn has(self, kind: ModuleKind) -> bool {
        !matches!((self, kind), (Self::V0_3, ModuleKind::Verb))
    }

    /// The WIT package: `weft:module@0.2.0`.
    pub fn package(self) -> &'static str {
        match self {
            Self::V0_1 => v0_1::PACKAGE,
            Self::V0_2 => v0_2::PACKAGE,
            Self::V0_3 => v0_3::PACKAGE,
        }
    }

    /// The contract's WIT text, as the node was built with it.
    pub fn wit(self) -> &'static str {
        match self {
            Self::V0_1 => v0_1::WIT,
            Self::V0_2 => v0_2::WIT,
            Self::V0_3 => v0_3::WIT,
        }
    }

    /// The contract whose package is `package`.
    pub fn from_package(package: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.package() == package)
    }

    /// The exports a module of `kind` must have under this contract.
    fn exports(self, kind: ModuleKind) -> &'static [&'static str] {
        match (self, kind) {
            (_, ModuleKind::Verb) => &["validate", "react"],
            (Self::V0_1, ModuleKind::Projection) => &["fold", "query"],
            (Self::V0_2, ModuleKind::Projection) => &["fold", "fold-batch", "query"],
            (Self::V0_3, ModuleKind::Projection) => &["fold", "query"],
        }
    }
}

impl std::fmt::Display for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.package())
    }
}

/// A linker per world of every contract version (0.3.0 has no verb world).
struct Linkers {
    verb: [Linker<HostState>; 2],
    projection: [Linker<HostState>; 3],
}

impl Linkers {
    fn new(engine: &Engine) -> wasmtime::Result<Self> {
        let linker = || Linker::<HostState>::new(engine);
        let (mut verb1, mut verb2) = (linker(), linker());
        let (mut projection1, mut projection2, mut projection3) = (linker(), linker(), linker());
        v0_1::verb::Verb::add_to_linker::<_, HasSelf<_>>(&mut verb1, |s| s)?;
        v0_2::verb::Verb::add_to_linker::<_, HasSelf<_>>(&mut verb2, |s| s)?;
        v0_1::projection::Projection::add_to_linker::<_, HasSelf<_>>(&mut projection1, |s| s)?;
        v0_2::projection::Projection::add_to_linker::<_, HasSelf<_>>(&mut projection2, |s| s)?;
        v0_3::projection::Projection::add_to_linker::<_, HasSelf<_>>(&mut projection3, |s| s)?;
        // Every version's `types` (no functions) in every linker, its own
        // added with its world: [`Runtime::contract`] lets a module import
        // another version's.
        v0_2::types::add_to_linker::<_, HasSelf<_>>(&mut verb1, |s| s)?;
        v0_3::types::add_to_linker::<_, HasSelf<_>>(&mut verb1, |s| s)?;
        v0_1::types::add_to_linker::<_, HasSelf<_>>(&mut verb2, |s| s)?;
        v0_3::types::add_to_linker::<_, HasSelf<_>>(&mut verb2, |s| s)?;
        v0_2::types::add_to_linker::<_, HasSelf<_>>(&mut projection1, |s| s)?;
        v0_3::types::add_to_linker::<_, HasSelf<_>>(&mut projection1, |s| s)?;
        v0_1::types::add_to_linker::<_, HasSelf<_>>(&mut projection2, |s| s)?;
        v0_3::types::add_to_linker::<_, HasSelf<_>>(&mut projection2, |s| s)?;
        v0_1::types::add_to_linker::<_, HasSelf<_>>(&mut projection3, |s| s)?;
        v0_2::types::add_to_linker::<_, HasSelf<_>>(&mut projection3, |s| s)?;
        Ok(Self {
            verb: [verb1, verb2],
            projection: [projection1, projection2, projection3],
        })
    }

    /// The linker of `contract`'s world for `kind`; `None` when the
    /// contract has no such world.
    fn get(&self, kind: ModuleKind, contract: Contract) -> Option<&Linker<HostState>> {
        let at = match contract {
            Contract::V0_1 => 0,
            Contract::V0_2 => 1,
            Contract::V0_3 => 2,
        };
        match kind {
            ModuleKind::Verb => self.verb.get(at),
            ModuleKind::Projection => self.projection.get(at),
        }
    }
}

/// An engine, its linkers and its compiled-code cache.
struct Side {
    engine: Engine,
    linkers: Linkers,
    cache: cache::Cache,
}

/// The engines, their linkers and the epoch ticker.
///
/// Two engines compile modules: `metered` counts fuel in every call (every
/// module defined on the node or received from a peer, so that running out
/// is a deterministic refusal), `builtin` does not (the node's own built-in
/// modules, [`Reuse::Warm`]: our source, whose work per call is bounded by
/// the size of what they are passed). Counting fuel made a fold of the
/// built-in projections 6–20% slower (`weft bench --fold`). Both have the epoch deadline, and
/// every import charges the host fuel of the call either way.
pub struct Runtime {
    metered: Side,
    builtin: Side,
    compiler: compile::Compiler,
    limits: Limits,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

pub use bindings::{PACKAGE, PACKAGES};

/// Virtual address space reserved for each linear memory, so that bounds
/// checks are done by guard pages rather than by code. Reserved, not
/// resident: what a module may really use is `Limits::memory_bytes`.
const MEMORY_RESERVATION: u64 = 4 << 30;
/// Guard pages after each memory.
const MEMORY_GUARD: u64 = 32 << 20;

/// How often the epoch advances; deadlines are counted in these.
const TICK: Duration = Duration::from_millis(10);

impl Runtime {
    /// A runtime caching compiled code in `cache_dir`.
    pub fn new(limits: Limits, cache_dir: PathBuf) -> Result<Self, RuntimeError> {
        let side = |fuel: bool| -> Result<Side, RuntimeError> {
            let engine = Engine::new(&config(&limits, fuel))
                .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
            let linkers =
                Linkers::new(&engine).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
            // The cache names files by the engine's settings: the two
            // engines' compilations of one artifact are two files.
            let cache = cache::Cache::new(cache_dir.clone(), &engine);
            Ok(Side {
                engine,
                linkers,
                cache,
            })
        };
        let (metered, builtin) = (side(true)?, side(false)?);
        let stop = Arc::new(AtomicBool::new(false));
        let engines = [metered.engine.clone(), builtin.engine.clone()];
        let ticker_stop = stop.clone();
        std::thread::Builder::new()
            .name("weft-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    for engine in &engines {
                        engine.increment_epoch();
                    }
                }
            })
            .map_err(|e| RuntimeError::Cache(format!("cannot start the epoch thread: {e}")))?;
        let compiler =
            compile::Compiler::new(Duration::from_millis(limits.compile_timeout_ms.max(1)));
        Ok(Self {
            metered,
            builtin,
            compiler,
            limits,
            stop,
        })
    }

    /// The engine modules reused as `reuse` says compile on.
    fn side(&self, reuse: Reuse) -> &Side {
        match reuse {
            Reuse::Fresh => &self.metered,
            Reuse::Warm => &self.builtin,
        }
    }

    /// The side of the engine `engine` is.
    fn side_of(&self, engine: &Engine) -> &Side {
        if Engine::same(engine, &self.builtin.engine) {
            &self.builtin
        } else {
            &self.metered
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Compiles (or loads from the cache) the artifact `id` and checks it
    /// against the contract for `kind`, for fresh, fuel-metered instances
    /// ([`Runtime::compile_for`] with [`Reuse::Fresh`]).
    pub fn compile(
        &self,
        kind: ModuleKind,
        id: &str,
        bytes: &[u8],
    ) -> Result<Component, RuntimeError> {
        self.compile_for(kind, id, bytes, Reuse::Fresh)
    }

    /// [`Runtime::compile`] for a module whose instances are reused as
    /// `reuse` says: [`Reuse::Warm`] (the node's built-in modules only)
    /// compiles on the engine that counts no fuel.
    pub fn compile_for(
        &self,
        kind: ModuleKind,
        id: &str,
        bytes: &[u8],
        reuse: Reuse,
    ) -> Result<Component, RuntimeError> {
        let side = self.side(reuse);
        if bytes.len() > self.limits.max_artifact_bytes {
            return Err(RuntimeError::TooLarge {
                size: bytes.len(),
                limit: self.limits.max_artifact_bytes,
            });
        }
        let component = match side.cache.load(&side.engine, id) {
            Some(component) => component,
            None => {
                let component = self.compile_new(side, bytes)?;
                self.check_contract(kind, &component)?;
                side.cache.store(id, &component);
                component
            }
        };
        self.check_contract(kind, &component)?;
        Ok(component)
    }

    /// Checks that `bytes` is a WebAssembly component the engine for
    /// `reuse` ([`Runtime::compile_for`]) can compile (what `POST
    /// /artifacts` accepts), caching the result for when it is defined,
    /// which checks the contract for a verb or projection.
    pub fn check_component(
        &self,
        id: &str,
        bytes: &[u8],
        reuse: Reuse,
    ) -> Result<(), RuntimeError> {
        if bytes.len() > self.limits.max_artifact_bytes {
            return Err(RuntimeError::TooLarge {
                size: bytes.len(),
                limit: self.limits.max_artifact_bytes,
            });
        }
        let side = self.side(reuse);
        if side.cache.load(&side.engine, id).is_some() {
            return Ok(());
        }
        let component = self.compile_new(side, bytes)?;
        side.cache.store(id, &component);
        Ok(())
    }

    /// Compiles bytes not in the cache, within the compile budget.
    fn compile_new(&self, side: &Side, bytes: &[u8]) -> Result<Component, RuntimeError> {
        if bytes.starts_with(b"\0asm\x01\0\0\0") {
            return Err(RuntimeError::Invalid(
                "this is a core WebAssembly module; make it a component (e.g. `wasm-tools component new`)".into(),
            ));
        }
        compile::inspect(
            bytes,
            compile::Shape {
                max_function_bytes: self.limits.max_function_bytes,
                max_functions: self.limits.max_functions,
            },
        )?;
        self.compiler.compile(&side.engine, bytes)
    }

    /// The contract version `component` is a module of `kind` of: what it
    /// imports names the version (only the contract's interfaces, of one
    /// version); one that imports nothing is tried against each version's
    /// exports, newest first.
    pub fn contract(
        &self,
        kind: ModuleKind,
        component: &Component,
    ) -> Result<Contract, RuntimeError> {
        let ty = component.component_type();
        let allowed: &[&str] = match kind {
            ModuleKind::Verb => &["types", "log"],
            ModuleKind::Projection => &["types", "log", "kv"],
        };
        let mut named: Option<Contract> = None;
        let engine = component.engine();
        for (name, _) in ty.imports(engine) {
            let version = Contract::ALL.into_iter().find(|c| {
                allowed
                    .iter()
                    .any(|i| bindings::interface(c.package(), i) == name)
            });
            let types_only = Contract::ALL
                .into_iter()
                .any(|c| bindings::interface(c.package(), "types") == name);
            match (version, named) {
                (None, _) => return Err(RuntimeError::ForbiddenImport(name.to_owned())),
                // An interface of types alone makes no call, so it says
                // nothing of the module's version: a Rust crate building
                // verbs (0.2.0) and projections (0.3.0) together leaves the
                // other world's `types` among each component's imports.
                // Every linker has every version's (empty) `types`.
                _ if types_only => {}
                (Some(v), Some(n)) if v != n => {
                    return Err(RuntimeError::Invalid(format!(
                        "it imports interfaces of two contract versions ({n} and {v}); build it against one"
                    )));
                }
                (Some(v), _) => named = Some(v),
            }
        }
        let candidates: Vec<Contract> = match named {
            Some(c) if !c.has(kind) => {
                return Err(RuntimeError::Invalid(format!(
                    "it imports interfaces of {c}, which has no {} world: build it against {}",
                    kind.as_str(),
                    Contract::newest(kind)
                )));
            }
            Some(c) => vec![c],
            None => Contract::ALL.into_iter().filter(|c| c.has(kind)).collect(),
        };
        let mut first_error = None;
        for contract in candidates {
            let missing = contract
                .exports(kind)
                .iter()
                .find(|e| ty.get_export(engine, e).is_none());
            let checked = match missing {
                Some(export) => Err(RuntimeError::MissingExport(
                    (*export).to_owned(),
                    kind.as_str(),
                )),
                None => self.typecheck(kind, contract, component),
            };
            match checked {
                Ok(()) => return Ok(contract),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error
            .unwrap_or_else(|| RuntimeError::Invalid("it fits no contract version".into())))
    }

    /// Whether `component`'s exports have the types `contract`'s world of
    /// `kind` says.
    fn typecheck(
        &self,
        kind: ModuleKind,
        contract: Contract,
        component: &Component,
    ) -> Result<(), RuntimeError> {
        let pre = self
            .side_of(component.engine())
            .linkers
            .get(kind, contract)
            .ok_or_else(|| {
                RuntimeError::Invalid(format!("{contract} has no {} world", kind.as_str()))
            })?
            .instantiate_pre(component)
            .map_err(|e| RuntimeError::Invalid(format!("{e:#}")))?;
        let typed = match (kind, contract) {
            (ModuleKind::Verb, Contract::V0_1) => v0_1::verb::VerbPre::new(pre).map(drop),
            (ModuleKind::Verb, Contract::V0_2) => v0_2::verb::VerbPre::new(pre).map(drop),
            (ModuleKind::Projection, Contract::V0_1) => {
                v0_1::projection::ProjectionPre::new(pre).map(drop)
            }
            (ModuleKind::Projection, Contract::V0_2) => {
                v0_2::projection::ProjectionPre::new(pre).map(drop)
            }
            (ModuleKind::Projection, Contract::V0_3) => {
                v0_3::projection::ProjectionPre::new(pre).map(drop)
            }
            (ModuleKind::Verb, Contract::V0_3) => {
                return Err(RuntimeError::Invalid(format!(
                    "{contract} has no verb world"
                )));
            }
        };
        typed.map_err(|e| {
            RuntimeError::Invalid(format!(
                "its exports do not have the types {contract} gives them: {e:#}"
            ))
        })
    }

    fn check_contract(&self, kind: ModuleKind, component: &Component) -> Result<(), RuntimeError> {
        let contract = self.contract(kind, component)?;
        // Instantiate it once, within the node's limits, so a component that
        // needs more instances or memory than a store allows is refused when
        // it is defined rather than failing on every call.
        let budget = self.limits.budget(None, None);
        let mut store = self.new_store(component.engine(), "", budget);
        self.arm(&mut store, budget)?;
        self.side_of(component.engine())
            .linkers
            .get(kind, contract)
            .ok_or_else(|| {
                RuntimeError::Invalid(format!("{contract} has no {} world", kind.as_str()))
            })?
            .instantiate(&mut store, component)
            .map_err(|e| {
                RuntimeError::Invalid(format!(
                    "it cannot be instantiated within the node's limits: {e:#}"
                ))
            })?;
        Ok(())
    }

    fn new_store(&self, engine: &Engine, projection: &str, budget: Budget) -> Store<HostState> {
        let state = HostState {
            limits: Meter::new(budget.memory, self.limits.table_elements),
            source: Source::None,
            kv: Kv {
                projection: projection.to_owned(),
                ..Kv::default()
            },
            max_write_bytes: self.limits.max_write_bytes,
            host_fuel: budget.fuel,
            current: None,
            visible: None,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limits);
        store
    }

    fn arm(&self, store: &mut Store<HostState>, budget: Budget) -> Result<(), RuntimeError> {
        if !Engine::same(store.engine(), &self.builtin.engine) {
            store
                .set_fuel(budget.fuel)
                .map_err(|e| RuntimeError::Cache(e.to_string()))?;
        }
        store.data_mut().host_fuel = budget.fuel;
        store.set_epoch_deadline(
            self.limits
                .deadline_ms
                .div_ceil(TICK.as_millis() as u64)
                .max(1),
        );
        Ok(())
    }

    /// Logs (at trace level) what a call used: the figures a module
    /// author compares with the node's limits.
    fn spent(&self, module: &str, call: &str, budget: Budget, store: &Store<HostState>) {
        if tracing::enabled!(tracing::Level::TRACE) {
            let state = store.data();
            tracing::trace!(
                module,
                call,
                fuel = store.get_fuel().ok().map(|left| budget.fuel - left),
                host_fuel = budget.fuel - state.host_fuel,
                memory = state.limits.memory_used(),
                "module call"
            );
        }
    }

    fn fault(&self, module: &str, budget: Budget, error: &wasmtime::Error) -> RuntimeError {
        match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::OutOfFuel) => RuntimeError::OutOfFuel {
                module: module.to_owned(),
                fuel: budget.fuel,
            },
            Some(wasmtime::Trap::Interrupt) => RuntimeError::Deadline {
                module: module.to_owned(),
                ms: self.limits.deadline_ms,
            },
            _ if error.is::<wasmtime::PoolConcurrencyLimitError>() => RuntimeError::Busy {
                module: module.to_owned(),
            },
            _ => {
                // The cause, not the wasm backtrace wrapped around it (which
                // goes to the log for the module's author), and what the
                // backtrace shows the module was trying to do, when that
                // is something modules cannot.
                let trace = format!("{error:?}");
                tracing::debug!(module, error = %trace, "module call failed");
                let mut message = error.root_cause().to_string();
                if let Some(why) = explain_trap(&trace) {
                    message = format!("{message}: {why}");
                }
                RuntimeError::Trap {
                    module: module.to_owned(),
                    message,
                }
            }
        }
    }
}

/// What a trap's backtrace (`trace`, the error's debug text) shows the
/// module was doing, when it is something modules cannot do: their WASI
/// imports are stubs that trap (no output, files, clock or randomness).
pub fn explain_trap(trace: &str) -> Option<&'static str> {
    let has = |needles: &[&str]| needles.iter().any(|n| trace.contains(n));
    if has(&["builtin_print"]) {
        Some(
            "the module called print(), and modules have no standard output; remove the print, or put the text in the error it returns",
        )
    } else if has(&["stdout", "stderr", "fd_write"]) {
        Some(
            "the module wrote to standard output or error, which modules do not have; remove the write, or put the text in the error it returns",
        )
    } else if has(&["path_open", "fopen", "open_at"]) {
        Some("the module opened a file, and modules have no files")
    } else if has(&["clock_time_get", "wall_clock", "monotonic_clock"]) {
        Some(
            "the module read a clock, and modules have none (the same log must fold to the same state anywhere)",
        )
    } else if has(&["random_get", "get_random", "getentropy"]) {
        Some(
            "the module asked for randomness, and modules have none (the same log must fold to the same state anywhere)",
        )
    } else {
        None
    }
}

/// Slots for instances alive at once: the writer's folds, the worker
/// pool's calls and definition checks, each a component of up to
/// [`limiter::MAX_INSTANCES`] core instances.
const POOL_COMPONENTS: u32 = 64;
/// Core instances, memories and tables across the pool: a Rust component
/// has 3 core instances, a componentize-py one 38.
/// Each memory slot reserves [`MEMORY_RESERVATION`] of address space (not
/// memory): 128 of them take 512 GiB of the 128 TiB a process has.
const POOL_CORE_INSTANCES: u32 = 1024;
const POOL_MEMORIES: u32 = 128;
const POOL_TABLES: u32 = 1024;

/// The pooling allocator's limits, within which [`limiter::Meter`] then
/// applies the node's.
fn pool(limits: &Limits) -> wasmtime::PoolingAllocationConfig {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_component_instances(POOL_COMPONENTS)
        .total_core_instances(POOL_CORE_INSTANCES)
        .total_memories(POOL_MEMORIES)
        .total_tables(POOL_TABLES)
        .max_core_instances_per_component(limiter::MAX_INSTANCES as u32)
        .max_memories_per_component(limiter::MAX_MEMORIES as u32)
        .max_tables_per_component(limiter::MAX_TABLES as u32)
        .max_memory_size(limits.memory_bytes)
        .table_elements(limits.table_elements)
        // A call dirties a few pages of a module's memory. Where the kernel
        // can say which (PAGEMAP_SCAN, Linux 6.7+), only those are put back
        // on reuse and the rest stay mapped: no unmapping, no TLB shootdown,
        // no page faults on the next call. Elsewhere the low memory is reset
        // in place and the rest given back.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(8 << 20)
        .table_keep_resident(1 << 16);
    pool
}

/// An engine's settings; `fuel`: whether calls count fuel.
fn config(limits: &Limits, fuel: bool) -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.consume_fuel(fuel);
    config.epoch_interruption(true);
    config.max_wasm_stack(limits.max_stack_bytes);
    config.memory_reservation(MEMORY_RESERVATION);
    config.memory_guard_size(MEMORY_GUARD);
    config.memory_reservation_for_growth(0);
    // Every call instantiates afresh, so instances come from a pool of
    // slots that are reset, not mapped and unmapped: a new instance of
    // a Rust module costs microseconds instead of a hundred or more.
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool(limits)));
    // `WEFT_PERFMAP=1` writes /tmp/perf-PID.map so `perf` names the
    // functions of modules (a module author's profiling aid).
    if std::env::var_os("WEFT_PERFMAP").is_some_and(|v| v == "1") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod trap_tests {
    use super::explain_trap;

    /// The backtrace of a componentize-py projection whose fold called
    /// print() (abridged from a real one) is explained; a plain trap is not.
    #[test]
    fn a_print_in_a_fold_is_named() {
        let trace = "error while executing at wasm backtrace:\n    2: 0xad6b15 - libc.so!stdout_get_stdout\n    4: 0xace56c - libc.so!write\n   14: 0xd866c9 - libpython3.14.so!builtin_print\n\nCaused by:\n    wasm trap: wasm `unreachable` instruction executed";
        assert!(explain_trap(trace).is_some_and(|w| w.contains("print()")));
        assert!(explain_trap("0: 0x1 - mod!clock_time_get").is_some_and(|w| w.contains("clock")));
        assert_eq!(
            explain_trap("0: 0x1 - mod!my_function\nCaused by: unreachable"),
            None
        );
    }
}

#[cfg(test)]
mod engine_tests {
    use super::*;

    /// A module compiled for warm reuse (a built-in) runs on the engine
    /// that counts no fuel; every other module's calls count fuel, armed
    /// with the call's budget.
    #[test]
    fn only_builtin_modules_run_without_fuel() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let runtime = Runtime::new(Limits::default(), dir.path().to_owned())?;
        let bytes = wat::parse_str("(component (core module (func)))")?;
        let budget = runtime.limits().budget(None, None);
        for (reuse, fuel) in [(Reuse::Fresh, Some(budget.fuel)), (Reuse::Warm, None)] {
            let component = runtime.compile_new(runtime.side(reuse), &bytes)?;
            assert!(std::ptr::eq(
                runtime.side_of(component.engine()),
                runtime.side(reuse)
            ));
            let mut store = runtime.new_store(component.engine(), "", budget);
            runtime.arm(&mut store, budget)?;
            assert_eq!(store.get_fuel().ok(), fuel, "{reuse:?}");
        }
        Ok(())
    }
}
