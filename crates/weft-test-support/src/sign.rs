//! A weft actor whose secret keys the test holds ([`TestActor`]): its
//! `Create` with a Multikey, the next activities of its log signed as a weft
//! node signs them (the weft envelope: `seq`, `prev`, content id, Ed25519
//! proof), forks, key rotations, and signatures by a retired key — what a
//! peer, honest or not, sends to a node's inbox.
//!
//! Not HTTP Signatures (draft-cavage, RFC 9421): weft peers prove an
//! activity by its envelope, and the fediverse tests sign their requests
//! with `weft_federation::httpsig` themselves. Not a server: serving the
//! actor's document is [`crate::peer`].

use anyhow::Context;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::{Map, Value, json};
use weft_core::identity::actor::{Signature, apply};
use weft_core::identity::{ActorKind, ActorState};
use weft_core::model::Signed;
use weft_core::wire::actor::NewActor;

/// When a [`TestActor`]'s `Create` says it was published.
const CREATED: &str = "2026-11-21T00:00:00.000Z";
/// What the activities it signs say when their draft does not.
const PUBLISHED: &str = "2026-11-21T01:00:00.000Z";

/// A fresh Ed25519 key.
pub fn fresh_key() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

/// A key entry of `controller`'s `keys.add`: `key_id` is the Multikey
/// `key`, for signing activities and rotating keys.
pub fn multikey(controller: &str, key_id: &str, key: &VerifyingKey) -> Value {
    json!({
        "id": key_id, "type": "Multikey", "controller": controller,
        "publicKeyMultibase": weft_core::identity::multikey::encode(key),
        "purposes": ["sign-activity", "rotate-key"],
    })
}

/// Signs the activity `activity` (a JSON object with its envelope fields)
/// with `secret` as `key_id`.
pub fn sign_envelope(activity: Value, key_id: &str, secret: &SigningKey) -> anyhow::Result<Value> {
    let Value::Object(map) = activity else {
        anyhow::bail!("not an object: {activity}")
    };
    Ok(Value::Object(Signed::sign(map, key_id, secret)?.json))
}

/// A weft actor whose log the test signs: its current key and its state
/// (keys, tip) as a node that verified its log would hold it.
#[derive(Debug)]
pub struct TestActor {
    secret: SigningKey,
    /// The id of the key `secret` is.
    key_id: String,
    state: ActorState,
    /// The signed `Create` at seq 1.
    create: Value,
}

impl TestActor {
    /// A `Person` with id `id` and name `name`, a fresh key `{id}#key-1`
    /// and its signed `Create` at seq 1.
    pub fn create(id: &str, name: &str) -> anyhow::Result<Self> {
        let secret = fresh_key();
        let key_id = format!("{id}#key-1");
        let create = NewActor {
            id,
            kind: ActorKind::Person,
            username: name,
            name: None,
            key_id: &key_id,
            key: &secret.verifying_key(),
            published: CREATED,
        }
        .create();
        let signed = Signed::sign(create, &key_id, &secret)?;
        let state = apply(None, &signed, Signature::Verify)?;
        Ok(Self {
            secret,
            key_id,
            state,
            create: Value::Object(signed.json),
        })
    }

    /// The actor's signed `Create`, seq 1 of its log.
    pub fn create_activity(&self) -> &Value {
        &self.create
    }

    /// The actor's state: its id, keys and tip.
    pub fn state(&self) -> &ActorState {
        &self.state
    }

    /// Signs `draft` as the next activity of the log and advances the log.
    pub fn sign(&mut self, draft: Value) -> anyhow::Result<Value> {
        let signed = self.next(draft, &self.key_id, &self.secret)?;
        self.state = apply(Some(&self.state), &signed, Signature::Verify)?;
        Ok(Value::Object(signed.json))
    }

    /// Signs `draft` at the next position without advancing the log, so two
    /// calls make two different activities at one seq (a fork).
    pub fn sign_detached(&self, draft: Value) -> anyhow::Result<Value> {
        Ok(Value::Object(
            self.next(draft, &self.key_id, &self.secret)?.json,
        ))
    }

    /// Signs `draft` at the next position with `retired` as the first key
    /// (`…#key-1`), without advancing the log: what a thief of that key
    /// makes once it was rotated away.
    pub fn sign_with_retired(&self, draft: Value, retired: &SigningKey) -> anyhow::Result<Value> {
        let key_id = format!("{}#key-1", self.state.id);
        Ok(Value::Object(self.next(draft, &key_id, retired)?.json))
    }

    /// Rotates the key: an `Update` signed by the current key adds a new one
    /// and supersedes the current one, which is returned (as whoever stole
    /// it would hold it). The rotation is signed into the log, not sent.
    pub fn rotate(&mut self) -> anyhow::Result<SigningKey> {
        let secret = fresh_key();
        let id = self.state.id.clone();
        let key_id = format!("{id}#key-{}", self.state.keys.len() + 1);
        self.sign(
            json!({"type": "Update", "object": {"type": "Person", "id": id, "keys": {
                "add": [multikey(&id, &key_id, &secret.verifying_key())],
                "supersede": [self.key_id],
            }}}),
        )
        .context("signing the rotation")?;
        self.key_id = key_id;
        Ok(std::mem::replace(&mut self.secret, secret))
    }

    /// `draft` with the actor, the next seq and `prev`, signed by `secret`
    /// as `key_id`.
    fn next(&self, draft: Value, key_id: &str, secret: &SigningKey) -> anyhow::Result<Signed> {
        let mut map: Map<String, Value> = draft.as_object().cloned().context("draft object")?;
        map.insert("actor".into(), self.state.id.clone().into());
        map.insert("seq".into(), (self.state.tip_seq + 1).into());
        map.insert("prev".into(), self.state.tip_id.clone().into());
        map.entry("published").or_insert_with(|| PUBLISHED.into());
        Ok(Signed::sign(map, key_id, secret)?)
    }
}
