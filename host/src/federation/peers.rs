//! Remote actors as their own origin describes them. A peer's document is
//! fetched from the actor's URL on first contact and kept (memory and the
//! `peers` table); an activity signed by a key the kept document does not
//! list makes one refetch, which is how a rotation is learnt.
//!
//! A key counts as an actor's only when its id is `{actor}#…` and the
//! document served at the actor's own URL, with that same `id`, lists it:
//! what a peer says about someone else's keys is never taken.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use super::fetch::{Budget, FetchError, Fetcher};
use crate::identity::KeyRecord;
use crate::identity::actor::keys_from_document;
use crate::kernel::{FederationWrite, Kernel, KernelError};
use crate::store::Peer;

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

/// The peer-actor cache.
#[derive(Debug)]
pub struct Peers {
    kernel: Arc<Kernel>,
    fetcher: Fetcher,
    cache: RwLock<HashMap<String, Arc<Peer>>>,
}

impl Peers {
    pub fn new(kernel: Arc<Kernel>, fetcher: Fetcher) -> Self {
        Self {
            kernel,
            fetcher,
            cache: RwLock::new(HashMap::new()),
        }
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
        if let Some(peer) = self.kept(actor)?
            && peer.keys.iter().any(|k| k.id == key_id)
        {
            return Ok(peer.keys.clone());
        }
        Ok(self.refresh(actor, budget).await?.keys.clone())
    }

    /// The inbox URL of a remote actor.
    pub async fn inbox_of(&self, actor: &str, budget: &Budget) -> Result<String, PeerError> {
        if let Some(peer) = self.kept(actor)? {
            return Ok(peer.inbox.clone());
        }
        Ok(self.refresh(actor, budget).await?.inbox.clone())
    }

    /// The kept document of `actor`, if any.
    pub fn kept(&self, actor: &str) -> Result<Option<Arc<Peer>>, PeerError> {
        if let Some(peer) = self.cache.read().ok().and_then(|c| c.get(actor).cloned()) {
            return Ok(Some(peer));
        }
        let stored = self
            .kernel
            .store()
            .read()
            .map_err(KernelError::from)?
            .peer(actor)
            .map_err(KernelError::from)?;
        Ok(stored.map(|peer| {
            let peer = Arc::new(peer);
            if let Ok(mut cache) = self.cache.write() {
                cache.insert(actor.to_owned(), peer.clone());
            }
            peer
        }))
    }

    /// Fetches `actor`'s document from its own URL, checks it, and keeps it.
    pub async fn refresh(&self, actor: &str, budget: &Budget) -> Result<Arc<Peer>, PeerError> {
        let doc = self.fetcher.get_json(actor, budget).await?;
        let peer = Arc::new(parse(actor, &doc)?);
        self.kernel
            .federation_write(vec![FederationWrite::Peer((*peer).clone())])
            .await?;
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(actor.to_owned(), peer.clone());
        }
        Ok(peer)
    }
}

/// Reads a peer from the document fetched at `url`.
fn parse(url: &str, doc: &Value) -> Result<Peer, PeerError> {
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
    let inbox = doc
        .get("inbox")
        .and_then(Value::as_str)
        .ok_or_else(|| problem("it has no `inbox`".into()))?;
    let origin = crate::kernel::audience_origin(url);
    if origin.is_none() || crate::kernel::audience_origin(inbox) != origin {
        return Err(problem(format!(
            "its inbox {inbox} is not on the actor's own origin"
        )));
    }
    let keys = keys_from_document(doc).map_err(|e| problem(e.to_string()))?;
    Ok(Peer {
        id: url.to_owned(),
        inbox: inbox.to_owned(),
        document: doc.to_string(),
        keys,
        fetched_at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
    })
}
