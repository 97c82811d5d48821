//! What an operator runs into (issue 24): start-up that leaves nothing
//! half-made (a busy port on the first start, a `public_url` that would move
//! the ids, commands that must reach the node owning the data folder), the
//! everyday commands (`weft status`, `actor list`, `actor token`,
//! `projection status`), `/readyz`, a reader that closes the pipe early,
//! logs written for files and log collectors, and the configuration (the
//! commented file, any key from the environment, `weft config show`).
//!
//! Not here: the other CLI journeys (`cli.rs`) and the dashboard.

use std::io::Read;
use std::process::Stdio;

use anyhow::Context;
use serde_json::Value;

use crate::support::{Weft, admin_token_from, note, publish};

/// A busy port on the first start: nothing is initialised, so a start on
/// a free port makes ids under that one.
#[tokio::test]
async fn a_first_start_that_cannot_listen_leaves_nothing_behind() -> anyhow::Result<()> {
    let mut weft = Weft::uninitialised()?;
    let squatter = std::net::TcpListener::bind(weft.listen())?;
    let err = weft.fails(&["run", "--listen", &weft.listen()])?;
    assert!(err.contains("cannot listen on"), "{err}");
    assert!(
        !weft.data.join("weft.redb").exists() && !weft.data.join("admin.token").exists(),
        "a failed first start made a node"
    );
    assert!(!err.contains("admin token"), "printed a token: {err}");
    drop(squatter);
    weft.start().await?;
    weft.admin = admin_token_from(&weft.stdout())?;
    let node = weft.get_ok("/actors/node", None).await?;
    assert_eq!(node["id"], format!("{}/actors/node", weft.base));
    weft.stop()?;
    Ok(())
}

/// Actor ids are fixed under the URL the node was initialised with: a
/// `public_url` that differs is refused with the one to put back.
#[tokio::test]
async fn public_url_cannot_move_under_existing_ids() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    let toml = weft.data.join("weft.toml");
    let kept = std::fs::read_to_string(&toml)?;
    std::fs::write(
        &toml,
        format!("public_url = \"https://elsewhere.example\"\n{kept}"),
    )?;
    let err = weft.fails(&["run", "--listen", &weft.listen()])?;
    assert!(
        err.contains("https://elsewhere.example")
            && err.contains(&weft.base)
            && err.contains("cannot move"),
        "the refusal names both URLs: {err}"
    );
    let err = weft.fails(&["actor", "list"])?;
    assert!(err.contains("cannot move"), "the CLI refuses it too: {err}");
    std::fs::write(&toml, &kept)?;
    weft.start().await?;
    let node = weft.get_ok("/actors/node", None).await?;
    assert_eq!(node["id"], format!("{}/actors/node", weft.base));
    weft.stop()?;
    Ok(())
}

/// `weft actor create` goes to the address the running node recorded,
/// not to a port `weft.toml` names where something else listens.
#[tokio::test]
async fn commands_reach_the_node_that_owns_the_folder() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    weft.start().await?;
    let impostor = std::net::TcpListener::bind("127.0.0.1:0")?;
    impostor.set_nonblocking(true)?;
    let toml = weft.data.join("weft.toml");
    let kept = std::fs::read_to_string(&toml)?;
    std::fs::write(
        &toml,
        kept.replace(&weft.listen(), &impostor.local_addr()?.to_string()),
    )?;
    let (id, _) = weft.create_actor("bob")?;
    assert_eq!(id, format!("{}/actors/bob", weft.base));
    assert!(
        impostor.accept().is_err(),
        "the command connected to what listens at weft.toml's address"
    );
    weft.get_ok("/actors/bob", None).await?;
    weft.stop()?;
    std::fs::write(&toml, &kept)?;
    assert!(
        !weft.data.join("serving.addr").exists(),
        "a stopped node leaves no address behind"
    );
    Ok(())
}

