//! The kernel: the publish pipeline over identity, envelope and store, with
//! a seam for the modules that give activities meaning.
//!
//! Publishing goes: draft → checks → sign → identity rules → verb validate
//! (on the caller's task, in order per actor, in parallel across actors) →
//! append + fold in one transaction, group-committed by the writer thread.
//! Reads go straight to the store. The kernel does not speak HTTP.

mod audience;
mod draft;
mod error;
pub mod metrics;
pub mod modules;
pub mod policy;
pub mod registry;
mod sequencer;
pub mod visibility;
pub mod workers;
mod writer;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

pub use error::KernelError;
pub use metrics::Metrics;
pub use modules::{Modules, OpenVocabulary, Rejection};

pub use audience::{addressed, audience_fields, is_public, origin as audience_origin};
use modules::Intended;
use registry::{Reaction, Registry};
use sequencer::Sequencer;
use weft_core::identity::actor::{self, Signature};
use weft_core::identity::{ActorKind, KeyStore, RsaKey, token};
use weft_core::model::Signed;
use weft_runtime::host::Source;
use weft_runtime::{Limits, Runtime};
use weft_store::{ActivityRecord, BackfillJob, Role, Store};
use writer::{Append, BatchItem, Command, Ingest, IngestBatch, Writer};
pub use writer::{BatchReport, FederationWrite, IngestLimits, Ingested, Outbound, now_ms};

/// The activity type a `follows` policy is about.
const FOLLOW: &str = "Follow";

/// Where the kernel keeps its files and how it batches.
#[derive(Debug, Clone)]
pub struct KernelOptions {
    pub db_path: PathBuf,
    pub keys_path: PathBuf,
    /// Most activities in one durable commit.
    pub max_batch: usize,
    /// The store's page cache, in MiB.
    pub cache_mb: usize,
    /// Whether every commit saves the store's allocator state
    /// ([`Store::with_quick_repair`]); when not, the writer makes the file
    /// quick to open again once it has been idle for a moment.
    pub quick_repair: bool,
}

/// A new actor and its bearer token (shown once, stored hashed).
#[derive(Debug, Clone)]
pub struct Created {
    pub id: String,
    pub name: String,
    pub token: String,
    /// The actor's signed `Create`, as JSON text.
    pub activity: String,
}

/// A signed, durably appended activity.
#[derive(Debug, Clone)]
pub struct Published {
    pub id: String,
    pub seq: u64,
    pub json: String,
}

/// What gives activities their meaning on this node: the registry of WASM
/// verbs and projections, or a fixed stand-in for it (tests, and
/// `weft run --kernel-only`). The writer sees either through the
/// [`Modules`] seam; what only the registry can answer (queries, module
/// definitions) is reached through [`Vocabulary::registry`].
#[derive(Clone)]
enum Vocabulary {
    Registry(Arc<Registry>),
    Fixed(Arc<dyn Modules>),
}

impl Vocabulary {
    /// The seam the writer and validation go through.
    fn modules(&self) -> Arc<dyn Modules> {
        match self {
            Self::Registry(registry) => registry.clone(),
            Self::Fixed(modules) => modules.clone(),
        }
    }

    fn registry(&self) -> Option<&Arc<Registry>> {
        match self {
            Self::Registry(registry) => Some(registry),
            Self::Fixed(_) => None,
        }
    }
}

/// The running kernel. Cheap to share behind an `Arc`.
pub struct Kernel {
    store: Arc<Store>,
    keys: Arc<RwLock<KeyStore>>,
    vocabulary: Vocabulary,
    sequencer: Sequencer,
    metrics: Arc<Metrics>,
    tx: Mutex<Option<mpsc::Sender<Command>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Where committed delivery jobs and backfills are announced.
    outbound: Arc<Mutex<Option<mpsc::UnboundedSender<Outbound>>>>,
    /// The node's public URL, read once from the database.
    public_url: std::sync::OnceLock<String>,
    /// Local actors' HTTP-signature keys, parsed once.
    http_keys: Mutex<std::collections::HashMap<String, Arc<RsaKey>>>,
    /// What peers may store here (per origin), shared with the writer.
    ingest_limits: Arc<RwLock<IngestLimits>>,
    /// Remote actors' shared inboxes (or none), as their kept documents
    /// say; forgotten when a document is kept anew.
    shared_inboxes: RwLock<std::collections::HashMap<String, Option<String>>>,
    /// Threads for `validate` and `query` calls.
    workers: Arc<workers::Workers>,
    /// Each policy's status, as the reconcile loop last set it.
    policy_statuses: policy::PolicyStatuses,
    /// Woken when a new policy version is published.
    policy_changed: tokio::sync::Notify,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Kernel {
    /// Opens the database and key store with `modules` (no WASM runtime)
    /// and starts the writer thread.
    pub fn open(options: &KernelOptions, modules: Arc<dyn Modules>) -> Result<Self, KernelError> {
        Self::open_with(options, &Limits::default(), |_| {
            Ok(Vocabulary::Fixed(modules))
        })
    }

    /// Opens the node with the WASM runtime: verbs and projections come from
    /// the registry in the database; compiled code is cached in `cache_dir`.
    pub fn open_wasm(
        options: &KernelOptions,
        limits: Limits,
        cache_dir: PathBuf,
    ) -> Result<Self, KernelError> {
        Self::open_with(options, &limits.clone(), |store| {
            let runtime = Arc::new(
                Runtime::new(limits, cache_dir)
                    .map_err(|e| KernelError::NotCommitted(e.to_string()))?,
            );
            Ok(Vocabulary::Registry(Arc::new(Registry::load(
                runtime,
                store.clone(),
            )?)))
        })
    }

    fn open_with(
        options: &KernelOptions,
        limits: &Limits,
        vocabulary: impl FnOnce(&Arc<Store>) -> Result<Vocabulary, KernelError>,
    ) -> Result<Self, KernelError> {
        let store = Arc::new(
            Store::open_with(
                &options.db_path,
                options.cache_mb,
                weft_store::ids::FLUSH_AT,
            )?
            .with_quick_repair(options.quick_repair),
        );
        let keys = Arc::new(RwLock::new(KeyStore::open(&options.keys_path)?));
        let vocabulary = vocabulary(&store)?;
        let (tx, rx) = mpsc::channel(4096);
        let metrics = Arc::new(Metrics::default());
        let outbound = Arc::new(Mutex::new(None));
        let ingest_limits = Arc::new(RwLock::new(IngestLimits::default()));
        let writer = Writer::new(
            store.clone(),
            keys.clone(),
            vocabulary.modules(),
            metrics.clone(),
            options.max_batch,
            outbound.clone(),
            ingest_limits.clone(),
        );
        let workers = workers::Workers::new(limits.workers, limits.worker_queue).map_err(|e| {
            KernelError::NotCommitted(format!("cannot start the worker threads: {e}"))
        })?;
        let handle = std::thread::Builder::new()
            .name("weft-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| {
                KernelError::NotCommitted(format!("cannot start the writer thread: {e}"))
            })?;
        Ok(Self {
            store,
            keys,
            vocabulary,
            sequencer: Sequencer::default(),
            metrics,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            outbound,
            ingest_limits,
            public_url: std::sync::OnceLock::new(),
            http_keys: Mutex::new(std::collections::HashMap::new()),
            shared_inboxes: RwLock::new(std::collections::HashMap::new()),
            workers: Arc::new(workers),
            policy_statuses: policy::PolicyStatuses::default(),
            policy_changed: tokio::sync::Notify::new(),
        })
    }

