//! The redb table definitions: the whole on-disk schema in one place.

use redb::TableDefinition;

/// Activity id → postcard [`super::ActivityRecord`].
pub const ACTIVITIES: TableDefinition<&str, &[u8]> = TableDefinition::new("activities");
/// (actor id, seq) → activity id: each actor's hash-chained log.
pub const LOG: TableDefinition<(&str, u64), &str> = TableDefinition::new("log");
/// (actor id, public rank) → seq: the part of each log anonymous readers see.
pub const PUBLIC_LOG: TableDefinition<(&str, u64), u64> = TableDefinition::new("public_log");
/// Actor id → postcard [`crate::identity::ActorState`].
pub const ACTORS: TableDefinition<&str, &[u8]> = TableDefinition::new("actors");
/// Local username → actor id.
pub const NAMES: TableDefinition<&str, &str> = TableDefinition::new("names");
/// BLAKE3 of a bearer token → postcard [`super::Role`].
pub const TOKENS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tokens");
/// Node-wide settings fixed at `weft init`.
pub const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// Global append order: position → activity id. Folding and rebuilding
/// follow it, so a rebuild sees activities in the order the node did.
pub const ORDER: TableDefinition<u64, &str> = TableDefinition::new("order");
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
