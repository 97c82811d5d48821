//! Backfill (docs/architecture.md §8.3): when a Follow that asked for `backfill` is
//! accepted, the follower pulls the followed actor's public outbox and
//! stores what it asked for — `last-N` (the N newest), `last-T` (published
//! within T before the Accept arrived), `full` (everything, page by page) —
//! each verified like an inbound activity, consecutive entries checked to
//! link through `prev`, kept with their original ids and marked backfilled.
//!
//! What is pulled is staged (`stage`, on disk past its memory bound) and
//! committed in ranges of `sync_max_range`: each range verified whole and
//! stored in one transaction through `Kernel::ingest_batch`, or not at all
//! (docs/architecture.md §10). A pending backfill is a row written with the
//! Accept, removed when done, so a restart resumes it; ingesting is
//! idempotent, so a resumed backfill repeats nothing. Network failures are retried on the delivery schedule.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

use super::Federation;
use super::fetch::Budget;
use super::inbox::parse;
use super::stage::{Stage, StageError};
use super::sync::{self, SyncError};
use weft_core::model::Signed;
use weft_core::wire::collection::{self, ordered_items};
use weft_kernel::FederationWrite;
use weft_store::BackfillJob;

/// Most activities one backfill stores.
const MAX_ITEMS: u64 = 100_000;
/// Activities per outbox page asked for (the outbox's own maximum).
const PAGE: u64 = 200;

/// Why a backfill stopped.
#[derive(Debug)]
enum Stop {
    /// Worth trying again later (network, the peer's storage).
    Transient(String),
    /// The peer served something wrong; trying again will not help.
    Permanent(String),
}

/// Runs `job` in the background until it is done or has given up.
pub fn spawn(federation: Arc<Federation>, job: BackfillJob) {
    let stopped = federation.stopped();
    tokio::spawn(async move {
        tokio::select! {
            () = backfill(&federation, &job) => {}
            // Stopping leaves the row: the backfill resumes at the next start.
            () = stopped => {}
        }
    });
}

async fn backfill(federation: &Arc<Federation>, job: &BackfillJob) {
    let mut attempt = 0usize;
    loop {
        match run(federation, job).await {
            Ok(count) => {
                tracing::info!(follow = %job.follow, target = %job.target, count, "backfill done");
                break;
            }
            Err(Stop::Permanent(e)) => {
                tracing::warn!(follow = %job.follow, target = %job.target, error = %e, "backfill abandoned");
                break;
            }
            Err(Stop::Transient(e)) => {
                let Some(wait) = federation.schedule.get(attempt) else {
                    tracing::warn!(follow = %job.follow, error = %e, "backfill gave up after its retries");
                    break;
                };
                tracing::info!(follow = %job.follow, error = %e, ?wait, "backfill will be retried");
                attempt += 1;
                tokio::time::sleep(*wait).await;
            }
        }
    }
    let done = FederationWrite::BackfillDone(job.follow.clone());
    if let Err(e) = federation.kernel.federation_write(vec![done]).await {
        tracing::warn!(follow = %job.follow, error = %e, "cannot record a finished backfill");
    }
}

/// What the Follow asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    LastN(u64),
    /// Published at or after this moment.
    Since(SystemTime),
    Full,
}

fn mode(job: &BackfillJob) -> Result<Mode, Stop> {
    let request: Value = serde_json::from_str(&job.request)
        .map_err(|e| Stop::Permanent(format!("the Follow's backfill request is not JSON: {e}")))?;
    match request.get("mode").and_then(Value::as_str) {
        Some("last-N") => {
            let n = request.get("limit").and_then(Value::as_u64).unwrap_or(0);
            Ok(Mode::LastN(n.min(MAX_ITEMS)))
        }
        Some("last-T") => {
            let duration = request
                .get("duration")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    Stop::Permanent("`backfill.duration` is missing or not a string".into())
                })?;
            let duration = weft_duration::parse(duration).map_err(|e| {
                Stop::Permanent(format!(
                    "`backfill.duration` is not an ISO-8601 duration: {e}"
                ))
            })?;
            let accepted = humantime::parse_rfc3339_weak(&job.accepted_at)
                .map_err(|e| Stop::Permanent(format!("bad acceptance time: {e}")))?;
            Ok(Mode::Since(
                accepted
                    .checked_sub(duration)
                    .unwrap_or(SystemTime::UNIX_EPOCH),
            ))
        }
        Some("full") => Ok(Mode::Full),
        other => Err(Stop::Permanent(format!("unknown backfill mode {other:?}"))),
    }
}

