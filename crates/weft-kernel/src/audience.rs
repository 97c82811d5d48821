//! Who gets an activity (docs/architecture.md §7.1): the actors named in `to`/`cc` (and an
//! actor URL in `object`, as a Follow names its target, or the author of an
//! object named there by its URL, as a Like names a note; an Undo of one's
//! own activity goes where that activity's `object` went), the publisher's
//! followers when it is addressed to its followers collection or to Public,
//! never the publisher itself. Local recipients get it in their inbox in the
//! append transaction; remote ones get one delivery job each.
//!
//! This decides recipients only; it does not send anything.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Kernel, KernelError};
use weft_core::identity::actor::is_http_url;
use weft_core::model::{PUBLIC, Signed};
use weft_store::SHARED_INBOX;

/// The projection the kernel reads followers from.
pub(super) const GRAPH: &str = "follower-graph";

/// The recipients of one activity.
#[derive(Debug, Default)]
pub(super) struct Audience {
    pub local: Vec<String>,
    /// (actor URL, origin).
    pub remote: Vec<(String, String)>,
}

impl Kernel {
    /// The recipients of `signed`, published by one of this node's actors.
    pub(super) fn audience(&self, signed: &Signed) -> Result<Audience, KernelError> {
        let author = signed.header.actor.as_str();
        let followers = followers_collection(author);
        let mut named = BTreeSet::new();
        let mut to_followers = false;
        for recipient in addressed(&signed.json) {
            if is_public(recipient) || recipient == followers {
                to_followers = true;
            } else if is_http_url(recipient) && !is_collection(recipient) {
                named.insert(recipient.to_owned());
            }
        }
        let reader = self.store.read()?;
        if let Some(Value::String(object)) = signed.json.get("object")
            && let Some(held) = reader.activity(object)?
        {
            // An `object` that is an activity this node holds (the Follow
            // an Accept answers, a foreign one included) is not a
            // recipient.
            if !in_to_or_cc(&signed.json, object) {
                named.remove(object.as_str());
            }
            // Naming one of its author's own activities (an Undo of a
            // Like, of a Follow) goes where that activity's `object` went:
            // the author of the note it liked hears of the Undo too.
            if held.actor == author
                && let Ok(Value::Object(held)) = serde_json::from_str::<Value>(&held.json)
                && let Some(Value::String(target)) = held.get("object")
                && is_http_url(target)
                && reader.activity(target)?.is_none()
            {
                named.insert(target.clone());
            }
        }
        // An object of this node's that an activity names by its URL (a
        // note a Like likes) is its author's to get; a remote one's author
        // is found when it is delivered.
        let objects: Vec<String> = named
            .iter()
            .filter(|r| self.is_local_url(r))
            .cloned()
            .collect();
        for object in objects {
            if reader.actor(&object)?.is_none()
                && let Some(owner) = self.local_owner(&object)
            {
                named.remove(&object);
                named.insert(owner);
            }
        }
        if to_followers {
            named.extend(self.followers(author)?);
        }
        named.remove(author);
        let mut audience = Audience::default();
        if named.is_empty() {
            return Ok(audience);
        }
        let mut shared = BTreeSet::new();
        for recipient in named {
            if self.is_local_url(&recipient) {
                if reader.actor(&recipient)?.is_some() {
                    audience.local.push(recipient);
                }
            } else if let Some(origin) = origin(&recipient) {
                // What goes to followers or Public goes once to each peer
                // that offers a shared inbox; the peer finds its recipients.
                match to_followers
                    .then(|| self.shared_inbox(&reader, &recipient))
                    .transpose()?
                    .flatten()
                {
                    Some(inbox) => {
                        if shared.insert(inbox.clone()) {
                            audience
                                .remote
                                .push((format!("{SHARED_INBOX}{inbox}"), origin));
                        }
                    }
                    None => audience.remote.push((recipient, origin)),
                }
            }
        }
        Ok(audience)
    }

    /// The actors who asked to follow `actor` and have not been answered
    /// yet, as the follower-graph projection says (unavailable while it
    /// is being built, as for [`Kernel::followers`]).
    pub fn pending_followers(&self, actor: &str) -> Result<Vec<String>, KernelError> {
        self.graph("pending-in", actor)
    }

    /// The local actor a URL of this node belongs to: `{base}/actors/{name}`
    /// for that URL and anything under it (`…/objects/3`, `…#key-1`).
    pub fn local_owner(&self, url: &str) -> Option<String> {
        let base = self.public_url().ok()?;
        let rest = url.strip_prefix(base)?.strip_prefix("/actors/")?;
        let name = rest.split(['/', '#', '?']).next()?;
        (!name.is_empty()).then(|| format!("{base}/actors/{name}"))
    }

