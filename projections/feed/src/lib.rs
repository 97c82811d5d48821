//! The feed projection: for every actor of this node, a newest-first list
//! of the activities it should see. Each folded activity goes to the feed
//! of its author, of every actor named in its `to`/`cc` (not the Public
//! collection, nor collections such as `…/followers`), and of every actor
//! that follows the author at that moment — each of them only if it is an
//! actor of this node.
//!
//! "Of this node" means at the node's origin (scheme, host and port). The
//! projection learns it from the first activity it folds, which on every
//! node is the service actor's definition of a genesis module (a build
//! starts at the beginning of the log), so a rebuild learns the same. Feeds
//! of other nodes' actors would be written for every activity they send and
//! never read here.
//!
//! It tracks follows itself, the same way as the follower-graph projection:
//! an Accept, by the followed actor, of a Follow (looked up with
//! `log::get`) makes the Follow's actor a follower; a Reject of it by the
//! followed actor, or an Undo of it by the follower, ends that.
//!
//! "Newest" means most recently folded on this node (a rebuild folds in the
//! same order), not `published`: a backfilled activity lands on top, and no
//! one can pin an activity by dating it in the future. It does not filter
//! by visibility or remove Undone activities. A Delete or an Update of an
//! object by its author is no entry of its own: the activity that made the
//! object shows it as a Tombstone, or as last updated (read at query time,
//! like an Announce's announced activity).
//!
//! Key layout (`␟` is U+001F, which no URL or activity id contains; `rank`
//! is `u64::MAX - n`, 20 digits zero-padded, for the n-th folded activity,
//! so an ascending scan is newest first):
//!
//! | key                          | value                              |
//! |------------------------------|------------------------------------|
//! | `feed␟{actor}␟{rank}`        | activity id                        |
//! | `follower␟{author}␟{actor}`  | id of the accepted Follow          |
//! | `undone␟{activity id}`       | Undo's actor                       |
//! | `deleted␟{object id}␟{actor}` | id of the Delete by that actor     |
//! | `updated␟{object id}␟{actor}` | id of that actor's latest Update   |
//! | `count`                      | n, activities folded so far        |
//! | `home`                       | this node's origin                 |
//!
//! Query: path `` or `items`, `actor=<url>`, `limit` (default 20, at most
//! 100), `after=<next from the previous page>` →
//! `{"actor", "items": [{"activity", "announced"}], "next"}`.

use weft_guest::Activity;
use weft_guest::Json;
use weft_guest::Projection;
use weft_guest::kv;
use weft_guest::projection::{QueryError, log};
use weft_guest::serde_json::{self, Value, json};
use weft_guest::text::{is_http_url as is_actor, is_safe, key};
use weft_verb_rules::follow_edge;

/// Page size when `limit` is not given.
const DEFAULT_LIMIT: usize = 20;
/// Largest page.
const MAX_LIMIT: usize = 100;
/// The Public collection, in the spellings ActivityStreams allows.
const PUBLIC: [&str; 3] = [
    "https://www.w3.org/ns/activitystreams#Public",
    "as:Public",
    "Public",
];

struct Feed;

impl Projection for Feed {
    fn fold(activity: &Activity<'_>) -> Result<(), String> {
        if !is_safe(activity.id) {
            return Ok(());
        }
        let author = activity.actor;
        let home = home(author);
        // The origin is compared first: most entries are not of this node.
        let local = |a: &str| home.as_deref().is_some_and(|h| at_origin(a, h)) && is_actor(a);

        // Only local actors are ever recorded as followers.
        let follower_prefix = key(&["follower", author, ""]);
        let followers = if is_actor(author) {
            kv::scan_all(&follower_prefix)
        } else {
            Vec::new()
        };
        // A few readers, written to in key order, each once.
        let mut readers: Vec<&str> = activity
            .to
            .iter()
            .chain(activity.cc.iter())
            .filter(|a| local(a) && !is_collection(a))
            .collect();
        if local(author) {
            readers.push(author);
        }
        readers.extend(
            followers
                .iter()
                .filter_map(|(k, _)| k.strip_prefix(&follower_prefix)),
        );
        readers.sort_unstable();
        readers.dedup();

        // A Delete or Update of an object (not of an actor) changes how
        // the activity that made it shows; it is no entry of its own.
        let changed = match (activity.kind, activity.object_id) {
            (kind @ ("Delete" | "Update"), Some(object)) if is_safe(object) && object != author => {
                let mark = if kind == "Delete" {
                    "deleted"
                } else {
                    "updated"
                };
                kv::set(&key(&[mark, object, author]), activity.id);
                true
            }
            _ => false,
        };
        let n = kv::counter("count");
        if !changed {
            let rank = rank(n);
            for reader in readers {
                kv::set(&key(&["feed", reader, &rank]), activity.id);
            }
        }
        kv::set("count", &decimal(n.saturating_add(1), 0));

        if let Some(object) = activity.object_id {
            track_follows(activity, object, &local);
        }
        Ok(())
    }

