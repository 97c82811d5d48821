//! Modules in Python, JavaScript and C (issue 5): each test builds an example
//! or an SDK template from source with its SDK's build script (which installs
//! the pinned toolchain from the registries on first use), defines it on a
//! running node with `weft module add`, publishes activities and checks the
//! query answer. The scripts build for `weft:module@0.2.0`, or for 0.1.0 with
//! `WEFT_WIT=0.1.0`: a Python module written against 0.1.0 (a fixture, the
//! 0.1.0 template) runs beside the 0.2.0 template.
//!
//! A test skips, saying why, only when its toolchain cannot be installed
//! (the build script exits with status 3).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, ensure};
use serde_json::json;

use crate::support::{PUBLIC, Weft, cid, note, publish};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The Python SDK's template as it was for weft:module@0.1.0 (module `app`).
const PYTHON_0_1_0: &str = "tests/e2e/fixtures/python-0.1.0";

/// Runs an SDK build script for the default contract (0.2.0); `None` when
/// its toolchain cannot be installed.
fn build(script: &str, args: &[&str]) -> anyhow::Result<Option<()>> {
    build_for(None, script, args)
}

/// Runs an SDK build script with `WEFT_WIT` set to `wit` (unset for
/// `None`, whatever the test run's environment says); `None` when its
/// toolchain cannot be installed.
fn build_for(wit: Option<&str>, script: &str, args: &[&str]) -> anyhow::Result<Option<()>> {
    let mut command = Command::new(root().join(script));
    command.args(args).env_remove("WEFT_WIT");
    if let Some(wit) = wit {
        command.env("WEFT_WIT", wit);
    }
    let out = command
        .output()
        .with_context(|| format!("cannot run {script}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        eprintln!("SKIPPED: {script}: the toolchain cannot be installed here: {stderr}");
        return Ok(None);
    }
    ensure!(
        out.status.success(),
        "{script} {args:?} failed: {}\n{stderr}",
        out.status
    );
    Ok(Some(()))
}

#[tokio::test]
async fn a_python_projection_counts_words() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    let wasm = weft.tmp().join("wordcount.wasm");
    let wasm_arg = wasm.to_str().context("utf-8 path")?;
    if build("examples/python-wordcount/build.sh", &[wasm_arg])?.is_none() {
        return Ok(());
    }
    weft.start().await?;
    let (alice, token) = weft.create_actor_http("alice").await?;
    publish(&weft, &token, note("Hello <b>world</b>, hello weft")).await?;
    let out = weft.ok(&[
        "module",
        "add",
        "projection",
        "wordcount",
        wasm_arg,
        "--language",
        "python",
        "--description",
        "words per actor",
    ])?;
    ensure!(
        out.contains("defined DefineProjection `wordcount`"),
        "{out}"
    );
    // Defined after a note: it folded the log so far. One more note.
    publish(&weft, &token, note("hello again")).await?;
    let counts = weft
        .get_ok(&format!("/projections/wordcount/actor?actor={alice}"), None)
        .await?;
    assert_eq!(counts["notes"], 2, "{counts}");
    assert_eq!(counts["words"], 6, "{counts}");
    assert_eq!(counts["top"][0], json!(["hello", 3]), "{counts}");
    let (status, body) = weft.get("/projections/wordcount/actor", None).await?;
    assert_eq!(status, 400, "{body}");
    let status = weft.get_ok("/projections/wordcount/status", None).await?;
    assert_eq!(status["failed"], 0, "{status}");
    let list = weft.ok(&["module", "list"])?;
    ensure!(list.contains("[python] words per actor"), "{list}");
    Ok(())
}

