//! Outbound delivery (docs/architecture.md §8.1). The kernel writes one job per remote
//! recipient in the transaction that appends the activity; this module
//! sends them. One worker per peer origin, so a slow or dead peer delays
//! only its own jobs; each worker keeps up to `per_peer_in_flight` requests
//! going over reused connections.
//!
//! A failed attempt is retried on the configured schedule (30 s, 5 min,
//! 30 min, 6 h, 24 h by default, each stretched by jitter), then the job is
//! dead-lettered. 410 and other 4xx a retry cannot fix dead-letter at once;
//! 429 and 503 with `Retry-After` wait as long as the peer asks (capped) and
//! pause that peer. Every state change is written through the kernel before
//! the worker moves on, so after a crash every job resumes where it was;
//! a delivery whose success was not yet written is sent again, which the
//! receiver treats as a duplicate.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::Federation;
use super::fetch::{Budget, FetchError};
use super::peers::PeerError;
use weft_kernel::{FederationWrite, now_ms};
use weft_store::Job;

/// What one peer origin's delivery worker did last and is doing now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginStats {
    /// Deliveries to it that succeeded since the node started.
    pub delivered: u64,
    /// When one last succeeded (ms since the Unix epoch).
    pub last_success_ms: Option<u64>,
    /// When one last failed, and why.
    pub last_failure_ms: Option<u64>,
    pub last_error: Option<String>,
    /// Requests under way now.
    pub in_flight: usize,
    /// Jobs the worker holds (waiting for their time).
    pub waiting: usize,
    /// The peer asked (Retry-After) for nothing before this.
    pub paused_until_ms: Option<u64>,
}

/// Every peer origin's [`OriginStats`], kept in memory by the workers.
#[derive(Debug, Default)]
pub struct PeerStats {
    map: Mutex<BTreeMap<String, OriginStats>>,
}

impl PeerStats {
    /// Every origin a worker has run for since the node started.
    pub fn all(&self) -> Vec<(String, OriginStats)> {
        self.map
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    fn update(&self, origin: &str, f: impl FnOnce(&mut OriginStats)) {
        if let Ok(mut map) = self.map.lock() {
            f(map.entry(origin.to_owned()).or_default());
        }
    }
}

/// Hands jobs to their peer's worker, starting workers on demand.
#[derive(Debug)]
pub struct Dispatcher {
    federation: Arc<Federation>,
    workers: Mutex<HashMap<String, mpsc::UnboundedSender<Job>>>,
}

impl Dispatcher {
    pub fn new(federation: Arc<Federation>) -> Self {
        Self {
            federation,
            workers: Mutex::new(HashMap::new()),
        }
    }

    pub fn dispatch(&self, job: Job) {
        let Ok(mut workers) = self.workers.lock() else {
            return;
        };
        let tx = workers.entry(job.origin.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(worker(self.federation.clone(), job.origin.clone(), rx));
            tx
        });
        if let Err(mpsc::error::SendError(job)) = tx.send(job) {
            // The worker ended; start a fresh one.
            let (tx, rx) = mpsc::unbounded_channel();
            let origin = job.origin.clone();
            tokio::spawn(worker(self.federation.clone(), origin.clone(), rx));
            let _ = tx.send(job);
            workers.insert(origin, tx);
        }
    }
}

/// What one attempt came to.
enum Attempt {
    Delivered,
    /// Try again; `after` is what the peer asked for (Retry-After).
    Retry {
        error: String,
        after: Option<Duration>,
    },
    Dead(String),
}

/// The worker of one peer origin.
async fn worker(federation: Arc<Federation>, origin: String, mut rx: mpsc::UnboundedReceiver<Job>) {
    let limit = federation.settings.per_peer_in_flight.max(1);
    let mut queue: BTreeMap<(u64, u64), Job> = BTreeMap::new();
    let mut in_flight: JoinSet<Option<Again>> = JoinSet::new();
    let mut paused_until = 0u64;
    let mut open = true;
    let stopped = federation.stopped();
    tokio::pin!(stopped);
    tracing::debug!(%origin, "delivery worker started");
    loop {
        let now = now_ms();
        while in_flight.len() < limit && paused_until <= now {
            let Some(entry) = queue.first_entry() else {
                break;
            };
            if entry.key().0 > now {
                break;
            }
            let job = entry.remove();
            in_flight.spawn(run(federation.clone(), job));
        }
        federation.deliveries.update(&origin, |s| {
            s.in_flight = in_flight.len();
            s.waiting = queue.len();
            s.paused_until_ms = (paused_until > now).then_some(paused_until);
        });
        if !open && queue.is_empty() && in_flight.is_empty() {
            break;
        }
        let wake = queue
            .first_key_value()
            .map(|((at, _), _)| (*at).max(paused_until));
        let nap = wake
            .filter(|_| in_flight.len() < limit)
            .map(|at| Duration::from_millis(at.saturating_sub(now)));
        tokio::select! {
            job = rx.recv(), if open => match job {
                Some(job) => { queue.insert((job.next_at_ms, job.id), job); }
                None => open = false,
            },
            done = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Some(Ok(Some(again))) = done {
                    let job = again.job;
                    // A Retry-After pauses the whole peer.
                    if again.peer_asked {
                        paused_until = paused_until.max(job.next_at_ms);
                    }
                    queue.insert((job.next_at_ms, job.id), job);
                }
            },
            () = tokio::time::sleep(nap.unwrap_or(Duration::from_secs(3600))), if nap.is_some() => {},
            () = &mut stopped => break,
        }
    }
    tracing::debug!(%origin, "delivery worker stopped");
}

