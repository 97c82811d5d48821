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
