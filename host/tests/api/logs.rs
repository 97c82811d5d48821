//! Per-actor logs: independent sequences, the hash chain, concurrent
//! publishing, and durability across a restart.

use std::collections::BTreeSet;

use anyhow::Context;
use serde_json::{Value, json};

use crate::support::{TestNode, assert_chain, id_of, note, private_note, verify};

#[tokio::test]
async fn seq_one_is_the_actors_create_with_a_null_prev() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, _) = node.actor("alice").await?;
    let log = node.log(&alice)?;
    assert_eq!(log.len(), 1);
    let create = &log[0];
    assert_eq!(create["type"], "Create");
    assert_eq!(create["seq"], 1);
    assert_eq!(create["prev"], Value::Null);
    assert_eq!(create["actor"], alice.as_str());
    assert_eq!(create["object"]["type"], "Person");
    assert_eq!(create["object"]["id"], alice.as_str());
    assert_eq!(create["object"]["preferredUsername"], "alice");
    assert_eq!(create["proof"]["key"], format!("{alice}#key-1"));
    let doc = node.doc("alice").await?;
    verify(&doc, create)?;
    assert_eq!(doc["log"]["seq"], 1);
    assert_eq!(doc["log"]["tip"], id_of(create)?.as_str());
    // The Create is what the outbox starts with, for anyone.
    let first = node.get_ok("/actors/alice/outbox?limit=1", None).await?;
    assert_eq!(first["orderedItems"][0], *create);
    node.stop().await
}

#[tokio::test]
async fn two_actors_keep_independent_logs() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, alice_token) = node.actor("alice").await?;
    let (bob, bob_token) = node.actor("bob").await?;
    let bob_before = node.doc("bob").await?;

    let mut alice_ids = Vec::new();
    for i in 0..3 {
        let activity = node
            .publish_ok(&alice_token, &note(&format!("a{i}")))
            .await?;
        assert_eq!(activity["seq"], i + 2);
        alice_ids.push(id_of(&activity)?);
    }
    // Alice publishing did not move Bob's log.
    assert_eq!(node.doc("bob").await?["log"], bob_before["log"]);
    assert_eq!(node.log(&bob)?.len(), 1);

    let b1 = node.publish_ok(&bob_token, &note("b0")).await?;
    assert_eq!(b1["seq"], 2, "bob's sequence does not follow alice's");
    assert_eq!(b1["prev"], bob_before["log"]["tip"]);
    let b2 = node.publish_ok(&bob_token, &note("b1")).await?;
    assert_eq!(b2["seq"], 3);
    assert_eq!(b2["prev"], id_of(&b1)?.as_str());

    let alice_log = node.log(&alice)?;
    let bob_log = node.log(&bob)?;
    assert_chain(&alice_log, &alice)?;
    assert_chain(&bob_log, &bob)?;
    assert_eq!(alice_log.len(), 4);
    assert_eq!(bob_log.len(), 3);
    let logged: Vec<String> = alice_log[1..].iter().map(id_of).collect::<Result<_, _>>()?;
    assert_eq!(logged, alice_ids);
    let alice_doc = node.doc("alice").await?;
    assert_eq!(alice_doc["log"]["seq"], 4);
    assert_eq!(alice_doc["log"]["tip"], alice_ids[2].as_str());
    for activity in &alice_log {
        verify(&alice_doc, activity)?;
    }
    // Bob's key does not verify Alice's activities.
    let bob_doc = node.doc("bob").await?;
    assert!(verify(&bob_doc, &alice_log[1]).is_err());
    node.stop().await
}

