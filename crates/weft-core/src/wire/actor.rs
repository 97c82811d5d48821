//! The actor document (`GET /actors/{name}`) and the `Create` that starts an
//! actor's log: how weft writes them, and how a document, weft's or another
//! ActivityPub server's, is read (its key history, inboxes and listed keys).
//!
//! The format only: whether a key may sign, and what a rotation may do, are
//! the key-history rules of `identity::actor`; whether a peer's document is
//! believed (its URL, its origin) is federation's.

use ed25519_dalek::VerifyingKey;
use serde_json::{Map, Value, json};

use crate::identity::actor::{object_err, parse_purposes};
use crate::identity::{ActorKind, ActorState, IdentityError, KeyRecord, Purpose, multikey, rsa};
use crate::model::PUBLIC;

/// The actor document for `actor`: its Ed25519 log keys (with their
/// history) in `assertionMethod` as Multikeys, and its RSA key for HTTP
/// signatures (`http_key_pem`) as `publicKey`, which is what ActivityPub
/// servers read.
pub fn document(actor: &ActorState, http_key_pem: Option<&str>) -> Value {
    let id = &actor.id;
    let mut doc = Map::new();
    doc.insert(
        "@context".into(),
        json!([
            super::AS_CONTEXT,
            "https://w3id.org/security/v1",
            "https://w3id.org/security/multikey/v1"
        ]),
    );
    for (k, v) in actor.profile_map() {
        doc.insert(k, v);
    }
    doc.insert("type".into(), actor.kind.as_str().into());
    doc.insert("id".into(), id.as_str().into());
    doc.insert("preferredUsername".into(), actor.username.as_str().into());
    for collection in ["inbox", "outbox", "followers", "following"] {
        doc.insert(collection.into(), format!("{id}/{collection}").into());
    }
    let history: Vec<Value> = actor
        .keys
        .iter()
        .map(|k| {
            let mut key = json!({
                "id": k.id,
                "type": "Multikey",
                "controller": id,
                "publicKeyMultibase": k.verifying_key().map(|v| multikey::encode(&v)).unwrap_or_default(),
                "purposes": k.purposes.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                "addedAtSeq": k.added_seq,
                "validFromSeq": k.valid_from_seq,
                "added": k.added_at,
            });
            if let (Some(seq), Some(at)) = (k.superseded_seq, &k.superseded_at) {
                key["supersededAtSeq"] = seq.into();
                key["superseded"] = at.as_str().into();
            }
            key
        })
        .collect();
    doc.insert("assertionMethod".into(), Value::Array(history));
    if let Some(pem) = http_key_pem {
        doc.insert(
            "publicKey".into(),
            json!({
                "id": rsa::key_id(id),
                "owner": id,
                "publicKeyPem": pem,
            }),
        );
    }
    doc.insert(
        "endpoints".into(),
        json!({"sharedInbox": format!("{}/inbox", origin_of(id))}),
    );
    if let Some(target) = &actor.moved_to {
        doc.insert("movedTo".into(), target.as_str().into());
    }
    doc.insert("published".into(), actor.created.as_str().into());
    doc.insert("updated".into(), actor.updated.as_str().into());
    doc.insert(
        "log".into(),
        json!({"seq": actor.tip_seq, "tip": actor.tip_id}),
    );
    Value::Object(doc)
}

/// The scheme and authority of `url` (`https://host:port`).
fn origin_of(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    url[after..]
        .find('/')
        .map_or(url, |slash| &url[..after + slash])
}

/// A new actor, as the `Create` at seq 1 of its log introduces it.
#[derive(Debug, Clone, Copy)]
pub struct NewActor<'a> {
    /// The actor's URL.
    pub id: &'a str,
    pub kind: ActorKind,
    pub username: &'a str,
    /// The profile's display `name`, if it is to have one from the start.
    pub name: Option<&'a str>,
    /// The first key's id (`{id}#…`) and the key; it gets both purposes.
    pub key_id: &'a str,
    pub key: &'a VerifyingKey,
    pub published: &'a str,
}

impl NewActor<'_> {
    /// The unsigned public `Create` of the actor object (seq 1, no `prev`).
    pub fn create(&self) -> Map<String, Value> {
        let id = self.id;
        let mut object = json!({
            "type": self.kind.as_str(),
            "id": id,
            "preferredUsername": self.username,
            "keys": {"add": [{
                "id": self.key_id,
                "type": "Multikey",
                "controller": id,
                "publicKeyMultibase": multikey::encode(self.key),
                "purposes": [Purpose::SignActivity.as_str(), Purpose::RotateKey.as_str()],
            }]},
        });
        if let Some(name) = self.name {
            object["name"] = name.into();
        }
        let mut create = Map::new();
        create.insert("type".into(), "Create".into());
        create.insert("actor".into(), id.into());
        create.insert("object".into(), object);
        create.insert("to".into(), json!([PUBLIC]));
        create.insert("published".into(), self.published.into());
        create.insert("seq".into(), 1.into());
        create.insert("prev".into(), Value::Null);
        create
    }
}

