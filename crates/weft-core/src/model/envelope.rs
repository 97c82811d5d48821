//! The signed activity envelope (docs/architecture.md §3): header fields, canonical bytes,
//! id recomputation, and the Ed25519 proof.
//!
//! This checks that an activity is well-formed and self-consistent. It does
//! not decide whether the signing key belongs to the actor at that position:
//! that needs the actor's key history and lives in `identity`.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::{Map, Value};

use super::{cid, jcs};

/// The ActivityStreams Public collection.
pub const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";
/// Members that are not part of the canonical bytes.
const UNSIGNED: [&str; 2] = ["id", "proof"];

/// Why an activity is not a well-formed signed envelope.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("an activity must be a JSON object")]
    NotObject,
    #[error("`{0}` is missing")]
    Missing(&'static str),
    #[error("`{field}` must be {expected}")]
    Field {
        field: &'static str,
        expected: &'static str,
    },
    #[error("cannot canonicalise the activity: {0}")]
    Canonical(#[from] jcs::JcsError),
    #[error("`id` is not a valid activity id: {0}")]
    BadId(#[source] cid::CidError),
    #[error("`id` {claimed} does not match the activity's content, whose id is {computed}")]
    IdMismatch { claimed: String, computed: String },
    #[error("`proof.signature` must be 64 bytes in base64url without padding")]
    SignatureEncoding,
    #[error("the signature does not verify under key {0}")]
    BadSignature(String),
}

/// The envelope fields every activity carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The activity's `type`.
    pub kind: String,
    pub actor: String,
    pub seq: u64,
    pub prev: Option<String>,
    pub published: String,
}

/// A well-formed signed activity whose id has been recomputed.
///
/// A foreign activity (an ActivityPub server's, not a weft envelope) is
/// one too, with [`Signed::foreign`] set: its id is its URL, its `seq` is 0
/// (it is in no hash chain), and what proves it is the HTTP signature of
/// the request that brought it, kept as evidence; `signature` and
/// `canonical` are then empty and never checked.
#[derive(Debug, Clone)]
pub struct Signed {
    pub id: String,
    pub header: Header,
    pub key_id: String,
    pub signature: Signature,
    pub canonical: Vec<u8>,
    /// The whole activity, `id` and `proof` included.
    pub json: Map<String, Value>,
    /// The HTTP signature that brought a foreign activity.
    pub foreign: Option<Box<HttpEvidence>>,
}

/// The verified HTTP signature of the request that delivered a foreign
/// activity, kept beside it: anyone can check it again with the signer's
/// key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HttpEvidence {
    /// `cavage` or `rfc9421`.
    pub scheme: String,
    pub key_id: String,
    /// The actor that owns the key.
    pub signer: String,
    /// The exact signing string (cavage) or signature base (RFC 9421).
    pub signed: String,
    /// The signature, base64.
    pub signature: String,
    /// When it was made (Unix seconds).
    pub created: u64,
}

/// Why a foreign activity cannot be taken.
fn foreign_field(field: &'static str, expected: &'static str) -> EnvelopeError {
    EnvelopeError::Field { field, expected }
}

impl Signed {
    /// Parses a signed activity, recomputing its id. The signature is decoded
    /// but not verified: see [`Signed::verify_with`].
    pub fn parse(value: Value) -> Result<Self, EnvelopeError> {
        let Value::Object(json) = value else {
            return Err(EnvelopeError::NotObject);
        };
        let header = Header::parse(&json)?;
        let canonical = jcs::object_to_vec(&json, &UNSIGNED)?;
        let computed = cid::activity_id(&canonical);
        let claimed = json.get("id").ok_or(EnvelopeError::Missing("id"))?;
        let claimed = claimed.as_str().ok_or(EnvelopeError::Field {
            field: "id",
            expected: "a string",
        })?;
        // The bare content id, or its URL form on the author's base
        // (`{base}/activities/{id}`), which is what weft publishes.
        let bare = cid::internal(claimed);
        cid::parse(bare).map_err(EnvelopeError::BadId)?;
        if bare != computed {
            return Err(EnvelopeError::IdMismatch {
                claimed: claimed.to_owned(),
                computed,
            });
        }
        if bare != claimed && claimed != cid::activity_url(&header.actor, bare) {
            return Err(EnvelopeError::Field {
                field: "id",
                expected: "the bare content id, or `{base}/activities/{content id}` on the author's own base URL",
            });
        }
        let proof = json.get("proof").ok_or(EnvelopeError::Missing("proof"))?;
        let key_id = proof
            .get("key")
            .and_then(Value::as_str)
            .ok_or(EnvelopeError::Field {
                field: "proof.key",
                expected: "a key id string",
            })?
            .to_owned();
        let signature =
            proof
                .get("signature")
                .and_then(Value::as_str)
                .ok_or(EnvelopeError::Field {
                    field: "proof.signature",
                    expected: "a string",
                })?;
        let signature = decode_signature(signature)?;
        Ok(Self {
            id: computed,
            header,
            key_id,
            signature,
            canonical,
            json,
            foreign: None,
        })
    }

