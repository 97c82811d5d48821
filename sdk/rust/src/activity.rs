//! An activity as a projection's `fold` sees it: its fields borrowed from
//! what the node passed — a 0.3.0 packed run (every string a span of the
//! run's text) or a 0.2.0 record. Not the activity's JSON: that is
//! [`Activity::text`].

#[cfg(not(feature = "contract-0-2"))]
use crate::projection::weft::module::types::{Addressed, Span};

/// One activity: the envelope's fields and the object's most-read ones,
/// as the node parsed them from the stored JSON.
#[derive(Debug, Clone, Copy)]
pub struct Activity<'a> {
    pub id: &'a str,
    /// The activity's `type`.
    pub kind: &'a str,
    /// The verb that interprets it: `kind`, or the object's type for a
    /// Create, Update or Delete of an embedded object.
    pub verb: &'a str,
    pub actor: &'a str,
    pub seq: u64,
    pub published: &'a str,
    /// True when the node pulled this activity by backfill.
    pub backfilled: bool,
    /// The `type` of an embedded `object`.
    pub object_type: Option<&'a str>,
    /// What `object` names: the string itself, or an embedded object's `id`.
    pub object_id: Option<&'a str>,
    /// An embedded object's `inReplyTo`.
    pub in_reply_to: Option<&'a str>,
    /// The activity's `to` (strings only, in order).
    pub to: Addressees<'a>,
    /// The activity's `cc`, likewise.
    pub cc: Addressees<'a>,
}

impl Activity<'_> {
    /// The activity's whole JSON text, from the node's log (`log.get` of
    /// its id, through the projection world's `log`).
    pub fn text(&self) -> Result<String, crate::JsonError> {
        crate::projection::log::get(self.id).ok_or(crate::JsonError)
    }

    /// The activity's JSON, parsed ([`Activity::text`]).
    pub fn json(&self) -> Result<crate::Json, crate::JsonError> {
        crate::Json::from_text(&self.text()?)
    }
}

/// The entries of an activity's `to` or `cc`.
#[derive(Debug, Clone, Copy)]
pub struct Addressees<'a>(Entries<'a>);

#[derive(Debug, Clone, Copy)]
enum Entries<'a> {
    #[cfg(not(feature = "contract-0-2"))]
    Spans(&'a str, &'a [Span]),
    #[cfg(feature = "contract-0-2")]
    Strings(&'a [String]),
}

impl<'a> Addressees<'a> {
    /// The entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let entries = self.0;
        (0..self.len()).map(move |at| match entries {
            #[cfg(not(feature = "contract-0-2"))]
            Entries::Spans(text, spans) => spans.get(at).map_or("", |s| of(text, *s)),
            #[cfg(feature = "contract-0-2")]
            Entries::Strings(strings) => strings.get(at).map_or("", String::as_str),
        })
    }

    pub fn len(&self) -> usize {
        match self.0 {
            #[cfg(not(feature = "contract-0-2"))]
            Entries::Spans(_, spans) => spans.len(),
            #[cfg(feature = "contract-0-2")]
            Entries::Strings(strings) => strings.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The text a span names; empty if it does not lie within `text` on
/// character boundaries (the node never sends such a span).
#[cfg(not(feature = "contract-0-2"))]
fn of(text: &str, span: Span) -> &str {
    let start = span.start as usize;
    text.get(start..start.saturating_add(span.len as usize))
        .unwrap_or("")
}

#[cfg(not(feature = "contract-0-2"))]
impl<'a> Activity<'a> {
    /// The activities of a packed run, in order.
    pub fn all_of(run: &'a crate::projection::Run) -> impl Iterator<Item = Activity<'a>> + 'a {
        let text = run.text.as_str();
        let addressees = |a: Addressed| {
            let first = a.first as usize;
            Addressees(Entries::Spans(
                text,
                run.addressees
                    .get(first..first.saturating_add(a.len as usize))
                    .unwrap_or(&[]),
            ))
        };
        run.activities.iter().map(move |a| Activity {
            id: of(text, a.id),
            kind: of(text, a.kind),
            verb: of(text, a.verb),
            actor: of(text, a.actor),
            seq: a.seq,
            published: of(text, a.published),
            backfilled: a.backfilled,
            object_type: a.object_type.map(|s| of(text, s)),
            object_id: a.object_id.map(|s| of(text, s)),
            in_reply_to: a.in_reply_to.map(|s| of(text, s)),
            to: addressees(a.to),
            cc: addressees(a.cc),
        })
    }
}

#[cfg(feature = "contract-0-2")]
impl<'a> Activity<'a> {
    /// A 0.2.0 record's fields.
    pub fn of_record(a: &'a crate::projection::Activity) -> Self {
        Activity {
            id: &a.id,
            kind: &a.kind,
            verb: &a.verb,
            actor: &a.actor,
            seq: a.seq,
            published: &a.published,
            backfilled: a.backfilled,
            object_type: a.object_type.as_deref(),
            object_id: a.object_id.as_deref(),
            in_reply_to: a.in_reply_to.as_deref(),
            to: Addressees(Entries::Strings(&a.to)),
            cc: Addressees(Entries::Strings(&a.cc)),
        }
    }
}

#[cfg(all(test, not(feature = "contract-0-2")))]
mod tests {
    use super::*;
    use crate::projection::Run;
    use crate::projection::weft::module::types::Activity as Packed;

    fn span(start: u32, len: u32) -> Span {
        Span { start, len }
    }

    /// Fields read back from a packed run, a span outside the text or off
    /// a character boundary reading as empty rather than panicking.
    #[test]
    fn a_packed_run_reads_back_and_bad_spans_read_empty() {
        let text = "b1Noteé://a/x".to_owned();
        let packed = |to: Addressed| Packed {
            id: span(0, 2),
            kind: span(2, 4),
            verb: span(2, 4),
            actor: span(6, 8),
            seq: 7,
            published: span(90, 3),
            backfilled: true,
            object_type: Some(span(7, 1)),
            object_id: None,
            in_reply_to: Some(span(u32::MAX, u32::MAX)),
            to,
            cc: Addressed { first: 9, len: 1 },
        };
        let run = Run {
            text,
            activities: vec![packed(Addressed { first: 0, len: 2 })],
            addressees: vec![span(0, 2), span(2, 4)],
        };
        let all: Vec<Activity> = Activity::all_of(&run).collect();
        let [a] = all.as_slice() else {
            panic!("one activity: {all:?}")
        };
        assert_eq!((a.id, a.kind, a.verb, a.seq), ("b1", "Note", "Note", 7));
        assert_eq!(a.actor, "é://a/x");
        assert!(a.backfilled);
        assert_eq!(a.published, "", "past the end");
        assert_eq!(a.object_type, Some(""), "inside a character");
        assert_eq!(a.in_reply_to, Some(""), "overflowing");
        assert_eq!(a.object_id, None);
        assert_eq!(a.to.iter().collect::<Vec<_>>(), ["b1", "Note"]);
        assert!(a.cc.is_empty(), "entries past the list");
    }
}
