//! Two real `weft` processes on two loopback ports federating with no human
//! in the loop (issue 4): discovery, follow with backfill, delivery, key
//! rotation, Announce, restarts, and a crash in the middle of delivery to a
//! peer that was down.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::support::{PUBLIC, TestCa, Weft, cid, collection, eventually, note, publish};

/// A compressed retry schedule whose tail outlasts a stopped peer.
const RETRY: &str = "200ms,400ms,800ms,1s,2s,3s,5s,10s,30s";

async fn node() -> anyhow::Result<Weft> {
    start(Weft::init()?).await
}

async fn start(mut weft: Weft) -> anyhow::Result<Weft> {
    weft.run_env("WEFT_FEDERATION_RETRY", RETRY);
    weft.start().await?;
    Ok(weft)
}

/// Every activity in `name`'s inbox, newest first.
async fn inbox(weft: &Weft, name: &str, token: &str) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    for page in 1.. {
        let body = weft
            .get_ok(
                &format!("/actors/{name}/inbox?page={page}&limit=200"),
                Some(token),
            )
            .await?;
        items.extend(body["orderedItems"].as_array().cloned().unwrap_or_default());
        if body.get("next").is_none() {
            break;
        }
    }
    Ok(items)
}

fn ids(items: &[Value]) -> Vec<Value> {
    items.iter().map(|i| i["id"].clone()).collect()
}

async fn feed(weft: &Weft, actor: &str, token: &str) -> anyhow::Result<Vec<Value>> {
    let body = weft
        .get_ok(
            &format!("/projections/feed?actor={actor}&limit=100"),
            Some(token),
        )
        .await?;
    Ok(body["items"].as_array().cloned().unwrap_or_default())
}

#[tokio::test]
async fn two_nodes_federate_through_restarts_and_a_crash() -> anyhow::Result<()> {
    flow(node().await?, node().await?, false).await
}

/// The same flow between two nodes that serve HTTPS themselves, with
/// certificates of a CA the test made, which each trusts (`ca_file`).
#[tokio::test]
async fn two_nodes_federate_over_https() -> anyhow::Result<()> {
    let ca = TestCa::new()?;
    let a = start(Weft::init_tls(&ca)?).await?;
    let b = start(Weft::init_tls(&ca)?).await?;
    assert!(a.base.starts_with("https://"));
    flow(a, b, true).await
}

