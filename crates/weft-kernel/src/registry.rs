//! The registry of verbs and projections (docs/architecture.md §5): which module
//! interprets which verb, which projections fold the log, and their
//! histories. Implements the kernel's [`Modules`] seam over the runtime.
//!
//! Definitions are activities (`DefineActivity`, `DefineProjection`) and
//! take effect in the transaction that appends them; the registry's memory
//! is rebuilt from the `modules` table whenever a batch does not commit.
//!
//! A projection that is defined (or rebuilt) is built from the whole log in
//! steps of `runtime.build_step` activities: the first in the defining
//! batch, the rest between the writer's batches, each step committed with
//! its position in `projection_builds`, so publishing goes on meanwhile and
//! a restart resumes where the last step ended. Until it has caught up, the
//! projection folds nothing new and its queries answer "being built". The
//! follower graph is the exception: deliveries are addressed from it, so it
//! is built in one step (the writer waits, as for any batch).

mod readahead;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::modules::{Appended, Intended, Modules, Rejection};
use weft_core::identity::Lifecycle;
use weft_core::model::Signed;
use weft_runtime::host::{Source, WriteState};
use weft_runtime::{
    Activities, Budget, Contract, Folded, ProjectionModule, QueryError, Reuse, Runtime,
    RuntimeError, VerbModule,
};
use weft_store::tables::namespace;
use weft_store::{
    FoldError, ModuleKind, ModuleRecord, ModuleVersion, ProjectionStatus, Store, StoreError,
    WriteTxn,
};

/// A definition's metadata (`description`, `folds`, `reacts`, …), as kept
/// with its version; `Null` if it cannot be read.
fn metadata(version: &ModuleVersion) -> Value {
    serde_json::from_str(&version.metadata).unwrap_or_default()
}

/// The activity types a projection's definition says it folds (`folds`);
/// `None`: every one.
fn folds(metadata: &Value) -> Option<BTreeSet<String>> {
    let kinds = metadata.get("folds")?.as_array()?;
    Some(
        kinds
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
    )
}

/// Whether a verb's definition lets its `react` be called: `"reacts":
/// false` says it never asks for anything.
fn reacts(metadata: &Value) -> bool {
    metadata
        .get("reacts")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// Activity types the kernel interprets itself.
pub const DEFINE_ACTIVITY: &str = "DefineActivity";
pub const DEFINE_PROJECTION: &str = "DefineProjection";
/// A policy of this node (docs/architecture.md §10; [`crate::policy`]).
pub const DEFINE_POLICY: &str = "DefinePolicy";

/// Most activities a build folds in one run (and reads ahead at once).
const CHUNK: usize = 512;

/// Most intents one `react` call may ask for (an accept, an answer, a
/// follow-up: a handful).
const MAX_INTENTS: usize = 16;

/// Whether the kernel, not a module, interprets `signed`.
pub fn kernel_native(signed: &Signed) -> bool {
    !matches!(Lifecycle::of(&signed.json), Lifecycle::Other)
        || matches!(
            signed.header.kind.as_str(),
            DEFINE_ACTIVITY | DEFINE_PROJECTION | DEFINE_POLICY
        )
}

/// Verb and projection names: a letter, then up to 63 of letters, digits, `_` and `-`.
pub fn check_module_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        return Err(format!(
            "`{name}` is not a valid module name: a letter, then up to 63 of letters, digits, `_` and `-`"
        ));
    }
    if matches!(
        name,
        "Create"
            | "Update"
            | "Move"
            | "Person"
            | "Service"
            | "Group"
            | "Application"
            | "Organization"
            | "Tombstone"
            | DEFINE_ACTIVITY
            | DEFINE_PROJECTION
            | DEFINE_POLICY
    ) {
        return Err(format!(
            "`{name}` is interpreted by the kernel and cannot be redefined"
        ));
    }
    Ok(())
}

/// The WIT packages this node runs modules against.
pub const WIT_VERSIONS: &[&str] = &weft_runtime::PACKAGES;

/// Checks a Define draft's descriptive fields: `description` and
/// `language` are short text, `wit` a package this node supports, `fuel`
/// and `memory` (the budget the author asks for) positive integers, `folds`
/// (a projection's: the activity types it is passed) a short list of types,
/// `reacts` (a verb's: `false` when its `react` never asks for anything) a
/// boolean. Answers the offending field and what to fix.
pub fn check_metadata(draft: &Map<String, Value>) -> Result<(), (&'static str, String)> {
    for (field, longest) in [("description", 1000), ("language", 40)] {
        match draft.get(field) {
            None => {}
            Some(Value::String(s)) if s.chars().count() <= longest => {}
            Some(_) => {
                return Err((
                    field,
                    format!("must be text of at most {longest} characters"),
                ));
            }
        }
    }
    match draft.get("wit") {
        None => {}
        Some(Value::String(w)) if WIT_VERSIONS.contains(&w.as_str()) => {}
        Some(other) => {
            return Err((
                "wit",
                format!(
                    "{other} is not a WIT package this node runs; it supports {}",
                    WIT_VERSIONS.join(", ")
                ),
            ));
        }
    }
    match draft.get("folds") {
        None => {}
        Some(Value::Array(kinds))
            if (1..=64).contains(&kinds.len())
                && kinds.iter().all(|k| {
                    k.as_str().is_some_and(|k| {
                        !k.is_empty() && k.len() <= 64 && !k.chars().any(char::is_control)
                    })
                }) => {}
        Some(_) => {
            return Err((
                "folds",
                "must be a list of 1 to 64 activity types (`[\"Follow\", \"Undo\"]`): the only ones the projection is passed".into(),
            ));
        }
    }
    match draft.get("reacts") {
        None => {}
        Some(Value::Bool(_))
            if draft.get("type").and_then(Value::as_str) == Some(DEFINE_ACTIVITY) => {}
        Some(Value::Bool(_)) => {
            return Err((
                "reacts",
                "belongs to a verb's definition (DefineActivity): a projection does not react"
                    .into(),
            ));
        }
        Some(_) => {
            return Err((
                "reacts",
                "must be true or false: false when the verb's `react` never asks for anything, so the node does not call it".into(),
            ));
        }
    }
    for field in ["fuel", "memory"] {
        match draft.get(field) {
            None => {}
            Some(v) if v.as_u64().is_some_and(|n| n > 0) => {}
            Some(_) => return Err((field, "must be a positive integer".into())),
        }
    }
    Ok(())
}

