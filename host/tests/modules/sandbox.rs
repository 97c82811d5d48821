//! Misbehaving modules cost bounded time and memory, never take the node
//! down, and leave the log and every projection as they were.

use serde_json::json;

use super::support::{TestNode, note};
use super::{define, projection_state, test_guest, upload};

#[tokio::test]
async fn misbehaving_verbs_are_stopped_and_change_nothing() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (status, body) = define(
        &node,
        "DefineActivity",
        "Misbehave",
        test_guest("weft-test-misbehave")?,
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    let (_, token) = node.actor("alice").await?;
    let before = (node.snapshot()?, projection_state(&node)?);
    for (content, expect) in [
        ("spin", "fuel"),
        ("hog", "Misbehave"),
        ("panic", "Misbehave"),
        ("reject", "refused on purpose"),
    ] {
        let (status, body) = node
            .publish(
                &token,
                &json!({"type": "Misbehave", "object": {"content": content}}),
            )
            .await?;
        assert_eq!(status, 422, "{content}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(expect), "{content}: {detail}");
        assert_eq!(
            (node.snapshot()?, projection_state(&node)?),
            before,
            "{content} changed state"
        );
    }
    // The node still serves, and the verb still works for good input.
    let (status, body) = node
        .publish(
            &token,
            &json!({"type": "Misbehave", "object": {"content": "fine"}}),
        )
        .await?;
    assert_eq!(status, 201, "{body}");
    node.stop().await
}

#[tokio::test]
async fn bad_artifacts_are_refused_with_the_right_status() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let before = node.snapshot()?;
    let (status, body) = upload(&node, b"definitely not wasm".to_vec()).await?;
    assert_eq!(status, 400, "{body}");
    let core = wat::parse_str("(module (func (export \"f\")))")?;
    let (status, body) = upload(&node, core).await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("component"),
        "{body}"
    );
    let big = vec![0u8; (64 << 20) + 1];
    let (status, _) = upload(&node, big).await?;
    assert_eq!(status, 413);
    // A component importing WASI is refused when defined, naming the import.
    let wasi = wat::parse_str("(component (import \"wasi:cli/environment@0.2.0\" (instance)))")?;
    let (status, body) = define(&node, "DefineActivity", "Sneaky", wasi).await?;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("wasi:cli/environment@0.2.0"),
        "{body}"
    );
    // A verb component defined as a projection lacks `fold`.
    let (status, body) = define(
        &node,
        "DefineProjection",
        "wrong-kind",
        test_guest("weft-test-misbehave")?,
    )
    .await?;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"].as_str().unwrap_or_default().contains("fold"),
        "{body}"
    );
    // Only the admin uploads.
    let response = node
        .http
        .post(format!("{}/artifacts", node.base))
        .bearer_auth(&token)
        .body(vec![0u8])
        .send()
        .await?;
    assert_eq!(response.status(), 403);
    assert_eq!(
        node.snapshot()?,
        before,
        "a refused artifact or definition changed the log"
    );
    node.stop().await
}

#[tokio::test]
async fn failed_folds_are_recorded_and_their_writes_discarded() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (status, body) = define(
        &node,
        "DefineProjection",
        "flaky",
        test_guest("weft-test-flaky")?,
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    let (_, token) = node.actor("alice").await?;
    for content in ["ok", "fail", "trap", "spin", "ok"] {
        let (status, body) = node.publish(&token, &note(content)).await?;
        assert_eq!(status, 201, "a failing fold must not block the log: {body}");
    }
    let (_, count) = node.get("/projections/flaky/count?verb=Note", None).await?;
    assert_eq!(count["count"], 2, "{count}");
    let (_, marker) = node.get("/projections/flaky/marker", None).await?;
    assert_eq!(
        marker["marker"], false,
        "a failed fold's writes were applied"
    );
    let (_, status_body) = node.get("/projections/flaky/status", None).await?;
    assert_eq!(status_body["failed"], 3, "{status_body}");
    let messages: Vec<String> = status_body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect();
    assert!(messages[0].contains("failed on purpose"), "{messages:?}");
    assert!(messages[1].contains("flaky"), "{messages:?}");
    assert!(messages[2].contains("fuel"), "{messages:?}");
    let (status, body) = node.get("/projections/flaky/nothing", None).await?;
    assert_eq!(status, 404, "{body}");
    let (status, _) = node.get("/projections/flaky/count", None).await?;
    assert_eq!(status, 400);
    node.stop().await
}

#[tokio::test]
async fn redefinition_makes_a_new_version_and_keeps_the_history() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let bytes = test_guest("weft-test-flaky")?;
    let (status, _) = define(&node, "DefineProjection", "flaky", bytes.clone()).await?;
    assert_eq!(status, 201);
    node.publish(&node.actor("alice").await?.1, &note("one"))
        .await?;
    let (status, _) = define(&node, "DefineProjection", "flaky", bytes).await?;
    assert_eq!(status, 201);
    let (_, registry) = node.get("/projections/define-registry", None).await?;
    let flaky = registry["projections"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["name"] == "flaky")
        .cloned()
        .unwrap_or_default();
    assert_eq!(flaky["version"], 2, "{flaky}");
    assert_eq!(flaky["history"].as_array().map(Vec::len), Some(2));
    // The new version was built from the whole log.
    let (_, count) = node.get("/projections/flaky/count?verb=Note", None).await?;
    assert_eq!(count["count"], 1, "{count}");
    // Only the service actor defines modules.
    let (_, token) = node.actor("mallory").await?;
    let (status, body) = node
        .publish(
            &token,
            &json!({"type": "DefineActivity", "name": "Evil", "module": flaky["module"]}),
        )
        .await?;
    assert_eq!(status, 422, "{body}");
    node.stop().await
}

#[tokio::test]
async fn compiled_modules_are_cached_on_disk_and_reused_after_restart() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let modules = super::support::shared_module_cache();
    let cached = std::fs::read_dir(&modules)?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .count();
    assert!(
        cached >= 10,
        "one compiled file per genesis module at least, found {cached}"
    );
    assert!(
        !node.dir.path().join("data/modules").exists(),
        "the configured cache was not used"
    );
    let (_, token) = node.actor("alice").await?;
    node.publish(&token, &note("before restart")).await?;
    let node = node.restart().await?;
    let (status, body) = node.publish(&token, &note("after restart")).await?;
    assert_eq!(status, 201, "{body}");
    let cached_after = std::fs::read_dir(&modules)?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .count();
    assert!(cached_after >= cached, "cache entries disappeared");
    node.stop().await
}