async fn flow(mut a: Weft, mut b: Weft, https: bool) -> anyhow::Result<()> {
    let (alice, alice_token) = a.create_actor_http("alice").await?;
    let (bob, bob_token) = b.create_actor_http("bob").await?;

    // A resolves bob by WebFinger (over HTTPS when B serves it).
    let resolved = a.ok(&["resolve", &format!("acct:bob@{}", b.listen())])?;
    assert!(resolved.starts_with(&bob), "{resolved}");
    assert!(resolved.contains("assertionMethod"), "{resolved}");
    assert_eq!(bob.starts_with("https://"), https, "{bob}");

    // bob's earlier notes; alice follows him asking for the last two.
    let mut old = Vec::new();
    for i in 0..3 {
        old.push(publish(&b, &bob_token, note(&format!("earlier {i}"))).await?);
    }
    publish(
        &a,
        &alice_token,
        json!({"type": "Follow", "object": bob, "to": [bob], "backfill": {"mode": "last-N", "limit": 2}}),
    )
    .await?;
    eventually(20, "alice to follow bob", || async {
        Ok(collection(&a, "alice", "following")
            .await?
            .contains(&json!(bob))
            .then_some(()))
    })
    .await?;
    assert_eq!(
        collection(&b, "bob", "followers").await?,
        vec![json!(alice)]
    );
    let got = eventually(20, "the backfill", || async {
        let got = ids(&inbox(&a, "alice", &alice_token).await?);
        Ok((got.contains(&old[1]["id"]) && got.contains(&old[2]["id"])).then_some(got))
    })
    .await?;
    assert!(
        !got.contains(&old[0]["id"]),
        "last-N 2 brought a third note"
    );

    // A new note lands in alice's inbox and feed.
    let fresh = publish(&b, &bob_token, note("fresh")).await?;
    eventually(20, "bob's new note in alice's feed", || async {
        let items = feed(&a, &alice, &alice_token).await?;
        Ok(items
            .iter()
            .any(|i| i["activity"]["id"] == fresh["id"])
            .then_some(()))
    })
    .await?;

    // bob rotates his key and publishes again: A learns the new key by
    // refetching, and the old note still verifies under the old one.
    b.ok(&["actor", "rotate", "bob"])?;
    let rotated = publish(&b, &bob_token, note("after the rotation")).await?;
    assert!(
        rotated["proof"]["key"]
            .as_str()
            .is_some_and(|k| k.ends_with("#key-2")),
        "{rotated}"
    );
    eventually(20, "the post-rotation note on A", || async {
        Ok(ids(&inbox(&a, "alice", &alice_token).await?)
            .contains(&rotated["id"])
            .then_some(()))
    })
    .await?;
    for activity in [&fresh, &rotated] {
        let id = cid(activity);
        let stored = a.get_ok(&format!("/activities/{id}"), None).await?;
        assert_eq!(&stored, activity);
        let file = a.write_file(&format!("{id}.json"), &stored.to_string())?;
        let doc = b.get_ok("/actors/bob", None).await?;
        let doc_file = a.write_file("bob.json", &doc.to_string())?;
        let out = a.verify(&file, &["--actor-doc", doc_file.to_str().context("path")?])?;
        let out = crate::support::success(out, "weft verify")?;
        assert!(out.starts_with("valid"), "{out}");
    }

    // alice announces bob's note (naming it by its content id); her feed
    // shows it with the note.
    let announce = publish(
        &a,
        &alice_token,
        json!({"type": "Announce", "object": cid(&fresh), "to": [PUBLIC], "cc": [bob]}),
    )
    .await?;
    eventually(20, "the Announce on B", || async {
        Ok(ids(&inbox(&b, "bob", &bob_token).await?)
            .contains(&announce["id"])
            .then_some(()))
    })
    .await?;
    let items = feed(&a, &alice, &alice_token).await?;
    let shown = items
        .iter()
        .find(|i| i["activity"]["id"] == announce["id"])
        .context("the Announce in alice's feed")?;
    assert_eq!(shown["announced"]["id"], fresh["id"], "{shown}");

    // bob follows alice back (no backfill), for the crash test below.
    publish(
        &b,
        &bob_token,
        json!({"type": "Follow", "object": alice, "to": [alice]}),
    )
    .await?;
    eventually(20, "bob to follow alice", || async {
        Ok(collection(&b, "bob", "following")
            .await?
            .contains(&json!(alice))
            .then_some(()))
    })
    .await?;

    // Both nodes stop and start: follows, inboxes and feeds survive.
    let before = (
        collection(&a, "alice", "following").await?,
        collection(&b, "bob", "followers").await?,
        ids(&inbox(&a, "alice", &alice_token).await?),
        ids(&inbox(&b, "bob", &bob_token).await?),
        feed(&a, &alice, &alice_token).await?,
    );
    a.stop()?;
    b.stop()?;
    a.start().await?;
    b.start().await?;
    let after = (
        collection(&a, "alice", "following").await?,
        collection(&b, "bob", "followers").await?,
        ids(&inbox(&a, "alice", &alice_token).await?),
        ids(&inbox(&b, "bob", &bob_token).await?),
        feed(&a, &alice, &alice_token).await?,
    );
    assert_eq!(before, after, "state changed across a restart");

    // With B down, alice publishes 50 notes to her follower there; A is
    // killed while delivering; both come back and every note arrives once.
    b.stop()?;
    let mut sent = Vec::new();
    for i in 0..50 {
        sent.push(
            publish(&a, &alice_token, note(&format!("while B is down {i}"))).await?["id"].clone(),
        );
    }
    // Let A fail a first round against the stopped B, then kill it with
    // every job still pending.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pending = a.get_ok("/admin/deliveries", Some(&a.admin)).await?;
    assert_eq!(pending["totalItems"], 50, "{pending}");
    a.kill9()?;
    b.start().await?;
    a.start().await?;
    let received = eventually(60, "all 50 notes on B", || async {
        let items = inbox(&b, "bob", &bob_token).await?;
        let got: Vec<Value> = ids(&items)
            .into_iter()
            .filter(|id| sent.contains(id))
            .collect();
        Ok((got.len() >= 50).then_some(got))
    })
    .await?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for id in &received {
        *counts.entry(id.to_string()).or_default() += 1;
    }
    assert_eq!(counts.len(), 50, "some notes are missing");
    assert!(
        counts.values().all(|n| *n == 1),
        "a note arrived twice: {counts:?}"
    );
    let jobs = a.get_ok("/admin/deliveries", Some(&a.admin)).await;
    let dead = a.get_ok("/admin/dead-letter", Some(&a.admin)).await?;
    assert_eq!(dead["totalItems"], 0, "{dead}");
    drop(jobs);
    a.stop()?;
    b.stop()?;
    // With the node stopped, the CLI reads the dead letters from its folder.
    let listed = a.ok(&["dead-letter", "list"])?;
    assert!(listed.contains("no dead letters"), "{listed}");
    Ok(())
}
