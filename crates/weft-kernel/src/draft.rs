//! Turns a client's draft into an unsigned activity: checks the fields the
//! client may not set, fills the envelope header and, for a key rotation,
//! generates the new keys.
//!
//! Pure apart from key generation; does not sign or store anything.

use ed25519_dalek::SigningKey;
use serde_json::{Map, Value, json};

use super::KernelError;
use weft_core::identity::actor::{Lifecycle, parse_purposes};
use weft_core::identity::{ActorState, multikey};
use weft_core::wire::{self, AS_CONTEXT};

/// An unsigned activity ready to be signed.
#[derive(Debug)]
pub struct Prepared {
    pub json: Map<String, Value>,
    pub lifecycle: Lifecycle,
    /// Keys a rotation introduces, to be kept in the key store if it lands.
    pub fresh_keys: Vec<(String, SigningKey)>,
}

/// Checks `draft` against the publishing actor's state and fills `actor`,
/// `seq`, `prev` and `published`.
pub fn prepare(
    mut draft: Map<String, Value>,
    actor: &ActorState,
    published: &str,
) -> Result<Prepared, KernelError> {
    for field in ["id", "proof"] {
        if draft.contains_key(field) {
            return Err(KernelError::field(
                field,
                "is computed by the node when it signs the activity; leave it out of the draft",
            ));
        }
    }
    if draft.contains_key("published") {
        return Err(KernelError::field(
            "published",
            "is set by the node; leave it out of the draft",
        ));
    }
    let next_seq = actor.tip_seq + 1;
    match draft.get("actor") {
        None => {}
        Some(Value::String(a)) if *a == actor.id => {}
        Some(_) => {
            return Err(KernelError::field(
                "actor",
                format!(
                    "must be {} (the actor this token publishes as), or left out",
                    actor.id
                ),
            ));
        }
    }
    match draft.get("seq") {
        None => {}
        Some(v) if v.as_u64() == Some(next_seq) => {}
        Some(_) => {
            return Err(KernelError::field(
                "seq",
                format!(
                    "must be {next_seq}, the next position of {}'s log; leave `seq` out to let the node assign it",
                    actor.username
                ),
            ));
        }
    }
    match draft.get("prev") {
        None => {}
        Some(Value::String(p)) if *p == actor.tip_id => {}
        Some(_) => {
            return Err(KernelError::field(
                "prev",
                format!(
                    "must be {}, the id of {}'s latest activity, or left out",
                    actor.tip_id, actor.username
                ),
            ));
        }
    }
    match draft.get("type") {
        Some(Value::String(t)) if !t.is_empty() => {}
        _ => {
            return Err(KernelError::field(
                "type",
                "is required: the activity's type, e.g. \"Create\"",
            ));
        }
    }

    let lifecycle = Lifecycle::of(&draft);
    let mut fresh_keys = Vec::new();
    match lifecycle {
        Lifecycle::Create(_) => {
            return Err(KernelError::field(
                "object.type",
                "actors are created with POST /actors (or `weft actor create`), not published",
            ));
        }
        Lifecycle::Update { rotation } => {
            let Some(Value::Object(object)) = draft.get_mut("object") else {
                return Err(KernelError::field("object", "must be the actor object"));
            };
            fill_own_id(object, actor)?;
            if rotation {
                fresh_keys = fill_rotation(object, actor)?;
            }
        }
        Lifecycle::Move => {
            if !draft.contains_key("object") {
                draft.insert("object".into(), Value::String(actor.id.clone()));
            }
        }
        Lifecycle::Other => fill_created_object(&mut draft, actor, next_seq, published),
    }

    canonical_integers(&mut draft);
    if !draft.contains_key("@context") {
        draft.insert("@context".into(), Value::String(AS_CONTEXT.to_owned()));
    }
    draft.insert("actor".into(), Value::String(actor.id.clone()));
    draft.insert("seq".into(), Value::from(next_seq));
    draft.insert("prev".into(), Value::String(actor.tip_id.clone()));
    draft.insert("published".into(), Value::String(published.to_owned()));
    Ok(Prepared {
        json: draft,
        lifecycle,
        fresh_keys,
    })
}

