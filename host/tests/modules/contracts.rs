//! Modules of every published contract version on one node: a 0.1.0 and a
//! 0.3.0 build of the same projection, and a 0.2.0 and a 0.3.0 one, fold a
//! log to the same state; a 0.2.0 `fold-batch` or a 0.3.0 packed `fold`
//! with a bad activity in its run folds the rest as single folds would; a
//! 0.2.0 and a 0.3.0 module are passed the same fields of each activity; a
//! 0.2.0 verb's rejection names the field at fault.

use anyhow::Context;
use serde_json::{Value, json};

use super::genesis::{alice_following_bob, rebuild};
use super::support::{TestNode, note};
use super::{define, projection_state, test_guest};

/// The entries of projection `name`, as (key, value).
fn state_of(node: &TestNode, name: &str) -> anyhow::Result<Vec<(String, String)>> {
    Ok(projection_state(node)?
        .into_iter()
        .filter(|(projection, _, _)| projection == name)
        .map(|(_, key, value)| (key, value))
        .collect())
}

async fn endorse(node: &TestNode, token: &str, body: Value) -> anyhow::Result<String> {
    let (status, answer) = node.publish(token, &body).await?;
    anyhow::ensure!(status == 201, "{body} was refused: {answer}");
    answer["id"]
        .as_str()
        .map(str::to_owned)
        .context("the published id")
}

/// The built-in endorsements projection (0.3.0: parsed fields in a packed
/// run, one write call per run) and its source as it was under 0.1.0 fold
/// the same endorsements, likes and undos to the same entries: when the
/// 0.1.0 one is built from the whole log, as both fold what comes after,
/// and after the built-in one is rebuilt with `fold-batch`.
#[tokio::test]
async fn a_0_1_and_a_0_3_build_of_one_projection_fold_a_log_alike() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, alice) = node.actor("alice").await?;
    let (_, bob) = node.actor("bob").await?;
    let mut posts = Vec::new();
    for i in 0..4 {
        let (_, post) = node.publish(&alice, &note(&format!("post {i}"))).await?;
        posts.push(post["id"].as_str().context("id")?.to_owned());
    }
    let mut undo = Vec::new();
    for (i, post) in posts.iter().enumerate() {
        for (token, kind) in [(&alice, "like"), (&bob, "share"), (&bob, "like")] {
            let id = endorse(
                &node,
                token,
                json!({"type": "Endorse", "object": post, "kind": kind}),
            )
            .await?;
            if i % 2 == 0 && kind == "share" {
                undo.push(id);
            }
        }
    }
    for id in &undo {
        endorse(&node, &bob, json!({"type": "Undo", "object": id})).await?;
    }
    let builtin = state_of(&node, "endorsements")?;
    assert!(
        builtin
            .iter()
            .any(|(k, v)| k.starts_with("count") && v == "2"),
        "the built-in counted: {builtin:?}"
    );

    let (status, body) = define(
        &node,
        "DefineProjection",
        "endorsements-v01",
        test_guest("weft-test-endorsements-v0-1")?,
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["wit"], "weft:module@0.1.0", "{body}");
    assert_eq!(state_of(&node, "endorsements-v01")?, builtin);

    // Both fold what comes next.
    let later = endorse(
        &node,
        &alice,
        json!({"type": "Endorse", "object": posts[1], "kind": "share"}),
    )
    .await?;
    endorse(&node, &alice, json!({"type": "Undo", "object": later})).await?;
    endorse(
        &node,
        &bob,
        json!({"type": "Endorse", "object": posts[3], "kind": "share"}),
    )
    .await?;
    let builtin = state_of(&node, "endorsements")?;
    assert_eq!(state_of(&node, "endorsements-v01")?, builtin);

    // A rebuild folds the whole log again with `fold-batch`.
    let response = node
        .http
        .post(format!(
            "{}/admin/projections/endorsements/rebuild",
            node.base
        ))
        .bearer_auth(&node.admin)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(state_of(&node, "endorsements")?, builtin);
    node.stop().await
}

