//! Identity (docs/architecture.md §4): actors, their key history, Multikey keys, the secret
//! key store and bearer tokens.

pub mod actor;
pub mod keystore;
pub mod multikey;
pub mod rsa;
pub mod token;

pub use actor::{ActorKind, ActorState, IdentityError, KeyRecord, Lifecycle, Purpose};
pub use keystore::KeyStore;
pub use rsa::RsaKey;
