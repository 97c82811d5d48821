//! Verbs travel (docs/architecture.md §5, §8.4). An activity from a peer whose verb this
//! node does not know is parked, not refused. The node then looks the verb
//! up in the registry view of the author's origin, fetches the signed
//! `DefineActivity` it names and verifies it like any inbound activity.
//! Only when the module policy admits its definer (or the operator runs
//! `weft module approve`) is the artifact fetched, its bytes checked
//! against its id and compiled, and the definition stored like any other
//! activity of its author — which registers the verb — and the parked
//! activities ingested. A module waiting for approval has cost this node
//! one small document, never the artifact's bytes or a compile; a refused
//! or discarded one leaves no artifact behind. Its activities stay parked
//! until then.
//!
//! Only verbs travel: projections are each node's own choice, and a peer's
//! definition never replaces a verb this node already has. This module
//! does not compile or run anything itself (the registry does, when the
//! definition is stored).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Federation;
use super::fetch::Budget;
use super::inbox::parse;
use weft_core::model::Signed;
use weft_core::wire::registry;
use weft_kernel::policy::ModulePolicy;
use weft_kernel::registry::DEFINE_ACTIVITY;
use weft_kernel::{FederationWrite, Ingested, Kernel, KernelError, audience_origin};
use weft_store::{Parked, PendingModule, PendingState};

/// Which peers' verbs are admitted (`[federation] module_policy`, unless
/// a `modules` policy in the log says otherwise: [`Federation::module_policy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Every peer's verb waits for `weft module approve`.
    Manual,
    /// A verb defined by an actor that a local actor follows is admitted;
    /// others wait for approval.
    Followed,
    /// Only artifact ids and definers in `module_allow`; others wait.
    Allow,
}

/// A refused verb is looked up again at most this often.
const RETRY_REFUSED: Duration = Duration::from_secs(60);
/// How long fetching an artifact may take.
const ARTIFACT_TIMEOUT: Duration = Duration::from_secs(60);

/// Lookups in flight, and when each refused verb was last tried.
#[derive(Debug, Default)]
pub struct Discovery {
    running: Mutex<HashSet<String>>,
    tried: Mutex<HashMap<String, Instant>>,
}

/// A peer's definition of a verb, checked: signed by its definer, on the
/// origin the verb was looked up at. Its artifact is not fetched yet.
struct Found {
    define: Signed,
    definer: String,
    module: String,
}

/// Why an activity could not be parked.
#[derive(Debug, thiserror::Error)]
pub enum ParkError {
    #[error(
        "this node already keeps {kept} activities whose verbs it does not know (federation.max_parked); try again once `{verb}` is admitted here"
    )]
    Full { kept: u64, verb: String },
    #[error(
        "this node already keeps {kept} activities from {origin} whose verbs it does not know (federation.max_parked_per_origin); try again once `{verb}` is admitted here"
    )]
    OriginFull {
        kept: u64,
        origin: String,
        verb: String,
    },
    #[error("{0}")]
    Kernel(#[from] KernelError),
}

impl From<weft_store::StoreError> for ParkError {
    fn from(e: weft_store::StoreError) -> Self {
        Self::Kernel(e.into())
    }
}

impl Federation {
    /// Whether `signed` must wait for its verb: the node runs modules and
    /// none interprets it.
    pub fn must_park(&self, signed: &Signed) -> bool {
        self.kernel.registry().is_some_and(|registry| {
            !weft_kernel::registry::kernel_native(signed) && registry.verb(signed.verb()).is_none()
        })
    }