/// The built-in feed (0.3.0) and its very source built against 0.2.0 fold
/// the same log — a follow accepted, notes to followers and to a named
/// local actor, a reply, an announce and an endorsement — to the same
/// entries: when the 0.2.0 one is built from the whole log, as both fold
/// what comes after, and after the built-in one is rebuilt.
#[tokio::test]
async fn a_0_2_and_a_0_3_build_of_the_feed_fold_a_log_alike() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, alice_token, bob_token) = alice_following_bob(&node).await?;
    let (carol, carol_token) = node.actor("carol").await?;
    let publish = async |token: &str, body: Value| -> anyhow::Result<String> {
        let (status, answer) = node.publish(token, &body).await?;
        anyhow::ensure!(status == 201, "{body} was refused: {answer}");
        answer["id"]
            .as_str()
            .map(str::to_owned)
            .context("the published id")
    };
    let first = publish(&bob_token, note("from bob to his followers")).await?;
    publish(
        &carol_token,
        json!({"type": "Create", "object": {"type": "Note", "content": "to alice", "inReplyTo": first}, "to": [alice], "cc": [carol]}),
    )
    .await?;
    publish(&alice_token, json!({"type": "Announce", "object": first})).await?;
    publish(
        &carol_token,
        json!({"type": "Endorse", "object": first, "kind": "like"}),
    )
    .await?;
    let builtin = state_of(&node, "feed")?;
    let bobs_in_alices = format!("feed\u{1f}{alice}\u{1f}");
    assert!(
        builtin
            .iter()
            .filter(|(k, v)| k.starts_with(&bobs_in_alices) && first.ends_with(v.as_str()))
            .count()
            == 1,
        "bob's note is in alice's feed: {builtin:?}"
    );

    let (status, body) = define(
        &node,
        "DefineProjection",
        "feed-v02",
        test_guest("weft-test-feed-v0-2")?,
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["wit"], "weft:module@0.2.0", "{body}");
    // Both folded the definition too (an activity of the node's actor).
    let builtin = state_of(&node, "feed")?;
    assert_eq!(state_of(&node, "feed-v02")?, builtin);

    // Both fold what comes next.
    publish(&bob_token, note("later")).await?;
    publish(
        &carol_token,
        json!({"type": "Create", "object": {"type": "Note", "content": "to both"}, "to": [alice, carol]}),
    )
    .await?;
    let builtin = state_of(&node, "feed")?;
    assert_eq!(state_of(&node, "feed-v02")?, builtin);

    // A rebuild folds the whole log again, in packed runs.
    let response = rebuild(&node, "feed").send().await?;
    assert_eq!(response.status(), 200);
    assert_eq!(state_of(&node, "feed")?, builtin);
    node.stop().await
}

/// A projection built over a log with a failing and a trapping activity in
/// it, built against 0.3.0 and against 0.2.0: its build folds the log in
/// runs (a packed `fold`, a `fold-batch`), which trap; the node folds the
/// halves again, down to single activities, so every other activity is
/// folded once, the two are recorded as failed, and nothing a failed fold
/// wrote is kept. What is published after folds the same way. A fold reads
/// the JSON of the activity it folds with `log.get` of its id.
#[tokio::test]
async fn a_run_with_a_bad_activity_folds_the_rest() -> anyhow::Result<()> {
    for (guest, wit) in [
        ("weft-test-batch", "weft:module@0.3.0"),
        ("weft-test-batch-v0-2", "weft:module@0.2.0"),
    ] {
        a_run_with_a_bad_activity_folds_the_rest_in(guest, wit)
            .await
            .with_context(|| format!("{guest} ({wit})"))?;
    }
    Ok(())
}

