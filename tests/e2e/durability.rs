//! Durability and clean shutdown: an activity the node acknowledged with 201
//! is on disk. After SIGTERM the node exits 0 and every log holds exactly
//! what was acknowledged; after SIGKILL every acknowledged activity is still
//! there and every log is still a gap-free chain; a SIGKILL in the middle
//! of a rebuild leaves the old generation serving, and the rebuild resumes.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use crate::support::{Weft, cid, cid_of, note};

const ACTORS: usize = 4;

/// Creates `ACTORS` actors named `{prefix}-{i}` over HTTP; returns
/// (name, token) pairs.
async fn actors(weft: &Weft, prefix: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for i in 0..ACTORS {
        let name = format!("{prefix}-{i}");
        let (_, token) = weft.create_actor_http(&name).await?;
        out.push((name, token));
    }
    Ok(out)
}

/// What one publisher saw: the ids acknowledged with 201, and why it
/// stopped (if it stopped before its quota).
struct Tally {
    actor: usize,
    acked: Vec<String>,
    stopped_by: Option<String>,
}

/// Publishes as one actor until `quota` is reached (if any) or a request
/// fails; counts acknowledgements in `acked_total`.
async fn publisher(
    http: reqwest::Client,
    base: String,
    actor: usize,
    token: String,
    quota: Option<usize>,
    acked_total: Arc<AtomicUsize>,
) -> Tally {
    let mut acked = Vec::new();
    let mut n = 0usize;
    let stopped_by = loop {
        if quota.is_some_and(|q| n >= q) {
            break None;
        }
        n += 1;
        let sent = http
            .post(format!("{base}/activity"))
            .bearer_auth(&token)
            .json(&note(&format!("note {n} of actor {actor}")))
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => break Some(format!("request failed: {e}")),
        };
        let status = response.status();
        let body: Result<Value, _> = response.json().await;
        match body {
            Ok(body) if status == 201 => {
                let Some(id) = body["id"].as_str() else {
                    break Some(format!("201 without an id: {body}"));
                };
                acked.push(id.to_owned());
                acked_total.fetch_add(1, Ordering::SeqCst);
            }
            Ok(body) => break Some(format!("{status}: {body}")),
            Err(e) => break Some(format!("{status} with an unreadable body: {e}")),
        }
    };
    Tally {
        actor,
        acked,
        stopped_by,
    }
}

