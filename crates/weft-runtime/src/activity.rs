//! An activity as each contract version carries it across the boundary:
//! 0.1.0 with its whole JSON text, 0.2.0 with its most-read fields parsed
//! (`object-type`, `object-id`, `in-reply-to`, `to`, `cc`), 0.3.0 with the
//! same fields packed, a run's strings in one text ([`Activities::v0_3_of`]). The
//! records of a run are made once, for the first projection of each
//! version that folds the run, and lent to every other.
//!
//! It is the boundary's shape only; what a module does with it is the
//! module's own.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::ops::Range;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::bindings::{v0_1, v0_2};

mod packed;

pub(crate) use packed::PackedRun;

/// One activity of a run: its id and its JSON text as stored.
#[derive(Debug, Clone, Copy)]
struct Item<'a> {
    id: &'a str,
    json: &'a str,
    backfilled: bool,
}

/// A run of activities to fold, in log order, with their records under
/// each contract version made when first needed.
///
/// Records are made from the stored JSON text alone, whether the writer
/// folds an activity it has just appended or a build reads it back from
/// the log: the same text gives the same record, so a rebuild folds what
/// incremental folding did.
#[derive(Debug, Default)]
pub struct Activities<'a> {
    items: Vec<Item<'a>>,
    /// Each activity's `type` alone, for choosing what a projection is
    /// passed without parsing the rest.
    kinds: OnceCell<Vec<Cow<'a, str>>>,
    parsed: OnceCell<Vec<Fields>>,
    v0_1: OnceCell<Vec<v0_1::types::Activity>>,
    v0_2: OnceCell<Vec<v0_2::types::Activity>>,
}