async fn a_run_with_a_bad_activity_folds_the_rest_in(guest: &str, wit: &str) -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let contents = ["a", "b", "fail", "c", "d", "trap", "e", "f", "g", "echo"];
    for content in contents {
        let (status, body) = node.publish(&token, &note(content)).await?;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = define(&node, "DefineProjection", "batch", test_guest(guest)?).await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["wit"], wit, "{body}");
    let (_, count) = node.get("/projections/batch/count?verb=Note", None).await?;
    assert_eq!(count["count"], 8, "{count}");
    let (_, marker) = node.get("/projections/batch/marker", None).await?;
    assert_eq!(marker["marker"], false, "a failed fold's writes were kept");
    let (_, echo) = node.get("/projections/batch/echo", None).await?;
    assert_eq!(echo["echo"], "echo", "{echo}");
    let (_, status_body) = node.get("/projections/batch/status", None).await?;
    assert_eq!(status_body["failed"], 2, "{status_body}");
    let messages: Vec<String> = status_body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect();
    assert!(messages[0].contains("failed on purpose"), "{messages:?}");
    assert!(messages[1].contains("trapped"), "{messages:?}");

    for content in ["h", "trap", "spin", "i"] {
        let (status, body) = node.publish(&token, &note(content)).await?;
        assert_eq!(status, 201, "a failing fold must not block the log: {body}");
    }
    let (_, count) = node.get("/projections/batch/count?verb=Note", None).await?;
    assert_eq!(count["count"], 10, "{count}");
    let (_, status_body) = node.get("/projections/batch/status", None).await?;
    assert_eq!(status_body["failed"], 4, "{status_body}");
    node.stop().await
}

/// A 0.2.0 verb names the field at fault; the publisher's 422 carries it.
#[tokio::test]
async fn a_verb_rejection_names_its_field() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let (status, body) = node
        .publish(
            &token,
            &json!({"type": "Create", "object": {"type": "Note"}, "to": ["https://www.w3.org/ns/activitystreams#Public"]}),
        )
        .await?;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "object.content", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("needs `object.content`")),
        "{body}"
    );
    node.stop().await
}

