//! Hostile modules against a real node: each case loads or calls a module
//! that tries to take more than its share — time, memory, stack, tables,
//! host work, compile time, state between calls — and checks that the call
//! ends with a message that names the limit, within a bounded time and
//! memory of the node process, and that nothing else changed: the log and
//! every projection when the activity is refused, the misbehaving
//! projection's state when only its fold failed.
//!
//! Every case prints a row (case, wall time, growth of the node's peak
//! resident memory); the time bound asserted is a liveness bound far above
//! the design figure (≈ 40 ms), not a measurement: speed is measured by
//! `weft bench`. A hostile module arriving from a peer (parked, its
//! artifact neither fetched nor compiled before admission) is covered by
//! `host/tests/modules/travel.rs`.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use super::support::{PUBLIC, Weft};

/// Linear memory a call may hold in this test's node.
const MEMORY: u64 = 16 << 20;
/// Largest artifact this test's node accepts: small enough that the
/// node's 413 always reaches the client before its connection is closed.
const ARTIFACT: usize = 2 << 20;
/// Slack over the memory cap for the host's own allocations in a call.
const SLACK: u64 = 2 << 20;
/// A call taking longer than this is not bounded at all.
const LIVENESS: Duration = Duration::from_secs(5);

/// A component built from `tests/guests/` by build.rs.
fn guest(name: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(format!("{}/{name}.wasm", weft_test_guests::DIR))
        .with_context(|| format!("test guest {name}"))
}

/// Resident memory of `pid`: (current, peak) in bytes.
fn rss(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .context("a number")?
            .parse()?;
        Ok(kib << 10)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// A row of the table this test prints.
struct Row {
    case: &'static str,
    wall: Duration,
    growth: u64,
}

/// Runs `attack` against the node `pid`, measuring its wall time and the
/// growth of the node's peak resident memory (the peak is reset first,
/// `clear_refs` 5); fails past the liveness bound or `bound` bytes.
async fn measure<T>(
    pid: u32,
    case: &'static str,
    bound: u64,
    attack: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, Row)> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .context("cannot reset the node's peak RSS")?;
    let (before, _) = rss(pid)?;
    let started = Instant::now();
    let out = attack.await?;
    let wall = started.elapsed();
    let (_, peak) = rss(pid)?;
    let growth = peak.saturating_sub(before);
    ensure!(wall < LIVENESS, "{case}: took {wall:?}");
    ensure!(
        growth <= bound,
        "{case}: the node's peak RSS grew by {growth} bytes, over {bound}"
    );
    Ok((out, Row { case, wall, growth }))
}

/// The node's HTTP API as alice and as the admin.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
    admin: String,
}

impl Api {
    async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn get_ok(&self, path: &str) -> anyhow::Result<Value> {
        let (status, body) = self.get(path).await?;
        ensure!(status == 200, "GET {path}: {status} {body}");
        Ok(body)
    }

    async fn digest(&self) -> anyhow::Result<Value> {
        self.get_ok("/admin/digest").await
    }

