//! The endorsements projection: how many actors like and share each
//! endorsed id. An Endorse (or a fediverse Like, which counts as a
//! `like`) adds 1 to (object, kind) unless that actor
//! already endorsed that object with that kind; an Undo, by its author, of
//! an Endorse (looked up with `log::get`) takes that actor's endorsement
//! back, and a later fold of that Endorse is ignored.
//!
//! It does not say who endorsed (only counts are queryable), check that
//! the endorsed id exists, or count Announces. Everything else is ignored.
//!
//! Key layout (`␟` is U+001F, which no URL or activity id contains; `kind`
//! is `like` or `share`):
//!
//! | key                             | value                      |
//! |---------------------------------|----------------------------|
//! | `count␟{target}␟{kind}`         | count (absent when 0)      |
//! | `by␟{target}␟{kind}␟{actor}`    | id of the counted Endorse  |
//! | `undone␟{activity id}`          | Undo's actor               |
//!
//! Query: path `counts`, `id=<target>` → `{"id", "like", "share"}`.

use weft_guest::Activity;
use weft_guest::Projection;
use weft_guest::kv;
use weft_guest::projection::{QueryError, log};
use weft_guest::serde::Deserialize;
use weft_guest::serde_json::{self, json};
use weft_guest::text::{content_id, is_safe, key};
use weft_guest::view::Str;

/// The kinds of endorsement.
const KINDS: [&str; 2] = ["like", "share"];

struct Endorsements;

/// The fields of an Endorse (or of an Undo, which needs only `object`) that
/// the fold reads; the rest is skipped unparsed.
#[derive(Deserialize)]
#[serde(crate = "weft_guest::serde")]
struct Fields<'a> {
    #[serde(borrow, default, rename = "type")]
    kind_of_activity: Str<'a>,
    #[serde(borrow, default)]
    actor: Str<'a>,
    #[serde(borrow, default)]
    object: Str<'a>,
    /// `like` or `share`.
    #[serde(borrow, default)]
    kind: Str<'a>,
}

