//! The built-in verbs and projections, registered at init through the same
//! Define path as a user's module.

use anyhow::Context;
use serde_json::{Value, json};

use super::support::{TestNode, id_of, note};
use super::{define, eventually, projection_state, test_guest};

#[tokio::test]
async fn init_registers_the_genesis_bundle_as_definitions() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (status, registry) = node.get("/projections/define-registry", None).await?;
    assert_eq!(status, 200);
    let names = |key: &str| -> Vec<String> {
        let mut n: Vec<String> = registry[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["name"].as_str().map(str::to_owned))
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names("verbs"),
        [
            "Accept", "Announce", "Delete", "Endorse", "Follow", "Like", "Note", "Reject", "Undo"
        ]
    );
    assert_eq!(
        names("projections"),
        ["endorsements", "feed", "follower-graph"]
    );
    for m in registry["verbs"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(registry["projections"].as_array().into_iter().flatten())
    {
        assert_eq!(m["version"], 1, "{m}");
        assert_eq!(m["active"], true, "{m}");
        assert_eq!(m["language"], "rust");
        let id = m["module"].as_str().context("module id")?;
        // The artifact is served and hashes to its id.
        let bytes = node
            .http
            .get(format!("{}/artifacts/{id}", node.base))
            .send()
            .await?
            .bytes()
            .await?;
        assert_eq!(weft_core::model::cid::artifact_id(&bytes), id);
        // The definition is an activity of the service actor in the log.
        let (s, define) = node
            .get(
                &format!(
                    "/activities/{}",
                    m["definedBy"].as_str().context("definedBy")?
                ),
                None,
            )
            .await?;
        assert_eq!(s, 200);
        assert_eq!(define["actor"], format!("{}/actors/node", node.base));
        // Only the Follow verb's `react` asks for anything (an Accept):
        // every other built-in verb is defined not to be asked.
        let reacts = match define["type"].as_str() {
            Some("DefineActivity") if m["name"] == "Follow" => None,
            Some("DefineActivity") => Some(false),
            _ => None,
        };
        assert_eq!(define["reacts"].as_bool(), reacts, "{define}");
    }
    node.stop().await
}

/// A new node compiles each built-in module once, for the engine it runs
/// on (storing the artifact checks that it compiles; that check compiles
/// for the same engine, so the definition finds it compiled).
#[tokio::test]
async fn a_new_node_compiles_each_builtin_once() -> anyhow::Result<()> {
    let cache = tempfile::tempdir()?;
    let dir = cache.path().to_owned();
    let node = TestNode::start_with(|c| c.module_cache = Some(dir)).await?;
    let mut compiled: Vec<String> = std::fs::read_dir(cache.path())?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|name| name.ends_with(".cwasm"))
        .collect();
    compiled.sort();
    assert_eq!(
        compiled.len(),
        weft_genesis::GENESIS.len(),
        "compiled files: {compiled:?}"
    );
    for (_, name, bytes) in weft_genesis::GENESIS {
        let id = weft_core::model::cid::artifact_id(bytes);
        let files = compiled.iter().filter(|f| f.starts_with(&format!("{id}-")));
        assert_eq!(files.count(), 1, "{name}: {compiled:?}");
    }
    node.stop().await
}

/// The built-in Follow verb (the WASM guest) reads `backfill.duration`
/// with the host's own parser: the texts they once disagreed on, and a
/// duration too large to represent, get the same answer in both.
#[tokio::test]
async fn the_follow_verb_reads_durations_as_the_backfill_does() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let follow = |duration: &str| {
        json!({
            "type": "Follow",
            "object": "https://peer.example/actors/bob",
            "backfill": {"mode": "last-T", "duration": duration},
        })
    };
    for duration in ["P1W2D", "P0,5D"] {
        let (status, body) = node.publish(&token, &follow(duration)).await?;
        assert_eq!(status, 201, "{duration}: {body}");
    }
    for (duration, reason) in [
        ("P1.5DT2H", "only the last component"),
        ("P99999999999999999999Y", "too large"),
    ] {
        let (status, body) = node.publish(&token, &follow(duration)).await?;
        assert_eq!(status, 422, "{duration}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(reason), "{duration}: {body}");
    }
    node.stop().await
}

