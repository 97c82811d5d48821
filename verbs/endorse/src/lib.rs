//! The Endorse verb: an actor likes or shares something, named by `object`
//! (an activity id or an http(s) URL), with `kind` `"like"` or `"share"`.
//! It checks shape only: it does not look the target up, count
//! endorsements (the `endorsements` projection does) or stop an actor
//! endorsing twice (the projection counts each actor once). Endorsements
//! need no reaction.

use weft_guest::serde_json::Value;
use weft_guest::text::{clip, is_activity_id, is_http_url};
use weft_guest::verb::{Activity, Context, Guest, Intent, Rejection};
use weft_guest::{Json, reject};

/// The kinds of endorsement.
const KINDS: [&str; 2] = ["like", "share"];

struct Endorse;

impl Guest for Endorse {
    fn validate(activity: Activity) -> Result<(), Rejection> {
        if activity.kind != "Endorse" {
            return Err(reject(format!(
                "an Endorse is published as its own activity (`\"type\": \"Endorse\"`), not inside a `{}`",
                activity.kind
            )));
        }
        let json = Json::of(&activity.id)?;
        check(json.get("object"), json.get("kind")).map_err(reject)
    }

    fn react(_activity: Activity, _context: Context) -> Vec<Intent> {
        Vec::new()
    }
}

/// Checks an Endorse's `object` and `kind`.
fn check(object: Option<&Value>, kind: Option<&Value>) -> Result<(), String> {
    match object {
        Some(Value::String(id)) if is_activity_id(id) || is_http_url(id) => {}
        Some(Value::String(other)) => {
            return Err(format!(
                "`object` must be an activity id (`b` then 60 characters a-z, 2-7) or an http(s) URL; `{}` is neither",
                clip(other)
            ));
        }
        Some(_) => {
            return Err(
                "`object` must be the endorsed thing's id as a string (an activity id or URL)"
                    .into(),
            );
        }
        None => return Err("an Endorse needs `object`: the id of what it endorses".into()),
    }
    match kind {
        Some(Value::String(k)) if KINDS.contains(&k.as_str()) => Ok(()),
        Some(Value::String(k)) => Err(format!(
            "`kind` must be \"like\" or \"share\", not \"{}\"",
            clip(k)
        )),
        Some(_) => Err("`kind` must be the string \"like\" or \"share\"".into()),
        None => Err("an Endorse needs `kind`: \"like\" or \"share\"".into()),
    }
}

weft_guest::verb::export_verb!(Endorse);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_guest::serde_json::json;

    const ID: &str = "bagaaihraqjmaloyrlxxqxiarb4a6b3xbwsxhlbf6vqr5fbe7bjpnvm2tpzga";

    #[test]
    fn accepts_ids_and_urls() {
        assert!(check(Some(&json!(ID)), Some(&json!("like"))).is_ok());
        assert!(
            check(
                Some(&json!("https://example.com/p/1")),
                Some(&json!("share"))
            )
            .is_ok()
        );
        assert!(check(Some(&json!("http://127.0.0.1:9/x")), Some(&json!("like"))).is_ok());
    }

    #[test]
    fn rejects_bad_objects() {
        for object in [
            json!("ftp://example.com"),
            json!("https://"),
            json!("https:///path"),
            json!("https://a b"),
            json!("bafy"),
            json!({"id": ID}),
            json!(7),
        ] {
            assert!(
                check(Some(&object), Some(&json!("like"))).is_err(),
                "{object}"
            );
        }
        assert!(check(None, Some(&json!("like"))).is_err());
    }

    #[test]
    fn rejects_bad_kinds() {
        for kind in [json!("Like"), json!("love"), json!(1), json!(["like"])] {
            assert!(check(Some(&json!(ID)), Some(&kind)).is_err(), "{kind}");
        }
        assert!(check(Some(&json!(ID)), None).is_err());
    }
}
