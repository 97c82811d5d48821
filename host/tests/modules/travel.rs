//! Verbs travel: a peer's activity whose verb this node lacks is parked,
//! the verb's definition and artifact are fetched from the author's origin
//! (a stand-in peer whose keys the test holds), and the module policy
//! decides whether it is admitted (`followed`), waits for approval
//! (`manual`), or is refused (an artifact that does not hash to its id).

use anyhow::Context;
use serde_json::{Value, json};

use crate::peer::FakePeer;
use crate::support::{Req, TestNode, eventually};
use crate::test_guest;

/// A Shout activity (interpreted by the misbehave test verb, which accepts
/// any content but "reject") from a peer actor to `to`.
fn shout(content: &str, to: &str) -> Value {
    json!({"type": "Shout", "object": {"type": "Note", "content": content}, "to": [to]})
}

async fn pending(node: &TestNode) -> anyhow::Result<Value> {
    let reply = node
        .send(Req::get("/admin/modules/pending").bearer(&node.admin))
        .await?;
    anyhow::ensure!(reply.status == 200, "{}", reply.text);
    reply.json()
}

/// The pending module for `verb` once its state is `state`.
async fn wait_state(node: &TestNode, verb: &str, state: &str) -> anyhow::Result<Value> {
    eventually(
        10,
        &format!("the module for {verb} to be {state}"),
        || async {
            let pending = pending(node).await?;
            Ok(pending["modules"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["verb"] == verb && m["state"] == state)
                .cloned())
        },
    )
    .await
}