    fn query(path: String, params: Vec<(String, String)>) -> Result<String, QueryError> {
        if !path.is_empty() && path != "items" {
            return Err(QueryError::NotFound(format!(
                "no query `{path}`: use `items` (or the empty path) with ?actor=<url>&limit=&after="
            )));
        }
        let page = Page::from_params(&params).map_err(QueryError::BadRequest)?;
        let prefix = key(&["feed", page.actor, ""]);
        let after = page.after.map(|cursor| format!("{prefix}{cursor}"));
        let limit = u32::try_from(page.limit + 1).unwrap_or(u32::MAX);
        let mut entries = kv::scan(&prefix, after.as_deref(), limit);
        let next = if entries.len() > page.limit {
            entries.truncate(page.limit);
            entries
                .last()
                .and_then(|(k, _)| k.strip_prefix(&prefix))
                .map(str::to_owned)
        } else {
            None
        };
        let items: Vec<Value> = entries
            .iter()
            .filter_map(|(_, id)| stored(id))
            .map(as_changed)
            .map(|activity| {
                let announced = announced_id(&activity)
                    .and_then(stored)
                    .unwrap_or(Value::Null);
                json!({"activity": activity, "announced": announced})
            })
            .collect();
        Ok(json!({"actor": page.actor, "items": items, "next": next}).to_string())
    }
}

/// Updates the follower lists for an Accept, Reject or Undo of a Follow
/// (`object` is the activity's `object` when it is a string). Followers
/// that are not `local` are not recorded: they have no feed here.
fn track_follows(activity: &Activity<'_>, object: &str, local: &dyn Fn(&str) -> bool) {
    let actor = activity.actor;
    match activity.kind {
        "Accept" | "Reject" => {
            let Some((follower, target)) = follow(object) else {
                return;
            };
            if target != actor || !local(&follower) {
                return;
            }
            let edge = key(&["follower", &target, &follower]);
            if activity.kind == "Reject" {
                kv::delete(&edge);
            } else if kv::get(&key(&["undone", object])).is_none_or(|a| a != follower) {
                kv::set(&edge, object);
            }
        }
        "Undo" if is_safe(object) => {
            kv::set(&key(&["undone", object]), actor);
            if let Some((follower, target)) = follow(object)
                && follower == actor
            {
                kv::delete(&key(&["follower", &target, &follower]));
            }
        }
        _ => {}
    }
}

/// This node's origin: kept from the author of the first activity folded.
fn home(author: &str) -> Option<String> {
    if let Some(home) = kv::get("home") {
        return Some(home);
    }
    let home = origin(author)?;
    kv::set("home", &home);
    Some(home)
}

/// Whether `url`'s scheme and authority are `origin` (as [`origin`] makes
/// it: lower-case, an authority without `/`, `?` or `#`): `url` starts
/// with it, ignoring ASCII case, and its authority ends there. Compared
/// without allocating or reading the rest of `url`.
fn at_origin(url: &str, origin: &str) -> bool {
    let (url, origin) = (url.as_bytes(), origin.as_bytes());
    url.get(..origin.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(origin))
        && matches!(url.get(origin.len()), None | Some(b'/' | b'?' | b'#'))
}

/// The origin of an actor URL: its scheme and authority, lower-cased.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}").to_ascii_lowercase())
}

/// The (follower, target) of the Follow with this id, when the log has it.
fn follow(id: &str) -> Option<(String, String)> {
    let json = Json::from_text(&log::get(id)?).ok()?;
    follow_edge(&json)
}

/// A stored activity as JSON, when the log has it.
fn stored(id: &str) -> Option<Value> {
    serde_json::from_str(&log::get(id)?).ok()
}