impl<'a> Activities<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an activity (its id and stored JSON text) at the end of the run.
    pub fn push(&mut self, id: &'a str, json: &'a str, backfilled: bool) {
        self.items.push(Item {
            id,
            json,
            backfilled,
        });
        self.kinds = OnceCell::new();
        self.parsed = OnceCell::new();
        self.v0_1 = OnceCell::new();
        self.v0_2 = OnceCell::new();
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn parsed(&self) -> &[Fields] {
        self.parsed
            .get_or_init(|| self.items.iter().map(|i| Fields::parse(i.json)).collect())
    }

    /// The `type` of the activity at `at`: what [`Fields::parse`] reads,
    /// taken from its fields when they are parsed already, else read alone.
    pub(crate) fn kind(&self, at: usize) -> &str {
        if let Some(parsed) = self.parsed.get() {
            return parsed.get(at).map_or("", |f| f.kind.as_str());
        }
        self.kinds
            .get_or_init(|| self.items.iter().map(|i| kind_of(i.json)).collect())
            .get(at)
            .map_or("", |k| k.as_ref())
    }

    /// The activities' JSON texts by id, for folds whose transaction does
    /// not hold them (a dry run): [`crate::FoldSession::with_texts`].
    pub fn texts(&self) -> std::sync::Arc<crate::host::Current> {
        std::sync::Arc::new(
            self.items
                .iter()
                .map(|i| (i.id.to_owned(), std::sync::Arc::from(i.json)))
                .collect(),
        )
    }

    pub(crate) fn v0_1(&self) -> &[v0_1::types::Activity] {
        self.v0_1.get_or_init(|| {
            self.items
                .iter()
                .zip(self.parsed())
                .map(|(i, f)| f.v0_1(i.id, i.json, i.backfilled))
                .collect()
        })
    }

    /// Each activity's `type`, in order.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|at| self.kind(at))
    }

    /// Takes the fields or records `parsed` made of this run's activities
    /// elsewhere (a build reading the log ahead on another thread), so
    /// they are not made again here. Parsed for a different run (another
    /// length, another id at some place) they are not taken: `false`, and
    /// this run's are made when needed, as without them.
    pub fn with_parsed(&mut self, parsed: Parsed) -> bool {
        match parsed {
            Parsed::Fields(fields) => {
                if !self.is_run_of(fields.iter().map(|f| (f.id.as_str(), f.backfilled))) {
                    return false;
                }
                let _ = self
                    .parsed
                    .set(fields.into_iter().map(|f| f.fields).collect());
            }
            Parsed::V0_2(records) => {
                if !self.is_run_of(records.iter().map(|r| (r.id.as_str(), r.backfilled))) {
                    return false;
                }
                let _ = self.v0_2.set(records);
            }
        }
        true
    }

    /// Whether `made` names this run's activities, in order: (id,
    /// backfilled) of each.
    fn is_run_of<'b>(&self, mut made: impl Iterator<Item = (&'b str, bool)>) -> bool {
        let mut ours = self.items.iter();
        made.all(|(id, backfilled)| {
            ours.next()
                .is_some_and(|i| i.id == id && i.backfilled == backfilled)
        }) && ours.next().is_none()
    }

    /// The 0.1.0 record of the activity at `at`: lent from the run's
    /// records when they are made, else made for it alone (a projection
    /// passed few of a run's activities does not make the rest).
    pub(crate) fn v0_1_at(&self, at: usize) -> Cow<'_, v0_1::types::Activity> {
        if let Some(record) = self.v0_1.get().and_then(|r| r.get(at)) {
            return Cow::Borrowed(record);
        }
        let Some(item) = self.items.get(at) else {
            return Cow::Owned(Fields::default().v0_1("", "", false));
        };
        Cow::Owned(match self.parsed.get().and_then(|p| p.get(at)) {
            Some(fields) => fields.v0_1(item.id, item.json, item.backfilled),
            None => v0_1_record(item.id, item.json, item.backfilled),
        })
    }

    /// The 0.2.0 records of the activities at `range`: the run's records
    /// when they are made or the range is the whole run, else made for
    /// those alone.
    pub(crate) fn v0_2_of(&self, range: Range<usize>) -> Cow<'_, [v0_2::types::Activity]> {
        let range = range.start.min(self.len())..range.end.min(self.len());
        if self.v0_2.get().is_some() || range.len() == self.len() {
            return Cow::Borrowed(&self.v0_2()[range]);
        }
        let parsed = self.parsed.get();
        Cow::Owned(
            range
                .map(|at| {
                    let item = &self.items[at];
                    match parsed.and_then(|p| p.get(at)) {
                        Some(fields) => fields.v0_2(item.id, item.backfilled),
                        None => v0_2_record(item.id, item.json, item.backfilled),
                    }
                })
                .collect(),
        )
    }

    pub(crate) fn v0_2(&self) -> &[v0_2::types::Activity] {
        self.v0_2.get_or_init(|| {
            self.items
                .iter()
                .zip(self.parsed())
                .map(|(i, f)| f.v0_2(i.id, i.backfilled))
                .collect()
        })
    }

    /// The 0.3.0 run of the activities at `range`, packed from the run's
    /// 0.2.0 records when they are made (for a 0.2.0 projection, or by a
    /// read-ahead), else from their fields: no 0.2.0 record is made for a
    /// 0.3.0 projection. Made per call, since a call's run is a part of
    /// the run and the copies are cheap next to the allocations they save
    /// the module.
    pub(crate) fn v0_3_of(&self, range: Range<usize>) -> PackedRun {
        let range = range.start.min(self.len())..range.end.min(self.len());
        if let Some(records) = self.v0_2.get() {
            return pack(records[range].iter().map(FieldRefs::of_record));
        }
        let items = &self.items[range.clone()];
        // The whole run's fields when they are parsed or it is all of
        // them; else those of the range alone.
        if self.parsed.get().is_some() || range.len() == self.len() {
            let fields = &self.parsed()[range];
            return pack(items.iter().zip(fields).map(|(i, f)| FieldRefs::of(i, f)));
        }
        let fields: Vec<Fields> = items.iter().map(|i| Fields::parse(i.json)).collect();
        pack(items.iter().zip(&fields).map(|(i, f)| FieldRefs::of(i, f)))
    }
}

/// The fields of a run's activities, or their 0.2.0 records, made from
/// their stored texts away from the run itself: a build parses the next
/// stretch of the log on another thread while the writer folds this one
/// ([`Activities::with_parsed`]). The same texts give the same fields
/// wherever they are parsed.
#[derive(Debug)]
pub enum Parsed {
    /// For a 0.1.0 module (whose records carry the text too) or a 0.3.0
    /// one (whose runs are packed from the fields).
    Fields(Vec<ParsedFields>),
    /// For a 0.2.0 module: the records alone, the fields they were made
    /// of dropped where they were parsed.
    V0_2(Vec<v0_2::types::Activity>),
}

