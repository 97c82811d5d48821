//! The crash loop (issue 21): node A is killed with SIGKILL at random
//! moments while it publishes, ingests a peer's deliveries, delivers to
//! that peer, backfills and rebuilds a projection, and is started again on
//! the same data folder each time. After every restart the loop waits for
//! the two nodes to settle and checks that
//!
//! - every activity A acknowledged (201) is in its author's log exactly
//!   once, and the log is a gap-free chain (seq 1..n, each `prev` the id of
//!   the one before);
//! - node B (the peer, never killed) holds each of those activities exactly
//!   once, and A holds each of B's once: no delivery job was lost (nothing
//!   missing, nothing dead-lettered, no job left) or duplicated at the
//!   receiver; neither node saw a fork;
//! - each follow with backfill that A made brought the followed actor's
//!   whole public log into the follower's inbox, once;
//! - redb opened the store without a full repair (quick repair is on), and
//!   how long the node took to answer `/health` (the recovery time) — it is
//!   measured and printed, never asserted beyond a liveness bound;
//! - every few kills (`WEFT_CRASH_REFOLD_EVERY`, and after the last), with
//!   A stopped: each projection's stored state equals what a full refold
//!   (`weft projection rebuild`) of the log makes.
//!
//! `WEFT_CRASH_KILLS` (default 5, which CI runs) sets the number of kills
//! and `WEFT_CRASH_SEED` the seed (printed; random by default). The seed
//! fixes the schedule — when each kill comes, what is published, which
//! projection is rebuilt — not the node's timing, so a rerun with it hits
//! similar, not identical, moments. A longer run:
//!
//! ```sh
//! WEFT_CRASH_KILLS=1000 WEFT_CRASH_REFOLD_EVERY=50 \
//!   cargo test -p weft --test e2e crash -- --nocapture
//! ```
//!
//! It does not kill B, corrupt files, cut power (a SIGKILL loses nothing
//! the kernel has written; the page cache survives it) or race two
//! processes on one data folder.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::{Value, json};

use crate::support::{PUBLIC, Weft, cid, cid_of, collection, note};

/// A short retry schedule, long enough in total to outlast any restart.
const RETRY: &str = "100ms,200ms,300ms,500ms,500ms,1s,1s,1s,1s,1s,2s,2s,2s,2s,2s,\
                     3s,3s,3s,3s,3s,5s,5s,5s,5s,5s,10s,10s,10s,30s,60s";
/// Concurrent publishers of A's actor.
const PUBLISHERS: usize = 3;
/// Longest a publisher waits between two publishes, in ms.
const PACE_MS: u64 = 10;
/// Longest the traffic runs before the kill, in ms (`WEFT_CRASH_WINDOW_MS`).
const WINDOW_MS: u64 = 1500;
/// How long the nodes may take to deliver everything after a restart.
const SETTLE: Duration = Duration::from_secs(120);
/// The liveness bound on a restart: a node that has not answered
/// `/health` by then is taken for hung.
const LIVENESS: Duration = Duration::from_secs(120);

/// A local actor of a node.
#[derive(Debug, Clone)]
struct Actor {
    name: String,
    id: String,
    token: String,
}

async fn actor(node: &Weft, name: &str) -> anyhow::Result<Actor> {
    let (id, token) = node
        .create_actor_http(name)
        .await
        .with_context(|| format!("creating {name}"))?;
    Ok(Actor {
        name: name.to_owned(),
        id,
        token,
    })
}

/// One actor's log as verified so far: a gap-free chain, read on from its
/// tip after each restart.
#[derive(Debug, Default)]
struct LogView {
    /// Content ids, oldest first (index = seq − 1).
    ids: Vec<String>,
    /// Content id → seq.
    seqs: HashMap<String, u64>,
}

impl LogView {
    /// Reads what was appended after the verified tip, checking each new
    /// entry continues the chain; answers the new content ids.
    async fn extend(&mut self, node: &Weft, who: &Actor) -> anyhow::Result<Vec<String>> {
        let mut fresh = Vec::new();
        loop {
            let since = self.ids.last().cloned().unwrap_or_default();
            let page = node
                .get_ok(
                    &format!("/actors/{}/outbox?since={since}&limit=200", who.name),
                    Some(&who.token),
                )
                .await
                .with_context(|| format!("reading {}'s log after {since:?}", who.name))?;
            let items = page["orderedItems"]
                .as_array()
                .context("an outbox page without orderedItems")?;
            for item in items {
                let seq = self.ids.len() as u64 + 1;
                let id = cid(item);
                ensure!(
                    item["seq"].as_u64() == Some(seq),
                    "{}'s log has a gap: expected seq {seq}, got {} ({id})",
                    who.name,
                    item["seq"]
                );
                let prev = self.ids.last().map_or(Value::Null, |p| json!(p));
                ensure!(
                    item["prev"] == prev,
                    "{}'s seq {seq} has prev {} but seq {} is {prev}",
                    who.name,
                    item["prev"],
                    seq - 1
                );
                if let Some(earlier) = self.seqs.insert(id.clone(), seq) {
                    bail!(
                        "{id} is in {}'s log twice: seq {earlier} and {seq}",
                        who.name
                    );
                }
                self.ids.push(id.clone());
                fresh.push(id);
            }
            if page.get("next").is_none() || items.is_empty() {
                break;
            }
        }
        let outbox = node
            .get_ok(&format!("/actors/{}/outbox", who.name), Some(&who.token))
            .await?;
        ensure!(
            outbox["totalItems"].as_u64() == Some(self.ids.len() as u64),
            "{}'s outbox counts {} activities but its chain has {}",
            who.name,
            outbox["totalItems"],
            self.ids.len()
        );
        Ok(fresh)
    }

