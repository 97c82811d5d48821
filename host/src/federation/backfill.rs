//! Backfill (DESIGN §6): when a Follow that asked for `backfill` is
//! accepted, the follower pulls the followed actor's public outbox and
//! stores what it asked for — `last-N` (the N newest), `last-T` (published
//! within T before the Accept arrived), `full` (everything, page by page) —
//! each verified like an inbound activity, consecutive entries checked to
//! link through `prev`, kept with their original ids and marked backfilled.
//!
//! A pending backfill is a row written with the Accept, removed when done,
//! so a restart resumes it; ingesting is idempotent, so a resumed backfill
//! repeats nothing. Network failures are retried on the delivery schedule.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::Federation;
use super::fetch::Budget;
use super::inbox::parse;
use crate::kernel::FederationWrite;
use crate::model::Signed;
use crate::store::BackfillJob;

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
                .and_then(iso_duration)
                .ok_or_else(|| {
                    Stop::Permanent("`backfill.duration` is not an ISO-8601 duration".into())
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
        .filter(|o| {
            crate::kernel::audience_origin(o) == crate::kernel::audience_origin(&job.target)
        })
        .unwrap_or_else(|| format!("{}/outbox", job.target));
    let items = match mode {
        Mode::Full => pull_forward(federation, &outbox, &budget).await?,
        Mode::LastN(n) => pull_back(federation, &outbox, &budget, |count, _| count < n).await?,
        Mode::Since(since) => {
            pull_back(federation, &outbox, &budget, |_, published| {
                humantime::parse_rfc3339_weak(published).is_ok_and(|p| p >= since)
            })
            .await?
        }
    };
    let mut activities = Vec::with_capacity(items.len());
    for item in items {
        let signed = parse(item).map_err(|e| Stop::Permanent(format!("an outbox entry: {e}")))?;
        if signed.header.actor != job.target {
            return Err(Stop::Permanent(format!(
                "{outbox} lists {}, an activity by {}, not by {}",
                signed.id, signed.header.actor, job.target
            )));
        }
        activities.push(signed);
    }
    activities.sort_by_key(|s| s.header.seq);
    activities.dedup_by(|a, b| a.id == b.id);
    check_links(&activities)?;
    let mut stored = 0;
    for signed in activities {
        federation
            .verify(&signed, &budget)
            .await
            .map_err(|e| match e {
                super::InboxError::Unavailable(m) => Stop::Transient(m),
                other => Stop::Permanent(format!("{}: {other}", signed.id)),
            })?;
        if federation.must_park(&signed) {
            federation
                .park(&signed, vec![job.follower.clone()], true)
                .await
                .map_err(|e| Stop::Transient(e.to_string()))?;
            continue;
        }
        let result = federation
            .kernel
            .ingest(signed, vec![job.follower.clone()], true, None)
            .await;
        match result {
            Ok(crate::kernel::Ingested::Stored(_)) => stored += 1,
            Ok(_) => {}
            Err(e @ crate::kernel::KernelError::Rejected(_)) => {
                tracing::info!(follow = %job.follow, error = %e, "a backfilled activity was refused");
            }
            Err(e) => return Err(Stop::Transient(e.to_string())),
        }
    }
    Ok(stored)
}

/// Consecutive seqs must link: seq n+1's `prev` is seq n's id. (Gaps are
/// activities the outbox does not show anonymous readers.)
fn check_links(sorted: &[Signed]) -> Result<(), Stop> {
    for pair in sorted.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if b.header.seq == a.header.seq {
            return Err(Stop::Permanent(format!(
                "two different activities at seq {} ({} and {}): a fork",
                a.header.seq, a.id, b.id
            )));
        }
        if b.header.seq == a.header.seq + 1 && b.header.prev.as_deref() != Some(a.id.as_str()) {
            return Err(Stop::Permanent(format!(
                "seq {} does not link to seq {} through `prev`",
                b.header.seq, a.header.seq
            )));
        }
    }
    Ok(())
}

/// Everything, oldest first, following `next` links of `?since=` pages.
async fn pull_forward(
    federation: &Federation,
    outbox: &str,
    budget: &Budget,
) -> Result<Vec<Value>, Stop> {
    let mut url = format!("{outbox}?limit={PAGE}");
    let mut out = Vec::new();
    loop {
        let page = fetch(federation, &url, budget).await?;
        let items = ordered_items(&page);
        let empty = items.is_empty();
        out.extend(items);
        if out.len() as u64 >= MAX_ITEMS || empty {
            break;
        }
        match page.get("next").and_then(Value::as_str) {
            Some(next) if next.starts_with(outbox) => url = next.to_owned(),
            _ => break,
        }
    }
    Ok(out)
}

/// The newest entries while `want(count so far, published)` holds, walking
/// `?page=` pages from the newest.
async fn pull_back(
    federation: &Federation,
    outbox: &str,
    budget: &Budget,
    want: impl Fn(u64, &str) -> bool,
) -> Result<Vec<Value>, Stop> {
    let mut out = Vec::new();
    let mut page_no = 1u64;
    'pages: loop {
        let page = fetch(
            federation,
            &format!("{outbox}?page={page_no}&limit={PAGE}"),
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
            out.push(item);
        }
        if page.get("next").is_none() || out.len() as u64 >= MAX_ITEMS {
            break;
        }
        page_no += 1;
    }
    Ok(out)
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

fn ordered_items(page: &Value) -> Vec<Value> {
    match page.get("orderedItems") {
        Some(Value::Array(items)) => items.iter().filter(|i| i.is_object()).cloned().collect(),
        _ => Vec::new(),
    }
}

/// An ISO-8601 duration (`P7D`, `PT12H`, `P1W`, `P1Y2M3DT4H5M6S`), with a
/// year of 365 days and a month of 30.
pub fn iso_duration(text: &str) -> Option<Duration> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut seconds = 0f64;
    let mut parts = 0;
    let mut eat = |s: &str, units: &[(char, f64)]| -> Option<()> {
        let mut number = String::new();
        let mut next = 0;
        for c in s.chars() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
                continue;
            }
            let at = units[next..].iter().position(|(u, _)| *u == c)? + next;
            let n: f64 = number.parse().ok()?;
            seconds += n * units[at].1;
            parts += 1;
            number.clear();
            next = at + 1;
        }
        number.is_empty().then_some(())
    };
    const DAY: f64 = 86_400.0;
    eat(
        date,
        &[
            ('Y', 365.0 * DAY),
            ('M', 30.0 * DAY),
            ('W', 7.0 * DAY),
            ('D', DAY),
        ],
    )?;
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        eat(time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    (parts > 0 && seconds.is_finite()).then(|| Duration::from_secs_f64(seconds))
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

    #[test]
    fn iso_durations() {
        assert_eq!(iso_duration("P7D"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(iso_duration("PT12H"), Some(Duration::from_secs(12 * 3600)));
        assert_eq!(iso_duration("P1W"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(
            iso_duration("P1DT1H1M1S"),
            Some(Duration::from_secs(86_400 + 3661))
        );
        assert_eq!(iso_duration("PT0.5S"), Some(Duration::from_millis(500)));
        for bad in ["", "P", "PT", "7D", "P1H", "PT1D", "P1D2", "PD"] {
            assert_eq!(iso_duration(bad), None, "{bad}");
        }
    }
}
