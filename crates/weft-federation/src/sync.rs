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

mod fediverse;

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
    /// The actor's head differs from what is held, but the hour's budget
    /// of fetching rounds is spent: nothing was fetched.
    pub deferred: bool,
    /// Holes in the held log up to this seq are settled (filled, or not
    /// public at the origin).
    pub checked_through: Option<u64>,
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
/// With `whole`, an actor of which nothing is held yet is read from the
/// start of its log (a mirror); without, such an actor is left to backfill.
pub async fn round(
    federation: &Arc<Federation>,
    actor: &str,
    followers: &[String],
    whole: bool,
    may_fetch: &(dyn Fn() -> bool + Sync),
) -> Result<Round, SyncError> {
    let result = run(federation, actor, followers, whole, may_fetch).await;
    let (stored, head, checked) = match &result {
        Ok(round) => (round.stored, round.head.clone(), round.checked_through),
        Err(_) => (0, None, None),
    };
    record(
        federation,
        actor,
        stored,
        head,
        checked,
        result.as_ref().err(),
    )
    .await?;
    result
}

/// Records how a round with `key` (a remote actor, or an origin for set
/// reconciliation) ended in its sync state: `stored` activities, the
/// `head` it showed, how far its holes are settled (`checked_through`),
/// and on `error` a failure (and an offence when it is one) that backs it
/// off.
pub(crate) async fn record(
    federation: &Federation,
    key: &str,
    stored: u64,
    head: Option<(u64, String)>,
    checked_through: Option<u64>,
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
            if let Some(seq) = checked_through {
                state.checked_through = state.checked_through.max(seq);
            }
        }
        Some(e) => {
            state.failures = state.failures.saturating_add(1);
            state.last_error = Some(e.to_string());
            state.next_at_ms = now + backoff_ms(federation.sync.interval, state.failures);
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

/// The wait after `failures` failed rounds in a row: the loop's
/// `interval`, doubling, at most an hour.
pub fn backoff_ms(interval: std::time::Duration, failures: u32) -> u64 {
    let base = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let doubled = base.saturating_mul(1u64 << failures.saturating_sub(1).min(16));
    doubled.min(3_600_000)
}

async fn run(
    federation: &Arc<Federation>,
    actor: &str,
    followers: &[String],
    whole: bool,
    may_fetch: &(dyn Fn() -> bool + Sync),
) -> Result<Round, SyncError> {
    let settings = &federation.sync;
    let budget = Budget::new(settings.pages_per_round.saturating_add(3));
    let peer = federation
        .peers
        .document(actor, &budget)
        .await
        .map_err(|e| SyncError::Transient(format!("{actor}'s document: {e}")))?;
    // An ActivityPub actor that is not weft's lists no log keys: it has no
    // head and no chain, only an outbox to read back.
    if peer.keys.is_empty() {
        if !may_fetch() {
            return Ok(Round {
                deferred: true,
                ..Round::default()
            });
        }
        return fediverse::run(federation, actor, &peer.document, followers, &budget).await;
    }
    let head = fetch_head(federation, actor, &budget).await?;
    let mut round = Round {
        head: head.id.clone().map(|id| (head.seq, id)),
        ..Round::default()
    };
    let reader = federation
        .kernel
        .store()
        .read()
        .map_err(|e| SyncError::Transient(e.to_string()))?;
    let transient = |e: weft_store::StoreError| SyncError::Transient(e.to_string());
    let checked = reader
        .sync_state(actor)
        .map_err(transient)?
        .map_or(0, |s| s.checked_through);
    // At or below `checked_through` is settled: held, not public, or
    // pruned by a `keep` rule.
    let head_held = match &head.id {
        Some(id) => head.seq <= checked || reader.activity(id).map_err(transient)?.is_some(),
        None => true,
    };
    let held = reader.held_tip(actor).map_err(transient)?;
    let hole = reader
        .first_hole(actor, checked, HOLE_SCAN)
        .map_err(transient)?;
    drop(reader);
    // A hole first: activities missing between held ones (pushes lost
    // while later ones arrived). The tail waits for the next round.
    if let Some((missing, before)) = hole {
        if !may_fetch() {
            round.deferred = true;
            return Ok(round);
        }
        fill_hole(federation, actor, followers, before, &budget, &mut round).await?;
        // Nothing shown before the next held one, or nothing at all: the
        // hole is settled at least up to its first missing seq.
        round.checked_through = round.checked_through.max(Some(missing));
        round.more = true;
        return Ok(round);
    }
    round.checked_through = held.as_ref().map(|h| h.0);
    let Some(head_id) = head.id.filter(|_| !head_held) else {
        return Ok(round);
    };
    // Nothing of this actor is held: there is nothing to repair from,
    // unless the whole log is wanted (a replication policy mirrors it);
    // otherwise a backfill decides how much history to pull.
    if held.is_none() && !whole {
        return Ok(round);
    }
    // Comparing heads is free; fetching counts against the hour's budget.
    if !may_fetch() {
        round.deferred = true;
        return Ok(round);
    }
    // One task reads pages into stages of at most `max_range` activities
    // while this one verifies and commits the stage before: a range is
    // fetched while the previous one is checked and written.
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let reader_task = tokio::spawn(read_ranges(
        federation.clone(),
        actor.to_owned(),
        collection::since_url(
            &format!("{actor}/outbox"),
            held.as_ref().map(|h| h.1.as_str()),
            PAGE.min(federation.sync.max_range),
        ),
        head_id,
        tx,
    ));
    let mut held = held;
    while let Some(next) = rx.recv().await {
        let (stage, more) = next?;
        round.more = more;
        let started = std::time::Instant::now();
        let activities = stage.into_chain(actor, held.as_ref())?;
        let Some(last) = activities.last() else {
            continue;
        };
        let last = (last.header.seq, last.id.clone());
        let chained = started.elapsed();
        let verified = verify_all(federation, activities, &budget).await?;
        let checked = started.elapsed();
        let range = store_range(federation, actor, followers, verified, &mut round).await?;
        tracing::debug!(
            %actor,
            stored = range.stored,
            chain_ms = chained.as_millis() as u64,
            verify_ms = (checked - chained).as_millis() as u64,
            commit_ms = (started.elapsed() - checked).as_millis() as u64,
            "a sync range"
        );
        held = Some(last);
    }
    reader_task
        .await
        .map_err(|e| SyncError::Transient(format!("the page reader failed: {e}")))?;
    Ok(round)
}

/// What [`read_ranges`] hands over: a full stage, and whether the round's
/// budget stopped it with more to read.
type Range = Result<(Stage, bool), SyncError>;

/// Reads `actor`'s outbox from `url` until its head (`head_id`), an empty
/// page or the round's budget, sending each stage of `max_range`
/// activities as it fills. Stops early when the receiver is gone (a range
/// was refused).
async fn read_ranges(
    federation: Arc<Federation>,
    actor: String,
    mut url: String,
    head_id: String,
    tx: tokio::sync::mpsc::Sender<Range>,
) {
    let settings = &federation.sync;
    let budget = Budget::new(settings.pages_per_round.saturating_add(1));
    let outbox = format!("{actor}/outbox");
    let mut stage = Stage::new(&federation.staging, settings.stage_memory_bytes);
    let mut pages = 0u32;
    let mut bytes = 0u64;
    let mut more = false;
    loop {
        let page = match federation.fetcher.get_json(&url, &budget).await {
            Ok(page) => page,
            Err(e) => {
                let _ = tx.send(Err(fetch_error(e))).await;
                return;
            }
        };
        pages += 1;
        let items = ordered_items(&page);
        let empty = items.is_empty();
        for item in items {
            if let Err(e) = stage.push(&item) {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        }
        let reached = stage.contains(&head_id);
        if empty || reached {
            break;
        }
        if bytes + stage.bytes()
            >= federation
                .reconciler
                .bytes_per_round(settings.bytes_per_round)
            || pages >= settings.pages_per_round
        {
            more = true;
            break;
        }
        let next = match collection::next(&page) {
            Some(next) if next.starts_with(&outbox) => next.to_owned(),
            _ => break,
        };
        if stage.len() as u64 >= settings.max_range {
            bytes += stage.bytes();
            let full = std::mem::replace(
                &mut stage,
                Stage::new(&federation.staging, settings.stage_memory_bytes),
            );
            if tx.send(Ok((full, true))).await.is_err() {
                return;
            }
        }
        url = next;
    }
    let _ = tx.send(Ok((stage, more))).await;
}

/// Held log entries a round looks through for a hole.
const HOLE_SCAN: usize = 100_000;

/// Fills the hole after `before` (the held activity just below it): reads
/// the outbox after it until an activity already held (or a range's
/// worth), verifies what it read as one range that must link to `before`,
/// and commits it. The held activity met settles the hole up to its seq:
/// whatever the outbox did not show before it is not public.
async fn fill_hole(
    federation: &Arc<Federation>,
    actor: &str,
    followers: &[String],
    before: (u64, String),
    budget: &Budget,
    round: &mut Round,
) -> Result<(), SyncError> {
    let settings = &federation.sync;
    let outbox = format!("{actor}/outbox");
    let mut url = collection::since_url(&outbox, Some(&before.1), PAGE.min(settings.max_range));
    let mut stage = Stage::new(&federation.staging, settings.stage_memory_bytes);
    let mut met = None;
    let mut pages = 0u32;
    'pages: loop {
        let page = federation
            .fetcher
            .get_json(&url, budget)
            .await
            .map_err(fetch_error)?;
        pages += 1;
        let items = ordered_items(&page);
        if items.is_empty() {
            break;
        }
        {
            let reader = federation
                .kernel
                .store()
                .read()
                .map_err(|e| SyncError::Transient(e.to_string()))?;
            for item in items {
                let held = item
                    .get("id")
                    .and_then(serde_json::Value::as_str)
                    .map(|id| reader.activity(id).map(|r| r.map(|r| r.seq)))
                    .transpose()
                    .map_err(|e| SyncError::Transient(e.to_string()))?
                    .flatten();
                if let Some(seq) = held {
                    met = Some(seq);
                    break 'pages;
                }
                stage.push(&item)?;
            }
        }
        if stage.len() as u64 >= settings.max_range || pages >= settings.pages_per_round {
            break;
        }
        match collection::next(&page) {
            Some(next) if next.starts_with(&outbox) => url = next.to_owned(),
            _ => break,
        }
    }
    let activities = stage.into_chain(actor, Some(&before))?;
    let last = activities.last().map(|a| a.header.seq);
    let verified = verify_all(federation, activities, budget).await?;
    store_range(federation, actor, followers, verified, round).await?;
    round.checked_through = met.or(last).or(Some(before.0));
    Ok(())
}

/// Addresses a verified range of `actor`'s log to its local `followers`,
/// parks what needs an unknown verb, and commits the rest as one batch,
/// counted into `round`; answers the range's own counts.
async fn store_range(
    federation: &Arc<Federation>,
    actor: &str,
    followers: &[String],
    verified: Vec<Signed>,
    round: &mut Round,
) -> Result<Round, SyncError> {
    let addressed = verified
        .into_iter()
        .map(|signed| {
            let to = recipients(federation, actor, followers, &signed);
            (signed, to)
        })
        .collect();
    let batch = park_unknown(federation, addressed, false, &mut round.parked).await?;
    let mut range = Round::default();
    commit(federation, batch, &mut range).await?;
    round.stored += range.stored;
    round.duplicates += range.duplicates;
    Ok(range)
}

/// The activities of a verified range whose verbs this node knows; the
/// others are parked for their recipients until a module for them is
/// admitted (counted in `parked`), as the inbox parks them.
pub(crate) async fn park_unknown(
    federation: &Arc<Federation>,
    addressed: Vec<(Signed, Vec<String>)>,
    backfilled: bool,
    parked: &mut u64,
) -> Result<Vec<(Signed, Vec<String>)>, SyncError> {
    let mut batch = Vec::with_capacity(addressed.len());
    for (signed, recipients) in addressed {
        if federation.must_park(&signed) {
            federation
                .park(&signed, recipients, backfilled)
                .await
                .map_err(|e| SyncError::Transient(e.to_string()))?;
            *parked += 1;
            continue;
        }
        batch.push((signed, recipients));
    }
    Ok(batch)
}

/// Commits a verified range, mapping the kernel's refusal to the peer's
/// offence.
async fn commit(
    federation: &Federation,
    batch: Vec<(Signed, Vec<String>)>,
    round: &mut Round,
) -> Result<(), SyncError> {
    let batch = drop_pruned(federation, batch)?;
    if batch.is_empty() {
        return Ok(());
    }
    match federation.kernel.ingest_batch(batch, false).await {
        Ok(report) => {
            round.stored = report.stored;
            round.duplicates = report.duplicates;
            Ok(())
        }
        Err(e @ KernelError::BatchRefused { .. }) => Err(SyncError::Offence(e.to_string())),
        Err(e) => Err(SyncError::Transient(e.to_string())),
    }
}

/// `batch` without what a `keep` rule pruned here before (verified with
/// the rest, so that the chain is checked whole, but not stored again).
fn drop_pruned(
    federation: &Federation,
    batch: Vec<(Signed, Vec<String>)>,
) -> Result<Vec<(Signed, Vec<String>)>, SyncError> {
    let reader = federation
        .kernel
        .store()
        .read()
        .map_err(|e| SyncError::Transient(e.to_string()))?;
    let mut out = Vec::with_capacity(batch.len());
    for (signed, to) in batch {
        let key = weft_core::model::setkey::SetKey::of(&signed.id, &signed.header.published);
        let pruned = match weft_core::model::origin(&signed.header.actor) {
            Some(origin) => reader
                .was_pruned(&origin, &key)
                .map_err(|e| SyncError::Transient(e.to_string()))?,
            None => false,
        };
        if !pruned {
            out.push((signed, to));
        }
    }
    Ok(out)
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
pub(crate) fn recipients(
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

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_from_the_interval_to_an_hour() {
        let five = std::time::Duration::from_secs(300);
        assert_eq!(backoff_ms(five, 1), 300_000);
        assert_eq!(backoff_ms(five, 2), 600_000);
        assert_eq!(backoff_ms(five, 4), 2_400_000);
        assert_eq!(backoff_ms(five, 5), 3_600_000);
        assert_eq!(backoff_ms(five, u32::MAX), 3_600_000);
        let second = std::time::Duration::from_secs(1);
        assert_eq!(backoff_ms(second, 1), 1_000);
        assert_eq!(backoff_ms(second, 3), 4_000);
    }
}
