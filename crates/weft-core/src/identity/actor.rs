//! Actor state and the rules of its lifecycle: `Create` at seq 1, profile
//! `Update`, key rotation, `Move` (docs/architecture.md §4).
//!
//! [`apply`] is the single place that decides whether an activity may extend
//! an actor's log and what the actor looks like afterwards. Local publishing
//! and inbound federation both go through it. It knows nothing about
//! storage or HTTP, and nothing of the actor document's format: writing and
//! reading that is `wire::actor`.

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::multikey::{self, KeyError};
use crate::model::envelope::Signed;

/// Fields of an actor object that the node derives and a client may not set.
pub const RESERVED_PROFILE_FIELDS: [&str; 9] = [
    "inbox",
    "outbox",
    "followers",
    "following",
    "publicKey",
    "assertionMethod",
    "movedTo",
    "endpoints",
    "@context",
];

/// The kinds of actor (docs/architecture.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActorKind {
    Person,
    Service,
    Group,
}

impl ActorKind {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Person" => Some(Self::Person),
            "Service" => Some(Self::Service),
            "Group" => Some(Self::Group),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Person => "Person",
            Self::Service => "Service",
            Self::Group => "Group",
        }
    }
}

/// What a key may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Purpose {
    SignActivity,
    RotateKey,
}

impl Purpose {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "sign-activity" => Some(Self::SignActivity),
            "rotate-key" => Some(Self::RotateKey),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignActivity => "sign-activity",
            Self::RotateKey => "rotate-key",
        }
    }
}

/// One key in an actor's history.
///
/// A key signs activities at positions `valid_from_seq ..= superseded_at_seq`:
/// the genesis key is valid from seq 1 (the `Create` it signs), a key added by
/// a rotation at seq `n` from `n + 1`, and the rotation that supersedes a key
/// may itself be signed by that key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    pub public: [u8; 32],
    pub purposes: Vec<Purpose>,
    pub added_seq: u64,
    pub valid_from_seq: u64,
    pub added_at: String,
    pub superseded_seq: Option<u64>,
    pub superseded_at: Option<String>,
}

impl KeyRecord {
    pub fn valid_at(&self, seq: u64) -> bool {
        self.valid_from_seq <= seq && self.superseded_seq.is_none_or(|s| seq <= s)
    }

    pub fn has(&self, purpose: Purpose) -> bool {
        self.purposes.contains(&purpose)
    }

    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        multikey::from_bytes(&self.public)
    }
}

/// Everything the node knows about an actor, derived from its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorState {
    /// The actor's URL, which is its id.
    pub id: String,
    pub kind: ActorKind,
    pub username: String,
    /// Profile fields (name, summary, icon, …) as a JSON object text.
    pub profile: String,
    pub keys: Vec<KeyRecord>,
    pub tip_seq: u64,
    pub tip_id: String,
    pub moved_to: Option<String>,
    pub created: String,
    pub updated: String,
    /// `published` of the newest activity; the node never goes back in time.
    pub last_published: String,
    /// Number of this actor's activities that anonymous readers may see.
    pub public_count: u64,
}

impl ActorState {
    pub fn profile_map(&self) -> Map<String, Value> {
        serde_json::from_str(&self.profile).unwrap_or_default()
    }

    /// The newest key valid at `seq` with `purpose`.
    pub fn key_for(&self, seq: u64, purpose: Purpose) -> Option<&KeyRecord> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.valid_at(seq) && k.has(purpose))
    }

    /// Keys that are not superseded.
    pub fn current_keys(&self) -> impl Iterator<Item = &KeyRecord> {
        self.keys.iter().filter(|k| k.superseded_seq.is_none())
    }
}

/// Why an activity cannot extend an actor's log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("an actor's log starts with a Create of a Person, Service or Group at seq 1")]
    NotGenesis,
    #[error("the actor already exists; its Create is seq 1 of its log")]
    AlreadyCreated,
    #[error("`actor` is {got} but this log belongs to {expected}")]
    WrongActor { expected: String, got: String },
    #[error("`seq` must be {expected} (the next position of the log), not {got}")]
    Seq { expected: u64, got: u64 },
    #[error("`prev` must be {expected}, the id of the previous activity")]
    Prev { expected: String },
    #[error("`{field}` {problem}")]
    Object { field: String, problem: String },
    #[error("key {0} is not one of the actor's keys")]
    UnknownKey(String),
    #[error("key {key} is not valid at seq {seq} (valid from {from}{until})")]
    KeyNotValid {
        key: String,
        seq: u64,
        from: u64,
        until: String,
    },
    #[error("key {key} lacks the `{purpose}` purpose needed to sign this activity")]
    Purpose { key: String, purpose: &'static str },
    #[error("{0}")]
    Key(String),
    #[error("the signature does not verify under key {0}")]
    BadSignature(String),
    #[error("the rotation would leave no valid key with the `{0}` purpose")]
    Lockout(&'static str),
}

/// Whether [`apply`] must check the signature (input from outside) or may
/// trust it (the kernel has just signed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    Verify,
    Trusted,
}

