//! Federation over real loopback HTTP: the inbox and its codes, delivery
//! with retries and dead letters, and two nodes following each other with
//! backfill. Peers are real weft nodes or a stand-in server whose keys the
//! test holds (`peer.rs`).

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::peer::{Answer, FakePeer};
use crate::support::{Req, TestNode, eventually, id_of, note};

fn inbox(name: &str) -> String {
    format!("/actors/{name}/inbox")
}

fn note_to(content: &str, to: &str) -> Value {
    json!({"type": "Create", "object": {"type": "Note", "content": content}, "to": [to]})
}

#[tokio::test]
async fn inbox_accepts_a_verified_activity_once() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let peer = FakePeer::start().await?;
    peer.actor("eve")?;
    let activity = peer.sign("eve", note_to("hello alice", &alice))?;

    let reply = node.send(Req::post(inbox("alice")).json(&activity)).await?;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(reply.json()?["status"], "accepted");
    let again = node.send(Req::post(inbox("alice")).json(&activity)).await?;
    assert_eq!(again.status, 202);
    assert_eq!(again.json()?["status"], "duplicate");

    // The owner reads it in the inbox; nobody else may.
    let page = node
        .get_ok(&format!("{}?page=1", inbox("alice")), Some(&token))
        .await?;
    assert_eq!(page["totalItems"], 1);
    assert_eq!(page["orderedItems"][0]["id"], activity["id"]);
    let (status, _) = node.get(&inbox("alice"), None).await?;
    assert_eq!(status, 401);
    // It is stored under its original id, readable by its recipient (it
    // is not public), and folded into alice's feed.
    let path = format!("/activities/{}", activity["id"].as_str().context("id")?);
    assert_eq!(node.get_ok(&path, Some(&token)).await?, activity);
    assert_eq!(node.get(&path, None).await?.0, 404);
    let feed = node
        .get_ok(&format!("/projections/feed?actor={alice}"), Some(&token))
        .await?;
    assert_eq!(feed["items"][0]["activity"], activity, "{feed}");
    // Eve is another node's actor: no feed is kept for her here.
    let eve = activity["actor"].as_str().context("actor")?;
    let feed = node
        .get_ok(&format!("/projections/feed?actor={eve}"), Some(&token))
        .await?;
    assert_eq!(feed["items"], json!([]), "{feed}");
    Ok(())
}

#[tokio::test]
async fn inbox_refusals_change_nothing() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, _) = node.actor("alice").await?;
    let peer = FakePeer::start().await?;
    peer.actor("eve")?;
    peer.actor("mallory")?;
    let good = peer.sign("eve", note_to("first", &alice))?;
    // The node signs its fetches of eve's document as its service actor,
    // whose HTTP-signature key is made (and kept in the key store) on first
    // use; serving the service actor's document makes it now, so the key
    // store below changes only if a refused request changes it.
    node.doc("node").await?;

    // 404: no such recipient.
    node.assert_rejected(Req::post(inbox("nobody")).json(&good), 404)
        .await?;
    // 400: not JSON; an envelope (it carries a weft `proof`) that is not
    // an activity.
    node.assert_rejected(Req::post(inbox("alice")).raw("{"), 400)
        .await?;
    node.assert_rejected(
        Req::post(inbox("alice")).json(&json!({
            "type": "Note",
            "proof": {"key": good["proof"]["key"], "signature": good["proof"]["signature"]},
        })),
        400,
    )
    .await?;
    // 401: without a weft `proof`, an activity needs an HTTP signature,
    // and this request has none.
    let problem = node
        .assert_rejected(
            Req::post(inbox("alice")).json(&json!({"type": "Note"})),
            401,
        )
        .await?;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("not signed"),
        "{problem}"
    );
    let mut unproven = good.clone();
    unproven
        .as_object_mut()
        .context("an object")?
        .remove("proof");
    node.assert_rejected(Req::post(inbox("alice")).json(&unproven), 401)
        .await?;
    // 401: the body was changed after signing (same id).
    let mut tampered = good.clone();
    tampered["object"]["content"] = "changed".into();
    let problem = node
        .assert_rejected(Req::post(inbox("alice")).json(&tampered), 401)
        .await?;
    assert!(
        problem["detail"].as_str().unwrap_or("").contains("altered"),
        "{problem}"
    );
    // 401: a signature that belongs to another activity.
    let other = peer.sign_detached("eve", note_to("other", &alice))?;
    let mut forged = good.clone();
    forged["proof"]["signature"] = other["proof"]["signature"].clone();
    node.assert_rejected(Req::post(inbox("alice")).json(&forged), 401)
        .await?;
    // 401: eve's activity claiming a key of another actor (another origin).
    let mut foreign = good.clone();
    foreign["proof"]["key"] = "http://127.0.0.1:9/actors/mallory#key-1".into();
    let problem = node
        .assert_rejected(Req::post(inbox("alice")).json(&foreign), 401)
        .await?;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("does not belong"),
        "{problem}"
    );
    // 413: too large.
    let huge = note_to(&"x".repeat(300 * 1024), &alice);
    node.assert_rejected(Req::post(inbox("alice")).json(&huge), 413)
        .await?;
    // 202 "pending": a verb this node does not have is parked, not
    // stored (eve's origin defines no such verb, so it stays parked).
    let before = node.snapshot()?;
    let poll = peer.sign("eve", json!({"type": "Poll", "to": [alice]}))?;
    let reply = node.send(Req::post(inbox("alice")).json(&poll)).await?;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(reply.json()?["status"], "pending");
    assert_eq!(
        node.snapshot()?,
        before,
        "a parked activity is not in the log"
    );

    // The good one still goes in afterwards.
    let reply = node.send(Req::post(inbox("alice")).json(&good)).await?;
    assert_eq!(reply.status, 202, "{}", reply.text);
    Ok(())
}