    /// The shared inbox of the remote actor `actor`, from its kept
    /// document; remembered, since one activity may go to thousands.
    fn shared_inbox(
        &self,
        reader: &weft_store::Reader,
        actor: &str,
    ) -> Result<Option<String>, KernelError> {
        if let Some(known) = self
            .shared_inboxes
            .read()
            .ok()
            .and_then(|m| m.get(actor).cloned())
        {
            return Ok(known);
        }
        let inbox = reader.peer(actor)?.and_then(|p| p.shared_inbox());
        if let Ok(mut known) = self.shared_inboxes.write() {
            if known.len() >= 100_000 {
                known.clear();
            }
            known.insert(actor.to_owned(), inbox.clone());
        }
        Ok(inbox)
    }
}

/// The followers collection of `actor`, as activities address it.
pub(crate) fn followers_collection(actor: &str) -> String {
    format!("{actor}/followers")
}

/// Every recipient an activity addresses explicitly: `to`, `cc`, `bto`,
/// `bcc` and `audience` (strings, or objects with an `id`).
pub fn audience_fields(json: &serde_json::Map<String, Value>) -> Vec<&str> {
    fn id(v: &Value) -> Option<&str> {
        match v {
            Value::String(s) => Some(s.as_str()),
            Value::Object(o) => o.get("id").and_then(Value::as_str),
            _ => None,
        }
    }
    let mut out: Vec<&str> = Vec::new();
    for field in ["to", "cc", "bto", "bcc", "audience"] {
        match json.get(field) {
            Some(Value::Array(items)) => out.extend(items.iter().filter_map(id)),
            Some(v) => out.extend(id(v)),
            None => {}
        }
    }
    out
}

/// Every recipient string an activity names: `to`, `cc`, and `object` when
/// it is a URL.
pub fn addressed(json: &serde_json::Map<String, Value>) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for field in ["to", "cc"] {
        match json.get(field) {
            Some(Value::String(s)) => out.push(s),
            Some(Value::Array(items)) => out.extend(items.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    if let Some(Value::String(object)) = json.get("object")
        && is_http_url(object)
    {
        out.push(object);
    }
    out
}

/// Whether `to` or `cc` names `who`.
fn in_to_or_cc(json: &serde_json::Map<String, Value>, who: &str) -> bool {
    ["to", "cc"].iter().any(|f| match json.get(*f) {
        Some(Value::String(s)) => s == who,
        Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(who)),
        _ => false,
    })
}

/// The Public collection, in the spellings ActivityStreams allows.
pub fn is_public(s: &str) -> bool {
    matches!(s, PUBLIC | "as:Public" | "Public")
}

/// A followers or following collection rather than an actor.
fn is_collection(s: &str) -> bool {
    s.ends_with("/followers") || s.ends_with("/following")
}

/// `scheme://authority` of an http(s) URL: one delivery worker each.
pub use weft_core::model::origin;

/// The `items` of a follower-graph answer.
pub(super) fn items(text: &str) -> Vec<String> {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| match v.get("items") {
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn origin_is_scheme_and_authority() {
        assert_eq!(
            origin("http://127.0.0.1:9001/actors/bob").as_deref(),
            Some("http://127.0.0.1:9001")
        );
        assert_eq!(
            origin("https://Example.COM/a?b#c").as_deref(),
            Some("https://example.com")
        );
        assert_eq!(origin("ftp://x/y"), None);
        assert_eq!(origin("http://user@evil/actors/x"), None);
        assert_eq!(origin("http:///nohost"), None);
    }

    #[test]
    fn addressed_reads_to_cc_and_an_actor_object() {
        let json = json!({
            "to": ["http://a/actors/x", PUBLIC],
            "cc": "http://b/actors/y",
            "object": "http://c/actors/z",
        });
        let Value::Object(map) = json else { panic!() };
        assert_eq!(
            addressed(&map),
            vec![
                "http://a/actors/x",
                PUBLIC,
                "http://b/actors/y",
                "http://c/actors/z"
            ]
        );
        let json = json!({"object": "bagaaihra", "to": 5});
        let Value::Object(map) = json else { panic!() };
        assert!(addressed(&map).is_empty());
    }

    #[test]
    fn graph_items_tolerate_bad_answers() {
        assert_eq!(
            items(r#"{"items": ["http://a/actors/x", 3]}"#),
            vec!["http://a/actors/x"]
        );
        assert!(items("not json").is_empty());
    }
}