/// Pulls, verifies and stores the activities `job` asks for; answers how
/// many were new.
async fn run(federation: &Arc<Federation>, job: &BackfillJob) -> Result<u64, Stop> {
    let mode = mode(job)?;
    let budget = Budget::new(u32::try_from(MAX_ITEMS / PAGE * 2 + 20).unwrap_or(u32::MAX));
    let outbox = federation
        .peers
        .kept(&job.target)
        .map_err(|e| Stop::Transient(e.to_string()))?
        .and_then(|peer| {
            serde_json::from_str::<Value>(&peer.document)
                .ok()?
                .get("outbox")?
                .as_str()
                .map(str::to_owned)
        })
        .filter(|o| weft_kernel::audience_origin(o) == weft_kernel::audience_origin(&job.target))
        .unwrap_or_else(|| format!("{}/outbox", job.target));
    // Pulled into a stage (on disk past its memory bound), read back as
    // the target's chain, then committed range by range: each range is
    // verified whole and stored in one transaction, or not at all.
    let mut stage = Stage::new(&federation.staging, federation.sync.stage_memory_bytes);
    match mode {
        Mode::Full => pull_forward(federation, &outbox, &budget, &mut stage).await?,
        Mode::LastN(n) => {
            pull_back(federation, &outbox, &budget, &mut stage, |count, _| {
                count < n
            })
            .await?;
        }
        Mode::Since(since) => {
            pull_back(federation, &outbox, &budget, &mut stage, |_, published| {
                humantime::parse_rfc3339_weak(published).is_ok_and(|p| p >= since)
            })
            .await?;
        }
    }
    let activities = stage.into_chain(&job.target, None).map_err(|e| match e {
        StageError::Io(e) => Stop::Transient(format!("staging failed: {e}")),
        StageError::Served(m) => Stop::Permanent(format!("{outbox}: {m}")),
    })?;
    let mut stored = 0;
    let range = usize::try_from(federation.sync.max_range).unwrap_or(usize::MAX);
    for chunk in activities.chunks(range.max(1)) {
        let verified = sync::verify_all(federation, chunk.to_vec(), &budget)
            .await
            .map_err(|e| match e {
                SyncError::Transient(m) => Stop::Transient(m),
                SyncError::Offence(m) => Stop::Permanent(m),
            })?;
        let addressed = verified
            .into_iter()
            .map(|signed| (signed, vec![job.follower.clone()]))
            .collect();
        let mut parked = 0;
        let batch = sync::park_unknown(federation, addressed, true, &mut parked)
            .await
            .map_err(|e| Stop::Transient(e.to_string()))?;
        match federation.kernel.ingest_batch(batch, true).await {
            Ok(report) => stored += report.stored,
            Err(e @ weft_kernel::KernelError::BatchRefused { .. }) => {
                return Err(Stop::Permanent(format!("{outbox}: {e}")));
            }
            Err(e) => return Err(Stop::Transient(e.to_string())),
        }
    }
    Ok(stored)
}

/// The outbox entries `items` (from any number of pages) as the chain of
/// `target`'s activities they must be: each a well-formed signed activity
/// by `target`, sorted by seq, repeats dropped, consecutive seqs linked
/// through `prev`. Signatures are not checked here (that needs the keys).
pub fn chain(items: Vec<Value>, target: &str) -> Result<Vec<Signed>, String> {
    let mut activities = Vec::with_capacity(items.len());
    for item in items {
        let signed = parse(item).map_err(|e| format!("an outbox entry: {e}"))?;
        if signed.header.actor != target {
            return Err(format!(
                "it lists {}, an activity by {}, not by {target}",
                signed.id, signed.header.actor
            ));
        }
        activities.push(signed);
    }
    activities.sort_by_key(|s| s.header.seq);
    activities.dedup_by(|a, b| a.id == b.id);
    check_links(&activities)?;
    Ok(activities)
}