    /// A foreign activity proven by `evidence`: its `id` (an http(s) URL),
    /// `type` and `actor` (a URL, or an object with one as `id`) are
    /// required; `published` is kept when it is a valid timestamp, else the
    /// time it arrived (`received`, RFC 3339) stands in.
    pub fn foreign(
        json: Map<String, Value>,
        evidence: HttpEvidence,
        received: &str,
    ) -> Result<Self, EnvelopeError> {
        let id = json
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| is_http_url(id))
            .ok_or(foreign_field("id", "the activity's http(s) URL"))?
            .to_owned();
        let kind = non_empty_str(&json, "type")?;
        let actor = match json.get("actor") {
            Some(Value::String(a)) => Some(a.as_str()),
            Some(Value::Object(o)) => o.get("id").and_then(Value::as_str),
            _ => None,
        }
        .filter(|a| is_http_url(a))
        .ok_or(foreign_field(
            "actor",
            "the http(s) URL of the actor (or an object with it as `id`)",
        ))?
        .to_owned();
        let published = json
            .get("published")
            .and_then(Value::as_str)
            .filter(|p| humantime::parse_rfc3339(p).is_ok())
            .unwrap_or(received)
            .to_owned();
        Ok(Self {
            id,
            header: Header {
                kind,
                actor,
                seq: 0,
                prev: None,
                published,
            },
            key_id: evidence.key_id.clone(),
            signature: Signature::from_bytes(&[0; 64]),
            canonical: Vec::new(),
            json,
            foreign: Some(Box::new(evidence)),
        })
    }

    /// The same activity with its `id` in URL form,
    /// `{base}/activities/{content id}` on the author's base (docs/architecture.md §9),
    /// as a node publishes it: ActivityPub peers dereference it, weft
    /// peers read the content id from it. The content id, the canonical
    /// bytes and the proof are unchanged (`id` is not signed).
    pub fn with_url_id(mut self) -> Self {
        let url = cid::activity_url(&self.header.actor, &self.id);
        self.json.insert("id".into(), Value::String(url));
        self
    }

    /// Whether this is a foreign activity (no weft proof, no chain).
    pub fn is_foreign(&self) -> bool {
        self.foreign.is_some()
    }

    /// Signs an unsigned activity (every header field filled, no `id` or
    /// `proof`) with `key`, named `key_id`.
    pub fn sign(
        mut json: Map<String, Value>,
        key_id: &str,
        key: &SigningKey,
    ) -> Result<Self, EnvelopeError> {
        let header = Header::parse(&json)?;
        let canonical = jcs::object_to_vec(&json, &UNSIGNED)?;
        let id = cid::activity_id(&canonical);
        let signature = key.sign(&canonical);
        json.insert("id".into(), Value::String(id.clone()));
        let mut proof = Map::new();
        proof.insert("key".into(), Value::String(key_id.to_owned()));
        proof.insert(
            "signature".into(),
            Value::String(encode_signature(&signature)),
        );
        json.insert("proof".into(), Value::Object(proof));
        Ok(Self {
            id,
            header,
            key_id: key_id.to_owned(),
            signature,
            canonical,
            json,
            foreign: None,
        })
    }

    /// Checks the proof against `key` with `verify_strict` (no malleable or
    /// small-order signatures).
    pub fn verify_with(&self, key: &VerifyingKey) -> Result<(), EnvelopeError> {
        if self.foreign.is_some() {
            return Err(EnvelopeError::BadSignature(self.key_id.clone()));
        }
        key.verify_strict(&self.canonical, &self.signature)
            .map_err(|_| EnvelopeError::BadSignature(self.key_id.clone()))
    }

    /// The verb that interprets this activity (docs/architecture.md §1).
    pub fn verb(&self) -> &str {
        verb_of(&self.json)
    }

    /// Whether the activity is addressed to the Public collection.
    pub fn is_addressed_public(&self) -> bool {
        addressed_public(&self.json)
    }

    /// The activity serialised as JSON text.
    pub fn to_json_string(&self) -> String {
        // A map of `Value`s always serialises.
        serde_json::to_string(&self.json).unwrap_or_default()
    }
}