#[tokio::test]
async fn published_timestamps_never_go_backwards() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    for i in 0..15 {
        node.publish_ok(&token, &note(&format!("{i}"))).await?;
    }
    let log = node.log(&alice)?;
    let stamps: Vec<std::time::SystemTime> = log
        .iter()
        .map(|a| {
            let text = a["published"].as_str().context("published")?;
            anyhow::ensure!(text.ends_with('Z'), "{text} is not UTC");
            Ok(humantime::parse_rfc3339(text)?)
        })
        .collect::<anyhow::Result<_>>()?;
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishes_by_eight_actors_all_land_in_order() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let mut actors = Vec::new();
    for i in 0..8 {
        actors.push(node.actor(&format!("actor{i}")).await?);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (a, (_, token)) in actors.iter().enumerate() {
        for n in 0..25 {
            let api = node.api();
            let token = token.clone();
            tasks.spawn(async move {
                let draft = note(&format!("actor{a} note {n}"));
                api.publish(&token, &draft).await
            });
        }
    }
    let mut landed = 0;
    while let Some(result) = tasks.join_next().await {
        let (status, body) = result??;
        assert_eq!(status, 201, "{body}");
        landed += 1;
    }
    assert_eq!(landed, 200);
    for (a, (id, _)) in actors.iter().enumerate() {
        let log = node.log(id)?;
        assert_eq!(log.len(), 26, "actor{a}");
        assert_chain(&log, id)?;
        // Every one of its 25 notes is there exactly once.
        let contents: BTreeSet<String> = log[1..]
            .iter()
            .map(|x| {
                x["object"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        assert_eq!(contents.len(), 25);
        assert!(
            contents
                .iter()
                .all(|c| c.starts_with(&format!("actor{a} ")))
        );
        let doc = node.doc(&format!("actor{a}")).await?;
        assert_eq!(doc["log"]["seq"], 26);
        assert_eq!(doc["log"]["tip"], id_of(&log[25])?.as_str());
        for activity in &log {
            verify(&doc, activity)?;
        }
        // The HTTP view agrees with the store.
        let outbox = node
            .get_ok(&format!("/actors/actor{a}/outbox"), None)
            .await?;
        assert_eq!(outbox["totalItems"], 26);
    }
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishes_by_one_actor_have_no_gaps() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..60 {
        let api = node.api();
        let token = token.clone();
        tasks.spawn(async move {
            // Mix public and private so both indexes are exercised.
            let draft = if n % 3 == 0 {
                private_note(&format!("{n}"))
            } else {
                note(&format!("{n}"))
            };
            api.publish(&token, &draft).await
        });
    }
    let mut answered = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let (status, body) = result??;
        assert_eq!(status, 201, "{body}");
        answered.push(body);
    }
    let seqs: BTreeSet<u64> = answered.iter().filter_map(|a| a["seq"].as_u64()).collect();
    assert_eq!(
        seqs,
        (2..=61).collect::<BTreeSet<u64>>(),
        "seqs are unique and gapless"
    );
    let log = node.log(&alice)?;
    assert_eq!(log.len(), 61);
    assert_chain(&log, &alice)?;
    // What each publisher was told is exactly what the log holds there.
    for activity in &answered {
        let seq = activity["seq"].as_u64().context("seq")? as usize;
        assert_eq!(log[seq - 1], *activity);
    }
    let anonymous = node.get_ok("/actors/alice/outbox", None).await?;
    assert_eq!(anonymous["totalItems"], 1 + 40);
    let public = node.walk("/actors/alice/outbox?limit=7", None).await?;
    assert_eq!(public.len(), 41);
    assert!(
        public
            .windows(2)
            .all(|w| w[0]["seq"].as_u64() < w[1]["seq"].as_u64())
    );
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rejected_drafts_among_concurrent_publishes_leave_no_holes() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..40 {
        let api = node.api();
        let token = token.clone();
        tasks.spawn(async move {
            let mut draft = note(&format!("{n}"));
            if n % 4 == 0 {
                draft["id"] = json!("bafyclientchosen");
            }
            let (status, body) = api.publish(&token, &draft).await?;
            anyhow::Ok((n, status, body))
        });
    }
    while let Some(result) = tasks.join_next().await {
        let (n, status, body) = result??;
        let expected = if n % 4 == 0 { 422 } else { 201 };
        assert_eq!(status, expected, "draft {n}: {body}");
    }
    let log = node.log(&alice)?;
    assert_eq!(log.len(), 31);
    assert_chain(&log, &alice)?;
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_drafts_that_claim_the_same_seq_land_once() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let tip = node.doc("alice").await?["log"]["tip"].clone();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..10 {
        let api = node.api();
        let token = token.clone();
        let tip = tip.clone();
        tasks.spawn(async move {
            let mut draft = note(&format!("racer {n}"));
            draft["seq"] = json!(2);
            draft["prev"] = tip;
            api.publish(&token, &draft).await
        });
    }
    let mut statuses = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let (status, body) = result??;
        if status != 201 {
            assert_eq!(
                body["field"].as_str().map(|f| f == "seq" || f == "prev"),
                Some(true)
            );
        }
        statuses.push(status);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 422, 422, 422, 422, 422, 422, 422, 422, 422]);
    let log = node.log(&alice)?;
    assert_eq!(log.len(), 2);
    assert_chain(&log, &alice)?;
    node.stop().await
}

#[tokio::test]
async fn logs_tokens_and_keys_survive_a_restart() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, alice_token) = node.actor("alice").await?;
    let (bob, bob_token) = node.actor("bob").await?;
    for i in 0..5 {
        node.publish_ok(&alice_token, &note(&format!("a{i}")))
            .await?;
    }
    node.publish_ok(&alice_token, &private_note("secret"))
        .await?;
    node.publish_ok(&bob_token, &note("b")).await?;
    let snapshot = node.snapshot()?;
    let alice_doc = node.doc("alice").await?;
    let anonymous_total = node.get_ok("/actors/alice/outbox", None).await?["totalItems"].clone();

    let node = node.restart().await?;
    assert_eq!(
        node.snapshot()?,
        snapshot,
        "the restart changed what is stored"
    );
    assert_eq!(node.doc("alice").await?, alice_doc);
    assert_eq!(
        node.get_ok("/actors/alice/outbox", None).await?["totalItems"],
        anonymous_total
    );
    // Tokens still authenticate, and the logs continue where they were.
    let next = node.publish_ok(&alice_token, &note("after")).await?;
    assert_eq!(next["seq"], 8);
    assert_eq!(next["prev"], alice_doc["log"]["tip"]);
    verify(&node.doc("alice").await?, &next)?;
    let next_bob = node.publish_ok(&bob_token, &note("after")).await?;
    assert_eq!(next_bob["seq"], 3);
    // The admin token still creates actors with ids on the same base.
    let (carol, _) = node.actor("carol").await?;
    assert_eq!(carol, format!("{}/actors/carol", node.base));
    assert_chain(&node.log(&alice)?, &alice)?;
    assert_chain(&node.log(&bob)?, &bob)?;
    node.stop().await
}

#[tokio::test]
async fn a_rotated_key_survives_a_restart() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let rotation = json!({"type": "Update", "object": {"type": "Person", "keys": {
        "add": [{"purposes": ["sign-activity", "rotate-key"]}], "supersede": ["#key-1"]}}});
    node.publish_ok(&token, &rotation).await?;
    let node = node.restart().await?;
    let after = node
        .publish_ok(&token, &note("signed by the new key"))
        .await?;
    assert_eq!(after["proof"]["key"], format!("{alice}#key-2"));
    let doc = node.doc("alice").await?;
    verify(&doc, &after)?;
    assert_chain(&node.log(&alice)?, &alice)?;
    node.stop().await
}