/// Consecutive seqs must link: seq n+1's `prev` is seq n's id. (Gaps are
/// activities the outbox does not show anonymous readers.)
fn check_links(sorted: &[Signed]) -> Result<(), String> {
    for pair in sorted.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if b.header.seq == a.header.seq {
            return Err(format!(
                "two different activities at seq {} ({} and {}): a fork",
                a.header.seq, a.id, b.id
            ));
        }
        if b.header.seq == a.header.seq + 1 && b.header.prev.as_deref() != Some(a.id.as_str()) {
            return Err(format!(
                "seq {} does not link to seq {} through `prev`",
                b.header.seq, a.header.seq
            ));
        }
    }
    Ok(())
}

/// Everything, oldest first, following `next` links of `?since=` pages.
async fn pull_forward(
    federation: &Federation,
    outbox: &str,
    budget: &Budget,
    out: &mut Stage,
) -> Result<(), Stop> {
    let mut url = collection::since_url(outbox, None, PAGE);
    loop {
        let page = fetch(federation, &url, budget).await?;
        let items = ordered_items(&page);
        let empty = items.is_empty();
        for item in &items {
            out.push(item).map_err(staging)?;
        }
        if out.len() as u64 >= MAX_ITEMS || empty {
            break;
        }
        match collection::next(&page) {
            Some(next) if next.starts_with(outbox) => url = next.to_owned(),
            _ => break,
        }
    }
    Ok(())
}

/// The newest entries while `want(count so far, published)` holds, walking
/// `?page=` pages from the newest.
async fn pull_back(
    federation: &Federation,
    outbox: &str,
    budget: &Budget,
    out: &mut Stage,
    want: impl Fn(u64, &str) -> bool,
) -> Result<(), Stop> {
    let mut page_no = 1u64;
    'pages: loop {
        let page = fetch(
            federation,
            &collection::page_url(outbox, page_no, Some(PAGE)),
            budget,
        )
        .await?;
        let items = ordered_items(&page);
        if items.is_empty() {
            break;
        }
        for item in items {
            let published = item.get("published").and_then(Value::as_str).unwrap_or("");
            if !want(out.len() as u64, published) {
                break 'pages;
            }
            out.push(&item).map_err(staging)?;
        }
        if page.get("next").is_none() || out.len() as u64 >= MAX_ITEMS {
            break;
        }
        page_no += 1;
    }
    Ok(())
}

fn staging(e: StageError) -> Stop {
    Stop::Transient(format!("staging failed: {e}"))
}

