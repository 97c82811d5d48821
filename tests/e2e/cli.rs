//! `weft init`, `weft run`, `weft actor create`, `weft publish` and `weft
//! policy`, with the node stopped and running: either way the CLI goes
//! through the node's HTTP API with the admin token — in-process (the data
//! folder opened, the same router without a socket) when the node is
//! stopped, over HTTP when it runs or when `--node URL --token T` names it.
//! `--json` prints the node's answer.

use serde_json::{Value, json};

use crate::support::{Weft, activity_from, admin_token_from, cid, created_from, mode, note};

#[tokio::test]
async fn init_prints_the_admin_token_once_and_keeps_secrets_private() -> anyhow::Result<()> {
    let mut weft = Weft::uninitialised()?;
    let listen = weft.listen();
    let out = weft.ok(&["init", "--listen", &listen])?;
    let admin = admin_token_from(&out)?;
    assert_eq!(
        out.matches(&admin).count(),
        1,
        "init prints the admin token exactly once: {out}"
    );
    assert!(
        out.contains(&weft.base),
        "init names the public URL {}: {out}",
        weft.base
    );

    let data = weft.data.clone();
    assert_eq!(
        mode(&data)?,
        0o700,
        "the data folder is private to its owner"
    );
    for secret in ["admin.token", "keys.json"] {
        assert_eq!(
            mode(&data.join(secret))?,
            0o600,
            "{secret} is readable only by its owner"
        );
    }
    assert!(data.join("weft.toml").exists(), "init writes weft.toml");
    assert!(data.join("weft.redb").exists(), "init creates the database");
    let stored = std::fs::read_to_string(data.join("admin.token"))?;
    assert_eq!(stored.trim(), admin, "admin.token holds the printed token");

    // A second init refuses, says why, and leaves the token alone.
    let err = weft.fails(&["init", "--listen", &listen])?;
    assert!(
        err.contains("already initialised"),
        "a second init says the folder is already initialised: {err}"
    );
    assert!(
        err.contains("admin.token"),
        "and points at the existing admin token file: {err}"
    );
    let after = std::fs::read_to_string(data.join("admin.token"))?;
    assert_eq!(
        after.trim(),
        admin,
        "a second init does not change the token"
    );

    // Running the initialised node does not print the token again, and the
    // printed token is the one the node accepts.
    weft.admin = admin;
    weft.start().await?;
    assert!(
        !weft.stdout().contains(&weft.admin),
        "weft run does not print the admin token of an initialised node"
    );
    weft.create_actor_http("carol").await?;
    weft.stop()?;
    assert!(
        !weft.stderr().contains(&weft.admin),
        "the admin token never appears in the log"
    );
    Ok(())
}

