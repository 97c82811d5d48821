//! `weft-bench` (run as `weft bench …`): a load tool that drives a running
//! node over HTTP with many concurrent publishers spread over many actors,
//! then checks that every log is complete, and prints throughput and latency
//! percentiles; `--inbox` and `--fanout` measure federation, `--sync`
//! anti-entropy catching up, `--fold` one projection fold in-process,
//! `--reconcile` set reconciliation between two store files in-process.
//!
//! It measures; it asserts nothing about speed. It is a binary of its own,
//! not part of the node's `weft` binary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

mod federation;
mod origin;
mod setsync;
mod sync;

use clap::Parser;
use weft::cli::node::DataDir;
use weft_core::model::PUBLIC;

/// glibc's allocator showed up in every thread's profile under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// weft-bench: measure a weft node (`weft bench …` runs this).
#[derive(Debug, Parser)]
#[command(name = "weft bench", version, about)]
struct Cli {
    /// The node's data folder (for its address and admin token).
    #[arg(long, env = "WEFT_DATA", default_value = "weft-data")]
    data: std::path::PathBuf,
    #[command(flatten)]
    args: BenchArgs,
}

/// Prints the node's resident memory now and at its peak (from `GET
/// /admin/status`), with the activities it holds.
async fn print_node_memory(base: &str, admin: &str) {
    let status: Option<Value> = async {
        reqwest::Client::new()
            .get(format!("{base}/admin/status"))
            .bearer_auth(admin)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }
    .await;
    let Some(status) = status else {
        println!("node memory: unknown (GET /admin/status did not answer)");
        return;
    };
    let mib = |v: &Value| v.as_u64().unwrap_or_default() as f64 / (1 << 20) as f64;
    let memory = &status["memory"];
    println!(
        "node memory: {:.0} MiB resident, peak {:.0} MiB, page cache {:.0} MiB, holding {} activities",
        mib(&memory["residentBytes"]),
        mib(&memory["peakResidentBytes"]),
        mib(&memory["pageCacheBytes"]),
        status["activities"]
    );
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let data = DataDir::new(cli.data);
    weft::main_with("warn", weft::LogFormat::Text, async move {
        run(&data, cli.args).await
    })
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The node's base URL (default: `http://{listen}` from weft.toml).
    #[arg(long)]
    pub url: Option<String>,
    /// The admin token (default: the data folder's `admin.token`).
    #[arg(long, env = "WEFT_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// Concurrent publishers (in-flight requests).
    #[arg(long, default_value_t = 64)]
    pub publishers: usize,
    /// Actors to spread the publishers over (created for the run).
    #[arg(long, default_value_t = 64)]
    pub actors: usize,
    /// How long to publish for, in seconds.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Instead of publishing over HTTP, measure the cost of one warm fold of
    /// each built-in projection, in-process (no node needed).
    #[arg(long)]
    pub fold: bool,
    /// Folds per projection in `--fold` mode.
    #[arg(long, default_value_t = 20_000)]
    pub iterations: usize,
    /// In `--fold` mode, measure the projection component in FILE on the
    /// cases of the built-in projection NAME instead of the built-in
    /// (`NAME=FILE`, repeatable), and only those cases, run as the node
    /// runs its built-ins: a projection's author compares a build of it
    /// against the built-in's figures.
    #[arg(long = "projection", value_name = "NAME=FILE", requires = "fold", value_parser = parse_replacement)]
    pub projections: Vec<(String, std::path::PathBuf)>,
    /// Post pre-signed activities of remote actors to an inbox instead
    /// (`--publishers` senders, `--actors` remote actors, `--count` activities).
    #[arg(long, conflicts_with = "fold")]
    pub inbox: bool,
    /// Activities in `--inbox` mode.
    #[arg(long, default_value_t = 100_000)]
    pub count: usize,
    /// With `--inbox`: ActivityPub activities without a weft proof, each
    /// request HTTP-signed (draft-cavage, RSA), as Mastodon delivers.
    #[arg(long, requires = "inbox")]
    pub foreign: bool,
    /// Measure anti-entropy: the node follows a stand-in actor it missed
    /// `--count` activities of, and one reconcile pass catches up.
    #[arg(long, conflicts_with_all = ["fold", "inbox", "fanout"])]
    pub sync: bool,
    /// Measure delivery fan-out: `--followers` remote followers on `--peers`
    /// stand-in origins, `--rounds` rounds of `--notes` public notes.
    #[arg(long, conflicts_with_all = ["fold", "inbox"])]
    pub fanout: bool,
    #[arg(long, default_value_t = 10)]
    pub peers: usize,
    #[arg(long, default_value_t = 1000)]
    pub followers: usize,
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Public notes published per `--fanout` round.
    #[arg(long, default_value_t = 1)]
    pub notes: usize,
    /// Measure set reconciliation (negentropy) between two store files of
    /// `--items` activities each that differ by `--diff`, in-process (no
    /// node needed).
    #[arg(long, conflicts_with_all = ["fold", "inbox", "fanout"])]
    pub reconcile: bool,
    /// Activities on each side in `--reconcile` mode.
    #[arg(long, default_value_t = 1_000_000)]
    pub items: usize,
    /// The fraction of them that differs (half missing on each side).
    #[arg(long, default_value_t = 0.01)]
    pub diff: f64,
    /// Largest negentropy message, in bytes (`[federation] sync_frame_bytes`).
    #[arg(long, default_value_t = 64 << 10)]
    pub frame: u64,
}