impl Header {
    /// Reads and type-checks the header fields of an activity.
    pub fn parse(json: &Map<String, Value>) -> Result<Self, EnvelopeError> {
        let kind = non_empty_str(json, "type")?;
        let actor = non_empty_str(json, "actor")?;
        let seq = json.get("seq").ok_or(EnvelopeError::Missing("seq"))?;
        let seq = seq
            .as_u64()
            .filter(|s| (1..=jcs::MAX_SAFE_INTEGER).contains(s))
            .ok_or(EnvelopeError::Field {
                field: "seq",
                expected: "a positive integer",
            })?;
        let prev = match json.get("prev") {
            None => return Err(EnvelopeError::Missing("prev")),
            Some(Value::Null) if seq == 1 => None,
            Some(Value::Null) => {
                return Err(EnvelopeError::Field {
                    field: "prev",
                    expected: "the id of the previous activity (only seq 1 has `prev: null`)",
                });
            }
            Some(Value::String(_)) if seq == 1 => {
                return Err(EnvelopeError::Field {
                    field: "prev",
                    expected: "null at seq 1, the start of an actor's log",
                });
            }
            Some(Value::String(p)) => {
                cid::parse(p).map_err(|_| EnvelopeError::Field {
                    field: "prev",
                    expected: "an activity id",
                })?;
                Some(p.clone())
            }
            Some(_) => {
                return Err(EnvelopeError::Field {
                    field: "prev",
                    expected: "an activity id or null",
                });
            }
        };
        let published = non_empty_str(json, "published")?;
        humantime::parse_rfc3339(&published).map_err(|_| EnvelopeError::Field {
            field: "published",
            expected: "an RFC 3339 UTC timestamp such as 2026-11-21T05:00:00.000Z",
        })?;
        Ok(Self {
            kind,
            actor,
            seq,
            prev,
            published,
        })
    }
}

/// The verb of an activity: its `type`, or, for `Create`, `Update` and
/// `Delete` of an embedded object, the object's `type`. A `Delete` of a
/// `Tombstone` (what Mastodon and others send: the deleted thing's type is
/// gone) is the `Delete` verb's, as a `Delete` naming its object by URL is.
pub fn verb_of(json: &Map<String, Value>) -> &str {
    let kind = json.get("type").and_then(Value::as_str).unwrap_or("");
    if matches!(kind, "Create" | "Update" | "Delete")
        && let Some(object_type) = json
            .get("object")
            .and_then(|o| o.get("type"))
            .and_then(Value::as_str)
        && !(kind == "Delete" && object_type == "Tombstone")
    {
        return object_type;
    }
    kind
}

/// Whether `to` or `cc` names the Public collection (in any of its spellings).
pub fn addressed_public(json: &Map<String, Value>) -> bool {
    ["to", "cc"].iter().any(|field| match json.get(*field) {
        Some(Value::String(s)) => is_public_iri(s),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).any(is_public_iri),
        _ => false,
    })
}

fn is_public_iri(s: &str) -> bool {
    matches!(s, PUBLIC | "as:Public" | "Public")
}

/// Base64url without padding, as `proof.signature` carries it.
pub fn encode_signature(signature: &Signature) -> String {
    data_encoding::BASE64URL_NOPAD.encode(&signature.to_bytes())
}

fn decode_signature(text: &str) -> Result<Signature, EnvelopeError> {
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(text.as_bytes())
        .map_err(|_| EnvelopeError::SignatureEncoding)?;
    let bytes: [u8; 64] = bytes
        .try_into()
        .map_err(|_| EnvelopeError::SignatureEncoding)?;
    Ok(Signature::from_bytes(&bytes))
}

fn non_empty_str(json: &Map<String, Value>, field: &'static str) -> Result<String, EnvelopeError> {
    match json.get(field) {
        None => Err(EnvelopeError::Missing(field)),
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(_) => Err(EnvelopeError::Field {
            field,
            expected: "a non-empty string",
        }),
    }
}

/// Whether `s` is an absolute http(s) URL with a host.
fn is_http_url(s: &str) -> bool {
    s.strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
}
