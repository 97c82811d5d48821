//! Anti-entropy with one remote weft actor (docs/architecture.md §10): the
//! repair path beside push delivery. A round compares the actor's head
//! (`GET {actor}/head`, one small document) with the newest of its
//! activities this node holds; only when they differ does it read the
//! outbox after the held one (`?since=&limit=`), stage what it gets
//! ([`crate::stage`]), verify the range as a whole and commit it in one
//! write transaction through [`weft_kernel::Kernel::ingest_batch`], or not
//! at all. A range the peer served wrong (a bad signature, a broken chain,
//! an activity its verb refuses) is refused whole and counted as the
//! peer's offence; a network failure only backs the actor off.
//!
//! This module does not decide *which* actors to sync or when (the
//! reconcile loop, [`crate::reconcile`], does), nor what an activity means.

use std::sync::Arc;

use super::stage::{Stage, StageError};
use super::{Budget, Federation, FetchError, InboxError};
use weft_core::model::Signed;
use weft_core::wire::collection::{self, ordered_items};
use weft_core::wire::sync::Head;
use weft_kernel::{FederationWrite, KernelError, now_ms};
use weft_store::SyncState;

/// Activities per outbox page asked for (the outbox's own maximum).
const PAGE: u64 = 200;

/// How one round with an actor ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    /// Activities stored.
    pub stored: u64,
    /// Already here.
    pub duplicates: u64,
    /// Kept until their verbs are admitted.
    pub parked: u64,
    /// The actor's head, as its origin showed it.
    pub head: Option<(u64, String)>,
    /// The round stopped at its budget with more to fetch.
    pub more: bool,
}

/// Why a round failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The peer served something wrong: the range is refused whole and
    /// the offence recorded.
    #[error("{0}")]
    Offence(String),
    /// Worth trying again later (network, this node's storage, a quota).
    #[error("{0}")]
    Transient(String),
}

impl From<StageError> for SyncError {
    fn from(e: StageError) -> Self {
        match e {
            StageError::Io(e) => Self::Transient(format!("staging failed: {e}")),
            StageError::Served(m) => Self::Offence(m),
        }
    }
}

/// Runs one round with the remote actor `actor`, delivering what it
/// stores to the inboxes of `followers` (local actors following it) as
/// push delivery would have, and records the outcome in its sync state.
pub async fn round(
    federation: &Arc<Federation>,
    actor: &str,
    followers: &[String],
) -> Result<Round, SyncError> {
    let result = run(federation, actor, followers).await;
    let (stored, head) = match &result {
        Ok(round) => (round.stored, round.head.clone()),
        Err(_) => (0, None),
    };
    record(federation, actor, stored, head, result.as_ref().err()).await?;
    result
}

/// Records how a round with `key` (a remote actor, or an origin for set
/// reconciliation) ended in its sync state: `stored` activities, the
/// `head` it showed, and on `error` a failure (and an offence when it is
/// one) that backs it off.
pub(crate) async fn record(
    federation: &Federation,
    key: &str,
    stored: u64,
    head: Option<(u64, String)>,
    error: Option<&SyncError>,
) -> Result<(), SyncError> {
    let mut state = federation
        .kernel
        .store()
        .read()
        .and_then(|r| r.sync_state(key))
        .map_err(|e| SyncError::Transient(e.to_string()))?
        .unwrap_or_else(|| SyncState {
            actor: key.to_owned(),
            ..SyncState::default()
        });
    let now = now_ms();
    state.last_try_ms = Some(now);
    state.stored += stored;
    match error {
        None => {
            state.head = head.or(state.head.take());
            state.last_sync_ms = Some(now);
            state.last_error = None;
            state.failures = 0;
            state.next_at_ms = now;
        }
        Some(e) => {
            state.failures = state.failures.saturating_add(1);
            state.last_error = Some(e.to_string());
            state.next_at_ms = now + backoff_ms(state.failures);
            if let SyncError::Offence(m) = e {
                state.offences += 1;
                state.last_offence = Some(m.clone());
                tracing::warn!(%key, offence = %m, "a peer served a sync range that was refused whole");
            } else {
                tracing::info!(%key, error = %e, "a sync round failed; backing off");
            }
        }
    }
    federation
        .kernel
        .federation_write(vec![FederationWrite::SyncState(state)])
        .await
        .map_err(|e| SyncError::Transient(e.to_string()))
}

/// The wait after `failures` failed rounds in a row: 30 s doubling, at
/// most an hour.
pub fn backoff_ms(failures: u32) -> u64 {
    let doubled = 30_000u64.saturating_mul(1u64 << failures.saturating_sub(1).min(16));
    doubled.min(3_600_000)
}