impl Default for Parsed {
    fn default() -> Self {
        Self::Fields(Vec::new())
    }
}

/// One activity's fields, with what says which activity it is.
#[derive(Debug)]
pub struct ParsedFields {
    id: String,
    backfilled: bool,
    fields: Fields,
}

impl Parsed {
    /// Parses each `(id, json, backfilled)`, and with `v0_2` makes their
    /// 0.2.0 records of the fields.
    pub fn of<'b>(items: impl IntoIterator<Item = (&'b str, &'b str, bool)>, v0_2: bool) -> Self {
        let items = items.into_iter();
        if v0_2 {
            return Self::V0_2(
                items
                    .map(|(id, json, backfilled)| v0_2_record(id, json, backfilled))
                    .collect(),
            );
        }
        Self::Fields(
            items
                .map(|(id, json, backfilled)| ParsedFields {
                    id: id.to_owned(),
                    backfilled,
                    fields: Fields::parse(json),
                })
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Fields(fields) => fields.len(),
            Self::V0_2(records) => records.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the first `len` activities' fields or records.
    pub fn truncate(&mut self, len: usize) {
        match self {
            Self::Fields(fields) => fields.truncate(len),
            Self::V0_2(records) => records.truncate(len),
        }
    }
}

/// The 0.1.0 record of one activity.
pub(crate) fn v0_1_record(id: &str, json: &str, backfilled: bool) -> v0_1::types::Activity {
    Fields::parse(json).v0_1(id, json, backfilled)
}

/// The 0.2.0 record of one activity.
pub(crate) fn v0_2_record(id: &str, json: &str, backfilled: bool) -> v0_2::types::Activity {
    Fields::parse(json).v0_2(id, backfilled)
}

/// One activity's fields, borrowed from its 0.2.0 record or from its
/// parsed fields: what a 0.3.0 run is packed of.
struct FieldRefs<'a> {
    id: &'a str,
    kind: &'a str,
    verb: &'a str,
    actor: &'a str,
    seq: u64,
    published: &'a str,
    backfilled: bool,
    object_type: Option<&'a str>,
    object_id: Option<&'a str>,
    in_reply_to: Option<&'a str>,
    to: &'a [String],
    cc: &'a [String],
}

impl<'a> FieldRefs<'a> {
    fn of_record(r: &'a v0_2::types::Activity) -> Self {
        Self {
            id: &r.id,
            kind: &r.kind,
            verb: &r.verb,
            actor: &r.actor,
            seq: r.seq,
            published: &r.published,
            backfilled: r.backfilled,
            object_type: r.object_type.as_deref(),
            object_id: r.object_id.as_deref(),
            in_reply_to: r.in_reply_to.as_deref(),
            to: &r.to,
            cc: &r.cc,
        }
    }

    fn of(item: &'a Item<'a>, f: &'a Fields) -> Self {
        Self {
            id: item.id,
            kind: &f.kind,
            verb: &f.verb,
            actor: &f.actor,
            seq: f.seq,
            published: &f.published,
            backfilled: item.backfilled,
            object_type: f.object_type.as_deref(),
            object_id: f.object_id.as_deref(),
            in_reply_to: f.in_reply_to.as_deref(),
            to: &f.to,
            cc: &f.cc,
        }
    }
}

/// The 0.3.0 run of `activities`: every string copied once into one text,
/// each field a span of it, the `to` and `cc` entries spans in
/// `addressees`.
fn pack<'a>(activities: impl ExactSizeIterator<Item = FieldRefs<'a>>) -> PackedRun {
    let mut run = PackedRun::with_capacity(activities.len());
    for activity in activities {
        run.push(&activity);
    }
    run
}

