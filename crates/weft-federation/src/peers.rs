//! Remote actors as their own origin describes them. A peer's document is
//! fetched from the actor's URL on first contact and kept (memory and the
//! `peers` table); an activity signed by a key the kept document does not
//! list makes one refetch, which is how a rotation is learnt. A document
//! older than `federation.peer_refresh` is fetched again when next used,
//! so a rotation that retires a key is learnt even if only the old key is
//! ever seen again (a stolen key stops verifying new positions); if that
//! fetch fails the old document stays in use, and the next try waits
//! [`RETRY_STALE`].
//!
//! A key counts as an actor's only when its id is `{actor}#…` and the
//! document served at the actor's own URL, with that same `id`, lists it:
//! what a peer says about someone else's keys is never taken.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::fetch::{Budget, FetchError, Fetcher};
use weft_core::identity::KeyRecord;
use weft_core::wire::actor::{self as document, keys_from_document};
use weft_kernel::{FederationWrite, Kernel, KernelError};
use weft_store::Peer;

/// Why a remote actor's keys or inbox are not known.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("{0}")]
    Fetch(#[from] FetchError),
    #[error("the actor document at {url} is not usable: {problem}")]
    Document { url: String, problem: String },
    #[error("key {key} does not belong to {actor}: an actor's keys are `{actor}#…`")]
    ForeignKey { key: String, actor: String },
    #[error("{0} is not an actor of this node")]
    UnknownLocal(String),
    #[error("{0}")]
    Kernel(#[from] KernelError),
}

/// Least wait before a stale document whose refetch failed is tried again.
pub const RETRY_STALE: Duration = Duration::from_secs(60);
/// Most actors remembered as having a failed refetch; past it the memory
/// starts over (at worst, a few more early retries).
const MAX_FAILED: usize = 65_536;

/// The peer-actor cache.
#[derive(Debug)]
pub struct Peers {
    kernel: Arc<Kernel>,
    fetcher: Fetcher,
    /// Past this age a kept document is fetched again on next use.
    refresh: Duration,
    cache: RwLock<HashMap<String, Kept>>,
    /// Actors whose stale document could not be fetched again, and when.
    failed: Mutex<HashMap<String, Instant>>,
}

/// A kept document and when it was fetched.
#[derive(Debug, Clone)]
struct Kept {
    peer: Arc<Peer>,
    fetched: SystemTime,
}

impl Kept {
    fn new(peer: Arc<Peer>) -> Self {
        // A document whose time cannot be read counts as fetched long ago.
        let fetched = humantime::parse_rfc3339(&peer.fetched_at).unwrap_or(SystemTime::UNIX_EPOCH);
        Self { peer, fetched }
    }

    /// Older than `refresh`; never when the clock went back.
    fn stale(&self, refresh: Duration) -> bool {
        weft_core::clock::now()
            .duration_since(self.fetched)
            .is_ok_and(|age| age > refresh)
    }
}

impl Peers {
    pub fn new(kernel: Arc<Kernel>, fetcher: Fetcher, refresh: Duration) -> Self {
        Self {
            kernel,
            fetcher,
            refresh,
            cache: RwLock::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
        }
    }

    /// The kept document of `actor`, fetched again first when it is older
    /// than `peer_refresh` (and no refetch failed in the last
    /// [`RETRY_STALE`]); `None` if none is kept. The flag says whether it
    /// was just fetched.
    async fn current(
        &self,
        actor: &str,
        budget: &Budget,
    ) -> Result<Option<(Arc<Peer>, bool)>, PeerError> {
        let Some(kept) = self.kept_entry(actor)? else {
            return Ok(None);
        };
        if !kept.stale(self.refresh) || self.failed_recently(actor) {
            return Ok(Some((kept.peer, false)));
        }
        match self.refresh(actor, budget).await {
            Ok(peer) => {
                if let Ok(mut failed) = self.failed.lock() {
                    failed.remove(actor);
                }
                Ok(Some((peer, true)))
            }
            Err(PeerError::Kernel(e)) => Err(PeerError::Kernel(e)),
            Err(e) => {
                tracing::warn!(%actor, error = %e, "could not fetch a stale actor document again; keeping the old one");
                if let Ok(mut failed) = self.failed.lock() {
                    if failed.len() >= MAX_FAILED {
                        failed.clear();
                    }
                    failed.insert(actor.to_owned(), Instant::now());
                }
                Ok(Some((kept.peer, false)))
            }
        }
    }

    fn failed_recently(&self, actor: &str) -> bool {
        self.failed
            .lock()
            .ok()
            .and_then(|f| f.get(actor).copied())
            .is_some_and(|at| at.elapsed() < RETRY_STALE)
    }

    /// The key history of `actor` as far as it is needed to check a
    /// signature by `key_id`: the kept one if it lists the key, else a
    /// fresh one from the actor's origin.
    pub async fn keys_for(
        &self,
        actor: &str,
        key_id: &str,
        budget: &Budget,
    ) -> Result<Vec<KeyRecord>, PeerError> {
        let owned = key_id
            .strip_prefix(actor)
            .and_then(|rest| rest.strip_prefix('#'))
            .is_some_and(|f| !f.is_empty());
        if !owned {
            return Err(PeerError::ForeignKey {
                key: key_id.to_owned(),
                actor: actor.to_owned(),
            });
        }
        if self.kernel.is_local_url(actor) {
            let state = self
                .kernel
                .store()
                .read()
                .map_err(KernelError::from)?
                .actor(actor)
                .map_err(KernelError::from)?
                .ok_or_else(|| PeerError::UnknownLocal(actor.to_owned()))?;
            return Ok(state.keys);
        }
        if let Some((peer, just_fetched)) = self.current(actor, budget).await?
            && (just_fetched || peer.keys.iter().any(|k| k.id == key_id))
        {
            return Ok(peer.keys.clone());
        }
        Ok(self.refresh(actor, budget).await?.keys.clone())
    }

    /// The document of a remote actor: the kept one (refreshed when stale)
    /// or a fresh one from the actor's URL.
    pub async fn document(&self, actor: &str, budget: &Budget) -> Result<Arc<Peer>, PeerError> {
        if let Some((peer, _)) = self.current(actor, budget).await? {
            return Ok(peer);
        }
        self.refresh(actor, budget).await
    }

    /// The inbox URL of a remote actor.
    pub async fn inbox_of(&self, actor: &str, budget: &Budget) -> Result<String, PeerError> {
        if let Some((peer, _)) = self.current(actor, budget).await? {
            return Ok(peer.inbox.clone());
        }
        Ok(self.refresh(actor, budget).await?.inbox.clone())
    }

    /// The kept document of `actor`, if any, however old.
    pub fn kept(&self, actor: &str) -> Result<Option<Arc<Peer>>, PeerError> {
        Ok(self.kept_entry(actor)?.map(|k| k.peer))
    }

    fn kept_entry(&self, actor: &str) -> Result<Option<Kept>, PeerError> {
        if let Some(kept) = self.cache.read().ok().and_then(|c| c.get(actor).cloned()) {
            return Ok(Some(kept));
        }
        let stored = self
            .kernel
            .store()
            .read()
            .map_err(KernelError::from)?
            .peer(actor)
            .map_err(KernelError::from)?;
        Ok(stored.map(|peer| {
            let kept = Kept::new(Arc::new(peer));
            if let Ok(mut cache) = self.cache.write() {
                cache.insert(actor.to_owned(), kept.clone());
            }
            kept
        }))
    }

    /// The inbox an activity addressed to `recipient` goes to. An actor's
    /// is its own; a URL that names an object instead (a note a Like or an
    /// Announce names by its URL) is delivered to the object's author, as
    /// its document at that URL attributes it on the same origin
    /// (`weft_core::wire::object::author`). Anything else is no recipient.
    pub async fn recipient_inbox(
        &self,
        recipient: &str,
        budget: &Budget,
    ) -> Result<String, PeerError> {
        if let Some((peer, _)) = self.current(recipient, budget).await? {
            return Ok(peer.inbox.clone());
        }
        let doc = self.fetcher.get_json(recipient, budget).await?;
        match parse(recipient, &doc) {
            Ok(peer) => Ok(self.keep(peer).await?.inbox.clone()),
            Err(PeerError::Document { url, problem }) => {
                match weft_core::wire::object::author(recipient, &doc) {
                    Some(author) => self.inbox_of(author, budget).await,
                    None => Err(PeerError::Document {
                        url,
                        problem: format!(
                            "{problem}; nor is it an object whose `attributedTo` names an actor of its own origin"
                        ),
                    }),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Fetches `actor`'s document from its own URL, checks it, and keeps it.
    pub async fn refresh(&self, actor: &str, budget: &Budget) -> Result<Arc<Peer>, PeerError> {
        let doc = self.fetcher.get_json(actor, budget).await?;
        self.keep(parse(actor, &doc)?).await
    }

    /// Keeps a checked actor document (the `peers` table and memory).
    async fn keep(&self, peer: Peer) -> Result<Arc<Peer>, PeerError> {
        let actor = peer.id.clone();
        let peer = Arc::new(peer);
        self.kernel
            .federation_write(vec![FederationWrite::Peer((*peer).clone())])
            .await?;
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(actor, Kept::new(peer.clone()));
        }
        Ok(peer)
    }
}

/// Reads a peer from the document fetched at `url`.
pub fn parse(url: &str, doc: &Value) -> Result<Peer, PeerError> {
    let problem = |problem: String| PeerError::Document {
        url: url.to_owned(),
        problem,
    };
    let id = doc.get("id").and_then(Value::as_str).unwrap_or_default();
    if id != url {
        return Err(problem(format!(
            "its `id` is `{id}`, not the URL it was fetched from"
        )));
    }
    let inbox = document::inbox(doc).ok_or_else(|| problem("it has no `inbox`".into()))?;
    let origin = weft_kernel::audience_origin(url);
    if origin.is_none() || weft_kernel::audience_origin(inbox) != origin {
        return Err(problem(format!(
            "its inbox {inbox} is not on the actor's own origin"
        )));
    }
    // A weft actor lists its log keys with their history; an ordinary
    // ActivityPub actor (Mastodon's, say) has none, only the `publicKey`
    // its requests are signed with, read when a signature is checked.
    let keys = if document::has_key_history(doc) {
        keys_from_document(doc).map_err(|e| problem(e.to_string()))?
    } else {
        Vec::new()
    };
    Ok(Peer {
        id: url.to_owned(),
        inbox: inbox.to_owned(),
        document: doc.to_string(),
        keys,
        fetched_at: humantime::format_rfc3339_millis(weft_core::clock::now()).to_string(),
    })
}
