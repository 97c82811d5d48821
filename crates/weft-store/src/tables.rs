//! The redb table definitions: the whole on-disk schema in one place.

use redb::TableDefinition;

/// Global position → postcard [`super::ActivityRecord`]: every stored
/// activity in append order. Folding and rebuilding follow it, so a rebuild
/// sees activities in the order the node did. Keyed by position so that
/// appends fill pages at the end of the tree instead of touching a random
/// page per activity.
pub const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("records");
/// Activity id (its UTF-8 bytes) → its position in [`RECORDS`]. Keys in the
/// hot tables are bytes, not `&str`: redb would re-check UTF-8 on every
/// comparison.
pub const ACTIVITY_IDS: TableDefinition<&[u8], u64> = TableDefinition::new("activity_ids");
/// (actor id bytes, seq) → activity id: each actor's hash-chained log.
pub const LOG: TableDefinition<(&[u8], u64), &str> = TableDefinition::new("log");
/// (actor id bytes, public rank) → seq: the part of each log anonymous
/// readers see.
pub const PUBLIC_LOG: TableDefinition<(&[u8], u64), u64> = TableDefinition::new("public_log");
/// Actor id → postcard [`weft_core::identity::ActorState`].
pub const ACTORS: TableDefinition<&str, &[u8]> = TableDefinition::new("actors");
/// Local username → actor id.
pub const NAMES: TableDefinition<&str, &str> = TableDefinition::new("names");
/// BLAKE3 of a bearer token → postcard [`super::Role`].
pub const TOKENS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tokens");
/// Node-wide settings fixed at `weft init`.
pub const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// Artifact id → the artifact's bytes (WASM components), content-addressed.
pub const ARTIFACTS: TableDefinition<&str, &[u8]> = TableDefinition::new("artifacts");
/// Verb or projection name → postcard [`super::ModuleRecord`] with its history.
pub const MODULES: TableDefinition<&str, &[u8]> = TableDefinition::new("modules");
/// Policy name → postcard [`super::PolicyRecord`] with its history: the
/// `DefinePolicy` activities of the log, by name, written with each one.
pub const POLICIES: TableDefinition<&str, &[u8]> = TableDefinition::new("policies");
/// [`state_key`]`(projection, key)` → value: each projection's private
/// key-value store. Names never contain NUL, so one projection's entries
/// are contiguous and ordered by the bytes of their keys, which is the
/// order of the strings a module sees. Byte keys compare with `memcmp`; the
/// `(&str, &str)` keys of [`LEGACY_PROJECTION_KV`], which this replaces,
/// checked UTF-8 at every comparison of every lookup.
pub const PROJECTION_STATE: TableDefinition<&[u8], &str> = TableDefinition::new("projection_state");
/// (projection, key) → value: the projection stores of data folders made
/// before [`PROJECTION_STATE`]; [`super::Store::open`] moves them over.
pub const LEGACY_PROJECTION_KV: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("projection_kv");

/// The [`PROJECTION_STATE`] key of `key` in `projection`'s store.
pub fn state_key(projection: &str, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(projection.len() + 1 + key.len());
    out.extend_from_slice(projection.as_bytes());
    out.push(0);
    out.extend_from_slice(key.as_bytes());
    out
}