async fn posted(node: &TestNode, name: &str, activity: &Value) -> anyhow::Result<String> {
    let reply = node
        .send(Req::post(format!("/actors/{name}/inbox")).json(activity))
        .await?;
    anyhow::ensure!(reply.status == 202, "{}", reply.text);
    Ok(reply.json()?["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// The content id of an activity (its `id` is `…/activities/{cid}`).
fn id(activity: &Value) -> anyhow::Result<&str> {
    Ok(weft_core::model::cid::internal(
        activity["id"].as_str().context("an id")?,
    ))
}

/// A node under the `manual` policy with a local actor alice (answered
/// with her token), and a stand-in peer with an actor eve.
async fn manual_node_and_eve() -> anyhow::Result<(TestNode, String, String, FakePeer)> {
    let node = TestNode::start_with(|config| {
        config.federation.module_policy = weft_federation::modules::Policy::Manual;
    })
    .await?;
    let (alice, token) = node.actor("alice").await?;
    let peer = FakePeer::start().await?;
    peer.actor("eve")?;
    Ok((node, alice, token, peer))
}

#[tokio::test]
async fn a_verb_defined_by_a_followed_actor_is_admitted_and_its_activities_ingested()
-> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let peer = FakePeer::start().await?;
    let bob = peer.actor("bob")?;
    let define = peer.define_verb("bob", "Shout", &test_guest("weft-test-misbehave")?, None)?;

    // alice follows bob, and bob accepts.
    let follow = node
        .publish_ok(
            &token,
            &json!({"type": "Follow", "object": bob, "to": [bob]}),
        )
        .await?;
    let accept = peer.sign(
        "bob",
        json!({"type": "Accept", "object": follow["id"], "to": [alice]}),
    )?;
    assert_eq!(posted(&node, "alice", &accept).await?, "accepted");

    // Two Shouts arrive before the node knows the verb: both are parked.
    let first = peer.sign("bob", shout("hello", &alice))?;
    let refused = peer.sign("bob", shout("reject", &alice))?;
    assert_eq!(posted(&node, "alice", &first).await?, "pending");
    assert_eq!(posted(&node, "alice", &refused).await?, "pending");

    // The node fetches bob's definition and admits it (alice follows bob);
    // the parked Shout is ingested, the one the verb refuses is dropped.
    let path = format!("/activities/{}", id(&first)?);
    eventually(10, "the parked Shout to be ingested", || async {
        Ok((node.get(&path, Some(&token)).await?.0 == 200).then_some(()))
    })
    .await?;
    let registry = node.get_ok("/projections/define-registry", None).await?;
    let shout_verb = registry["verbs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == "Shout")
        .context("Shout in the registry")?;
    assert_eq!(shout_verb["definedBy"], define["id"], "{shout_verb}");
    assert_eq!(shout_verb["module"], define["module"]);
    eventually(10, "nothing to stay parked", || async {
        let p = pending(&node).await?;
        Ok((p["activities"].as_array().is_some_and(Vec::is_empty)
            && p["modules"].as_array().is_some_and(Vec::is_empty))
        .then_some(()))
    })
    .await?;
    let (status, _) = node
        .get(&format!("/activities/{}", id(&refused)?), Some(&token))
        .await?;
    assert_eq!(status, 404, "the verb refused it once it was known");

    // It folded: alice's feed shows it, and the next Shout goes straight in.
    let feed = node
        .get_ok(&format!("/projections/feed?actor={alice}"), Some(&token))
        .await?;
    assert!(
        feed["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| i["activity"]["id"] == first["id"]),
        "{feed}"
    );
    let next = peer.sign("bob", shout("again", &alice))?;
    assert_eq!(posted(&node, "alice", &next).await?, "accepted");
    Ok(())
}

#[tokio::test]
async fn under_the_manual_policy_a_verb_waits_for_approval() -> anyhow::Result<()> {
    let (node, alice, token, peer) = manual_node_and_eve().await?;
    let define = peer.define_verb("eve", "Shout", &test_guest("weft-test-misbehave")?, None)?;
    let before = node.snapshot()?;
    let activity = peer.sign("eve", shout("hi", &alice))?;
    assert_eq!(posted(&node, "alice", &activity).await?, "pending");

    let module = wait_state(&node, "Shout", "awaiting-approval").await?;
    assert_eq!(module["definedBy"], define["id"], "{module}");
    assert_eq!(module["parked"], 1);
    assert!(
        module["reason"].as_str().unwrap_or("").contains("manual"),
        "{module}"
    );
    assert_eq!(
        node.snapshot()?,
        before,
        "nothing is stored before approval"
    );
    // A module waiting for approval is a small signed document here: its
    // artifact is neither fetched nor compiled until it is admitted.
    let artifact = define["module"].as_str().unwrap_or_default();
    assert!(
        node.kernel.store().read()?.artifact(artifact)?.is_none(),
        "the artifact of a module awaiting approval was fetched"
    );
    assert_eq!(
        node.get(&format!("/artifacts/{artifact}"), None).await?.0,
        404
    );
    let path = format!("/activities/{}", id(&activity)?);
    assert_eq!(node.get(&path, Some(&token)).await?.0, 404);

    // Only the admin approves.
    let reply = node
        .send(Req::post("/admin/modules/pending/Shout/approve").bearer(&token))
        .await?;
    assert_eq!(reply.status, 403, "{}", reply.text);
    let reply = node
        .send(Req::post("/admin/modules/pending/Shout/approve").bearer(&node.admin))
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()?["released"], 1);
    assert_eq!(node.get(&path, Some(&token)).await?.0, 200);
    assert!(
        node.kernel.store().read()?.artifact(artifact)?.is_some(),
        "approval fetches the artifact"
    );
    let left = pending(&node).await?;
    assert_eq!(left["modules"], json!([]), "{left}");
    assert_eq!(left["activities"], json!([]), "{left}");
    Ok(())
}

#[tokio::test]
async fn a_tampered_artifact_is_refused_and_its_activities_stay_parked() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let peer = FakePeer::start().await?;
    let bob = peer.actor("bob")?;
    let real = test_guest("weft-test-misbehave")?;
    let mut tampered = real.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    let define = peer.define_verb("bob", "Shout", &real, Some(tampered))?;
    let follow = node
        .publish_ok(
            &token,
            &json!({"type": "Follow", "object": bob, "to": [bob]}),
        )
        .await?;
    let accept = peer.sign(
        "bob",
        json!({"type": "Accept", "object": follow["id"], "to": [alice]}),
    )?;
    posted(&node, "alice", &accept).await?;
    let before = node.snapshot()?;

    let activity = peer.sign("bob", shout("hi", &alice))?;
    assert_eq!(posted(&node, "alice", &activity).await?, "pending");
    let module = wait_state(&node, "Shout", "refused").await?;
    assert!(
        module["reason"].as_str().unwrap_or("").contains("tampered"),
        "{module}"
    );
    // Nothing was admitted or stored: no verb, no artifact, no activity;
    // the activity stays parked, and approving a refused module fails.
    let registry = node.get_ok("/projections/define-registry", None).await?;
    assert!(
        !registry["verbs"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| v["name"] == "Shout"),
        "{registry}"
    );
    let artifact = format!(
        "/artifacts/{}",
        define["module"].as_str().context("module")?
    );
    assert_eq!(node.get(&artifact, None).await?.0, 404);
    assert_eq!(node.snapshot()?, before);
    assert_eq!(pending(&node).await?["activities"][0]["id"], activity["id"]);
    let reply = node
        .send(Req::post("/admin/modules/pending/Shout/approve").bearer(&node.admin))
        .await?;
    assert_eq!(reply.status, 409, "{}", reply.text);
    Ok(())
}

#[tokio::test]
async fn a_verb_defined_here_while_pending_releases_what_it_parked() -> anyhow::Result<()> {
    let (node, alice, token, peer) = manual_node_and_eve().await?;
    let bytes = test_guest("weft-test-misbehave")?;
    peer.define_verb("eve", "Shout", &bytes, None)?;
    let activity = peer.sign("eve", shout("hi", &alice))?;
    assert_eq!(posted(&node, "alice", &activity).await?, "pending");
    wait_state(&node, "Shout", "awaiting-approval").await?;

    // The operator defines Shout here instead of approving the peer's.
    let (status, body) = crate::define(&node, "DefineActivity", "Shout", bytes).await?;
    assert_eq!(status, 201, "{body}");
    let reply = node
        .send(Req::post("/admin/modules/pending/Shout/approve").bearer(&node.admin))
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()?["released"], 1);
    let path = format!("/activities/{}", id(&activity)?);
    assert_eq!(node.get(&path, Some(&token)).await?.0, 200);
    let left = pending(&node).await?;
    assert_eq!(left["modules"], json!([]), "{left}");
    assert_eq!(left["activities"], json!([]), "{left}");
    Ok(())
}

#[tokio::test]
async fn an_artifact_fetched_for_a_verb_that_is_then_refused_is_removed() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let peer = FakePeer::start().await?;
    let bob = peer.actor("bob")?;
    // A component, but a projection: it is fetched (its definer is
    // followed), stored, and then refused as a verb when defined.
    let projection = test_guest("weft-test-flaky")?;
    let define = peer.define_verb("bob", "Shout", &projection, None)?;
    let follow = node
        .publish_ok(
            &token,
            &json!({"type": "Follow", "object": bob, "to": [bob]}),
        )
        .await?;
    let accept = peer.sign(
        "bob",
        json!({"type": "Accept", "object": follow["id"], "to": [alice]}),
    )?;
    posted(&node, "alice", &accept).await?;
    let before = node.snapshot()?;

    let activity = peer.sign("bob", shout("hi", &alice))?;
    assert_eq!(posted(&node, "alice", &activity).await?, "pending");
    let module = wait_state(&node, "Shout", "refused").await?;
    assert!(
        module["reason"]
            .as_str()
            .unwrap_or("")
            .contains("admitting it failed"),
        "{module}"
    );
    let artifact = define["module"].as_str().context("module")?;
    assert!(
        node.kernel.store().read()?.artifact(artifact)?.is_none(),
        "the refused verb's artifact was kept"
    );
    assert_eq!(node.snapshot()?, before);
    Ok(())
}

