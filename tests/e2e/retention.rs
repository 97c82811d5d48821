//! Retention (issue 23): a `replication` policy's `keep` rule on a real
//! follower node. Both nodes are restarted with their clocks three days on
//! (the test-only `WEFT_TEST_CLOCK_OFFSET`, the same on both so that they
//! still federate), which ages what alice published past bob's one-day
//! keep of her: the reconcile pass prunes it — gone from the activity
//! endpoint, bob's inbox and his feed (the projections are rebuilt) —
//! while what names bob (a mention, the Accept of his Follow, so he still
//! follows her) stays; sync does not fetch the pruned activities back,
//! and what alice publishes next arrives and is kept.
//!
//! And a `mirror` of a whole origin: the follower learns the origin's
//! actors from its directory (`GET /actors`) and holds each one's public
//! log, followed or not.
//!
//! Not here: which obligations a policy gives (the policy unit tests) and
//! the partition scenarios (`partition.rs`).

use std::collections::BTreeSet;

use anyhow::Context;
use serde_json::{Value, json};

use crate::support::cluster::{
    self, Node, SYNC, condition, feed, missing_on, origin, public_log, sync_now,
};
use crate::support::{PUBLIC, cid, collection, eventually, note};

/// Three days, in seconds.
const THREE_DAYS: &str = "259200";

/// Restarts `node` with its clock three days on.
async fn restart_later(node: &mut Node) -> anyhow::Result<()> {
    node.weft.stop()?;
    node.weft.run_env("WEFT_TEST_CLOCK_OFFSET", THREE_DAYS);
    node.weft.start().await
}

/// Whether `node` serves the activity `activity` (200) or not (404).
async fn holds(node: &Node, activity: &Value) -> anyhow::Result<bool> {
    let (status, body) = node
        .weft
        .get(
            &format!("/activities/{}", cid(activity)),
            Some(&node.weft.admin),
        )
        .await?;
    anyhow::ensure!(status == 200 || status == 404, "{status} {body}");
    Ok(status == 200)
}

/// The content ids of `node`'s actor's feed (every page).
async fn feed_ids(node: &Node) -> anyhow::Result<BTreeSet<String>> {
    Ok(feed(node).await?.iter().map(cid).collect())
}