    /// Keeps `signed` until its verb is admitted and starts looking the
    /// verb up at the author's origin. Refuses when `max_parked` are kept
    /// already, or `max_parked_per_origin` from the author's origin: a peer
    /// cannot fill the disk with activities nothing here interprets, nor
    /// take every other peer's room. The counts are read before the write,
    /// so requests parking at the same moment can pass a bound by as many
    /// as they are.
    pub async fn park(
        self: &Arc<Self>,
        signed: &Signed,
        recipients: Vec<String>,
        backfilled: bool,
    ) -> Result<(), ParkError> {
        let verb = signed.verb().to_owned();
        let reader = self.kernel.store().read()?;
        let kept = reader.parked_count()?;
        if kept >= self.settings.max_parked {
            return Err(ParkError::Full {
                kept,
                verb: verb.clone(),
            });
        }
        let origin = weft_core::model::origin(&signed.header.actor).unwrap_or_default();
        let share = self.settings.max_parked_per_origin;
        let from_origin = reader.parked_from(&origin, share)?;
        if from_origin >= share {
            return Err(ParkError::OriginFull {
                kept: from_origin,
                origin,
                verb: verb.clone(),
            });
        }
        drop(reader);
        let parked = Parked {
            verb: verb.clone(),
            id: signed.id.clone(),
            json: signed.to_json_string(),
            recipients,
            backfilled,
            received_at: humantime::format_rfc3339_millis(weft_core::clock::now()).to_string(),
        };
        self.kernel
            .federation_write(vec![FederationWrite::Park(parked)])
            .await?;
        tracing::info!(%verb, id = %signed.id, "parked an activity whose verb is unknown here");
        self.discover(verb, signed.header.actor.clone());
        Ok(())
    }

    /// At start: looks up again the verbs that activities are parked for.
    pub(super) fn resume_parked(self: &Arc<Self>) -> Result<(), KernelError> {
        let parked = self.kernel.store().read()?.parked(None)?;
        let mut seen = BTreeSet::new();
        for p in parked {
            if seen.insert(p.verb.clone())
                && let Ok(Value::Object(json)) = serde_json::from_str::<Value>(&p.json)
                && let Some(author) = json.get("actor").and_then(Value::as_str)
            {
                self.discover(p.verb, author.to_owned());
            }
        }
        Ok(())
    }