/// Publishes a `modules` policy as the service actor (admin token).
async fn modules_policy(node: &TestNode, spec: Value) -> anyhow::Result<()> {
    let reply = node
        .send(Req::post("/actors/node/outbox").bearer(&node.admin).json(
            &json!({"type": "DefinePolicy", "name": "verbs", "kind": "modules", "spec": spec}),
        ))
        .await?;
    anyhow::ensure!(reply.status == 201, "{}", reply.text);
    Ok(())
}

#[tokio::test]
async fn a_modules_policy_in_the_log_overrides_the_configuration_without_a_restart()
-> anyhow::Result<()> {
    // weft.toml says `manual`; the log's policy says eve's verbs are allowed.
    let (node, alice, token, peer) = manual_node_and_eve().await?;
    let eve = format!("{}/actors/eve", peer.base);
    modules_policy(&node, json!({"policy": "allow", "allow": [eve]})).await?;
    peer.define_verb("eve", "Shout", &test_guest("weft-test-misbehave")?, None)?;
    let shouted = peer.sign("eve", shout("hi", &alice))?;
    assert_eq!(posted(&node, "alice", &shouted).await?, "pending");
    let path = format!("/activities/{}", id(&shouted)?);
    eventually(10, "the Shout to be admitted under the policy", || async {
        Ok((node.get(&path, Some(&token)).await?.0 == 200).then_some(()))
    })
    .await?;

    // A new version of the policy applies to the next verb at once.
    modules_policy(&node, json!({"policy": "manual"})).await?;
    peer.define_verb("eve", "Yell", &test_guest("weft-test-misbehave")?, None)?;
    let yelled = peer.sign(
        "eve",
        json!({"type": "Yell", "object": {"type": "Note", "content": "hey"}, "to": [alice]}),
    )?;
    assert_eq!(posted(&node, "alice", &yelled).await?, "pending");
    let module = wait_state(&node, "Yell", "awaiting-approval").await?;
    assert!(
        module["reason"].as_str().unwrap_or("").contains("manual"),
        "{module}"
    );
    Ok(())
}