#[tokio::test]
async fn unknown_verbs_and_invalid_notes_are_refused_and_change_nothing() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let before = node.snapshot()?;
    let (status, body) = node
        .publish(&token, &json!({"type": "Poll", "object": "x"}))
        .await?;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"].as_str().unwrap_or_default().contains("Poll"),
        "{body}"
    );
    let (status, body) = node
        .publish(
            &token,
            &json!({"type": "Create", "object": {"type": "Note"}}),
        )
        .await?;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("content"),
        "{body}"
    );
    assert_eq!(node.snapshot()?, before);
    let (status, _) = node.publish(&token, &note("fine")).await?;
    assert_eq!(status, 201);
    node.stop().await
}

/// alice and bob, alice following bob (accepted): alice's id, her token
/// and bob's.
pub(super) async fn alice_following_bob(
    node: &TestNode,
) -> anyhow::Result<(String, String, String)> {
    let (alice, alice_token) = node.actor("alice").await?;
    let (bob, bob_token) = node.actor("bob").await?;
    node.publish(
        &alice_token,
        &json!({"type": "Follow", "object": bob, "to": [bob]}),
    )
    .await?;
    eventually(async || Ok((!graph(node, "following", &alice).await?.is_empty()).then_some(())))
        .await?;
    Ok((alice, alice_token, bob_token))
}

/// The admin's request to rebuild projection `name`, answered once it
/// has caught up.
pub(super) fn rebuild(node: &TestNode, name: &str) -> reqwest::RequestBuilder {
    node.http
        .post(format!("{}/admin/projections/{name}/rebuild", node.base))
        .bearer_auth(&node.admin)
}

async fn graph(node: &TestNode, query: &str, actor: &str) -> anyhow::Result<Vec<String>> {
    let (status, body) = node
        .get(
            &format!(
                "/projections/follower-graph/{query}?actor={}",
                urlencode(actor)
            ),
            None,
        )
        .await?;
    anyhow::ensure!(status == 200, "{query}: {status} {body}");
    Ok(body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn a_local_follow_is_accepted_by_the_follow_verbs_reaction() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, alice_token) = node.actor("alice").await?;
    let (bob, bob_token) = node.actor("bob").await?;
    let (status, follow) = node
        .publish(
            &alice_token,
            &json!({"type": "Follow", "object": bob, "to": [bob]}),
        )
        .await?;
    assert_eq!(status, 201, "{follow}");
    // Bob's Follow verb reacts with an Accept, which the kernel publishes as bob.
    let following = eventually(async || {
        let f = graph(&node, "following", &alice).await?;
        Ok((!f.is_empty()).then_some(f))
    })
    .await?;
    assert_eq!(following, std::slice::from_ref(&bob));
    assert_eq!(
        graph(&node, "followers", &bob).await?,
        std::slice::from_ref(&alice)
    );
    assert!(graph(&node, "pending-out", &alice).await?.is_empty());
    let (_, outbox) = node
        .get("/actors/bob/outbox?page=1", Some(&bob_token))
        .await?;
    let accept = &outbox["orderedItems"][0];
    assert_eq!(accept["type"], "Accept");
    // The verb names the Follow it accepts by its content id.
    assert_eq!(accept["object"], id_of(&follow)?.as_str());

    // Self-follow is refused by the verb; Undo removes the edge.
    let (status, body) = node
        .publish(&alice_token, &json!({"type": "Follow", "object": alice}))
        .await?;
    assert_eq!(status, 422, "{body}");
    let (status, _) = node
        .publish(
            &alice_token,
            &json!({"type": "Undo", "object": follow["id"], "to": [bob]}),
        )
        .await?;
    assert_eq!(status, 201);
    assert!(graph(&node, "following", &alice).await?.is_empty());
    node.stop().await
}