/// The everyday commands and endpoints: status, actors, a new token that
/// revokes the old, projection status, readiness.
#[tokio::test]
async fn status_actors_tokens_and_readiness() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    weft.start().await?;
    let (alice, old_token) = weft.create_actor("alice")?;
    publish(&weft, &old_token, note("hello")).await?;

    let (status, body) = weft.get("/readyz", None).await?;
    assert_eq!(status, 200, "{body}");
    let (status, _) = weft.get("/admin/status", None).await?;
    assert_eq!(status, 401, "the status is the operator's");

    let status: Value = serde_json::from_str(&weft.ok(&["status", "--json"])?)?;
    assert_eq!(status["ready"], true, "{status}");
    assert_eq!(status["actors"], 2, "node and alice: {status}");
    assert!(
        status["activities"].as_u64().unwrap_or_default() >= 2,
        "{status}"
    );
    let feed = status["projections"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "feed"))
        .context("no feed projection in the status")?;
    assert_eq!(feed["state"], "ready", "{feed}");
    let memory = &status["memory"];
    assert!(
        memory["residentBytes"].as_u64().unwrap_or_default() > 1 << 20
            && memory["peakResidentBytes"].as_u64() >= memory["residentBytes"].as_u64()
            && memory["pageCacheBytes"].as_u64().unwrap_or_default() >= 16 << 20,
        "{memory}"
    );
    // The node turns transparent huge pages off for its process: with them,
    // memory the first start's module compilation freed stayed resident
    // (168 MB after a fresh start, against 82 MB without).
    if cfg!(target_os = "linux") {
        let pid = weft.pid().context("the node runs")?;
        let proc_status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        if let Some(thp) = proc_status.lines().find(|l| l.starts_with("THP_enabled:")) {
            assert_eq!(
                thp.split_whitespace().nth(1),
                Some("0"),
                "the node runs with transparent huge pages: {thp}"
            );
        }
    }
    let text = weft.ok(&["status"])?;
    assert!(
        text.contains("ready") && text.contains("actors 2"),
        "{text}"
    );
    assert!(text.contains("MiB resident"), "{text}");
    let metrics = weft
        .http
        .get(format!("{}/metrics", weft.base))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("process_resident_memory_bytes "),
        "{metrics}"
    );
    assert!(text.contains("projection feed"), "{text}");

    let list = weft.ok(&["actor", "list"])?;
    assert!(list.contains("alice") && list.contains(&alice), "{list}");
    assert!(list.contains("node"), "{list}");

    let out = weft.ok(&["actor", "token", "alice"])?;
    let new_token = out
        .rsplit(' ')
        .next()
        .map(str::trim)
        .context("no token printed")?
        .to_owned();
    assert!(out.contains("revoked"), "{out}");
    let (status, _) = weft
        .post_activity(&old_token, &note("with the old token"))
        .await?;
    assert_eq!(status, 401, "the old token still works");
    let (status, body) = weft
        .post_activity(&new_token, &note("with the new one"))
        .await?;
    assert_eq!(status, 201, "{body}");
    let err = weft.fails(&["actor", "token", "nobody"])?;
    assert!(err.contains("nobody"), "{err}");

    let projections = weft.ok(&["projection", "status"])?;
    assert!(
        projections.contains("feed") && projections.contains("ready"),
        "{projections}"
    );
    let feed = weft.ok(&["projection", "status", "feed"])?;
    assert!(feed.contains("feed:") && feed.contains("folded"), "{feed}");
    weft.stop()?;
    Ok(())
}

/// A reader that goes away before the output (`weft … | head -0`) ends
/// the command quietly: no panic, no backtrace.
#[tokio::test]
async fn output_to_a_closed_pipe_ends_quietly() -> anyhow::Result<()> {
    let weft = Weft::init()?;
    let mut child = weft
        .command(&["actor", "list"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .context("no stderr")?
        .read_to_string(&mut stderr)?;
    let status = child.wait()?;
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(status.success(), "{status}: {stderr}");
    Ok(())
}

/// Logs to a file carry no colour codes; `--log-format json` writes one
/// JSON object per line.
#[tokio::test]
async fn logs_are_plain_off_a_terminal_and_json_on_request() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    weft.start().await?;
    weft.stop()?;
    let log = weft.stderr();
    assert!(log.contains("weft is serving"), "{log}");
    assert!(!log.contains('\u{1b}'), "ANSI escapes in a log file: {log}");

    weft.run_args = vec!["--log-format".into(), "json".into()];
    weft.start().await?;
    weft.stop()?;
    let log = weft.stderr();
    let mut serving = false;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value =
            serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?;
        assert!(entry["level"].is_string(), "{entry}");
        serving |= entry["fields"]["message"] == "weft is serving";
    }
    assert!(serving, "no `weft is serving` entry: {log}");
    Ok(())
}