pub async fn run(data: &DataDir, args: BenchArgs) -> anyhow::Result<()> {
    if args.fold {
        return tokio::task::spawn_blocking(move || fold_bench(args.iterations, &args.projections))
            .await?;
    }
    if args.reconcile {
        return tokio::task::spawn_blocking(move || {
            setsync::reconcile(args.items, args.diff, args.frame)
        })
        .await?;
    }
    if args.publishers == 0 || args.actors == 0 {
        bail!("--publishers and --actors must be at least 1");
    }
    let base = match &args.url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("http://{}", data.config()?.listen),
    };
    let admin = match &args.admin_token {
        Some(token) => token.clone(),
        None => data.admin_token()?,
    };
    if args.inbox {
        let run = federation::inbox(
            &base,
            &admin,
            args.publishers,
            args.actors,
            args.count,
            args.foreign,
        )
        .await;
        print_node_memory(&base, &admin).await;
        return run;
    }
    if args.sync {
        let run = sync::sync(&base, &admin, args.count).await;
        print_node_memory(&base, &admin).await;
        return run;
    }
    if args.fanout {
        let run = federation::fanout(
            &base,
            &admin,
            args.peers,
            args.followers,
            args.rounds,
            args.notes,
        )
        .await;
        print_node_memory(&base, &admin).await;
        return run;
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.publishers)
        .timeout(Duration::from_secs(30))
        .build()?;

    let run_id = std::process::id();
    let mut actors = Vec::with_capacity(args.actors);
    for i in 0..args.actors {
        let name = format!("bench-{run_id}-{i}");
        let response = http
            .post(format!("{base}/actors"))
            .bearer_auth(&admin)
            .json(&json!({"name": name}))
            .send()
            .await
            .with_context(|| format!("cannot reach {base}"))?;
        if !response.status().is_success() {
            bail!(
                "creating {name} failed: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        let body: Value = response.json().await?;
        let token = body["token"]
            .as_str()
            .context("no token in the answer")?
            .to_owned();
        actors.push((name, token));
    }
    let actors = Arc::new(actors);
    let draft = Arc::new(
        json!({"type": "Create", "object": {"type": "Note", "content": "a benchmark note of ordinary length, about a tweet or so, with some words in it"}, "to": [PUBLIC]})
            .to_string(),
    );

    let addr = base
        .strip_prefix("http://")
        .context("--url must be an http:// URL")?
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    eprintln!(
        "publishing to {base} for {}s with {} publishers over {} actors…",
        args.seconds, args.publishers, args.actors
    );
    let before = writer_seconds(&http, &base).await;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.publishers);
    for p in 0..args.publishers {
        let (actors, draft, addr) = (actors.clone(), draft.clone(), addr.clone());
        tasks.push(tokio::spawn(async move {
            publisher(p, &addr, &actors, &draft, deadline).await
        }));
    }
    let mut latencies = Vec::new();
    let mut per_actor = vec![0u64; actors.len()];
    let mut errors = 0;
    for task in tasks {
        let (l, counts, e) = task.await??;
        latencies.extend(l);
        for (total, n) in per_actor.iter_mut().zip(counts) {
            *total += n;
        }
        errors += e;
    }
    let elapsed = started.elapsed();
    let count = latencies.len();
    println!(
        "published {count} activities in {:.2}s: {:.0} activities/s ({errors} errors)",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    rate_limit_hint();
    print_latency(&mut latencies);
    print_writer(&http, &base, before, count).await;
    print_node_memory(&base, &admin).await;

    // Every acknowledged activity must be in its actor's log, without gaps.
    for ((name, token), published) in actors.iter().zip(&per_actor) {
        let outbox: Value = http
            .get(format!("{base}/actors/{name}/outbox"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        let total = outbox["totalItems"].as_u64().unwrap_or(0);
        if total != published + 1 {
            bail!(
                "{name}'s log holds {total} activities but {published} publishes (plus its Create) were acknowledged"
            );
        }
    }
    println!(
        "checked: all {} logs hold exactly the acknowledged activities",
        actors.len()
    );
    Ok(())
}

/// Median cost of one warm fold per built-in projection, as the writer
/// runs it: a fold session per batch of 100 distinct activities in one
/// write transaction, each fold's writes applied to the store. Each
/// projection is measured on activities it acts on and on one it ignores.
/// The transactions are aborted, so every round starts from the same state.
fn fold_bench(iterations: usize, replaced: &[(String, std::path::PathBuf)]) -> anyhow::Result<()> {
    use weft_core::model::Signed;
    use weft_runtime::{Activities, Folded, Limits, ProjectionModule, Runtime};
    use weft_store::{ModuleKind, Store};

    const BATCH: usize = 100;
    let dir = std::env::temp_dir().join(format!("weft-fold-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| -> anyhow::Result<()> {
        let store = Store::open(&dir.join(weft_store::FILE_NAME))?;
        let runtime = Arc::new(Runtime::new(Limits::default(), dir.join("modules"))?);
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let actor = "http://127.0.0.1:9/actors/alice";
        let sign = |body: Value, seq: u64| -> anyhow::Result<Signed> {
            let mut json = body;
            if json.get("actor").is_none() {
                json["actor"] = actor.into();
            }
            json["seq"] = seq.into();
            json["prev"] = weft_core::model::cid::activity_id(&seq.to_le_bytes()).into();
            json["published"] = "2026-11-21T05:00:00.000Z".into();
            let Value::Object(map) = json else {
                bail!("not an object")
            };
            Ok(Signed::sign(map, &format!("{actor}#key-1"), &key)?)
        };
        // BATCH distinct activities of one shape.
        let batch = |make: &dyn Fn(usize) -> Value| -> anyhow::Result<Vec<Signed>> {
            (0..BATCH).map(|i| sign(make(i), i as u64 + 2)).collect()
        };
        let notes = batch(
            &|i| json!({"type": "Create", "object": {"type": "Note", "content": format!("note {i}")}, "to": [PUBLIC]}),
        )?;
        // The same but for the first, each by an actor of another server
        // and addressed to the local one, as an inbox receives them: a
        // fold that reads something per author (the feed, the author's
        // followers) reads it for each. (The first, by the local actor,
        // is the first the feed folds, which tells it its node's origin.)
        let inbound = batch(&|i| {
            let mut note = json!({"type": "Create", "object": {"type": "Note", "content": format!("note {i}")}, "to": [PUBLIC, actor]});
            if i > 0 {
                note["actor"] = format!("http://10.0.{}.{}/actors/a", i / 256, i % 256).into();
            }
            note
        })?;
        let ids: Vec<String> = notes.iter().map(|n| n.id.clone()).collect();
        let follows = batch(
            &|i| json!({"type": "Follow", "object": format!("http://127.0.0.1:9/actors/bob{i}")}),
        )?;
        let endorses = batch(&|i| json!({"type": "Endorse", "object": ids[i], "kind": "like"}))?;
        // (projection, case, the activities' verb, activities)
        let cases: [(&str, &str, &str, &[Signed]); 7] = [
            ("feed", "Note", "Note", &notes),
            ("feed", "inbound Note", "Note", &inbound),
            ("feed", "Follow", "Follow", &follows),
            ("follower-graph", "Follow", "Follow", &follows),
            ("follower-graph", "Note", "Note", &notes),
            ("endorsements", "Endorse", "Endorse", &endorses),
            ("endorsements", "Note", "Note", &notes),
        ];
        println!(
            "warm fold cost: median over {} batches of {BATCH} distinct activities, writes applied:",
            (iterations / BATCH).max(1)
        );
        // Every module measured stays loaded to the end, so that code of
        // one is never placed where an earlier one's was: with
        // `WEFT_PERFMAP=1`, perf would name it after the earlier one.
        let mut measured = Vec::new();
        for (name, case, verb, activities) in cases {
            let replacement = replaced.iter().find(|(n, _)| n == name);
            if !replaced.is_empty() && replacement.is_none() {
                continue;
            }
            let bytes: Vec<u8> = match replacement {
                Some((_, file)) => std::fs::read(file)
                    .with_context(|| format!("read the component {}", file.display()))?,
                None => weft_genesis::GENESIS
                    .iter()
                    .find(|(world, n, _)| *world == "projection" && *n == name)
                    .context("a genesis projection")?
                    .2
                    .to_vec(),
            };
            let id = weft_core::model::cid::artifact_id(&bytes);
            // Compiled and kept as the node runs its built-in modules.
            let component = runtime.compile_for(
                ModuleKind::Projection,
                &id,
                &bytes,
                weft_runtime::Reuse::Warm,
            )?;
            let module = ProjectionModule::new(
                runtime.clone(),
                name,
                &id,
                &component,
                runtime.limits().budget(None, None),
                weft_runtime::Reuse::Warm,
            )?;
            // The same module as the node runs it: passed only the
            // activity types its definition says it folds.
            let filtered = weft_genesis::FOLDS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, kinds)| kinds.iter().map(|k| (*k).to_owned()).collect());
            let filtered = ProjectionModule::new(
                runtime.clone(),
                name,
                &id,
                &component,
                runtime.limits().budget(None, None),
                weft_runtime::Reuse::Warm,
            )?
            .folding_only(filtered);
            let jsons: Vec<String> = activities.iter().map(Signed::to_json_string).collect();
            let mut run = Activities::new();
            for (activity, json) in activities.iter().zip(&jsons) {
                run.push(&activity.id, json, false);
            }
            let texts = run.texts();
            // (whole fold, of which applying the writes at session end)
            let round = |module: &ProjectionModule| -> anyhow::Result<(Duration, Duration)> {
                let txn = store.begin_write()?;
                let started = Instant::now();
                let mut session = module.session(txn, store.recent_ids().clone())?;
                // The activities are not in this store: a fold that reads
                // one's JSON gets it from the run.
                session.with_texts(texts.clone());
                for folded in session.fold(&run)? {
                    match folded {
                        Folded::Applied => {}
                        Folded::Refused(e) => bail!("{name}: {e}"),
                        Folded::Fault(e) => bail!("{name}: {e}"),
                    }
                }
                let folded = Instant::now();
                let txn = session.finish()?;
                let applied = folded.elapsed();
                let elapsed = started.elapsed();
                txn.abort()?;
                let n = run.len() as u32;
                Ok((elapsed / n, applied / n))
            };
            let median = |mut v: Vec<Duration>| {
                v.sort();
                v[v.len() / 2].as_secs_f64() * 1e6
            };
            let measure = |module: &ProjectionModule| -> anyhow::Result<(f64, f64)> {
                round(module)?;
                let rounds = (0..(iterations / BATCH).max(1))
                    .map(|_| round(module))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Ok((
                    median(rounds.iter().map(|r| r.0).collect()),
                    median(rounds.iter().map(|r| r.1).collect()),
                ))
            };
            let (fold, apply) = measure(&module)?;
            print!(
                "  {name:<16} {case:<12} {fold:>6.2} µs per fold, of which {apply:>5.2} µs applying its writes"
            );
            if filtered.folds(verb) {
                println!();
            } else {
                let (fold, _) = measure(&filtered)?;
                println!("; not passed to it (its `folds`): {fold:>5.2} µs");
            }
            measured.push((module, filtered));
        }
        drop(measured);
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A `--projection NAME=FILE`.
fn parse_replacement(arg: &str) -> Result<(String, std::path::PathBuf), String> {
    let (name, file) = arg
        .split_once('=')
        .ok_or("expected NAME=FILE, e.g. endorsements=target/endorsements.wasm")?;
    let builtin: Vec<&str> = weft_genesis::GENESIS
        .iter()
        .filter(|(world, _, _)| *world == "projection")
        .map(|(_, name, _)| *name)
        .collect();
    if !builtin.contains(&name) {
        return Err(format!(
            "`{name}` is no built-in projection: NAME is one of {}",
            builtin.join(", ")
        ));
    }
    Ok((name.to_owned(), file.into()))
}

/// Prints the writer's time per activity since `before`.
async fn print_writer(
    http: &reqwest::Client,
    base: &str,
    before: Option<std::collections::HashMap<String, f64>>,
    count: usize,
) {
    if let (Some(before), Some(after)) = (before, writer_seconds(http, base).await)
        && count > 0
    {
        let per = |phase: &str| {
            let spent = after.get(phase).copied().unwrap_or(0.0)
                - before.get(phase).copied().unwrap_or(0.0);
            spent / count as f64 * 1e6
        };
        let commits = after.get("commits").copied().unwrap_or(0.0)
            - before.get("commits").copied().unwrap_or(0.0);
        println!(
            "writer, per activity: append {:.1} µs, fold {:.1} µs, react {:.1} µs, commit {:.1} µs ({:.1} activities per commit)",
            per("append"),
            per("fold"),
            per("react"),
            per("commit"),
            count as f64 / commits.max(1.0)
        );
    }
}

/// Prints p50, p90, p99 and max of `latencies` (sorted in place).
fn print_latency(latencies: &mut [Duration]) {
    latencies.sort();
    let count = latencies.len();
    let pct = |p: f64| {
        latencies
            .get(((count as f64 * p) as usize).min(count.saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(pct(0.5)),
        ms(pct(0.9)),
        ms(pct(0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );
}

/// `host:port` of an `http://` base URL.
fn authority(base: &str) -> anyhow::Result<String> {
    Ok(base
        .strip_prefix("http://")
        .context("--url must be an http:// URL")?
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned())
}

/// Answers of 429 (the node's rate limits) seen by [`exchange`].
static RATE_LIMITED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Says so when the node's rate limits refused some of the load: the
/// figures then measure the limits, not the node.
fn rate_limit_hint() {
    let limited = RATE_LIMITED.swap(0, std::sync::atomic::Ordering::Relaxed);
    if limited > 0 {
        eprintln!(
            "note: {limited} requests were refused with 429 by the node's rate limits; to measure throughput, run the node with WEFT_RATE_LIMIT=off (or `per_ip_per_second = 0` and `per_origin_per_second = 0` under [server.rate_limit] in weft.toml)"
        );
    }
}

/// Writes one request on a keep-alive connection and reads the response
/// (head, then exactly Content-Length bytes); answers the status code.
async fn exchange(
    stream: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
    request: &[u8],
) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    stream.write_all(request).await?;
    buf.clear();
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the node closed the connection");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).context("response head is not UTF-8")?;
    let status = head.split(' ').nth(1).unwrap_or_default().to_owned();
    if status == "429" {
        RATE_LIMITED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .context("response without Content-Length")?;
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the node closed the connection mid-body");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

/// The node's `weft_writer_seconds_total` by phase, and its commits
/// (`commits`), if it serves them.
async fn writer_seconds(
    http: &reqwest::Client,
    base: &str,
) -> Option<std::collections::HashMap<String, f64>> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let phases = text
        .lines()
        .filter_map(|line| {
            if let Some(value) = line.strip_prefix("weft_commits_total ") {
                return Some(("commits".to_owned(), value.parse().ok()?));
            }
            let (phase, value) = line
                .strip_prefix("weft_writer_seconds_total{phase=\"")?
                .split_once("\"} ")?;
            Some((phase.to_owned(), value.parse().ok()?))
        })
        .collect::<std::collections::HashMap<_, _>>();
    (!phases.is_empty()).then_some(phases)
}

type Tally = (Vec<Duration>, Vec<u64>, u64);

/// One publisher: a keep-alive HTTP/1.1 connection posting drafts in turn
/// for each actor until `deadline`. A hand-rolled client keeps the load
/// generator's own CPU use small, since it shares the machine with the node.
async fn publisher(
    first: usize,
    addr: &str,
    actors: &[(String, String)],
    draft: &str,
    deadline: Instant,
) -> anyhow::Result<Tally> {
    let requests: Vec<Vec<u8>> = actors
        .iter()
        .map(|(_, token)| {
            format!(
                "POST /activity HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{draft}",
                draft.len()
            )
            .into_bytes()
        })
        .collect();
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let mut latencies = Vec::new();
    let mut per_actor = vec![0u64; actors.len()];
    let mut errors = 0u64;
    let mut buf = Vec::with_capacity(4096);
    let mut i = first;
    while Instant::now() < deadline {
        let a = i % actors.len();
        i += 1;
        let sent = Instant::now();
        let status = exchange(&mut stream, &mut buf, &requests[a]).await?;
        if status == "201" {
            latencies.push(sent.elapsed());
            per_actor[a] += 1;
        } else {
            errors += 1;
        }
    }
    Ok((latencies, per_actor, errors))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