#[tokio::test]
async fn endorsements_count_per_target_and_kind() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, alice) = node.actor("alice").await?;
    let (_, bob) = node.actor("bob").await?;
    let (_, post) = node.publish(&alice, &note("like me")).await?;
    let target = post["id"].as_str().context("id")?;
    for (token, kind) in [
        (&alice, "like"),
        (&bob, "like"),
        (&bob, "share"),
        (&bob, "like"),
    ] {
        let (status, body) = node
            .publish(
                token,
                &json!({"type": "Endorse", "object": target, "kind": kind}),
            )
            .await?;
        assert_eq!(status, 201, "{body}");
    }
    let (status, counts) = node
        .get(
            &format!("/projections/endorsements/counts?id={target}"),
            None,
        )
        .await?;
    assert_eq!(status, 200, "{counts}");
    assert_eq!(
        (counts["like"].as_u64(), counts["share"].as_u64()),
        (Some(2), Some(1)),
        "{counts}"
    );
    let (status, body) = node
        .publish(
            &bob,
            &json!({"type": "Endorse", "object": target, "kind": "dislike"}),
        )
        .await?;
    assert_eq!(status, 422, "{body}");
    node.stop().await
}

#[tokio::test]
async fn the_feed_shows_followed_posts_newest_first_with_announced_originals() -> anyhow::Result<()>
{
    let node = TestNode::start().await?;
    let (alice, _, bob_token) = alice_following_bob(&node).await?;
    let (_, first) = node.publish(&bob_token, &note("first")).await?;
    let (_, second) = node.publish(&bob_token, &note("second")).await?;
    let (status, announce) = node
        .publish(
            &bob_token,
            &json!({"type": "Announce", "object": first["id"], "to": [weft_core::model::PUBLIC]}),
        )
        .await?;
    assert_eq!(status, 201, "{announce}");
    let (status, feed) = node
        .get(
            &format!("/projections/feed/items?actor={}", urlencode(&alice)),
            None,
        )
        .await?;
    assert_eq!(status, 200, "{feed}");
    let items = feed["items"].as_array().context("items")?;
    let ids: Vec<&Value> = items.iter().map(|i| &i["activity"]["id"]).collect();
    let pos = |v: &Value| ids.iter().position(|i| *i == v);
    let (a, s, f) = (pos(&announce["id"]), pos(&second["id"]), pos(&first["id"]));
    assert!(a.is_some() && s.is_some() && f.is_some(), "{feed}");
    assert!(a < s && s < f, "newest first: {feed}");
    let announced = &items[a.unwrap_or_default()]["announced"];
    assert_eq!(announced["id"], first["id"], "{feed}");
    node.stop().await
}

#[tokio::test]
async fn a_rebuild_equals_the_incremental_state() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, alice_token, bob_token) = alice_following_bob(&node).await?;
    for i in 0..5 {
        let (_, post) = node
            .publish(&bob_token, &note(&format!("post {i}")))
            .await?;
        node.publish(
            &alice_token,
            &json!({"type": "Endorse", "object": post["id"], "kind": "like"}),
        )
        .await?;
    }
    let incremental = projection_state(&node)?;
    assert!(incremental.len() > 10, "the projections hold state");
    for name in ["feed", "follower-graph", "endorsements"] {
        let response = rebuild(&node, name).send().await?;
        assert_eq!(response.status(), 200, "{name}");
    }
    assert_eq!(projection_state(&node)?, incremental);
    let (status, body) = node.get("/projections/feed/status", None).await?;
    assert_eq!(status, 200);
    assert_eq!(body["failed"], 0, "{body}");
    node.stop().await
}