/// A job to try again, and whether the peer asked for the wait
/// (`Retry-After`), which then holds for all of that peer's jobs.
struct Again {
    job: Job,
    peer_asked: bool,
}

/// Makes one attempt and writes its outcome; answers the job when it is
/// to be tried again.
async fn run(federation: Arc<Federation>, mut job: Job) -> Option<Again> {
    let mut peer_asked = false;
    let attempt = attempt(&federation, &job).await;
    let metrics = federation.kernel.metrics();
    let write = match attempt {
        Attempt::Delivered => {
            metrics.delivered();
            FederationWrite::JobDone(job.id)
        }
        Attempt::Retry { error, after } => {
            job.attempts += 1;
            let schedule = &federation.schedule;
            match schedule.get(job.attempts as usize - 1) {
                Some(wait) if after.is_none() => {
                    let jitter = f64::from(federation.settings.jitter_percent) / 100.0;
                    let stretch = rand::thread_rng().gen_range(1.0..=1.0 + jitter);
                    job.next_at_ms = now_ms() + wait.mul_f64(stretch).as_millis() as u64;
                    job.last_error = Some(error);
                    metrics.delivery_retried();
                    FederationWrite::JobRetry(job.clone())
                }
                Some(_) => {
                    peer_asked = true;
                    let after = after.unwrap_or_default();
                    job.next_at_ms = now_ms() + after.as_millis() as u64;
                    job.last_error = Some(format!("retry-after: {}s; {error}", after.as_secs()));
                    metrics.delivery_retried();
                    FederationWrite::JobRetry(job.clone())
                }
                None => {
                    job.last_error =
                        Some(format!("gave up after {} attempts: {error}", job.attempts));
                    metrics.dead_lettered();
                    FederationWrite::JobDead(job.clone())
                }
            }
        }
        Attempt::Dead(error) => {
            job.attempts += 1;
            job.last_error = Some(error);
            metrics.dead_lettered();
            FederationWrite::JobDead(job.clone())
        }
    };
    let again = matches!(write, FederationWrite::JobRetry(_));
    let now = now_ms();
    federation.deliveries.update(&job.origin, |s| {
        if matches!(write, FederationWrite::JobDone(_)) {
            s.delivered += 1;
            s.last_success_ms = Some(now);
        } else {
            s.last_failure_ms = Some(now);
            s.last_error.clone_from(&job.last_error);
        }
    });
    if let Err(e) = federation.kernel.federation_write(vec![write]).await {
        // Not written: the job stays as it was in the table and resumes
        // after a restart.
        tracing::warn!(job = job.id, error = %e, "cannot record a delivery attempt");
        return None;
    }
    match (again, &job.last_error) {
        (true, Some(e)) => {
            tracing::info!(job = job.id, recipient = %job.recipient, attempts = job.attempts, error = %e, "delivery will be retried");
        }
        (false, Some(e)) => {
            tracing::warn!(job = job.id, recipient = %job.recipient, error = %e, "delivery dead-lettered");
        }
        _ => {}
    }
    again.then_some(Again { job, peer_asked })
}

async fn attempt(federation: &Federation, job: &Job) -> Attempt {
    let record = match federation
        .kernel
        .store()
        .read()
        .map(|r| r.activity(&job.activity))
    {
        Ok(Ok(Some(record))) => record,
        Ok(Ok(None)) => return Attempt::Dead(format!("activity {} is not stored", job.activity)),
        Ok(Err(e)) => return retry(e.to_string()),
        Err(e) => return retry(e.to_string()),
    };
    let inbox = match job.shared_inbox() {
        Some(shared) => Ok(shared.to_owned()),
        None => {
            federation
                .peers
                .recipient_inbox(&job.recipient, &Budget::new(2))
                .await
        }
    };
    let inbox = match inbox {
        Ok(inbox) => inbox,
        Err(PeerError::Fetch(f)) if f.is_absent() => {
            return Attempt::Dead(format!("the recipient is gone: {f}"));
        }
        Err(e @ PeerError::Document { .. }) => return Attempt::Dead(e.to_string()),
        // An address this node may not reach stays so: no retry helps.
        Err(PeerError::Fetch(e @ FetchError::Refused { .. })) => {
            return Attempt::Dead(e.to_string());
        }
        Err(e) => return retry(e.to_string()),
    };
    let max_wait = federation.settings.max_retry_after_s;
    match federation
        .fetcher
        .post_activity(&inbox, record.json, &record.actor)
        .await
    {
        Ok((status, _)) if status.is_success() => Attempt::Delivered,
        Ok((status, retry_after))
            if status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::SERVICE_UNAVAILABLE =>
        {
            Attempt::Retry {
                error: format!("{inbox} answered {status}"),
                after: retry_after.map(|s| Duration::from_secs(s.min(max_wait))),
            }
        }
        Ok((status, _)) if status == StatusCode::REQUEST_TIMEOUT => {
            retry(format!("{inbox} answered {status}"))
        }
        Ok((status, _)) if status.is_client_error() => Attempt::Dead(format!(
            "{inbox} answered {status}, which a retry cannot fix"
        )),
        Ok((status, _)) => retry(format!("{inbox} answered {status}")),
        Err(e @ (FetchError::Refused { .. } | FetchError::BadUrl(_))) => {
            Attempt::Dead(e.to_string())
        }
        Err(e) => retry(e.to_string()),
    }
}

fn retry(error: String) -> Attempt {
    Attempt::Retry { error, after: None }
}