/// Activities of verbs nothing here interprets are kept only up to
/// `federation.max_parked`; past it they get 503 (the peer retries) and
/// nothing more is stored, while known verbs still go in. The operator
/// frees the space by discarding a verb.
#[tokio::test]
async fn parking_stops_at_max_parked_until_a_verb_is_discarded() -> anyhow::Result<()> {
    let node = TestNode::start_with(|c| c.federation.max_parked = 2).await?;
    let (alice, alice_token) = node.actor("alice").await?;
    let peer = FakePeer::start().await?;
    peer.actor("eve")?;
    for n in 0..2 {
        let poll = peer.sign("eve", json!({"type": "Poll", "name": n, "to": [alice]}))?;
        let reply = node.send(Req::post(inbox("alice")).json(&poll)).await?;
        assert_eq!(reply.status, 202, "{}", reply.text);
        assert_eq!(reply.json()?["status"], "pending");
    }
    let before = node.snapshot()?;
    let third = peer.sign("eve", json!({"type": "Quiz", "to": [alice]}))?;
    let problem = node
        .assert_rejected(Req::post(inbox("alice")).json(&third), 503)
        .await?;
    let detail = problem["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("max_parked") && detail.contains("Quiz"),
        "{problem}"
    );
    assert_eq!(
        node.snapshot()?,
        before,
        "a refused activity changed the log"
    );
    let pending = node
        .get_ok("/admin/modules/pending", Some(&node.admin))
        .await?;
    let parked = pending["activities"].as_array().context("activities")?;
    assert_eq!(parked.len(), 2, "{pending}");
    assert!(parked.iter().all(|p| p["verb"] == "Poll"), "{pending}");

    let good = peer.sign("eve", note_to("still welcome", &alice))?;
    let reply = node.send(Req::post(inbox("alice")).json(&good)).await?;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(reply.json()?["status"], "accepted", "{}", reply.text);

    // Discarding is the admin's, and only for a verb that is pending.
    let discard = |verb: &str| {
        Req::new(
            reqwest::Method::DELETE,
            format!("/admin/modules/pending/{verb}"),
        )
    };
    node.assert_rejected(discard("Poll").bearer(&alice_token), 403)
        .await?;
    node.assert_rejected(discard("Nothing").bearer(&node.admin), 404)
        .await?;
    let reply = node.send(discard("Poll").bearer(&node.admin)).await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()?["discarded"], 2, "{}", reply.text);
    let pending = node
        .get_ok("/admin/modules/pending", Some(&node.admin))
        .await?;
    assert_eq!(pending["activities"], json!([]), "{pending}");
    assert!(
        pending["modules"]
            .as_array()
            .context("modules")?
            .iter()
            .all(|m| m["verb"] != "Poll"),
        "{pending}"
    );
    // The space is free again: the refused one now parks.
    let reply = node.send(Req::post(inbox("alice")).json(&third)).await?;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(reply.json()?["status"], "pending");
    Ok(())
}