/// What an activity means to the actor's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Create(ActorKind),
    Update {
        rotation: bool,
    },
    Move,
    /// Anything else: the actor's state only advances its tip.
    Other,
}

impl Lifecycle {
    pub fn of(json: &Map<String, Value>) -> Self {
        let kind = json.get("type").and_then(Value::as_str).unwrap_or("");
        let object = json.get("object");
        let object_kind = object
            .and_then(|o| o.get("type"))
            .and_then(Value::as_str)
            .and_then(ActorKind::parse);
        match (kind, object_kind) {
            ("Create", Some(k)) => Self::Create(k),
            ("Update", Some(_)) => Self::Update {
                rotation: object.and_then(|o| o.get("keys")).is_some(),
            },
            ("Move", _) => Self::Move,
            _ => Self::Other,
        }
    }

    /// Actor lifecycle activities are always visible to anonymous readers.
    pub fn always_public(self) -> bool {
        !matches!(self, Self::Other)
    }

    /// The purpose the signing key needs.
    pub fn purpose(self) -> Purpose {
        match self {
            Self::Update { rotation: true } => Purpose::RotateKey,
            _ => Purpose::SignActivity,
        }
    }
}

/// Checks that `act` may extend the log whose current state is `prev` (None
/// for a new actor), and returns the actor's state after it.
pub fn apply(
    prev: Option<&ActorState>,
    act: &Signed,
    signature: Signature,
) -> Result<ActorState, IdentityError> {
    let lifecycle = Lifecycle::of(&act.json);
    let header = &act.header;
    let Some(prev) = prev else {
        return genesis(act, lifecycle, signature);
    };
    if header.actor != prev.id {
        return Err(IdentityError::WrongActor {
            expected: prev.id.clone(),
            got: header.actor.clone(),
        });
    }
    if header.seq != prev.tip_seq + 1 {
        return Err(IdentityError::Seq {
            expected: prev.tip_seq + 1,
            got: header.seq,
        });
    }
    if header.prev.as_deref() != Some(prev.tip_id.as_str()) {
        return Err(IdentityError::Prev {
            expected: prev.tip_id.clone(),
        });
    }
    let key = signing_key(&prev.keys, act, lifecycle.purpose())?;
    if signature == Signature::Verify {
        check_signature(key, act)?;
    }

    let mut next = prev.clone();
    next.tip_seq = header.seq;
    next.tip_id = act.id.clone();
    next.last_published = header.published.clone();
    match lifecycle {
        Lifecycle::Create(_) => return Err(IdentityError::AlreadyCreated),
        Lifecycle::Update { rotation } => {
            let object = actor_object(act, prev)?;
            merge_profile(&mut next, object)?;
            if rotation {
                rotate(&mut next, object, act)?;
            }
            next.updated = header.published.clone();
        }
        Lifecycle::Move => {
            let target = act
                .json
                .get("target")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    object_err(
                        "target",
                        "must be the URL of the account the actor moves to",
                    )
                })?;
            let object_id = match act.json.get("object") {
                Some(Value::String(s)) => Some(s.as_str()),
                Some(o) => o.get("id").and_then(Value::as_str),
                None => None,
            };
            if object_id != Some(prev.id.as_str()) {
                return Err(object_err(
                    "object",
                    &format!("of a Move must be the actor itself ({})", prev.id),
                ));
            }
            if !is_http_url(target) || target == prev.id {
                return Err(object_err(
                    "target",
                    "must be an http(s) URL of another actor",
                ));
            }
            next.moved_to = Some(target.to_owned());
            next.updated = header.published.clone();
        }
        Lifecycle::Other => {}
    }
    Ok(next)
}