    /// The pool that runs module calls made for requests.
    pub fn workers(&self) -> &Arc<workers::Workers> {
        &self.workers
    }

    /// Runs the activity's verb's `validate` on the worker pool (or at
    /// once, when no module runs for it), handing the activity back with
    /// the verb's answer. `Err` only when the pool is full.
    async fn validate(
        &self,
        signed: Signed,
        json: String,
    ) -> Result<(Signed, String, Result<(), Rejection>), KernelError> {
        let modules = self.vocabulary.modules();
        if !modules.runs_module(&signed) {
            let answer = modules.validate(&signed, &json);
            return Ok((signed, json, answer));
        }
        Ok(self
            .workers
            .run(move || {
                let answer = modules.validate(&signed, &json);
                (signed, json, answer)
            })
            .await?)
    }

    /// The HTTP-signature key of the local actor `actor` and its id
    /// (`{actor}#main-key`). An actor without one yet (every actor before
    /// its first use: generating RSA keys is slow) gets one now, written to
    /// the key store before it is used.
    pub fn http_key(&self, actor: &str) -> Result<(String, Arc<RsaKey>), KernelError> {
        let key_id = weft_core::identity::rsa::key_id(actor);
        let poisoned = || KernelError::NotCommitted("the key store lock is poisoned".into());
        let mut cache = self.http_keys.lock().map_err(|_| poisoned())?;
        if let Some(key) = cache.get(actor) {
            return Ok((key_id, key.clone()));
        }
        if !self.store.read()?.has_actor(actor)? {
            return Err(KernelError::NotFound(format!("local actor {actor}")));
        }
        let rsa = |e: weft_core::identity::rsa::RsaError| KernelError::NotCommitted(e.to_string());
        let stored = self
            .keys
            .read()
            .map_err(|_| poisoned())?
            .http_key(&key_id)
            .map(<[u8]>::to_vec);
        let key = match stored {
            Some(der) => RsaKey::from_pkcs8_der(&der).map_err(rsa)?,
            None => {
                let key = RsaKey::generate().map_err(rsa)?;
                let mut keys = self.keys.write().map_err(|_| poisoned())?;
                keys.insert_http_key(key_id.clone(), key.to_pkcs8_der());
                keys.flush()?;
                key
            }
        };
        let key = Arc::new(key);
        cache.insert(actor.to_owned(), key.clone());
        Ok((key_id, key))
    }

    /// Bounds what peers' activities may take here from now on.
    pub fn set_ingest_limits(&self, limits: IngestLimits) {
        if let Ok(mut slot) = self.ingest_limits.write() {
            *slot = limits;
        }
    }

    /// Committed delivery jobs and backfills are sent to `tx` from now on.
    pub fn set_outbound(&self, tx: mpsc::UnboundedSender<Outbound>) {
        if let Ok(mut slot) = self.outbound.lock() {
            *slot = Some(tx);
        }
    }

    /// The node's public URL (fixed at `weft init`), without a trailing `/`.
    pub fn public_url(&self) -> Result<&str, KernelError> {
        if let Some(url) = self.public_url.get() {
            return Ok(url);
        }
        let url = self.store.read()?.meta("public_url")?.ok_or_else(|| {
            KernelError::NotFound("the node's public URL (run `weft init`)".into())
        })?;
        Ok(self.public_url.get_or_init(|| url))
    }

    /// Whether `actor` is an actor URL of this node (existing or not).
    pub fn is_local_url(&self, actor: &str) -> bool {
        self.public_url().is_ok_and(|base| {
            actor
                .strip_prefix(base)
                .is_some_and(|rest| rest.starts_with("/actors/"))
        })
    }

    /// The actors following `actor`, as the follower-graph projection says.
    /// [`KernelError::Unavailable`] while the follower graph is being built:
    /// an empty list then would be wrong, not merely late.
    pub fn followers(&self, actor: &str) -> Result<Vec<String>, KernelError> {
        self.graph("followers", actor)
    }

    /// The actors `actor` follows (unavailable as for [`Self::followers`]).
    pub fn following(&self, actor: &str) -> Result<Vec<String>, KernelError> {
        self.graph("following", actor)
    }

    fn graph(&self, list: &str, actor: &str) -> Result<Vec<String>, KernelError> {
        let Some(registry) = self.vocabulary.registry() else {
            return Ok(Vec::new());
        };
        let params = [("actor".to_owned(), actor.to_owned())];
        Ok(match registry.query(audience::GRAPH, list, &params, None) {
            Ok(Ok(text)) => audience::items(&text),
            Ok(Err(e)) => {
                tracing::warn!(%actor, error = ?e, "the follower graph refused a query");
                Vec::new()
            }
            Err(registry::QueryFault::Building(m)) => {
                return Err(KernelError::Unavailable(format!(
                    "who follows whom is not known until the follower graph is built: {m}"
                )));
            }
            Err(e) => {
                tracing::debug!(%actor, error = %e, "no follower graph to read");
                Vec::new()
            }
        })
    }

    /// Stores a verified activity from a peer (or pulled by backfill) for
    /// the local `recipients`: verb validate, then append, fold and react
    /// like a local one. The caller has verified the signature.
    pub async fn ingest(
        &self,
        signed: Signed,
        recipients: Vec<String>,
        backfilled: bool,
        backfill: Option<BackfillJob>,
    ) -> Result<Ingested, KernelError> {
        if signed.header.kind == registry::DEFINE_POLICY
            && self.store.read()?.activity(&signed.id)?.is_none()
        {
            return Err(KernelError::field(
                "type",
                "policies are not accepted in an inbox: a policy is its node's own and never travels",
            ));
        }
        if matches!(
            signed.header.kind.as_str(),
            registry::DEFINE_ACTIVITY | registry::DEFINE_PROJECTION
        ) && self.store.read()?.activity(&signed.id)?.is_none()
        {
            return Err(KernelError::field(
                "type",
                "module definitions are not accepted in an inbox: a node fetches a verb's definition itself when it meets the verb",
            ));
        }
        self.ingest_checked(signed, recipients, backfilled, backfill)
            .await
    }