#[tokio::test]
async fn run_initialises_a_missing_folder_serves_logs_and_refuses_a_second_run()
-> anyhow::Result<()> {
    let mut weft = Weft::uninitialised()?;
    assert!(!weft.data.exists());
    weft.start().await?;

    let out = weft.stdout();
    weft.admin = admin_token_from(&out)?;
    let stored = std::fs::read_to_string(weft.data.join("admin.token"))?;
    assert_eq!(
        stored.trim(),
        weft.admin,
        "admin.token holds the printed token"
    );
    assert_eq!(mode(&weft.data)?, 0o700);
    assert_eq!(mode(&weft.data.join("admin.token"))?, 0o600);
    assert_eq!(mode(&weft.data.join("keys.json"))?, 0o600);

    // The node's own Service actor exists and is served.
    let node = weft.get_ok("/actors/node", None).await?;
    assert_eq!(node["type"], "Service");
    assert_eq!(node["id"], format!("{}/actors/node", weft.base));

    // The printed admin token works.
    let (id, token) = weft.create_actor_http("dave").await?;
    assert_eq!(id, format!("{}/actors/dave", weft.base));
    let (status, body) = weft.post_activity(&token, &note("first")).await?;
    assert_eq!(status, 201, "{body}");

    // A second node on the same folder is refused; so is `init`.
    let other_port = crate::support::free_port()?;
    let err = weft.fails(&["run", "--listen", &format!("127.0.0.1:{other_port}")])?;
    assert!(
        err.contains("already running"),
        "a second `weft run` on the same folder says one is running: {err}"
    );
    let err = weft.fails(&["init"])?;
    assert!(
        err.contains("running"),
        "`weft init` on a running node says it is running: {err}"
    );
    // The first node is unaffected.
    weft.get_ok("/actors/dave", None).await?;

    let (status, _) = weft.get("/no/such/path", None).await?;
    assert_eq!(status, 404);
    weft.stop()?;

    // The listen address given to the first run was kept in weft.toml.
    let toml = std::fs::read_to_string(weft.data.join("weft.toml"))?;
    assert!(
        toml.contains(&weft.listen()),
        "weft.toml keeps the listen address: {toml}"
    );

    // Logs go to stderr, at `info` by default.
    let log = weft.stderr();
    assert!(
        log.contains("weft is serving"),
        "the default level (info) logs the start: {log}"
    );
    assert!(
        log.contains(&weft.listen()),
        "the log names the address: {log}"
    );
    assert!(
        log.contains("shutting down"),
        "the log records the shutdown: {log}"
    );
    assert!(
        !weft.stdout().contains("weft is serving"),
        "logs do not go to stdout"
    );
    // RUST_LOG=warn silences the info lines.
    weft.run_env("RUST_LOG", "warn");
    weft.start().await?;
    weft.stop()?;
    let log = weft.stderr();
    assert!(
        !log.contains("weft is serving"),
        "RUST_LOG=warn hides info lines: {log}"
    );
    Ok(())
}

#[tokio::test]
async fn actor_created_while_stopped_publishes_once_the_node_runs() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    let out = weft.ok(&["actor", "create", "alice"])?;
    let (id, token) = created_from(&out)?;
    assert_eq!(id, format!("{}/actors/alice", weft.base));
    assert!(
        token.starts_with("weft_"),
        "tokens look like weft_…: {token}"
    );

    weft.start().await?;
    let response = weft
        .http
        .post(format!("{}/activity", weft.base))
        .bearer_auth(&token)
        .json(&note("hello from alice"))
        .send()
        .await?;
    assert_eq!(response.status(), 201);
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    let body: Value = response.json().await?;
    assert_eq!(body["actor"], id.as_str());
    assert_eq!(body["seq"], 2, "seq 1 is alice's Create");
    // The activity's id is its URL, which the Location names too.
    assert_eq!(
        location,
        Some(format!("{}/activities/{}", weft.base, cid(&body)))
    );
    assert_eq!(location.as_deref(), body["id"].as_str());
    let stored = weft
        .get_ok(&format!("/activities/{}", cid(&body)), None)
        .await?;
    assert_eq!(stored, body, "the stored activity is the one returned");

    // A wrong token is refused, not treated as anonymous.
    let (status, _) = weft
        .post_activity("weft_not-a-real-token", &note("x"))
        .await?;
    assert_eq!(status, 401);
    weft.stop()?;
    Ok(())
}

