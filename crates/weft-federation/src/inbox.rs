//! The inbound pipeline (docs/architecture.md §7.2): an activity POSTed to a local actor's
//! inbox is parsed (its id recomputed), verified against its author's key
//! history as the author's own origin publishes it, and handed to the
//! kernel, which refuses duplicates and forks, runs the verb's validate,
//! appends it to the inboxes of its local recipients, folds and reacts.
//!
//! Backfilled activities go through [`Federation::verify`] too. This module
//! does not speak HTTP; `http::inbox` maps its errors to status codes.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::fetch::Budget;
use super::peers::PeerError;
use super::signatures::SignedBy;
use super::{Federation, FetchError};
use weft_core::identity::actor::key_for_proof;
use weft_core::model::{EnvelopeError, Signed};
use weft_kernel::{Ingested, KernelError, audience_fields, audience_origin, is_public};
use weft_store::BackfillJob;

/// Why an inbound activity was refused. Each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// 400: not a well-formed signed activity.
    #[error("{0}")]
    Malformed(String),
    /// 401: the proof does not hold, or the key is not the author's.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the recipient is not addressed, and follows no one who would
    /// reach it through Public or their followers.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such local actor.
    #[error("no actor named `{0}` on this node")]
    UnknownRecipient(String),
    /// 415: the body is declared as something other than JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429: the sender's origin is past its rate (`Retry-After`).
    #[error("too many activities from {origin}")]
    RateLimited {
        origin: String,
        retry_after: std::time::Duration,
    },
    /// 507: the sender's origin holds as much here as it may.
    #[error("{0}")]
    Quota(String),
    /// 422: a verb refused it, or it replays a different activity at a
    /// position already known.
    #[error("{message}")]
    Rejected {
        field: Option<String>,
        message: String,
    },
    /// 503: the author's origin could not be asked; try again later.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Kernel(KernelError),
}

impl From<KernelError> for InboxError {
    fn from(e: KernelError) -> Self {
        match e {
            KernelError::Rejected(r) if !r.transient => Self::Rejected {
                field: r.field.clone(),
                message: r.to_string(),
            },
            KernelError::Field { field, message } => Self::Rejected {
                field: Some(field),
                message,
            },
            KernelError::Quota(m) => Self::Quota(m),
            other => Self::Kernel(other),
        }
    }
}

/// What the inbox did with an activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Accepted(String),
    Duplicate(String),
    /// Its verb is unknown here: kept until a module for it is admitted.
    Parked(String),
    /// A foreign activity no verb here interprets: acknowledged, not kept.
    Ignored(String),
}

/// Whether `body` is a weft envelope (it carries its author's proof) rather
/// than a foreign activity (proven only by the request's HTTP signature).
pub fn is_envelope(body: &Map<String, Value>) -> bool {
    body.get("proof")
        .is_some_and(|p| p.get("signature").is_some() && p.get("key").is_some())
}

impl Federation {
    /// Receives `body` into the inbox of the local actor `name`, or (with
    /// no name: the shared inbox) of the local actors it is addressed to.
    /// `signed_by` is the verified HTTP signature of the request, if it
    /// had one: a weft envelope proves itself, a foreign activity needs it.
    pub async fn receive(
        self: &Arc<Self>,
        name: Option<&str>,
        body: Map<String, Value>,
        signed_by: Option<SignedBy>,
        budget: &Budget,
    ) -> Result<Received, InboxError> {
        self.receive_gated(name, body, signed_by, budget, &|_| Ok(()))
            .await
    }