/// A rebuild in small steps reads each next stretch of the log ahead, on a
/// thread of its own, and takes from it only what the writer's own read
/// would give: the state it builds is the incremental one, and activities
/// appended between its steps are folded once.
#[tokio::test]
async fn a_rebuild_in_steps_read_ahead_equals_the_incremental_state() -> anyhow::Result<()> {
    let node = TestNode::start_with(|c| c.runtime.build_step = 3).await?;
    let (_, alice_token, bob_token) = alice_following_bob(&node).await?;
    for i in 0..12 {
        let (_, post) = node
            .publish(&bob_token, &note(&format!("post {i}")))
            .await?;
        node.publish(
            &alice_token,
            &json!({"type": "Endorse", "object": post["id"], "kind": "like"}),
        )
        .await?;
        node.publish(&alice_token, &note(&format!("reply {i}")))
            .await?;
    }
    let incremental = projection_state(&node)?;
    assert!(incremental.len() > 30, "the projections hold state");
    for name in ["feed", "endorsements", "follower-graph"] {
        let rebuilt = tokio::spawn(rebuild(&node, name).send());
        // Published while the rebuild steps (or just after): folded once.
        let (status, late) = node
            .publish(&bob_token, &note(&format!("during {name}")))
            .await?;
        assert_eq!(status, 201, "{late}");
        let response = rebuilt.await??;
        assert_eq!(response.status(), 200, "{name}");
    }
    let rebuilt = projection_state(&node)?;
    for name in ["feed", "follower-graph", "endorsements"] {
        let response = rebuild(&node, name).send().await?;
        assert_eq!(response.status(), 200, "{name}");
    }
    assert_eq!(projection_state(&node)?, rebuilt, "rebuilt twice alike");
    assert!(
        rebuilt.len() > incremental.len(),
        "the late notes are in the feed"
    );
    for name in ["feed", "follower-graph", "endorsements"] {
        let (status, body) = node
            .get(&format!("/projections/{name}/status"), None)
            .await?;
        assert_eq!(status, 200);
        assert_eq!(body["failed"], 0, "{body}");
    }
    node.stop().await
}

/// With `runtime.build_step = 1`, building a projection takes one step per
/// activity between the writer's batches: a rebuild is answered once the
/// projection has caught up, with the same state as before; a projection
/// defined on a longer log answers 503 "being built" until it has caught
/// up, and a restart in the middle resumes the build.
#[tokio::test]
async fn projections_are_built_in_steps_and_a_restart_resumes_the_build() -> anyhow::Result<()> {
    let node = TestNode::start_with(|c| c.runtime.build_step = 1).await?;
    let (_, alice_token) = node.actor("alice").await?;
    for i in 0..30 {
        let (status, body) = node
            .publish(&alice_token, &note(&format!("note {i}")))
            .await?;
        assert_eq!(status, 201, "{body}");
    }
    // The genesis projections too were built step by step, between the
    // publishes; they catch up once the writer is idle.
    eventually(async || {
        for name in ["feed", "follower-graph", "endorsements"] {
            let (_, status) = node
                .get(&format!("/projections/{name}/status"), None)
                .await?;
            if !status["building"].is_null() {
                return Ok(None);
            }
        }
        Ok(Some(()))
    })
    .await?;
    let incremental = projection_state(&node)?;
    let last = {
        use redb::ReadableTable;
        let txn = node.kernel.store().begin_read()?;
        let records = txn.open_table(weft_store::tables::RECORDS)?;
        records.last()?.map(|(k, _)| k.value()).context("a log")?
    };
    let response = rebuild(&node, "feed").send().await?;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await?;
    assert_eq!(body["folded"], last, "every activity folded once: {body}");
    assert_eq!(projection_state(&node)?, incremental);
    let (_, status) = node.get("/projections/feed/status", None).await?;
    assert_eq!(status["building"], Value::Null, "{status}");

    let (status, body) = define(
        &node,
        "DefineProjection",
        "flaky",
        test_guest("weft-test-flaky")?,
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    // Until it has caught up, it says so rather than answer from half a log.
    let (status, body) = node.get("/projections/flaky/count?verb=Note", None).await?;
    if status == 503 {
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or("")
                .contains("being built"),
            "{body}"
        );
    } else {
        assert_eq!((status, &body["count"]), (200, &json!(30)), "{body}");
    }
    // Publishing goes on during the build, and what is published then is
    // folded exactly once (by the build or, once caught up, as usual).
    let (status, body) = node
        .publish(&alice_token, &note("during the build"))
        .await?;
    assert_eq!(status, 201, "{body}");
    let node = node.restart().await?;
    let count = eventually(async || {
        let (status, body) = node.get("/projections/flaky/count?verb=Note", None).await?;
        Ok((status == 200).then(|| body["count"].clone()))
    })
    .await?;
    assert_eq!(count, 31);
    let (_, status) = node.get("/projections/flaky/status", None).await?;
    assert_eq!(status["building"], Value::Null, "{status}");
    node.stop().await
}

