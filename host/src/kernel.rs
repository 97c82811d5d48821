//! The kernel: the publish pipeline over identity, envelope and store, with
//! a seam for the modules that give activities meaning.
//!
//! Publishing goes: draft → checks → sign → identity rules → verb validate
//! (on the caller's task, in order per actor, in parallel across actors) →
//! append + fold in one transaction, group-committed by the writer thread.
//! Reads go straight to the store. The kernel does not speak HTTP.

mod draft;
mod error;
pub mod metrics;
pub mod modules;
mod sequencer;
mod writer;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

pub use error::KernelError;
pub use metrics::Metrics;
pub use modules::{Modules, OpenVocabulary, Rejection};

use crate::identity::actor::{self, Signature};
use crate::identity::{ActorKind, KeyStore, token};
use crate::model::Signed;
use crate::store::{ActivityRecord, Role, Store};
use sequencer::Sequencer;
use writer::{Append, Command, Writer};

/// Where the kernel keeps its files and how it batches.
#[derive(Debug, Clone)]
pub struct KernelOptions {
    pub db_path: PathBuf,
    pub keys_path: PathBuf,
    /// Most activities in one durable commit.
    pub max_batch: usize,
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

/// The running kernel. Cheap to share behind an `Arc`.
pub struct Kernel {
    store: Arc<Store>,
    keys: Arc<RwLock<KeyStore>>,
    modules: Arc<dyn Modules>,
    sequencer: Sequencer,
    metrics: Arc<Metrics>,
    tx: Mutex<Option<mpsc::Sender<Command>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Kernel {
    /// Opens the database and key store and starts the writer thread.
    pub fn open(options: &KernelOptions, modules: Arc<dyn Modules>) -> Result<Self, KernelError> {
        let store = Arc::new(Store::open(&options.db_path)?);
        let keys = Arc::new(RwLock::new(KeyStore::open(&options.keys_path)?));
        let (tx, rx) = mpsc::channel(4096);
        let metrics = Arc::new(Metrics::default());
        let writer = Writer::new(
            store.clone(),
            keys.clone(),
            modules.clone(),
            metrics.clone(),
            options.max_batch,
        );
        let handle = std::thread::Builder::new()
            .name("weft-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| {
                KernelError::NotCommitted(format!("cannot start the writer thread: {e}"))
            })?;
        Ok(Self {
            store,
            keys,
            modules,
            sequencer: Sequencer::default(),
            metrics,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether `weft init` has run on this database.
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

    /// Signs and appends a draft as `actor` (an actor id). Answers once the
    /// activity is durable.
    pub async fn publish(
        &self,
        actor: &str,
        draft: Map<String, Value>,
    ) -> Result<Published, KernelError> {
        let result = self.publish_inner(actor, draft).await;
        if result.is_err() {
            self.metrics
                .rejected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    async fn publish_inner(
        &self,
        actor: &str,
        draft: Map<String, Value>,
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
            Signed::sign(prepared.json, &key.id, secret)?
        };
        let mut next = actor::apply(Some(&state), &signed, Signature::Trusted)?;
        self.modules.validate(&signed)?;

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
        let json = signed.to_json_string();
        let record = ActivityRecord {
            json: json.clone(),
            actor: next.id.clone(),
            seq,
            public,
        };
        let id = signed.id.clone();
        let tx = self.sender()?;
        let (reply, answer) = oneshot::channel();
        let append = Append {
            signed,
            record,
            state: next.clone(),
            public_rank,
            reply,
        };
        tx.send(Command::Append(Box::new(append)))
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
        self.tx.lock().map(|mut tx| tx.take()).ok();
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
    let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    if now.as_str() < last {
        last.to_owned()
    } else {
        now
    }
}
