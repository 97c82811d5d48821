//! weft's core: the data model (the signed activity envelope, content ids,
//! canonical JSON) and identity (keys, the key store, actor documents, the
//! RSA keys the fediverse verifies).
//!
//! No network, no async runtime, no database: the one file it touches is
//! the secret key store (`identity::keystore`). Every layer above it
//! (store, runtime, kernel, federation, HTTP) speaks these types; see
//! `docs/architecture.md`.

pub mod identity;
pub mod model;
pub mod wire;