/// A committed activity local actors react to.
#[derive(Debug, Clone)]
pub struct Reaction {
    /// Its row in `reactions`, removed with the last intent.
    pub position: u64,
    pub signed: Signed,
    pub json: String,
    /// What the verbs asked for when the activity was appended; `None`
    /// for a reaction resumed after a restart, whose verbs are asked again.
    pub intents: Option<Vec<Intended>>,
}

/// The active modules.
pub struct Registry {
    runtime: Arc<Runtime>,
    store: Arc<Store>,
    verbs: RwLock<HashMap<String, Arc<VerbModule>>>,
    projections: RwLock<BTreeMap<String, Arc<ProjectionModule>>>,
    /// Projections being built (as in `projection_builds`): they fold
    /// nothing new and answer no queries until they have caught up.
    building: RwLock<BTreeSet<String>>,
    /// Projections being rebuilt into their next generation (as in
    /// `projection_rebuilds`): they fold and answer queries from the
    /// generation served meanwhile.
    rebuilding: RwLock<BTreeSet<String>>,
    /// Builds that caught up in the transaction being written: they leave
    /// `building` once it commits, so that no query is answered from a
    /// snapshot the build's last step is not in yet.
    finishing: Mutex<BTreeSet<String>>,
    /// Whether a replaced generation's keys are left to remove.
    dropping: std::sync::atomic::AtomicBool,
    reactions: Mutex<Option<mpsc::UnboundedSender<Reaction>>>,
    /// Reads the log ahead of the build being stepped.
    readahead: readahead::ReadAhead,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// Loads every module's current version from the database.
    pub fn load(runtime: Arc<Runtime>, store: Arc<Store>) -> Result<Self, StoreError> {
        let registry = Self {
            runtime,
            readahead: readahead::ReadAhead::new(store.clone()),
            store,
            verbs: RwLock::new(HashMap::new()),
            projections: RwLock::new(BTreeMap::new()),
            building: RwLock::new(BTreeSet::new()),
            rebuilding: RwLock::new(BTreeSet::new()),
            finishing: Mutex::new(BTreeSet::new()),
            dropping: std::sync::atomic::AtomicBool::new(false),
            reactions: Mutex::new(None),
        };
        registry.reload()?;
        Ok(registry)
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The intents of the local actors an activity names in `to`, `cc` or
    /// `object` ([`crate::addressed`]; its author aside; `is_actor`
    /// says which are actors here),
    /// from its verb's `react`, which reads the log from `source`. A verb
    /// that fails, or asks another actor to act, is logged and ignored.
    pub fn intents(
        &self,
        signed: &Signed,
        json: &str,
        is_actor: impl Fn(&str) -> bool,
        source: &mut Source,
    ) -> Vec<Intended> {
        let Some(verb) = self.verb(signed.verb()).filter(|v| v.reacts()) else {
            return Vec::new();
        };
        let mut named = crate::addressed(&signed.json);
        named.sort_unstable();
        named.dedup();
        let mut out = Vec::new();
        let cap = self.runtime.limits().max_reactions;
        let mut reactions = 0;
        for recipient in named.into_iter().filter(|r| *r != signed.header.actor) {
            if !is_actor(recipient) {
                continue;
            }
            if reactions == cap {
                tracing::warn!(id = %signed.id, cap, "the activity names more local recipients than `[runtime] max_reactions`; the rest do not react");
                break;
            }
            reactions += 1;
            match verb.react(signed, json, recipient, source) {
                Ok(intents) => {
                    if intents.len() > MAX_INTENTS {
                        tracing::warn!(verb = %verb.name, %recipient, asked = intents.len(), "a verb asked for more than {MAX_INTENTS} intents; the rest are ignored");
                    }
                    for intent in intents.into_iter().take(MAX_INTENTS) {
                        if intent.actor != recipient {
                            tracing::warn!(verb = %verb.name, %recipient, actor = %intent.actor, "a verb asked another actor to act; ignored");
                            continue;
                        }
                        match serde_json::from_str::<Value>(&intent.draft) {
                            Ok(Value::Object(draft)) => out.push((intent.actor, draft)),
                            _ => {
                                tracing::warn!(verb = %verb.name, "a verb's intent is not a JSON object; ignored")
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(verb = %verb.name, error = %e, "react failed"),
            }
        }
        out
    }

    /// Sends committed activities that local actors may react to.
    pub fn set_reactions(&self, tx: mpsc::UnboundedSender<Reaction>) {
        if let Ok(mut slot) = self.reactions.lock() {
            *slot = Some(tx);
        }
    }

    /// Queues `reaction` for the reactions task again: a Follow the
    /// `follows` policy held and now lets through.
    pub fn requeue(&self, reaction: Reaction) {
        if let Ok(slot) = self.reactions.lock()
            && let Some(tx) = slot.as_ref()
        {
            let _ = tx.send(reaction);
        }
    }

    /// Rebuilds the in-memory registry from the `modules` table.
    fn reload(&self) -> Result<(), StoreError> {
        let reader = self.store.read()?;
        let mut verbs = HashMap::new();
        let mut projections = BTreeMap::new();
        for record in reader.modules()? {
            let Some(current) = record.versions.last() else {
                continue;
            };
            let Some(bytes) = reader.artifact(&current.artifact)? else {
                continue;
            };
            match self.activate(record.kind, &record.name, current, &bytes) {
                Ok(Active::Verb(m)) => {
                    verbs.insert(record.name.clone(), m);
                }
                Ok(Active::Projection(m)) => {
                    projections.insert(record.name.clone(), m);
                }
                Err(e) => {
                    tracing::error!(module = %record.name, error = %e, "cannot load a module")
                }
            }
        }
        let rebuilding: BTreeSet<String> = reader.projection_rebuilds()?.into_keys().collect();
        let building: BTreeSet<String> = reader
            .projection_builds()?
            .into_keys()
            .filter(|name| !rebuilding.contains(name))
            .collect();
        self.dropping.store(
            reader.has_projection_drops()?,
            std::sync::atomic::Ordering::Relaxed,
        );
        if let (Ok(mut v), Ok(mut p), Ok(mut b), Ok(mut r)) = (
            self.verbs.write(),
            self.projections.write(),
            self.building.write(),
            self.rebuilding.write(),
        ) {
            *v = verbs;
            *p = projections;
            *b = building;
            *r = rebuilding;
        }
        Ok(())
    }

    /// Whether projection `name` is being built with no state to serve
    /// meanwhile (a new definition); a rebuild serves the generation built
    /// before.
    pub fn is_building(&self, name: &str) -> bool {
        self.building.read().is_ok_and(|b| b.contains(name))
    }

    /// Starts rebuilding projection `name` into its next generation,
    /// serving the one it has until the new one has caught up.
    fn start_rebuild(&self, txn: &WriteTxn, name: &str) -> Result<(), StoreError> {
        txn.start_rebuild(name)?;
        if let Ok(mut rebuilding) = self.rebuilding.write() {
            rebuilding.insert(name.to_owned());
        }
        Ok(())
    }

    /// Removes part of a replaced generation's keys.
    fn drop_step(&self, txn: &WriteTxn) -> Result<(), StoreError> {
        let budget = self.runtime.limits().build_step.max(1) * 4;
        let left = txn.drop_step(budget)?;
        self.dropping
            .store(left, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Starts building projection `name` from the whole log: its old state
    /// and status go (in steps), then it folds from position 1.
    fn start_build(&self, txn: &WriteTxn, name: &str) -> Result<(), StoreError> {
        txn.start_build(name)?;
        if let Ok(mut building) = self.building.write() {
            building.insert(name.to_owned());
        }
        Ok(())
    }

    /// One step of building projection `name`: clears part of its old
    /// state, or folds up to `build_step` more activities into it. Returns
    /// how many activities it folded in all once it has caught up with the
    /// log, `None` while it has not (or is not being built).
    fn build(&self, mut txn: WriteTxn, name: &str) -> Result<(WriteTxn, Option<u64>), StoreError> {
        let forget = || {
            if let (Ok(mut building), Ok(mut rebuilding)) =
                (self.building.write(), self.rebuilding.write())
            {
                building.remove(name);
                rebuilding.remove(name);
            }
        };
        let Some(mut next) = txn.build_position(name)? else {
            // Not being built after all: memory follows the table, so the
            // writer does not keep stepping a build that is not there.
            forget();
            return Ok((txn, None));
        };
        let Some(module) = self.projection(name) else {
            // Its module can no longer run here: nothing to build.
            txn.end_build(name)?;
            forget();
            return Ok((txn, Some(0)));
        };
        // A rebuild builds the next generation beside the one served, with
        // a status of its own; a new definition builds in place.
        let target = txn.rebuild_target(name)?;
        let (space, status_key) = match target {
            Some(target) => {
                let space = namespace(name, target);
                (space.clone(), space)
            }
            None => (
                namespace(name, txn.projection_generation(name)?),
                name.to_owned(),
            ),
        };
        // Deliveries are addressed from the follower graph: it is built in
        // one step, so there is never a moment when followers are unknown.
        let mut budget = if name == super::audience::GRAPH {
            u64::MAX
        } else {
            self.runtime.limits().build_step.max(1)
        };
        if next == 0 {
            let cleared = txn.clear_projection_state(&space, budget)?;
            if cleared > budget {
                return Ok((txn, None));
            }
            budget -= cleared;
            next = 1;
        }
        let until = txn.last_position()?;
        let mut status: ProjectionStatus = txn.projection_status(&status_key)?.unwrap_or_default();
        // A projection passed every activity folds a stretch in several
        // times the time it takes to read and parse it: the next one is
        // read ahead meanwhile. One passed some types reads for itself.
        let ahead = match (module.folds_everything(), module.contract()) {
            (false, _) => None,
            // A 0.3.0 run is packed from the fields per call.
            (true, Contract::V0_1 | Contract::V0_3) => Some(readahead::Parse::Fields),
            (true, Contract::V0_2) => Some(readahead::Parse::V0_2),
        };
        while budget > 0 && next <= until {
            let limit = usize::try_from(budget.min(CHUNK as u64)).unwrap_or(CHUNK);
            let (chunk, parsed) = match self.readahead.take(next, until, limit) {
                Some((chunk, parsed)) => (chunk, Some(parsed)),
                None => (txn.records(next, until, limit)?, None),
            };
            let Some(last) = chunk.last().map(|(p, _)| *p) else {
                break;
            };
            if let Some(parse) = ahead {
                self.readahead.ask(last + 1, until, CHUNK, parse);
            }
            // Folded from the stored text, as the writer folds what it
            // appends: no need to parse or check the activities again.
            let mut run = Activities::new();
            for (_, record) in &chunk {
                run.push(&record.id, &record.json, record.backfilled);
            }
            if let Some(parsed) = parsed {
                run.with_parsed(parsed);
            }
            let mut session = module.session_in(txn, self.store.recent_ids().clone(), &space)?;
            let folded = session.fold(&run)?;
            for ((position, record), folded) in chunk.iter().zip(folded) {
                note(&mut status, &module.name, *position, &record.id, folded);
            }
            txn = session.finish()?;
            budget = budget.saturating_sub(step_cost(&module, &run));
            next = last + 1;
        }
        txn.put_projection_status(&status_key, &status)?;
        if next <= until {
            txn.set_build_position(name, next)?;
            return Ok((txn, None));
        }
        match target {
            Some(target) => {
                txn.swap_generation(name, target)?;
                self.dropping
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            None => txn.end_build(name)?,
        }
        if let Ok(mut finishing) = self.finishing.lock() {
            finishing.insert(name.to_owned());
        }
        tracing::info!(
            projection = name,
            folded = status.folded + status.failed,
            "projection built"
        );
        Ok((txn, Some(status.folded + status.failed)))
    }

    /// Compiles (or loads) `version` and makes it runnable, with the
    /// budget its definition declares, capped by the node's limits.
    fn activate(
        &self,
        kind: ModuleKind,
        name: &str,
        version: &ModuleVersion,
        bytes: &[u8],
    ) -> Result<Active, RuntimeError> {
        let artifact = version.artifact.as_str();
        let reuse = reuse_of(artifact);
        let component = self.runtime.compile_for(kind, artifact, bytes, reuse)?;
        let budget = self.budget(Some(version));
        let runtime = self.runtime.clone();
        let metadata = metadata(version);
        Ok(match kind {
            ModuleKind::Verb => Active::Verb(Arc::new(
                VerbModule::new(runtime, name, artifact, &component, budget, reuse)?
                    .reacting(reacts(&metadata)),
            )),
            ModuleKind::Projection => Active::Projection(Arc::new(
                ProjectionModule::new(runtime, name, artifact, &component, budget, reuse)?
                    .folding_only(folds(&metadata)),
            )),
        })
    }

    /// Whether defining `name` as `kind` is allowed as things stand: the
    /// name must not belong to the other kind, and a built-in module is
    /// replaced only on purpose — `replaces` must then name the artifact it
    /// replaces (`weft module add --replace`). A `replaces` that is not the
    /// current artifact is refused too (someone defined it meanwhile).
    /// `Err((field, message))`.
    pub fn check_redefinition(
        &self,
        kind: ModuleKind,
        name: &str,
        replaces: Option<&str>,
    ) -> Result<(), (&'static str, String)> {
        let current = self
            .store
            .read()
            .and_then(|r| r.module(name))
            .map_err(|e| ("name", e.to_string()))?;
        let Some(record) = current else {
            return match replaces {
                Some(_) => Err((
                    "replaces",
                    format!("there is no `{name}` to replace: leave `replaces` (--replace) out"),
                )),
                None => Ok(()),
            };
        };
        if record.kind != kind {
            return Err((
                "name",
                format!(
                    "`{name}` is a {} on this node; a {} cannot take its name",
                    record.kind.as_str(),
                    kind.as_str()
                ),
            ));
        }
        let Some(version) = record.versions.last() else {
            return Ok(());
        };
        match replaces {
            Some(replaced) if replaced != version.artifact => Err((
                "replaces",
                format!(
                    "`{name}` is now module {} (version {}), not {replaced}: it changed meanwhile; look again with `weft module list`",
                    version.artifact, version.version
                ),
            )),
            Some(_) => Ok(()),
            None if weft_genesis::is_builtin_artifact(&version.artifact) => Err((
                "name",
                format!(
                    "`{name}` is a built-in {} (module {}): defining it again replaces it for everything this node does with it; add --replace (`\"replaces\": \"{}\"`) if that is what you mean, or choose another name",
                    kind.as_str(),
                    version.artifact,
                    version.artifact
                ),
            )),
            None => Ok(()),
        }
    }

    /// Folds the projection `artifact` (to be `name`) over the newest `limit` activities
    /// of the log in a scratch store (nothing of this node is written, and
    /// the log is only read), for at most `time`: what `weft module add` of
    /// a projection checks before it defines one. A fold that looks up
    /// other activities sees none here.
    pub fn dry_run(
        &self,
        name: &str,
        artifact: &str,
        limit: u64,
        time: std::time::Duration,
    ) -> Result<DryRun, String> {
        let bytes = self
            .store
            .read()
            .and_then(|r| r.artifact(artifact))
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no artifact {artifact} on this node; upload it first"))?;
        let version = ModuleVersion {
            version: 1,
            artifact: artifact.to_owned(),
            defined_by: String::new(),
            defined_at: String::new(),
            metadata: "{}".into(),
        };
        let Active::Projection(module) = self
            .activate(ModuleKind::Projection, name, &version, &bytes)
            .map_err(|e| e.to_string())?
        else {
            return Err(format!("{artifact} is not a projection"));
        };
        let reader = self.store.read().map_err(|e| e.to_string())?;
        let last = reader.last_position().map_err(|e| e.to_string())?;
        let from = last.saturating_sub(limit.saturating_sub(1)).max(1);
        let records = reader
            .records(from, last, usize::MAX)
            .map_err(|e| e.to_string())?;
        drop(reader);
        let dir = std::env::temp_dir().join(format!(
            "weft-dry-run-{}-{}",
            std::process::id(),
            DRY_RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let result = (|| {
            let scratch =
                weft_store::Store::open(&dir.join("scratch.redb")).map_err(|e| e.to_string())?;
            let txn = scratch.begin_write().map_err(|e| e.to_string())?;
            let mut session = module
                .session(txn, scratch.recent_ids().clone())
                .map_err(|e| e.to_string())?;
            let started = std::time::Instant::now();
            let mut run = DryRun::default();
            // A few at a time, to stop on time.
            for chunk in records.chunks(10) {
                if started.elapsed() > time {
                    run.timed_out = true;
                    break;
                }
                let mut activities = Activities::new();
                for (_, record) in chunk {
                    activities.push(&record.id, &record.json, record.backfilled);
                }
                session.with_texts(activities.texts());
                let folded = session.fold(&activities).map_err(|e| e.to_string())?;
                for folded in folded {
                    run.tried += 1;
                    match folded {
                        Folded::Applied => run.folded += 1,
                        Folded::Refused(message) => {
                            run.first_error.get_or_insert(message);
                        }
                        Folded::Fault(fault) => {
                            run.first_error.get_or_insert(fault.to_string());
                        }
                    }
                }
            }
            drop(session);
            Ok(run)
        })();
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    /// Compiles an artifact as `kind` without activating it: the check a
    /// Define activity must pass before it is published.
    /// Answers the contract version the module is built against.
    pub fn check_artifact(
        &self,
        kind: ModuleKind,
        artifact: &str,
    ) -> Result<weft_runtime::Contract, String> {
        let bytes = self
            .store
            .read()
            .and_then(|r| r.artifact(artifact))
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!("no artifact {artifact} on this node; upload it with POST /artifacts first")
            })?;
        match self
            .runtime
            .compile_for(kind, artifact, &bytes, reuse_of(artifact))
            .and_then(|component| self.runtime.contract(kind, &component))
        {
            Ok(contract) => Ok(contract),
            Err(e) => {
                // A component of the other kind says so, not what it lacks.
                let other = match kind {
                    ModuleKind::Verb => ModuleKind::Projection,
                    ModuleKind::Projection => ModuleKind::Verb,
                };
                if self
                    .runtime
                    .compile_for(other, artifact, &bytes, reuse_of(artifact))
                    .is_ok()
                {
                    return Err(format!(
                        "this component is a {}, not a {}: add it with `weft module add {} NAME FILE`",
                        other.as_str(),
                        kind.as_str(),
                        other.as_str()
                    ));
                }
                Err(e.to_string())
            }
        }
    }

    pub fn verb(&self, name: &str) -> Option<Arc<VerbModule>> {
        self.verbs.read().ok()?.get(name).cloned()
    }

    /// Whether local recipients of an activity of `verb` are asked how
    /// they react: it has a verb whose definition does not say `"reacts":
    /// false`.
    pub fn reacts(&self, verb: &str) -> bool {
        self.verb(verb).is_some_and(|v| v.reacts())
    }

    pub fn projection(&self, name: &str) -> Option<Arc<ProjectionModule>> {
        self.projections.read().ok()?.get(name).cloned()
    }

    /// Serves `GET /projections/{name}/{path}`: the projection's `log.get`
    /// answers what `visible` lets through (the asker's view), or the
    /// whole log when `None` (the node's own questions).
    pub fn query(
        &self,
        name: &str,
        path: &str,
        params: &[(String, String)],
        visible: Option<weft_runtime::Visible>,
    ) -> Result<Result<String, QueryError>, QueryFault> {
        let module = self.projection(name).ok_or(QueryFault::Unknown)?;
        if self.is_building(name) {
            let reader = self
                .store
                .read()
                .map_err(|e| QueryFault::Store(e.to_string()))?;
            let next = reader
                .projection_builds()
                .map_err(|e| QueryFault::Store(e.to_string()))?
                .get(name)
                .copied()
                .unwrap_or(0);
            let last = reader
                .last_position()
                .map_err(|e| QueryFault::Store(e.to_string()))?;
            return Err(QueryFault::Building(format!(
                "projection `{name}` is being built from the log ({} of {last} activities folded); try again shortly",
                next.saturating_sub(1)
            )));
        }
        let snapshot = self
            .store
            .begin_read()
            .map_err(|e| QueryFault::Store(e.to_string()))?;
        // The generation the snapshot serves: a rebuild's swap is one
        // transaction, so a snapshot has one or the other, whole.
        let generation = snapshot
            .projection_generation(name)
            .map_err(|e| QueryFault::Store(e.to_string()))?;
        module
            .query_in(
                snapshot,
                &namespace(name, generation),
                path,
                params,
                visible,
            )
            .map_err(QueryFault::Runtime)
    }

    /// Folds a run of activities into every active projection that is not
    /// being built, one projection at a time so each lends the transaction
    /// once.
    fn fold_run(
        &self,
        mut txn: WriteTxn,
        run: &[&Appended],
        statuses: &mut BTreeMap<String, ProjectionStatus>,
    ) -> Result<WriteTxn, StoreError> {
        if run.is_empty() {
            return Ok(txn);
        }
        let building = self.building.read().map(|b| b.clone()).unwrap_or_default();
        let projections: Vec<Arc<ProjectionModule>> = self
            .projections
            .read()
            .map(|p| {
                p.values()
                    .filter(|m| !building.contains(&m.name))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if projections.is_empty() {
            return Ok(txn);
        }
        let mut activities = Activities::new();
        for item in run {
            activities.push(&item.signed.id, &item.json, item.backfilled);
        }
        for module in projections {
            if !statuses.contains_key(&module.name) {
                let stored = txn.projection_status(&module.name)?;
                statuses.insert(module.name.clone(), stored.unwrap_or_default());
            }
            let Some(status) = statuses.get_mut(&module.name) else {
                continue;
            };
            if !module.passes_any(&activities) {
                // No activity of the run is of a type it folds (its
                // `folds`): they count as folded, as a session would answer,
                // without opening one (an inbox's Notes, for the follower
                // graph and the endorsements).
                for item in run {
                    note(
                        status,
                        &module.name,
                        item.position,
                        &item.signed.id,
                        Folded::Applied,
                    );
                }
                continue;
            }
            let space = namespace(&module.name, txn.projection_generation(&module.name)?);
            let mut session = module.session_in(txn, self.store.recent_ids().clone(), &space)?;
            let folded = session.fold(&activities)?;
            for (item, folded) in run.iter().zip(folded) {
                note(status, &module.name, item.position, &item.signed.id, folded);
            }
            txn = session.finish()?;
        }
        Ok(txn)
    }

    /// Records a Define activity in the `modules` table and activates it.
    /// Returns the name of a projection that starts building.
    fn define(&self, txn: &WriteTxn, appended: &Appended) -> Result<Option<String>, StoreError> {
        let json = &appended.signed.json;
        let kind = match appended.signed.header.kind.as_str() {
            DEFINE_ACTIVITY => ModuleKind::Verb,
            DEFINE_PROJECTION => ModuleKind::Projection,
            _ => return Ok(None),
        };
        let (Some(name), Some(artifact)) = (
            json.get("name").and_then(Value::as_str),
            json.get("module").and_then(Value::as_str),
        ) else {
            return Ok(None);
        };
        let Some(bytes) = txn.artifact(artifact)? else {
            return Ok(None);
        };
        let mut record = match txn.module(name)? {
            Some(record) => record,
            None => ModuleRecord {
                name: name.to_owned(),
                kind,
                versions: Vec::new(),
            },
        };
        let metadata: Map<String, Value> = json
            .iter()
            .filter(|(k, _)| {
                matches!(
                    k.as_str(),
                    "description" | "wit" | "language" | "fuel" | "memory" | "folds" | "reacts"
                )
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        record.kind = kind;
        let version = ModuleVersion {
            version: record.versions.len() as u32 + 1,
            artifact: artifact.to_owned(),
            defined_by: appended.signed.id.clone(),
            defined_at: appended.signed.header.published.clone(),
            metadata: Value::Object(metadata).to_string(),
        };
        record.versions.push(version.clone());
        txn.put_module(&record)?;
        match self.activate(kind, name, &version, &bytes) {
            Ok(Active::Verb(m)) => {
                if let Ok(mut verbs) = self.verbs.write() {
                    verbs.insert(name.to_owned(), m);
                }
                Ok(None)
            }
            Ok(Active::Projection(m)) => {
                // Marked as being built before it can be found, so that no
                // query reaches the new module before its build is durable.
                self.start_build(txn, name)?;
                if let Ok(mut projections) = self.projections.write() {
                    projections.insert(name.to_owned(), m);
                }
                Ok(Some(name.to_owned()))
            }
            Err(e) => {
                tracing::error!(module = name, error = %e, "a defined module cannot be activated");
                Ok(None)
            }
        }
    }

    /// Every verb and projection with its versions, whether it runs here,
    /// and what it may use per call.
    pub fn describe(&self) -> Result<Vec<Described>, StoreError> {
        let reader = self.store.read()?;
        Ok(reader
            .modules()?
            .into_iter()
            .map(|record| Described {
                active: match record.kind {
                    ModuleKind::Verb => self.verb(&record.name).is_some(),
                    ModuleKind::Projection => self.projection(&record.name).is_some(),
                },
                budget: self.budget(record.versions.last()),
                record,
            })
            .collect())
    }

    /// What a module of `version` may use per call: what its definition
    /// asks for (none: the node's limits), capped by the node.
    fn budget(&self, version: Option<&ModuleVersion>) -> Budget {
        let metadata: Value = version
            .and_then(|v| serde_json::from_str(&v.metadata).ok())
            .unwrap_or_default();
        self.runtime.limits().budget(
            metadata.get("fuel").and_then(Value::as_u64),
            metadata.get("memory").and_then(Value::as_u64),
        )
    }
}

/// A verb or projection as [`Registry::describe`] lists it.
#[derive(Debug, Clone)]
pub struct Described {
    /// Its name, kind and every version it has had (newest last).
    pub record: ModuleRecord,
    /// Whether it runs here (a module whose artifact cannot be activated
    /// is defined but does not).
    pub active: bool,
    /// What it may use per call: what its newest version asks for, capped
    /// by the node.
    pub budget: Budget,
}

enum Active {
    Verb(Arc<VerbModule>),
    Projection(Arc<ProjectionModule>),
}

/// Why a query could not be served.
#[derive(Debug, thiserror::Error)]
pub enum QueryFault {
    #[error("no such projection")]
    Unknown,
    #[error("{0}")]
    Runtime(RuntimeError),
    #[error("storage: {0}")]
    Store(String),
    /// The projection is catching up with the log.
    #[error("{0}")]
    Building(String),
}

impl Modules for Registry {
    fn runs_module(&self, activity: &Signed) -> bool {
        !kernel_native(activity) && self.verb(activity.verb()).is_some()
    }

    fn validate(&self, activity: &Signed, json: &str) -> Result<(), Rejection> {
        if kernel_native(activity) {
            return Ok(());
        }
        let verb = activity.verb();
        let module = self.verb(verb).ok_or_else(|| Rejection::unknown(verb))?;
        match module.validate(activity, json, Source::Later(self.store.clone())) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(refusal)) => Err(Rejection {
                field: refusal.field,
                ..Rejection::new(verb, refusal.message)
            }),
            Err(fault) => Err(Rejection {
                transient: fault.is_transient(),
                ..Rejection::new(verb, fault.to_string())
            }),
        }
    }

    fn fold(&self, mut txn: WriteTxn, appended: &[Appended]) -> Result<WriteTxn, StoreError> {
        let mut statuses: BTreeMap<String, ProjectionStatus> = BTreeMap::new();
        let mut run: Vec<&Appended> = Vec::new();
        let mut defined = BTreeSet::new();
        for item in appended {
            if matches!(
                item.signed.header.kind.as_str(),
                DEFINE_ACTIVITY | DEFINE_PROJECTION
            ) {
                // What came before folds into the projections as they were.
                txn = self.fold_run(txn, &run, &mut statuses)?;
                run.clear();
            }
            // A new (version of a) projection starts building from the
            // whole log, this activity included; every other projection
            // folds it as usual.
            if let Some(name) = self.define(&txn, item)? {
                statuses.remove(&name);
                defined.insert(name);
            }
            run.push(item);
        }
        txn = self.fold_run(txn, &run, &mut statuses)?;
        for (name, status) in &statuses {
            txn.put_projection_status(name, status)?;
        }
        // Its first step is taken at once: on a short log, that is all of it.
        for name in defined {
            txn = self.build(txn, &name)?.0;
        }
        Ok(txn)
    }

    fn react(&self, txn: WriteTxn, appended: &mut [Appended]) -> Result<WriteTxn, StoreError> {
        if !appended.iter().any(|a| a.reacts) {
            return Ok(txn);
        }
        // Which named actors are this node's, as of this batch.
        let mut known: BTreeSet<String> = BTreeSet::new();
        for item in appended.iter().filter(|a| a.reacts) {
            for r in crate::addressed(&item.signed.json) {
                if !known.contains(r) && txn.has_actor(r)? {
                    known.insert(r.to_owned());
                }
            }
        }
        let mut source = Source::Write(WriteState::open(txn, self.store.recent_ids().clone())?);
        for item in appended.iter_mut().filter(|a| a.reacts) {
            item.intents =
                self.intents(&item.signed, &item.json, |r| known.contains(r), &mut source);
            item.reacts = !item.intents.is_empty();
        }
        // `VerbModule::react` always puts the source back.
        let Source::Write(state) = source else {
            return Err(StoreError::Internal(
                "a verb's react did not hand the write transaction back",
            ));
        };
        let txn = state.release();
        txn.put_reactions(
            appended
                .iter()
                .filter(|a| a.reacts)
                .map(|item| item.position),
        )?;
        Ok(txn)
    }

    fn committed(&self, appended: Vec<Appended>, ok: bool) {
        let finished = self
            .finishing
            .lock()
            .map(|mut f| std::mem::take(&mut *f))
            .unwrap_or_default();
        if ok
            && !finished.is_empty()
            && let (Ok(mut building), Ok(mut rebuilding)) =
                (self.building.write(), self.rebuilding.write())
        {
            for name in &finished {
                building.remove(name);
                rebuilding.remove(name);
            }
        }
        if !ok {
            if let Err(e) = self.reload() {
                tracing::error!(error = %e, "cannot reload the registry");
            }
            return;
        }
        let Ok(slot) = self.reactions.lock() else {
            return;
        };
        if let Some(tx) = slot.as_ref() {
            for item in appended.into_iter().filter(|a| a.reacts) {
                let _ = tx.send(Reaction {
                    position: item.position,
                    signed: item.signed,
                    json: item.json,
                    intents: Some(item.intents),
                });
            }
        }
    }

    fn rebuild(
        &self,
        txn: WriteTxn,
        name: &str,
    ) -> Result<(WriteTxn, Result<Option<u64>, String>), StoreError> {
        if self.projection(name).is_none() {
            return Ok((txn, Err(format!("projection `{name}`"))));
        }
        // A projection still being built for a new definition has nothing
        // to serve meanwhile: it starts again in place.
        if self.is_building(name) {
            self.start_build(&txn, name)?;
        } else {
            self.start_rebuild(&txn, name)?;
        }
        let (txn, done) = self.build(txn, name)?;
        Ok((txn, Ok(done)))
    }

    fn restart_builds(&self, txn: WriteTxn) -> Result<WriteTxn, StoreError> {
        // The log is being pruned: what was read ahead of it may be gone.
        self.readahead.pruned();
        let names: Vec<String> = self
            .projections
            .read()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        // Each serves what it has until its new generation has caught up.
        for name in names {
            if self.is_building(&name) {
                self.start_build(&txn, &name)?;
            } else {
                self.start_rebuild(&txn, &name)?;
            }
        }
        Ok(txn)
    }

    fn building(&self) -> bool {
        self.building.read().is_ok_and(|b| !b.is_empty())
            || self.rebuilding.read().is_ok_and(|b| !b.is_empty())
            || self.dropping.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn build_step(&self, txn: WriteTxn) -> Result<(WriteTxn, Option<(String, u64)>), StoreError> {
        let next =
            |set: &RwLock<BTreeSet<String>>| set.read().ok().and_then(|b| b.iter().next().cloned());
        let Some(name) = next(&self.building).or_else(|| next(&self.rebuilding)) else {
            self.drop_step(&txn)?;
            return Ok((txn, None));
        };
        let (txn, done) = self.build(txn, &name)?;
        Ok((txn, done.map(|count| (name, count))))
    }
}

/// How the instances of the module in `artifact` are reused: kept warm
/// (and compiled without fuel counting) for this binary's built-in modules
/// only.
pub(crate) fn reuse_of(artifact: &str) -> Reuse {
    if weft_genesis::is_builtin_artifact(artifact) {
        Reuse::Warm
    } else {
        Reuse::Fresh
    }
}

/// How much of a build step's budget (`build_step`, in folds) folding
/// `run` spent: an activity the projection is not passed (its definition's
/// `folds`) is read and its type looked at, a sixteenth of a fold; so a
/// projection passed few activities builds in a sixteenth of the steps,
/// and commits, while a step stays about as long.
fn step_cost(module: &ProjectionModule, run: &Activities<'_>) -> u64 {
    const PASSED_OVER_PER_FOLD: u64 = 16;
    let passed = module.passed(run).into_iter().filter(|p| *p).count() as u64;
    let over = run.len() as u64 - passed;
    (passed + over.div_ceil(PASSED_OVER_PER_FOLD)).max(1)
}

/// Scratch stores of dry runs, numbered within the process.
static DRY_RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What a dry run of a projection found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DryRun {
    /// Activities offered to the fold.
    pub tried: u64,
    /// Folds that succeeded.
    pub folded: u64,
    /// The first failure's message.
    pub first_error: Option<String>,
    /// The time ran out before every activity was tried.
    pub timed_out: bool,
}

/// Notes one fold's outcome (of the activity `id`, at `position`) on its
/// projection's status.
fn note(status: &mut ProjectionStatus, projection: &str, position: u64, id: &str, folded: Folded) {
    status.position = position;
    status.last_activity = Some(id.to_owned());
    let message = match folded {
        Folded::Applied => {
            status.folded += 1;
            return;
        }
        Folded::Refused(message) => message,
        Folded::Fault(fault) => fault.to_string(),
    };
    tracing::warn!(%projection, activity = %id, %message, "fold failed");
    status.failed += 1;
    status.errors.push(FoldError {
        position,
        activity: id.to_owned(),
        message,
    });
    if status.errors.len() > 20 {
        status.errors.remove(0);
    }
}