    /// Looks `verb` up at `author`'s origin in the background, unless a
    /// lookup is running, the module awaits approval, or it was refused
    /// less than a minute ago.
    fn discover(self: &Arc<Self>, verb: String, author: String) {
        if self
            .kernel
            .registry()
            .is_some_and(|r| r.verb(&verb).is_some())
        {
            // Known by now (defined here meanwhile): nothing to look up.
            let this = self.clone();
            tokio::spawn(async move {
                let _ = this
                    .kernel
                    .federation_write(vec![FederationWrite::PendingModuleDone(verb.clone())])
                    .await;
                release(&this.kernel, &verb).await;
            });
            return;
        }
        let pending = self
            .kernel
            .store()
            .read()
            .and_then(|r| r.pending_module(&verb));
        match pending {
            Ok(Some(p)) if p.state == PendingState::AwaitingApproval => return,
            Ok(Some(_)) => {
                let recent = self
                    .discovery
                    .tried
                    .lock()
                    .ok()
                    .and_then(|t| t.get(&verb).copied())
                    .is_some_and(|at| at.elapsed() < RETRY_REFUSED);
                if recent {
                    return;
                }
            }
            _ => {}
        }
        let started = self
            .discovery
            .running
            .lock()
            .is_ok_and(|mut running| running.insert(verb.clone()));
        if !started {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            this.settle(&verb, &author).await;
            if let Ok(mut tried) = this.discovery.tried.lock() {
                tried.insert(verb.clone(), Instant::now());
            }
            if let Ok(mut running) = this.discovery.running.lock() {
                running.remove(&verb);
            }
        });
    }

    /// Finds `verb`'s definition at `author`'s origin and admits it, holds
    /// it for approval, or records why it is refused.
    async fn settle(self: &Arc<Self>, verb: &str, author: &str) {
        if self
            .kernel
            .registry()
            .is_some_and(|r| r.verb(verb).is_some())
        {
            release(&self.kernel, verb).await;
            return;
        }
        let origin = audience_origin(author).unwrap_or_default();
        let now = || humantime::format_rfc3339_millis(weft_core::clock::now()).to_string();
        let mut pending = PendingModule {
            verb: verb.to_owned(),
            origin: origin.clone(),
            define: None,
            definer: None,
            module: None,
            state: PendingState::Refused,
            reason: String::new(),
            updated_at: now(),
        };
        match self.find(verb, &origin).await {
            Err(reason) => {
                tracing::warn!(%verb, %origin, %reason, "a peer's verb was refused");
                pending.reason = reason;
            }
            Ok(found) => {
                pending.define = Some(found.define.to_json_string());
                pending.definer = Some(found.definer.clone());
                pending.module = Some(found.module.clone());
                match self.allows(&found) {
                    Ok(why) => match self.admit_found(&origin, found.define).await {
                        Ok(released) => {
                            tracing::info!(%verb, module = %found.module, definer = %found.definer, %why, released, "admitted a peer's verb");
                            return;
                        }
                        Err(e) => pending.reason = e,
                    },
                    Err(wait) => {
                        tracing::info!(%verb, module = %found.module, definer = %found.definer, %wait, "a peer's verb awaits approval");
                        pending.state = PendingState::AwaitingApproval;
                        pending.reason = wait;
                    }
                }
            }
        }
        if let Err(e) = self
            .kernel
            .federation_write(vec![FederationWrite::PendingModule(pending)])
            .await
        {
            tracing::error!(%verb, error = %e, "cannot record a pending module");
        }
    }

    /// The definition of `verb` that `origin` publishes, checked, with its
    /// artifact stored here.
    async fn find(&self, verb: &str, origin: &str) -> Result<Found, String> {
        if origin.is_empty() {
            return Err("the author's id is not an http(s) URL".into());
        }
        let budget = Budget::new(self.settings.fetches_per_request);
        let registry_url = format!("{origin}/projections/define-registry");
        let view = self
            .fetcher
            .get_json(&registry_url, &budget)
            .await
            .map_err(|e| format!("cannot read the author's registry: {e}"))?;
        let listed = registry::verb(&view, verb)
            .ok_or_else(|| format!("{registry_url} defines no verb `{verb}`"))?;
        let (Some(define_id), Some(module)) = listed else {
            return Err(format!(
                "{registry_url} lists `{verb}` without `definedBy` and `module`"
            ));
        };
        if weft_core::model::cid::parse(define_id).is_err()
            || !weft_core::model::cid::is_artifact_id(module)
        {
            return Err(format!(
                "{registry_url} lists `{verb}` with a malformed definition or module id"
            ));
        }
        let define_url = format!("{origin}/activities/{define_id}");
        let value = self
            .fetcher
            .get_json(&define_url, &budget)
            .await
            .map_err(|e| format!("cannot fetch the definition: {e}"))?;
        let define = parse(value).map_err(|e| format!("{define_url}: {e}"))?;
        let definer = define.header.actor.clone();
        let named = |field: &str| define.json.get(field).and_then(Value::as_str);
        if define.id != define_id
            || define.header.kind != DEFINE_ACTIVITY
            || named("name") != Some(verb)
            || named("module") != Some(module)
        {
            return Err(format!(
                "{define_url} is not a DefineActivity of `{verb}` with module {module}"
            ));
        }
        if audience_origin(&definer).as_deref() != Some(origin) {
            return Err(format!(
                "the definition is signed by {definer}, who is not an actor of {origin}"
            ));
        }
        self.verify(&define, &budget)
            .await
            .map_err(|e| format!("the definition does not verify: {e}"))?;
        Ok(Found {
            define,
            definer,
            module: module.to_owned(),
        })
    }

    /// Fetches the artifact `define` names from `origin` (unless stored
    /// already), checks its bytes against its id and stores it, compiled.
    /// Answers whether it was fetched now (and so is this lookup's to
    /// remove if the definition is not admitted after all).
    async fn fetch_artifact(&self, origin: &str, define: &Signed) -> Result<bool, String> {
        let module = define
            .json
            .get("module")
            .and_then(Value::as_str)
            .filter(|m| weft_core::model::cid::is_artifact_id(m))
            .ok_or("the definition names no artifact id")?;
        let have = self
            .kernel
            .store()
            .read()
            .and_then(|r| r.artifact(module))
            .map_err(|e| e.to_string())?
            .is_some();
        if have {
            return Ok(false);
        }
        let budget = Budget::new(self.settings.fetches_per_request);
        let artifact_url = format!("{origin}/artifacts/{module}");
        let limit = self
            .kernel
            .registry()
            .map_or(0, |r| r.runtime().limits().max_artifact_bytes);
        let bytes = self
            .fetcher
            .get_bytes(&artifact_url, &budget, limit, ARTIFACT_TIMEOUT)
            .await
            .map_err(|e| format!("cannot fetch the artifact: {e}"))?;
        let actual = weft_core::model::cid::artifact_id(&bytes);
        if actual != module {
            return Err(format!(
                "the artifact served at {artifact_url} is tampered with: its bytes hash to {actual}, not {module}"
            ));
        }
        self.kernel
            .put_artifact(bytes)
            .await
            .map_err(|e| format!("the artifact is not usable: {e}"))?;
        Ok(true)
    }

    /// Fetches the artifact of an admitted definition and stores the
    /// definition; an artifact fetched for it goes again if the definition
    /// is refused after all.
    async fn admit_found(&self, origin: &str, define: Signed) -> Result<usize, String> {
        let module = define
            .json
            .get("module")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let fetched = self.fetch_artifact(origin, &define).await?;
        match admit(&self.kernel, define).await {
            Ok(released) => Ok(released),
            Err(e) => {
                if fetched {
                    forget_artifact(&self.kernel, &module).await;
                }
                Err(format!("admitting it failed: {e}"))
            }
        }
    }

    /// `weft module approve VERB`: admits a peer's verb that awaits
    /// approval, fetching its artifact now. Answers how many parked
    /// activities were ingested.
    pub async fn approve(&self, verb: &str) -> Result<usize, KernelError> {
        let kernel = &self.kernel;
        if kernel.registry().is_some_and(|r| r.verb(verb).is_some()) {
            // The verb became known here meanwhile: its parked activities go in.
            kernel
                .federation_write(vec![FederationWrite::PendingModuleDone(verb.to_owned())])
                .await?;
            return Ok(release(kernel, verb).await);
        }
        let pending = kernel
            .store()
            .read()?
            .pending_module(verb)?
            .ok_or_else(|| KernelError::NotFound(format!("a pending module for verb `{verb}`")))?;
        if pending.state != PendingState::AwaitingApproval {
            return Err(KernelError::Conflict(format!(
                "the module for `{verb}` was refused, so there is nothing to approve: {}",
                pending.reason
            )));
        }
        let define = pending
            .define
            .as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .and_then(|value| Signed::parse(value).ok())
            .ok_or_else(|| {
                KernelError::Conflict(format!("the stored definition of `{verb}` is unreadable"))
            })?;
        self.admit_found(&pending.origin, define)
            .await
            .map_err(KernelError::Conflict)
    }

    /// Whether the module policy admits `found` (and why), or what approval
    /// it waits for.
    fn allows(&self, found: &Found) -> Result<String, String> {
        let (policy, allow) = self.module_policy();
        if allow.contains(&found.module) || allow.contains(&found.definer) {
            return Ok("it is on the allow list".into());
        }
        match policy {
            Policy::Manual => Err("the module policy is `manual`: run `weft module approve`".into()),
            Policy::Allow => Err(
                "neither the module nor its definer is on the allow list: run `weft module approve`"
                    .into(),
            ),
            Policy::Followed => {
                let followed = self
                    .kernel
                    .followers(&found.definer)
                    .map_err(|e| format!("{e}; run `weft module approve` if it should be admitted"))?
                    .into_iter()
                    .find(|f| self.kernel.is_local_url(f));
                match followed {
                    Some(follower) => Ok(format!("{follower} follows its definer")),
                    None => Err(format!(
                        "no local actor follows its definer {}: run `weft module approve`",
                        found.definer
                    )),
                }
            }
        }
    }
}