    /// Walks the whole log again from seq 1 and checks it is the one
    /// verified piece by piece.
    async fn rewalk(&self, node: &Weft, who: &Actor) -> anyhow::Result<()> {
        let log = node.walk_log(&who.name, &who.token).await?;
        let ids: Vec<String> = log.iter().map(cid).collect();
        ensure!(
            ids == self.ids,
            "{}'s whole log ({} activities) is not the chain verified piece by piece ({})",
            who.name,
            ids.len(),
            self.ids.len()
        );
        Ok(())
    }
}

/// One actor's inbox as read so far: how many times each content id is in
/// it. The inbox is numbered 1..=total in arrival order and only grows, so
/// a refresh reads the entries after the last total.
#[derive(Debug, Default, PartialEq)]
struct InboxView {
    total: u64,
    counts: HashMap<String, u32>,
}

impl InboxView {
    async fn read(node: &Weft, who: &Actor) -> anyhow::Result<Self> {
        let mut view = Self::default();
        view.refresh(node, who).await?;
        Ok(view)
    }

    /// Reads the entries that arrived since the last refresh. Retries when
    /// an entry arrives while the pages are being read.
    async fn refresh(&mut self, node: &Weft, who: &Actor) -> anyhow::Result<()> {
        'again: for _ in 0..20 {
            let path = format!("/actors/{}/inbox", who.name);
            let head = node.get_ok(&path, Some(&who.token)).await?;
            let total = head["totalItems"]
                .as_u64()
                .context("an inbox without totalItems")?;
            ensure!(
                total >= self.total,
                "{}'s inbox shrank from {} to {total} entries",
                who.name,
                self.total
            );
            let want = total - self.total;
            if want == 0 {
                return Ok(());
            }
            let limit = want.min(200);
            let mut fresh = Vec::new();
            let mut page = 1u64;
            while (fresh.len() as u64) < want {
                let body = node
                    .get_ok(
                        &format!("{path}?page={page}&limit={limit}"),
                        Some(&who.token),
                    )
                    .await?;
                if body["totalItems"].as_u64() != Some(total) {
                    continue 'again;
                }
                let items = body["orderedItems"]
                    .as_array()
                    .context("an inbox page without orderedItems")?;
                // Page p holds entries max(1, total − p·limit + 1) ..=
                // total − (p − 1)·limit, newest first.
                let newest = total - (page - 1) * limit;
                let oldest = (total + 1).saturating_sub(page * limit).max(1);
                ensure!(
                    items.len() as u64 == newest - oldest + 1,
                    "{}'s inbox page {page} (entries {oldest}..={newest}) holds {} activities: \
                     an entry whose activity is not stored",
                    who.name,
                    items.len()
                );
                fresh.extend(items.iter().map(cid));
                page += 1;
            }
            fresh.truncate(want as usize);
            for id in fresh {
                *self.counts.entry(id).or_default() += 1;
            }
            self.total = total;
            return Ok(());
        }
        bail!("{}'s inbox kept changing while it was read", who.name)
    }

    fn count(&self, id: &str) -> u32 {
        self.counts.get(id).copied().unwrap_or(0)
    }

    /// Ids in the inbox more than once.
    fn duplicated(&self) -> Vec<(&String, &u32)> {
        self.counts.iter().filter(|(_, n)| **n > 1).collect()
    }
}

/// A follow with backfill made by a fresh actor of A, of a fresh actor of
/// B with a public log of its own.
#[derive(Debug)]
struct FollowCase {
    follower: Actor,
    target: Actor,
    /// The content ids of the target's notes (all public).
    public: Vec<String>,
}

/// What one publisher of A saw.
#[derive(Debug, Default)]
struct Tally {
    acked: Vec<String>,
    /// Publishes answered 503 (nothing stored; tried again).
    unavailable: usize,
    /// Why it stopped: a request that failed (the node died) or, a fault,
    /// an answer other than 201.
    stopped_by: Option<String>,
}

/// Totals over the whole run.
#[derive(Debug, Default)]
struct Totals {
    kills: usize,
    early_kills: usize,
    acked: usize,
    /// Publishes answered 503 while the follower graph was rebuilt.
    unavailable: usize,
    /// Appended but never acknowledged (the node died before answering).
    unacked_durable: usize,
    lost: usize,
    duplicated: usize,
    delivered_to_b: usize,
    delivered_to_a: usize,
    backfilled: usize,
    follows_interrupted: usize,
    rebuilds_interrupted: usize,
    refolds: usize,
    recoveries: Vec<Duration>,
    store_open_ms: Vec<u64>,
    full_repairs: usize,
}

