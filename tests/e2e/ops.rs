//! Operating a node: the `weft bench` load tool, and `weft run
//! --kernel-only`, the mode that measures the kernel without its modules.

use serde_json::json;

use crate::support::{Weft, note, success};

#[tokio::test]
async fn bench_drives_a_running_node_and_checks_its_logs() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    weft.start().await?;
    let out = weft.cli(&[
        "bench",
        "--publishers",
        "8",
        "--actors",
        "4",
        "--seconds",
        "1",
        "--url",
        &weft.base,
        "--admin-token",
        &weft.admin,
    ])?;
    let out = success(out, "weft bench")?;
    // A smoke test of the tool: it ran, reported, and found every log whole.
    // Never an assertion about speed.
    assert!(
        out.contains("activities/s"),
        "bench reports throughput: {out}"
    );
    assert!(out.contains("latency"), "bench reports latency: {out}");
    assert!(
        out.contains("checked"),
        "bench checked the logs afterwards: {out}"
    );
    assert!(out.contains("(0 errors)"), "no publish failed: {out}");
    // The node is still healthy, and shuts down cleanly after the load.
    weft.get_ok("/actors/node", None).await?;
    weft.stop()?;

    // Without a node, bench fails and says where it tried.
    let err = weft.fails(&[
        "bench",
        "--seconds",
        "1",
        "--url",
        &weft.base,
        "--admin-token",
        &weft.admin,
    ])?;
    assert!(err.contains(&weft.base), "names the unreachable URL: {err}");
    Ok(())
}

#[tokio::test]
async fn federation_benches_run_against_a_node() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    weft.start().await?;
    let common = ["--url", &weft.base, "--admin-token", &weft.admin];
    // Inbox ingest from stand-in remote actors served by the tool itself.
    let mut args = vec![
        "bench",
        "--inbox",
        "--count",
        "300",
        "--publishers",
        "8",
        "--actors",
        "6",
    ];
    args.extend(common);
    let out = success(weft.cli(&args)?, "weft bench --inbox")?;
    assert!(out.contains("300 activities accepted"), "{out}");
    assert!(out.contains("(0 refused)"), "{out}");
    assert!(
        out.contains("checked: the inbox holds exactly the 300"),
        "{out}"
    );
    // Fan-out to followers on stand-in peer origins.
    let mut args = vec![
        "bench",
        "--fanout",
        "--peers",
        "2",
        "--followers",
        "20",
        "--rounds",
        "2",
    ];
    args.extend(common);
    let out = success(weft.cli(&args)?, "weft bench --fanout")?;
    assert!(out.contains("fan-out to 20 followers on 2 peers"), "{out}");
    assert!(out.contains("deliveries/s"), "{out}");
    weft.stop()?;
    Ok(())
}

#[tokio::test]
async fn kernel_only_serves_the_log_without_verbs_or_projections() -> anyhow::Result<()> {
    // Only an initialised node can run without its modules: `init` is what
    // registers them, and the mode must not create a node that lacks them.
    let fresh = Weft::uninitialised()?;
    let err = fresh.fails(&["run", "--kernel-only", "--listen", &fresh.listen()])?;
    assert!(err.contains("weft init"), "says what to do: {err}");
    assert!(!fresh.data.join("weft.redb").exists(), "created nothing");

    let mut weft = Weft::init()?;
    weft.run_args.push("--kernel-only".into());
    weft.start().await?;
    let (_, token) = weft.create_actor_http("kim").await?;
    let (status, _) = weft.post_activity(&token, &note("kernel only")).await?;
    assert_eq!(status, 201, "the kernel signs and stores as usual");
    // No verb checks: a type no module defines is accepted...
    let unknown = json!({"type": "Frobnicate", "object": "x"});
    let (status, body) = weft.post_activity(&token, &unknown).await?;
    assert_eq!(status, 201, "no verb module runs in this mode: {body}");
    // ...and no projection is served.
    let (status, _) = weft
        .get(
            "/projections/feed/items?actor=http://127.0.0.1:1/actors/kim",
            None,
        )
        .await?;
    assert_eq!(status, 404, "projections are off");
    let outbox = weft.walk_log("kim", &token).await?;
    assert_eq!(
        outbox.len(),
        3,
        "Create, Note and Frobnicate are in kim's log"
    );
    weft.stop()?;

    // The same node with its modules refuses the unknown verb again.
    weft.run_args.clear();
    weft.start().await?;
    let (status, body) = weft.post_activity(&token, &unknown).await?;
    assert_eq!(
        status, 422,
        "with its modules the node checks verbs: {body}"
    );
    weft.stop()?;
    Ok(())
}