impl Federation {
    /// The module policy in force: the newest `modules` policy in the log
    /// (`DefinePolicy`), or else `[federation] module_policy` and
    /// `module_allow`, the bootstrap default. Read at each admission, so a
    /// new policy applies without a restart.
    pub fn module_policy(&self) -> (Policy, Vec<String>) {
        match self.kernel.module_policy() {
            Ok(Some(spec)) => (
                match spec.policy {
                    ModulePolicy::Followed => Policy::Followed,
                    ModulePolicy::Manual => Policy::Manual,
                    ModulePolicy::Allow => Policy::Allow,
                },
                spec.allow,
            ),
            Ok(None) => (
                self.settings.module_policy,
                self.settings.module_allow.clone(),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the module policy; waiting for approval");
                (Policy::Manual, Vec::new())
            }
        }
    }
}

/// Stores an admitted definition (registering its verb), clears its
/// pending entry and ingests the activities parked for the verb; returns
/// how many were ingested.
pub async fn admit(kernel: &Kernel, define: Signed) -> Result<usize, KernelError> {
    let verb = define
        .json
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    kernel.ingest_definition(define).await?;
    kernel
        .federation_write(vec![FederationWrite::PendingModuleDone(verb.clone())])
        .await?;
    Ok(release(kernel, &verb).await)
}