/// `weft module add` against a built-in asks for `--replace`, `module
/// rollback` goes back, `module list` shows the history, metadata carries
/// over, a projection failing every fold of its dry run needs `--force`,
/// and a file that is not WebAssembly is named as such.
#[tokio::test]
async fn module_management_is_safe_and_reversible() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    weft.start().await?;
    let verb = format!("{}/weft-test-misbehave.wasm", weft_test_guests::DIR);
    let projection = format!("{}/weft-test-flaky.wasm", weft_test_guests::DIR);

    let err = weft.fails(&["module", "add", "verb", "Note", &verb])?;
    assert!(
        err.contains("built-in") && err.contains("--replace"),
        "{err}"
    );
    let err = weft.fails(&["module", "add", "verb", "Create", &verb])?;
    assert!(err.contains("interpreted by the kernel"), "{err}");
    let err = weft.fails(&["module", "add", "projection", "Note", &projection])?;
    assert!(err.contains("is a verb"), "{err}");
    let readme = weft.write_file("README.md", "# not a module\n")?;
    let err = weft.fails(&["module", "add", "verb", "Poll", &readme.to_string_lossy()])?;
    assert!(err.contains("not a WebAssembly file"), "{err}");
    assert!(err.lines().count() <= 2, "a short message: {err}");

    weft.ok(&["module", "add", "verb", "Note", &verb, "--replace"])?;
    let list = weft.ok(&["module", "list"])?;
    assert!(list.contains("earlier v1"), "the history is listed: {list}");
    let out = weft.ok(&["module", "rollback", "Note"])?;
    assert!(out.contains("rolled back to version 1"), "{out}");
    let registry: Value = serde_json::from_str(&weft.ok(&["module", "list", "--json"])?)?;
    let note_verb = registry["verbs"]
        .as_array()
        .and_then(|v| v.iter().find(|m| m["name"] == "Note"))
        .cloned()
        .context("no Note verb")?;
    assert_eq!(note_verb["version"], 3, "{note_verb}");
    assert_eq!(
        note_verb["module"], note_verb["history"][0]["module"],
        "{note_verb}"
    );
    assert_eq!(
        note_verb["description"], note_verb["history"][0]["description"],
        "{note_verb}"
    );

    // A new version keeps what it does not give.
    weft.ok(&[
        "module",
        "add",
        "verb",
        "Poll",
        &verb,
        "--language",
        "rust",
        "--description",
        "polls",
    ])?;
    weft.ok(&["module", "add", "verb", "Poll", &verb])?;
    let registry: Value = serde_json::from_str(&weft.ok(&["module", "list", "--json"])?)?;
    let poll = registry["verbs"]
        .as_array()
        .and_then(|v| v.iter().find(|m| m["name"] == "Poll"))
        .cloned()
        .context("no Poll verb")?;
    assert_eq!(
        (poll["version"].clone(), poll["language"].clone()),
        (2.into(), "rust".into()),
        "{poll}"
    );
    assert_eq!(poll["description"], "polls", "{poll}");

    // Every fold of the dry run fails: refused, unless --force.
    let (_, token) = weft.create_actor("alice")?;
    for _ in 0..100 {
        publish(&weft, &token, note("fail")).await?;
    }
    let err = weft.fails(&["module", "add", "projection", "flaky", &projection])?;
    assert!(
        err.contains("failed every fold")
            && err.contains("failed on purpose")
            && err.contains("--force"),
        "{err}"
    );
    let (status, _) = weft.get("/projections/flaky/status", None).await?;
    assert_eq!(status, 404, "a refused projection was defined");
    let out = weft.cli(&[
        "module",
        "add",
        "projection",
        "flaky",
        &projection,
        "--force",
    ])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("defined anyway"));
    weft.get_ok("/projections/flaky/status", None).await?;
    weft.stop()?;
    Ok(())
}

/// `weft init` writes a commented `weft.toml` (every key with its value and
/// meaning); any key can be set from the environment by its path; `weft
/// config show` prints what is in effect, and a value a key cannot take
/// stops a start naming the variable.
#[tokio::test]
async fn the_configuration_is_commented_overridable_and_shown() -> anyhow::Result<()> {
    let weft = Weft::init()?;
    let file = std::fs::read_to_string(weft.data.join("weft.toml"))?;
    for line in [
        "# fuel (about WebAssembly instructions) per module call",
        "fuel_per_call = 40000000",
        "[server.rate_limit]",
        "# public_url = ",
    ] {
        assert!(
            file.contains(line),
            "{line:?} missing from weft.toml:\n{file}"
        );
    }
    let shown = weft.ok(&["config", "show"])?;
    assert!(shown.contains("build_step = 2000"), "{shown}");

    let mut cmd = weft.command(&["config", "show", "--json"]);
    cmd.env("WEFT_RUNTIME__BUILD_STEP", "7")
        .env("WEFT_SERVER__RATE_LIMIT__PER_IP_BURST", "9");
    let out = cmd.output()?;
    anyhow::ensure!(out.status.success(), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(json["runtime"]["build_step"], 7, "{json}");
    assert_eq!(json["server"]["rate_limit"]["per_ip_burst"], 9, "{json}");

    let mut run = weft.command(&["run"]);
    run.env("WEFT_RUNTIME__DEADLINE_MS", "soon");
    let out = run.output()?;
    assert!(!out.status.success(), "a start with a bad value succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WEFT_RUNTIME__DEADLINE_MS=soon"),
        "the error names the variable: {stderr}"
    );
    Ok(())
}
