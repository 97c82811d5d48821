//! Checking the HTTP signature of an inbound request (docs/architecture.md §9): which
//! actor sent it, proven by a key that actor's own document lists.
//!
//! `httpsig` checks the request's digest, time and signature; this module
//! finds the key: the `keyId` names a key, the key names its owner, and the
//! owner's document, fetched from the owner's own URL, must list that key
//! (`publicKey`, or a Multikey in `assertionMethod`). What a third party
//! says about whose key a key is is never taken. A verified key is kept in
//! memory; a signature that fails under a kept key makes one refetch (the
//! actor may have replaced its key).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use http::{HeaderMap, Method};
use serde_json::Value;

use super::fetch::Budget;
use super::httpsig::{self, Evidence, PublicKey};
use super::inbox::InboxError;
use super::peers::PeerError;
use super::{Federation, FetchError};
use weft_core::wire::actor::ListedKey;

/// Most verified keys kept; past it the memory starts over.
const MAX_KEPT: usize = 65_536;

/// An inbound request as its signature sees it.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: &'a Method,
    /// Path and query, as received.
    pub target: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// `https` or `http`: the scheme of the node's public URL.
    pub scheme: &'a str,
}

/// Who signed a request, and the evidence.
#[derive(Debug, Clone)]
pub struct SignedBy {
    /// The actor that owns the signing key.
    pub actor: String,
    pub evidence: Evidence,
}

/// Verified keys by key id: the owner and the key.
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: RwLock<HashMap<String, (String, Arc<PublicKey>)>>,
}

impl KeyCache {
    fn get(&self, key_id: &str) -> Option<(String, Arc<PublicKey>)> {
        self.keys.read().ok()?.get(key_id).cloned()
    }

    fn put(&self, key_id: &str, owner: &str, key: Arc<PublicKey>) {
        if let Ok(mut keys) = self.keys.write() {
            if keys.len() >= MAX_KEPT {
                keys.clear();
            }
            keys.insert(key_id.to_owned(), (owner.to_owned(), key));
        }
    }

    fn forget(&self, key_id: &str) {
        if let Ok(mut keys) = self.keys.write() {
            keys.remove(key_id);
        }
    }
}

/// Whether `headers` carry an HTTP signature of either scheme.
pub fn is_signed(headers: &HeaderMap) -> bool {
    headers.contains_key("signature")
        || headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Signature "))
}

impl Federation {
    /// Verifies the HTTP signature of `request`: who sent it.
    pub async fn check_signature(
        &self,
        request: &Request<'_>,
        budget: &Budget,
    ) -> Result<SignedBy, InboxError> {
        let unauthorized = |e: httpsig::SignatureError| InboxError::Unauthorized(e.to_string());
        let pending = httpsig::parse(
            request.method,
            request.target,
            request.headers,
            request.body,
            request.scheme,
            self.window,
            weft_core::clock::now(),
        )
        .map_err(unauthorized)?;
        let key_id = pending.key_id.clone();
        let kept = self.http_keys.get(&key_id);
        let (owner, key) = match &kept {
            Some(kept) => kept.clone(),
            None => self.find_key(&key_id, budget, false).await?,
        };
        match pending.clone().verify(&key) {
            Ok(evidence) => {
                if kept.is_none() {
                    self.http_keys.put(&key_id, &owner, key);
                }
                Ok(SignedBy {
                    actor: owner,
                    evidence,
                })
            }
            Err(e) if kept.is_some() => {
                // The actor may have a new key under the same id.
                self.http_keys.forget(&key_id);
                let (owner, key) = self.find_key(&key_id, budget, true).await?;
                let evidence = pending.verify(&key).map_err(|_| unauthorized(e))?;
                self.http_keys.put(&key_id, &owner, key);
                Ok(SignedBy {
                    actor: owner,
                    evidence,
                })
            }
            Err(e) => Err(unauthorized(e)),
        }
    }