/// One origin's authors hold at most `federation.max_parked_per_origin`
/// parked activities: past it that origin gets 503 naming the limit, while
/// another origin still parks; discarding a verb gives the room back.
#[tokio::test]
async fn one_origin_cannot_take_every_parking_place() -> anyhow::Result<()> {
    let node = TestNode::start_with(|c| c.federation.max_parked_per_origin = 2).await?;
    let (alice, _) = node.actor("alice").await?;
    let greedy = FakePeer::start().await?;
    greedy.actor("eve")?;
    let other = FakePeer::start().await?;
    other.actor("olga")?;
    for n in 0..2 {
        let poll = greedy.sign("eve", json!({"type": "Poll", "name": n, "to": [alice]}))?;
        let reply = node.send(Req::post(inbox("alice")).json(&poll)).await?;
        assert_eq!(reply.status, 202, "{}", reply.text);
    }
    let before = node.snapshot()?;
    let third = greedy.sign("eve", json!({"type": "Quiz", "to": [alice]}))?;
    let problem = node
        .assert_rejected(Req::post(inbox("alice")).json(&third), 503)
        .await?;
    let detail = problem["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("max_parked_per_origin") && detail.contains(&greedy.base),
        "{problem}"
    );
    assert_eq!(node.snapshot()?, before);
    let pending = node
        .get_ok("/admin/modules/pending", Some(&node.admin))
        .await?;
    assert_eq!(
        pending["activities"]
            .as_array()
            .context("activities")?
            .len(),
        2,
        "{pending}"
    );

    // Another origin still has room.
    let theirs = other.sign("olga", json!({"type": "Poll", "to": [alice]}))?;
    let reply = node.send(Req::post(inbox("alice")).json(&theirs)).await?;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(reply.json()?["status"], "pending");

    // Discarding Poll frees eve's places (and olga's one).
    let reply = node
        .send(Req::new(reqwest::Method::DELETE, "/admin/modules/pending/Poll").bearer(&node.admin))
        .await?;
    assert_eq!(reply.json()?["discarded"], 3, "{}", reply.text);
    let reply = node.send(Req::post(inbox("alice")).json(&third)).await?;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(reply.json()?["status"], "pending");
    Ok(())
}

/// A kept peer document older than `federation.peer_refresh` is fetched
/// again when next used. So a rotation that retired a key is learnt even
/// when only the retired key is seen again, and a thief's activities at
/// new positions stop verifying. While the peer cannot serve its documents,
/// the old one stays in use.
#[tokio::test]
async fn a_stale_peer_document_is_fetched_again_so_a_retired_key_stops_verifying()
-> anyhow::Result<()> {
    let node = TestNode::start_with(|c| c.federation.peer_refresh = "1s".into()).await?;
    let (alice, _) = node.actor("alice").await?;
    let peer = FakePeer::start().await?;
    peer.actor("eve")?;
    let first = peer.sign("eve", note_to("first", &alice))?;
    let reply = node.send(Req::post(inbox("alice")).json(&first)).await?;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let fetched = peer.document_requests();

    // eve rotates (the node is not told); someone holding her old key signs
    // her next position with it.
    let stolen = peer.rotate("eve")?;
    let forged = peer.sign_with_retired("eve", note_to("forged", &alice), &stolen)?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let problem = node
        .assert_rejected(Req::post(inbox("alice")).json(&forged), 401)
        .await?;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("not valid at seq"),
        "{problem}"
    );
    assert_eq!(peer.document_requests(), fetched + 1, "one refetch");
    let genuine = peer.sign("eve", note_to("after the rotation", &alice))?;
    let reply = node.send(Req::post(inbox("alice")).json(&genuine)).await?;
    assert_eq!(reply.status, 202, "{}", reply.text);

    // The peer stops serving documents: once eve's is stale again, the
    // refetch fails and her activities still verify against the kept one.
    peer.documents_unavailable(true);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let asked = peer.document_requests();
    let later = peer.sign("eve", note_to("while documents are down", &alice))?;
    let reply = node.send(Req::post(inbox("alice")).json(&later)).await?;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert!(
        peer.document_requests() > asked,
        "the stale document was asked for again"
    );
    Ok(())
}