    /// [`Federation::receive`], where an unsigned weft envelope's author's
    /// origin must pass `gate` (a rate limit) once its proof is verified,
    /// before anything is stored.
    pub async fn receive_gated(
        self: &Arc<Self>,
        name: Option<&str>,
        body: Map<String, Value>,
        signed_by: Option<SignedBy>,
        budget: &Budget,
        gate: &(dyn Fn(&str) -> Result<(), InboxError> + Sync),
    ) -> Result<Received, InboxError> {
        let recipient = match name {
            Some(name) => Some(
                self.kernel
                    .store()
                    .read()
                    .map_err(KernelError::from)?
                    .actor_id_by_name(name)
                    .map_err(KernelError::from)?
                    .ok_or_else(|| InboxError::UnknownRecipient(name.to_owned()))?,
            ),
            None => None,
        };
        if !is_envelope(&body) {
            let Some(signed_by) = signed_by else {
                return Err(InboxError::Unauthorized(
                    "the request is not signed: an activity without a weft `proof` must come with an HTTP signature (draft-cavage `Signature` with rsa-sha256 over (request-target) host date digest, or RFC 9421 `Signature-Input` and `Signature`)".into(),
                ));
            };
            return self
                .receive_foreign(recipient.as_deref(), body, signed_by, budget)
                .await;
        }
        let signed = parse(Value::Object(body))?;
        self.check_published(&signed)?;
        let id = signed.id.clone();
        let author = signed.header.actor.clone();
        if self.kernel.is_local_url(&author) {
            return match self
                .kernel
                .store()
                .read()
                .map_err(KernelError::from)?
                .activity(&id)
            {
                Ok(Some(_)) => Ok(Received::Duplicate(id)),
                _ => Err(InboxError::Rejected {
                    field: Some("actor".into()),
                    message: format!(
                        "{author} is an actor of this node: its activities are published here, not received"
                    ),
                }),
            };
        }
        self.verify(&signed, budget).await?;
        if let Some(origin) = audience_origin(&author) {
            if signed_by.is_none() {
                gate(&origin)?;
            }
            self.reconciler.heard_from(&origin);
        }
        let recipients = self.local_recipients(&signed, recipient.as_deref())?;
        if signed.header.kind == "Announce"
            && let Some(Value::String(object)) = signed.json.get("object")
        {
            self.fetch_announced(object, &author, budget).await;
        }
        if self.must_park(&signed) {
            self.park(&signed, recipients, false)
                .await
                .map_err(|e| match e {
                    super::modules::ParkError::Kernel(k) => k.into(),
                    full => InboxError::Unavailable(full.to_string()),
                })?;
            return Ok(Received::Parked(id));
        }
        let backfill = self.backfill_for(&signed)?;
        match self
            .kernel
            .ingest(signed, recipients, false, backfill)
            .await?
        {
            Ingested::Stored(_) => Ok(Received::Accepted(id)),
            Ingested::Duplicate => Ok(Received::Duplicate(id)),
            Ingested::Fork {
                seq,
                kept,
                evidence,
            } => Err(InboxError::Rejected {
                field: Some("seq".into()),
                message: format!(
                    "{author} already has {kept} at seq {seq}; this different activity at the same position is a fork, {} and refused",
                    kept_as(evidence)
                ),
            }),
            Ingested::Unlinked {
                seq,
                neighbour_seq,
                neighbour,
                evidence,
            } => Err(InboxError::Rejected {
                field: Some("prev".into()),
                message: if neighbour_seq < seq {
                    format!(
                        "`prev` must be {neighbour}, the id of {author}'s activity at seq {neighbour_seq} that this node holds; an activity at seq {seq} that does not link to it is a fork, {} and refused",
                        kept_as(evidence)
                    )
                } else {
                    format!(
                        "{author}'s activity at seq {neighbour_seq} that this node holds ({neighbour}) does not name this one as its `prev`: this activity at seq {seq} is a fork, {} and refused",
                        kept_as(evidence)
                    )
                },
            }),
        }
    }

    /// Checks `signed`'s proof against its author's key history, fetched
    /// from the author's origin when the key is not known yet.
    pub async fn verify(&self, signed: &Signed, budget: &Budget) -> Result<(), InboxError> {
        let author = &signed.header.actor;
        let keys = self
            .peers
            .keys_for(author, &signed.key_id, budget)
            .await
            .map_err(|e| match e {
                PeerError::ForeignKey { .. } | PeerError::Document { .. } => {
                    InboxError::Unauthorized(e.to_string())
                }
                PeerError::Fetch(f) if f.is_absent() => InboxError::Unauthorized(format!(
                    "cannot verify: the author's document is not at its URL ({f})"
                )),
                PeerError::Fetch(FetchError::BadUrl(_)) => {
                    InboxError::Malformed(format!("`actor` must be an http(s) URL: {e}"))
                }
                PeerError::Fetch(f @ (FetchError::Refused { .. } | FetchError::Status { .. })) => {
                    super::signatures::fetch_refusal("the author's actor document", f)
                }
                PeerError::UnknownLocal(actor) => {
                    InboxError::Unauthorized(format!("{actor} is not an actor of this node"))
                }
                PeerError::Kernel(k) => InboxError::Kernel(k),
                other => {
                    InboxError::Unavailable(format!("cannot verify the activity now: {other}"))
                }
            })?;
        let key =
            key_for_proof(&keys, signed).map_err(|e| InboxError::Unauthorized(e.to_string()))?;
        let verifying = self
            .verifier
            .key(key)
            .map_err(|e| InboxError::Unauthorized(e.to_string()))?;
        if self.verifier.verify(verifying, signed).await {
            Ok(())
        } else {
            Err(InboxError::Unauthorized(
                weft_core::identity::IdentityError::BadSignature(key.id.clone()).to_string(),
            ))
        }
    }

