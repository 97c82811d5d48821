//! The Follow verb: an actor asks to follow another, named by URL in
//! `object`, optionally asking for `backfill` of the followed actor's past
//! activities (`mode` none | last-N with a positive `limit` | last-T with an
//! ISO-8601 `duration` | full). When the followed actor is local, `react`
//! accepts automatically: it returns one `Accept` intent. A `duration` is
//! read by `weft-duration`, the parser the host's backfill uses too, so a
//! Follow this verb admits is one the backfill understands.
//!
//! It does not track who follows whom (the `follower-graph` projection
//! does), refuse duplicate Follows, or perform the backfill (the kernel
//! does, docs/architecture.md §8.3).

use weft_guest::serde_json::{self, Map, Value};
use weft_guest::text::{clip, is_http_url};
use weft_guest::verb::{Activity, Context, Guest, Intent, Rejection};
use weft_guest::{Json, reject};

/// The backfill modes a Follow may ask for.
const MODES: [&str; 4] = ["none", "last-N", "last-T", "full"];

struct Follow;

impl Guest for Follow {
    fn validate(activity: Activity) -> Result<(), Rejection> {
        if activity.kind != "Follow" {
            return Err(reject(format!(
                "a Follow is published as its own activity (`\"type\": \"Follow\"`), not inside a `{}`",
                activity.kind
            )));
        }
        let json = Json::of(&activity.id)?;
        check_object(json.get("object"), &activity.actor).map_err(reject)?;
        match json.get("backfill") {
            None => Ok(()),
            Some(Value::Object(backfill)) => check_backfill(backfill).map_err(reject),
            Some(_) => Err(reject(
                "`backfill` must be an object such as {\"mode\": \"last-N\", \"limit\": 20}",
            )),
        }
    }

    fn react(activity: Activity, context: Context) -> Vec<Intent> {
        let Ok(json) = Json::of(&activity.id) else {
            return Vec::new();
        };
        match accept_draft(&json, &activity.id, &activity.actor, &context.recipient) {
            Some(draft) => vec![Intent {
                actor: context.recipient,
                draft,
            }],
            None => Vec::new(),
        }
    }
}

/// The Accept that `recipient` publishes when the Follow `id` by `actor`
/// is addressed to it (its `object`), as JSON text; otherwise `None`.
fn accept_draft(json: &Json, id: &str, actor: &str, recipient: &str) -> Option<String> {
    if json.get("object").and_then(Value::as_str) != Some(recipient) || actor == recipient {
        return None;
    }
    let draft = serde_json::json!({"type": "Accept", "object": id, "to": [actor]});
    Some(draft.to_string())
}

/// Checks `object`: the URL of the actor to follow, not the follower.
fn check_object(object: Option<&Value>, actor: &str) -> Result<(), String> {
    match object {
        Some(Value::String(url)) if url == actor => {
            Err("an actor cannot follow itself: `object` is the Follow's own `actor`".into())
        }
        Some(Value::String(url)) if is_http_url(url) => Ok(()),
        Some(Value::String(other)) => Err(format!(
            "`object` must be the followed actor's URL (http:// or https://), not `{}`",
            clip(other)
        )),
        Some(_) => Err("`object` must be the followed actor's URL, as a string".into()),
        None => Err("a Follow needs `object`: the URL of the actor to follow".into()),
    }
}

/// Checks a `backfill` request.
fn check_backfill(backfill: &Map<String, Value>) -> Result<(), String> {
    let mode = match backfill.get("mode") {
        Some(Value::String(mode)) if MODES.contains(&mode.as_str()) => mode.as_str(),
        Some(Value::String(mode)) => {
            return Err(format!(
                "`backfill.mode` must be one of none, last-N, last-T, full; not `{}`",
                clip(mode)
            ));
        }
        Some(_) => {
            return Err("`backfill.mode` must be a string: none, last-N, last-T or full".into());
        }
        None => return Err("`backfill` needs `mode`: none, last-N, last-T or full".into()),
    };
    match mode {
        "last-N" => match backfill.get("limit").and_then(Value::as_u64) {
            Some(n) if n > 0 => Ok(()),
            _ => Err(
                "`backfill.limit` must be a positive integer (how many activities) when `mode` is last-N"
                    .into(),
            ),
        },
        "last-T" => match backfill.get("duration").and_then(Value::as_str) {
            Some(d) => weft_duration::parse(d).map(drop).map_err(|e| {
                format!(
                    "`backfill.duration` must be an ISO-8601 duration such as \"P7D\" or \"PT12H\"; `{}` is not: {e}",
                    clip(d)
                )
            }),
            None => Err(
                "`backfill.duration` must be an ISO-8601 duration such as \"P7D\" or \"PT12H\" when `mode` is last-T"
                    .into(),
            ),
        },
        _ => Ok(()),
    }
}

