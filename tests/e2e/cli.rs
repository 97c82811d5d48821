//! `weft init`, `weft run`, `weft actor create` and `weft publish`, with the
//! node stopped (the CLI opens the data folder) and running (the CLI goes
//! through the HTTP API with the admin token).

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
