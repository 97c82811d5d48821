//! What can go wrong when the kernel publishes or creates an actor.

use weft_core::identity::IdentityError;
use weft_core::identity::keystore::KeyStoreError;
use weft_core::model::EnvelopeError;
use weft_store::StoreError;

use super::modules::Rejection;

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The request names a field the client may not set this way (422).
    #[error("`{field}`: {message}")]
    Field { field: String, message: String },
    #[error("{0}")]
    Identity(#[from] IdentityError),
    #[error("{0}")]
    Envelope(#[from] EnvelopeError),
    #[error("{0}")]
    Rejected(#[from] Rejection),
    /// An artifact is not a usable module.
    #[error("{0}")]
    Module(weft_runtime::RuntimeError),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    KeyStore(#[from] KeyStoreError),
    #[error("the secret key {0} is missing from the key store")]
    MissingSecret(String),
    #[error("nothing was written: {0}")]
    NotCommitted(String),
    #[error("the node is shutting down")]
    ShuttingDown,
    /// A peer origin holds as much here as it may (507).
    #[error("{0}")]
    Quota(String),
    /// Not possible right now, but soon (a projection it depends on is
    /// being built).
    #[error("{0}")]
    Unavailable(String),
    /// A staged batch was refused as a whole because of one of its
    /// activities (the peer that served it is at fault); nothing of it
    /// was stored.
    #[error("the batch was refused because of {id}: {reason}; nothing of it was stored")]
    BatchRefused { id: String, reason: String },
    /// The module-call pool is full (503, retry).
    #[error("{0}")]
    Busy(#[from] super::workers::Busy),
}

impl KernelError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Field {
            field: field.into(),
            message: message.into(),
        }
    }
}
