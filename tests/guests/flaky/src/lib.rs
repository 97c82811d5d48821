//! A projection for the fold tests (not a real projection): it counts
//! activities per verb, but first writes a marker, then fails with an error
//! when `object.content` is "fail", traps when it is "trap", and spins when
//! it is "spin" — so a test can check that a failed fold's writes vanish.
//! Query `count?verb=Note` → {"count": n}; `marker` → {"marker": bool}.

use weft_guest::projection::{Activity, Guest, QueryError};
use weft_guest::{Json, kv};

struct Flaky;

impl Guest for Flaky {
    fn fold(activity: Activity) -> Result<(), String> {
        let json = Json::parse(&activity).map_err(|e| e.to_string())?;
        kv::set("marker", "written");
        match json.object_str("content").unwrap_or_default() {
            "fail" => return Err("failed on purpose".into()),
            "trap" => panic!("trapped on purpose"),
            "spin" => loop {
                std::hint::black_box(0u8);
            },
            _ => {}
        }
        kv::delete("marker");
        kv::add(&format!("count|{}", activity.verb), 1);
        Ok(())
    }

    fn query(path: String, params: Vec<(String, String)>) -> Result<String, QueryError> {
        match path.as_str() {
            "count" => {
                let verb = params
                    .iter()
                    .find(|(k, _)| k == "verb")
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| QueryError::BadRequest("`verb` is required".into()))?;
                Ok(format!(
                    "{{\"count\":{}}}",
                    kv::counter(&format!("count|{verb}"))
                ))
            }
            "marker" => Ok(format!("{{\"marker\":{}}}", kv::get("marker").is_some())),
            other => Err(QueryError::NotFound(format!("no query `{other}`"))),
        }
    }
}

weft_guest::projection::export_projection!(Flaky);
