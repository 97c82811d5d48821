//! The reconcile loop (docs/architecture.md §10): observe → evaluate → act,
//! on a timer (`[federation] sync_interval`) and on demand
//! (`POST /admin/sync`). It observes which remote actors local actors
//! follow, where sync stands with each and the dead letters; decides which
//! actors are due a round (not backed off, within the per-actor budget of
//! rounds per hour); runs those rounds ([`crate::sync`]); reconciles the
//! set of what each of their origins addressed here
//! ([`crate::setsync`]); and marks dead letters healed once the
//! recipient's node shows it holds the activity.
//!
//! One pass runs at a time. This module does not fetch or verify anything
//! itself (sync does), and it never retries a delivery: a healed dead
//! letter needs none.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Budget, Federation, setsync, sync};
use weft_kernel::{FederationWrite, now_ms};

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// Remote actors observed (followed by a local actor).
    pub actors: usize,
    /// Rounds run.
    pub rounds: usize,
    /// Activities stored by them.
    pub stored: u64,
    /// Rounds that failed (network or offence).
    pub failed: usize,
    /// Dead letters found healed.
    pub healed: usize,
    /// Peer origins (of the followed actors) reconciled with as sets.
    pub origins: usize,
    /// Set-reconciliation rounds run.
    pub set_rounds: usize,
    /// Activities set reconciliation stored (addressed here, missed).
    pub set_stored: u64,
}

/// The loop's shared state.
#[derive(Debug, Default)]
pub struct Reconciler {
    /// Held while a pass runs.
    running: tokio::sync::Mutex<()>,
    /// Wakes the loop before its timer.
    wake: tokio::sync::Notify,
    /// Rounds per actor in the current hour: actor → (hour, count).
    rounds: Mutex<HashMap<String, (u64, u32)>>,
}

impl Reconciler {
    /// Asks the loop for a pass now (a new policy, a peer back).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Counts a round with `actor` if the hour's budget allows it.
    fn take_round(&self, actor: &str, per_hour: u32, now: u64) -> bool {
        let hour = now / 3_600_000;
        let Ok(mut rounds) = self.rounds.lock() else {
            return false;
        };
        let entry = rounds.entry(actor.to_owned()).or_insert((hour, 0));
        if entry.0 != hour {
            *entry = (hour, 0);
        }
        if entry.1 >= per_hour {
            return false;
        }
        entry.1 += 1;
        true
    }
}

/// Runs passes until the node stops.
pub fn spawn(federation: Arc<Federation>) {
    let stopped = federation.stopped();
    let interval = federation.sync.interval;
    tokio::spawn(async move {
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                () = &mut stopped => break,
                () = tokio::time::sleep(interval) => {}
                () = federation.reconciler.wake.notified() => {}
            }
            let pass = pass(&federation).await;
            if pass.rounds > 0 || pass.healed > 0 || pass.set_stored > 0 {
                tracing::info!(?pass, "reconcile pass");
            }
        }
    });
}

/// The local followers of every remote actor some local actor follows.
fn followed(federation: &Federation) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let kernel = &federation.kernel;
    let Ok(names) = kernel.store().read().and_then(|r| r.local_names()) else {
        return out;
    };
    let Ok(base) = kernel.public_url() else {
        return out;
    };
    for name in names {
        let local = format!("{}/actors/{name}", base.trim_end_matches('/'));
        let Ok(following) = kernel.following(&local) else {
            continue;
        };
        for remote in following {
            if !kernel.is_local_url(&remote) {
                out.entry(remote).or_default().push(local.clone());
            }
        }
    }
    out
}