#[tokio::test]
async fn actor_create_and_publish_work_both_running_and_stopped() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    weft.start().await?;

    // Running: the CLI goes through the HTTP API with the admin token.
    let (id, token) = weft.create_actor("bob")?;
    assert_eq!(id, format!("{}/actors/bob", weft.base));
    let doc = weft.get_ok("/actors/bob", None).await?;
    assert_eq!(doc["id"], id.as_str());

    let draft = weft.write_file("draft.json", &note("from a file").to_string())?;
    let draft = draft.to_string_lossy().into_owned();
    let mut published = Vec::new();
    published.push(activity_from(
        &weft.ok(&["publish", "--actor", "bob", &draft])?,
    )?);
    let out = weft.cli_stdin(
        &["publish", "--actor", "bob", "-"],
        &note("from stdin").to_string(),
    )?;
    published.push(activity_from(&crate::support::success(
        out,
        "publish from stdin (running)",
    )?)?);

    // The token printed by the running node works for bob.
    let (status, body) = weft.post_activity(&token, &note("over http")).await?;
    assert_eq!(status, 201, "{body}");
    published.push(body);

    weft.stop()?;
    assert!(
        !weft.stderr().contains(&token),
        "an actor's token never appears in the node's log"
    );

    // Stopped: the CLI opens the data folder directly.
    published.push(activity_from(
        &weft.ok(&["publish", "--actor", "bob", &draft])?,
    )?);
    let out = weft.cli_stdin(
        &["publish", "--actor", "bob", "-"],
        &note("from stdin, stopped").to_string(),
    )?;
    published.push(activity_from(&crate::support::success(
        out,
        "publish from stdin (stopped)",
    )?)?);

    let contents: Vec<&str> = published
        .iter()
        .map(|a| a["object"]["content"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        contents,
        [
            "from a file",
            "from stdin",
            "over http",
            "from a file",
            "from stdin, stopped"
        ]
    );
    for (i, activity) in published.iter().enumerate() {
        assert_eq!(activity["actor"], id.as_str());
        assert_eq!(activity["seq"], i as u64 + 2, "seq advances: {activity}");
        assert!(
            activity["proof"]["key"]
                .as_str()
                .is_some_and(|k| k.ends_with("/actors/bob#key-1"))
        );
        if i > 0 {
            assert_eq!(activity["prev"], cid(&published[i - 1]), "prev chains");
        }
    }

    // After a restart, the node serves everything, including what was
    // published while it was stopped.
    weft.start().await?;
    let log = weft.walk_log("bob", &token).await?;
    assert_eq!(log.len(), 1 + published.len());
    assert_eq!(&log[1..], &published[..]);
    weft.stop()?;
    Ok(())
}

/// Each bad invocation must fail, say what is wrong on stderr, and change
/// nothing.
async fn check_cli_errors(weft: &Weft) -> anyhow::Result<()> {
    let draft = weft.write_file("good.json", &note("fine").to_string())?;
    let draft = draft.to_string_lossy().into_owned();
    let err = weft.fails(&["publish", "--actor", "nobody", &draft])?;
    assert!(
        err.contains("no actor named `nobody`"),
        "publishing as an unknown actor names it: {err}"
    );

    let bad = weft.write_file("bad.json", "{\"type\": \"Create\", oops")?;
    let bad = bad.to_string_lossy().into_owned();
    let err = weft.fails(&["publish", "--actor", "erin", &bad])?;
    assert!(
        err.contains("must be a JSON object"),
        "a draft that is not JSON is called out: {err}"
    );
    let missing = weft.tmp().join("missing.json");
    let missing = missing.to_string_lossy().into_owned();
    let err = weft.fails(&["publish", "--actor", "erin", &missing])?;
    assert!(
        err.contains("cannot read") && err.contains("missing.json"),
        "a missing draft file is named: {err}"
    );
    let out = weft.cli_stdin(&["publish", "--actor", "erin", "-"], "[1, 2]")?;
    let err = crate::support::failure(out, "publish a JSON array")?;
    assert!(err.contains("must be a JSON object"), "{err}");

    let forged = weft.write_file(
        "forged.json",
        &json!({"type": "Create", "object": {"type": "Note", "content": "x"}, "proof": {"key": "k", "signature": "s"}})
            .to_string(),
    )?;
    let forged = forged.to_string_lossy().into_owned();
    let err = weft.fails(&["publish", "--actor", "erin", &forged])?;
    assert!(
        err.contains("proof"),
        "a draft may not carry a proof, and the message says so: {err}"
    );

    for name in ["Erin Smith", "_erin", "UPPER", "é", ""] {
        let err = weft.fails(&["actor", "create", name])?;
        assert!(
            err.contains("not a valid actor name"),
            "`{name}` is refused as an actor name: {err}"
        );
        assert!(
            err.contains("a-z"),
            "the message says what is allowed: {err}"
        );
    }

    let err = weft.fails(&["actor", "create", "erin"])?;
    assert!(
        err.contains("already exists"),
        "creating an existing actor says it exists: {err}"
    );
    let err = weft.fails(&["actor", "create", "erin", "--type", "Robot"])?;
    assert!(err.contains("Robot"), "an unknown type is named: {err}");

    let err = weft.fails(&["actor", "rotate", "ghost"])?;
    assert!(
        err.contains("no actor named `ghost`"),
        "rotating an unknown actor names it: {err}"
    );
    Ok(())
}

