//! Orders publishing per actor: one publish at a time per actor signs the
//! next position of its log, while different actors proceed in parallel.
//!
//! Each actor has a slot holding the state its log will have once everything
//! already handed to the writer commits, so the next activity can be signed
//! without waiting for the disk. The slot is a cache, never the truth: the
//! writer re-checks every chain link against committed state, and a failed
//! commit clears what was assumed past it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use weft_core::identity::ActorState;

type Slot = Arc<tokio::sync::Mutex<Option<ActorState>>>;

/// The per-actor slots.
#[derive(Debug, Default)]
pub(super) struct Sequencer {
    slots: Mutex<HashMap<String, Slot>>,
}

/// Exclusive access to one actor's next position.
pub(super) struct Guard(OwnedMutexGuard<Option<ActorState>>);

impl Guard {
    /// The actor's state including uncommitted activities, if cached.
    pub(super) fn state(&self) -> Option<&ActorState> {
        self.0.as_ref()
    }

    /// Records the state after an activity handed to the writer.
    pub(super) fn advance(&mut self, state: ActorState) {
        *self.0 = Some(state);
    }
}

impl Sequencer {
    fn slot(&self, actor: &str) -> Slot {
        // A poisoned map only means another task panicked mid-insert; the
        // map itself is still consistent.
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.entry(actor.to_owned()).or_default().clone()
    }

    /// Waits for exclusive use of `actor`'s next position.
    pub(super) async fn lock(&self, actor: &str) -> Guard {
        Guard(self.slot(actor).lock_owned().await)
    }

    /// The activity at `seq` did not commit: drop cached state that assumed
    /// it (the next publish reloads the committed state).
    pub(super) async fn forget_from(&self, actor: &str, seq: u64) {
        let mut guard = self.slot(actor).lock_owned().await;
        if guard.as_ref().is_some_and(|s| s.tip_seq >= seq) {
            *guard = None;
        }
    }
}