#[tokio::test]
async fn a_second_activity_at_a_known_position_is_kept_as_fork_evidence() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, _) = node.actor("alice").await?;
    let peer = FakePeer::start().await?;
    let eve = peer.actor("eve")?;
    let one = peer.sign_detached("eve", note_to("one", &alice))?;
    let two = peer.sign_detached("eve", note_to("two", &alice))?;
    assert_eq!(one["seq"], two["seq"]);
    assert_ne!(one["id"], two["id"]);

    let reply = node.send(Req::post(inbox("alice")).json(&one)).await?;
    assert_eq!(reply.status, 202);
    let before = node.snapshot()?;
    let reply = node.send(Req::post(inbox("alice")).json(&two)).await?;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.json()?["field"], "seq");
    assert_eq!(before, node.snapshot()?, "a refused fork changed the log");
    let (status, _) = node
        .get(
            &format!("/activities/{}", two["id"].as_str().context("id")?),
            None,
        )
        .await?;
    assert_eq!(status, 404);

    // The operator sees the evidence.
    let forks = node.get_ok("/admin/forks", Some(&node.admin)).await?;
    assert_eq!(forks["totalItems"], 1, "{forks}");
    let fork = &forks["items"][0];
    assert_eq!(fork["actor"], eve.as_str());
    assert_eq!(fork["kept"], one["id"]);
    assert_eq!(fork["refused"], two["id"]);
    assert_eq!(fork["refusedActivity"], two);
    Ok(())
}

/// Waits until `peer` has `count` deliveries for `name`.
async fn deliveries(
    peer: &FakePeer,
    name: &str,
    count: usize,
) -> anyhow::Result<Vec<(String, Instant)>> {
    eventually(10, &format!("{count} deliveries to {name}"), || async {
        let got = peer.received(name);
        Ok((got.len() >= count).then_some(got))
    })
    .await
}

async fn dead_letters(node: &TestNode, count: usize) -> anyhow::Result<Value> {
    eventually(10, &format!("{count} dead letters"), || async {
        let dead = node.get_ok("/admin/dead-letter", Some(&node.admin)).await?;
        Ok((dead["totalItems"] == count).then_some(dead))
    })
    .await
}

#[tokio::test]
async fn delivery_retries_on_schedule_then_dead_letters() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let peer = FakePeer::start().await?;
    let flaky = peer.actor("flaky")?;
    peer.answer("flaky", Answer::Fail);

    let started = Instant::now();
    let published = node
        .publish_ok(&token, &note_to("for flaky", &flaky))
        .await?;
    // The test schedule is 300 ms, 600 ms: three attempts, then give up.
    let got = deliveries(&peer, "flaky", 3).await?;
    assert!(got.iter().all(|(id, _)| *id == published["id"]));
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert!(gaps[0] >= Duration::from_millis(290), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(590), "{gaps:?}");
    let dead = dead_letters(&node, 1).await?;
    let letter = &dead["items"][0];
    assert_eq!(letter["recipient"], flaky.as_str());
    assert_eq!(letter["attempts"], 3);
    assert!(
        letter["lastError"].as_str().unwrap_or("").contains("500"),
        "{letter}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        peer.received("flaky").len(),
        3,
        "a dead letter is not retried on its own"
    );

    // Retrying it by hand sends it again.
    peer.answer("flaky", Answer::Accept);
    let id = letter["id"].as_u64().context("id")?;
    let reply = node
        .send(Req::post(format!("/admin/dead-letter/{id}/retry")).bearer(&node.admin))
        .await?;
    assert_eq!(reply.status, 202, "{}", reply.text);
    deliveries(&peer, "flaky", 4).await?;
    dead_letters(&node, 0).await?;
    let queued = eventually(10, "the job to be done", || async {
        let jobs = node.get_ok("/admin/deliveries", Some(&node.admin)).await?;
        Ok((jobs["totalItems"] == 0).then_some(()))
    })
    .await;
    queued?;
    Ok(())
}

