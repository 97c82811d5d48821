//! The object a `Create` makes (a Note, say), as ActivityPub peers
//! dereference it: its URL (`{actor}/objects/{seq}`) and its document, the
//! activity's `object` with the activity's `@context`.
//!
//! The format only: who may read an object is the HTTP layer's, and what a
//! `Create` fills into its object when it is published is the kernel's.

use serde_json::Value;

use super::AS_CONTEXT;

/// The URL of the object the activity at `seq` of `actor`'s log creates.
pub fn url(actor: &str, seq: u64) -> String {
    format!("{actor}/objects/{seq}")
}

/// The object that `activity` (JSON text) embeds with the id `url`, as it
/// is served there: with the activity's `@context` (ActivityStreams' when
/// it names none). `None` when the activity embeds no object with that id.
pub fn document(activity: &str, url: &str) -> Option<Value> {
    let Ok(Value::Object(mut activity)) = serde_json::from_str::<Value>(activity) else {
        return None;
    };
    let Some(Value::Object(mut object)) = activity.remove("object") else {
        return None;
    };
    if object.get("id").and_then(Value::as_str) != Some(url) {
        return None;
    }
    let context = activity
        .remove("@context")
        .unwrap_or_else(|| AS_CONTEXT.into());
    object.insert("@context".into(), context);
    Some(Value::Object(object))
}

/// The author of the object whose document `doc` was fetched from `url`
/// (a note an activity names by its URL): its `attributedTo` (a string,
/// an object's `id`, or the first of a list), when the document is served
/// at its own `id` and the author is on the object's own origin — what one
/// origin says about another's actors is not taken.
pub fn author<'d>(url: &str, doc: &'d Value) -> Option<&'d str> {
    fn id(v: &Value) -> Option<&str> {
        match v {
            Value::String(s) => Some(s),
            Value::Object(o) => o.get("id").and_then(Value::as_str),
            _ => None,
        }
    }
    if doc.get("id").and_then(Value::as_str) != Some(url) {
        return None;
    }
    let author = match doc.get("attributedTo")? {
        Value::Array(items) => items.iter().find_map(id)?,
        one => id(one)?,
    };
    let origin = crate::model::origin(url)?;
    (author != url && crate::model::origin(author)? == origin).then_some(author)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_object_with_its_own_url_is_served() {
        let url = url("https://n.example/actors/a", 2);
        let activity =
            format!(r#"{{"type": "Create", "object": {{"id": "{url}", "content": "hi"}}}}"#);
        let object = document(&activity, &url).expect("an object");
        assert_eq!(object["@context"], AS_CONTEXT);
        assert_eq!(object["content"], "hi");
        assert_eq!(
            document(&activity, "https://n.example/actors/a/objects/3"),
            None
        );
        assert_eq!(document(r#"{"object": "https://x"}"#, &url), None);
    }

    #[test]
    fn an_objects_author_is_taken_from_its_own_origin_only() {
        let url = "https://m.example/users/bob/statuses/1";
        let doc = |attributed: Value| serde_json::json!({"id": url, "type": "Note", "attributedTo": attributed});
        let bob = "https://m.example/users/bob";
        assert_eq!(author(url, &doc(bob.into())), Some(bob));
        assert_eq!(
            author(url, &doc(serde_json::json!({"id": bob, "type": "Person"}))),
            Some(bob)
        );
        assert_eq!(
            author(url, &doc(serde_json::json!([7, {"id": bob}]))),
            Some(bob)
        );
        // Another origin's actor, the object itself, nothing usable.
        assert_eq!(
            author(url, &doc("https://evil.example/users/x".into())),
            None
        );
        assert_eq!(author(url, &doc(url.into())), None);
        assert_eq!(author(url, &doc(serde_json::json!(3))), None);
        assert_eq!(author(url, &serde_json::json!({"id": url})), None);
        // A document not served at its own id says nothing.
        let moved = serde_json::json!({"id": "https://m.example/other", "attributedTo": bob});
        assert_eq!(author(url, &moved), None);
    }
}