/// A Python projection that calls print() in its fold (modules have no
/// standard output) is refused by `module add`'s dry run with a message
/// that names the print, not a wasm backtrace.
#[tokio::test]
async fn a_python_print_in_a_fold_is_named_as_such() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    let src = weft.tmp().join("printing");
    std::fs::create_dir_all(&src)?;
    let original = std::fs::read_to_string(root().join("examples/python-wordcount/wordcount.py"))?;
    let printing = original.replacen(
        "        try:\n            self._fold(activity)",
        "        print(\"folding\", activity.id)\n        try:\n            self._fold(activity)",
        1,
    );
    ensure!(
        printing != original,
        "the example's fold changed: update this test"
    );
    std::fs::write(src.join("wordcount.py"), printing)?;
    let wasm = weft.tmp().join("printing.wasm");
    let (src_arg, wasm_arg) = (
        src.to_str().context("utf-8 path")?,
        wasm.to_str().context("utf-8 path")?,
    );
    if build(
        "sdk/python/build.sh",
        &["projection", src_arg, "wordcount", wasm_arg],
    )?
    .is_none()
    {
        return Ok(());
    }
    weft.start().await?;
    let (_, token) = weft.create_actor_http("alice").await?;
    publish(&weft, &token, note("hello")).await?;
    let err = weft.fails(&["module", "add", "projection", "printing", wasm_arg])?;
    assert!(
        err.contains("print()") && err.contains("no standard output"),
        "{err}"
    );
    assert!(!err.contains("wasm backtrace"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_javascript_verb_and_projection_run_a_poll() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    let dir = weft.tmp().join("js");
    let dir_arg = dir.to_str().context("utf-8 path")?.to_owned();
    if build("examples/js-poll/build.sh", &[&dir_arg])?.is_none() {
        return Ok(());
    }
    weft.start().await?;
    let poll = format!("{dir_arg}/poll.wasm");
    let tally = format!("{dir_arg}/tally.wasm");
    for (kind, name, file) in [
        ("verb", "Poll", &poll),
        ("verb", "Vote", &poll),
        ("projection", "tally", &tally),
    ] {
        let mut args = vec![
            "module",
            "add",
            kind,
            name,
            file,
            "--language",
            "javascript",
        ];
        // A vote asks no one to act: its verb is not asked how they react.
        if name == "Vote" {
            args.push("--no-react");
        }
        weft.ok(&args)?;
    }
    let registry = weft.get_ok("/projections/define-registry", None).await?;
    let vote = registry["verbs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["name"] == "Vote")
        .context("Vote in the registry")?;
    let defined = weft
        .get_ok(
            &format!(
                "/activities/{}",
                vote["definedBy"].as_str().context("definedBy")?
            ),
            None,
        )
        .await?;
    assert_eq!(defined["reacts"], false, "{defined}");
    let (_, alice) = weft.create_actor_http("alice").await?;
    let (_, bob) = weft.create_actor_http("bob").await?;
    let question = publish(
        &weft,
        &alice,
        json!({"type": "Create", "object": {"type": "Poll", "name": "Lunch?", "options": ["pizza", "sushi"]}, "to": [PUBLIC]}),
    )
    .await?;
    let vote = |choice: &str| json!({"type": "Vote", "object": question["id"], "choice": choice, "to": [PUBLIC]});
    publish(&weft, &alice, vote("pizza")).await?;
    publish(&weft, &bob, vote("sushi")).await?;
    publish(&weft, &bob, vote("pizza")).await?;
    // The verb refuses what the poll does not offer, saying why and naming
    // the field at fault.
    let (status, body) = weft.post_activity(&bob, &vote("tacos")).await?;
    assert_eq!(status, 422, "{body}");
    ensure!(body.to_string().contains("tacos"), "{body}");
    assert_eq!(body["field"], "choice", "{body}");
    let id = question["id"].as_str().context("id")?;
    let counts = weft
        .get_ok(&format!("/projections/tally/poll?id={id}"), None)
        .await?;
    assert_eq!(
        counts["counts"],
        json!({"pizza": 2, "sushi": 0}),
        "{counts}"
    );
    assert_eq!(counts["voters"], 2, "{counts}");
    Ok(())
}

#[tokio::test]
async fn a_c_projection_indexes_hashtags() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    let wasm = weft.tmp().join("hashtags.wasm");
    let wasm_arg = wasm.to_str().context("utf-8 path")?;
    if build("examples/c-hashtags/build.sh", &[wasm_arg])?.is_none() {
        return Ok(());
    }
    weft.start().await?;
    let (_, token) = weft.create_actor_http("alice").await?;
    // The build made a core module; `module add` makes it a component.
    let out = weft.ok(&[
        "module",
        "add",
        "projection",
        "hashtags",
        wasm_arg,
        "--language",
        "c",
    ])?;
    ensure!(out.contains("defined DefineProjection `hashtags`"), "{out}");
    let first = publish(&weft, &token, note("lunch #Pizza #weft")).await?;
    publish(&weft, &token, note("no tags here")).await?;
    let second = publish(&weft, &token, note("more #pizza, C# is not a tag")).await?;
    let pizza = weft
        .get_ok("/projections/hashtags/tag?tag=pizza", None)
        .await?;
    assert_eq!(pizza["count"], 2, "{pizza}");
    // A projection sees an activity's content id as its id.
    assert_eq!(
        pizza["items"],
        json!([cid(&second), cid(&first)]),
        "{pizza}"
    );
    let weft_tag = weft
        .get_ok("/projections/hashtags/tag?tag=weft", None)
        .await?;
    assert_eq!(weft_tag["items"], json!([cid(&first)]), "{weft_tag}");
    let (status, body) = weft.get("/projections/hashtags/tag", None).await?;
    assert_eq!(status, 400, "{body}");
    Ok(())
}

/// `path` as a `&str`, for a command's arguments.
fn utf8(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// The C template's count (`/projections/count/total`).
async fn total(weft: &Weft) -> anyhow::Result<u64> {
    let answer = weft.get_ok("/projections/count/total", None).await?;
    answer["total"]
        .as_u64()
        .with_context(|| format!("{answer}"))
}

/// Every SDK's template, built for weft:module@0.2.0, runs on a node: the
/// Python and JavaScript projections count activities per verb, the C one
/// counts every activity, and the JavaScript verb `Checkin` refuses a
/// check-in without a place, naming the field. A template whose toolchain
/// cannot be installed is skipped; the others still run.
#[tokio::test]
async fn every_sdk_template_runs_for_0_2_0() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    let sdk = root().join("sdk");
    let (python, js_projection, js_verb, c) = (
        weft.tmp().join("python.wasm"),
        weft.tmp().join("js-projection.wasm"),
        weft.tmp().join("js-verb.wasm"),
        weft.tmp().join("c.wasm"),
    );
    let (python, js_projection, js_verb, c) = (
        utf8(&python)?,
        utf8(&js_projection)?,
        utf8(&js_verb)?,
        utf8(&c)?,
    );
    let template = |name: &str| sdk.join(name);
    let has_python = build(
        "sdk/python/build.sh",
        &[
            "projection",
            utf8(&template("python/template"))?,
            "app",
            python,
        ],
    )?
    .is_some();
    let has_js = build(
        "sdk/js/build.sh",
        &[
            "projection",
            utf8(&template("js/template/projection.js"))?,
            js_projection,
        ],
    )?
    .is_some()
        && build(
            "sdk/js/build.sh",
            &["verb", utf8(&template("js/template/verb.js"))?, js_verb],
        )?
        .is_some();
    let has_c = build(
        "sdk/c/build.sh",
        &["projection", utf8(&template("c/template/projection.c"))?, c],
    )?
    .is_some();
    // (kind, name, file, language) of each template built.
    let mut modules = Vec::new();
    if has_python {
        modules.push(("projection", "pyverbs", python, "python"));
    }
    if has_js {
        modules.push(("projection", "jsverbs", js_projection, "javascript"));
        modules.push(("verb", "Checkin", js_verb, "javascript"));
    }
    if has_c {
        modules.push(("projection", "count", c, "c"));
    }
    if modules.is_empty() {
        return Ok(());
    }
    weft.start().await?;
    let (_, token) = weft.create_actor_http("alice").await?;
    // Defined after a note: each projection folds the log so far (a run of
    // activities, with `fold-batch`).
    publish(&weft, &token, note("before the modules")).await?;
    for &(kind, name, file, language) in &modules {
        let out = weft.ok(&["module", "add", kind, name, file, "--language", language])?;
        ensure!(out.contains(&format!("`{name}`")), "{out}");
    }
    let before = if has_c { total(&weft).await? } else { 0 };
    publish(&weft, &token, note("one")).await?;
    publish(&weft, &token, note("two")).await?;
    let mut published = 2;
    if has_js {
        let checkin = |place: &str| json!({"type": "Checkin", "place": place, "to": [PUBLIC]});
        publish(&weft, &token, checkin("Lisbon")).await?;
        published += 1;
        // The verb refuses a blank place, naming the field.
        let (status, body) = weft.post_activity(&token, &checkin(" ")).await?;
        assert_eq!(status, 422, "{body}");
        ensure!(body.to_string().contains("place"), "{body}");
        assert_eq!(body["field"], "place", "{body}");
    }
    for (name, built) in [("pyverbs", has_python), ("jsverbs", has_js)] {
        if !built {
            continue;
        }
        let notes = weft
            .get_ok(&format!("/projections/{name}/count?verb=Note"), None)
            .await?;
        assert_eq!(notes, json!({"verb": "Note", "count": 3}), "{name}");
        if has_js {
            let checkins = weft
                .get_ok(&format!("/projections/{name}/count?verb=Checkin"), None)
                .await?;
            assert_eq!(checkins["count"], 1, "{name}: {checkins}");
        }
        let (status, body) = weft
            .get(&format!("/projections/{name}/count"), None)
            .await?;
        assert_eq!(status, 400, "{name}: {body}");
    }
    if has_c {
        // Every activity since: the notes and the check-in (the refused
        // one was not stored).
        assert_eq!(total(&weft).await?, before + published);
        let (status, body) = weft.get("/projections/count/nothing", None).await?;
        assert_eq!(status, 404, "{body}");
    }
    for &(kind, name, _, _) in &modules {
        if kind == "projection" {
            let status = weft
                .get_ok(&format!("/projections/{name}/status"), None)
                .await?;
            assert_eq!(status["failed"], 0, "{name}: {status}");
        }
    }
    Ok(())
}

/// A Python module written against weft:module@0.1.0 (the 0.1.0 template,
/// kept as a fixture), built with `WEFT_WIT=0.1.0`, still runs, beside the
/// 0.2.0 template: both count the same notes.
#[tokio::test]
async fn a_python_module_for_0_1_0_runs_beside_0_2_0() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    let (old, new) = (weft.tmp().join("old.wasm"), weft.tmp().join("new.wasm"));
    let (old, new) = (utf8(&old)?, utf8(&new)?);
    let fixture = root().join(PYTHON_0_1_0);
    let template = root().join("sdk/python/template");
    let old_built = build_for(
        Some("0.1.0"),
        "sdk/python/build.sh",
        &["projection", utf8(&fixture)?, "app", old],
    )?;
    if old_built.is_none() {
        return Ok(());
    }
    let new_built = build(
        "sdk/python/build.sh",
        &["projection", utf8(&template)?, "app", new],
    )?;
    if new_built.is_none() {
        return Ok(());
    }
    weft.start().await?;
    let (_, token) = weft.create_actor_http("alice").await?;
    publish(&weft, &token, note("hello")).await?;
    for (name, file) in [("old", old), ("new", new)] {
        let out = weft.ok(&[
            "module",
            "add",
            "projection",
            name,
            file,
            "--language",
            "python",
        ])?;
        ensure!(out.contains(&format!("`{name}`")), "{out}");
    }
    publish(&weft, &token, note("again")).await?;
    for name in ["old", "new"] {
        let notes = weft
            .get_ok(&format!("/projections/{name}/count?verb=Note"), None)
            .await?;
        assert_eq!(notes, json!({"verb": "Note", "count": 2}), "{name}");
        let status = weft
            .get_ok(&format!("/projections/{name}/status"), None)
            .await?;
        assert_eq!(status["failed"], 0, "{name}: {status}");
    }
    Ok(())
}

/// Each SDK's build script, given another `WEFT_WIT` than 0.1.0 or 0.2.0,
/// says which versions it builds for and exits with status 2, before it
/// looks for its toolchain.
#[test]
fn an_unknown_contract_version_is_refused() -> anyhow::Result<()> {
    let out = std::env::temp_dir().join("weft-never-built.wasm");
    let out = utf8(&out)?;
    for (script, args) in [
        (
            "sdk/python/build.sh",
            &["projection", "template", "app", out][..],
        ),
        ("sdk/js/build.sh", &["verb", "verb.js", out][..]),
        ("sdk/c/build.sh", &["projection", "projection.c", out][..]),
    ] {
        let run = Command::new(root().join(script))
            .args(args)
            .env("WEFT_WIT", "0.3.0")
            .output()
            .with_context(|| format!("cannot run {script}"))?;
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{script}: {stderr}");
        ensure!(
            stderr.contains("0.3.0") && stderr.contains("0.2.0") && stderr.contains("0.1.0"),
            "{script}: {stderr}"
        );
    }
    Ok(())
}