    async fn publish(self, draft: Value) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(format!("{}/activity", self.base))
            .bearer_auth(&self.token)
            .json(&draft)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// Uploads `bytes` and defines a module of them as the node's service
    /// actor: the status and body of the definition, or of the upload if
    /// that was refused.
    async fn define(self, kind: &str, name: &str, bytes: Vec<u8>) -> anyhow::Result<(u16, Value)> {
        // The node answers an over-size upload with 413 before reading it
        // all and closes the connection; on a loaded machine the client may
        // still be writing then and see the close instead of the answer.
        // Such an upload is sent again (it changes nothing either way).
        let mut tries = 0;
        let response = loop {
            let sent = self
                .http
                .post(format!("{}/artifacts", self.base))
                .bearer_auth(&self.admin)
                .body(bytes.clone())
                .send()
                .await;
            match sent {
                Ok(response) => break response,
                // Whatever way the close shows (a request error, a broken
                // pipe while writing the body), the answer is sent again.
                Err(_) if tries < 20 && bytes.len() > ARTIFACT => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status != 201 {
            return Ok((status, body));
        }
        let draft = json!({"type": kind, "name": name, "module": body["id"], "to": [PUBLIC]});
        let response = self
            .http
            .post(format!("{}/actors/node/outbox", self.base))
            .bearer_auth(&self.admin)
            .json(&draft)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }
}

/// The `detail` of a problem+json body.
fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or_default()
}

/// A core module implementing the `verb` world by hand (the node makes it
/// a component), whose `validate` runs `body`.
fn wat_verb(body: &str) -> String {
    format!(
        r#"(module
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (global $next (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $next) (i32.const 7)) (i32.const -8)))
    (global.set $next (i32.add (local.get $p) (local.get 3)))
    (block $ok
      (br_if $ok (i32.le_u (global.get $next) (i32.mul (memory.size) (i32.const 65536))))
      (drop (memory.grow (i32.add (i32.shr_u (global.get $next) (i32.const 16)) (i32.const 1)))))
    (local.get $p))
  (func (export "validate")
    (param i32 i32 i32 i32 i32 i32 i32 i32 i64 i32 i32 i32 i32 i32) (result i32)
    {body}
    (i32.store (i32.const 16) (i32.const 0))
    (i32.const 16))
  (func (export "react")
    (param i32 i32 i32 i32 i32 i32 i32 i32 i64 i32 i32 i32 i32 i32 i32 i32) (result i32)
    (i32.store (i32.const 16) (i32.const 0))
    (i32.store (i32.const 20) (i32.const 0))
    (i32.const 16)))"#
    )
}