/// One observe → evaluate → act pass.
pub async fn pass(federation: &Arc<Federation>) -> Pass {
    let _running = federation.reconciler.running.lock().await;
    let mut report = Pass::default();
    // Observe.
    let followed = followed(federation);
    report.actors = followed.len();
    let states: HashMap<String, weft_store::SyncState> = federation
        .kernel
        .store()
        .read()
        .and_then(|r| r.sync_states())
        .map(|all| all.into_iter().map(|s| (s.actor.clone(), s)).collect())
        .unwrap_or_default();
    // Evaluate and act: every followed actor not backed off, within its
    // budget, until it has nothing more to fetch.
    let settings = &federation.sync;
    for (actor, followers) in &followed {
        let now = now_ms();
        if states.get(actor).is_some_and(|s| s.next_at_ms > now) {
            continue;
        }
        loop {
            if !federation
                .reconciler
                .take_round(actor, settings.rounds_per_hour, now_ms())
            {
                break;
            }
            report.rounds += 1;
            match sync::round(federation, actor, followers).await {
                Ok(round) => {
                    report.stored += round.stored;
                    if !round.more {
                        break;
                    }
                }
                Err(_) => {
                    report.failed += 1;
                    break;
                }
            }
        }
    }
    // Set reconciliation with each origin of the followed actors: what
    // its actors addressed here that no chain covers.
    let origins: std::collections::BTreeSet<String> = followed
        .keys()
        .filter_map(|actor| weft_core::model::origin(actor))
        .collect();
    report.origins = origins.len();
    for origin in &origins {
        if states.get(origin).is_some_and(|s| s.next_at_ms > now_ms()) {
            continue;
        }
        loop {
            if !federation
                .reconciler
                .take_round(origin, settings.rounds_per_hour, now_ms())
            {
                break;
            }
            report.set_rounds += 1;
            match setsync::reconcile_origin(federation, origin).await {
                Ok(round) => {
                    report.set_stored += round.stored;
                    tracing::debug!(%origin, ?round, "set reconciliation round");
                    if !round.more || round.stored + round.parked == 0 {
                        break;
                    }
                }
                Err(_) => {
                    report.failed += 1;
                    break;
                }
            }
        }
    }
    report.healed = heal(federation).await;
    report
}

/// Marks dead letters healed whose public activity the recipient's node
/// now serves (`GET {origin}/activities/{id}`): sync, a retry by hand or a
/// later delivery covered them. A non-public activity cannot be asked
/// about this way and stays as it is.
async fn heal(federation: &Arc<Federation>) -> usize {
    let Ok(reader) = federation.kernel.store().read() else {
        return 0;
    };
    let (Ok(dead), Ok(healed)) = (reader.dead_letters(), reader.healed()) else {
        return 0;
    };
    let mut writes = Vec::new();
    let budget = Budget::new(federation.sync.heal_checks_per_pass);
    for job in dead.iter().filter(|j| !healed.contains_key(&j.id)) {
        let public = reader
            .activity(&job.activity)
            .ok()
            .flatten()
            .is_some_and(|r| r.public);
        if !public {
            continue;
        }
        let url = format!("{}/activities/{}", job.origin, job.activity);
        match federation.fetcher.get_json(&url, &budget).await {
            Ok(value)
                if value
                    .get("id")
                    .and_then(|v| v.as_str())
                    .map(weft_core::model::cid::internal)
                    == Some(weft_core::model::cid::internal(&job.activity)) =>
            {
                writes.push(FederationWrite::Healed {
                    id: job.id,
                    at_ms: now_ms(),
                });
            }
            Err(super::FetchError::Budget(_)) => break,
            _ => {}
        }
    }
    let count = writes.len();
    if let Err(e) = federation.kernel.federation_write(writes).await {
        tracing::warn!(error = %e, "cannot record healed dead letters");
        return 0;
    }
    count
}

/// Parsed `[federation]` sync settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    pub interval: Duration,
    pub max_range: u64,
    pub pages_per_round: u32,
    pub bytes_per_round: u64,
    pub stage_memory_bytes: u64,
    pub rounds_per_hour: u32,
    pub heal_checks_per_pass: u32,
    pub frame_bytes: u64,
    pub set_messages: u32,
}