#[tokio::test]
async fn cli_errors_are_clear_with_the_node_stopped_and_running() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    let (_, token) = weft.create_actor("erin")?;
    check_cli_errors(&weft).await?;

    weft.start().await?;
    check_cli_errors(&weft).await?;
    // Over HTTP the body limit applies; the CLI passes the node's reason on.
    let big = note(&"x".repeat(300 * 1024)).to_string();
    let out = weft.cli_stdin(&["publish", "--actor", "erin", "-"], &big)?;
    let err = crate::support::failure(out, "publish an oversized draft")?;
    assert!(
        err.contains("413") && err.contains("limit"),
        "an oversized draft is refused with the limit: {err}"
    );
    // Nothing of the refused requests reached erin's log.
    let log = weft.walk_log("erin", &token).await?;
    assert_eq!(log.len(), 1, "only erin's Create is in the log: {log:?}");
    weft.stop()?;

    // A folder with no node at all.
    let empty = Weft::uninitialised()?;
    let err = empty.fails(&["actor", "create", "frank"])?;
    assert!(err.contains("weft init"), "points at `weft init`: {err}");
    Ok(())
}

#[tokio::test]
async fn a_node_refuses_a_busy_port_and_a_readable_key_store() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut weft = Weft::init()?;

    // The port is taken: `weft run` fails, naming the address.
    let squatter = std::net::TcpListener::bind(weft.listen())?;
    let err = weft.fails(&["run", "--listen", &weft.listen()])?;
    assert!(
        err.contains("cannot listen on") && err.contains(&weft.listen()),
        "says it cannot listen on the address: {err}"
    );
    drop(squatter);

    // keys.json readable by others: refused, with the fix in the message.
    let keys = weft.data.join("keys.json");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644))?;
    let err = weft.fails(&["run", "--listen", &weft.listen()])?;
    assert!(
        err.contains("chmod 600"),
        "a readable key store is refused with the fix: {err}"
    );
    let err = weft.fails(&["actor", "create", "gina"])?;
    assert!(err.contains("chmod 600"), "the CLI refuses it too: {err}");

    // After the fix the node starts, and nothing was half-done meanwhile.
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600))?;
    weft.start().await?;
    let (status, _) = weft.get("/actors/gina", None).await?;
    assert_eq!(
        status, 404,
        "gina was not created while the keys were unsafe"
    );
    weft.stop()?;
    Ok(())
}