impl Totals {
    fn summary(&self, seed: u64, elapsed: Duration) -> String {
        let n = self.recoveries.len().max(1) as u32;
        let mean = self.recoveries.iter().sum::<Duration>() / n;
        let max = self.recoveries.iter().max().copied().unwrap_or_default();
        let open_n = self.store_open_ms.len().max(1) as u64;
        let open_mean = self.store_open_ms.iter().sum::<u64>() as f64 / open_n as f64;
        let open_max = self.store_open_ms.iter().max().copied().unwrap_or(0);
        format!(
            "crash loop (seed {seed}): {} kills ({} during a restart), {} acknowledged \
             (+{} durable but unacknowledged, {} answered 503), {} lost, {} duplicated; delivered A→B {}, B→A {}, \
             backfilled {}; {} follows and {} rebuilds interrupted; {} refold checks; \
             recovery to /health mean {} ms, max {} ms; store open mean {open_mean:.1} ms, \
             max {open_max} ms, {} full repairs; {:.0} s in all",
            self.kills,
            self.early_kills,
            self.acked,
            self.unacked_durable,
            self.unavailable,
            self.lost,
            self.duplicated,
            self.delivered_to_b,
            self.delivered_to_a,
            self.backfilled,
            self.follows_interrupted,
            self.rebuilds_interrupted,
            self.refolds,
            mean.as_millis(),
            max.as_millis(),
            self.full_repairs,
            elapsed.as_secs_f64(),
        )
    }
}

fn env_number(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .with_context(|| format!("{name}={text:?} is not a whole number")),
        Err(_) => Ok(default),
    }
}

async fn start_node() -> anyhow::Result<Weft> {
    let mut node = Weft::init()?;
    node.run_env("WEFT_FEDERATION_RETRY", RETRY);
    node.start().await?;
    Ok(node)
}

/// Publishes `draft` as `who` and expects 201 (after 503s, which store
/// nothing and say to try again); answers the content id.
async fn publish(node: &Weft, who: &Actor, draft: Value) -> anyhow::Result<String> {
    for _ in 0..100 {
        let (status, body) = node.post_activity(&who.token, &draft).await?;
        if status == 503 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        ensure!(
            status == 201,
            "{} publishing {draft}: {status} {body}",
            who.name
        );
        return Ok(cid(&body));
    }
    bail!("{} publishing {draft}: 503 a hundred times", who.name)
}

/// A fresh HTTP client (pooled connections to a killed node are gone).
fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_idle_timeout(weft_federation::fetch::POOL_IDLE)
        .timeout(Duration::from_secs(30))
        .build()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_work_survives_random_sigkills() -> anyhow::Result<()> {
    let kills = env_number("WEFT_CRASH_KILLS", 5)? as usize;
    let refold_every = env_number("WEFT_CRASH_REFOLD_EVERY", 1)?.max(1) as usize;
    let window_ms = env_number("WEFT_CRASH_WINDOW_MS", WINDOW_MS)?.max(1);
    let seed = match std::env::var("WEFT_CRASH_SEED") {
        Ok(_) => env_number("WEFT_CRASH_SEED", 0)?,
        Err(_) => rand::thread_rng().next_u64(),
    };
    eprintln!(
        "crash loop: {kills} kills, refold check every {refold_every}, window {window_ms} ms, \
         seed {seed} (rerun with WEFT_CRASH_SEED={seed})"
    );
    let mut run = CrashLoop::set_up(seed, window_ms).await?;
    let started = Instant::now();
    let mut cycle = 0;
    while run.totals.kills < kills {
        cycle += 1;
        let outcome = run.cycle(cycle, kills - run.totals.kills).await;
        let last = run.totals.kills >= kills;
        let outcome = match outcome {
            Ok(()) if last || cycle.is_multiple_of(refold_every) => run.refold_check().await,
            other => other,
        };
        if let Err(e) = outcome {
            eprintln!("{}", run.totals.summary(seed, started.elapsed()));
            let log = run.a.stderr();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(e.context(format!(
                "in cycle {cycle} of the crash loop (WEFT_CRASH_SEED={seed}); the end of A's \
                 latest log:\n{}",
                tail.join("\n")
            )));
        }
    }
    let summary = run.totals.summary(seed, started.elapsed());
    eprintln!("{summary}");
    ensure!(
        run.totals.lost == 0 && run.totals.duplicated == 0,
        "{summary}"
    );
    run.a.stop()?;
    run.b.stop()?;
    Ok(())
}

