//! An activity as each contract version carries it across the boundary:
//! 0.1.0 with its whole JSON text, 0.2.0 with its most-read fields parsed
//! (`object-type`, `object-id`, `in-reply-to`, `to`, `cc`). The records of a
//! run are made once, for the first projection of each version that folds
//! the run, and lent to every other.
//!
//! It is the boundary's shape only; what a module does with it is the
//! module's own.

use std::cell::OnceCell;

use serde_json::{Map, Value};
use weft_core::model::Signed;

use super::bindings::{v0_1, v0_2};

/// One activity of a run, as the writer holds it.
#[derive(Debug, Clone, Copy)]
struct Item<'a> {
    signed: &'a Signed,
    json: &'a str,
    backfilled: bool,
}

/// A run of activities to fold, in log order, with their records under
/// each contract version made when first needed.
#[derive(Debug, Default)]
pub struct Activities<'a> {
    items: Vec<Item<'a>>,
    v0_1: OnceCell<Vec<v0_1::types::Activity>>,
    v0_2: OnceCell<Vec<v0_2::types::Activity>>,
}

impl<'a> Activities<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an activity (its signed form and JSON text) at the end of the run.
    pub fn push(&mut self, signed: &'a Signed, json: &'a str, backfilled: bool) {
        self.items.push(Item {
            signed,
            json,
            backfilled,
        });
        self.v0_1 = OnceCell::new();
        self.v0_2 = OnceCell::new();
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The `type` of the activity at `at`.
    pub(crate) fn kind(&self, at: usize) -> &str {
        self.items
            .get(at)
            .map_or("", |i| i.signed.header.kind.as_str())
    }

    /// The activities' ids and JSON texts, for a call whose source does not
    /// hold them (a dry run).
    pub(crate) fn texts(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.items.iter().map(|i| (i.signed.id.as_str(), i.json))
    }

    pub(crate) fn v0_1(&self) -> &[v0_1::types::Activity] {
        self.v0_1.get_or_init(|| {
            self.items
                .iter()
                .map(|i| v0_1_record(i.signed, i.json, i.backfilled))
                .collect()
        })
    }

    pub(crate) fn v0_2(&self) -> &[v0_2::types::Activity] {
        self.v0_2.get_or_init(|| {
            self.items
                .iter()
                .map(|i| v0_2_record(i.signed, i.backfilled))
                .collect()
        })
    }
}

/// The 0.1.0 record of an activity.
pub(crate) fn v0_1_record(signed: &Signed, json: &str, backfilled: bool) -> v0_1::types::Activity {
    v0_1::types::Activity {
        id: signed.id.clone(),
        kind: signed.header.kind.clone(),
        verb: signed.verb().to_owned(),
        actor: signed.header.actor.clone(),
        seq: signed.header.seq,
        published: signed.header.published.clone(),
        json: json.to_owned(),
        backfilled,
    }
}

/// The 0.2.0 record of an activity: its envelope, and its object's and
/// addressing's fields as the WIT describes them. A field of another type
/// than the one read (`to` a number, `object.inReplyTo` an array) is absent.
pub(crate) fn v0_2_record(signed: &Signed, backfilled: bool) -> v0_2::types::Activity {
    let json = &signed.json;
    let object = json.get("object");
    let embedded = object.and_then(Value::as_object);
    let (object_type, object_id, in_reply_to) = match (object, embedded) {
        (Some(Value::String(id)), _) => (None, Some(id.clone()), None),
        (_, Some(embedded)) => (
            text(embedded, "type"),
            text(embedded, "id"),
            embedded.get("inReplyTo").and_then(reference),
        ),
        _ => (None, None, None),
    };
    v0_2::types::Activity {
        id: signed.id.clone(),
        kind: signed.header.kind.clone(),
        verb: signed.verb().to_owned(),
        actor: signed.header.actor.clone(),
        seq: signed.header.seq,
        published: signed.header.published.clone(),
        backfilled,
        object_type,
        object_id,
        in_reply_to,
        to: strings(json.get("to")),
        cc: strings(json.get("cc")),
    }
}

fn text(map: &Map<String, Value>, field: &str) -> Option<String> {
    map.get(field).and_then(Value::as_str).map(str::to_owned)
}

/// A reference: a string, or an object's `id`.
fn reference(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => text(o, "id"),
        _ => None,
    }
}

/// A string or an array's strings.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn signed(body: Value) -> Signed {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let mut json = body;
        json["actor"] = "http://127.0.0.1:9/actors/a".into();
        json["seq"] = 2.into();
        json["prev"] = weft_core::model::cid::activity_id(b"p").into();
        json["published"] = "2026-12-06T00:00:00.000Z".into();
        let Value::Object(map) = json else {
            panic!("an object")
        };
        Signed::sign(map, "http://127.0.0.1:9/actors/a#key-1", &key).expect("signs")
    }

    /// The parsed fields of an embedded object, of a reference, and of
    /// addressing given as a string or an array with a non-string in it.
    #[test]
    fn fields_are_parsed_as_the_wit_says() {
        let note = signed(json!({
            "type": "Create",
            "to": "https://www.w3.org/ns/activitystreams#Public",
            "cc": ["http://127.0.0.1:9/actors/b", 7],
            "object": {"type": "Note", "id": "http://x/n", "content": "hi", "inReplyTo": {"id": "http://x/m"}},
        }));
        let record = v0_2_record(&note, true);
        assert_eq!(record.verb, "Note");
        assert_eq!(record.object_type.as_deref(), Some("Note"));
        assert_eq!(record.object_id.as_deref(), Some("http://x/n"));
        assert_eq!(record.in_reply_to.as_deref(), Some("http://x/m"));
        assert_eq!(record.to, ["https://www.w3.org/ns/activitystreams#Public"]);
        assert_eq!(record.cc, ["http://127.0.0.1:9/actors/b"]);
        assert!(record.backfilled);

        let follow = signed(json!({"type": "Follow", "object": "http://127.0.0.1:9/actors/b"}));
        let record = v0_2_record(&follow, false);
        assert_eq!(
            (
                record.object_type,
                record.object_id.as_deref(),
                record.in_reply_to
            ),
            (None, Some("http://127.0.0.1:9/actors/b"), None)
        );
        assert!(record.to.is_empty() && record.cc.is_empty());

        let mut run = Activities::new();
        run.push(&note, "{}", false);
        run.push(&follow, "{}", false);
        assert_eq!(run.v0_2().len(), 2);
        assert_eq!(run.v0_1()[1].json, "{}");
        assert_eq!(run.texts().count(), 2);
    }
}