/// `--json` prints the node's JSON answer, pretty, instead of the text;
/// with the node stopped (in-process) and running (over HTTP) alike.
#[tokio::test]
async fn json_output_is_the_nodes_answer_stopped_and_running() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    for running in [false, true] {
        if running {
            weft.start().await?;
        }
        let name = if running { "jo" } else { "jay" };
        let out = weft.ok(&["--json", "actor", "create", name])?;
        let created: Value = serde_json::from_str(&out)
            .map_err(|e| anyhow::anyhow!("actor create --json is not JSON ({e}): {out}"))?;
        assert!(out.contains("\n  \""), "pretty-printed: {out}");
        assert_eq!(created["id"], format!("{}/actors/{name}", weft.base));
        assert_eq!(created["name"], name);
        assert!(
            created["token"]
                .as_str()
                .is_some_and(|t| t.starts_with("weft_")),
            "{created}"
        );
        assert_eq!(created["activity"]["type"], "Create", "{created}");

        // The flag goes anywhere on the line.
        let out = weft.ok(&["module", "list", "--json"])?;
        let registry: Value = serde_json::from_str(&out)
            .map_err(|e| anyhow::anyhow!("module list --json is not JSON ({e}): {out}"))?;
        let verbs: Vec<&str> = registry["verbs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["name"].as_str())
            .collect();
        assert!(verbs.contains(&"Follow"), "{registry}");
        assert!(
            registry["projections"]
                .as_array()
                .is_some_and(|p| !p.is_empty()),
            "{registry}"
        );
        // The same registry as the node serves.
        if running {
            assert_eq!(
                registry,
                weft.get_ok("/projections/define-registry", None).await?
            );
        }

        let draft = note("as json").to_string();
        let out = weft.cli_stdin_ok(&["--json", "publish", "--actor", name, "-"], &draft)?;
        let published = activity_from(&out)?;
        assert_eq!(published["actor"], created["id"]);
        assert!(out.contains("\n  \""), "pretty-printed: {out}");

        let out = weft.ok(&["--json", "dead-letter", "list"])?;
        let dead: Value = serde_json::from_str(&out)?;
        assert_eq!(dead["totalItems"], 0, "{dead}");
        let out = weft.ok(&["--json", "module", "pending"])?;
        let pending: Value = serde_json::from_str(&out)?;
        assert!(pending["modules"].is_array(), "{pending}");

        // Without --json the text stays as it was.
        let out = weft.ok(&["dead-letter", "list"])?;
        assert_eq!(out.trim(), "no dead letters");
    }
    weft.stop()?;
    Ok(())
}

/// A command against a stopped node goes in-process through the node's
/// own router: what it did is there when the node runs.
#[tokio::test]
async fn commands_against_a_stopped_node_run_in_process() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    let (id, token) = weft.create_actor("kai")?;
    let published = activity_from(&weft.cli_stdin_ok(
        &["publish", "--actor", "kai", "-"],
        &note("offline").to_string(),
    )?)?;
    assert_eq!(published["actor"], id.as_str());
    assert_eq!(published["seq"], 2);
    let rotation = activity_from(&weft.ok(&["actor", "rotate", "kai"])?)?;
    assert_eq!(rotation["seq"], 3);
    let out = weft.ok(&["projection", "rebuild", "feed"])?;
    assert!(
        out.starts_with("rebuilt `feed` from "),
        "a rebuild runs in-process too: {out}"
    );
    // The node's own errors, with its reasons.
    let err = weft.fails(&["projection", "rebuild", "no-such-projection"])?;
    assert!(err.contains("no-such-projection"), "{err}");
    let err = weft.fails(&["module", "approve", "Nothing"])?;
    assert!(err.contains("Nothing"), "{err}");
    // A token that is not the node's is refused in-process as over HTTP.
    let err = weft.fails(&["--token", "weft_wrong", "actor", "create", "lee"])?;
    assert!(err.contains("refused") && err.contains("--token"), "{err}");

    weft.start().await?;
    let stored = weft
        .get_ok(&format!("/activities/{}", cid(&published)), None)
        .await?;
    assert_eq!(
        stored, published,
        "the node serves what was published while stopped"
    );
    let log = weft.walk_log("kai", &token).await?;
    assert_eq!(log.len(), 3, "Create, the note and the rotation: {log:?}");
    assert_eq!(log[2], rotation);
    let (status, _) = weft.get("/actors/lee", None).await?;
    assert_eq!(status, 404, "the refused command created nothing");
    weft.stop()?;
    Ok(())
}