/// The two nodes, their actors and what has been verified so far.
struct CrashLoop {
    rng: StdRng,
    window_ms: u64,
    /// The victim.
    a: Weft,
    /// The peer, never killed.
    b: Weft,
    alice: Actor,
    bob: Actor,
    /// alice's log as verified so far.
    alice_log: LogView,
    /// alice's activities from this seq on reach bob (he follows her).
    deliverable_from: u64,
    /// Every content id A acknowledged for alice.
    acked: HashSet<String>,
    /// The latest of them (what her Endorses name).
    recent: Vec<String>,
    /// bob's notes (B acknowledged them all): each must reach alice.
    bob_notes: Vec<String>,
    /// bob's inbox on B and alice's on A.
    bob_inbox: InboxView,
    alice_inbox: InboxView,
    /// The follows with backfill whose result is not yet checked.
    follows: Vec<FollowCase>,
    projections: Vec<String>,
    totals: Totals,
}

impl std::fmt::Debug for CrashLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrashLoop").finish_non_exhaustive()
    }
}

impl CrashLoop {
    /// Two nodes; alice (A) and bob (B) follow each other.
    async fn set_up(seed: u64, window_ms: u64) -> anyhow::Result<Self> {
        let a = start_node().await?;
        let b = start_node().await?;
        let alice = actor(&a, "alice").await?;
        let bob = actor(&b, "bob").await?;
        publish(
            &a,
            &alice,
            json!({"type": "Follow", "object": bob.id, "to": [bob.id]}),
        )
        .await?;
        publish(
            &b,
            &bob,
            json!({"type": "Follow", "object": alice.id, "to": [alice.id]}),
        )
        .await?;
        crate::support::eventually(60, "alice and bob to follow each other", || async {
            let a_follows = collection(&a, "alice", "following").await?;
            let b_follows = collection(&b, "bob", "following").await?;
            let a_followers = collection(&a, "alice", "followers").await?;
            Ok((a_follows.contains(&json!(bob.id))
                && b_follows.contains(&json!(alice.id))
                && a_followers.contains(&json!(bob.id)))
            .then_some(()))
        })
        .await?;
        let registry = a.get_ok("/projections/define-registry", None).await?;
        let projections: Vec<String> = registry["projections"]
            .as_array()
            .context("the registry lists no projections")?
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect();
        ensure!(
            projections.iter().any(|p| p == "feed"),
            "no feed projection in {registry}"
        );
        let mut alice_log = LogView::default();
        alice_log.extend(&a, &alice).await?;
        let deliverable_from = alice_log.ids.len() as u64 + 1;
        let mut run = Self {
            rng: StdRng::seed_from_u64(seed),
            window_ms,
            bob_inbox: InboxView::default(),
            alice_inbox: InboxView::default(),
            a,
            b,
            alice,
            bob,
            alice_log,
            deliverable_from,
            acked: HashSet::new(),
            recent: Vec::new(),
            bob_notes: Vec::new(),
            follows: Vec::new(),
            projections,
            totals: Totals::default(),
        };
        run.bob_inbox.refresh(&run.b, &run.bob).await?;
        run.alice_inbox.refresh(&run.a, &run.alice).await?;
        Ok(run)
    }