/// A rebuild builds the projection's next generation beside the one it
/// serves: meanwhile queries answer from the old generation (never 503,
/// never a half-built state) and it folds what is published; a restart in
/// the middle keeps serving the old generation and resumes the rebuild,
/// which then swaps the new generation in, equal to the old.
#[tokio::test]
async fn a_rebuild_serves_the_old_generation_until_it_swaps() -> anyhow::Result<()> {
    let node = TestNode::start_with(|c| c.runtime.build_step = 1).await?;
    let (_, token) = node.actor("alice").await?;
    let (status, body) = define(
        &node,
        "DefineProjection",
        "batch",
        test_guest("weft-test-batch")?,
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    // Ten notes it counts; 150 it spends a call's fuel on (~10 ms each
    // here), so a rebuild takes more than a second.
    for i in 0..10 {
        let (status, body) = node.publish(&token, &note(&format!("n{i}"))).await?;
        assert_eq!(status, 201, "{body}");
    }
    for _ in 0..150 {
        let (status, body) = node.publish(&token, &note("spin")).await?;
        assert_eq!(status, 201, "{body}");
    }
    let count = async |node: &TestNode| -> anyhow::Result<(u16, Value)> {
        let (status, body) = node.get("/projections/batch/count?verb=Note", None).await?;
        Ok((status, body["count"].clone()))
    };
    // Defined with the log, it was built step by step between the publishes.
    weft_test_support::eventually(30, "the first build", async || {
        let (_, status) = node.get("/projections/batch/status", None).await?;
        Ok(status["building"].is_null().then_some(()))
    })
    .await?;
    assert_eq!(count(&node).await?, (200, json!(10)));
    // Its counts and marker, not the fields it keeps of each activity.
    let counts = |state: Vec<(String, String)>| -> Vec<(String, String)> {
        state
            .into_iter()
            .filter(|(key, _)| !key.starts_with("fields|"))
            .collect()
    };
    let before = counts(state_of(&node, "batch")?);

    // Asked of the kernel, not over HTTP: a clean stop waits for the
    // requests it is answering, and this one is answered at the swap.
    let rebuild = {
        let kernel = node.kernel.clone();
        tokio::spawn(async move { kernel.rebuild("batch").await })
    };
    let mut seen_rebuilding = false;
    for _ in 0..200 {
        let (_, status) = node.get("/projections/batch/status", None).await?;
        if status["rebuilding"] == true {
            seen_rebuilding = true;
            assert_eq!(status["generation"], 0, "{status}");
            assert!(!status["building"].is_null(), "{status}");
            // The old generation answers, whole.
            assert_eq!(count(&node).await?, (200, json!(10)));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(seen_rebuilding, "the rebuild was never seen under way");
    // Published meanwhile: folded into the generation served, and by the
    // rebuild when it gets there.
    let (status, body) = node.publish(&token, &note("during")).await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(count(&node).await?, (200, json!(11)));

    let node = node.restart().await?;
    rebuild.abort();
    let (_, status) = node.get("/projections/batch/status", None).await?;
    assert_eq!(status["rebuilding"], true, "resumed: {status}");
    assert_eq!(status["generation"], 0, "{status}");
    assert_eq!(count(&node).await?, (200, json!(11)));
    let status = weft_test_support::eventually(30, "the rebuild to swap", async || {
        let (_, status) = node.get("/projections/batch/status", None).await?;
        Ok((status["rebuilding"] == false && status["building"].is_null()).then_some(status))
    })
    .await?;
    assert_eq!(status["generation"], 1, "{status}");
    assert_eq!(count(&node).await?, (200, json!(11)));
    let after = counts(state_of(&node, "batch")?);
    let mut expected = before;
    expected.retain(|(k, _)| k != "count|Note");
    expected.push(("count|Note".into(), "11".into()));
    expected.sort();
    assert_eq!(after, expected);
    // The replaced generation's keys are removed.
    let leftover = weft_test_support::eventually(10, "the old generation to go", async || {
        let snapshot = node.kernel.store().begin_read()?;
        let mut left = 0;
        snapshot.kv_scan("batch", "", |_, _| {
            left += 1;
            true
        })?;
        Ok((left == 0).then_some(left))
    })
    .await?;
    assert_eq!(leftover, 0);
    node.stop().await
}

/// A definition whose `wit` is not its component's contract, whose
/// `folds` is not a list of activity types, whose `reacts` is not a
/// boolean or is a projection's, or that defines a 0.3.0 module as a verb,
/// is refused naming the field, and nothing of the node changes.
#[tokio::test]
async fn a_definition_with_a_wrong_wit_folds_or_reacts_changes_nothing() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let api = node.api();
    let (status, uploaded) = api
        .upload(&node.admin, test_guest("weft-test-batch")?)
        .await?;
    assert_eq!(status, 201, "{uploaded}");
    let digest = async || -> anyhow::Result<Value> {
        let (status, body) = node.get("/admin/digest", Some(&node.admin)).await?;
        anyhow::ensure!(status == 200, "{body}");
        Ok(body)
    };
    let before = digest().await?;
    for (extra, field, says) in [
        (
            json!({"wit": "weft:module@0.1.0"}),
            "wit",
            "built against weft:module@0.3.0",
        ),
        (
            json!({"wit": "weft:module@0.2.0"}),
            "wit",
            "built against weft:module@0.3.0",
        ),
        (
            json!({"folds": "Follow"}),
            "folds",
            "list of 1 to 64 activity types",
        ),
        (
            json!({"folds": []}),
            "folds",
            "list of 1 to 64 activity types",
        ),
        (
            json!({"reacts": false}),
            "reacts",
            "a projection does not react",
        ),
        (
            json!({"type": "DefineActivity", "name": "Batch", "reacts": "no"}),
            "reacts",
            "must be true or false",
        ),
        // A 0.3.0 projection as a verb (0.3.0 has no verb world).
        (
            json!({"type": "DefineActivity", "name": "Batch"}),
            "module",
            "is a projection, not a verb",
        ),
    ] {
        let mut draft = json!({
            "type": "DefineProjection",
            "name": "batch",
            "module": uploaded["id"],
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
        });
        for (k, v) in extra.as_object().context("an object")? {
            draft[k] = v.clone();
        }
        let (status, body) = api
            .post_json("/actors/node/outbox", &node.admin, &draft)
            .await?;
        assert_eq!(status, 422, "{draft}: {body}");
        assert_eq!(body["field"], field, "{body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| d.contains(says)),
            "{body}"
        );
        assert_eq!(digest().await?, before, "{draft} changed the node");
    }
    let (status, _) = node.get("/projections/batch/count?verb=Note", None).await?;
    assert_eq!(status, 404, "no projection was defined");
    node.stop().await
}

/// A 0.2.0 and a 0.3.0 module are passed the same fields of every
/// activity, and they are the activity's: 0.3.0's run is copied into the
/// module's memory as the node lays it out, 0.2.0's records are lowered by
/// wasmtime a field at a time, so a field out of place in the layout shows
/// here. Checked for what a build folds from the log and for what the
/// writer folds as it is published.
#[tokio::test]
async fn a_0_2_and_a_0_3_module_are_passed_the_same_fields() -> anyhow::Result<()> {
    const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";
    let node = TestNode::start().await?;
    let (alice_url, alice) = node.actor("alice").await?;
    let (bob_url, bob) = node.actor("bob").await?;
    let first = node
        .publish_ok(
            &alice,
            &json!({"type": "Create", "object": {"type": "Note", "content": "first"},
                "to": [PUBLIC, &bob_url], "cc": [format!("{alice_url}/followers")]}),
        )
        .await?;
    let first_id = first["id"].as_str().context("id")?.to_owned();
    let mut published = vec![first];
    for (token, draft) in [
        (
            &bob,
            json!({"type": "Create", "to": &alice_url, "cc": [PUBLIC],
                "object": {"type": "Note", "content": "a reply, ünïcode", "inReplyTo": &first_id}}),
        ),
        (&bob, json!({"type": "Follow", "object": &alice_url})),
        (
            &alice,
            json!({"type": "Endorse", "object": &first_id, "kind": "like"}),
        ),
    ] {
        published.push(node.publish_ok(token, &draft).await?);
    }
    for (name, guest, wit) in [
        ("fields3", "weft-test-batch", "weft:module@0.3.0"),
        ("fields2", "weft-test-batch-v0-2", "weft:module@0.2.0"),
    ] {
        let (status, body) = define(&node, "DefineProjection", name, test_guest(guest)?).await?;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["wit"], wit, "{body}");
    }
    // Folded by the writer as it is appended.
    published.push(
        node.publish_ok(
            &alice,
            &json!({"type": "Create", "object": {"type": "Note", "content": "after"},
                "to": [&bob_url], "cc": []}),
        )
        .await?,
    );

    let list = |v: &Value| -> Vec<Value> {
        match v {
            Value::Array(items) => items.clone(),
            Value::String(_) => vec![v.clone()],
            _ => Vec::new(),
        }
    };
    // A module is passed an activity's content id, not its URL.
    let cid = |activity: &Value| -> anyhow::Result<String> {
        let url = activity["id"].as_str().context("id")?;
        Ok(url.rsplit('/').next().unwrap_or(url).to_owned())
    };
    for activity in &published {
        let id = &cid(activity)?;
        let path = |name: &str| format!("/projections/{name}/fields?id={id}");
        let packed = node.get_ok(&path("fields3"), None).await?;
        let records = node.get_ok(&path("fields2"), None).await?;
        assert_eq!(packed, records, "0.3.0 and 0.2.0 differ on {activity}");

        let object = &activity["object"];
        let embedded = object.is_object();
        assert_eq!(packed["id"], id.as_str());
        assert_eq!(packed["kind"], activity["type"]);
        assert_eq!(packed["actor"], activity["actor"]);
        assert_eq!(packed["seq"], activity["seq"]);
        assert_eq!(packed["published"], activity["published"]);
        assert_eq!(packed["backfilled"], false);
        assert_eq!(
            packed["to"],
            Value::Array(list(&activity["to"])),
            "{activity}"
        );
        assert_eq!(
            packed["cc"],
            Value::Array(list(&activity["cc"])),
            "{activity}"
        );
        if embedded {
            assert_eq!(packed["verb"], object["type"]);
            assert_eq!(packed["object_type"], object["type"]);
            assert_eq!(packed["in_reply_to"], object["inReplyTo"], "{activity}");
        } else {
            assert_eq!(packed["verb"], activity["type"]);
            assert_eq!(packed["object_type"], Value::Null);
            assert_eq!(packed["object_id"], *object);
            assert_eq!(packed["in_reply_to"], Value::Null);
        }
    }
    let reply = node
        .get_ok(
            &format!("/projections/fields3/fields?id={}", cid(&published[1])?),
            None,
        )
        .await?;
    assert_eq!(reply["in_reply_to"], first_id.as_str(), "{reply}");
    assert_eq!(
        reply["to"],
        json!([alice_url]),
        "a string `to` is a list of one"
    );
    node.stop().await
}