#[tokio::test]
async fn gone_dead_letters_at_once_and_retry_after_is_honoured() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let peer = FakePeer::start().await?;
    let gone = peer.actor("gone")?;
    peer.answer("gone", Answer::Gone);
    node.publish_ok(&token, &note_to("to a closed account", &gone))
        .await?;
    let dead = dead_letters(&node, 1).await?;
    assert_eq!(dead["items"][0]["attempts"], 1);
    assert!(
        dead["items"][0]["lastError"]
            .as_str()
            .unwrap_or("")
            .contains("410")
    );
    assert_eq!(peer.received("gone").len(), 1);

    let busy = peer.actor("busy")?;
    peer.answer("busy", Answer::RetryAfter(2));
    node.publish_ok(&token, &note_to("to a busy peer", &busy))
        .await?;
    let first = deliveries(&peer, "busy", 1).await?;
    peer.answer("busy", Answer::Accept);
    let both = deliveries(&peer, "busy", 2).await?;
    let waited = both[1].1 - first[0].1;
    // Retry-After: 2 wins over the 300 ms schedule.
    assert!(
        waited >= Duration::from_millis(1900),
        "retried after {waited:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_dead_peer_does_not_delay_a_live_one() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let live = FakePeer::start().await?;
    let bob = live.actor("bob")?;
    // Nothing listens on this port: every attempt fails to connect.
    let dead = "http://127.0.0.1:9/actors/carol";
    for i in 0..5 {
        node.publish_ok(&token, &json!({"type": "Create", "object": {"type": "Note", "content": format!("n{i}")}, "to": [dead, bob]}))
            .await?;
    }
    let got = deliveries(&live, "bob", 5).await?;
    assert_eq!(got.len(), 5);
    // bob's jobs are done while carol's, each tried once, wait for their
    // retries. (A job queued last may not have been tried yet when bob's
    // are done: wait for that too.)
    let jobs = eventually(10, "bob's jobs to be done, carol's tried", || async {
        let jobs = node.get_ok("/admin/deliveries", Some(&node.admin)).await?;
        let items = jobs["items"].as_array().cloned().unwrap_or_default();
        Ok(items
            .iter()
            .all(|j| j["recipient"] == dead && j["attempts"].as_u64() >= Some(1))
            .then_some(items))
    })
    .await?;
    assert_eq!(jobs.len(), 5, "carol's five jobs stay queued");
    assert!(
        jobs.iter().all(|j| j["attempts"].as_u64() >= Some(1)),
        "{jobs:?}"
    );
    Ok(())
}

/// Follows `target` (a URL) from `token`'s actor with `backfill`.
fn follow(target: &str, backfill: Value) -> Value {
    json!({"type": "Follow", "object": target, "backfill": backfill, "to": [target]})
}

async fn following(node: &TestNode, name: &str) -> anyhow::Result<Vec<Value>> {
    let page = node
        .get_ok(&format!("/actors/{name}/following"), None)
        .await?;
    Ok(page["orderedItems"].as_array().cloned().unwrap_or_default())
}