    /// Refuses (422) an activity whose `published` is further ahead of
    /// this node's clock than `federation.published_max_ahead`.
    pub(super) fn check_published(&self, signed: &Signed) -> Result<(), InboxError> {
        let Ok(published) = humantime::parse_rfc3339(&signed.header.published) else {
            return Ok(());
        };
        let now = weft_core::clock::now();
        if published
            .duration_since(now)
            .is_ok_and(|ahead| ahead > self.published_ahead)
        {
            return Err(InboxError::Rejected {
                field: Some("published".into()),
                message: format!(
                    "`published` is {}, more than {} ahead of this node's clock ({}): an activity cannot come from the future; check the sender's clock",
                    signed.header.published,
                    humantime::format_duration(self.published_ahead),
                    humantime::format_rfc3339_seconds(now)
                ),
            });
        }
        Ok(())
    }

    /// Local actors who get `signed`: those it addresses (`to`, `cc`,
    /// `bto`, `bcc`, `audience`); those it is about (its `object` is the
    /// actor, something of theirs, or an embedded activity by or about
    /// them, as in a Follow, a Like, an Undo or an Accept); and, when it is
    /// addressed to Public or its author's followers, the author's local
    /// followers (and those who asked to follow and wait for an answer).
    ///
    /// `posted_to` (an actor's own inbox) must be one of them, and the
    /// shared inbox must find at least one: otherwise 403, nothing stored.
    pub(super) fn local_recipients(
        &self,
        signed: &Signed,
        posted_to: Option<&str>,
    ) -> Result<Vec<String>, InboxError> {
        let author = signed.header.actor.as_str();
        let followers = format!("{author}/followers");
        let mut out: BTreeSet<String> = BTreeSet::new();
        let mut to_followers = false;
        for r in audience_fields(&signed.json) {
            if is_public(r) || r == followers {
                to_followers = true;
            } else if self.kernel.is_local_url(r) {
                out.insert(r.to_owned());
            }
        }
        self.about_local(&signed.json, 0, &mut out)?;
        if to_followers {
            let unavailable = |e: KernelError| InboxError::Unavailable(e.to_string());
            let mut followers = self.kernel.followers(author).map_err(unavailable)?;
            followers.extend(self.kernel.pending_followers(author).map_err(unavailable)?);
            out.extend(
                followers
                    .into_iter()
                    .filter(|f| self.kernel.is_local_url(f)),
            );
        }
        // Most activities name no one here but the inbox they came to: no
        // snapshot for them.
        let only_posted_to = posted_to.is_some_and(|p| out.len() == 1 && out.contains(p));
        let reader = (!only_posted_to && !out.is_empty())
            .then(|| self.kernel.store().read().ok())
            .flatten();
        let recipients: Vec<String> = out
            .into_iter()
            .filter(|r| {
                Some(r.as_str()) == posted_to
                    || reader
                        .as_ref()
                        .is_some_and(|rd| matches!(rd.has_actor(r), Ok(true)))
            })
            .collect();
        match posted_to {
            Some(p) if !recipients.iter().any(|r| r == p) => Err(InboxError::Forbidden(format!(
                "this activity is not for {p}: it does not name them in `to`, `cc` or `audience`, is not about them or anything of theirs, and they do not follow {author} (whose followers or Public it addresses); address it to them, or deliver it to the inbox of whom it is for"
            ))),
            None if recipients.is_empty() => Err(InboxError::Forbidden(format!(
                "no actor of this node is addressed by this activity, is what it is about, or follows {author}: nothing here would read it"
            ))),
            _ => Ok(recipients),
        }
    }

    /// Adds the local actors `json` (an activity, or an object embedded in
    /// one) is about: its `object` when that is a local actor or under one
    /// (`…/objects/3`), an activity stored here whose author is local, or
    /// (one level down) an embedded object by (`actor`, `attributedTo`) or
    /// about a local actor.
    fn about_local(
        &self,
        json: &Map<String, Value>,
        depth: usize,
        out: &mut BTreeSet<String>,
    ) -> Result<(), InboxError> {
        let object = json.get("object");
        let object_id = match object {
            Some(Value::String(s)) => Some(s.as_str()),
            Some(Value::Object(o)) => o.get("id").and_then(Value::as_str),
            _ => None,
        };
        if let Some(id) = object_id {
            if let Some(owner) = self.kernel.local_owner(id) {
                out.insert(owner);
            } else if let Some(actor) = self.local_author_of(id)? {
                out.insert(actor);
            }
        }
        if depth == 0
            && let Some(Value::Object(embedded)) = object
        {
            for field in ["actor", "attributedTo"] {
                if let Some(Value::String(by)) = embedded.get(field)
                    && let Some(owner) = self.kernel.local_owner(by)
                {
                    out.insert(owner);
                }
            }
            self.about_local(embedded, depth + 1, out)?;
        }
        Ok(())
    }