async fn fetch(federation: &Federation, url: &str, budget: &Budget) -> Result<Value, Stop> {
    federation.fetcher.get_json(url, budget).await.map_err(|e| {
        if matches!(e, super::FetchError::Budget(_)) || e.is_absent() {
            Stop::Permanent(e.to_string())
        } else {
            Stop::Transient(e.to_string())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(request: Value) -> BackfillJob {
        BackfillJob {
            follow: "b".into(),
            follower: "http://a/actors/x".into(),
            target: "http://b/actors/y".into(),
            request: request.to_string(),
            accepted_at: "2026-11-21T12:00:00.000Z".into(),
        }
    }

    #[test]
    fn modes_read_the_follows_request() {
        let since = |v: Value| match mode(&job(v)) {
            Ok(Mode::Since(t)) => humantime::format_rfc3339_seconds(t).to_string(),
            _ => panic!("not last-T"),
        };
        assert_eq!(
            since(serde_json::json!({"mode": "last-T", "duration": "P1D"})),
            "2026-11-20T12:00:00Z"
        );
        assert_eq!(
            since(serde_json::json!({"mode": "last-T", "duration": "PT30M"})),
            "2026-11-21T11:30:00Z"
        );
        assert_eq!(
            mode(&job(serde_json::json!({"mode": "last-N", "limit": 5}))).ok(),
            Some(Mode::LastN(5))
        );
        assert_eq!(
            mode(&job(serde_json::json!({"mode": "full"}))).ok(),
            Some(Mode::Full)
        );
        assert!(matches!(
            mode(&job(
                serde_json::json!({"mode": "last-T", "duration": "soon"})
            )),
            Err(Stop::Permanent(_))
        ));
        assert!(matches!(
            mode(&job(serde_json::json!({"mode": "sideways"}))),
            Err(Stop::Permanent(_))
        ));
    }

    /// The signed chain of the envelope test vectors, seq 1 to 4.
    fn vectors() -> (String, Vec<Value>) {
        let data: Value =
            serde_json::from_str(include_str!("../../../host/tests/data/envelope.json"))
                .expect("the test vectors are JSON");
        let actor = data["key"]["actor"].as_str().expect("an actor").to_owned();
        let valid = data["valid"].as_array().expect("valid vectors");
        (actor, valid.iter().map(|v| v["signed"].clone()).collect())
    }

    #[test]
    fn chain_sorts_dedups_and_checks_links() {
        let (actor, items) = vectors();
        let mut shuffled: Vec<Value> = items.iter().rev().cloned().collect();
        shuffled.push(items[1].clone());
        let chained = chain(shuffled, &actor).expect("a linked chain");
        let seqs: Vec<u64> = chained.iter().map(|s| s.header.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);

        // A missing middle entry is a gap, not an error.
        let gap = vec![items[0].clone(), items[2].clone(), items[3].clone()];
        assert_eq!(chain(gap, &actor).map(|c| c.len()), Ok(3));

        let someone_else = chain(items.clone(), "http://127.0.0.1:9999/actors/bob");
        assert!(someone_else.is_err_and(|e| e.contains("not by")));

        // Re-signed with the vectors' key: seq 2 pointing elsewhere, and a
        // second, different seq 2.
        let key = ed25519_dalek::SigningKey::from_bytes(&std::array::from_fn(|i| i as u8));
        let resign = |mut item: Value, field: &str, value: Value| {
            let map = item.as_object_mut().expect("an object");
            map.remove("id");
            let proof = map.remove("proof").expect("a proof");
            map.insert(field.to_owned(), value);
            let key_id = proof["key"].as_str().expect("a key id");
            Value::Object(Signed::sign(map.clone(), key_id, &key).expect("signs").json)
        };
        let elsewhere = weft_core::model::cid::activity_id(b"elsewhere");
        let unlinked = resign(items[1].clone(), "prev", Value::String(elsewhere));
        let unlinked = chain(vec![items[0].clone(), unlinked], &actor);
        assert!(unlinked.is_err_and(|e| e.contains("does not link")));
        let fork = resign(
            items[1].clone(),
            "published",
            "2026-11-21T05:00:09.000Z".into(),
        );
        let fork = chain(vec![items[0].clone(), items[1].clone(), fork], &actor);
        assert!(fork.is_err_and(|e| e.contains("a fork")));
    }

    #[test]
    fn last_t_reads_the_shared_duration_grammar() {
        let since = |duration: &str| match mode(&job(
            serde_json::json!({"mode": "last-T", "duration": duration}),
        )) {
            Ok(Mode::Since(t)) => Ok(humantime::format_rfc3339_seconds(t).to_string()),
            Ok(other) => panic!("not last-T: {other:?}"),
            Err(Stop::Permanent(e) | Stop::Transient(e)) => Err(e),
        };
        // The texts the host and the Follow verb used to disagree on.
        assert_eq!(since("P0,5D").as_deref(), Ok("2026-11-21T00:00:00Z"));
        assert_eq!(since("P1W2D").as_deref(), Ok("2026-11-12T12:00:00Z"));
        // Once a panic in the backfill task; now a permanent refusal.
        assert!(since("P99999999999999999999Y").is_err_and(|e| e.contains("too large")));
        // Longer ago than the epoch: everything.
        assert_eq!(
            since(&format!("PT{}S", u64::MAX)).as_deref(),
            Ok("1970-01-01T00:00:00Z")
        );
    }
}
