//! weft's core: the data model (the signed activity envelope, content ids,
//! canonical JSON), identity (actor state and its key-history rules, keys,
//! the key store, the RSA keys the fediverse verifies) and wire formats
//! (media types and the JSON shapes weft writes and reads: actor documents,
//! collections, WebFinger, NodeInfo), and the node's one wall clock
//! (`clock`, which a test-only offset can skew).
//!
//! No network, no async runtime, no database: the one file it touches is
//! the secret key store (`identity::keystore`). Every layer above it
//! (store, runtime, kernel, federation, HTTP) speaks these types; see
//! `docs/architecture.md`.

pub mod clock;
pub mod identity;
pub mod model;
pub mod wire;