weft_guest::verb::export_verb!(Follow);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_guest::serde_json::json;

    const ALICE: &str = "http://127.0.0.1:9999/actors/alice";
    const BOB: &str = "https://example.com/actors/bob";

    fn backfill(v: Value) -> Result<(), String> {
        match v {
            Value::Object(map) => check_backfill(&map),
            _ => Err("not an object".into()),
        }
    }

    #[test]
    fn object_is_another_actor_url() {
        assert!(check_object(Some(&json!(BOB)), ALICE).is_ok());
        assert!(check_object(Some(&json!(ALICE)), ALICE).is_err());
        assert!(check_object(Some(&json!("acct:bob@example.com")), ALICE).is_err());
        assert!(check_object(Some(&json!({"id": BOB})), ALICE).is_err());
        assert!(check_object(None, ALICE).is_err());
    }

    #[test]
    fn backfill_modes() {
        assert!(backfill(json!({"mode": "none"})).is_ok());
        assert!(backfill(json!({"mode": "full"})).is_ok());
        assert!(backfill(json!({"mode": "last-N", "limit": 20})).is_ok());
        assert!(backfill(json!({"mode": "last-T", "duration": "P7D"})).is_ok());
        assert!(backfill(json!({})).is_err());
        assert!(backfill(json!({"mode": "all"})).is_err());
        assert!(backfill(json!({"mode": "last-N"})).is_err());
        assert!(backfill(json!({"mode": "last-N", "limit": 0})).is_err());
        assert!(backfill(json!({"mode": "last-N", "limit": -3})).is_err());
        assert!(backfill(json!({"mode": "last-N", "limit": 2.5})).is_err());
        assert!(backfill(json!({"mode": "last-N", "limit": "20"})).is_err());
        assert!(backfill(json!({"mode": "last-T"})).is_err());
        assert!(backfill(json!({"mode": "last-T", "duration": "7 days"})).is_err());
    }

    #[test]
    fn durations_use_the_hosts_grammar() {
        let last_t = |d: &str| backfill(json!({"mode": "last-T", "duration": d}));
        for ok in [
            "P7D",
            "PT12H",
            "P1Y2M3DT4H5M6S",
            "P2W",
            "PT0.5S",
            "PT1,5H",
            "P0D",
            "P0,5D",
            "P1W2D",
        ] {
            assert!(last_t(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "P", "PT", "7D", "P7", "P1D1D", "P1M1Y", "P1DT", "PT1D", "P1.D", "P-1D", "p7d",
            "P1.5DT2H",
        ] {
            assert!(last_t(bad).is_err(), "{bad}");
        }
        let too_large = last_t("P99999999999999999999Y").expect_err("too large");
        assert!(too_large.contains("too large"), "{too_large}");
        assert!(backfill(json!({"mode": "last-T", "duration": 7})).is_err());
    }

    #[test]
    fn auto_accept_only_for_the_followed_actor() -> Result<(), weft_guest::JsonError> {
        let json =
            Json::from_text(&json!({"type": "Follow", "actor": ALICE, "object": BOB}).to_string())?;
        assert_eq!(accept_draft(&json, "bid", ALICE, ALICE), None);
        assert_eq!(
            accept_draft(&json, "bid", ALICE, "https://example.com/actors/carol"),
            None
        );
        let draft = accept_draft(&json, "bid", ALICE, BOB).ok_or(weft_guest::JsonError)?;
        let draft: Value = serde_json::from_str(&draft).map_err(|_| weft_guest::JsonError)?;
        assert_eq!(
            draft,
            json!({"type": "Accept", "object": "bid", "to": [ALICE]})
        );
        Ok(())
    }
}