/// Reads the key history out of an actor document (`assertionMethod`, as
/// [`document`] writes it). Keys are checked like any key that enters the
/// node: weak keys are refused.
pub fn keys_from_document(doc: &Value) -> Result<Vec<KeyRecord>, IdentityError> {
    let actor = doc
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| object_err("id", "is missing from the actor document"))?;
    let methods = doc
        .get("assertionMethod")
        .and_then(Value::as_array)
        .ok_or_else(|| object_err("assertionMethod", "must list the actor's keys"))?;
    let mut keys = Vec::new();
    for m in methods {
        let id = m
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| object_err("assertionMethod[].id", "is required"))?;
        if !id.starts_with(&format!("{actor}#")) {
            return Err(object_err(
                "assertionMethod[].id",
                &format!("{id} does not belong to {actor}"),
            ));
        }
        let multibase = m
            .get("publicKeyMultibase")
            .and_then(Value::as_str)
            .ok_or_else(|| object_err("assertionMethod[].publicKeyMultibase", "is required"))?;
        let public = multikey::decode(multibase).map_err(|e| IdentityError::Key(e.to_string()))?;
        let seq = |field: &str| m.get(field).and_then(Value::as_u64);
        let valid_from_seq = seq("validFromSeq")
            .ok_or_else(|| object_err("assertionMethod[].validFromSeq", "is required"))?;
        keys.push(KeyRecord {
            id: id.to_owned(),
            public: public.to_bytes(),
            purposes: parse_purposes(m.get("purposes"))?,
            added_seq: seq("addedAtSeq").unwrap_or(valid_from_seq),
            valid_from_seq,
            added_at: m
                .get("added")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            superseded_seq: seq("supersededAtSeq"),
            superseded_at: m
                .get("superseded")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    Ok(keys)
}

/// Whether the document lists a weft key history (an `assertionMethod`
/// entry with `validFromSeq`). An ordinary ActivityPub actor (Mastodon's,
/// say) has none, only the `publicKey` its requests are signed with.
pub fn has_key_history(doc: &Value) -> bool {
    doc.get("assertionMethod")
        .and_then(Value::as_array)
        .is_some_and(|methods| methods.iter().any(|m| m.get("validFromSeq").is_some()))
}

/// The document's `inbox`.
pub fn inbox(doc: &Value) -> Option<&str> {
    doc.get("inbox").and_then(Value::as_str)
}

/// The shared inbox the document offers (`endpoints.sharedInbox`).
pub fn shared_inbox(doc: &Value) -> Option<&str> {
    doc.get("endpoints")?.get("sharedInbox")?.as_str()
}

/// A key an actor document lists for its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListedKey<'a> {
    /// A `publicKey`'s `publicKeyPem`, as written (not yet parsed).
    Pem(&'a str),
    /// A Multikey of `assertionMethod`.
    Ed25519(VerifyingKey),
}

/// The key `key_id` as the document lists it for `owner`: a `publicKey`
/// (one or several) owned by `owner`, or a Multikey of `assertionMethod`
/// controlled by `owner` (an entry that names no owner or controller
/// counts as `owner`'s). `None` when the first entry with that id is
/// unusable.
pub fn listed_key<'d>(doc: &'d Value, owner: &str, key_id: &str) -> Option<ListedKey<'d>> {
    let as_list = |v: Option<&'d Value>| -> Vec<&'d Value> {
        match v {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(item @ Value::Object(_)) => vec![item],
            _ => Vec::new(),
        }
    };
    let names = |entry: &Value, by: &str| {
        let belongs = entry
            .get(by)
            .and_then(Value::as_str)
            .is_none_or(|o| o == owner);
        entry.get("id").and_then(Value::as_str) == Some(key_id) && belongs
    };
    if let Some(key) = as_list(doc.get("publicKey"))
        .into_iter()
        .find(|k| names(k, "owner"))
    {
        return key
            .get("publicKeyPem")
            .and_then(Value::as_str)
            .map(ListedKey::Pem);
    }
    let method = as_list(doc.get("assertionMethod"))
        .into_iter()
        .find(|m| names(m, "controller"))?;
    let multibase = method.get("publicKeyMultibase").and_then(Value::as_str)?;
    multikey::decode(multibase).ok().map(ListedKey::Ed25519)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::actor::{Signature, apply};
    use crate::model::Signed;
    use ed25519_dalek::SigningKey;

    fn actor() -> ActorState {
        let secret = SigningKey::from_bytes(&[3u8; 32]);
        let id = "https://node.example/actors/ann";
        let key_id = format!("{id}#key-1");
        let create = NewActor {
            id,
            kind: ActorKind::Person,
            username: "ann",
            name: Some("Ann"),
            key_id: &key_id,
            key: &secret.verifying_key(),
            published: "2026-01-01T00:00:00.000Z",
        }
        .create();
        let signed = Signed::sign(create, &key_id, &secret).expect("signs");
        apply(None, &signed, Signature::Verify).expect("a valid Create")
    }

    #[test]
    fn the_document_is_read_back_as_written() {
        let actor = actor();
        assert_eq!(actor.profile_map()["name"], "Ann");
        let doc = document(&actor, Some("PEM"));
        assert_eq!(keys_from_document(&doc), Ok(actor.keys.clone()));
        assert!(has_key_history(&doc));
        assert_eq!(inbox(&doc), Some("https://node.example/actors/ann/inbox"));
        assert_eq!(shared_inbox(&doc), Some("https://node.example/inbox"));
        let owner = actor.id.as_str();
        assert_eq!(
            listed_key(&doc, owner, &rsa::key_id(owner)),
            Some(ListedKey::Pem("PEM"))
        );
        let key = actor.keys[0].verifying_key().expect("a valid key");
        assert_eq!(
            listed_key(&doc, owner, &actor.keys[0].id),
            Some(ListedKey::Ed25519(key))
        );
        assert_eq!(
            listed_key(&doc, "https://else.example/x", &actor.keys[0].id),
            None
        );
    }
}