#[tokio::test]
async fn a_keep_rule_prunes_old_activities_but_not_what_names_a_local_actor() -> anyhow::Result<()>
{
    let mut nodes = cluster::start(&["alice", "bob"], SYNC).await?;
    cluster::follow(&nodes[1], &nodes[0]).await?;
    let mut public = Vec::new();
    for i in 0..3 {
        public.push(
            nodes[0]
                .publish(note(&format!("for the record {i}")))
                .await?,
        );
    }
    let mention = nodes[0]
        .publish(json!({
            "type": "Create",
            "object": {"type": "Note", "content": "bob, see this"},
            "to": [PUBLIC, nodes[1].actor],
        }))
        .await?;
    let mut sent = public.clone();
    sent.push(mention.clone());
    eventually(30, "alice's notes on bob's node", || async {
        Ok(missing_on(&nodes[1].weft, &sent)
            .await?
            .is_empty()
            .then_some(()))
    })
    .await?;

    let spec = json!({"keep": [{"actors": [nodes[0].actor], "days": 1}]}).to_string();
    nodes[1].weft.ok(&[
        "policy",
        "define",
        "keep-a",
        "--kind",
        "replication",
        "--spec",
        &spec,
    ])?;
    // Nothing is a day old yet: nothing goes.
    let pass = sync_now(&nodes[1]).await?;
    assert_eq!(pass["pruned"], 0, "{pass}");
    for activity in &sent {
        assert!(holds(&nodes[1], activity).await?, "{activity}");
    }

    for node in &mut nodes {
        restart_later(node).await?;
    }
    let (alice, bob) = (&nodes[0], &nodes[1]);
    let pass = sync_now(bob).await?;
    assert_eq!(pass["pruned"], json!(public.len()), "{pass}");
    for activity in &public {
        assert!(!holds(bob, activity).await?, "still held: {activity}");
    }
    // What names bob stays: the mention, and alice's Accept, so bob still
    // follows her once the projections are rebuilt.
    assert!(holds(bob, &mention).await?, "the mention went");
    let pruned: BTreeSet<String> = public.iter().map(cid).collect();
    let fed = eventually(60, "bob's feed to be rebuilt", || async {
        Ok(feed_ids(bob).await.ok())
    })
    .await?;
    assert!(fed.contains(&cid(&mention)), "{fed:?}");
    assert!(
        fed.is_disjoint(&pruned),
        "pruned notes in the feed: {fed:?}"
    );
    let following = eventually(60, "bob's follower graph to be rebuilt", || async {
        Ok(collection(&bob.weft, &bob.name, "following").await.ok())
    })
    .await?;
    assert!(
        following.contains(&json!(alice.actor)),
        "bob no longer follows alice: {following:?}"
    );
    let inbox = bob
        .weft
        .get_ok("/actors/bob/inbox?page=1&limit=200", Some(&bob.token))
        .await?;
    let inboxed: BTreeSet<String> = inbox["orderedItems"]
        .as_array()
        .context("an inbox page without orderedItems")?
        .iter()
        .map(cid)
        .collect();
    assert!(inboxed.contains(&cid(&mention)), "{inbox}");
    assert!(
        inboxed.is_disjoint(&pruned),
        "pruned notes in the inbox: {inbox}"
    );
    let status = eventually(30, "the policy to be met", || async {
        let status = bob.admin_get("/admin/policies/keep-a/status").await?;
        Ok((condition(&status, "Compliant").as_deref() == Some("True")).then_some(status))
    })
    .await?;
    assert_eq!(status["obligations"], json!([]), "{status}");

    // Sync (chain and set) does not fetch them back, and a pass with
    // nothing more to prune prunes nothing.
    let pass = sync_now(bob).await?;
    assert_eq!(pass["pruned"], 0, "{pass}");
    assert_eq!(pass["failed"], 0, "{pass}");
    for activity in &public {
        assert!(!holds(bob, activity).await?, "fetched again: {activity}");
    }

    // What alice publishes now is new, and kept.
    let fresh = alice.publish(note("after the prune")).await?;
    eventually(30, "alice's new note on bob's node", || async {
        Ok(holds(bob, &fresh).await?.then_some(()))
    })
    .await?;
    let pass = sync_now(bob).await?;
    assert_eq!(pass["pruned"], 0, "{pass}");
    assert!(holds(bob, &fresh).await?);
    Ok(())
}

/// bob's node mirrors alice's whole origin, where amy lives too and nobody
/// follows either: a pass learns both from the origin's directory and
/// fetches their public logs, and the policy is met.
#[tokio::test]
async fn a_mirrored_origin_is_learnt_from_its_directory_and_held_whole() -> anyhow::Result<()> {
    let nodes = cluster::start(&["alice", "bob"], SYNC).await?;
    let (alice, bob) = (&nodes[0], &nodes[1]);
    let (amy, amy_token) = alice.weft.create_actor_http("amy").await?;
    let directory = alice.weft.get_ok("/actors", None).await?;
    let listed = directory["orderedItems"].clone();
    assert!(
        listed
            .as_array()
            .is_some_and(|l| l.contains(&json!(alice.actor)) && l.contains(&json!(amy))),
        "{directory}"
    );
    for i in 0..3 {
        alice.publish(note(&format!("alice {i}"))).await?;
        crate::support::publish(&alice.weft, &amy_token, note(&format!("amy {i}"))).await?;
    }
    let spec = json!({"mirror": [origin(alice)]}).to_string();
    bob.weft.ok(&[
        "policy",
        "define",
        "mirror-o",
        "--kind",
        "replication",
        "--spec",
        &spec,
    ])?;
    let alice_log = public_log(alice).await?;
    let amy_log: Vec<Value> = {
        let page = alice
            .weft
            .get_ok("/actors/amy/outbox?limit=200", None)
            .await?;
        page["orderedItems"]
            .as_array()
            .context("amy's outbox page")?
            .clone()
    };
    assert!(amy_log.len() >= 3, "amy's outbox: {amy_log:?}");
    let status = eventually(60, "bob's node to mirror alice's origin", || async {
        sync_now(bob).await?;
        let status = bob.admin_get("/admin/policies/mirror-o/status").await?;
        let held = missing_on(&bob.weft, &alice_log).await?.is_empty()
            && missing_on(&bob.weft, &amy_log).await?.is_empty();
        Ok((held && condition(&status, "Compliant").as_deref() == Some("True")).then_some(status))
    })
    .await?;
    assert_eq!(status["obligations"], json!([]), "{status}");
    Ok(())
}