/// A projection whose build finishes in the batch that defines it answers
/// only once that batch is durable: a query racing the definition gets
/// 404 or 503 "being built", never the empty state of the last committed
/// snapshot.
#[tokio::test]
async fn a_finished_build_is_not_queried_before_it_commits() -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    for i in 0..20 {
        let (status, body) = node.publish(&token, &note(&format!("note {i}"))).await?;
        assert_eq!(status, 201, "{body}");
    }
    let url = format!("{}/projections/flaky/count?verb=Note", node.base);
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (http, url, stop) = (node.http.clone(), url.clone(), stop.clone());
        tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let response = http.get(&url).send().await?;
                if response.status() == 200 {
                    answers.push(response.json::<Value>().await?["count"].clone());
                }
            }
            anyhow::Ok(answers)
        })
    };
    let (status, body) = define(
        &node,
        "DefineProjection",
        "flaky",
        test_guest("weft-test-flaky")?,
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    let (status, body) = node.get("/projections/flaky/count?verb=Note", None).await?;
    assert_eq!((status, &body["count"]), (200, &json!(20)), "{body}");
    stop.store(true, Ordering::Relaxed);
    let answers = watcher.await??;
    assert!(answers.iter().all(|c| *c == json!(20)), "{answers:?}");
    node.stop().await
}

/// While the follower graph is being rebuilt, who follows whom is not
/// known: a note to followers is either refused with 503 naming the graph,
/// or accepted and delivered to every follower; never accepted and missed.
#[tokio::test]
async fn publishing_to_followers_during_a_follower_graph_rebuild_misses_no_one()
-> anyhow::Result<()> {
    let node = TestNode::start_with(|c| c.runtime.build_step = 1).await?;
    let (alice, alice_token) = node.actor("alice").await?;
    let (_, bob_token) = node.actor("bob").await?;
    let (_, carol_token) = node.actor("carol").await?;
    node.publish(
        &bob_token,
        &json!({"type": "Follow", "object": alice, "to": [alice]}),
    )
    .await?;
    eventually(async || Ok((!graph(&node, "followers", &alice).await?.is_empty()).then_some(())))
        .await?;
    for i in 0..20 {
        node.publish(&carol_token, &note(&format!("filler {i}")))
            .await?;
    }
    let rebuilt = tokio::spawn(rebuild(&node, "follower-graph").send());
    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..10 {
        let (status, body) = node
            .publish(&alice_token, &note(&format!("to followers {i}")))
            .await?;
        match status {
            201 => accepted.push(body["id"].clone()),
            503 => {
                assert!(
                    body["detail"]
                        .as_str()
                        .unwrap_or("")
                        .contains("follower graph"),
                    "{body}"
                );
                refused += 1;
            }
            other => anyhow::bail!("publishing during the rebuild: {other} {body}"),
        }
    }
    assert_eq!(rebuilt.await??.status(), 200);
    assert_eq!(accepted.len() + refused, 10);
    let inbox = node
        .walk("/actors/bob/inbox?page=1&limit=100", Some(&bob_token))
        .await?;
    let delivered: Vec<&Value> = inbox.iter().map(|a| &a["id"]).collect();
    for id in &accepted {
        assert!(
            delivered.contains(&id),
            "{id} was accepted but bob never got it"
        );
    }
    node.stop().await
}