/// The projection and key of a stored [`PROJECTION_STATE`] key; `None` if it
/// is not one (the file was altered behind the node's back).
pub fn split_state_key(stored: &[u8]) -> Option<(&str, &str)> {
    let at = stored.iter().position(|b| *b == 0)?;
    let projection = std::str::from_utf8(&stored[..at]).ok()?;
    let key = std::str::from_utf8(&stored[at + 1..]).ok()?;
    Some((projection, key))
}
/// Projection name → postcard [`super::ProjectionStatus`].
pub const PROJECTION_STATUS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("projection_status");
/// (recipient actor id bytes, n) → position in [`RECORDS`]: each local
/// actor's inbox, in arrival order (n counts from 1).
pub const INBOX: TableDefinition<(&[u8], u64), u64> = TableDefinition::new("inbox");
/// Remote actor id → postcard [`super::Peer`]: actor documents fetched from
/// their origin, with the key history they publish.
pub const PEERS: TableDefinition<&str, &[u8]> = TableDefinition::new("peers");
/// Foreign activity id (its URL) → postcard
/// [`weft_core::model::envelope::HttpEvidence`]: the HTTP signature that
/// brought it, since it carries no proof of its own.
pub const EVIDENCE: TableDefinition<&str, &[u8]> = TableDefinition::new("foreign_evidence");
/// (actor, seq, other activity id) → the other activity's JSON text: a second,
/// different activity seen at an already-known position (fork evidence).
pub const FORKS: TableDefinition<(&str, u64, &str), &str> = TableDefinition::new("forks");
/// Peer origin (`scheme://host[:port]`) → postcard [`super::OriginUsage`]:
/// what that origin's authors' activities and fork evidence take here,
/// kept with every write, so a quota per origin is one lookup.
pub const ORIGIN_USAGE: TableDefinition<&str, &[u8]> = TableDefinition::new("origin_usage");
/// Job id → postcard [`super::Job`]: outbound deliveries not yet done.
pub const DELIVERIES: TableDefinition<u64, &[u8]> = TableDefinition::new("deliveries");
/// Job id → postcard [`super::Job`]: deliveries that gave up.
pub const DEAD_LETTERS: TableDefinition<u64, &[u8]> = TableDefinition::new("dead_letters");
/// Dead letter id → when (ms since the Unix epoch) anti-entropy found the
/// recipient's node holding the activity: a dead letter that no longer
/// matters. Removed with the dead letter.
pub const HEALED: TableDefinition<u64, u64> = TableDefinition::new("healed");
/// Remote actor URL → postcard [`super::SyncState`]: where anti-entropy
/// stands with that actor's log.
pub const SYNC_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("sync_state");
/// Follow id → postcard [`super::BackfillJob`]: backfills accepted but not
/// yet finished.
pub const BACKFILLS: TableDefinition<&str, &[u8]> = TableDefinition::new("backfills");
/// Position of an activity whose local recipients have not reacted yet
/// (their verbs' intents are not yet published) → nothing. Written with the
/// activity, removed with the last intent, so a crash in between re-runs
/// the reaction at the next start instead of losing it.
pub const REACTIONS: TableDefinition<u64, ()> = TableDefinition::new("reactions");
/// (verb, activity id) → postcard [`super::Parked`]: activities from peers
/// whose verb this node does not know yet, kept until a module for it is
/// admitted (then they are ingested). Up to `federation.max_parked` of them,
/// `max_parked_per_origin` from one origin; past either, the inbox answers
/// 503 and the sender keeps and retries them.
pub const PARKED: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("parked");
/// Projection name → the next global position it folds while it is being
/// built (a new definition, or a rebuild) in steps between the writer's
/// batches; 0 while its old state is still being cleared. Absent once it
/// has caught up with the log.
pub const PROJECTION_BUILDS: TableDefinition<&str, u64> = TableDefinition::new("projection_builds");
/// Projection name → the generation of its state that is served (absent:
/// 0). A rebuild builds the next generation beside it and swaps it in
/// when caught up; a generation's keys are under [`namespace`].
pub const PROJECTION_GENERATIONS: TableDefinition<&str, u64> =
    TableDefinition::new("projection_generations");
/// Projection name → the generation a rebuild under way builds (its
/// position in [`PROJECTION_BUILDS`]).
pub const PROJECTION_REBUILDS: TableDefinition<&str, u64> =
    TableDefinition::new("projection_rebuilds");
/// Namespace ([`namespace`]) → nothing: a generation replaced by a
/// rebuild, whose keys are removed in steps.
pub const PROJECTION_DROPS: TableDefinition<&str, ()> = TableDefinition::new("projection_drops");

/// Where generation `generation` of projection `name` keeps its keys in
/// [`PROJECTION_STATE`] (and a rebuild its status): the name itself for
/// generation 0, `{name}#{generation}` after (module names have no `#`).
pub fn namespace(name: &str, generation: u64) -> String {
    if generation == 0 {
        name.to_owned()
    } else {
        format!("{name}#{generation}")
    }
}

/// The projection name and generation of a namespace.
pub fn split_namespace(namespace: &str) -> (&str, u64) {
    match namespace.rsplit_once('#') {
        Some((name, generation)) => match generation.parse() {
            Ok(generation) => (name, generation),
            Err(_) => (namespace, 0),
        },
        None => (namespace, 0),
    }
}
/// (author's origin, verb, activity id) → nothing: the parked activities
/// by where they come from, so one origin's share can be bounded
/// (`federation.max_parked_per_origin`).
pub const PARKED_BY_ORIGIN: TableDefinition<(&str, &str, &str), ()> =
    TableDefinition::new("parked_by_origin");
/// Verb → postcard [`super::PendingModule`]: a peer's definition of a verb
/// this node lacks, found at the author's origin, awaiting admission.
pub const PENDING_MODULES: TableDefinition<&str, &[u8]> = TableDefinition::new("pending_modules");