    /// The owner of `key_id` and the key, as the owner's own document
    /// lists it; `fresh` fetches that document again first.
    async fn find_key(
        &self,
        key_id: &str,
        budget: &Budget,
        fresh: bool,
    ) -> Result<(String, Arc<PublicKey>), InboxError> {
        let owner = match key_id.split_once('#') {
            Some((owner, fragment)) if !fragment.is_empty() => owner.to_owned(),
            _ => {
                // A key with a URL of its own (GoToSocial's `…/main-key`):
                // its document names the owner, who must then list it.
                let doc = self
                    .fetcher
                    .get_json(key_id, budget)
                    .await
                    .map_err(|e| key_fetch(key_id, e))?;
                doc.get("owner")
                    .or_else(|| doc.get("controller"))
                    .and_then(Value::as_str)
                    .or_else(|| {
                        doc.get("publicKey")
                            .is_some()
                            .then(|| doc.get("id").and_then(Value::as_str))
                            .flatten()
                    })
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        InboxError::Unauthorized(format!(
                            "the key {key_id} names no owner (`owner` or `controller`)"
                        ))
                    })?
            }
        };
        if weft_kernel::audience_origin(&owner) != weft_kernel::audience_origin(key_id) {
            return Err(InboxError::Unauthorized(format!(
                "the key {key_id} is not on the origin of its owner {owner}"
            )));
        }
        if self.kernel.is_local_url(&owner) {
            return Err(InboxError::Unauthorized(format!(
                "{owner} is an actor of this node: its requests do not come from outside"
            )));
        }
        let document = if fresh {
            self.peers.refresh(&owner, budget).await
        } else {
            self.peers.document(&owner, budget).await
        }
        .map_err(|e| peer_error(&owner, e))?;
        if let Some(key) = listed_key(&document.document, &owner, key_id) {
            return Ok((owner, Arc::new(key)));
        }
        if !fresh {
            // The kept document may predate the key.
            let document = self
                .peers
                .refresh(&owner, budget)
                .await
                .map_err(|e| peer_error(&owner, e))?;
            if let Some(key) = listed_key(&document.document, &owner, key_id) {
                return Ok((owner, Arc::new(key)));
            }
        }
        Err(InboxError::Unauthorized(format!(
            "the actor document of {owner} does not list the key {key_id}"
        )))
    }
}

/// The key `key_id` as `owner`'s document (JSON text) lists it
/// (`weft_core::wire::actor::listed_key`), parsed.
fn listed_key(document: &str, owner: &str, key_id: &str) -> Option<PublicKey> {
    let doc: Value = serde_json::from_str(document).ok()?;
    match weft_core::wire::actor::listed_key(&doc, owner, key_id)? {
        ListedKey::Pem(pem) => PublicKey::from_pem(pem).ok(),
        ListedKey::Ed25519(key) => Some(PublicKey::Ed25519(key.to_bytes())),
    }
}

fn key_fetch(key_id: &str, e: FetchError) -> InboxError {
    fetch_refusal(&format!("the signing key {key_id}"), e)
}

/// What a failed fetch of `what` (a key, an actor document) means for the
/// request that needed it: an address this node will not reach is 422, a
/// document that cannot be had or used is 401, a peer that may answer
/// later is 503. The peer's own response text is never passed on.
pub fn fetch_refusal(what: &str, e: FetchError) -> InboxError {
    match e {
        FetchError::Refused { refused, .. } => InboxError::Rejected {
            field: Some("actor".into()),
            message: format!("cannot look up {what}: {refused}"),
        },
        FetchError::Status { url, status } if status.is_redirection() => {
            InboxError::Unauthorized(format!(
                "cannot look up {what}: {url} answered {status}, a redirect; redirects are not followed, a document is trusted only from the URL it names"
            ))
        }
        e @ (FetchError::BadUrl(_) | FetchError::TooLarge { .. } | FetchError::NotJson { .. }) => {
            InboxError::Unauthorized(format!("cannot look up {what}: {e}"))
        }
        e if e.is_absent() => InboxError::Unauthorized(format!("{what} is not at its URL ({e})")),
        e => InboxError::Unavailable(format!("cannot look up {what} now: {e}")),
    }
}

fn peer_error(owner: &str, e: PeerError) -> InboxError {
    match e {
        PeerError::Fetch(f) => fetch_refusal(&format!("the actor document of {owner}"), f),
        PeerError::Kernel(k) => InboxError::Kernel(k),
        other => InboxError::Unauthorized(format!(
            "the signer's actor document is not usable: {other}"
        )),
    }
}