#[tokio::test]
async fn a_reject_removes_the_follow_and_only_the_followed_actor_may_send_it() -> anyhow::Result<()>
{
    let node = TestNode::start().await?;
    let (alice, alice_token) = node.actor("alice").await?;
    let (bob, bob_token) = node.actor("bob").await?;
    let (_, carol_token) = node.actor("carol").await?;
    let (_, follow) = node
        .publish(
            &alice_token,
            &json!({"type": "Follow", "object": bob, "to": [bob]}),
        )
        .await?;
    eventually(async || Ok((!graph(&node, "following", &alice).await?.is_empty()).then_some(())))
        .await?;
    // Carol cannot reject a Follow addressed to bob.
    let (status, body) = node
        .publish(
            &carol_token,
            &json!({"type": "Reject", "object": follow["id"]}),
        )
        .await?;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        graph(&node, "following", &alice).await?,
        std::slice::from_ref(&bob)
    );
    // Bob can; the relationship is gone on both sides.
    let (status, body) = node
        .publish(
            &bob_token,
            &json!({"type": "Reject", "object": follow["id"], "to": [alice]}),
        )
        .await?;
    assert_eq!(status, 201, "{body}");
    assert!(graph(&node, "following", &alice).await?.is_empty());
    assert!(graph(&node, "followers", &bob).await?.is_empty());
    assert!(graph(&node, "pending-out", &alice).await?.is_empty());
    node.stop().await
}

/// A Follow whose Accept was never published (the node died between the
/// Follow's commit and the reaction) is answered at the next start: the
/// promise to react is a row written with the Follow. An activity whose
/// verb asks nothing of its local recipients (a Note) leaves no promise.
#[tokio::test]
async fn an_interrupted_reaction_runs_at_the_next_start() -> anyhow::Result<()> {
    use weft::cli::node::Node;
    use weft_kernel::{Kernel, KernelOptions};

    let node = TestNode::start().await?;
    let (alice, _) = node.actor("alice").await?;
    let (bob, _) = node.actor("bob").await?;
    let data = node.data();
    let _dir = node.stop_keeping_data().await?;

    // The kernel alone, with no one running reactions: the Follow commits
    // with its promise, and the "crash" comes before anyone keeps it.
    let options = KernelOptions {
        db_path: data.db(),
        keys_path: data.keys(),
        max_batch: 64,
        cache_mb: weft_store::DEFAULT_CACHE_MB,
        quick_repair: true,
    };
    let kernel = Kernel::open_wasm(
        &options,
        weft_runtime::Limits::default(),
        super::support::shared_module_cache(),
    )?;
    let Value::Object(note) =
        json!({"type": "Create", "object": {"type": "Note", "content": "hi bob"}, "to": [bob]})
    else {
        unreachable!()
    };
    kernel.publish(&alice, note).await?;
    assert!(kernel.store().read()?.pending_reactions()?.is_empty());
    let Value::Object(draft) = json!({"type": "Follow", "object": bob, "to": [bob]}) else {
        unreachable!()
    };
    kernel.publish(&alice, draft).await?;
    assert_eq!(kernel.store().read()?.pending_reactions()?.len(), 1);
    assert!(kernel.followers(&bob)?.is_empty());
    kernel.close();
    drop(kernel);

    // The next start keeps it: bob's verb accepts, the row goes.
    let config = weft::config::Config {
        module_cache: Some(super::support::shared_module_cache()),
        // As every test node: its peers, if any, are on loopback.
        federation: weft_federation::Settings {
            allow_private_addresses: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let node = Node::open(&data, config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let followers = eventually(async || {
        let f = node.kernel.followers(&bob)?;
        Ok((!f.is_empty()).then_some(f))
    })
    .await?;
    assert_eq!(followers, vec![alice.clone()]);
    // The row goes with the Accept; the Accept asks nothing of alice, so it
    // brings no promise of its own.
    assert!(node.kernel.store().read()?.pending_reactions()?.is_empty());
    let reader = node.kernel.store().read()?;
    let accept = reader.activity_at(&bob, 2)?.context("bob's Accept")?;
    let accept = reader.activity(&accept)?.context("record")?;
    assert!(accept.json.contains("\"Accept\""), "{}", accept.json);
    drop(reader);
    node.kernel.close();
    Ok(())
}