/// [`set_row_key`]`(recipient origin, key)` → position in [`RECORDS`]: the
/// activities of local actors delivered to a remote origin (one row per
/// origin, however many recipients there), by (published, id) within the
/// origin: the set a peer reconciles with (docs/architecture.md §10).
/// Written with the append; read by nothing but set reconciliation.
pub const ADDRESSED: TableDefinition<&[u8], u64> = TableDefinition::new("addressed");
/// [`set_row_key`]`(author origin, key)` → position in [`RECORDS`]: every
/// activity stored here from a remote author, by (published, id) within
/// the author's origin: this node's side of set reconciliation with that
/// origin. Written with the activity; read by nothing else.
pub const HELD_FROM: TableDefinition<&[u8], u64> = TableDefinition::new("held_from");

/// [`set_row_key`]`(author origin, key)` → nothing: activities of remote
/// authors that a `replication` policy's `keep` rule pruned (their
/// [`HELD_FROM`] rows move here). Set reconciliation counts them as held,
/// so that it does not fetch again what a policy dropped.
pub const PRUNED: TableDefinition<&[u8], ()> = TableDefinition::new("pruned");

/// Length of the part of a set row's key after the origin and its NUL:
/// `published` (8 bytes, big-endian) and the 32-byte id.
pub const SET_KEY_TAIL: usize = 8 + 32;

/// The key of a row of [`ADDRESSED`] or [`HELD_FROM`]: the origin's bytes,
/// NUL (never in an origin), `published` in ms big-endian, the id. Byte
/// order is (origin, published, id) order, so one origin's rows are one
/// range, sorted as negentropy sorts them.
pub fn set_row_key(origin: &str, key: &weft_core::model::setkey::SetKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(origin.len() + 1 + SET_KEY_TAIL);
    out.extend_from_slice(origin.as_bytes());
    out.push(0);
    out.extend_from_slice(&key.published_ms.to_be_bytes());
    out.extend_from_slice(&key.id);
    out
}

/// The range of `origin`'s rows: from `origin` NUL up to `origin` 0x01.
pub fn set_row_range(origin: &str) -> (Vec<u8>, Vec<u8>) {
    let mut start = origin.as_bytes().to_vec();
    let mut end = start.clone();
    start.push(0);
    end.push(1);
    (start, end)
}

/// The (published, id) of a stored set row's key; `None` if it is not one.
pub fn split_set_row_key(stored: &[u8]) -> Option<weft_core::model::setkey::SetKey> {
    let tail = stored.len().checked_sub(SET_KEY_TAIL)?;
    let (head, rest) = stored.split_at(tail);
    if head.last() != Some(&0) {
        return None;
    }
    let (published, id) = rest.split_at(8);
    Some(weft_core::model::setkey::SetKey {
        published_ms: u64::from_be_bytes(published.try_into().ok()?),
        id: id.try_into().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// State keys keep projections apart and order keys as strings do,
    /// whatever the keys contain.
    #[test]
    fn state_keys() {
        let a = state_key("feed", "b\u{1f}x");
        assert_eq!(split_state_key(&a), Some(("feed", "b\u{1f}x")));
        assert_eq!(
            split_state_key(&state_key("p", "with\0nul")),
            Some(("p", "with\0nul"))
        );
        // Every key of `feed` sorts before every key of `feed-2`, and
        // within a projection byte order is string order.
        assert!(state_key("feed", "\u{10ffff}") < state_key("feed-2", ""));
        let mut keys = ["é", "z", "a\u{1f}", "a", ""];
        let mut stored: Vec<Vec<u8>> = keys.iter().map(|k| state_key("p", k)).collect();
        keys.sort();
        stored.sort();
        let back: Vec<&str> = stored
            .iter()
            .filter_map(|s| split_state_key(s).map(|(_, k)| k))
            .collect();
        assert_eq!(back, keys);
        assert_eq!(split_state_key(b"no separator"), None);
        assert_eq!(split_state_key(b"p\0\xff"), None);
    }

    /// Set rows of one origin are one range, ordered by (published, id),
    /// and never mix with another origin's (even one it is a prefix of).
    #[test]
    fn set_rows() {
        use weft_core::model::setkey::SetKey;
        let key = |ms: u64, b: u8| SetKey {
            published_ms: ms,
            id: [b; 32],
        };
        let a = set_row_key("http://a", &key(5, 9));
        assert_eq!(split_set_row_key(&a), Some(key(5, 9)));
        assert!(set_row_key("http://a", &key(5, 9)) < set_row_key("http://a", &key(6, 0)));
        assert!(set_row_key("http://a", &key(5, 1)) < set_row_key("http://a", &key(5, 2)));
        let (start, end) = set_row_range("http://a");
        let longer = set_row_key("http://a:8", &key(0, 0));
        assert!(longer >= end || longer < start);
        assert!(start <= a && a < end);
        assert!(start <= set_row_key("http://a", &key(u64::MAX, 255)));
        assert!(set_row_key("http://a", &key(u64::MAX, 255)) < end);
        assert_eq!(split_set_row_key(b"short"), None);
    }
}
