//! Foreign activities (docs/architecture.md §9): what an ActivityPub server that is not
//! weft (Mastodon, GoToSocial, Misskey, a Fedify app) posts to an inbox.
//! Such an activity carries no weft proof and is in no hash chain; it is
//! taken on the HTTP signature of the request that brought it, whose
//! signer must be of the activity's actor's origin, and that signature is
//! kept beside it as evidence. It is keyed by its URL id (a second delivery
//! of the same id changes nothing) and then goes through the same verb
//! `validate`, folds and reactions as a weft envelope.
//!
//! A few activities are about the sender itself rather than anything a
//! verb interprets, and are handled here: `Update` of the actor refreshes
//! its kept document, `Delete` of the actor forgets it. An activity no verb
//! here interprets is acknowledged and not stored (no fediverse server
//! publishes weft verbs, so waiting for one would wait forever).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::Federation;
use super::fetch::Budget;
use super::inbox::{InboxError, Received};
use super::signatures::SignedBy;
use weft_core::model::Signed;
use weft_core::model::envelope::HttpEvidence;
use weft_kernel::{Ingested, KernelError, audience_origin};

/// Actor types whose `Update` refreshes the kept document.
const ACTOR_TYPES: [&str; 5] = ["Person", "Service", "Group", "Application", "Organization"];

impl Federation {
    /// Receives a foreign activity `body` signed by `signed_by`, for the
    /// local actor `posted_to` (or, from the shared inbox, whoever it is
    /// addressed to).
    pub(super) async fn receive_foreign(
        self: &Arc<Self>,
        posted_to: Option<&str>,
        body: Map<String, Value>,
        signed_by: SignedBy,
        budget: &Budget,
    ) -> Result<Received, InboxError> {
        let evidence = HttpEvidence {
            scheme: match signed_by.evidence.scheme {
                super::httpsig::Scheme::Cavage => "cavage",
                super::httpsig::Scheme::Rfc9421 => "rfc9421",
            }
            .to_owned(),
            key_id: signed_by.evidence.key_id.clone(),
            signer: signed_by.actor.clone(),
            signed: signed_by.evidence.signed.clone(),
            signature: signed_by.evidence.signature.clone(),
            created: signed_by.evidence.created,
        };
        let received = humantime::format_rfc3339_millis(weft_core::clock::now()).to_string();
        let signed = Signed::foreign(body, evidence, &received).map_err(|e| {
            InboxError::Malformed(format!("not a usable ActivityPub activity: {e}"))
        })?;
        self.check_published(&signed)?;
        let actor = signed.header.actor.clone();
        let origin = audience_origin(&actor);
        if audience_origin(&signed_by.actor) != origin {
            return Err(InboxError::Unauthorized(format!(
                "the request is signed by {}, who cannot speak for {actor} (another origin)",
                signed_by.actor
            )));
        }
        if audience_origin(&signed.id) != origin {
            return Err(InboxError::Unauthorized(format!(
                "the activity's id {} is not on the origin of its actor {actor}",
                signed.id
            )));
        }
        if let Some(origin) = &origin {
            self.reconciler.heard_from(origin);
        }
        if self.kernel.is_local_url(&actor) {
            return Err(InboxError::Rejected {
                field: Some("actor".into()),
                message: format!(
                    "{actor} is an actor of this node: its activities are published here, not received"
                ),
            });
        }
        let id = signed.id.clone();
        if let Some(handled) = self.about_the_sender(&signed, budget).await? {
            return Ok(handled);
        }
        if self.must_park(&signed) {
            tracing::info!(%id, verb = signed.verb(), %actor, "no verb here interprets this foreign activity; acknowledged, not stored");
            return Ok(Received::Ignored(id));
        }
        let recipients = self.local_recipients(&signed, posted_to)?;
        match self.kernel.ingest(signed, recipients, false, None).await? {
            Ingested::Stored(_) => Ok(Received::Accepted(id)),
            Ingested::Duplicate => Ok(Received::Duplicate(id)),
            Ingested::Fork { .. } | Ingested::Unlinked { .. } => Err(InboxError::Kernel(
                KernelError::Conflict("a foreign activity cannot fork a log".into()),
            )),
        }
    }

    /// Handles an activity about its own sender: an `Update` of the actor
    /// (its document is fetched again from its URL, never taken from the
    /// activity) and a `Delete` of the actor (forgotten, as far as a
    /// refetch goes).
    async fn about_the_sender(
        &self,
        signed: &Signed,
        budget: &Budget,
    ) -> Result<Option<Received>, InboxError> {
        let actor = signed.header.actor.as_str();
        let object = signed.json.get("object");
        let object_id = match object {
            Some(Value::String(s)) => Some(s.as_str()),
            Some(o) => o.get("id").and_then(Value::as_str),
            None => None,
        };
        if object_id != Some(actor) {
            return Ok(None);
        }
        let object_type = object.and_then(|o| o.get("type")).and_then(Value::as_str);
        match signed.header.kind.as_str() {
            "Update" if object_type.is_some_and(|t| ACTOR_TYPES.contains(&t)) => {
                self.peers.refresh(actor, budget).await.map_err(|e| {
                    InboxError::Unavailable(format!(
                        "cannot fetch the updated actor document of {actor}: {e}"
                    ))
                })?;
                Ok(Some(Received::Accepted(signed.id.clone())))
            }
            "Delete" => {
                tracing::info!(%actor, "a peer actor was deleted at its origin");
                Ok(Some(Received::Ignored(signed.id.clone())))
            }
            _ => Ok(None),
        }
    }
}
