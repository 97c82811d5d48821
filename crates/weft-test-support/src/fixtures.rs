//! Drafts the tests publish: a public note, a note only its author may
//! read.
//!
//! Drafts only, unsigned and without `actor`, `seq` or `prev`: the node
//! fills those in when it publishes ([`crate::Api::publish`]); a log signed
//! by the test itself is [`crate::sign`].

use serde_json::{Value, json};

/// The ActivityStreams Public collection.
pub use weft_core::model::PUBLIC;

/// A public Note draft.
pub fn note(content: &str) -> Value {
    json!({"type": "Create", "object": {"type": "Note", "content": content}, "to": [PUBLIC]})
}

/// A Note draft addressed to nobody in particular: only its author (and the
/// admin) may read it.
pub fn private_note(content: &str) -> Value {
    json!({"type": "Create", "object": {"type": "Note", "content": content}})
}