/// An activity's `type`, as [`Fields::parse`] reads it: a text with one
/// top-level `type` that is a string is read without building anything
/// else; any other (no object, no or several `type`s, not a string) is
/// parsed whole.
fn kind_of(json: &str) -> Cow<'_, str> {
    use serde::Deserializer as _;
    use serde::de::{Error, IgnoredAny, MapAccess, Visitor};

    /// The one `type` of an object, borrowed from the text.
    struct Kind;
    impl<'de> Visitor<'de> for Kind {
        type Value = &'de str;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object with one string `type`")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<&'de str, A::Error> {
            let mut kind = None;
            while let Some(key) = map.next_key::<&'de str>()? {
                if key != "type" {
                    map.next_value::<IgnoredAny>()?;
                } else if kind.replace(map.next_value::<&'de str>()?).is_some() {
                    return Err(A::Error::duplicate_field("type"));
                }
            }
            kind.ok_or_else(|| A::Error::missing_field("type"))
        }
    }
    let mut reader = serde_json::Deserializer::from_str(json);
    match reader
        .deserialize_map(Kind)
        .and_then(|k| reader.end().map(|()| k))
    {
        Ok(kind) => Cow::Borrowed(kind),
        Err(_) => Cow::Owned(Fields::parse(json).kind),
    }
}

/// What the records carry of an activity's JSON. A field of another type
/// than the one read (`to` a number, `object.inReplyTo` an array) is
/// absent (empty, 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Fields {
    kind: String,
    verb: String,
    /// `actor`, or an embedded actor's `id`.
    actor: String,
    seq: u64,
    published: String,
    object_type: Option<String>,
    object_id: Option<String>,
    in_reply_to: Option<String>,
    to: Vec<String>,
    cc: Vec<String>,
}

/// The top-level members the records read.
const READ: [&str; 7] = ["type", "actor", "seq", "published", "object", "to", "cc"];
/// The members of an embedded `object` they read.
const READ_OF_OBJECT: [&str; 3] = ["type", "id", "inReplyTo"];

impl Fields {
    /// Parses only what the records read: the members named in [`READ`]
    /// are taken from the text unparsed and only those are parsed (an
    /// embedded object's too), so a long `content` is never built. Text
    /// this quick reading cannot take (a key with an escape in it) is
    /// parsed whole; both readings give the same fields.
    fn parse(json: &str) -> Self {
        match Self::read(json) {
            Some(map) => Self::of(&map),
            None => match serde_json::from_str::<Map<String, Value>>(json) {
                Ok(map) => Self::of(&map),
                Err(_) => Self::default(),
            },
        }
    }

    /// The members the records read, from the text's top level.
    fn read(json: &str) -> Option<Map<String, Value>> {
        let top: BTreeMap<&str, &RawValue> = serde_json::from_str(json).ok()?;
        let mut map = Map::new();
        for field in READ {
            let Some(raw) = top.get(field) else {
                continue;
            };
            let value = if field == "object" && raw.get().starts_with('{') {
                let embedded: BTreeMap<&str, &RawValue> = serde_json::from_str(raw.get()).ok()?;
                let mut object = Map::new();
                for member in READ_OF_OBJECT {
                    if let Some(raw) = embedded.get(member) {
                        object.insert(member.to_owned(), serde_json::from_str(raw.get()).ok()?);
                    }
                }
                Value::Object(object)
            } else {
                serde_json::from_str(raw.get()).ok()?
            };
            map.insert(field.to_owned(), value);
        }
        Some(map)
    }

    fn of(json: &Map<String, Value>) -> Self {
        let object = json.get("object");
        let (object_type, object_id, in_reply_to) = match object {
            Some(Value::String(id)) => (None, Some(id.clone()), None),
            Some(Value::Object(embedded)) => (
                text(embedded, "type"),
                text(embedded, "id"),
                embedded.get("inReplyTo").and_then(reference),
            ),
            _ => (None, None, None),
        };
        Self {
            kind: text(json, "type").unwrap_or_default(),
            verb: weft_core::model::envelope::verb_of(json).to_owned(),
            actor: json.get("actor").and_then(reference).unwrap_or_default(),
            seq: json.get("seq").and_then(Value::as_u64).unwrap_or(0),
            published: text(json, "published").unwrap_or_default(),
            object_type,
            object_id,
            in_reply_to,
            to: strings(json.get("to")),
            cc: strings(json.get("cc")),
        }
    }