/// Deletes the activities parked for `verb` and its pending module, in one
/// write; answers how many activities went. Not found when neither exists.
pub async fn discard(kernel: &Kernel, verb: &str) -> Result<usize, KernelError> {
    let reader = kernel.store().read()?;
    let parked = reader.parked(Some(verb))?;
    let pending = reader.pending_module(verb)?;
    drop(reader);
    if parked.is_empty() && pending.is_none() {
        return Err(KernelError::NotFound(format!(
            "a pending module or parked activities for verb `{verb}`"
        )));
    }
    let count = parked.len();
    let mut writes: Vec<FederationWrite> = parked
        .into_iter()
        .map(|p| FederationWrite::Unpark {
            verb: p.verb,
            id: p.id,
        })
        .collect();
    if pending.is_some() {
        writes.push(FederationWrite::PendingModuleDone(verb.to_owned()));
    }
    kernel.federation_write(writes).await?;
    // An artifact fetched for it (by a node before the policy was checked
    // first) goes too, unless something here uses it.
    if let Some(module) = pending.as_ref().and_then(|p| p.module.as_deref()) {
        forget_artifact(kernel, module).await;
    }
    tracing::info!(%verb, parked = count, "discarded a pending verb");
    Ok(count)
}

/// Removes the stored artifact `module` unless a module definition here
/// names it; a failure is only logged (the artifact then stays, unused).
async fn forget_artifact(kernel: &Kernel, module: &str) {
    if let Err(e) = kernel.remove_unused_artifact(module).await {
        tracing::warn!(%module, error = %e, "cannot remove an unused artifact");
    }
}

/// Ingests the activities parked for `verb`, now that it is known. An
/// activity its verb refuses leaves the queue (refused like any other); a
/// storage failure or a transient refusal leaves it parked.
pub async fn release(kernel: &Kernel, verb: &str) -> usize {
    let parked = match kernel.store().read().and_then(|r| r.parked(Some(verb))) {
        Ok(parked) => parked,
        Err(e) => {
            tracing::error!(%verb, error = %e, "cannot read parked activities");
            return 0;
        }
    };
    let mut ingested = 0;
    for p in parked {
        let signed = match serde_json::from_str::<Value>(&p.json)
            .map_err(|e| e.to_string())
            .and_then(|v| Signed::parse(v).map_err(|e| e.to_string()))
        {
            Ok(signed) => signed,
            Err(e) => {
                tracing::error!(id = %p.id, error = %e, "a parked activity is unreadable; dropped");
                let _ = unpark(kernel, &p).await;
                continue;
            }
        };
        match kernel
            .ingest(signed, p.recipients.clone(), p.backfilled, None)
            .await
        {
            Ok(Ingested::Stored(_)) => ingested += 1,
            Ok(_) => {}
            Err(KernelError::Rejected(r)) if r.transient || r.unknown_verb => continue,
            Err(e @ (KernelError::Rejected(_) | KernelError::Field { .. })) => {
                tracing::info!(id = %p.id, %verb, error = %e, "a parked activity was refused by its verb");
            }
            Err(e) => {
                tracing::error!(id = %p.id, error = %e, "cannot ingest a parked activity; it stays parked");
                break;
            }
        }
        if let Err(e) = unpark(kernel, &p).await {
            tracing::error!(id = %p.id, error = %e, "cannot unpark an activity");
            break;
        }
    }
    ingested
}

async fn unpark(kernel: &Kernel, p: &Parked) -> Result<(), KernelError> {
    kernel
        .federation_write(vec![FederationWrite::Unpark {
            verb: p.verb.clone(),
            id: p.id.clone(),
        }])
        .await
}
