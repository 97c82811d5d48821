//! The WASM runtime (docs/architecture.md §5): compiles components, checks they import
//! nothing outside the contract, caches compiled code on disk, and runs
//! verbs and projections under fuel, a wall-clock deadline and a memory cap.
//!
//! It knows how to call a module, not which modules exist or when to call
//! them: that is the kernel's registry.

mod bindings;
mod cache;
mod compile;
pub mod host;
mod limiter;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

use bindings::{projection, types, verb};
use host::{HostState, Kv, Source, WriteState};
use limiter::Meter;
use weft_core::model::Signed;
use weft_store::{ModuleKind, RecentIds, Snapshot, StoreError, WriteTxn};

pub use bindings::types::{Intent, QueryError};

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

/// The engine, its linkers and the epoch ticker.
pub struct Runtime {
    engine: Engine,
    verb_linker: Linker<HostState>,
    projection_linker: Linker<HostState>,
    cache: cache::Cache,
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

pub use bindings::{PACKAGE, WIT};

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
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.consume_fuel(true);
        config.epoch_interruption(true);
        config.max_wasm_stack(limits.max_stack_bytes);
        config.memory_reservation(MEMORY_RESERVATION);
        config.memory_guard_size(MEMORY_GUARD);
        config.memory_reservation_for_growth(0);
        // Every call instantiates afresh, so instances come from a pool of
        // slots that are reset, not mapped and unmapped: a new instance of
        // a Rust module costs microseconds instead of a hundred or more.
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool(&limits)));
        // `WEFT_PERFMAP=1` writes /tmp/perf-PID.map so `perf` names the
        // functions of modules (a module author's profiling aid).
        if std::env::var_os("WEFT_PERFMAP").is_some_and(|v| v == "1") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        let mut verb_linker = Linker::new(&engine);
        verb::Verb::add_to_linker::<_, HasSelf<_>>(&mut verb_linker, |s| s)
            .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        let mut projection_linker = Linker::new(&engine);
        projection::Projection::add_to_linker::<_, HasSelf<_>>(&mut projection_linker, |s| s)
            .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (ticker_engine, ticker_stop) = (engine.clone(), stop.clone());
        std::thread::Builder::new()
            .name("weft-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| RuntimeError::Cache(format!("cannot start the epoch thread: {e}")))?;
        let cache = cache::Cache::new(cache_dir, &engine);
        let compiler =
            compile::Compiler::new(Duration::from_millis(limits.compile_timeout_ms.max(1)));
        Ok(Self {
            engine,
            verb_linker,
            projection_linker,
            cache,
            compiler,
            limits,
            stop,
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Compiles (or loads from the cache) the artifact `id` and checks it
    /// against the contract for `kind`.
    pub fn compile(
        &self,
        kind: ModuleKind,
        id: &str,
        bytes: &[u8],
    ) -> Result<Component, RuntimeError> {
        if bytes.len() > self.limits.max_artifact_bytes {
            return Err(RuntimeError::TooLarge {
                size: bytes.len(),
                limit: self.limits.max_artifact_bytes,
            });
        }
        let component = match self.cache.load(&self.engine, id) {
            Some(component) => component,
            None => {
                let component = self.compile_new(bytes)?;
                self.check_contract(kind, &component)?;
                self.cache.store(id, &component);
                component
            }
        };
        self.check_contract(kind, &component)?;
        Ok(component)
    }

    /// Checks that `bytes` is a WebAssembly component this engine can
    /// compile (what `POST /artifacts` accepts), caching the result. The
    /// contract for a verb or projection is checked when it is defined.
    pub fn check_component(&self, id: &str, bytes: &[u8]) -> Result<(), RuntimeError> {
        if bytes.len() > self.limits.max_artifact_bytes {
            return Err(RuntimeError::TooLarge {
                size: bytes.len(),
                limit: self.limits.max_artifact_bytes,
            });
        }
        if self.cache.load(&self.engine, id).is_some() {
            return Ok(());
        }
        let component = self.compile_new(bytes)?;
        self.cache.store(id, &component);
        Ok(())
    }

    /// Compiles bytes not in the cache, within the compile budget.
    fn compile_new(&self, bytes: &[u8]) -> Result<Component, RuntimeError> {
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
        self.compiler.compile(&self.engine, bytes)
    }

    fn check_contract(&self, kind: ModuleKind, component: &Component) -> Result<(), RuntimeError> {
        let ty = component.component_type();
        let allowed: &[&str] = match kind {
            ModuleKind::Verb => &["types", "log"],
            ModuleKind::Projection => &["types", "log", "kv"],
        };
        for (name, _) in ty.imports(&self.engine) {
            if !allowed.iter().any(|i| bindings::interface(i) == name) {
                return Err(RuntimeError::ForbiddenImport(name.to_owned()));
            }
        }
        let required: &[&str] = match kind {
            ModuleKind::Verb => &["validate", "react"],
            ModuleKind::Projection => &["fold", "query"],
        };
        for export in required {
            if ty.get_export(&self.engine, export).is_none() {
                return Err(RuntimeError::MissingExport(
                    (*export).to_owned(),
                    kind.as_str(),
                ));
            }
        }
        let linker = match kind {
            ModuleKind::Verb => &self.verb_linker,
            ModuleKind::Projection => &self.projection_linker,
        };
        linker
            .instantiate_pre(component)
            .map_err(|e| RuntimeError::Invalid(format!("{e:#}")))?;
        // Instantiate it once, within the node's limits, so a component that
        // needs more instances or memory than a store allows is refused when
        // it is defined rather than failing on every call.
        let budget = self.limits.budget(None, None);
        let mut store = self.new_store("", budget);
        self.arm(&mut store, budget)?;
        linker.instantiate(&mut store, component).map_err(|e| {
            RuntimeError::Invalid(format!(
                "it cannot be instantiated within the node's limits: {e:#}"
            ))
        })?;
        Ok(())
    }

    fn new_store(&self, projection: &str, budget: Budget) -> Store<HostState> {
        let state = HostState {
            limits: Meter::new(budget.memory, self.limits.table_elements),
            source: Source::None,
            kv: Kv {
                projection: projection.to_owned(),
                ..Kv::default()
            },
            max_write_bytes: self.limits.max_write_bytes,
            host_fuel: budget.fuel,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store
    }

    fn arm(&self, store: &mut Store<HostState>, budget: Budget) -> Result<(), RuntimeError> {
        store
            .set_fuel(budget.fuel)
            .map_err(|e| RuntimeError::Cache(e.to_string()))?;
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
                fuel = budget.fuel - store.get_fuel().unwrap_or(0),
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

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The activity as the WIT carries it (both worlds share the record).
fn wit_activity(signed: &Signed, json: &str, backfilled: bool) -> types::Activity {
    types::Activity {
        id: signed.id.clone(),
        kind: signed.header.kind.clone(),
        verb: signed.verb().to_owned(),
        actor: signed.header.actor.clone(),
        seq: signed.header.seq,
        published: signed.header.published.clone(),
        json: json.to_owned(),
        backfilled,
    }
}

/// An instance and its store.
///
/// A module's instance is made for one call and dropped after it, so that
/// no guest keeps state from one call to the next: what a module answers
/// depends only on its arguments and the store it reads, and a rebuild
/// folds to what incremental folding did even for a module that tries to
/// remember. The exception is [`Reuse::Warm`]: the node's own built-in
/// modules (this binary's genesis bundle, whose source is ours and keeps no
/// state), whose instances are kept between calls, because a fresh instance
/// costs ~50 µs where their folds take ~8 (slots reset by the pooling
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
    /// Instances kept between calls: the node's own built-in modules.
    Warm,
}

/// A world's bindings: how a component of that world is made ready to
/// instantiate, and what its instances keep. Implemented by the verb and
/// projection bindings only.
pub trait Bindings: Sized {
    type Pre: Send + Sync;
    /// Most idle instances kept for [`Reuse::Warm`].
    const KEEP: usize;
    /// Whether its stores' `kv` is the module's own (a projection's state).
    const KV: bool;
    fn prepare(runtime: &Runtime, component: &Component) -> wasmtime::Result<Self::Pre>;
    fn instantiate(pre: &Self::Pre, store: &mut Store<HostState>) -> wasmtime::Result<Self>;
}

impl Bindings for verb::Verb {
    type Pre = verb::VerbPre<HostState>;
    // Verbs validate on many threads at once: keep what they leave.
    const KEEP: usize = usize::MAX;
    const KV: bool = false;

    fn prepare(runtime: &Runtime, component: &Component) -> wasmtime::Result<Self::Pre> {
        verb::VerbPre::new(runtime.verb_linker.instantiate_pre(component)?)
    }

    fn instantiate(pre: &Self::Pre, store: &mut Store<HostState>) -> wasmtime::Result<Self> {
        pre.instantiate(store)
    }
}

impl Bindings for projection::Projection {
    type Pre = projection::ProjectionPre<HostState>;
    // Folds run one at a time, on the writer.
    const KEEP: usize = 1;
    const KV: bool = true;

    fn prepare(runtime: &Runtime, component: &Component) -> wasmtime::Result<Self::Pre> {
        projection::ProjectionPre::new(runtime.projection_linker.instantiate_pre(component)?)
    }

    fn instantiate(pre: &Self::Pre, store: &mut Store<HostState>) -> wasmtime::Result<Self> {
        pre.instantiate(store)
    }
}

/// A verb or a projection ready to run: the component ready to
/// instantiate, the budget of every call, and the idle instances of a
/// [`Reuse::Warm`] module.
pub struct Module<B: Bindings> {
    pub name: String,
    pub artifact: String,
    runtime: Arc<Runtime>,
    budget: Budget,
    pre: B::Pre,
    /// Idle instances, for [`Reuse::Warm`] only.
    idle: Option<Mutex<Vec<Warm<B>>>>,
}

/// A verb ready to run, from any thread.
pub type VerbModule = Module<verb::Verb>;

/// A projection ready to run: folds by the writer, queries from any thread.
pub type ProjectionModule = Module<projection::Projection>;

impl<B: Bindings> std::fmt::Debug for Module<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name)
            .field("artifact", &self.artifact)
            .finish()
    }
}

impl<B: Bindings> Module<B> {
    pub fn new(
        runtime: Arc<Runtime>,
        name: &str,
        artifact: &str,
        component: &Component,
        budget: Budget,
        reuse: Reuse,
    ) -> Result<Self, RuntimeError> {
        let pre =
            B::prepare(&runtime, component).map_err(|e| RuntimeError::Invalid(format!("{e:#}")))?;
        Ok(Self {
            name: name.to_owned(),
            artifact: artifact.to_owned(),
            runtime,
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
        let kv = if B::KV { self.name.as_str() } else { "" };
        let mut store = self.runtime.new_store(kv, self.budget);
        self.runtime.arm(&mut store, self.budget)?;
        let bindings = B::instantiate(&self.pre, &mut store)
            .map_err(|e| self.runtime.fault(&self.name, self.budget, &e))?;
        Ok(Warm { store, bindings })
    }

    /// Keeps an instance that answered, for [`Reuse::Warm`].
    fn give_back(&self, mut warm: Warm<B>) {
        if let Some(idle) = &self.idle {
            let data = warm.store.data_mut();
            data.source = Source::None;
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
            Err(e) => Err(self.runtime.fault(&self.name, self.budget, &e)),
        }
    }
}

impl VerbModule {
    /// Is the activity allowed? `Ok(Err(message))` is the verb's refusal.
    pub fn validate(
        &self,
        signed: &Signed,
        json: &str,
        source: Source,
    ) -> Result<Result<(), String>, RuntimeError> {
        let mut warm = self.take()?;
        warm.store.data_mut().source = source;
        let activity = wit_activity(signed, json, false);
        let result = warm.bindings.call_validate(&mut warm.store, &activity);
        let answer = self.finish("validate", warm, result)?;
        Ok(answer.map_err(|r| r.message))
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
        let mut warm = self.take()?;
        warm.store.data_mut().source = std::mem::take(source);
        let activity = wit_activity(signed, json, false);
        let context = types::Context {
            recipient: recipient.to_owned(),
        };
        let result = warm
            .bindings
            .call_react(&mut warm.store, &activity, &context);
        *source = std::mem::take(&mut warm.store.data_mut().source);
        self.finish("react", warm, result)
    }
}

/// An activity as a projection's `fold` receives it. Build it once with
/// [`fold_activity`] and fold it into every projection.
pub type FoldActivity = types::Activity;

/// The WIT record of an activity for folding.
pub fn fold_activity(signed: &Signed, json: &str, backfilled: bool) -> FoldActivity {
    wit_activity(signed, json, backfilled)
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

/// A projection folding a run of activities in the writer's transaction.
/// Only successful folds' writes reach the store. [`FoldSession::finish`]
/// gives the transaction back.
pub struct FoldSession<'m> {
    module: &'m ProjectionModule,
    /// The session's instance, kept between folds for [`Reuse::Warm`].
    warm: Option<Warm<projection::Projection>>,
    /// `None` only while a call runs (the store holds it).
    source: Option<WriteState>,
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

impl FoldSession<'_> {
    /// Folds one activity; later folds of the session see its writes.
    /// `Err` is a storage failure: the transaction must not be committed.
    pub fn fold(&mut self, activity: &FoldActivity) -> Result<Folded, StoreError> {
        let module = self.module;
        let kept = self.warm.take();
        let mut warm = match kept {
            Some(mut warm) => match module.runtime.arm(&mut warm.store, module.budget) {
                Ok(()) => warm,
                Err(e) => return Ok(Folded::Fault(e)),
            },
            None => match module.take() {
                Ok(warm) => warm,
                Err(e) => return Ok(Folded::Fault(e)),
            },
        };
        let Some(source) = self.source.take() else {
            return Err(lost_transaction());
        };
        let data = warm.store.data_mut();
        data.source = Source::Write(source);
        data.kv.writable = true;
        data.kv.buffer.clear();
        data.kv.buffered_bytes = 0;
        let result = warm.bindings.call_fold(&mut warm.store, activity);
        module
            .runtime
            .spent(&module.name, "fold", module.budget, &warm.store);
        let data = warm.store.data_mut();
        let Source::Write(mut source) = std::mem::take(&mut data.source) else {
            return Err(lost_transaction());
        };
        let mut writes = std::mem::take(&mut data.kv.buffer);
        let answered = result.is_ok();
        let folded = match result {
            Ok(Ok(())) => {
                source.keep(&mut writes);
                Folded::Applied
            }
            Ok(Err(message)) => Folded::Refused(message),
            // A trapped instance is never reused.
            Err(e) => Folded::Fault(module.runtime.fault(&module.name, module.budget, &e)),
        };
        if answered && module.idle.is_some() {
            self.warm = Some(warm);
        }
        self.source = Some(source);
        Ok(folded)
    }

    /// Ends the session: the successful folds' writes go to the store, the
    /// instance back to the pool and the transaction to the caller. `Err`
    /// is a storage failure: the transaction is dropped (aborted).
    pub fn finish(mut self) -> Result<WriteTxn, StoreError> {
        if let Some(warm) = self.warm.take() {
            self.module.give_back(warm);
        }
        match self.source.take() {
            Some(state) => state.finish(&self.module.name),
            None => Err(lost_transaction()),
        }
    }
}

impl ProjectionModule {
    /// Lends `txn` to this projection for a run of folds, opening the
    /// tables the folds use once; `ids` is the store's
    /// [`weft_store::Store::recent_ids`]. On failure `txn` is dropped
    /// (aborted).
    pub fn session(
        &self,
        txn: WriteTxn,
        ids: Arc<RecentIds>,
    ) -> Result<FoldSession<'_>, StoreError> {
        let source = WriteState::open(txn, ids)?;
        Ok(FoldSession {
            module: self,
            warm: None,
            source: Some(source),
        })
    }

    /// Answers a query from a committed snapshot.
    pub fn query(
        &self,
        snapshot: Snapshot,
        path: &str,
        params: &[(String, String)],
    ) -> Result<Result<String, QueryError>, RuntimeError> {
        let mut warm = self.take()?;
        let data = warm.store.data_mut();
        data.source = Source::Read(snapshot);
        data.kv.writable = false;
        data.kv.buffer.clear();
        let result = warm.bindings.call_query(&mut warm.store, path, params);
        self.finish("query", warm, result)
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