    /// One kill: traffic, a SIGKILL at a random moment, a restart (now and
    /// then killed again while it starts), then the checks.
    async fn cycle(&mut self, cycle: usize, kills_left: usize) -> anyhow::Result<()> {
        // A fresh target on B with a public log, and a fresh follower on A
        // that will follow it with a full backfill during the traffic.
        let notes = if cycle.is_multiple_of(25) {
            // Now and then more than one outbox page (200).
            210
        } else {
            self.rng.gen_range(3..=20)
        };
        let target = actor(&self.b, &format!("carol-{cycle}")).await?;
        let mut public = Vec::new();
        for n in 0..notes {
            let draft = note(&format!("carol {cycle} note {n}"));
            public.push(publish(&self.b, &target, draft).await?);
        }
        let follower = actor(&self.a, &format!("follower-{cycle}")).await?;
        let case = FollowCase {
            follower,
            target,
            public,
        };

        // Traffic until the kill.
        let delay = Duration::from_millis(self.rng.gen_range(0..=self.window_ms));
        let stop = Arc::new(AtomicBool::new(false));
        let http = client()?;
        let mut publishers = Vec::new();
        for p in 0..PUBLISHERS {
            publishers.push(tokio::spawn(alice_publisher(
                http.clone(),
                self.a.base.clone(),
                self.alice.token.clone(),
                format!("cycle {cycle} publisher {p}"),
                self.recent.clone(),
                StdRng::seed_from_u64(self.rng.next_u64()),
                stop.clone(),
            )));
        }
        let bob_task = tokio::spawn(bob_publisher(
            self.b.http.clone(),
            self.b.base.clone(),
            self.bob.token.clone(),
            format!("cycle {cycle}"),
            StdRng::seed_from_u64(self.rng.next_u64()),
            stop.clone(),
        ));
        let follow_at = delay.mul_f64(self.rng.gen_range(0.0..1.0));
        let follow_task = tokio::spawn(delayed_post(
            http.clone(),
            format!("{}/activity", self.a.base),
            case.follower.token.clone(),
            follow_draft(&case.target),
            follow_at,
        ));
        let projection = self.projections[self.rng.gen_range(0..self.projections.len())].clone();
        let rebuild_at = delay.mul_f64(self.rng.gen_range(0.0..1.0));
        let rebuild_task = tokio::spawn(delayed_post(
            http.clone(),
            format!("{}/admin/projections/{projection}/rebuild", self.a.base),
            self.a.admin.clone(),
            json!({}),
            rebuild_at,
        ));
        tokio::time::sleep(delay).await;
        self.a.kill9()?;
        self.totals.kills += 1;
        stop.store(true, Ordering::SeqCst);

        let mut refusals = Vec::new();
        for task in publishers {
            let tally = task.await.context("a publisher panicked")?;
            self.totals.acked += tally.acked.len();
            self.totals.unavailable += tally.unavailable;
            self.recent.extend(tally.acked.iter().cloned());
            let stale = self.recent.len().saturating_sub(64);
            self.recent.drain(..stale);
            self.acked.extend(tally.acked);
            refusals.extend(
                tally
                    .stopped_by
                    .filter(|r| !r.starts_with("request failed")),
            );
        }
        let bob_notes = bob_task.await.context("bob's publisher panicked")??;
        self.bob_notes.extend(bob_notes);
        let follow = follow_task.await.context("the follow panicked")?;
        let rebuilt = rebuild_task.await.context("the rebuild panicked")?;
        ensure!(
            refusals.is_empty(),
            "A refused publishes while it was up: {refusals:?}"
        );
        if let Answer::Status(status, body) = &rebuilt {
            ensure!(*status == 200, "rebuilding {projection}: {status} {body}");
        }
        if !matches!(rebuilt, Answer::Status(..)) {
            self.totals.rebuilds_interrupted += 1;
        }

        // Now and then the node is killed again while it starts.
        if kills_left > 1 && self.rng.gen_bool(0.1) {
            let early = Duration::from_millis(self.rng.gen_range(0..=400));
            self.a.spawn_run()?;
            tokio::time::sleep(early).await;
            self.a.kill9()?;
            self.totals.kills += 1;
            self.totals.early_kills += 1;
        }

        // Recovery: the time until /health answers.
        let recovery = self.restart().await?;
        let (open_ms, full_repair) = store_opened(&self.a.stderr())?;
        self.totals.recoveries.push(recovery);
        self.totals.store_open_ms.push(open_ms);
        if full_repair {
            self.totals.full_repairs += 1;
        }
        ensure!(
            !full_repair,
            "after a SIGKILL redb repaired the whole file: quick repair is not in effect"
        );

        // The follow, if its answer was lost, is in the log or not at all.
        // (A 503 while the follower graph is rebuilt stored nothing.)
        match &follow {
            Answer::Status(201, _) => {}
            Answer::Status(status, body) if *status != 503 => {
                bail!("the follow was refused: {status} {body}")
            }
            _ => {
                self.totals.follows_interrupted += 1;
                let mut log = LogView::default();
                log.extend(&self.a, &case.follower).await?;
                if log.ids.len() < 2 {
                    let draft = follow_draft(&case.target);
                    let (a, follower) = (&self.a, &case.follower);
                    crate::support::eventually(60, "the follow to be published", || async {
                        let (status, body) = a.post_activity(&follower.token, &draft).await?;
                        ensure!(
                            status == 201 || status == 503,
                            "the follow was refused: {status} {body}"
                        );
                        Ok((status == 201).then_some(()))
                    })
                    .await?;
                }
            }
        }
        self.follows.push(case);

        self.settle_and_check(cycle, delay, recovery, open_ms).await
    }

