//! A projection for the tests of folding runs (0.3.0 `fold`, and as
//! `weft-test-batch-v0-2` 0.2.0 `fold-batch`; not a real
//! projection): it counts activities per verb, but first writes a marker
//! (deleted again by a fold that succeeds), and misbehaves when
//! `object.content` asks it to, so a test can check that a batch with a bad
//! activity in it folds the others as single folds would:
//! - "fail" returns an error; "trap" panics; "spin" loops until its fuel
//!   is spent;
//! - "echo" keeps the activity's JSON text, read with `log.get` of its id.
//!
//! It also keeps every field the node passed it of each activity, so a
//! test can check that each contract version carries the same ones.
//!
//! Query `count?verb=Note` → {"count": n}; `marker` → {"marker": bool};
//! `echo` → the last echoed activity's content; `fields?id=` → the
//! activity's fields as passed.

use weft_guest::Activity;
use weft_guest::projection::QueryError;
use weft_guest::serde_json::{Value, json};
use weft_guest::{Projection, kv};

struct Batch;

impl Projection for Batch {
    fn fold(activity: &Activity<'_>) -> Result<(), String> {
        kv::set("marker", "written");
        if activity.verb == "Note" {
            let json = activity.json().map_err(|e| e.to_string())?;
            match json.object_str("content").unwrap_or_default() {
                "fail" => return Err("failed on purpose".into()),
                "trap" => panic!("trapped on purpose"),
                "spin" => loop {
                    std::hint::black_box(0u8);
                },
                "echo" => kv::set("echo", json.object_str("content").unwrap_or_default()),
                _ => {}
            }
        }
        kv::delete("marker");
        kv::set(
            &format!("fields|{}", activity.id),
            &fields(activity).to_string(),
        );
        kv::add(&format!("count|{}", activity.verb), 1);
        Ok(())
    }

    fn query(path: String, params: Vec<(String, String)>) -> Result<String, QueryError> {
        match path.as_str() {
            "count" => {
                let verb = param(&params, "verb")?;
                Ok(format!(
                    "{{\"count\":{}}}",
                    kv::counter(&format!("count|{verb}"))
                ))
            }
            "marker" => Ok(format!("{{\"marker\":{}}}", kv::get("marker").is_some())),
            "echo" => Ok(format!(
                "{{\"echo\":{:?}}}",
                kv::get("echo").unwrap_or_default()
            )),
            "fields" => {
                let id = param(&params, "id")?;
                kv::get(&format!("fields|{id}"))
                    .ok_or_else(|| QueryError::NotFound(format!("{id} was not folded")))
            }
            other => Err(QueryError::NotFound(format!("no query `{other}`"))),
        }
    }
}

/// The query parameter `name`, which is required.
fn param<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, QueryError> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| QueryError::BadRequest(format!("`{name}` is required")))
}

/// Every field of `activity` as the node passed it.
fn fields(activity: &Activity<'_>) -> Value {
    json!({
        "id": activity.id,
        "kind": activity.kind,
        "verb": activity.verb,
        "actor": activity.actor,
        "seq": activity.seq,
        "published": activity.published,
        "backfilled": activity.backfilled,
        "object_type": activity.object_type,
        "object_id": activity.object_id,
        "in_reply_to": activity.in_reply_to,
        "to": activity.to.iter().collect::<Vec<_>>(),
        "cc": activity.cc.iter().collect::<Vec<_>>(),
    })
}

weft_guest::export_projection!(Batch);
