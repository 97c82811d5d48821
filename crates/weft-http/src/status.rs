//! The node at a glance, for its operator: `GET /readyz` (can it serve: the
//! store answers, the writer runs), `GET /admin/status` (what `weft status`
//! prints and the dashboard's overview shows: counts of actors, activities,
//! queues, dead letters, parked activities, forks, peers, and each
//! projection's and policy's state), `GET /admin/status/history` (the last
//! hour sampled every ten seconds: activities stored per second, deliveries
//! queued, dead letters), and the local actors (`GET /admin/actors`, `POST
//! /admin/actors/{name}/token`).
//!
//! The history is kept in memory by a sampler task ([`spawn_sampler`]); it
//! starts empty with the process. This module reads what other layers keep;
//! it changes nothing but an actor's token.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::Admin;
use super::extract::Path;
use super::{AppState, Problem};

/// How often the history is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Samples kept: an hour's.
const KEEP: usize = 360;

/// One sample of the history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// ms since the Unix epoch.
    pub at_ms: u64,
    /// Activities stored since the node started (the counter).
    pub appended: u64,
    /// Activities stored per second since the sample before.
    pub per_second: f64,
    /// Deliveries queued.
    pub queued: u64,
    /// Deliveries that gave up.
    pub dead: u64,
}

/// The last hour of samples, and when the process started.
#[derive(Debug)]
pub struct History {
    started: Instant,
    samples: Mutex<VecDeque<Sample>>,
}

impl Default for History {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            samples: Mutex::new(VecDeque::with_capacity(KEEP)),
        }
    }
}

impl History {
    /// How long the node has been up.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Adds a sample of the counters now, computing the rate from the
    /// sample before.
    pub fn record(&self, at_ms: u64, appended: u64, queued: u64, dead: u64) {
        let Ok(mut samples) = self.samples.lock() else {
            return;
        };
        let per_second = samples.back().map_or(0.0, |last| {
            let seconds = at_ms.saturating_sub(last.at_ms) as f64 / 1000.0;
            if seconds > 0.0 {
                appended.saturating_sub(last.appended) as f64 / seconds
            } else {
                0.0
            }
        });
        if samples.len() >= KEEP {
            samples.pop_front();
        }
        samples.push_back(Sample {
            at_ms,
            appended,
            per_second,
            queued,
            dead,
        });
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Activities stored per second over the last minute of samples.
    pub fn recent_rate(&self) -> f64 {
        let samples = self.samples();
        let last = samples.iter().rev().take(6).collect::<Vec<_>>();
        match (last.first(), last.last()) {
            (Some(newest), Some(oldest)) if newest.at_ms > oldest.at_ms => {
                newest.appended.saturating_sub(oldest.appended) as f64
                    / ((newest.at_ms - oldest.at_ms) as f64 / 1000.0)
            }
            _ => 0.0,
        }
    }
}

/// Samples the counters every [`SAMPLE_EVERY`] while the node's kernel
/// lives (the task holds it weakly, so it never keeps a stopped node's
/// store open).
pub fn spawn_sampler(state: &AppState) {
    let kernel = std::sync::Arc::downgrade(&state.kernel);
    let history = state.history.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        loop {
            tick.tick().await;
            let Some(kernel) = kernel.upgrade() else {
                break;
            };
            let (queued, dead) = kernel
                .store()
                .read()
                .and_then(|r| r.job_counts())
                .unwrap_or_default();
            let appended = kernel
                .metrics()
                .appended
                .load(std::sync::atomic::Ordering::Relaxed);
            history.record(weft_kernel::now_ms(), appended, queued, dead);
        }
    });
}

