//! The Announce verb: an actor shares (boosts) an existing activity by
//! naming its id in `object` (or, from the fediverse, a post by its URL). It checks only the shape of that id; it does
//! not fetch or verify the announced activity (the kernel does that before
//! folding, docs/architecture.md §7.2) and does not embed it. Announces need no reaction.

use weft_guest::serde_json::Value;
use weft_guest::text::{clip, is_activity_id, is_http_url};
use weft_guest::verb::{Activity, Context, Guest, Intent, Rejection};
use weft_guest::{Json, reject};

struct Announce;

impl Guest for Announce {
    fn validate(activity: Activity) -> Result<(), Rejection> {
        if activity.kind != "Announce" {
            return Err(reject(format!(
                "an Announce is published as its own activity (`\"type\": \"Announce\"`), not inside a `{}`",
                activity.kind
            )));
        }
        let json = Json::of(&activity.id)?;
        check(json.get("object")).map_err(reject)
    }

    fn react(_activity: Activity, _context: Context) -> Vec<Intent> {
        Vec::new()
    }
}

/// Checks an Announce's `object`: the id of the announced activity, or
/// the URL of an announced object (a fediverse server boosts a post by its
/// URL).
fn check(object: Option<&Value>) -> Result<(), String> {
    match object {
        Some(Value::String(id)) if is_activity_id(id) || is_http_url(id) => Ok(()),
        Some(Value::String(other)) => Err(format!(
            "`object` must be the id of the announced activity (`b` then 60 characters a-z, 2-7) or an http(s) URL; `{}` is neither",
            clip(other)
        )),
        Some(_) => Err(
            "`object` must be the announced activity's id as a string, not an embedded object or other value".into(),
        ),
        None => Err("an Announce needs `object`: the id of the activity it shares".into()),
    }
}

weft_guest::verb::export_verb!(Announce);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_guest::serde_json::json;

    const ID: &str = "bagaaihraqjmaloyrlxxqxiarb4a6b3xbwsxhlbf6vqr5fbe7bjpnvm2tpzga";

    #[test]
    fn accepts_an_activity_id_or_a_url() {
        assert_eq!(ID.len(), 61);
        assert!(check(Some(&json!(ID))).is_ok());
        assert!(check(Some(&json!("https://example.com/users/a/statuses/1"))).is_ok());
    }

    #[test]
    fn rejects_other_objects() {
        assert!(check(None).is_err());
        assert!(check(Some(&json!({"id": ID}))).is_err());
        assert!(check(Some(&json!("ftp://example.com/x"))).is_err());
        assert!(check(Some(&json!(ID.to_uppercase()))).is_err());
        assert!(check(Some(&json!(&ID[..60]))).is_err());
        assert!(check(Some(&json!(ID.replacen('b', "z", 1)))).is_err());
        assert!(check(Some(&json!(format!("{}1", &ID[..60])))).is_err());
    }

    #[test]
    fn clips_long_input() {
        assert_eq!(clip("short"), "short");
        assert_eq!(clip(&"é".repeat(100)).chars().count(), 81);
    }
}
