//! Operating a node: the `weft bench` load tool.

use crate::support::{Weft, success};

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