/// `--node URL --token T` (or `WEFT_NODE`, `WEFT_TOKEN`) reaches a node
/// over HTTP from anywhere, without its data folder; a wrong token is
/// refused with a clear message and a failing exit status.
#[tokio::test]
async fn node_and_token_reach_a_remote_node_without_its_data_folder() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    weft.start().await?;
    // Another machine, as far as the CLI can tell: a data folder with no
    // node in it.
    let elsewhere = Weft::uninitialised()?;
    let (base, admin) = (weft.base.clone(), weft.admin.clone());
    let remote = ["--node", base.as_str(), "--token", admin.as_str()];
    let with = |args: &[&str]| -> Vec<String> {
        remote.iter().chain(args).map(|a| (*a).to_owned()).collect()
    };
    let args = with(&["actor", "create", "remy"]);
    let out = elsewhere.ok(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    let (id, token) = created_from(&out)?;
    assert_eq!(id, format!("{}/actors/remy", weft.base));

    let args = with(&["publish", "--actor", "remy", "-"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let published = activity_from(&elsewhere.cli_stdin_ok(&args, &note("remote").to_string())?)?;
    assert_eq!(published["actor"], id.as_str());
    let log = weft.walk_log("remy", &token).await?;
    assert_eq!(log.len(), 2);
    assert_eq!(log[1], published);

    let args = with(&["--json", "module", "list"]);
    let out = elsewhere.ok(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    let registry: Value = serde_json::from_str(&out)?;
    assert_eq!(
        registry,
        weft.get_ok("/projections/define-registry", None).await?
    );
    assert!(
        !elsewhere.data.exists(),
        "the CLI made no data folder of its own"
    );

    // The same through the environment.
    let out = elsewhere
        .command(&["actor", "rotate", "remy"])
        .env("WEFT_NODE", &weft.base)
        .env("WEFT_TOKEN", &weft.admin)
        .stdin(std::process::Stdio::null())
        .output()?;
    let rotation = activity_from(&crate::support::success(out, "rotate with WEFT_NODE")?)?;
    assert_eq!(rotation["type"], "Update");
    assert_eq!(rotation["seq"], 3);

    // A wrong token: a clear error, a failing exit status, nothing done.
    let err = elsewhere.fails(&[
        "--node",
        &weft.base,
        "--token",
        "weft_not-the-admin-token",
        "actor",
        "create",
        "mallory",
    ])?;
    assert!(
        err.contains("refused") && err.contains("401") && err.contains("--token"),
        "a wrong token is called out, with what to do: {err}"
    );
    assert!(
        err.contains(&weft.base),
        "the message names the node: {err}"
    );
    // An actor's token is not the admin's.
    let err = elsewhere.fails(&[
        "--node", &weft.base, "--token", &token, "actor", "create", "mallory",
    ])?;
    assert!(err.contains("refused") && err.contains("403"), "{err}");
    let (status, _) = weft.get("/actors/mallory", None).await?;
    assert_eq!(status, 404, "nothing was created");
    // No token at all, and a node that is not there.
    let err = elsewhere.fails(&["--node", &weft.base, "module", "list"])?;
    assert!(err.contains("--token"), "{err}");
    weft.stop()?;
    let err = elsewhere.fails(
        &remote
            .iter()
            .chain(&["module", "list"])
            .copied()
            .collect::<Vec<_>>(),
    )?;
    assert!(
        err.contains("cannot reach") && err.contains(&weft.base),
        "{err}"
    );
    Ok(())
}

/// `--node https://…` trusts the usual roots and `WEFT_CA_FILE`'s.
#[tokio::test]
async fn node_over_https_trusts_the_ca_file() -> anyhow::Result<()> {
    let ca = crate::support::TestCa::new()?;
    let mut weft = Weft::init_tls(&ca)?;
    weft.start().await?;
    let elsewhere = Weft::uninitialised()?;
    let ca_file = elsewhere.write_file("ca.pem", &ca.pem)?;
    let args = [
        "--node",
        weft.base.as_str(),
        "--token",
        weft.admin.as_str(),
        "actor",
        "create",
        "tess",
    ];
    let out = elsewhere
        .command(&args)
        .env("WEFT_CA_FILE", &ca_file)
        .stdin(std::process::Stdio::null())
        .output()?;
    let (id, _) = created_from(&crate::support::success(out, "actor create over https")?)?;
    assert_eq!(id, format!("{}/actors/tess", weft.base));
    // Without the CA the node's certificate is not trusted.
    let err = elsewhere.fails(&args)?;
    assert!(err.contains("cannot reach"), "{err}");
    weft.stop()?;
    Ok(())
}

/// `weft policy define|list|status` and `weft follow pending`, with the
/// node stopped (in-process) and running (over HTTP): versions, a spec
/// refused naming its field, a spec from a file, the status before any
/// reconcile loop, an unknown policy.
#[tokio::test]
async fn policy_commands_work_stopped_and_running() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    let out = weft.ok(&[
        "policy",
        "define",
        "catch-up",
        "--kind",
        "sync",
        "--spec",
        r#"{"interval": "5m"}"#,
    ])?;
    assert!(out.contains("sync policy `catch-up` v1"), "{out}");
    let err = weft.fails(&[
        "policy",
        "define",
        "catch-up",
        "--kind",
        "sync",
        "--spec",
        r#"{"interval": "soon"}"#,
    ])?;
    assert!(err.contains("spec.interval"), "{err}");
    let spec = weft.data.join("spec.json");
    std::fs::write(&spec, r#"{"interval": "1m", "maxLag": "30m"}"#)?;
    let from_file = format!("@{}", spec.display());
    let out = weft.ok(&[
        "policy", "define", "catch-up", "--kind", "sync", "--spec", &from_file,
    ])?;
    assert!(out.contains("v2"), "{out}");
    let err = weft.fails(&["policy", "status", "nope"])?;
    assert!(err.contains("nope"), "{err}");

    for running in [false, true] {
        if running {
            weft.start().await?;
        }
        let list: Value = serde_json::from_str(&weft.ok(&["--json", "policy", "list"])?)?;
        assert_eq!(list["policies"][0]["version"], 2, "{list}");
        assert_eq!(list["policies"][0]["spec"]["maxLag"], "30m", "{list}");
        assert_eq!(
            list["policies"][0]["history"].as_array().map(Vec::len),
            Some(2)
        );
        let out = weft.ok(&["policy", "list"])?;
        assert!(out.contains("catch-up") && out.contains("v2"), "{out}");
        // Not evaluated yet on a stopped node; a running node's loop may
        // have evaluated it already (publishing a policy wakes the loop).
        let out = weft.ok(&["policy", "status", "catch-up"])?;
        assert!(out.contains("Compliant") && out.contains("InSync"), "{out}");
        let status: Value =
            serde_json::from_str(&weft.ok(&["--json", "policy", "status", "catch-up"])?)?;
        let compliant = &status["conditions"][0];
        assert_eq!(compliant["type"], "Compliant", "{status}");
        match compliant["status"].as_str() {
            Some("Unknown") => assert_eq!(compliant["reason"], "NotEvaluated", "{status}"),
            Some("True") => assert_eq!(compliant["reason"], "NothingOutstanding", "{status}"),
            _ => panic!("an unexpected Compliant condition: {status}"),
        }
        if !running {
            assert_eq!(compliant["status"], "Unknown", "{status}");
        }
        let pending: Value = serde_json::from_str(&weft.ok(&["--json", "follow", "pending"])?)?;
        assert_eq!(pending["items"], json!([]), "{pending}");
    }
    let out = weft.ok(&[
        "policy",
        "define",
        "verbs",
        "--kind",
        "modules",
        "--spec",
        r#"{"policy": "manual"}"#,
    ])?;
    assert!(out.contains("modules policy `verbs` v1"), "{out}");
    weft.stop()?;
    Ok(())
}