    /// Stores a staged batch of verified activities from a peer (a sync
    /// range, a backfill) all together in one transaction, or none of it
    /// (docs/architecture.md §10): every activity passes its verb's
    /// `validate`, then the writer appends them in order and refuses the
    /// whole batch at the first fork, unlinked `prev` or quota overrun.
    /// Already-stored activities are counted as duplicates. Each item
    /// names the local actors whose inboxes get it. The caller has
    /// verified every signature. An empty batch stores nothing.
    pub async fn ingest_batch(
        &self,
        items: Vec<(Signed, Vec<String>)>,
        backfilled: bool,
    ) -> Result<BatchReport, KernelError> {
        if items.is_empty() {
            return Ok(BatchReport::default());
        }
        let modules = self.vocabulary.modules();
        let local: Vec<bool> = items
            .iter()
            .map(|(signed, _)| !backfilled && self.names_local_recipients(signed))
            .collect();
        // Validation runs on every pool thread at once, a slice each.
        let threads = self.workers.threads().max(1);
        let per = items.len().div_ceil(threads).max(1);
        let mut slices = Vec::with_capacity(threads);
        let mut items = items;
        while !items.is_empty() {
            let rest = items.split_off(per.min(items.len()));
            slices.push(std::mem::replace(&mut items, rest));
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (index, slice) in slices.into_iter().enumerate() {
            let modules = modules.clone();
            let workers = self.workers.clone();
            tasks.spawn(async move {
                let checked = workers
                    .run(move || {
                        slice
                            .into_iter()
                            .map(|(signed, recipients)| {
                                let json = signed.to_json_string();
                                let answer = if matches!(
                                    signed.header.kind.as_str(),
                                    registry::DEFINE_ACTIVITY | registry::DEFINE_PROJECTION
                                ) {
                                    Err("module definitions do not come in batches: a node fetches a verb's definition itself when it meets the verb".to_owned())
                                } else {
                                    modules.validate(&signed, &json).map_err(|e| e.to_string())
                                };
                                (signed, json, recipients, answer)
                            })
                            .collect::<Vec<_>>()
                    })
                    .await;
                (index, checked)
            });
        }
        let mut done = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (index, checked) = joined
                .map_err(|e| KernelError::NotCommitted(format!("a validation task failed: {e}")))?;
            done.push((index, checked?));
        }
        done.sort_by_key(|(index, _)| *index);
        let checked: Vec<_> = done.into_iter().flat_map(|(_, c)| c).collect();
        let mut kept = Vec::with_capacity(checked.len());
        for ((signed, json, recipients, answer), reacts) in checked.into_iter().zip(local) {
            if let Err(reason) = answer {
                // What is stored already is not refused again (its verb
                // may have changed since): the batch is resent whole.
                if self.store.read()?.activity(&signed.id)?.is_some() {
                    continue;
                }
                self.metrics
                    .rejected
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Err(KernelError::BatchRefused {
                    id: signed.id,
                    reason,
                });
            }
            kept.push(((signed, json, recipients), reacts));
        }
        let items = kept
            .into_iter()
            .map(|((signed, json, recipients), reacts)| {
                let public = signed.is_addressed_public()
                    || weft_core::identity::Lifecycle::of(&signed.json).always_public();
                let record = ActivityRecord {
                    id: signed.id.clone(),
                    json,
                    actor: signed.header.actor.clone(),
                    seq: signed.header.seq,
                    public,
                    backfilled,
                };
                BatchItem {
                    signed,
                    record,
                    recipients,
                    reacts,
                }
            })
            .collect();
        let result = self
            .call(|reply| Command::IngestBatch(Box::new(IngestBatch { items, reply })))
            .await;
        if result.is_err() {
            self.metrics
                .rejected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    /// Stores a peer's `DefineActivity` (verified, its artifact stored) that
    /// the module policy admitted, which registers its verb here. A verb
    /// this node already has is never replaced by a peer's.
    pub async fn ingest_definition(&self, signed: Signed) -> Result<Ingested, KernelError> {
        if signed.header.kind != registry::DEFINE_ACTIVITY {
            return Err(KernelError::field(
                "type",
                "only verbs (DefineActivity) travel between nodes",
            ));
        }
        if self.store.read()?.activity(&signed.id)?.is_some() {
            return Ok(Ingested::Duplicate);
        }
        let name = signed.json.get("name").and_then(Value::as_str);
        if let (Some(name), Some(registry)) = (name, self.vocabulary.registry())
            && registry.verb(name).is_some()
        {
            return Err(KernelError::field(
                "name",
                format!(
                    "this node already has a verb `{name}`; a peer's definition does not replace it"
                ),
            ));
        }
        // The checks a local definition passes: name, metadata, and an
        // artifact (stored here) that compiles as a verb within the contract.
        self.check_definition(&signed.header.actor, &signed.json, true)
            .await?;
        self.ingest_checked(signed, Vec::new(), false, None).await
    }

    async fn ingest_checked(
        &self,
        signed: Signed,
        recipients: Vec<String>,
        backfilled: bool,
        backfill: Option<BackfillJob>,
    ) -> Result<Ingested, KernelError> {
        // Duplicates are found by the writer; looking here first would cost
        // every new activity a lookup. Only a refusal asks, so that a
        // duplicate is answered as one even if its verb would now refuse it.
        let json = signed.to_json_string();
        let (signed, json, answer) = self.validate(signed, json).await?;
        if let Err(e) = answer {
            if self.store.read()?.activity(&signed.id)?.is_some() {
                return Ok(Ingested::Duplicate);
            }
            return Err(e.into());
        }
        let public = signed.is_addressed_public()
            || weft_core::identity::Lifecycle::of(&signed.json).always_public();
        let record = ActivityRecord {
            id: signed.id.clone(),
            json,
            actor: signed.header.actor.clone(),
            seq: signed.header.seq,
            public,
            backfilled,
        };
        let reacts = !backfilled && self.names_local_recipients(&signed);
        let result = self
            .call(|reply| {
                Command::Ingest(Box::new(Ingest {
                    signed,
                    record,
                    recipients,
                    backfill,
                    reacts,
                    reply,
                }))
            })
            .await;
        if result.is_err() {
            self.metrics
                .rejected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    /// Writes federation bookkeeping (peers, jobs, backfills) durably.
    pub async fn federation_write(&self, writes: Vec<FederationWrite>) -> Result<(), KernelError> {
        if writes.is_empty() {
            return Ok(());
        }
        if let Ok(mut known) = self.shared_inboxes.write() {
            for write in &writes {
                if let FederationWrite::Peer(peer) = write {
                    known.remove(&peer.id);
                }
            }
        }
        self.call(|reply| Command::Federation { writes, reply })
            .await
    }

    /// Whether a stored activity stays whatever a `keep` rule says: one
    /// that names a local actor in its audience (`to`, `cc`, `bto`, `bcc`,
    /// `audience`) or as its `object` — a mention, a direct message, a
    /// Follow of a local actor or the Accept of a local actor's Follow.
    /// Pruning takes what an author published to its followers or the
    /// public, never the conversation with this node's actors.
    fn spare_predicate(&self) -> Box<dyn Fn(&ActivityRecord) -> bool + Send> {
        let Ok(base) = self
            .public_url()
            .map(|b| format!("{}/actors/", b.trim_end_matches('/')))
        else {
            // No public URL: nothing can be told apart, so nothing goes.
            return Box::new(|_| true);
        };
        Box::new(move |record: &ActivityRecord| {
            let Ok(json) = serde_json::from_str::<Value>(&record.json) else {
                return true;
            };
            let local = |v: &Value| v.as_str().is_some_and(|s| s.starts_with(&base));
            ["to", "cc", "bto", "bcc", "audience", "object"]
                .iter()
                .filter_map(|field| json.get(field))
                .any(|v| match v {
                    Value::Array(items) => items.iter().any(local),
                    v => local(v),
                })
        })
    }

    /// The remote authors of `origin` with activities here published
    /// before `before_ms` that a prune would take (not spared), each with
    /// the oldest such `published`.
    pub fn held_before(
        &self,
        origin: &str,
        before_ms: u64,
    ) -> Result<std::collections::BTreeMap<String, u64>, KernelError> {
        let spare = self.spare_predicate();
        let mut held = self.store.read()?.held_before(origin, before_ms, &*spare)?;
        held.retain(|actor, _| !self.is_local_url(actor));
        Ok(held)
    }

    /// Deletes each remote author's activities published before its time
    /// (`(author, before_ms)`), except those that name a local actor, and
    /// rebuilds every projection from what stays (docs/architecture.md
    /// §10, a `replication` policy's `keep`). Local actors' logs are never
    /// pruned: naming one is refused.
    pub async fn prune(
        &self,
        prunes: Vec<(String, u64)>,
    ) -> Result<weft_store::Pruned, KernelError> {
        let mut with_origin = Vec::with_capacity(prunes.len());
        for (actor, before_ms) in prunes {
            if self.is_local_url(&actor) {
                return Err(KernelError::Conflict(format!(
                    "{actor} is a local actor: its log is never pruned"
                )));
            }
            let origin = weft_core::model::origin(&actor)
                .ok_or_else(|| KernelError::NotFound(format!("{actor} is not an actor URL")))?;
            with_origin.push((origin, actor, before_ms));
        }
        if with_origin.is_empty() {
            return Ok(weft_store::Pruned::default());
        }
        let inboxes = self.local_actors()?;
        let spare = self.spare_predicate();
        self.call(|reply| {
            Command::Prune(Box::new(writer::Prune {
                prunes: with_origin,
                inboxes,
                spare,
                reply,
            }))
        })
        .await
    }

    /// The verb and projection registry, when the WASM runtime is on.
    pub fn registry(&self) -> Option<&Arc<Registry>> {
        self.vocabulary.registry()
    }

    /// The node's own Service actor.
    pub fn service_actor(&self) -> Result<String, KernelError> {
        self.store.read()?.meta("service_actor")?.ok_or_else(|| {
            KernelError::NotFound("the node's service actor (run `weft init`)".into())
        })
    }

    /// Every policy's current version, by name (docs/architecture.md §10):
    /// what the reconcile loop evaluates.
    pub fn policies(&self) -> Result<Vec<policy::Policy>, KernelError> {
        Ok(self
            .store
            .read()?
            .policies()?
            .iter()
            .filter_map(|record| {
                policy::Policy::from_version(&record.name, record.versions.last()?)
            })
            .collect())
    }

    /// Policy `name`'s current version.
    pub fn policy(&self, name: &str) -> Result<Option<policy::Policy>, KernelError> {
        Ok(self
            .store
            .read()?
            .policy(name)?
            .and_then(|record| policy::Policy::from_version(&record.name, record.versions.last()?)))
    }

    /// The newest `modules` policy in the log (the highest position), which
    /// overrides `[federation] module_policy` and `module_allow`; `None`
    /// while the log has none and the configuration decides.
    pub fn module_policy(&self) -> Result<Option<policy::ModulesSpec>, KernelError> {
        Ok(self
            .policies()?
            .into_iter()
            .filter(|p| p.kind == policy::Kind::Modules)
            .max_by_key(|p| p.position)
            .and_then(|p| match p.spec {
                policy::Spec::Modules(spec) => Some(spec),
                _ => None,
            }))
    }

    /// How Follows of local actors are answered: the newest `follows`
    /// policy's `accept`, or `auto` (by the Follow verb) without one.
    pub fn follows_policy(&self) -> Result<policy::Accept, KernelError> {
        Ok(self
            .policies()?
            .into_iter()
            .filter(|p| p.kind == policy::Kind::Follows)
            .max_by_key(|p| p.position)
            .and_then(|p| match p.spec {
                policy::Spec::Follows(spec) => Some(spec.accept),
                _ => None,
            })
            .unwrap_or(policy::Accept::Auto))
    }

    /// Follows of local actors that wait for the operator's answer (the
    /// `follows` policy holds them), oldest first.
    pub fn pending_follows(&self) -> Result<Vec<policy::PendingFollow>, KernelError> {
        Ok(self
            .follow_reactions()?
            .into_iter()
            .filter(|r| self.holds_follow(&r.signed))
            .map(|r| policy::PendingFollow::of(&r.signed))
            .collect())
    }

    /// Hands the held Follows that the `follows` policy no longer holds (it
    /// was just redefined) back to the reactions task, which answers them
    /// as their verb asks: a new policy applies to them without a restart.
    fn release_follows(&self) {
        let Some(registry) = self.vocabulary.registry() else {
            return;
        };
        match self.follow_reactions() {
            Ok(reactions) => {
                for reaction in reactions {
                    if !self.holds_follow(&reaction.signed) {
                        registry.requeue(reaction);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the held Follows; they are answered at the next start");
            }
        }
    }

    /// The reactions to Follows not yet answered.
    fn follow_reactions(&self) -> Result<Vec<Reaction>, KernelError> {
        let pending = self.store.read()?.pending_reactions()?;
        Ok(pending
            .into_iter()
            .filter_map(|(position, record)| {
                let signed = serde_json::from_str(&record.json)
                    .ok()
                    .and_then(|v| Signed::parse(v).ok())?;
                (signed.header.kind == FOLLOW).then_some(Reaction {
                    position,
                    signed,
                    json: record.json,
                    intents: None,
                })
            })
            .collect())
    }

    /// The pending Follow `id` (its content id or URL), held by the
    /// `follows` policy.
    fn pending_follow(&self, id: &str) -> Result<Reaction, KernelError> {
        let wanted = weft_core::model::cid::internal(id);
        self.follow_reactions()?
            .into_iter()
            .find(|r| {
                weft_core::model::cid::internal(&r.signed.id) == wanted
                    && self.holds_follow(&r.signed)
            })
            .ok_or_else(|| KernelError::NotFound(format!("a pending Follow {id}")))
    }

    /// Answers the pending Follow `id` as its verb would have: publishes
    /// the intents its `react` asks for now (the Accept), the last one
    /// with the removal of the Follow's pending row, in one transaction.
    pub async fn approve_follow(&self, id: &str) -> Result<Vec<Published>, KernelError> {
        let reaction = self.pending_follow(id)?;
        let mut intents = self.react(&reaction);
        let Some((actor, draft)) = intents.pop() else {
            self.federation_write(vec![FederationWrite::ReactionDone(reaction.position)])
                .await?;
            return Err(KernelError::Conflict(format!(
                "the Follow {id} asks nothing of its verb any more (its actor is gone?); it is no longer pending"
            )));
        };
        let mut published = Vec::new();
        for (actor, draft) in intents {
            published.push(
                self.publish_inner_checked(&actor, draft, None, false)
                    .await?,
            );
        }
        published.push(
            self.publish_inner_checked(&actor, draft, Some(reaction.position), false)
                .await?,
        );
        Ok(published)
    }

    /// Rejects the pending Follow `id`: its followed actor publishes a
    /// `Reject` of it, to the follower, which removes the Follow's pending
    /// row in the same transaction.
    pub async fn reject_follow(&self, id: &str) -> Result<Published, KernelError> {
        let reaction = self.pending_follow(id)?;
        let pending = policy::PendingFollow::of(&reaction.signed);
        if !self.is_local_url(&pending.followed)
            || !self.store.read()?.has_actor(&pending.followed)?
        {
            return Err(KernelError::Conflict(format!(
                "the Follow {id} is not of an actor of this node"
            )));
        }
        let draft = serde_json::json!({
            "type": "Reject",
            "object": reaction.signed.id,
            "to": [pending.follower],
        });
        let Value::Object(draft) = draft else {
            unreachable!("json! of an object is an object")
        };
        self.publish_inner_checked(&pending.followed, draft, Some(reaction.position), false)
            .await
    }

    /// The statuses the reconcile loop sets (`set(name, status)`) and the
    /// operator's endpoints read.
    pub fn policy_statuses(&self) -> &policy::PolicyStatuses {
        &self.policy_statuses
    }

    /// Policy `name`'s status: as the reconcile loop last set it for its
    /// current version, or else not evaluated (both conditions `Unknown`).
    /// Not found when there is no such policy.
    pub fn policy_status(&self, name: &str) -> Result<policy::PolicyStatus, KernelError> {
        let current = self
            .policy(name)?
            .ok_or_else(|| KernelError::NotFound(format!("policy `{name}`")))?;
        Ok(match self.policy_statuses.get(name) {
            Some(status) if status.version == current.version => status,
            _ => policy::PolicyStatus::not_evaluated(&current, &current.published),
        })
    }

    /// Stores an artifact (a WASM component) under its BLAKE3 content
    /// address, after checking that it compiles. Returns its id.
    pub async fn put_artifact(&self, bytes: Vec<u8>) -> Result<String, KernelError> {
        let registry =
            self.vocabulary.registry().cloned().ok_or_else(|| {
                KernelError::field("module", "this node runs without a WASM runtime")
            })?;
        let id = weft_core::model::cid::artifact_id(&bytes);
        let (checked_id, bytes) = tokio::task::spawn_blocking(move || {
            // Compiled on the engine its definition will run it on: a
            // built-in's is not the one other modules' run on.
            let reuse = registry::reuse_of(&id);
            let result = registry.runtime().check_component(&id, &bytes, reuse);
            (result.map(|()| id), bytes)
        })
        .await
        .map_err(|e| KernelError::NotCommitted(e.to_string()))?;
        let id = checked_id.map_err(KernelError::Module)?;
        let reply_id = id.clone();
        self.call(|reply| Command::PutArtifact { id, bytes, reply })
            .await?;
        Ok(reply_id)
    }

    /// Removes the stored artifact `id` unless a module defined here uses
    /// it (an artifact fetched for a peer's verb that was then refused or
    /// discarded).
    pub async fn remove_unused_artifact(&self, id: &str) -> Result<(), KernelError> {
        self.federation_write(vec![FederationWrite::RemoveUnusedArtifact(id.to_owned())])
            .await
    }

    /// Refolds projection `name` from the whole log; returns how many
    /// activities it folded.
    pub async fn rebuild(&self, name: &str) -> Result<u64, KernelError> {
        self.call(|reply| Command::Rebuild {
            name: name.to_owned(),
            reply,
        })
        .await
    }

    /// Registers the genesis bundle (built-in verbs and projections) as
    /// Define activities of the service actor — the same path as a user's.
    pub async fn install_genesis(&self) -> Result<(), KernelError> {
        self.install_builtins(false).await.map(|_| ())
    }

    /// Registers the built-in verbs and projections a node made by an
    /// older weft lacks (a new release may bring new ones, such as the
    /// fediverse's `Like` and `Delete`); answers their names. Modules the
    /// node has, built in or not, are left alone.
    pub async fn install_missing_builtins(&self) -> Result<Vec<&'static str>, KernelError> {
        self.install_builtins(true).await
    }

    async fn install_builtins(&self, only_missing: bool) -> Result<Vec<&'static str>, KernelError> {
        let service = self.service_actor()?;
        let mut installed = Vec::new();
        for (world, name, bytes) in weft_genesis::GENESIS {
            if only_missing {
                let Some(registry) = self.vocabulary.registry() else {
                    return Ok(installed);
                };
                let known = if *world == "verb" {
                    registry.verb(name).is_some()
                } else {
                    registry.projection(name).is_some()
                };
                if known {
                    continue;
                }
            }
            let artifact = self.put_artifact(bytes.to_vec()).await?;
            let (kind, contract) = if *world == "verb" {
                (
                    registry::DEFINE_ACTIVITY,
                    weft_runtime::Contract::newest(weft_store::ModuleKind::Verb),
                )
            } else {
                (
                    registry::DEFINE_PROJECTION,
                    weft_runtime::Contract::newest(weft_store::ModuleKind::Projection),
                )
            };
            let mut draft = serde_json::json!({
                "type": kind,
                "name": name,
                "module": artifact,
                "description": format!("built-in {world} `{name}` (genesis bundle)"),
                "wit": contract.package(),
                "language": "rust",
                "to": [weft_core::model::PUBLIC],
            });
            if let Some((_, folds)) = weft_genesis::FOLDS.iter().find(|(n, _)| n == name) {
                draft["folds"] = (*folds).into();
            }
            if *world == "verb" && !weft_genesis::REACTING.contains(name) {
                draft["reacts"] = false.into();
            }
            let Value::Object(draft) = draft else {
                unreachable!("json! of an object is an object")
            };
            self.publish(&service, draft).await?;
            installed.push(*name);
        }
        Ok(installed)
    }

    /// Runs verbs' `react` for local recipients of committed activities and
    /// publishes their intents. Call once, from within a tokio runtime.
    pub fn start_reactions(self: &Arc<Self>) {
        let Some(registry) = self.vocabulary.registry().cloned() else {
            return;
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Reaction>();
        // Reactions a crash interrupted come first.
        match self.store.read().and_then(|r| r.pending_reactions()) {
            Ok(pending) => {
                if !pending.is_empty() {
                    tracing::info!(count = pending.len(), "resuming interrupted reactions");
                }
                for (position, record) in pending {
                    let signed = serde_json::from_str(&record.json)
                        .ok()
                        .and_then(|v| Signed::parse(v).ok());
                    if let Some(signed) = signed {
                        let _ = tx.send(Reaction {
                            position,
                            signed,
                            json: record.json,
                            intents: None,
                        });
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the interrupted reactions"),
        }
        registry.set_reactions(tx);
        let kernel = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ready = Vec::new();
            while rx.recv_many(&mut ready, 256).await > 0 {
                let Some(kernel) = kernel.upgrade() else {
                    break;
                };
                // Reactions with nothing to publish are closed together,
                // in one write.
                let mut done = Vec::new();
                for reaction in ready.drain(..) {
                    if let Some(position) = kernel.run_reaction(&reaction).await {
                        done.push(FederationWrite::ReactionDone(position));
                    }
                }
                if let Err(e) = kernel.federation_write(done).await {
                    tracing::debug!(error = %e, "reactions left for the next start");
                }
            }
        });
    }

    /// Whether the Follow `signed` waits for the operator (`weft follow
    /// approve|reject`) rather than being answered by its verb's intents,
    /// as the newest `follows` policy says: `manual`, every Follow;
    /// `followed`, a Follow from an actor no local actor follows (or when
    /// that cannot be told now); `auto` or no policy, none.
    fn holds_follow(&self, signed: &Signed) -> bool {
        if signed.header.kind != FOLLOW {
            return false;
        }
        match self.follows_policy() {
            Ok(policy::Accept::Auto) => false,
            Ok(policy::Accept::Manual) => true,
            Ok(policy::Accept::Followed) => !self
                .followers(&signed.header.actor)
                .is_ok_and(|f| f.iter().any(|f| self.is_local_url(f))),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the follows policy; the Follow waits for approval");
                true
            }
        }
    }

    /// Publishes the intents of one reaction; the last one removes the
    /// reaction's row in the same transaction. With no intents (or one
    /// refused for good) answers the position whose row the caller removes.
    /// A storage failure leaves the row, so the reaction runs again at the
    /// next start.
    async fn run_reaction(&self, reaction: &Reaction) -> Option<u64> {
        if self.holds_follow(&reaction.signed) {
            // Its row stays, so the hold outlives a restart; the operator's
            // answer removes it.
            tracing::info!(follow = %reaction.signed.id, follower = %reaction.signed.header.actor, "a Follow waits for `weft follow approve|reject` (follows policy)");
            return None;
        }
        let mut intents = match &reaction.intents {
            Some(intents) => intents.clone(),
            None => self.react(reaction),
        };
        let last = intents.pop();
        for (actor, draft) in intents {
            if let Err(e) = self.publish_inner_checked(&actor, draft, None, false).await {
                tracing::warn!(%actor, error = %e, "a reaction could not be published");
            }
        }
        let Some((actor, draft)) = last else {
            // Nothing to publish: the caller closes the row.
            return Some(reaction.position);
        };
        match self
            .publish_inner_checked(&actor, draft, Some(reaction.position), false)
            .await
        {
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(%actor, error = %e, "a reaction could not be published");
                // Refused for good: do not run it again at every start.
                let transient = matches!(
                    e,
                    KernelError::Store(_)
                        | KernelError::NotCommitted(_)
                        | KernelError::ShuttingDown
                );
                (!transient).then_some(reaction.position)
            }
        }
    }

    /// Whether local actors other than the author are named in `to`, `cc`
    /// or `object`, and the activity's verb reacts at all (its definition
    /// does not say `"reacts": false`): their verbs may react once it is
    /// durable.
    fn names_local_recipients(&self, signed: &Signed) -> bool {
        self.vocabulary
            .registry()
            .is_some_and(|r| r.reacts(signed.verb()))
            && !registry::kernel_native(signed)
            && addressed(&signed.json)
                .into_iter()
                .any(|r| r != signed.header.actor && self.is_local_url(r))
    }

    /// The intents local recipients' verbs produce for a reaction resumed
    /// after a restart, asked again from a committed snapshot.
    fn react(&self, reaction: &Reaction) -> Vec<Intended> {
        let Some(registry) = self.vocabulary.registry() else {
            return Vec::new();
        };
        let Ok(reader) = self.store.read() else {
            return Vec::new();
        };
        let mut source = Source::Later(self.store.clone());
        registry.intents(
            &reaction.signed,
            &reaction.json,
            |r| matches!(reader.has_actor(r), Ok(true)),
            &mut source,
        )
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether `weft init` has run on this database.
    /// The ids of this node's local actors (the service actor included),
    /// in name order.
    pub fn local_actors(&self) -> Result<Vec<String>, KernelError> {
        let base = self.public_url()?.trim_end_matches('/').to_owned();
        Ok(self
            .store
            .read()?
            .local_names()?
            .into_iter()
            .map(|name| format!("{base}/actors/{name}"))
            .collect())
    }

    /// The store's page cache, in bytes.
    pub fn cache_bytes(&self) -> usize {
        self.store.cache_bytes()
    }

    /// Whether the node can serve: its store answers a read, and its
    /// writer thread is running and taking commands. Why not, otherwise.
    pub fn readiness(&self) -> Result<(), String> {
        let reader = self
            .store
            .read()
            .map_err(|e| format!("the store cannot be read: {e}"))?;
        reader
            .meta("service_actor")
            .map_err(|e| format!("the store cannot be read: {e}"))?
            .ok_or("the node is not initialised (run `weft init`)")?;
        let alive = self
            .writer
            .lock()
            .map_err(|_| "the writer's handle is poisoned".to_owned())?
            .as_ref()
            .is_some_and(|handle| !handle.is_finished());
        if !alive {
            return Err("the writer has stopped: nothing can be written".into());
        }
        let open = self.sender().is_ok_and(|tx| !tx.is_closed());
        if !open {
            return Err("the node is shutting down".into());
        }
        Ok(())
    }

    pub fn is_initialised(&self) -> Result<bool, KernelError> {
        Ok(self.store.read()?.meta("service_actor")?.is_some())
    }

    /// Initialises a new node: its service actor (type Service, named
    /// `service`) and the admin token, both in one commit.
    pub async fn bootstrap(
        &self,
        service: &str,
        public_url: &str,
        admin_token: &str,
    ) -> Result<Created, KernelError> {
        check_name(service)?;
        let public_url = public_url.trim_end_matches('/').to_owned();
        let admin_token_hash = token::hash(admin_token);
        self.call(|reply| Command::Bootstrap {
            service: service.to_owned(),
            admin_token_hash,
            public_url,
            reply,
        })
        .await
    }

    /// Creates a local actor: its `Create` as seq 1 of its log, a key, a token.
    pub async fn create_actor(&self, name: &str, kind: ActorKind) -> Result<Created, KernelError> {
        check_name(name)?;
        self.call(|reply| Command::CreateActor {
            name: name.to_owned(),
            kind,
            reply,
        })
        .await
    }

    /// Issues a new bearer token for the local actor `name` and revokes
    /// every token it had (a lost or leaked one): answers the actor's id
    /// and the token, which is shown once and kept only as its hash.
    pub async fn reissue_token(&self, name: &str) -> Result<(String, String), KernelError> {
        let actor = self.store.read()?.actor_id_by_name(name)?.ok_or_else(|| {
            KernelError::NotFound(format!("no actor named `{name}` on this node"))
        })?;
        let token = token::generate();
        let hash = token::hash(&token);
        self.call(|reply| Command::ReissueToken {
            actor: actor.clone(),
            hash,
            reply,
        })
        .await?;
        Ok((actor, token))
    }

    /// Signs and appends a draft as `actor` (an actor id). Answers once the
    /// activity is durable.
    pub async fn publish(
        &self,
        actor: &str,
        draft: Map<String, Value>,
    ) -> Result<Published, KernelError> {
        let policy = is_policy(&draft);
        let published = self
            .publish_inner_checked(actor, draft, None, false)
            .await?;
        if policy {
            self.policy_changed.notify_waiters();
        }
        Ok(published)
    }

    /// Resolves when a new policy version is published next (the
    /// reconcile loop evaluates at once).
    pub fn policy_changed(&self) -> impl std::future::Future<Output = ()> + '_ {
        self.policy_changed.notified()
    }

    /// Publishes as `actor` on the operator's behalf (the admin token or
    /// the data folder): the only way an actor other than the service actor
    /// defines a module.
    pub async fn publish_by_admin(
        &self,
        actor: &str,
        draft: Map<String, Value>,
    ) -> Result<Published, KernelError> {
        let policy = is_policy(&draft);
        let published = self.publish_inner_checked(actor, draft, None, true).await?;
        if policy {
            self.policy_changed.notify_waiters();
        }
        Ok(published)
    }

    /// Publishes; `completes` names the reaction whose last intent this is.
    async fn publish_inner_checked(
        &self,
        actor: &str,
        draft: Map<String, Value>,
        completes: Option<u64>,
        by_admin: bool,
    ) -> Result<Published, KernelError> {
        let follows_policy = draft.get("type").and_then(Value::as_str)
            == Some(registry::DEFINE_POLICY)
            && draft.get("kind").and_then(Value::as_str) == Some(policy::Kind::Follows.as_str());
        let mut draft = draft;
        let result = match self.check_definition(actor, &draft, by_admin).await {
            Ok(contract) => {
                // A definition says which contract its module is built
                // against: what the node found, when the draft does not say.
                if let Some(contract) = contract {
                    draft
                        .entry("wit")
                        .or_insert_with(|| contract.package().into());
                }
                self.publish_inner(actor, draft, completes).await
            }
            Err(e) => Err(e),
        };
        if follows_policy && result.is_ok() {
            self.release_follows();
        }
        if result.is_err() {
            self.metrics
                .rejected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    /// A Define activity must come from the service actor (or another local
    /// actor on the operator's behalf: `weft module add --as`), name a valid
    /// module, and point at an artifact that compiles as that kind of module
    /// and imports nothing outside the contract. A `DefinePolicy` comes from
    /// the same actors, and its spec must pass its kind's schema
    /// ([`policy::check_draft`]). Compiling happens here, off
    /// the async threads, before the actor's position is taken.
    /// Answers the contract version of a verb's or projection's module.
    async fn check_definition(
        &self,
        actor: &str,
        draft: &Map<String, Value>,
        by_admin: bool,
    ) -> Result<Option<weft_runtime::Contract>, KernelError> {
        let kind = match draft.get("type").and_then(Value::as_str) {
            Some(registry::DEFINE_ACTIVITY) => weft_store::ModuleKind::Verb,
            Some(registry::DEFINE_PROJECTION) => weft_store::ModuleKind::Projection,
            Some(registry::DEFINE_POLICY) => {
                if !by_admin && actor != self.service_actor()? {
                    return Err(KernelError::field(
                        "actor",
                        "policies are defined by the node's operator: use `weft policy define` (admin token)",
                    ));
                }
                return policy::check_draft(draft)
                    .map(|_| None)
                    .map_err(|e| KernelError::field(e.field, e.message));
            }
            _ => return Ok(None),
        };
        let registry =
            self.vocabulary.registry().cloned().ok_or_else(|| {
                KernelError::field("type", "this node runs without a WASM runtime")
            })?;
        if !by_admin && actor != self.service_actor()? {
            return Err(KernelError::field(
                "actor",
                "modules are defined by the node's operator: use `weft module add` (admin token)",
            ));
        }
        let name = draft.get("name").and_then(Value::as_str).ok_or_else(|| {
            KernelError::field("name", "is required: the verb or projection name")
        })?;
        registry::check_module_name(name).map_err(|m| KernelError::field("name", m))?;
        registry::check_metadata(draft).map_err(|(field, m)| KernelError::field(field, m))?;
        let replaces = match draft.get("replaces") {
            None => None,
            Some(Value::String(r)) => Some(r.as_str()),
            Some(_) => {
                return Err(KernelError::field(
                    "replaces",
                    "must be the module id (artifact) of the version it replaces",
                ));
            }
        };
        registry
            .check_redefinition(kind, name, replaces)
            .map_err(|(field, m)| KernelError::field(field, m))?;
        let artifact = draft
            .get("module")
            .and_then(Value::as_str)
            .filter(|m| weft_core::model::cid::is_artifact_id(m))
            .ok_or_else(|| {
                KernelError::field(
                    "module",
                    "must be the id of an uploaded artifact (POST /artifacts)",
                )
            })?
            .to_owned();
        let checked = tokio::task::spawn_blocking(move || registry.check_artifact(kind, &artifact))
            .await
            .map_err(|e| KernelError::NotCommitted(e.to_string()))?;
        let contract = checked.map_err(|m| KernelError::field("module", m))?;
        match draft.get("wit").and_then(Value::as_str) {
            Some(declared) if declared != contract.package() => Err(KernelError::field(
                "wit",
                format!(
                    "says {declared}, but the module is built against {}: leave `wit` out, or say {}",
                    contract.package(),
                    contract.package()
                ),
            )),
            _ => Ok(Some(contract)),
        }
    }

    async fn publish_inner(
        &self,
        actor: &str,
        draft: Map<String, Value>,
        completes: Option<u64>,
    ) -> Result<Published, KernelError> {
        let mut slot = self.sequencer.lock(actor).await;
        let state = match slot.state() {
            Some(state) => state.clone(),
            None => self
                .store
                .read()?
                .actor(actor)?
                .ok_or_else(|| KernelError::NotFound(format!("actor {actor}")))?,
        };
        let prepared = draft::prepare(draft, &state, &now_after(&state.last_published))?;
        let seq = state.tip_seq + 1;
        let purpose = prepared.lifecycle.purpose();
        let key = state.key_for(seq, purpose).ok_or_else(|| {
            KernelError::field(
                "proof",
                format!(
                    "{} has no valid key with the `{}` purpose",
                    state.username,
                    purpose.as_str()
                ),
            )
        })?;
        let signed = {
            let keys = self
                .keys
                .read()
                .map_err(|_| KernelError::NotCommitted("the key store lock is poisoned".into()))?;
            let secret = keys
                .get(&key.id)
                .ok_or_else(|| KernelError::MissingSecret(key.id.clone()))?;
            Signed::sign(prepared.json, &key.id, secret)?.with_url_id()
        };
        let mut next = actor::apply(Some(&state), &signed, Signature::Trusted)?;
        let json = signed.to_json_string();
        let (signed, json, answer) = self.validate(signed, json).await?;
        answer?;
        let audience = self.audience(&signed)?;
        let reacts = self.names_local_recipients(&signed);

        // Every check passed: hand the activity to the writer.
        if !prepared.fresh_keys.is_empty() {
            let mut keys = self
                .keys
                .write()
                .map_err(|_| KernelError::NotCommitted("the key store lock is poisoned".into()))?;
            for (id, key) in prepared.fresh_keys {
                keys.insert(id, key);
            }
        }
        let public = signed.is_addressed_public() || prepared.lifecycle.always_public();
        let public_rank = public.then(|| {
            next.public_count += 1;
            next.public_count
        });
        let record = ActivityRecord {
            id: signed.id.clone(),
            json: json.clone(),
            actor: next.id.clone(),
            seq,
            public,
            backfilled: false,
        };
        let id = signed.id.clone();
        let (reply, answer) = oneshot::channel();
        let append = Append {
            signed,
            record,
            state: next.clone(),
            public_rank,
            local: audience.local,
            remote: audience.remote,
            reacts,
            completes,
            reply,
        };
        self.sender()?
            .send(Command::Append(Box::new(append)))
            .await
            .map_err(|_| KernelError::ShuttingDown)?;
        slot.advance(next);
        drop(slot);

        match answer
            .await
            .map_err(|_| KernelError::ShuttingDown)
            .and_then(|r| r)
        {
            Ok(()) => Ok(Published { id, seq, json }),
            Err(e) => {
                // The log did not move: forget what was assumed past it.
                self.sequencer.forget_from(actor, seq).await;
                Err(e)
            }
        }
    }

    /// Who `token` speaks for, if anyone.
    pub fn authenticate(&self, token: &str) -> Result<Option<Role>, KernelError> {
        Ok(self.store.read()?.role(&token::hash(token))?)
    }

    /// Stops accepting writes, lets the writer finish what it has, and waits.
    pub fn close(&self) {
        // An explicit stop: clones of the sender held by in-flight requests
        // must not keep the writer (and this join) waiting.
        if let Some(tx) = self.tx.lock().ok().and_then(|mut tx| tx.take())
            && let Err(mpsc::error::TrySendError::Full(stop)) = tx.try_send(Command::Stop)
        {
            // A full queue drains on its own; queue the stop behind it
            // without blocking a possibly async caller.
            std::thread::spawn(move || tx.blocking_send(stop));
        }
        let handle = self.writer.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            tracing::error!("the writer thread panicked");
        }
    }

    fn sender(&self) -> Result<mpsc::Sender<Command>, KernelError> {
        self.tx
            .lock()
            .ok()
            .and_then(|tx| tx.clone())
            .ok_or(KernelError::ShuttingDown)
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, KernelError>>) -> Command,
    ) -> Result<T, KernelError> {
        let tx = self.sender()?;
        let (reply, answer) = oneshot::channel();
        tx.send(make(reply))
            .await
            .map_err(|_| KernelError::ShuttingDown)?;
        answer.await.map_err(|_| KernelError::ShuttingDown)?
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        self.close();
    }
}

/// Local usernames: 1–64 of `a-z 0-9 _ -`, starting with a letter or digit.
/// Whether `draft` defines a policy.
fn is_policy(draft: &Map<String, Value>) -> bool {
    draft.get("type").and_then(Value::as_str) == Some(registry::DEFINE_POLICY)
}

pub fn check_name(name: &str) -> Result<(), KernelError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(KernelError::field(
            "name",
            format!(
                "`{name}` is not a valid actor name: use 1–64 of a-z, 0-9, `_` and `-`, starting with a letter or digit"
            ),
        ))
    }
}

/// Now, as `published` is written, but never before `last` (the actor's
/// previous activity), so a log's timestamps never go backwards.
fn now_after(last: &str) -> String {
    let now = humantime::format_rfc3339_millis(weft_core::clock::now()).to_string();
    if now.as_str() < last {
        last.to_owned()
    } else {
        now
    }
}
