//! The seam between the kernel and the verbs and projections that give
//! activities meaning (DESIGN §5).
//!
//! The kernel calls [`Modules::validate`] on every activity before it is
//! appended and [`Modules::fold`] inside the append transaction. The WASM
//! runtime implements this trait; [`OpenVocabulary`] is the kernel-only
//! implementation, which accepts every verb and folds nothing.

use redb::WriteTransaction;

use crate::model::Signed;
use crate::store::StoreError;

/// Why a verb refused an activity; the message reaches the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("verb `{verb}` rejected the activity: {message}")]
pub struct Rejection {
    pub verb: String,
    pub message: String,
}

/// Verbs and projections as the kernel sees them.
pub trait Modules: Send + Sync + 'static {
    /// Is this activity well-formed and allowed? Called before append.
    fn validate(&self, activity: &Signed) -> Result<(), Rejection>;

    /// Folds an appended activity into projections, inside the append's
    /// write transaction. A projection's own failure must be recorded on the
    /// projection, not returned: only storage faults abort the append.
    fn fold(&self, txn: &WriteTransaction, activity: &Signed) -> Result<(), StoreError>;
}

/// No modules: every verb is accepted and nothing is folded.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenVocabulary;

impl Modules for OpenVocabulary {
    fn validate(&self, _activity: &Signed) -> Result<(), Rejection> {
        Ok(())
    }

    fn fold(&self, _txn: &WriteTransaction, _activity: &Signed) -> Result<(), StoreError> {
        Ok(())
    }
}