    /// The local author of the activity `id` (a content id, or its URL on
    /// this node) when this node holds it.
    fn local_author_of(&self, id: &str) -> Result<Option<String>, InboxError> {
        let bare = weft_core::model::cid::internal(id);
        if weft_core::model::cid::parse(bare).is_err() {
            return Ok(None);
        }
        let record = self
            .kernel
            .store()
            .read()
            .map_err(KernelError::from)?
            .activity(bare)
            .map_err(KernelError::from)?;
        Ok(record
            .map(|r| r.actor)
            .filter(|a| self.kernel.is_local_url(a)))
    }

    /// The backfill an Accept starts: when it accepts a local actor's
    /// Follow of the Accept's author that asked for one.
    fn backfill_for(&self, signed: &Signed) -> Result<Option<BackfillJob>, InboxError> {
        if signed.header.kind != "Accept" {
            return Ok(None);
        }
        let Some(Value::String(follow_id)) = signed.json.get("object") else {
            return Ok(None);
        };
        let reader = self.kernel.store().read().map_err(KernelError::from)?;
        let Some(follow) = reader.activity(follow_id).map_err(KernelError::from)? else {
            return Ok(None);
        };
        if !self.kernel.is_local_url(&follow.actor) {
            return Ok(None);
        }
        let Ok(Value::Object(json)) = serde_json::from_str::<Value>(&follow.json) else {
            return Ok(None);
        };
        let target = json.get("object").and_then(Value::as_str);
        let request = json.get("backfill");
        let mode = request.and_then(|b| b.get("mode")).and_then(Value::as_str);
        if json.get("type").and_then(Value::as_str) != Some("Follow")
            || target != Some(signed.header.actor.as_str())
            || matches!(mode, None | Some("none"))
        {
            return Ok(None);
        }
        Ok(Some(BackfillJob {
            follow: follow_id.clone(),
            follower: follow.actor,
            target: signed.header.actor.clone(),
            request: request.map(Value::to_string).unwrap_or_default(),
            accepted_at: humantime::format_rfc3339_millis(weft_core::clock::now()).to_string(),
        }))
    }

    /// Fetches an announced activity the node does not have from the
    /// announcer's origin, verifies it and stores it. A failure leaves the
    /// Announce without its activity; it is not a reason to refuse it.
    async fn fetch_announced(&self, id: &str, announcer: &str, budget: &Budget) {
        if weft_core::model::cid::parse(id).is_err()
            || matches!(
                self.kernel.store().read().map(|r| r.activity(id)),
                Ok(Ok(Some(_)))
            )
        {
            return;
        }
        let Some(origin) = audience_origin(announcer) else {
            return;
        };
        let url = format!("{origin}/activities/{id}");
        let result = async {
            let value = self
                .fetcher
                .get_json(&url, budget)
                .await
                .map_err(|e| e.to_string())?;
            let signed = parse(value).map_err(|e| e.to_string())?;
            if signed.id != id {
                return Err(format!("{url} served a different activity ({})", signed.id));
            }
            if self.kernel.is_local_url(&signed.header.actor) {
                return Err("it claims to be by an actor of this node".into());
            }
            self.verify(&signed, budget)
                .await
                .map_err(|e| e.to_string())?;
            self.kernel
                .ingest(signed, Vec::new(), false, None)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(%id, %announcer, error = %e, "cannot fetch an announced activity");
        }
    }
}

/// How a fork's refusal says what became of its evidence.
fn kept_as(evidence: bool) -> &'static str {
    if evidence {
        "kept as evidence (see /admin/forks)"
    } else {
        "not kept (this node keeps enough evidence against this actor's position or origin already)"
    }
}

/// Parses a signed activity: a content that does not match its id is a
/// failed proof (401); anything else wrong is malformed (400).
pub fn parse(value: Value) -> Result<Signed, InboxError> {
    Signed::parse(value).map_err(|e| match e {
        EnvelopeError::IdMismatch { .. } => {
            InboxError::Unauthorized(format!("the activity was altered after it was signed: {e}"))
        }
        other => InboxError::Malformed(other.to_string()),
    })
}
