//! Counters an operator watches: what was appended, refused, and how well
//! commits are shared. Rendered as Prometheus text at `GET /metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Monotonic counters, updated lock-free.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Activities durably appended.
    pub appended: AtomicU64,
    /// Durable write transactions committed.
    pub commits: AtomicU64,
    /// Batches that failed to commit.
    pub failed_commits: AtomicU64,
    /// Publish requests refused before reaching the log.
    pub rejected: AtomicU64,
    /// Largest number of requests in one commit so far.
    pub largest_batch: AtomicU64,
    /// Nanoseconds the writer spent in each phase of its batches.
    pub writer_ns: [AtomicU64; Phase::ALL.len()],
    /// Deliveries a peer's inbox accepted.
    pub deliveries: AtomicU64,
    /// Delivery attempts that will be retried.
    pub delivery_retries: AtomicU64,
    /// Deliveries that gave up.
    pub dead_letters: AtomicU64,
}

/// Where the writer's time goes, per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Checking chain links and writing the log's tables.
    Append,
    /// Running every projection's fold (and projection build steps).
    Fold,
    /// Asking the verbs how local recipients react.
    React,
    /// Writing pages and waiting for the disk (fsync).
    Commit,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Append, Phase::Fold, Phase::React, Phase::Commit];

    fn label(self) -> &'static str {
        match self {
            Phase::Append => "append",
            Phase::Fold => "fold",
            Phase::React => "react",
            Phase::Commit => "commit",
        }
    }
}

impl Metrics {
    pub(super) fn committed(&self, requests: u64, appended: u64) {
        self.commits.fetch_add(1, Relaxed);
        self.appended.fetch_add(appended, Relaxed);
        self.largest_batch.fetch_max(requests, Relaxed);
    }

    pub fn delivered(&self) {
        self.deliveries.fetch_add(1, Relaxed);
    }

    pub fn delivery_retried(&self) {
        self.delivery_retries.fetch_add(1, Relaxed);
    }

    pub fn dead_lettered(&self) {
        self.dead_letters.fetch_add(1, Relaxed);
    }

    /// Adds the time since `since` to `phase`.
    pub(super) fn spent(&self, phase: Phase, since: std::time::Instant) {
        let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.writer_ns[phase as usize].fetch_add(ns, Relaxed);
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = [
            (
                "weft_activities_appended_total",
                "Activities durably appended to a log.",
                &self.appended,
            ),
            (
                "weft_commits_total",
                "Durable write transactions committed.",
                &self.commits,
            ),
            (
                "weft_commit_failures_total",
                "Batches whose commit failed; nothing of them was written.",
                &self.failed_commits,
            ),
            (
                "weft_publish_rejected_total",
                "Publish requests refused before reaching the log.",
                &self.rejected,
            ),
            (
                "weft_deliveries_total",
                "Deliveries a peer's inbox accepted.",
                &self.deliveries,
            ),
            (
                "weft_delivery_retries_total",
                "Delivery attempts that failed and will be retried.",
                &self.delivery_retries,
            ),
            (
                "weft_dead_letters_total",
                "Deliveries that gave up and went to the dead letters.",
                &self.dead_letters,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP weft_commit_batch_max Most requests group-committed in one transaction.\n# TYPE weft_commit_batch_max gauge\nweft_commit_batch_max {}",
            self.largest_batch.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP weft_writer_seconds_total Time the writer spent per phase of its batches.\n# TYPE weft_writer_seconds_total counter"
        );
        for phase in Phase::ALL {
            let _ = writeln!(
                out,
                "weft_writer_seconds_total{{phase=\"{}\"}} {:.6}",
                phase.label(),
                self.writer_ns[phase as usize].load(Relaxed) as f64 / 1e9
            );
        }
        out
    }
}