/// Writes every number with an integer value (within ±(2^53 − 1)) as an
/// integer (`5`, not `5.0`): peers refuse an envelope whose numbers are not
/// spelt as JSON canonicalisation spells them, and the stored text is
/// what they get.
fn canonical_integers(map: &mut Map<String, Value>) {
    fn fix(value: &mut Value) {
        match value {
            Value::Number(n) if n.is_f64() => {
                if let Some(f) = n.as_f64()
                    && f.fract() == 0.0
                    && f.abs() <= weft_core::model::jcs::MAX_SAFE_INTEGER as f64
                {
                    // Exact: an integral double of at most 53 bits.
                    *value = Value::from(f as i64);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(fix),
            Value::Object(map) => map.values_mut().for_each(fix),
            _ => {}
        }
    }
    map.values_mut().for_each(fix);
}

/// Gives the object a `Create` makes what ActivityPub peers expect of it
/// (docs/architecture.md §9), where the draft left it out: a dereferenceable `id`
/// (`{actor}/objects/{seq}`), `attributedTo`, `published`, and the
/// activity's `to`/`cc`.
fn fill_created_object(
    draft: &mut Map<String, Value>,
    actor: &ActorState,
    seq: u64,
    published: &str,
) {
    if draft.get("type").and_then(Value::as_str) != Some("Create") {
        return;
    }
    let audience: Vec<(String, Value)> = ["to", "cc"]
        .into_iter()
        .filter_map(|f| draft.get(f).map(|v| (f.to_owned(), v.clone())))
        .collect();
    let Some(Value::Object(object)) = draft.get_mut("object") else {
        return;
    };
    object
        .entry("id")
        .or_insert_with(|| Value::String(wire::object::url(&actor.id, seq)));
    object
        .entry("attributedTo")
        .or_insert_with(|| Value::String(actor.id.clone()));
    object
        .entry("published")
        .or_insert_with(|| Value::String(published.to_owned()));
    for (field, value) in audience {
        object.entry(field).or_insert(value);
    }
}

fn fill_own_id(object: &mut Map<String, Value>, actor: &ActorState) -> Result<(), KernelError> {
    match object.get("id") {
        None => {
            object.insert("id".into(), Value::String(actor.id.clone()));
            Ok(())
        }
        Some(Value::String(id)) if *id == actor.id => Ok(()),
        Some(_) => Err(KernelError::field(
            "object.id",
            format!(
                "an actor can only update itself ({}); leave it out",
                actor.id
            ),
        )),
    }
}

/// Expands a rotation draft: `keys.add` entries carry only `purposes`; the
/// node generates each key and fills `id`, `type`, `controller` and
/// `publicKeyMultibase`. `keys.supersede` may name keys by fragment.
fn fill_rotation(
    object: &mut Map<String, Value>,
    actor: &ActorState,
) -> Result<Vec<(String, SigningKey)>, KernelError> {
    let Some(Value::Object(keys)) = object.get_mut("keys") else {
        return Err(KernelError::field(
            "object.keys",
            "must be {\"add\": [{\"purposes\": [...]}], \"supersede\": [\"#key-1\"]}",
        ));
    };
    if let Some(Value::Array(ids)) = keys.get_mut("supersede") {
        for id in ids.iter_mut() {
            if let Value::String(s) = id {
                if let Some(fragment) = s.strip_prefix('#') {
                    *s = format!("{}#{fragment}", actor.id);
                } else if !s.contains('#') {
                    *s = format!("{}#{s}", actor.id);
                }
            }
        }
    }
    let mut fresh = Vec::new();
    if let Some(add) = keys.get_mut("add") {
        let Value::Array(entries) = add else {
            return Err(KernelError::field(
                "object.keys.add",
                "must be a list of {\"purposes\": [...]}",
            ));
        };
        let mut rng = rand::rngs::OsRng;
        for (i, entry) in entries.iter_mut().enumerate() {
            let Value::Object(entry) = entry else {
                return Err(KernelError::field(
                    format!("object.keys.add[{i}]"),
                    "must be an object",
                ));
            };
            if entry.contains_key("id") || entry.contains_key("publicKeyMultibase") {
                return Err(KernelError::field(
                    format!("object.keys.add[{i}]"),
                    "keys are generated by the node; give only `purposes`",
                ));
            }
            let default = json!(["sign-activity", "rotate-key"]);
            let purposes = parse_purposes(Some(entry.get("purposes").unwrap_or(&default)))?;
            let id = format!("{}#key-{}", actor.id, actor.keys.len() + 1 + i);
            let secret = SigningKey::generate(&mut rng);
            entry.insert("id".into(), Value::String(id.clone()));
            entry.insert("type".into(), Value::String("Multikey".into()));
            entry.insert("controller".into(), Value::String(actor.id.clone()));
            entry.insert(
                "publicKeyMultibase".into(),
                Value::String(multikey::encode(&secret.verifying_key())),
            );
            entry.insert(
                "purposes".into(),
                Value::Array(
                    purposes
                        .iter()
                        .map(|p| Value::String(p.as_str().into()))
                        .collect(),
                ),
            );
            fresh.push((id, secret));
        }
    }
    Ok(fresh)
}