    /// Starts A again on its data folder; answers how long it took to
    /// answer `/health`.
    async fn restart(&mut self) -> anyhow::Result<Duration> {
        self.a.http = client()?;
        let started = Instant::now();
        self.a.spawn_run()?;
        let url = format!("{}/health", self.a.base);
        loop {
            let answer = self
                .a
                .http
                .get(&url)
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return Ok(started.elapsed());
            }
            ensure!(
                started.elapsed() < LIVENESS,
                "A did not answer /health within {LIVENESS:?} of its restart; its log:\n{}",
                self.a.stderr()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until both nodes have delivered everything, then checks every
    /// invariant.
    async fn settle_and_check(
        &mut self,
        cycle: usize,
        delay: Duration,
        recovery: Duration,
        open_ms: u64,
    ) -> anyhow::Result<()> {
        // alice's log is complete now: nothing publishes as her.
        let fresh = self.alice_log.extend(&self.a, &self.alice).await?;
        let lost: Vec<&String> = self
            .acked
            .iter()
            .filter(|id| !self.alice_log.seqs.contains_key(*id))
            .collect();
        if !lost.is_empty() {
            self.totals.lost += lost.len();
            bail!(
                "{} acknowledged activities of alice are not in her log: {:?}",
                lost.len(),
                lost.iter().take(5).collect::<Vec<_>>()
            );
        }
        let acked_fresh = fresh.iter().filter(|id| self.acked.contains(*id)).count();
        self.totals.unacked_durable += fresh.len() - acked_fresh;

        let deliverable: Vec<String> =
            self.alice_log.ids[(self.deliverable_from as usize - 1)..].to_vec();
        let started = Instant::now();
        let mut rounds = 0;
        let settled = loop {
            rounds += 1;
            if self.settled(&deliverable).await? {
                break true;
            }
            if started.elapsed() > SETTLE {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let settle = started.elapsed();

        // Deliveries: none lost, none duplicated, nothing left over.
        let mut problems = String::new();
        let (missing_b, dup_b) = tally(&self.bob_inbox, &deliverable);
        let (missing_a, dup_a) = tally(&self.alice_inbox, &self.bob_notes);
        for (what, missing, dups, inbox) in [
            (
                "alice's activities in bob's inbox on B",
                &missing_b,
                dup_b,
                &self.bob_inbox,
            ),
            (
                "bob's notes in alice's inbox on A",
                &missing_a,
                dup_a,
                &self.alice_inbox,
            ),
        ] {
            if !missing.is_empty() {
                self.totals.lost += missing.len();
                let _ = writeln!(
                    problems,
                    "{what}: {} missing, e.g. {:?}",
                    missing.len(),
                    &missing[..missing.len().min(5)]
                );
            }
            let all_dups = inbox.duplicated();
            if dups > 0 || !all_dups.is_empty() {
                self.totals.duplicated += dups.max(all_dups.len());
                let _ = writeln!(problems, "{what}: duplicated {all_dups:?}");
            }
        }
        for (node, name) in [(&self.a, "A"), (&self.b, "B")] {
            let dead = node.get_ok("/admin/dead-letter", Some(&node.admin)).await?;
            if dead["totalItems"] != 0 {
                let _ = writeln!(problems, "{name} dead-lettered deliveries: {dead}");
            }
            let jobs = node.get_ok("/admin/deliveries", Some(&node.admin)).await?;
            if jobs["totalItems"] != 0 {
                let _ = writeln!(problems, "{name} still holds delivery jobs: {jobs}");
            }
            let forks = node.get_ok("/admin/forks", Some(&node.admin)).await?;
            if forks["totalItems"].as_u64().unwrap_or(0) != 0 {
                let _ = writeln!(problems, "{name} saw forks: {forks}");
            }
        }

        // Follows with backfill: each follower has its target's public log
        // in its inbox, each activity once.
        let mut done = Vec::new();
        for (i, case) in self.follows.iter().enumerate() {
            let inbox = InboxView::read(&self.a, &case.follower).await?;
            let (missing, dups) = tally(&inbox, &case.public);
            let following = collection(&self.a, &case.follower.name, "following").await?;
            if !following.contains(&json!(case.target.id)) {
                let _ = writeln!(
                    problems,
                    "{} does not follow {}: {following:?}",
                    case.follower.name, case.target.name
                );
            } else if !missing.is_empty() {
                self.totals.lost += missing.len();
                let _ = writeln!(
                    problems,
                    "{}'s backfill of {} lacks {} of {} activities",
                    case.follower.name,
                    case.target.name,
                    missing.len(),
                    case.public.len()
                );
            } else if dups > 0 || !inbox.duplicated().is_empty() {
                self.totals.duplicated += dups.max(1);
                let _ = writeln!(
                    problems,
                    "{}'s backfill of {} is duplicated: {:?}",
                    case.follower.name,
                    case.target.name,
                    inbox.duplicated()
                );
            } else {
                done.push(i);
            }
        }
        for i in done.into_iter().rev() {
            let case = self.follows.remove(i);
            self.totals.backfilled += case.public.len();
        }

        // Projections: caught up, with no failed folds.
        for name in &self.projections {
            let status = self
                .a
                .get_ok(&format!("/projections/{name}/status"), None)
                .await?;
            if !status["building"].is_null() {
                let _ = writeln!(problems, "projection {name} is still building: {status}");
            }
            if status["failed"].as_u64().unwrap_or(0) != 0 {
                let _ = writeln!(problems, "projection {name} has failed folds: {status}");
            }
        }

        println!(
            "cycle {cycle}: killed after {} ms of traffic; /health after {} ms (store open {open_ms} ms); \
             settled in {} ms ({rounds} rounds); alice's log {} (+{}), bob's notes {}",
            delay.as_millis(),
            recovery.as_millis(),
            settle.as_millis(),
            self.alice_log.ids.len(),
            fresh.len(),
            self.bob_notes.len(),
        );
        ensure!(
            problems.is_empty(),
            "after the kill in cycle {cycle} ({}):\n{problems}",
            if settled {
                "settled"
            } else {
                "not settled in time"
            }
        );
        self.totals.delivered_to_b = deliverable.len();
        self.totals.delivered_to_a = self.bob_notes.len();
        Ok(())
    }

    /// Whether both nodes have delivered everything there is to deliver
    /// and A has finished its follows and builds.
    async fn settled(&mut self, deliverable: &[String]) -> anyhow::Result<bool> {
        for node in [&self.a, &self.b] {
            let jobs = node.get_ok("/admin/deliveries", Some(&node.admin)).await?;
            if jobs["totalItems"] != 0 {
                return Ok(false);
            }
        }
        self.bob_inbox.refresh(&self.b, &self.bob).await?;
        self.alice_inbox.refresh(&self.a, &self.alice).await?;
        if deliverable.iter().any(|id| self.bob_inbox.count(id) == 0)
            || self
                .bob_notes
                .iter()
                .any(|id| self.alice_inbox.count(id) == 0)
        {
            return Ok(false);
        }
        for case in &self.follows {
            let inbox = InboxView::read(&self.a, &case.follower).await?;
            if case.public.iter().any(|id| inbox.count(id) == 0) {
                return Ok(false);
            }
        }
        for name in &self.projections {
            let status = self
                .a
                .get_ok(&format!("/projections/{name}/status"), None)
                .await?;
            if !status["building"].is_null() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// With A stopped (SIGTERM), each projection's stored state must equal
    /// what `weft projection rebuild` makes from the whole log. Also walks
    /// alice's whole log and reads both inboxes from the start, to check
    /// the views kept piece by piece.
    async fn refold_check(&mut self) -> anyhow::Result<()> {
        self.alice_log.rewalk(&self.a, &self.alice).await?;
        ensure!(
            InboxView::read(&self.a, &self.alice).await? == self.alice_inbox,
            "alice's inbox read whole differs from the one read piece by piece"
        );
        ensure!(
            InboxView::read(&self.b, &self.bob).await? == self.bob_inbox,
            "bob's inbox read whole differs from the one read piece by piece"
        );
        let started = Instant::now();
        self.a.stop()?;
        let path = self.a.data.join("weft.redb");
        let incremental = projection_state(&path)?;
        for name in &self.projections {
            let out = self.a.ok(&["projection", "rebuild", name])?;
            let folded: u64 = out
                .trim()
                .strip_prefix(&format!("rebuilt `{name}` from "))
                .and_then(|rest| rest.strip_suffix(" activities"))
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("`weft projection rebuild {name}` printed {out:?}"))?;
            ensure!(
                folded >= self.alice_log.ids.len() as u64,
                "rebuilding {name} folded {folded} activities, fewer than alice's log alone"
            );
        }
        let refolded = projection_state(&path)?;
        let mut problems = String::new();
        for name in &self.projections {
            let empty = BTreeMap::new();
            let before = incremental.get(name).unwrap_or(&empty);
            let after = refolded.get(name).unwrap_or(&empty);
            if before != after {
                let _ = writeln!(
                    problems,
                    "projection {name}: {} entries folded one by one, {} after a full refold; \
                     first differences: {:?}",
                    before.len(),
                    after.len(),
                    differences(before, after)
                );
            }
        }
        ensure!(problems.is_empty(), "{problems}");
        self.a.http = client()?;
        self.a.start().await?;
        self.totals.refolds += 1;
        println!(
            "refold check: {} projections ({} entries) equal a full refold of {} activities' log \
             ({} ms)",
            self.projections.len(),
            incremental.values().map(BTreeMap::len).sum::<usize>(),
            self.alice_log.ids.len(),
            started.elapsed().as_millis()
        );
        Ok(())
    }
}

/// (missing, duplicated): which of `expected` are not in `inbox`, and how
/// many are in it more than once.
fn tally(inbox: &InboxView, expected: &[String]) -> (Vec<String>, usize) {
    let missing = expected
        .iter()
        .filter(|id| inbox.count(id) == 0)
        .cloned()
        .collect();
    let dups = expected.iter().filter(|id| inbox.count(id) > 1).count();
    (missing, dups)
}

/// Up to five keys whose values differ (`None` = absent on that side).
fn differences(
    a: &BTreeMap<String, String>,
    b: &BTreeMap<String, String>,
) -> Vec<(String, Option<String>, Option<String>)> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .take(5)
        .map(|k| (k.clone(), a.get(k).cloned(), b.get(k).cloned()))
        .collect()
}

/// Every projection's stored entries, read from the (stopped) node's
/// store: projection → key → value.
fn projection_state(path: &Path) -> anyhow::Result<BTreeMap<String, BTreeMap<String, String>>> {
    let store =
        weft_store::Store::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // The generation of each projection that is served.
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (projection, key, value) in store.begin_read()?.kv_entries()? {
        out.entry(projection).or_default().insert(key, value);
    }
    Ok(out)
}

/// The store's startup line in a node's log: (ms to open the redb file,
/// whether it needed a full repair).
fn store_opened(log: &str) -> anyhow::Result<(u64, bool)> {
    let plain = strip_ansi(log);
    let line = plain
        .lines()
        .find(|l| l.contains("store opened"))
        .with_context(|| format!("no `store opened` line in A's log:\n{plain}"))?;
    let field = |name: &str| -> anyhow::Result<&str> {
        let start = line
            .find(&format!("{name}="))
            .with_context(|| format!("no {name} in {line:?}"))?
            + name.len()
            + 1;
        Ok(line[start..].split_whitespace().next().unwrap_or(""))
    };
    let open_ms = field("open_ms")?
        .parse()
        .with_context(|| format!("open_ms in {line:?}"))?;
    let repaired = field("full_repair")? == "true";
    Ok((open_ms, repaired))
}

/// `text` without ANSI escape sequences (the log is coloured).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn follow_draft(target: &Actor) -> Value {
    json!({
        "type": "Follow",
        "object": target.id,
        "to": [target.id],
        "backfill": {"mode": "full"},
    })
}

/// What a request came to.
#[derive(Debug)]
enum Answer {
    Status(u16, Value),
    /// The request failed (the node died).
    Failed(String),
}

async fn post(http: &reqwest::Client, url: &str, token: &str, body: &Value) -> Answer {
    match http.post(url).bearer_auth(token).json(body).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.json().await {
                Ok(body) => Answer::Status(status, body),
                Err(e) => Answer::Failed(format!("{status} with an unreadable body: {e}")),
            }
        }
        Err(e) => Answer::Failed(format!("request failed: {e}")),
    }
}

/// POSTs `body` after `wait`.
async fn delayed_post(
    http: reqwest::Client,
    url: String,
    token: String,
    body: Value,
    wait: Duration,
) -> Answer {
    tokio::time::sleep(wait).await;
    post(&http, &url, &token, &body).await
}

/// Publishes notes as alice, and now and then an Endorse of one of her
/// earlier notes, until a request fails or `stop` is set.
async fn alice_publisher(
    http: reqwest::Client,
    base: String,
    token: String,
    label: String,
    mut earlier: Vec<String>,
    mut rng: StdRng,
    stop: Arc<AtomicBool>,
) -> Tally {
    let mut tally = Tally::default();
    let url = format!("{base}/activity");
    for n in 0.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let draft = if !earlier.is_empty() && rng.gen_bool(0.15) {
            let object = &earlier[rng.gen_range(0..earlier.len())];
            let kind = if rng.gen_bool(0.5) { "like" } else { "share" };
            json!({"type": "Endorse", "object": object, "kind": kind, "to": [PUBLIC]})
        } else {
            note(&format!("{label} note {n}"))
        };
        match post(&http, &url, &token, &draft).await {
            Answer::Status(201, body) => {
                let id = cid(&body);
                earlier.push(id.clone());
                tally.acked.push(id);
            }
            // While the follower graph is rebuilt, who a publish reaches is
            // not known: the node says to try again shortly.
            Answer::Status(503, _) => tally.unavailable += 1,
            Answer::Status(status, body) => {
                tally.stopped_by = Some(format!("{status}: {body}"));
                break;
            }
            Answer::Failed(e) => {
                // A request cut by the kill may also fail with an
                // unreadable body; either way the node is gone.
                tally.stopped_by = Some(format!("request failed: {e}"));
                break;
            }
        }
        let pace = rng.gen_range(0..=PACE_MS);
        tokio::time::sleep(Duration::from_millis(pace)).await;
    }
    tally
}

