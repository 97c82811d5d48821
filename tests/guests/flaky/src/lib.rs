//! A projection for the fold tests (not a real projection): it counts
//! activities per verb, but first writes a marker, then misbehaves when
//! `object.content` asks it to — so a test can check that a failed fold's
//! writes vanish:
//! - "fail" returns an error; "trap" panics; "spin" loops forever;
//! - "overwrite" writes past the fold's byte budget; "longkey" writes a
//!   key over the key size limit; "many" makes a million small writes;
//!   "scan" scans the store without end;
//! - "remember" records how many folds this instance has made (always 1:
//!   every call gets a fresh instance, so a rebuild folds alike).
//!
//! Query `count?verb=Note` → {"count": n}; `marker` → {"marker": bool};
//! `remember` → {"remember": n}; `spin` loops forever.

use std::sync::atomic::{AtomicU32, Ordering};

use weft_guest_v0_1::projection::{Activity, Guest, QueryError};
use weft_guest_v0_1::{Json, kv};

struct Flaky;

/// State a module might try to keep between calls.
static FOLDS: AtomicU32 = AtomicU32::new(0);

impl Guest for Flaky {
    fn fold(activity: Activity) -> Result<(), String> {
        let json = Json::parse(&activity).map_err(|e| e.to_string())?;
        kv::set("marker", "written");
        let folds = FOLDS.fetch_add(1, Ordering::Relaxed) + 1;
        match json.object_str("content").unwrap_or_default() {
            "fail" => return Err("failed on purpose".into()),
            "trap" => panic!("trapped on purpose"),
            "spin" => loop {
                std::hint::black_box(0u8);
            },
            "overwrite" => {
                let value = "v".repeat(64 << 10);
                for i in 0u32.. {
                    kv::set(&format!("big|{i}"), &value);
                }
            }
            "longkey" => kv::set(&"k".repeat(4096), "v"),
            "many" => {
                for i in 0..1_000_000u32 {
                    kv::set(&format!("n|{i}"), "1");
                }
            }
            "scan" => loop {
                std::hint::black_box(kv::scan("", None, 1000));
            },
            "remember" => kv::set("remember", &folds.to_string()),
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
            "remember" => Ok(format!("{{\"remember\":{}}}", kv::counter("remember"))),
            "spin" => loop {
                std::hint::black_box(0u8);
            },
            other => Err(QueryError::NotFound(format!("no query `{other}`"))),
        }
    }
}

weft_guest_v0_1::projection::export_projection!(Flaky);
