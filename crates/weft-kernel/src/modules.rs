//! The seam between the kernel and the verbs and projections that give
//! activities meaning (docs/architecture.md §5).
//!
//! The kernel calls [`Modules::validate`] on every activity before it is
//! appended and [`Modules::fold`] on each batch inside the append
//! transaction, then [`Modules::committed`] once it is durable.
//! [`crate::registry::Registry`] implements this over the WASM
//! runtime; [`OpenVocabulary`] accepts every verb and folds nothing.

use weft_store::WriteTxn;

use weft_core::model::Signed;
use weft_store::StoreError;

/// Why a verb refused an activity; the message reaches the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub verb: String,
    pub message: String,
    /// The refusal may not recur (a module hit its wall-clock deadline).
    pub transient: bool,
    /// No module interprets the verb on this node (yet): a peer's activity
    /// is parked rather than refused.
    pub unknown_verb: bool,
    /// The field at fault, as a path into the activity (`object.content`),
    /// when the verb names one.
    pub field: Option<String>,
}

/// "verb `Note` rejected the activity: …", or only the message when no
/// verb of that name is registered (there is no verb to have rejected it).
impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.unknown_verb {
            f.write_str(&self.message)
        } else {
            write!(
                f,
                "verb `{}` rejected the activity: {}",
                self.verb, self.message
            )
        }
    }
}

impl std::error::Error for Rejection {}

impl Rejection {
    pub fn new(verb: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            verb: verb.into(),
            message: message.into(),
            transient: false,
            unknown_verb: false,
            field: None,
        }
    }

    /// No verb `verb` is registered here.
    pub fn unknown(verb: &str) -> Self {
        Self {
            unknown_verb: true,
            ..Self::new(
                verb,
                format!(
                    "no verb `{verb}` is registered on this node; define it with `weft module add verb {verb} FILE.wasm`"
                ),
            )
        }
    }
}

/// An activity in the batch being committed, at its global position.
#[derive(Debug, Clone)]
pub struct Appended {
    pub position: u64,
    pub signed: Signed,
    /// The activity as stored.
    pub json: String,
    /// Pulled by backfill (folds see the mark).
    pub backfilled: bool,
    /// Local recipients' verbs may react to it. [`Modules::react`] asks
    /// them inside the batch and keeps the mark (and a row in `reactions`,
    /// which holds the promise until the intents are published) only when
    /// they ask for something.
    pub reacts: bool,
    /// What they asked for, once [`Modules::react`] has run.
    pub intents: Vec<Intended>,
}

/// Verbs and projections as the kernel sees them.
pub trait Modules: Send + Sync + 'static {
    /// Is this activity well-formed and allowed? Called before append, with
    /// the activity's JSON text as it will be stored.
    fn validate(&self, activity: &Signed, json: &str) -> Result<(), Rejection>;

    /// Whether [`Modules::validate`] runs a module for this activity (and so
    /// goes to the worker pool), or answers at once.
    fn runs_module(&self, _activity: &Signed) -> bool {
        true
    }

    /// Folds a batch of appended activities into projections inside the
    /// batch's write transaction, which it hands back. A projection's own
    /// failure is recorded on the projection; only storage faults are
    /// errors, and they abort the whole batch.
    fn fold(&self, txn: WriteTxn, appended: &[Appended]) -> Result<WriteTxn, StoreError>;

    /// Runs the verbs' `react` for the batch's activities marked
    /// [`Appended::reacts`] inside its write transaction, after the folds,
    /// so that they see the log as it will be committed; records the
    /// intents, clears the mark where there are none, and writes a
    /// `reactions` row for the rest. Without verbs nothing is marked.
    fn react(&self, txn: WriteTxn, _appended: &mut [Appended]) -> Result<WriteTxn, StoreError> {
        Ok(txn)
    }

    /// Called once a batch is durable (`ok`) or was abandoned (`!ok`), with
    /// the batch's activities to keep; also after each build step's
    /// transaction, with none.
    fn committed(&self, _appended: Vec<Appended>, _ok: bool) {}

    /// Starts rebuilding projection `name` from the whole log inside `txn`
    /// and takes the first step. The inner result is the number of
    /// activities folded if that step finished it, `None` if the rest
    /// follows in [`Modules::build_step`]s, or why it cannot be done.
    fn rebuild(
        &self,
        txn: WriteTxn,
        name: &str,
    ) -> Result<(WriteTxn, Result<Option<u64>, String>), StoreError> {
        Ok((txn, Err(format!("projection `{name}`"))))
    }

    /// Starts rebuilding every projection from the whole log inside `txn`
    /// (the log lost activities: a prune); the builds go on in
    /// [`Modules::build_step`]s.
    fn restart_builds(&self, txn: WriteTxn) -> Result<WriteTxn, StoreError> {
        Ok(txn)
    }

    /// Whether a projection is being built (the writer then takes
    /// [`Modules::build_step`]s between its batches).
    fn building(&self) -> bool {
        false
    }

    /// One step of building a projection inside `txn`; names it, with the
    /// number of activities folded in all, when it has caught up.
    fn build_step(&self, txn: WriteTxn) -> Result<(WriteTxn, Option<(String, u64)>), StoreError> {
        Ok((txn, None))
    }
}

/// No modules: every verb is accepted and nothing is folded.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenVocabulary;

impl Modules for OpenVocabulary {
    fn validate(&self, _activity: &Signed, _json: &str) -> Result<(), Rejection> {
        Ok(())
    }

    fn fold(&self, txn: WriteTxn, _appended: &[Appended]) -> Result<WriteTxn, StoreError> {
        Ok(txn)
    }
}

/// What a local actor's verb asks it to publish: (the actor, the draft).
pub type Intended = (String, serde_json::Map<String, serde_json::Value>);