impl Projection for Endorsements {
    fn fold(activity: &Activity<'_>) -> Result<(), String> {
        if !matches!(activity.kind, "Endorse" | "Like" | "Undo") {
            return Ok(());
        }
        let actor = activity.actor;
        match activity.kind {
            "Endorse" | "Like" => {
                // An Endorse's `kind` is not among the fields passed: it
                // is read from the text, which is parsed only up to it. A
                // Like needs no text.
                let text = match activity.kind {
                    "Endorse" => Some(activity.text().map_err(|e| e.to_string())?),
                    _ => None,
                };
                let kind = text.as_deref().map(|t| weft_guest::field_in(t, "kind"));
                let kind = kind.as_ref().and_then(Str::as_deref);
                let Some((target, kind)) = counted(activity.kind, activity.object_id, kind) else {
                    return Ok(());
                };
                let undone = kv::get(&key(&["undone", activity.id])).is_some_and(|a| a == actor);
                let by = key(&["by", target, kind, actor]);
                if !undone && is_safe(actor) && kv::get(&by).is_none() {
                    kv::set(&by, activity.id);
                    kv::add(&key(&["count", target, kind]), 1);
                }
            }
            "Undo" => {
                let Some(undone) = activity.object_id else {
                    return Ok(());
                };
                if !is_safe(undone) {
                    return Ok(());
                }
                kv::set(&key(&["undone", undone]), actor);
                let Some(text) = log::get(undone) else {
                    return Ok(());
                };
                let Ok(endorse) = serde_json::from_str::<Fields>(&text) else {
                    return Ok(());
                };
                if endorse.actor.as_deref() != Some(actor) {
                    return Ok(());
                }
                if let Some((target, kind)) = endorsement(&endorse) {
                    let by = key(&["by", target, kind, actor]);
                    if kv::get(&by).is_some() {
                        kv::delete(&by);
                        kv::add(&key(&["count", target, kind]), -1);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn query(path: String, params: Vec<(String, String)>) -> Result<String, QueryError> {
        if path != "counts" {
            return Err(QueryError::NotFound(format!(
                "no query `{path}`: use `counts?id=<activity id or URL>`"
            )));
        }
        let id = id_param(&params).map_err(QueryError::BadRequest)?;
        let like = kv::counter(&key(&["count", id, "like"]));
        let share = kv::counter(&key(&["count", id, "share"]));
        Ok(json!({"id": id, "like": like, "share": share}).to_string())
    }
}

/// The (target, kind) an Endorse activity counts for, if well-formed; a
/// Like (ActivityPub's, from the fediverse) counts as a `like`. A weft
/// activity's URL counts as its content id.
fn endorsement<'a>(fields: &'a Fields<'_>) -> Option<(&'a str, &'a str)> {
    counted(
        fields.kind_of_activity.as_deref()?,
        fields.object.as_deref(),
        fields.kind.as_deref(),
    )
}

/// [`endorsement`] of an activity of type `activity`, whose `object`
/// names `object` and whose `kind` is `kind`.
fn counted<'a>(
    activity: &str,
    object: Option<&'a str>,
    kind: Option<&'a str>,
) -> Option<(&'a str, &'a str)> {
    let kind = match activity {
        "Endorse" => kind?,
        "Like" => "like",
        _ => return None,
    };
    let target = content_id(object?);
    (is_safe(target) && KINDS.contains(&kind)).then_some((target, kind))
}

/// The `id` query parameter, checked.
fn id_param(params: &[(String, String)]) -> Result<&str, String> {
    let id = params
        .iter()
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.as_str())
        .ok_or(
            "the `id` parameter is required: the endorsed activity id or URL, e.g. ?id=bagaaihra…",
        )?;
    if is_safe(id) {
        Ok(content_id(id))
    } else {
        Err("`id` must be an activity id or URL, without control characters".into())
    }
}

weft_guest::export_projection!(Endorsements);

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "bagaaihraqjmaloyrlxxqxiarb4a6b3xbwsxhlbf6vqr5fbe7bjpnvm2tpzga";

    use weft_guest::serde_json::Value;

    #[test]
    fn endorsements_need_a_target_and_kind() -> Result<(), serde_json::Error> {
        let text = json!({"type": "Endorse", "object": ID, "kind": "like"}).to_string();
        let like: Fields = serde_json::from_str(&text)?;
        assert_eq!(endorsement(&like), Some((ID, "like")));
        // A fediverse Like counts as a like, of the content id when it
        // names a weft activity by URL; an embedded object counts as its id.
        for counted in [
            json!({"type": "Like", "object": ID}),
            json!({"type": "Like", "object": format!("https://h.example/activities/{ID}")}),
            json!({"type": "Like", "object": {"id": ID, "type": "Note"}}),
            json!({"type": "Endorse", "object": {"id": ID}, "kind": "like"}),
        ] {
            let text = counted.to_string();
            let fields: Fields = serde_json::from_str(&text)?;
            assert_eq!(endorsement(&fields), Some((ID, "like")), "{counted}");
            assert_eq!(
                as_folded(&text),
                Some((ID.into(), "like".into())),
                "{counted}"
            );
        }
        let bad: [Value; 5] = [
            json!({"type": "Endorse", "object": ID, "kind": "love"}),
            json!({"type": "Endorse", "object": ID}),
            json!({"type": "Endorse", "object": "a\u{1f}b", "kind": "like"}),
            json!({"type": "Like", "object": {"type": "Note"}}),
            json!({"type": "Announce", "object": ID, "kind": "like"}),
        ];
        for bad in bad {
            let text = bad.to_string();
            let fields: Fields = serde_json::from_str(&text)?;
            assert_eq!(endorsement(&fields), None, "{bad}");
            assert_eq!(as_folded(&text), None, "{bad}");
        }
        Ok(())
    }

    /// What the fold counts an activity with this text as: its `kind`
    /// read up to itself, its type and object as the node passes them.
    fn as_folded(text: &str) -> Option<(String, String)> {
        let fields: Fields = serde_json::from_str(text).ok()?;
        let kind = weft_guest::field_in(text, "kind");
        counted(
            fields.kind_of_activity.as_deref()?,
            fields.object.as_deref(),
            kind.as_deref(),
        )
        .map(|(target, kind)| (target.to_owned(), kind.to_owned()))
    }

    #[test]
    fn count_keys_do_not_collide() {
        let a = key(&["count", ID, "like"]);
        let b = key(&["by", ID, "like", "https://example.com/actors/bob"]);
        assert_ne!(a, b);
        assert!(b.starts_with(&key(&["by", ID, "like", ""])));
    }

    #[test]
    fn id_param_is_required() {
        let p = |v: &str| vec![("id".to_owned(), v.to_owned())];
        assert_eq!(id_param(&p(ID)), Ok(ID));
        assert!(id_param(&p("")).is_err());
        assert!(id_param(&[]).is_err());
    }
}
