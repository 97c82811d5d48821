//! Misbehaving modules cost bounded time and memory, never take the node
//! down, and leave the log and every projection as they were; a verb
//! defined not to react is never asked to.

use serde_json::json;

use super::support::{TestNode, note};
use super::{define, eventually, projection_state, test_guest, upload};

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

/// A verb defined with `"reacts": false` is never asked how a local
/// recipient reacts; the same artifact defined without it is. The test
/// verb's `react` asks for a thousand intents (16 are kept) when the
/// content says `react-flood`.
#[tokio::test]
async fn a_verb_defined_not_to_react_is_not_asked() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (status, body) = define(
        &node,
        "DefineActivity",
        "Misbehave",
        test_guest("weft-test-misbehave")?,
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    // The same artifact, defined again under another name.
    let hush = json!({"type": "DefineActivity", "name": "Hush", "module": body["module"],
        "reacts": false, "to": ["https://www.w3.org/ns/activitystreams#Public"]});
    let (status, body) = node
        .api()
        .post_json("/actors/node/outbox", &node.admin, &hush)
        .await?;
    assert_eq!(status, 201, "{body}");
    let (_, alice) = node.actor("alice").await?;
    let (bob, _) = node.actor("bob").await?;
    for kind in ["Hush", "Misbehave"] {
        let draft = json!({"type": kind, "object": {"content": "react-flood"}, "to": [&bob]});
        node.publish_ok(&alice, &draft).await?;
    }
    // Reactions run in commit order and each leaves its row until its
    // last intent is published: once none is left, the Hush's intents
    // would be there before the Misbehave's.
    let store = node.kernel.store();
    let intents = eventually(async || {
        let published = node
            .log(&bob)?
            .iter()
            .filter(|a| a["type"] == "Misbehave")
            .count();
        let pending = store.read()?.pending_reactions()?.len();
        Ok((published > 0 && pending == 0).then_some(published))
    })
    .await?;
    assert_eq!(intents, 16, "only the Misbehave asked bob to act");
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
    // A verb component defined as a projection is named for what it is,
    // and so is a projection defined as a verb.
    let (status, body) = define(
        &node,
        "DefineProjection",
        "wrong-kind",
        test_guest("weft-test-misbehave")?,
    )
    .await?;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("this component is a verb, not a projection"),
        "{body}"
    );
    let (status, body) = define(
        &node,
        "DefineActivity",
        "WrongKind",
        test_guest("weft-test-flaky")?,
    )
    .await?;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("this component is a projection, not a verb"),
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

/// Kernel-native names cannot be defined; a built-in is replaced only on
/// purpose (`replaces` naming its current module), never by a stale
/// `replaces`; a name keeps its kind; and each refusal changes nothing.
#[tokio::test]
async fn built_ins_and_kernel_names_are_not_replaced_by_accident() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    async fn registry(node: &TestNode) -> anyhow::Result<serde_json::Value> {
        Ok(node.get("/projections/define-registry", None).await?.1)
    }
    let before = registry(&node).await?;
    for name in ["Create", "Update", "Person", "DefineActivity"] {
        let (status, body) = define(
            &node,
            "DefineActivity",
            name,
            test_guest("weft-test-misbehave")?,
        )
        .await?;
        assert_eq!(status, 422, "{name}: {body}");
        assert_eq!(body["field"], "name", "{body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("interpreted by the kernel"),
            "{body}"
        );
    }
    // A built-in verb: refused, naming what it would replace.
    let note_module = before["verbs"]
        .as_array()
        .and_then(|v| v.iter().find(|m| m["name"] == "Note"))
        .and_then(|m| m["module"].as_str())
        .map(str::to_owned)
        .unwrap_or_default();
    let (status, body) = define(
        &node,
        "DefineActivity",
        "Note",
        test_guest("weft-test-misbehave")?,
    )
    .await?;
    assert_eq!(status, 422, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("built-in")
            && detail.contains(&note_module)
            && detail.contains("--replace"),
        "{body}"
    );
    // A projection cannot take a verb's name.
    let (status, body) = define(
        &node,
        "DefineProjection",
        "Note",
        test_guest("weft-test-flaky")?,
    )
    .await?;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("is a verb"),
        "{body}"
    );
    assert_eq!(
        registry(&node).await?,
        before,
        "a refusal changed the registry"
    );

    // With `replaces` naming the current module, it is replaced; a stale
    // one is refused.
    let (status, uploaded) = upload(&node, test_guest("weft-test-misbehave")?).await?;
    assert_eq!(status, 201, "{uploaded}");
    let draft = |replaces: &str| {
        serde_json::json!({"type": "DefineActivity", "name": "Note", "module": uploaded["id"],
            "replaces": replaces, "to": [weft_test_support::PUBLIC]})
    };
    let (status, body) = node
        .api()
        .post_json(
            "/actors/node/outbox",
            &node.admin,
            &draft("bnotthecurrentone"),
        )
        .await?;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "replaces", "{body}");
    let (status, body) = node
        .api()
        .post_json("/actors/node/outbox", &node.admin, &draft(&note_module))
        .await?;
    assert_eq!(status, 201, "{body}");
    let after = registry(&node).await?;
    let note = after["verbs"]
        .as_array()
        .and_then(|v| v.iter().find(|m| m["name"] == "Note"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(note["version"], 2, "{note}");
    assert_eq!(note["module"], uploaded["id"], "{note}");
    // Now it is not a built-in: a new version needs no `replaces`.
    let (status, body) = define(
        &node,
        "DefineActivity",
        "Note",
        test_guest("weft-test-misbehave")?,
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    node.stop().await
}

/// A dry run folds an uploaded projection over the newest activities in a
/// scratch store: it reports the folds that failed, and writes nothing.
#[tokio::test]
async fn a_dry_run_reports_failing_folds_and_writes_nothing() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    for _ in 0..5 {
        node.publish(&token, &note("fail")).await?;
    }
    let (status, uploaded) = upload(&node, test_guest("weft-test-flaky")?).await?;
    assert_eq!(status, 201, "{uploaded}");
    let state_before = projection_state(&node)?;
    let (status, run) = node
        .api()
        .post_json(
            "/admin/projections/dry-run",
            &node.admin,
            &serde_json::json!({"module": uploaded["id"]}),
        )
        .await?;
    assert_eq!(status, 200, "{run}");
    assert!(run["tried"].as_u64().unwrap_or_default() >= 5, "{run}");
    assert!(run["failed"].as_u64().unwrap_or_default() >= 5, "{run}");
    assert!(
        run["folded"].as_u64().unwrap_or_default() > 0,
        "the genesis definitions fold: {run}"
    );
    assert!(
        run["firstError"]
            .as_str()
            .unwrap_or_default()
            .contains("failed on purpose"),
        "{run}"
    );
    assert_eq!(
        projection_state(&node)?,
        state_before,
        "a dry run wrote state"
    );
    let (status, _) = node.get("/projections/flaky/status", None).await?;
    assert_eq!(status, 404, "a dry run defined the projection");
    let (status, body) = node
        .api()
        .post_json(
            "/admin/projections/dry-run",
            "not-the-admin",
            &serde_json::json!({"module": uploaded["id"]}),
        )
        .await?;
    assert_eq!(status, 401, "{body}");
    node.stop().await
}
