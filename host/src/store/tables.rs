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
/// Actor id → postcard [`crate::identity::ActorState`].
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
/// (projection, key) → value: each projection's private key-value store.
pub const PROJECTION_KV: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("projection_kv");
/// Projection name → postcard [`super::ProjectionStatus`].
pub const PROJECTION_STATUS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("projection_status");
/// (recipient actor id bytes, n) → position in [`RECORDS`]: each local
/// actor's inbox, in arrival order (n counts from 1).
pub const INBOX: TableDefinition<(&[u8], u64), u64> = TableDefinition::new("inbox");
/// Remote actor id → postcard [`super::Peer`]: actor documents fetched from
/// their origin, with the key history they publish.
pub const PEERS: TableDefinition<&str, &[u8]> = TableDefinition::new("peers");
/// (actor, seq, other activity id) → the other activity's JSON text: a second,
/// different activity seen at an already-known position (fork evidence).
pub const FORKS: TableDefinition<(&str, u64, &str), &str> = TableDefinition::new("forks");
/// Job id → postcard [`super::Job`]: outbound deliveries not yet done.
pub const DELIVERIES: TableDefinition<u64, &[u8]> = TableDefinition::new("deliveries");
/// Job id → postcard [`super::Job`]: deliveries that gave up.
pub const DEAD_LETTERS: TableDefinition<u64, &[u8]> = TableDefinition::new("dead_letters");
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
/// (author's origin, verb, activity id) → nothing: the parked activities
/// by where they come from, so one origin's share can be bounded
/// (`federation.max_parked_per_origin`).
pub const PARKED_BY_ORIGIN: TableDefinition<(&str, &str, &str), ()> =
    TableDefinition::new("parked_by_origin");
/// Verb → postcard [`super::PendingModule`]: a peer's definition of a verb
/// this node lacks, found at the author's origin, awaiting admission.
pub const PENDING_MODULES: TableDefinition<&str, &[u8]> = TableDefinition::new("pending_modules");