fn genesis(
    act: &Signed,
    lifecycle: Lifecycle,
    signature: Signature,
) -> Result<ActorState, IdentityError> {
    let Lifecycle::Create(kind) = lifecycle else {
        return Err(IdentityError::NotGenesis);
    };
    let header = &act.header;
    if header.seq != 1 {
        return Err(IdentityError::NotGenesis);
    }
    let object = act
        .json
        .get("object")
        .and_then(Value::as_object)
        .ok_or_else(|| object_err("object", "must be the actor object"))?;
    if object.get("id").and_then(Value::as_str) != Some(header.actor.as_str()) {
        return Err(object_err(
            "object.id",
            "must equal `actor` in the actor's Create",
        ));
    }
    let username = object
        .get("preferredUsername")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| object_err("object.preferredUsername", "is required"))?
        .to_owned();
    let mut state = ActorState {
        id: header.actor.clone(),
        kind,
        username,
        profile: "{}".into(),
        keys: Vec::new(),
        tip_seq: 1,
        tip_id: act.id.clone(),
        moved_to: None,
        created: header.published.clone(),
        updated: header.published.clone(),
        last_published: header.published.clone(),
        public_count: 0,
    };
    merge_profile(&mut state, object)?;
    let keys = object
        .get("keys")
        .ok_or_else(|| object_err("object.keys", "must list the actor's first key"))?;
    add_keys(&mut state, keys, act, 1)?;
    if state.keys.is_empty() {
        return Err(object_err("object.keys.add", "must hold at least one key"));
    }
    // The genesis activity is self-certifying: signed by a key it introduces.
    let key = signing_key(&state.keys, act, Purpose::SignActivity)?;
    if signature == Signature::Verify {
        check_signature(key, act)?;
    }
    require_purposes(&state, 2)?;
    Ok(state)
}

/// Checks `act` against a key history alone: the key must be in `keys`,
/// valid at the activity's seq, have the purpose its lifecycle needs, and
/// the signature must verify strictly. Used where the full log is not at
/// hand (an actor document, `weft verify`).
pub fn verify_with_history(keys: &[KeyRecord], act: &Signed) -> Result<(), IdentityError> {
    check_signature(key_for_proof(keys, act)?, act)
}

/// The key in `keys` that must have signed `act`: named by its proof, valid
/// at its seq, with the purpose its lifecycle needs. Does not check the
/// signature itself.
pub fn key_for_proof<'k>(
    keys: &'k [KeyRecord],
    act: &Signed,
) -> Result<&'k KeyRecord, IdentityError> {
    signing_key(keys, act, Lifecycle::of(&act.json).purpose())
}

fn signing_key<'s>(
    keys: &'s [KeyRecord],
    act: &Signed,
    purpose: Purpose,
) -> Result<&'s KeyRecord, IdentityError> {
    let key = keys
        .iter()
        .find(|k| k.id == act.key_id)
        .ok_or_else(|| IdentityError::UnknownKey(act.key_id.clone()))?;
    let seq = act.header.seq;
    if !key.valid_at(seq) {
        return Err(IdentityError::KeyNotValid {
            key: key.id.clone(),
            seq,
            from: key.valid_from_seq,
            until: key
                .superseded_seq
                .map(|s| format!(", superseded at {s}"))
                .unwrap_or_default(),
        });
    }
    if !key.has(purpose) {
        return Err(IdentityError::Purpose {
            key: key.id.clone(),
            purpose: purpose.as_str(),
        });
    }
    Ok(key)
}

fn check_signature(key: &KeyRecord, act: &Signed) -> Result<(), IdentityError> {
    let verifying = key
        .verifying_key()
        .map_err(|e| IdentityError::Key(e.to_string()))?;
    act.verify_with(&verifying)
        .map_err(|_| IdentityError::BadSignature(key.id.clone()))
}

fn actor_object<'a>(
    act: &'a Signed,
    prev: &ActorState,
) -> Result<&'a Map<String, Value>, IdentityError> {
    let object = act
        .json
        .get("object")
        .and_then(Value::as_object)
        .ok_or_else(|| object_err("object", "must be the actor object"))?;
    if object.get("id").and_then(Value::as_str) != Some(prev.id.as_str()) {
        return Err(object_err(
            "object.id",
            &format!("must be the actor's own id ({})", prev.id),
        ));
    }
    if object.get("type").and_then(Value::as_str) != Some(prev.kind.as_str()) {
        return Err(object_err(
            "object.type",
            &format!("must stay {}", prev.kind.as_str()),
        ));
    }
    Ok(object)
}

fn merge_profile(state: &mut ActorState, object: &Map<String, Value>) -> Result<(), IdentityError> {
    let mut profile = state.profile_map();
    for (field, value) in object {
        if RESERVED_PROFILE_FIELDS.contains(&field.as_str()) {
            return Err(object_err(
                &format!("object.{field}"),
                "is derived by the node and cannot be set",
            ));
        }
        match field.as_str() {
            "id" | "type" | "keys" => {}
            "preferredUsername" => {
                if value.as_str() != Some(state.username.as_str()) && !profile.is_empty() {
                    return Err(object_err(
                        "object.preferredUsername",
                        "cannot change; it is part of the actor's URL",
                    ));
                }
            }
            _ if value.is_null() => {
                profile.remove(field);
            }
            _ => {
                profile.insert(field.clone(), value.clone());
            }
        }
    }
    if !profile.contains_key("preferredUsername") {
        profile.insert(
            "preferredUsername".into(),
            Value::String(state.username.clone()),
        );
    }
    state.profile = Value::Object(profile).to_string();
    Ok(())
}