#[tokio::test]
async fn hostile_modules_are_stopped_within_bounds_and_change_nothing() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    let toml_path = weft.data.join("weft.toml");
    let toml = std::fs::read_to_string(&toml_path)?;
    let toml = toml
        .lines()
        .map(|line| match line.split(" = ").next() {
            Some("memory_bytes") => format!("memory_bytes = {MEMORY}"),
            Some("max_artifact_bytes") => format!("max_artifact_bytes = {ARTIFACT}"),
            Some("workers") => "workers = 2".to_owned(),
            Some("worker_queue") => "worker_queue = 4".to_owned(),
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&toml_path, toml)?;
    weft.start().await?;
    let (_, token) = weft.create_actor_http("alice").await?;
    let (bob, bob_token) = weft.create_actor_http("bob").await?;
    let pid = weft.pid().context("the node is not running")?;
    let api = Api {
        // No pooled connections: a refused upload's connection is closed
        // by the node, and a pooled one could be reused just as it closes.
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(30))
            .build()?,
        base: weft.base.clone(),
        token,
        admin: weft.admin.clone(),
    };
    let mut rows = Vec::new();
    let (status, body) = api
        .clone()
        .define("DefineActivity", "Misbehave", guest("weft-test-misbehave")?)
        .await?;
    ensure!(status == 201, "{body}");
    let (status, body) = api
        .clone()
        .define("DefineProjection", "flaky", guest("weft-test-flaky")?)
        .await?;
    ensure!(status == 201, "{body}");
    let bound = MEMORY + SLACK;

    // Refused activities: the verb's `validate` misbehaves; the log and
    // every projection stay exactly as they were.
    for (case, content, expect) in [
        ("infinite loop in validate", "spin", "ran out of fuel"),
        ("memory growth to the cap", "hog", "over its limit"),
        (
            "stack overflow by recursion",
            "deep",
            "call stack exhausted",
        ),
        ("a 100 MB return string", "huge", "over its limit"),
        ("panic", "panic", "unreachable"),
        ("unreachable", "unreachable", "unreachable"),
    ] {
        let before = api.digest().await?;
        let draft = json!({"type": "Misbehave", "object": {"content": content}});
        let ((status, body), row) = measure(pid, case, bound, api.clone().publish(draft)).await?;
        rows.push(row);
        ensure!(status == 422, "{case}: {status} {body}");
        ensure!(detail(&body).contains(expect), "{case}: {body}");
        ensure!(api.digest().await? == before, "{case} changed the node");
    }

    // Failed folds: the activity is valid, so it is logged; the failing
    // projection keeps none of the fold's writes.
    for (case, content, expect) in [
        ("infinite loop in fold", "spin", "fuel"),
        ("fold writing past max_write_bytes", "overwrite", "budget"),
        ("a key past the key size limit", "longkey", "limit"),
        ("1M small kv writes in one fold", "many", "fuel"),
        ("kv scan abuse", "scan", "fuel"),
        ("trap in fold", "trap", "unreachable"),
    ] {
        let before = api.digest().await?;
        let draft = json!({"type": "Create", "object": {"type": "Note", "content": content}});
        let ((status, body), row) = measure(pid, case, bound, api.clone().publish(draft)).await?;
        rows.push(row);
        ensure!(status == 201, "{case}: {status} {body}");
        let after = api.digest().await?;
        ensure!(
            after["projections"]["flaky"] == before["projections"]["flaky"],
            "{case}: the failed fold's writes were kept"
        );
        let records = |d: &Value| d["log"]["records"]["entries"].as_u64().unwrap_or(0);
        ensure!(records(&after) == records(&before) + 1, "{case}: {after}");
        let status = api.get_ok("/projections/flaky/status").await?;
        ensure!(
            status.to_string().contains(expect),
            "{case}: the failure is not recorded: {status}"
        );
    }

    // A query that loops: 502, nothing changes.
    let before = api.digest().await?;
    let ((status, body), row) = measure(
        pid,
        "infinite loop in query",
        bound,
        api.get("/projections/flaky/spin"),
    )
    .await?;
    rows.push(row);
    ensure!(status == 502, "query spin: {status} {body}");
    ensure!(detail(&body).contains("fuel"), "{body}");
    ensure!(api.digest().await? == before, "a query changed the node");

    // `react` that loops, and one that asks for a thousand intents: the
    // activity is kept, the loop is stopped, the flood capped.
    let draft = json!({"type": "Misbehave", "object": {"content": "react-spin"}, "to": [bob]});
    let ((status, body), row) = measure(
        pid,
        "infinite loop in react",
        bound,
        api.clone().publish(draft),
    )
    .await?;
    rows.push(row);
    ensure!(status == 201, "react spin: {status} {body}");
    let draft = json!({"type": "Misbehave", "object": {"content": "react-flood"}, "to": [bob]});
    let ((status, body), row) = measure(
        pid,
        "a thousand intents from react",
        bound,
        api.clone().publish(draft),
    )
    .await?;
    rows.push(row);
    ensure!(status == 201, "react flood: {status} {body}");
    let reactions = super::support::eventually(30, "bob's reactions", || async {
        let log = weft.walk_log("bob", &bob_token).await?;
        Ok((log.len() > 1).then_some(log.len() - 1))
    })
    .await?;
    // Let the reactions settle: there must never be more than the cap.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reactions = reactions.max(weft.walk_log("bob", &bob_token).await?.len() - 1);
    ensure!(
        reactions <= 16,
        "react had {reactions} activities published"
    );

    // State in globals: every call starts from a fresh instance, so a
    // verb that refuses a second call never sees one, and a projection
    // folds alike in a rebuild.
    for _ in 0..2 {
        let draft = json!({"type": "Misbehave", "object": {"content": "remember"}});
        let (status, body) = api.clone().publish(draft).await?;
        ensure!(status == 201, "remember: {status} {body}");
    }
    for _ in 0..3 {
        let draft = json!({"type": "Create", "object": {"type": "Note", "content": "remember"}});
        let (status, body) = api.clone().publish(draft).await?;
        ensure!(status == 201, "remember: {status} {body}");
    }
    let remembered = api.get_ok("/projections/flaky/remember").await?;
    ensure!(remembered["remember"] == 1, "{remembered}");
    let incremental = api.digest().await?["projections"]["flaky"].clone();
    let response = api
        .http
        .post(format!("{}/admin/projections/flaky/rebuild", api.base))
        .bearer_auth(&api.admin)
        .send()
        .await?;
    ensure!(response.status() == 200, "rebuild: {}", response.status());
    super::support::eventually(30, "the rebuild", || async {
        let (status, body) = api.get("/projections/flaky/status").await?;
        Ok((status == 200 && body["state"] != "building").then_some(()))
    })
    .await?;
    ensure!(
        api.digest().await?["projections"]["flaky"] == incremental,
        "a rebuild folded differently from incremental folding"
    );

    // Artifacts refused before they run: each leaves the node as it was.
    let table = wat::parse_str(wat_verb(
        "(loop $l (drop (table.grow $t (ref.null func) (i32.const 65536))) (br $l))",
    ))?;
    // The command line makes a component of the core module.
    let table_path = weft.tmp().join("tables.wasm");
    std::fs::write(&table_path, table)?;
    let path = table_path.to_str().context("a UTF-8 path")?;
    weft.ok(&["module", "add", "verb", "Tables", path])?;
    let before = api.digest().await?;
    let ((status, body), row) = measure(
        pid,
        "table growth",
        bound,
        api.clone().publish(json!({"type": "Tables"})),
    )
    .await?;
    rows.push(row);
    ensure!(status == 422, "tables: {status} {body}");
    ensure!(detail(&body).contains("elements"), "{body}");
    ensure!(
        api.digest().await? == before,
        "table growth changed the node"
    );

    let bomb_body = "(drop (i32.const 1))".repeat(400_000);
    let bomb = wat::parse_str(format!("(component (core module (func {bomb_body})))"))?;
    for (case, bytes, code, expect) in [
        (
            "an import outside the contract",
            wat::parse_str("(component (import \"weft:module/secrets@0.1.0\" (instance)))")?,
            422,
            "outside the weft:module contract",
        ),
        (
            "a WASI import",
            wat::parse_str("(component (import \"wasi:cli/environment@0.2.0\" (instance)))")?,
            422,
            "wasi:cli/environment",
        ),
        (
            "an invalid binary",
            b"\0asm\x0d\0\x01\0 not really".to_vec(),
            400,
            "",
        ),
        ("an over-size artifact", vec![0u8; ARTIFACT + 1], 413, ""),
        ("a compile bomb", bomb, 400, "max_function_bytes"),
    ] {
        let before = api.digest().await?;
        // The request body itself is held (up to the artifact limit).
        let ((status, body), row) = measure(
            pid,
            case,
            bound + ARTIFACT as u64,
            api.clone().define("DefineActivity", "Refused", bytes),
        )
        .await?;
        rows.push(row);
        ensure!(status == code, "{case}: {status} {body}");
        ensure!(detail(&body).contains(expect), "{case}: {body}");
        let mut after = api.digest().await?;
        if code == 422 {
            // The upload was a success of its own (an artifact is any
            // component); the definition refused is what must change nothing.
            let mut before = before.clone();
            for d in [&mut before, &mut after] {
                if let Some(modules) = d["modules"].as_object_mut() {
                    modules.remove("artifacts");
                }
            }
            ensure!(after == before, "{case} changed the node");
        } else {
            ensure!(after == before, "{case} changed the node");
        }
    }

    // Many instances at once: a flood of memory hogs and loops holds at
    // most one instance per worker; the rest wait, or are refused with 503.
    // One actor's publishes are taken one at a time; a flood comes from many.
    let mut floods = Vec::new();
    for i in 0..8 {
        let (_, token) = weft.create_actor_http(&format!("flood{i}")).await?;
        floods.push(Api {
            token,
            ..api.clone()
        });
    }
    let before = api.digest().await?;
    let (flood, row) = measure(pid, "many instances at once", 2 * bound, async {
        let mut calls = Vec::new();
        for i in 0..40 {
            let content = if i % 2 == 0 { "hog" } else { "spin" };
            calls.push(tokio::spawn(floods[i % floods.len()].clone().publish(
                json!({"type": "Misbehave", "object": {"content": content}}),
            )));
        }
        let mut codes = Vec::new();
        for call in calls {
            codes.push(call.await??.0);
        }
        Ok(codes)
    })
    .await?;
    rows.push(row);
    ensure!(
        flood.iter().all(|c| *c == 422 || *c == 503),
        "flood: {flood:?}"
    );
    ensure!(
        flood.contains(&503),
        "a full pool refused nothing: {flood:?}"
    );
    ensure!(api.digest().await? == before, "the flood changed the node");
    let (status, body) = api
        .clone()
        .publish(json!({"type": "Misbehave", "object": {"content": "fine"}}))
        .await?;
    ensure!(status == 201, "after the flood: {status} {body}");

    println!("\n{:<40} {:>10} {:>12}", "case", "wall ms", "RSS growth");
    for row in &rows {
        println!(
            "{:<40} {:>10.1} {:>9} KiB",
            row.case,
            row.wall.as_secs_f64() * 1000.0,
            row.growth >> 10
        );
    }
    ensure!(rows.len() >= 17, "only {} cases ran", rows.len());
    weft.stop()
}