/// `activity` with its embedded object as its author last left it: a
/// Tombstone once the author deleted it, the newest version once the
/// author updated it. Deletes and Updates by anyone else change nothing.
fn as_changed(mut activity: Value) -> Value {
    let (Some(author), Some(object)) = (
        activity.get("actor").and_then(Value::as_str),
        activity
            .get("object")
            .and_then(|o| o.get("id"))
            .and_then(Value::as_str),
    ) else {
        return activity;
    };
    let (author, object) = (author.to_owned(), object.to_owned());
    if kv::get(&key(&["deleted", &object, &author])).is_some() {
        activity["object"] = json!({"id": object, "type": "Tombstone"});
    } else if let Some(update) = kv::get(&key(&["updated", &object, &author]))
        .and_then(|id| stored(&id))
        .and_then(|u| u.get("object").cloned())
        .filter(|o| o.get("id").and_then(Value::as_str) == Some(object.as_str()))
    {
        activity["object"] = update;
    }
    activity
}

/// The id an Announce names, for any other activity `None`.
fn announced_id(activity: &Value) -> Option<&str> {
    if activity.get("type").and_then(Value::as_str) != Some("Announce") {
        return None;
    }
    activity.get("object").and_then(Value::as_str)
}

/// A feed query's parameters.
#[derive(Debug, PartialEq, Eq)]
struct Page<'a> {
    actor: &'a str,
    limit: usize,
    after: Option<&'a str>,
}

impl<'a> Page<'a> {
    fn from_params(params: &'a [(String, String)]) -> Result<Self, String> {
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let actor = param("actor").ok_or(
            "the `actor` parameter is required: whose feed, e.g. ?actor=https://host/actors/alice",
        )?;
        if !is_actor(actor) {
            return Err(format!(
                "`actor` must be an actor URL (http:// or https://), not `{}`",
                actor.chars().take(80).collect::<String>()
            ));
        }
        let limit = match param("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if n > 0 => n.min(MAX_LIMIT),
                _ => {
                    return Err(format!(
                        "`limit` must be a whole number from 1 to {MAX_LIMIT}, not `{}`",
                        text.chars().take(20).collect::<String>()
                    ));
                }
            },
        };
        let after = match param("after") {
            None | Some("") => None,
            Some(cursor) if is_rank(cursor) => Some(cursor),
            Some(_) => {
                return Err(
                    "`after` must be the `next` value of the previous page, unchanged".into(),
                );
            }
        };
        Ok(Self {
            actor,
            limit,
            after,
        })
    }
}

/// The rank of the n-th folded activity: newer ranks sort first.
fn rank(n: u64) -> String {
    decimal(u64::MAX - n, 20)
}