#[tokio::test]
async fn two_nodes_follow_backfill_and_deliver() -> anyhow::Result<()> {
    let a = TestNode::start().await?;
    let b = TestNode::start().await?;
    let (alice, alice_token) = a.actor("alice").await?;
    let (bob, bob_token) = b.actor("bob").await?;
    let mut old = Vec::new();
    for i in 0..3 {
        old.push(b.publish_ok(&bob_token, &note(&format!("old {i}"))).await?);
    }

    // WebFinger finds bob.
    let authority = b.base.trim_start_matches("http://");
    let jrd = b
        .get_ok(
            &format!("/.well-known/webfinger?resource=acct:bob@{authority}"),
            None,
        )
        .await?;
    assert_eq!(jrd["links"][0]["href"], bob.as_str());
    let (status, _) = b
        .get(
            &format!("/.well-known/webfinger?resource=acct:nobody@{authority}"),
            None,
        )
        .await?;
    assert_eq!(status, 404);

    a.publish_ok(
        &alice_token,
        &follow(&bob, json!({"mode": "last-N", "limit": 2})),
    )
    .await?;
    eventually(10, "alice to follow bob", || async {
        Ok(following(&a, "alice")
            .await?
            .contains(&json!(bob))
            .then_some(()))
    })
    .await?;
    let followers = b.get_ok("/actors/bob/followers", None).await?;
    assert_eq!(followers["orderedItems"], json!([alice]));

    // The two newest old notes arrive as backfill, in alice's inbox.
    let backfilled = eventually(10, "backfill", || async {
        let page = a
            .get_ok(
                &format!("{}?page=1&limit=50", inbox("alice")),
                Some(&alice_token),
            )
            .await?;
        let ids: Vec<Value> = page["orderedItems"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|i| i["id"].clone())
            .collect();
        Ok((ids.contains(&old[1]["id"]) && ids.contains(&old[2]["id"])).then_some(ids))
    })
    .await?;
    assert!(
        !backfilled.contains(&old[0]["id"]),
        "last-N of 2 fetched the third-newest too"
    );

    // A new note reaches alice's inbox and feed.
    let fresh = b.publish_ok(&bob_token, &note("new")).await?;
    let waited = eventually(10, "the new note in alice's feed", || async {
        let feed = a
            .get_ok(
                &format!("/projections/feed?actor={alice}&limit=50"),
                Some(&alice_token),
            )
            .await?;
        let ids: Vec<Value> = feed["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|i| i["activity"]["id"].clone())
            .collect();
        Ok(ids.contains(&fresh["id"]).then_some(()))
    })
    .await;
    if waited.is_err() {
        let jobs = b.get_ok("/admin/deliveries", Some(&b.admin)).await?;
        let dead = b.get_ok("/admin/dead-letter", Some(&b.admin)).await?;
        let inbox = a
            .get_ok(
                &format!("{}?page=1&limit=50", inbox("alice")),
                Some(&alice_token),
            )
            .await?;
        let feed = a
            .get_ok(
                &format!("/projections/feed?actor={alice}&limit=50"),
                Some(&alice_token),
            )
            .await?;
        anyhow::bail!("not delivered: jobs {jobs}\ndead {dead}\ninbox {inbox}\nfeed {feed}");
    }
    let stored = a
        .get_ok(&format!("/activities/{}", id_of(&fresh)?), None)
        .await?;
    assert_eq!(stored, fresh);

    // bob rejects the (accepted) Follow: the edge goes on both nodes.
    let follow_id = a
        .log(&alice)?
        .into_iter()
        .find(|act| act["type"] == "Follow")
        .context("alice's Follow")?["id"]
        .clone();
    b.publish_ok(
        &bob_token,
        &json!({"type": "Reject", "object": follow_id, "to": [alice]}),
    )
    .await?;
    eventually(10, "the Reject to reach A", || async {
        Ok(following(&a, "alice").await?.is_empty().then_some(()))
    })
    .await?;
    assert_eq!(
        b.get_ok("/actors/bob/followers", None).await?["totalItems"],
        0
    );

    // alice follows again (accepted again), then undoes it.
    let again = a
        .publish_ok(&alice_token, &follow(&bob, json!({"mode": "none"})))
        .await?;
    eventually(10, "the second Follow to be accepted", || async {
        Ok(following(&a, "alice")
            .await?
            .contains(&json!(bob))
            .then_some(()))
    })
    .await?;
    a.publish_ok(
        &alice_token,
        &json!({"type": "Undo", "object": again["id"], "to": [bob]}),
    )
    .await?;
    eventually(10, "the Undo to reach B", || async {
        let followers = b.get_ok("/actors/bob/followers", None).await?;
        Ok((followers["totalItems"] == 0).then_some(()))
    })
    .await?;
    assert!(following(&a, "alice").await?.is_empty());
    Ok(())
}

/// A fresh node A whose alice follows `bob` asking for `backfill`;
/// answers the ids that came in as backfill (and are marked so in the
/// store), oldest first.
async fn backfill_with(bob: &str, backfill: Value) -> anyhow::Result<Vec<String>> {
    let a = TestNode::start().await?;
    let (alice, token) = a.actor("alice").await?;
    a.publish_ok(&token, &follow(bob, backfill)).await?;
    eventually(10, "the follow to be accepted", || async {
        Ok(following(&a, "alice")
            .await?
            .contains(&json!(bob))
            .then_some(()))
    })
    .await?;
    // The backfill's row is removed once it is done.
    eventually(10, "the backfill to finish", || async {
        Ok(a.kernel
            .store()
            .read()?
            .backfills()?
            .is_empty()
            .then_some(()))
    })
    .await?;
    let reader = a.kernel.store().read()?;
    let mut out = Vec::new();
    for record in reader.inbox_range(&alice, 1, u64::MAX)? {
        if record.backfilled {
            assert_eq!(record.actor, bob);
            out.push(record.id);
        }
    }
    Ok(out)
}

#[tokio::test]
async fn each_backfill_mode_pulls_what_it_asks_for() -> anyhow::Result<()> {
    let b = TestNode::start().await?;
    let (bob, bob_token) = b.actor("bob").await?;
    // The store names activities by content id.
    let mut public = vec![id_of(&b.log(&bob)?[0])?];
    for i in 0..5 {
        let n = b.publish_ok(&bob_token, &note(&format!("n{i}"))).await?;
        public.push(id_of(&n)?);
    }
    // A private note is never backfilled: the outbox does not show it.
    b.publish_ok(
        &bob_token,
        &json!({"type": "Create", "object": {"type": "Note", "content": "private"}}),
    )
    .await?;

    assert!(
        backfill_with(&bob, json!({"mode": "none"}))
            .await?
            .is_empty()
    );
    assert_eq!(
        backfill_with(&bob, json!({"mode": "last-N", "limit": 3})).await?,
        public[3..].to_vec()
    );
    assert_eq!(backfill_with(&bob, json!({"mode": "full"})).await?, public);
    // Everything was published moments ago, so a day reaches back to all.
    assert_eq!(
        backfill_with(&bob, json!({"mode": "last-T", "duration": "P1D"})).await?,
        public
    );
    Ok(())
}

#[tokio::test]
async fn an_announced_activity_is_fetched_from_its_origin_and_shown() -> anyhow::Result<()> {
    let a = TestNode::start().await?;
    let b = TestNode::start().await?;
    let (alice, alice_token) = a.actor("alice").await?;
    let (_, dan_token) = a.actor("dan").await?;
    let (carol, carol_token) = b.actor("carol").await?;
    b.publish_ok(&carol_token, &follow(&alice, json!({"mode": "none"})))
        .await?;
    eventually(10, "carol to follow alice", || async {
        Ok(following(&b, "carol")
            .await?
            .contains(&json!(alice))
            .then_some(()))
    })
    .await?;

    // dan's note never went to B; alice announces it to her followers.
    let original = a.publish_ok(&dan_token, &note("dan's note")).await?;
    // An Announce names the announced activity by its content id.
    let id = id_of(&original)?;
    assert_eq!(b.get(&format!("/activities/{id}"), None).await?.0, 404);
    let announce = a
        .publish_ok(
            &alice_token,
            &json!({"type": "Announce", "object": id, "to": [weft_core::model::PUBLIC]}),
        )
        .await?;

    let shown = eventually(10, "the Announce in carol's feed", || async {
        let feed = b
            .get_ok(
                &format!("/projections/feed?actor={carol}"),
                Some(&carol_token),
            )
            .await?;
        let items = feed["items"].as_array().cloned().unwrap_or_default();
        Ok(items
            .into_iter()
            .find(|i| i["activity"]["id"] == announce["id"]))
    })
    .await?;
    assert_eq!(shown["announced"], original, "{shown}");
    // B fetched it, verified it, and keeps it under its own id.
    assert_eq!(
        b.get_ok(&format!("/activities/{id}"), None).await?,
        original
    );
    Ok(())
}