/// Starts `per_actor` publishers for each actor.
fn spawn_publishers(
    weft: &Weft,
    actors: &[(String, String)],
    per_actor: usize,
    quota: Option<usize>,
    acked_total: &Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<Tally>> {
    let mut tasks = Vec::new();
    for (a, (_, token)) in actors.iter().enumerate() {
        for _ in 0..per_actor {
            tasks.push(tokio::spawn(publisher(
                weft.http.clone(),
                weft.base.clone(),
                a,
                token.clone(),
                quota,
                acked_total.clone(),
            )));
        }
    }
    tasks
}

/// Waits for every publisher; returns the acknowledged ids per actor and
/// the reasons publishers stopped early.
async fn collect(
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
) -> anyhow::Result<(Vec<Vec<String>>, Vec<String>)> {
    let mut acked = vec![Vec::new(); ACTORS];
    let mut reasons = Vec::new();
    for task in tasks {
        let tally = task.await.context("a publisher panicked")?;
        acked[tally.actor].extend(tally.acked);
        reasons.extend(tally.stopped_by);
    }
    Ok((acked, reasons))
}

/// Waits until `counter` reaches `target` (or a deadline passes).
async fn wait_for(counter: &AtomicUsize, target: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while counter.load(Ordering::SeqCst) < target {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {target} publishes were acknowledged in time",
            counter.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// After a restart: every acknowledged id is served, every log is a
/// gap-free chain holding all acknowledged ids, and publishing continues at
/// the right position. Returns how many activities each log holds beyond
/// its Create.
async fn check_logs(
    weft: &Weft,
    actors: &[(String, String)],
    acked: &[Vec<String>],
) -> anyhow::Result<Vec<usize>> {
    let mut lengths = Vec::new();
    for ((name, token), acked) in actors.iter().zip(acked) {
        for id in acked {
            let path = format!("/activities/{}", cid_of(id));
            let (status, body) = weft.get(&path, None).await?;
            assert_eq!(status, 200, "acknowledged {id} of {name} is gone: {body}");
            assert_eq!(body["id"], id.as_str());
        }
        let log = weft.walk_log(name, token).await?;
        let ids: HashSet<&str> = log.iter().filter_map(|a| a["id"].as_str()).collect();
        for id in acked {
            assert!(
                ids.contains(id.as_str()),
                "{id} is missing from {name}'s log"
            );
        }
        assert_eq!(
            log[0]["type"], "Create",
            "{name}'s log starts with its Create"
        );
        let outbox = weft
            .get_ok(&format!("/actors/{name}/outbox"), Some(token))
            .await?;
        assert_eq!(
            outbox["totalItems"],
            log.len(),
            "{name}'s outbox counts its log"
        );

        // The node continues the chain where it left off.
        let (status, next) = weft.post_activity(token, &note("after restart")).await?;
        assert_eq!(status, 201, "{next}");
        assert_eq!(next["seq"], log.len() + 1);
        assert_eq!(next["prev"], cid(&log[log.len() - 1]));
        lengths.push(log.len() - 1);
    }
    Ok(lengths)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_cleanly_and_keeps_exactly_what_was_acknowledged() -> anyhow::Result<()> {
    const PER_ACTOR: usize = 50;
    const WRITERS: usize = 5;
    let mut weft = Weft::init()?;
    weft.start().await?;

    // 4 actors x 50 publishes, 5 concurrent writers per actor, then SIGTERM.
    let actors_a = actors(&weft, "load").await?;
    let total = Arc::new(AtomicUsize::new(0));
    let tasks = spawn_publishers(&weft, &actors_a, WRITERS, Some(PER_ACTOR / WRITERS), &total);
    let (acked, reasons) = collect(tasks).await?;
    assert!(reasons.is_empty(), "every publish succeeds: {reasons:?}");
    for ids in &acked {
        assert_eq!(ids.len(), PER_ACTOR);
    }
    weft.stop()?; // SIGTERM, exit status 0
    weft.start().await?;
    let lengths = check_logs(&weft, &actors_a, &acked).await?;
    assert_eq!(
        lengths,
        vec![PER_ACTOR; ACTORS],
        "each log holds exactly the acknowledged activities"
    );
    for (name, token) in &actors_a {
        let outbox = weft
            .get_ok(&format!("/actors/{name}/outbox"), Some(token))
            .await?;
        assert_eq!(
            outbox["totalItems"],
            PER_ACTOR + 2,
            "Create + notes + one more"
        );
    }

    // SIGTERM while requests are in flight: they finish, the node exits 0,
    // and nothing unacknowledged was kept.
    let actors_b = actors(&weft, "storm").await?;
    let total = Arc::new(AtomicUsize::new(0));
    let tasks = spawn_publishers(&weft, &actors_b, 4, None, &total);
    wait_for(&total, 100).await?;
    weft.stop()?;
    let (acked, _) = collect(tasks).await?;
    weft.start().await?;
    let lengths = check_logs(&weft, &actors_b, &acked).await?;
    let acked_lengths: Vec<usize> = acked.iter().map(Vec::len).collect();
    assert_eq!(
        lengths, acked_lengths,
        "after a clean shutdown under load each log holds exactly the acknowledged activities"
    );
    weft.stop()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_activity() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    weft.start().await?;
    let actors = actors(&weft, "load").await?;
    let total = Arc::new(AtomicUsize::new(0));
    let tasks = spawn_publishers(&weft, &actors, 4, None, &total);
    wait_for(&total, 300).await?;
    // An actor created just before the crash keeps its secret key.
    let (_, late_token) = weft.create_actor_http("late").await?;

    weft.kill9()?;
    let (acked, reasons) = collect(tasks).await?;
    assert!(
        reasons
            .iter()
            .all(|r| r.starts_with("request failed") || r.contains("unreadable body")),
        "publishers stop only because the node is gone: {reasons:?}"
    );
    weft.start().await?;
    let lengths = check_logs(&weft, &actors, &acked).await?;
    for (length, acked) in lengths.iter().zip(&acked) {
        // A publish may be durable but unacknowledged when the node dies.
        assert!(
            *length >= acked.len() && *length <= acked.len() + 4,
            "a log holds {length} activities for {} acknowledged by 4 publishers",
            acked.len()
        );
    }
    let (status, body) = weft.post_activity(&late_token, &note("survived")).await?;
    assert_eq!(
        status, 201,
        "an actor created before the crash can publish: {body}"
    );
    assert_eq!(body["seq"], 2);
    weft.stop()?;
    Ok(())
}

#[tokio::test]
async fn sigterm_as_soon_as_the_port_accepts_is_a_clean_shutdown() -> anyhow::Result<()> {
    // A supervisor that sees the port open and then stops the node must get
    // a clean shutdown (exit 0) — not a process killed by SIGTERM's default
    // action, nor a node that ignores the signal and keeps running. The
    // window is small, so try many times.
    const TRIES: usize = 30;
    let mut weft = Weft::init()?;
    let (mut killed, mut ignored) = (0, 0);
    for _ in 0..TRIES {
        weft.spawn_run()?;
        weft.wait_listening()?;
        match weft.terminate_within(Duration::from_secs(5))? {
            Some(status) if status.success() => {}
            Some(_) => killed += 1,
            None => ignored += 1,
        }
    }
    assert_eq!(
        (killed, ignored),
        (0, 0),
        "of {TRIES} nodes sent SIGTERM as soon as their port accepted, {killed} were killed by it \
         and {ignored} ignored it (still running 5 s later)"
    );
    Ok(())
}

/// SIGKILL in the middle of a rebuild: the node starts again serving the
/// generation it served before (alice's whole feed), still rebuilding;
/// the rebuild resumes from its last step and swaps in an equal feed.
#[tokio::test]
async fn sigkill_during_a_rebuild_keeps_serving_the_old_generation() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    // One activity per step: a rebuild of a few hundred takes a while.
    weft.run_env("WEFT_RUNTIME__BUILD_STEP", "1");
    weft.start().await?;
    let (alice, token) = weft.create_actor_http("alice").await?;
    for i in 0..400 {
        let (status, body) = weft.post_activity(&token, &note(&format!("n{i}"))).await?;
        anyhow::ensure!(status == 201, "{body}");
    }
    let feed = format!("/projections/feed?actor={alice}&limit=100");
    let before = weft.get_ok(&feed, Some(&token)).await?;
    anyhow::ensure!(
        before["items"].as_array().is_some_and(|i| i.len() == 100),
        "{before}"
    );

    let rebuild = {
        let (http, url, admin) = (
            weft.http.clone(),
            format!("{}/admin/projections/feed/rebuild", weft.base),
            weft.admin.clone(),
        );
        tokio::spawn(async move { http.post(url).bearer_auth(admin).send().await })
    };
    weft_test_support::poll::eventually_every(
        Duration::from_millis(5),
        10,
        "the rebuild under way",
        async || {
            let status = weft.get_ok("/projections/feed/status", None).await?;
            let folded = status["building"]["folded"].as_u64().unwrap_or(0);
            Ok((status["rebuilding"] == true && folded > 20).then_some(()))
        },
    )
    .await?;
    weft.kill9()?;
    rebuild.abort();

    weft.start().await?;
    let status = weft.get_ok("/projections/feed/status", None).await?;
    anyhow::ensure!(
        status["rebuilding"] == true && status["generation"] == 0,
        "after the kill it still serves generation 0 and rebuilds: {status}"
    );
    anyhow::ensure!(
        weft.get_ok(&feed, Some(&token)).await? == before,
        "the feed served during the rebuild differs"
    );
    let status = weft_test_support::eventually(60, "the swap", async || {
        let status = weft.get_ok("/projections/feed/status", None).await?;
        Ok((status["rebuilding"] == false).then_some(status))
    })
    .await?;
    anyhow::ensure!(status["generation"] == 1, "{status}");
    anyhow::ensure!(
        weft.get_ok(&feed, Some(&token)).await? == before,
        "the rebuilt feed differs"
    );
    Ok(())
}