async fn run(
    federation: &Arc<Federation>,
    actor: &str,
    followers: &[String],
) -> Result<Round, SyncError> {
    let settings = &federation.sync;
    let budget = Budget::new(settings.pages_per_round.saturating_add(2));
    let head = fetch_head(federation, actor, &budget).await?;
    let mut round = Round {
        head: head.id.clone().map(|id| (head.seq, id)),
        ..Round::default()
    };
    let Some(head_id) = head.id else {
        return Ok(round);
    };
    let reader = federation
        .kernel
        .store()
        .read()
        .map_err(|e| SyncError::Transient(e.to_string()))?;
    if reader
        .activity(&head_id)
        .map_err(|e| SyncError::Transient(e.to_string()))?
        .is_some()
    {
        return Ok(round);
    }
    let held = reader
        .held_tip(actor)
        .map_err(|e| SyncError::Transient(e.to_string()))?;
    drop(reader);
    // Nothing of this actor is held: there is nothing to repair from (a
    // backfill or a replication policy decides how much history to pull).
    let Some(held) = held else {
        return Ok(round);
    };
    let outbox = format!("{actor}/outbox");
    let mut url = collection::since_url(&outbox, Some(&held.1), PAGE);
    let mut stage = Stage::new(&federation.staging, settings.stage_memory_bytes);
    let mut pages = 0u32;
    loop {
        let page = federation
            .fetcher
            .get_json(&url, &budget)
            .await
            .map_err(fetch_error)?;
        pages += 1;
        let items = ordered_items(&page);
        let empty = items.is_empty();
        for item in items {
            stage.push(&item)?;
        }
        let reached = stage.contains(&head_id);
        if empty || reached {
            break;
        }
        if stage.len() as u64 >= settings.max_range || stage.bytes() >= settings.bytes_per_round {
            round.more = true;
            break;
        }
        if pages >= settings.pages_per_round {
            round.more = true;
            break;
        }
        match collection::next(&page) {
            Some(next) if next.starts_with(&outbox) => url = next.to_owned(),
            _ => break,
        }
    }
    let activities = stage.into_chain(actor, Some(&held))?;
    let verified = verify_all(federation, activities, &budget).await?;
    let mut batch = Vec::with_capacity(verified.len());
    for signed in verified {
        let recipients = recipients(federation, actor, followers, &signed);
        if federation.must_park(&signed) {
            federation
                .park(&signed, recipients, false)
                .await
                .map_err(|e| SyncError::Transient(e.to_string()))?;
            round.parked += 1;
            continue;
        }
        batch.push((signed, recipients));
    }
    match federation.kernel.ingest_batch(batch, false).await {
        Ok(report) => {
            round.stored = report.stored;
            round.duplicates = report.duplicates;
            Ok(round)
        }
        Err(e @ KernelError::BatchRefused { .. }) => Err(SyncError::Offence(e.to_string())),
        Err(e) => Err(SyncError::Transient(e.to_string())),
    }
}

/// `actor`'s head, read from its origin.
pub async fn fetch_head(
    federation: &Federation,
    actor: &str,
    budget: &Budget,
) -> Result<Head, SyncError> {
    let value = federation
        .fetcher
        .get_json(&format!("{actor}/head"), budget)
        .await
        .map_err(fetch_error)?;
    let head: Head = serde_json::from_value(value)
        .map_err(|e| SyncError::Offence(format!("{actor}/head is not a head: {e}")))?;
    if head.actor != actor {
        return Err(SyncError::Offence(format!(
            "{actor}/head describes {}, another actor",
            head.actor
        )));
    }
    Ok(head)
}

fn fetch_error(e: FetchError) -> SyncError {
    SyncError::Transient(e.to_string())
}

/// Verifies every activity's proof against its author's key history (the
/// checks run together, so the verifier batches them) and its `published`
/// against this node's clock; the first failure refuses the whole range.
pub(crate) async fn verify_all(
    federation: &Arc<Federation>,
    activities: Vec<Signed>,
    budget: &Budget,
) -> Result<Vec<Signed>, SyncError> {
    // The first verification fetches the author's keys if need be; the
    // rest find them kept.
    if let Some(first) = activities.first() {
        verify_one(federation, first, budget).await?;
    }
    let mut tasks = tokio::task::JoinSet::new();
    let activities = Arc::new(activities);
    let workers = 64.min(activities.len().max(1));
    let chunk = activities.len().div_ceil(workers).max(1);
    for start in (1..activities.len()).step_by(chunk) {
        let federation = federation.clone();
        let activities = activities.clone();
        let budget = Budget::new(2);
        tasks.spawn(async move {
            for signed in activities.iter().skip(start).take(chunk) {
                verify_one(&federation, signed, &budget).await?;
            }
            Ok::<(), SyncError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| SyncError::Transient(format!("a verification task failed: {e}")))??;
    }
    Ok(Arc::try_unwrap(activities).unwrap_or_else(|shared| (*shared).clone()))
}

async fn verify_one(
    federation: &Federation,
    signed: &Signed,
    budget: &Budget,
) -> Result<(), SyncError> {
    federation
        .check_published(signed)
        .map_err(|e| SyncError::Offence(format!("{}: {e}", signed.id)))?;
    match federation.verify(signed, budget).await {
        Ok(()) => Ok(()),
        Err(InboxError::Unavailable(m)) => Err(SyncError::Transient(m)),
        Err(InboxError::Kernel(k)) => Err(SyncError::Transient(k.to_string())),
        Err(e) => Err(SyncError::Offence(format!("{}: {e}", signed.id))),
    }
}

/// The local actors whose inboxes get `signed` had it been pushed: its
/// author's local followers when it is public or for the author's
/// followers, and any local actor it names.
fn recipients(
    federation: &Federation,
    author: &str,
    followers: &[String],
    signed: &Signed,
) -> Vec<String> {
    let addressed = weft_kernel::addressed(&signed.json);
    let followers_collection = format!("{author}/followers");
    let mut out: Vec<String> = Vec::new();
    if addressed
        .iter()
        .any(|a| weft_kernel::is_public(a) || *a == followers_collection)
    {
        out.extend(followers.iter().cloned());
    }
    let reader = federation.kernel.store().read().ok();
    for a in addressed {
        let local = federation.kernel.is_local_url(a)
            && reader
                .as_ref()
                .is_some_and(|r| r.has_actor(a).unwrap_or(false));
        if local {
            out.push(a.to_owned());
        }
    }
    out.retain(|r| r != author);
    out.sort();
    out.dedup();
    out
}