fn rotate(
    state: &mut ActorState,
    object: &Map<String, Value>,
    act: &Signed,
) -> Result<(), IdentityError> {
    let keys = object
        .get("keys")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            object_err(
                "object.keys",
                "must be an object with `add` and/or `supersede`",
            )
        })?;
    let seq = act.header.seq;
    if let Some(supersede) = keys.get("supersede") {
        let ids = supersede
            .as_array()
            .ok_or_else(|| object_err("object.keys.supersede", "must be a list of key ids"))?;
        for id in ids {
            let id = id
                .as_str()
                .ok_or_else(|| object_err("object.keys.supersede", "must be a list of key ids"))?;
            let key = state
                .keys
                .iter_mut()
                .find(|k| k.id == id)
                .ok_or_else(|| IdentityError::UnknownKey(id.to_owned()))?;
            if key.superseded_seq.is_some() {
                return Err(object_err(
                    "object.keys.supersede",
                    &format!("names {id}, which is already superseded"),
                ));
            }
            key.superseded_seq = Some(seq);
            key.superseded_at = Some(act.header.published.clone());
        }
    }
    add_keys(state, &Value::Object(keys.clone()), act, seq + 1)?;
    require_purposes(state, seq + 1)
}

fn add_keys(
    state: &mut ActorState,
    keys: &Value,
    act: &Signed,
    valid_from: u64,
) -> Result<(), IdentityError> {
    let Some(add) = keys.get("add") else {
        return Ok(());
    };
    let add = add
        .as_array()
        .ok_or_else(|| object_err("object.keys.add", "must be a list of keys"))?;
    for entry in add {
        let id = entry
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| object_err("object.keys.add[].id", "is required"))?;
        let fragment_ok = id
            .strip_prefix(state.id.as_str())
            .and_then(|rest| rest.strip_prefix('#'))
            .is_some_and(|f| !f.is_empty());
        if !fragment_ok {
            return Err(object_err(
                "object.keys.add[].id",
                &format!("must be `{}#<name>`", state.id),
            ));
        }
        if state.keys.iter().any(|k| k.id == id) {
            return Err(object_err(
                "object.keys.add[].id",
                &format!("{id} is already used"),
            ));
        }
        let multibase = entry
            .get("publicKeyMultibase")
            .and_then(Value::as_str)
            .ok_or_else(|| object_err("object.keys.add[].publicKeyMultibase", "is required"))?;
        let public = multikey::decode(multibase).map_err(|e| IdentityError::Key(e.to_string()))?;
        let purposes = parse_purposes(entry.get("purposes"))?;
        state.keys.push(KeyRecord {
            id: id.to_owned(),
            public: public.to_bytes(),
            purposes,
            added_seq: act.header.seq,
            valid_from_seq: valid_from,
            added_at: act.header.published.clone(),
            superseded_seq: None,
            superseded_at: None,
        });
    }
    Ok(())
}

/// Parses a `purposes` list; an unknown purpose is an error, not ignored.
pub fn parse_purposes(value: Option<&Value>) -> Result<Vec<Purpose>, IdentityError> {
    let list = value
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| {
            object_err(
                "object.keys.add[].purposes",
                "must list `sign-activity` and/or `rotate-key`",
            )
        })?;
    let mut purposes = Vec::new();
    for p in list {
        let purpose = p.as_str().and_then(Purpose::parse).ok_or_else(|| {
            object_err(
                "object.keys.add[].purposes",
                &format!("has unknown purpose {p}; use `sign-activity` or `rotate-key`"),
            )
        })?;
        if !purposes.contains(&purpose) {
            purposes.push(purpose);
        }
    }
    Ok(purposes)
}

fn require_purposes(state: &ActorState, seq: u64) -> Result<(), IdentityError> {
    for purpose in [Purpose::SignActivity, Purpose::RotateKey] {
        if state.key_for(seq, purpose).is_none() {
            return Err(IdentityError::Lockout(purpose.as_str()));
        }
    }
    Ok(())
}

pub(crate) fn object_err(field: &str, problem: &str) -> IdentityError {
    IdentityError::Object {
        field: field.to_owned(),
        problem: problem.to_owned(),
    }
}

/// An http(s) URL with something after the scheme.
pub fn is_http_url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://")) && s.len() > "https://".len()
}