/// Publishes bob's notes on B (which is never killed) until `stop` is set;
/// answers their content ids.
async fn bob_publisher(
    http: reqwest::Client,
    base: String,
    token: String,
    label: String,
    mut rng: StdRng,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let url = format!("{base}/activity");
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let draft = note(&format!("bob {label} note {n}"));
        match post(&http, &url, &token, &draft).await {
            Answer::Status(201, body) => {
                ids.push(cid_of(body["id"].as_str().unwrap_or("")).to_owned())
            }
            // Busy: nothing stored; the next note is tried instead.
            Answer::Status(503, _) => {}
            other => bail!("B refused bob's note: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(5..=40))).await;
    }
    Ok(ids)
}

/// With quick repair off (`WEFT_QUICK_REPAIR=false`), a node killed once
/// its writer has gone idle reopens without walking its store (the writer
/// saved the allocator state when it ran out of work), and keeps every
/// activity it acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_quick_repair_an_idle_node_reopens_without_a_full_repair() -> anyhow::Result<()> {
    let mut node = Weft::init()?;
    node.run_env("WEFT_QUICK_REPAIR", "false");
    node.start().await?;
    let alice = actor(&node, "alice").await?;
    let mut published = Vec::new();
    for n in 0..20 {
        published.push(publish(&node, &alice, note(&format!("note {n}"))).await?);
    }
    // The writer saves the allocator state once it has had nothing to do
    // for 200 ms: wait past that.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    node.kill9()?;
    node.start().await?;
    let (_, full_repair) = store_opened(&node.stderr())?;
    ensure!(
        !full_repair,
        "an idle node without quick repair needed a full repair:\n{}",
        node.stderr()
    );
    let mut view = LogView::default();
    let held = view.extend(&node, &alice).await?;
    for id in &published {
        ensure!(held.contains(id), "{id} was acknowledged but is gone");
    }
    node.stop()
}