/// `n` in decimal, zero-padded to `width` digits (at most 20, all a u64
/// needs): what `format!("{n:0width$}")` writes, without the formatting
/// machinery, which cost a module more than the rest of making a key.
fn decimal(mut n: u64, width: usize) -> String {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    while n > 0 || start == digits.len() {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let start = start.min(digits.len().saturating_sub(width));
    digits[start..].iter().map(|&d| char::from(d)).collect()
}

/// Is `s` a rank (a cursor): 20 digits?
fn is_rank(s: &str) -> bool {
    s.len() == 20 && s.bytes().all(|c| c.is_ascii_digit())
}

/// Is this audience entry a collection (Public, followers, following)
/// rather than an actor?
fn is_collection(entry: &str) -> bool {
    if PUBLIC.contains(&entry) {
        return true;
    }
    let path = entry.split(['?', '#']).next().unwrap_or(entry);
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    matches!(last, "followers" | "following")
}

weft_guest::export_projection!(Feed);

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "http://127.0.0.1:9999/actors/alice";

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn decimals_are_what_format_writes() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            12_345,
            u64::MAX / 10,
            u64::MAX - 1,
            u64::MAX,
        ] {
            for width in [0, 1, 5, 19, 20] {
                assert_eq!(decimal(n, width), format!("{n:0width$}"), "{n} {width}");
            }
            assert_eq!(rank(n), format!("{:020}", u64::MAX - n));
        }
    }

    #[test]
    fn ranks_sort_newest_first() {
        assert_eq!(rank(0), u64::MAX.to_string());
        assert_eq!(rank(u64::MAX), "0".repeat(20));
        assert!(rank(5) < rank(4));
        assert!(rank(10) < rank(9));
        assert!(is_rank(&rank(12345)));
        assert!(!is_rank("123") && !is_rank(&"x".repeat(20)));
    }

    #[test]
    fn feed_keys_nest_by_actor() {
        let k = key(&["feed", ALICE, &rank(1)]);
        assert_eq!(
            k.strip_prefix(&key(&["feed", ALICE, ""])),
            Some(rank(1).as_str())
        );
        assert!(!k.starts_with(&key(&["feed", "http://127.0.0.1:9999/actors/ali", ""])));
    }

    #[test]
    fn collections_are_not_readers() {
        for c in [
            "https://www.w3.org/ns/activitystreams#Public",
            "as:Public",
            "http://127.0.0.1:9999/actors/alice/followers",
            "http://127.0.0.1:9999/actors/alice/following/",
        ] {
            assert!(is_collection(c), "{c}");
        }
        assert!(!is_collection(ALICE));
        assert!(!is_collection("https://example.com/users/followersofbob"));
    }

    #[test]
    fn actors_are_urls_without_separators() {
        assert!(is_actor(ALICE));
        assert!(!is_actor("as:Public"));
        assert!(!is_actor("https://x/a\u{1f}b"));
        assert!(!is_actor("https:///x"));
        assert!(is_safe("bxyz") && !is_safe("") && !is_safe("a\u{1f}"));
    }

    #[test]
    fn page_params() {
        let p = params(&[("actor", ALICE)]);
        assert_eq!(
            Page::from_params(&p),
            Ok(Page {
                actor: ALICE,
                limit: DEFAULT_LIMIT,
                after: None
            })
        );
        let r = rank(7);
        let p = params(&[("actor", ALICE), ("limit", "500"), ("after", &r)]);
        assert_eq!(
            Page::from_params(&p),
            Ok(Page {
                actor: ALICE,
                limit: MAX_LIMIT,
                after: Some(r.as_str())
            })
        );
        for bad in [
            params(&[]),
            params(&[("actor", "alice")]),
            params(&[("actor", ALICE), ("limit", "0")]),
            params(&[("actor", ALICE), ("limit", "ten")]),
            params(&[("actor", ALICE), ("after", "feed")]),
        ] {
            assert!(Page::from_params(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn origins_are_scheme_and_authority() {
        assert_eq!(origin(ALICE).as_deref(), Some("http://127.0.0.1:9999"));
        assert_eq!(
            origin("HTTPS://Example.COM/users/x?y#z").as_deref(),
            Some("https://example.com")
        );
        assert_ne!(origin(ALICE), origin("http://127.0.0.1:9998/actors/alice"));
        assert_eq!(origin("https:///x"), None);
        assert_eq!(origin("as:Public"), None);
        // The comparison without allocating agrees with comparing origins.
        let home = "http://127.0.0.1:9999";
        for url in [
            ALICE,
            "HTTP://127.0.0.1:9999/actors/Bob",
            "http://127.0.0.1:9998/actors/alice",
            "http://127.0.0.1:99999/x",
            "https://127.0.0.1:9999/x",
            "http://127.0.0.1:9999",
            "http:///x",
            "as:Public",
            "http://é.example/x",
            "http://127.0.0.1:9999?q",
            "http://127.0.0.1:9999#f",
            "http://127.0.0.1:9999:1/x",
            "http://127.0.0.1",
            "",
        ] {
            assert_eq!(
                at_origin(url, home),
                origin(url).as_deref() == Some(home),
                "{url}"
            );
        }
        // Schemes with a colon, and a second `://`, split where
        // `split_once` splits.
        for (url, home) in [
            ("a:b://h/x", "a:b://h"),
            ("a://b://h", "a://b:"),
            ("x:/y://z/w", "x:/y://z"),
            ("A:B://H", "a:b://h"),
        ] {
            assert_eq!(origin(url).as_deref(), Some(home), "{url}");
            assert!(at_origin(url, home), "{url}");
        }
        assert!(at_origin("http://É.example/x", "http://É.example"));
    }

    #[test]
    fn announces_name_their_object() {
        let a = json!({"type": "Announce", "object": "bxyz"});
        assert_eq!(announced_id(&a), Some("bxyz"));
        let n = json!({"type": "Create", "object": {"type": "Note"}});
        assert_eq!(announced_id(&n), None);
    }
}