/// The process's resident memory now and at its peak, in bytes (Linux:
/// `VmRSS` and `VmHWM` of `/proc/self/status`); `None` where that cannot
/// be read.
pub fn memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// `GET /readyz`: 200 `ready` when the store answers and the writer runs,
/// else 503 saying which.
pub async fn ready(State(state): State<AppState>) -> Response {
    match state.kernel.readiness() {
        Ok(()) => "ready\n".into_response(),
        Err(why) => Problem::new(StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// `GET /admin/status`.
pub async fn view(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    Ok(axum::Json(summary(&state)?).into_response())
}

/// What `GET /admin/status` answers (the dashboard's overview reads it too).
pub fn summary(state: &AppState) -> Result<Value, Problem> {
    let kernel = &state.kernel;
    let reader = kernel.store().read()?;
    let (queued, dead) = reader.job_counts()?;
    let healed = reader.healed()?.len() as u64;
    let actors = reader.local_names()?.len();
    let activities = reader.last_position()?;
    let builds = reader.projection_builds()?;
    let mut projections = Vec::new();
    if let Some(registry) = kernel.registry() {
        for described in registry.describe()? {
            if described.record.kind != weft_store::ModuleKind::Projection {
                continue;
            }
            let name = described.record.name.clone();
            let status = reader.projection_status(&name)?;
            let state = if builds.contains_key(&name) {
                "building"
            } else if status.failed > 0 && status.folded == 0 {
                "failing"
            } else {
                "ready"
            };
            projections.push(json!({
                "name": name,
                "state": state,
                "folded": status.folded,
                "failed": status.failed,
                "lastError": status.errors.last().map(|e| e.message.clone()),
                "building": builds.get(&name).map(|next| json!({
                    "folded": next.saturating_sub(1),
                    "of": activities,
                })),
            }));
        }
    }
    let statuses = kernel.policy_statuses();
    let policies: Vec<Value> = kernel
        .policies()?
        .iter()
        .map(|p| {
            let compliant = statuses.get(&p.name).and_then(|s| {
                s.conditions
                    .iter()
                    .find(|c| c.kind == "Compliant")
                    .map(|c| format!("{:?}", c.status))
            });
            json!({
                "name": p.name,
                "kind": p.kind.as_str(),
                "version": p.version,
                "compliant": compliant.unwrap_or_else(|| "Unknown".into()),
            })
        })
        .collect();
    let peers = reader
        .sync_states()?
        .iter()
        .filter(|s| weft_core::model::origin(&s.actor).as_deref() != Some(s.actor.as_str()))
        .count();
    Ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "publicUrl": kernel.public_url()?,
        "uptimeSeconds": state.history.uptime().as_secs(),
        "ready": kernel.readiness().err().map_or(json!(true), |why| json!(why)),
        "actors": actors,
        "activities": activities,
        "activitiesPerSecond": (state.history.recent_rate() * 10.0).round() / 10.0,
        "memory": memory().map(|(rss, peak)| json!({
            "residentBytes": rss,
            "peakResidentBytes": peak,
            "pageCacheBytes": kernel.cache_bytes(),
        })),
        "deliveries": {"queued": queued, "deadLetters": dead, "healed": healed},
        "parked": reader.parked_count()?,
        "pendingModules": reader.pending_modules()?.len(),
        "forks": reader.forks()?.len(),
        "syncedActors": peers,
        "projections": projections,
        "policies": policies,
    }))
}

/// `GET /admin/status/history`: the last hour, oldest first.
pub async fn history(State(state): State<AppState>, _: Admin) -> Response {
    let samples: Vec<Value> = state
        .history
        .samples()
        .iter()
        .map(|s| {
            json!({
                "at": rfc3339(s.at_ms),
                "activitiesPerSecond": (s.per_second * 10.0).round() / 10.0,
                "queued": s.queued,
                "deadLetters": s.dead,
            })
        })
        .collect();
    axum::Json(json!({
        "intervalSeconds": SAMPLE_EVERY.as_secs(),
        "samples": samples,
    }))
    .into_response()
}

/// `GET /admin/actors`: the local actors, by name.
pub async fn actors(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    Ok(axum::Json(json!({"items": actor_list(&state)?})).into_response())
}

/// The local actors: name, id, type, activities, created.
pub fn actor_list(state: &AppState) -> Result<Vec<Value>, Problem> {
    let reader = state.kernel.store().read()?;
    let mut items = Vec::new();
    for name in reader.local_names()? {
        if let Some(actor) = reader.actor_by_name(&name)? {
            items.push(json!({
                "name": name,
                "id": actor.id,
                "type": actor.kind.as_str(),
                "activities": actor.tip_seq,
                "created": actor.created,
            }));
        }
    }
    Ok(items)
}

/// `POST /admin/actors/{name}/token`: a new bearer token for the actor
/// (shown once); every token it had stops working.
pub async fn token(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    let (id, token) = state.kernel.reissue_token(&name).await?;
    Ok(axum::Json(json!({"id": id, "token": token})).into_response())
}