    fn v0_1(&self, id: &str, json: &str, backfilled: bool) -> v0_1::types::Activity {
        v0_1::types::Activity {
            id: id.to_owned(),
            kind: self.kind.clone(),
            verb: self.verb.clone(),
            actor: self.actor.clone(),
            seq: self.seq,
            published: self.published.clone(),
            json: json.to_owned(),
            backfilled,
        }
    }

    fn v0_2(&self, id: &str, backfilled: bool) -> v0_2::types::Activity {
        v0_2::types::Activity {
            id: id.to_owned(),
            kind: self.kind.clone(),
            verb: self.verb.clone(),
            actor: self.actor.clone(),
            seq: self.seq,
            published: self.published.clone(),
            backfilled,
            object_type: self.object_type.clone(),
            object_id: self.object_id.clone(),
            in_reply_to: self.in_reply_to.clone(),
            to: self.to.clone(),
            cc: self.cc.clone(),
        }
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
    use crate::bindings::v0_3;
    use serde_json::json;

    /// Every field of `records`, read back through the spans of `run`.
    fn assert_packs(run: &v0_3::types::Run, records: &[v0_2::types::Activity]) {
        let text = |s: v0_3::types::Span| {
            let start = s.start as usize;
            run.text[start..start + s.len as usize].to_owned()
        };
        let entries = |a: v0_3::types::Addressed| -> Vec<String> {
            let first = a.first as usize;
            run.addressees[first..first + a.len as usize]
                .iter()
                .map(|s| text(*s))
                .collect()
        };
        assert_eq!(run.activities.len(), records.len());
        for (packed, record) in run.activities.iter().zip(records) {
            assert_eq!(text(packed.id), record.id);
            assert_eq!(text(packed.kind), record.kind);
            assert_eq!(text(packed.verb), record.verb);
            assert_eq!(text(packed.actor), record.actor);
            assert_eq!(text(packed.published), record.published);
            assert_eq!(packed.seq, record.seq);
            assert_eq!(packed.backfilled, record.backfilled);
            assert_eq!(packed.object_type.map(text), record.object_type);
            assert_eq!(packed.object_id.map(text), record.object_id);
            assert_eq!(packed.in_reply_to.map(text), record.in_reply_to);
            assert_eq!(entries(packed.to), record.to);
            assert_eq!(entries(packed.cc), record.cc);
        }
    }

    /// A 0.3.0 run holds every field of the activities' 0.2.0 records,
    /// each span naming exactly that string (multi-byte text included) and
    /// each `to`/`cc` its own entries in order — whether it is packed from
    /// the fields (the whole run, or a part of it alone) or from records
    /// made already.
    #[test]
    fn a_packed_run_names_every_field_of_its_activities() {
        let note = json!({"type": "Create", "actor": "https://m.example/u/é", "seq": 3,
            "published": "2026-12-07T00:00:00Z",
            "object": {"type": "Note", "id": "https://m.example/n/1", "inReplyTo": "https://x/ü"},
            "to": ["https://a/1", "https://a/2"], "cc": "https://c/1"})
        .to_string();
        let follow =
            json!({"type": "Follow", "actor": "https://b/u", "object": "https://b/v"}).to_string();
        let items = [
            ("b1", note.as_str(), true),
            ("b2", &follow, false),
            ("b3", "not json", false),
        ];
        let records: Vec<_> = items
            .iter()
            .map(|(id, json, backfilled)| v0_2_record(id, json, *backfilled))
            .collect();
        let fresh = || {
            let mut run = Activities::new();
            for (id, json, backfilled) in items {
                run.push(id, json, backfilled);
            }
            run
        };

        let whole = fresh();
        assert_packs(&whole.v0_3_of(0..3).unpack(), &records);
        assert!(whole.v0_2.get().is_none(), "no 0.2.0 record was made");
        assert_packs(&fresh().v0_3_of(1..3).unpack(), &records[1..]);
        let recorded = fresh();
        recorded.v0_2();
        assert_packs(&recorded.v0_3_of(0..9).unpack(), &records);
        assert_packs(&recorded.v0_3_of(2..3).unpack(), &records[2..]);

        let run = whole.v0_3_of(0..3).unpack();
        let start = run.activities[0].actor.start as usize;
        assert_eq!(
            &run.text[start..start + run.activities[0].actor.len as usize],
            "https://m.example/u/é"
        );
        assert!(run.activities[2].object_id.is_none());
        let empty = Activities::new().v0_3_of(0..1).unpack();
        assert!(
            empty.text.is_empty() && empty.activities.is_empty() && empty.addressees.is_empty()
        );
    }

    /// The parsed fields of an embedded object, of a reference, and of
    /// addressing given as a string or an array with a non-string in it.
    #[test]
    fn fields_are_parsed_as_the_wit_says() {
        let note = json!({
            "type": "Create", "actor": "http://127.0.0.1:9/actors/a", "seq": 2,
            "published": "2026-12-06T00:00:00.000Z",
            "to": "https://www.w3.org/ns/activitystreams#Public",
            "cc": ["http://127.0.0.1:9/actors/b", 7],
            "object": {"type": "Note", "id": "http://x/n", "content": "hi", "inReplyTo": {"id": "http://x/m"}},
        })
        .to_string();
        let record = v0_2_record("b1", &note, true);
        assert_eq!((record.id.as_str(), record.verb.as_str()), ("b1", "Note"));
        assert_eq!((record.seq, record.kind.as_str()), (2, "Create"));
        assert_eq!(record.object_type.as_deref(), Some("Note"));
        assert_eq!(record.object_id.as_deref(), Some("http://x/n"));
        assert_eq!(record.in_reply_to.as_deref(), Some("http://x/m"));
        assert_eq!(record.to, ["https://www.w3.org/ns/activitystreams#Public"]);
        assert_eq!(record.cc, ["http://127.0.0.1:9/actors/b"]);
        assert!(record.backfilled);

        // A foreign activity: an embedded actor, no seq, no published.
        let follow = json!({"type": "Follow", "actor": {"id": "https://m.example/u/x"}, "object": "http://127.0.0.1:9/actors/b"}).to_string();
        let record = v0_2_record("https://m.example/f/1", &follow, false);
        assert_eq!(
            (
                record.object_type,
                record.object_id.as_deref(),
                record.in_reply_to
            ),
            (None, Some("http://127.0.0.1:9/actors/b"), None)
        );
        assert_eq!(
            (record.actor.as_str(), record.seq),
            ("https://m.example/u/x", 0)
        );
        assert!(record.to.is_empty() && record.cc.is_empty() && record.published.is_empty());

        let mut run = Activities::new();
        run.push("b1", &note, false);
        run.push("b2", &follow, false);
        assert_eq!(run.v0_2().len(), 2);
        assert_eq!(run.v0_1()[1].json, follow);
        assert_eq!(run.kind(1), "Follow");
        assert_eq!(run.texts().len(), 2);
    }

    /// The quick reading and the whole parse give the same fields, for
    /// every shape of every member the records read (and a `Delete` of a
    /// `Tombstone`, whose verb is `Delete`).
    #[test]
    fn the_quick_reading_equals_the_whole_parse() {
        let shapes = [
            json!(null),
            json!(3),
            json!("s"),
            json!(["a", 1, {"id": "b"}]),
            json!({"id": "i", "type": "Note", "inReplyTo": "r", "content": "long"}),
            json!({"type": "Tombstone", "inReplyTo": {"id": "r"}}),
            json!({"type": 4, "id": ["x"]}),
        ];
        for kind in ["Create", "Delete", "Follow"] {
            for field in READ {
                for shape in &shapes {
                    let mut activity = json!({"type": kind, "actor": "a", "seq": 1, "object": {"type": "Tombstone"}});
                    activity[field] = shape.clone();
                    let text = activity.to_string();
                    let map: Map<String, Value> = serde_json::from_str(&text).expect("an object");
                    let quick = Fields::read(&text).map(|m| Fields::of(&m));
                    assert_eq!(quick, Some(Fields::of(&map)), "{text}");
                    assert_eq!(kind_of(&text), Fields::of(&map).kind, "{text}");
                }
            }
        }
        // A key with an escape cannot be read quickly: the whole parse reads it.
        let escaped = r#"{"type":"Follow","actor":"a"}"#;
        assert_eq!(Fields::parse(escaped).actor, "a");
        // A type read alone is the type the fields read, whatever the text.
        for text in [
            escaped,
            r#"{"type":"Fol\u006cow"}"#,
            r#"{"type":"Note","type":"Follow"}"#,
            r#"{"object":{"type":"Note"}}"#,
            r#"["type"]"#,
            "not json",
        ] {
            assert_eq!(kind_of(text), Fields::parse(text).kind, "{text}");
        }
    }

    /// Records made for part of a run are the records the whole run makes.
    #[test]
    fn what_is_parsed_elsewhere_is_what_the_run_would_make() {
        let texts = [
            r#"{"type":"Create","actor":"https://a.example/u","seq":3,"published":"2026-01-01T00:00:00Z","object":{"type":"Note","id":"https://a.example/n","inReplyTo":"https://b.example/m"},"to":["https://b.example/v"],"cc":"https://c.example/w"}"#,
            r#"{"type":"Follow","actor":{"id":"https://a.example/u"},"object":"https://b.example/v"}"#,
            r#"not json"#,
        ];
        let ids = ["one", "two", "three"];
        let run = || {
            let mut run = Activities::new();
            for (i, (id, text)) in ids.iter().zip(&texts).enumerate() {
                run.push(id, text, i == 1);
            }
            run
        };
        let items = || {
            ids.iter()
                .zip(&texts)
                .enumerate()
                .map(|(i, (id, text))| (*id, *text, i == 1))
        };
        let here = run();
        for v0_2 in [true, false] {
            let mut elsewhere = run();
            assert!(elsewhere.with_parsed(Parsed::of(items(), v0_2)));
            // (The generated records have no `PartialEq`; their `Debug`
            // shows every field.)
            assert_eq!(
                format!("{:?}", elsewhere.v0_2()),
                format!("{:?}", here.v0_2())
            );
            assert_eq!(
                format!("{:?}", elsewhere.v0_1()),
                format!("{:?}", here.v0_1())
            );
            assert!(elsewhere.kinds().eq(here.kinds()));
        }
        // Parsed for another run (other ids, or fewer): not taken.
        let mut other = run();
        let shifted = items().map(|(_, text, b)| ("else", text, b));
        assert!(!other.with_parsed(Parsed::of(shifted, true)));
        let mut parsed = Parsed::of(items(), true);
        parsed.truncate(2);
        assert!(!other.with_parsed(parsed));
        assert_eq!(format!("{:?}", other.v0_2()), format!("{:?}", here.v0_2()));
    }

    #[test]
    fn part_of_a_run_has_the_runs_records() {
        let texts: Vec<String> = ["Create", "Follow", "Endorse", "Undo"]
            .iter()
            .enumerate()
            .map(|(n, kind)| {
                json!({"type": kind, "actor": "a", "seq": n + 1, "object": {"type": "Note", "id": format!("n{n}")}, "to": ["b"]})
                    .to_string()
            })
            .collect();
        let ids = ["i0", "i1", "i2", "i3"];
        fn run<'a>(ids: &[&'a str], texts: &'a [String]) -> Activities<'a> {
            let mut run = Activities::new();
            for (id, text) in ids.iter().zip(texts) {
                run.push(id, text, false);
            }
            run
        }
        let whole = run(&ids, &texts);
        // The generated records have no `PartialEq`: compared as printed.
        let shown = |records: &[v0_2::types::Activity]| format!("{records:?}");
        let (all_0_1, all_0_2) = (whole.v0_1(), whole.v0_2());
        let part = run(&ids, &texts);
        assert_eq!(
            part.kinds().collect::<Vec<_>>(),
            ["Create", "Follow", "Endorse", "Undo"]
        );
        assert_eq!(shown(&part.v0_2_of(1..3)), shown(&all_0_2[1..3]));
        assert_eq!(
            format!("{:?}", part.v0_1_at(2)),
            format!("{:?}", all_0_1[2])
        );
        assert!(part.v0_2.get().is_none() && part.v0_1.get().is_none());
        assert_eq!(shown(&part.v0_2_of(0..9)), shown(all_0_2));
    }
}
