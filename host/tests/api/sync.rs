//! Anti-entropy (docs/architecture.md §10) between real nodes: a follower
//! that missed deliveries catches up through its reconcile pass, dead
//! letters that sync covered are marked healed, an actor's head is served
//! for peers to compare, and a staged batch commits all or nothing; a
//! non-public activity addressed here and missed is found by set
//! reconciliation, and the sync endpoints serve only the signer's origin.

use serde_json::{Value, json};
use weft_federation::inbox::parse;

use crate::peer::FakePeer;
use crate::support::{TestNode, eventually, note};

fn follow(target: &str) -> Value {
    json!({"type": "Follow", "object": target, "backfill": {"mode": "none"}, "to": [target]})
}

async fn inbox_ids(node: &TestNode, name: &str, token: &str) -> anyhow::Result<Vec<Value>> {
    let page = node
        .get_ok(
            &format!("/actors/{name}/inbox?page=1&limit=200"),
            Some(token),
        )
        .await?;
    Ok(page["orderedItems"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|i| i["id"].clone())
        .collect())
}

#[tokio::test]
async fn a_follower_down_past_the_retry_schedule_catches_up_and_heals_the_dead_letters()
-> anyhow::Result<()> {
    // Ranges of two: the five missed notes come in three, each committed
    // on its own while the next is read.
    let a = TestNode::start_with(|c| c.federation.sync_max_range = 2).await?;
    let b = TestNode::start().await?;
    let (alice, alice_token) = a.actor("alice").await?;
    let (bob, bob_token) = b.actor("bob").await?;
    a.publish_ok(&alice_token, &follow(&bob)).await?;
    eventually(10, "alice to follow bob", || async {
        let page = a.get_ok("/actors/alice/following", None).await?;
        Ok((page["orderedItems"] == json!([bob])).then_some(()))
    })
    .await?;

    // alice's node is down while bob publishes: every delivery to it runs
    // out of retries (300 ms, 600 ms in tests) and is dead-lettered.
    let mut missed = Vec::new();
    let a = a
        .restart_after(async {
            for i in 0..5 {
                missed.push(
                    b.publish_ok(&bob_token, &note(&format!("missed {i}")))
                        .await?,
                );
            }
            eventually(20, "the deliveries to be dead-lettered", || async {
                let dead = b.get_ok("/admin/dead-letter", Some(&b.admin)).await?;
                Ok((dead["totalItems"].as_u64() >= Some(5)).then_some(()))
            })
            .await
        })
        .await?;
    let before = inbox_ids(&a, "alice", &alice_token).await?;
    assert!(
        missed.iter().all(|m| !before.contains(&m["id"])),
        "a missed note arrived without sync"
    );
    let dead = b.get_ok("/admin/dead-letter", Some(&b.admin)).await?;
    assert!(
        dead["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|i| i["healed"] == false)),
        "{dead}"
    );

    // bob's head says what alice's node lacks.
    let head = b.get_ok("/actors/bob/head", None).await?;
    assert_eq!(head["actor"], bob.as_str());
    assert_eq!(head["id"], missed[4]["id"]);
    assert_eq!(head["seq"], missed[4]["seq"]);

    // One reconcile pass on alice's node fetches the five as one range.
    let pass = a
        .api()
        .post_json("/admin/sync", &a.admin, &json!({}))
        .await?;
    assert_eq!(pass.0, 200, "{}", pass.1);
    assert_eq!(pass.1["stored"], 5, "{}", pass.1);
    let after = inbox_ids(&a, "alice", &alice_token).await?;
    for m in &missed {
        assert!(
            after.contains(&m["id"]),
            "{} is not in alice's inbox",
            m["id"]
        );
    }
    let view = a.get_ok("/admin/sync", Some(&a.admin)).await?;
    let entry = &view["actors"][0];
    assert_eq!(entry["actor"], bob.as_str(), "{view}");
    assert_eq!(entry["lag"], 0, "{view}");
    assert_eq!(entry["held"]["id"], missed[4]["id"], "{view}");
    assert_eq!(entry["stored"], 5, "{view}");
    assert_eq!(entry["offences"], 0, "{view}");
    let metrics = a.http.get(a.url("/metrics")).send().await?.text().await?;
    assert!(
        metrics.contains(&format!("weft_sync_lag{{actor=\"{bob}\"}} 0")),
        "{metrics}"
    );

    // A second pass finds nothing to do.
    let again = a
        .api()
        .post_json("/admin/sync", &a.admin, &json!({}))
        .await?;
    assert_eq!(again.1["stored"], 0, "{}", again.1);

    // bob's node sees alice's node holding them: its dead letters healed.
    let heal = b
        .api()
        .post_json("/admin/sync", &b.admin, &json!({}))
        .await?;
    assert_eq!(heal.1["healed"], 5, "{}", heal.1);
    let dead = b.get_ok("/admin/dead-letter", Some(&b.admin)).await?;
    assert!(
        dead["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|i| i["healed"] == true)),
        "{dead}"
    );
    let metrics = b.http.get(b.url("/metrics")).send().await?.text().await?;
    assert!(
        metrics.contains("weft_dead_letters_unhealed 0"),
        "{metrics}"
    );
    let _ = alice;
    Ok(())
}

#[tokio::test]
async fn the_head_shows_the_public_part_to_anyone_and_everything_to_the_owner() -> anyhow::Result<()>
{
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let public = node.publish_ok(&token, &note("public")).await?;
    let private = node
        .publish_ok(&token, &crate::support::private_note("private"))
        .await?;
    let anyone = node.get_ok("/actors/alice/head", None).await?;
    assert_eq!(anyone["actor"], alice.as_str());
    assert_eq!(anyone["id"], public["id"]);
    assert_eq!(anyone["seq"], public["seq"]);
    let owner = node.get_ok("/actors/alice/head", Some(&token)).await?;
    assert_eq!(owner["id"], private["id"]);
    assert_eq!(owner["totalItems"], private["seq"]);
    let (status, _) = node.get("/actors/nobody/head", None).await?;
    assert_eq!(status, 404);
    node.stop().await
}

#[tokio::test]
async fn a_staged_batch_with_one_fork_stores_nothing() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, _) = node.actor("alice").await?;
    let peer = FakePeer::start().await?;
    peer.actor("carol")?;
    let to_alice = |text: &str| json!({"type": "Create", "object": {"type": "Note", "content": text}, "to": [alice]});
    let first = parse(peer.sign("carol", to_alice("one"))?)?;
    let fork = parse(peer.sign_detached("carol", to_alice("two, forked"))?)?;
    let second = parse(peer.sign("carol", to_alice("two"))?)?;
    let third = parse(peer.sign("carol", to_alice("three"))?)?;
    let recipients = vec![alice.clone()];
    let before = node.snapshot()?;
    let refused = node
        .kernel
        .ingest_batch(
            vec![
                (first.clone(), recipients.clone()),
                (fork.clone(), recipients.clone()),
                (second.clone(), recipients.clone()),
            ],
            false,
        )
        .await;
    let Err(e) = refused else {
        anyhow::bail!("a batch with a fork was stored: {refused:?}");
    };
    assert!(
        matches!(e, weft_kernel::KernelError::BatchRefused { ref id, .. } if *id == second.id),
        "{e}"
    );
    assert_eq!(node.snapshot()?, before, "a refused batch changed the node");
    assert!(node.kernel.store().read()?.activity(&first.id)?.is_none());

    // Without the fork the same range is stored whole, and sending it
    // again changes nothing.
    let batch = vec![
        (first.clone(), recipients.clone()),
        (second.clone(), recipients.clone()),
        (third.clone(), recipients.clone()),
    ];
    let report = node.kernel.ingest_batch(batch, false).await?;
    assert_eq!((report.stored, report.duplicates), (3, 0));
    let stored = node.snapshot()?;
    let again = node
        .kernel
        .ingest_batch(
            vec![
                (second.clone(), recipients.clone()),
                (third.clone(), recipients.clone()),
            ],
            false,
        )
        .await?;
    assert_eq!((again.stored, again.duplicates), (0, 2));
    assert_eq!(node.snapshot()?, stored);
    node.stop().await
}

#[tokio::test]
async fn a_replication_policy_defined_while_its_target_is_down_is_met_once_it_is_back()
-> anyhow::Result<()> {
    let a = TestNode::start().await?;
    let b = TestNode::start().await?;
    let (bob, bob_token) = b.actor("bob").await?;
    let mut notes = Vec::new();
    for i in 0..3 {
        notes.push(
            b.publish_ok(&bob_token, &note(&format!("mirrored {i}")))
                .await?,
        );
    }
    let define = |spec: Value| json!({"type": "DefinePolicy", "name": "mirror-bob", "kind": "replication", "spec": spec});
    let status = |node: &TestNode| {
        let admin = node.admin.clone();
        let api = node.api();
        async move {
            api.get_ok("/admin/policies/mirror-bob/status", Some(&admin))
                .await
        }
    };
    let condition = |status: &Value, kind: &str| -> Value {
        status["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == kind))
            .map(|c| c["status"].clone())
            .unwrap_or(Value::Null)
    };

    // Defined while bob's node is down: the pass cannot meet it.
    let b = b
        .restart_after(async {
            let (code, defined) = a
                .api()
                .post_json(
                    "/actors/node/outbox",
                    &a.admin,
                    &define(json!({"mirror": [bob]})),
                )
                .await?;
            anyhow::ensure!(code == 201, "{defined}");
            // Not evaluated yet, or evaluated by the pass the new policy
            // starts, which could not reach bob's node: never met.
            let before = status(&a).await?;
            let compliant = condition(&before, "Compliant");
            anyhow::ensure!(compliant == "Unknown" || compliant == "False", "{before}");
            let (_, pass) = a
                .api()
                .post_json("/admin/sync", &a.admin, &json!({}))
                .await?;
            anyhow::ensure!(pass["failed"] == 1 && pass["stored"] == 0, "{pass}");
            let down = status(&a).await?;
            anyhow::ensure!(condition(&down, "Compliant") == "False", "{down}");
            anyhow::ensure!(condition(&down, "InSync") == "False", "{down}");
            Ok(())
        })
        .await?;

    // bob's node is back; the operator's pass tries it at once (the loop's
    // own would once the backoff ends, or when bob's node is heard from).
    let (_, pass) = a
        .api()
        .post_json("/admin/sync", &a.admin, &json!({}))
        .await?;
    let view = a.get_ok("/admin/sync", Some(&a.admin)).await?;
    assert_eq!(pass["failed"], 0, "{pass} {view}");
    assert_eq!(pass["outstanding"], 0, "{pass} {view}");
    // bob's whole log: his Create and the three notes, as bob signed them.
    let entry = &view["actors"][0];
    assert_eq!(entry["actor"], bob.as_str(), "{view}");
    let view = a.get_ok("/admin/sync", Some(&a.admin)).await?;
    let entry = &view["actors"][0];
    assert_eq!(entry["held"]["seq"], 4, "{view}");
    assert_eq!(entry["stored"], 4, "{view}");
    for n in &notes {
        let stored = a
            .get_ok(&format!("/activities/{}", crate::support::id_of(n)?), None)
            .await?;
        assert_eq!(&stored, n);
    }
    let met = status(&a).await?;
    assert_eq!(condition(&met, "Compliant"), "True", "{met}");
    assert_eq!(condition(&met, "InSync"), "True", "{met}");
    assert_eq!(met["obligations"], json!([]), "{met}");
    b.stop().await?;
    a.stop().await
}

/// A POST of `body` to `url` signed (RFC 9421) as `node`'s service actor,
/// as its own `Fetcher` would sign it; (status, body).
async fn signed_post(node: &TestNode, url: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
    use axum::http::Method;
    use weft_federation::httpsig::{self, Scheme, Signer};
    let service = node.kernel.service_actor()?;
    let (key_id, key) = node.kernel.http_key(&service)?;
    let bytes = serde_json::to_vec(body)?;
    let mut request = node
        .http
        .post(url)
        .header("content-type", "application/json");
    for (name, value) in httpsig::sign(
        Scheme::Rfc9421,
        &Method::POST,
        url,
        Some(&bytes),
        &key_id,
        Signer::Rsa(&key),
        std::time::SystemTime::now(),
    )? {
        request = request.header(name, value);
    }
    let response = request.body(bytes).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// The set id (hex) of the activity `activity` (its JSON).
fn set_id(activity: &Value) -> anyhow::Result<String> {
    let id = activity["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no id in {activity}"))?;
    Ok(data_encoding::HEXLOWER.encode(&weft_core::model::setkey::id32(id)))
}

#[tokio::test]
async fn a_missed_activity_addressed_here_that_no_chain_covers_is_found_by_set_reconciliation()
-> anyhow::Result<()> {
    let a = TestNode::start().await?;
    let b = TestNode::start().await?;
    let (alice, alice_token) = a.actor("alice").await?;
    let (_bob, bob_token) = b.actor("bob").await?;
    let (carol, _) = b.actor("carol").await?;
    // alice follows carol, not bob: b's origin is one alice's node syncs
    // with, but no chain of bob's is.
    a.publish_ok(&alice_token, &follow(&carol)).await?;
    eventually(10, "alice to follow carol", || async {
        let page = a.get_ok("/actors/alice/following", None).await?;
        Ok((page["orderedItems"] == json!([carol])).then_some(()))
    })
    .await?;

    // While alice's node is down bob writes to alice alone (not public,
    // not to his followers); the delivery is dead-lettered.
    let mut missed = Value::Null;
    let a = a
        .restart_after(async {
            let draft = json!({"type": "Create", "object": {"type": "Note", "content": "for alice only"}, "to": [alice]});
            missed = b.publish_ok(&bob_token, &draft).await?;
            let id = missed["id"].clone();
            eventually(20, "the delivery to be dead-lettered", || async {
                let dead = b.get_ok("/admin/dead-letter", Some(&b.admin)).await?;
                let found = dead["items"].as_array().is_some_and(|items| {
                    items.iter().any(|i| {
                        i["activity"] == id
                            || i["activity"].as_str().map(weft_core::model::cid::internal)
                                == id.as_str().map(weft_core::model::cid::internal)
                    })
                });
                Ok(found.then_some(()))
            })
            .await
        })
        .await?;
    assert!(
        !inbox_ids(&a, "alice", &alice_token)
            .await?
            .contains(&missed["id"]),
        "the note arrived without sync"
    );

    let pass = a
        .api()
        .post_json("/admin/sync", &a.admin, &json!({}))
        .await?;
    assert_eq!(pass.0, 200, "{}", pass.1);
    assert_eq!(pass.1["origins"], 1, "{}", pass.1);
    assert_eq!(pass.1["setStored"], 1, "{}", pass.1);
    assert_eq!(pass.1["failed"], 0, "{}", pass.1);
    assert!(
        inbox_ids(&a, "alice", &alice_token)
            .await?
            .contains(&missed["id"]),
        "set reconciliation did not put the note in alice's inbox"
    );
    let view = a.get_ok("/admin/sync", Some(&a.admin)).await?;
    let origin = b.base.as_str();
    let entry = view["origins"]
        .as_array()
        .and_then(|all| all.iter().find(|e| e["origin"] == origin))
        .ok_or_else(|| anyhow::anyhow!("no sync state for {origin}: {view}"))?;
    assert_eq!(entry["stored"], 1, "{view}");
    assert_eq!(entry["offences"], 0, "{view}");

    // Nothing is left to find.
    let again = a
        .api()
        .post_json("/admin/sync", &a.admin, &json!({}))
        .await?;
    assert_eq!(again.1["setStored"], 0, "{}", again.1);
    assert_eq!(again.1["failed"], 0, "{}", again.1);
    a.stop().await?;
    b.stop().await
}

#[tokio::test]
async fn the_sync_endpoints_need_a_signature_and_serve_only_the_signers_origin()
-> anyhow::Result<()> {
    let a = TestNode::start().await?;
    let b = TestNode::start().await?;
    let c = TestNode::start().await?;
    let (alice, _) = a.actor("alice").await?;
    let (_bob, bob_token) = b.actor("bob").await?;
    let draft = json!({"type": "Create", "object": {"type": "Note", "content": "for alice only"}, "to": [alice]});
    let note = b.publish_ok(&bob_token, &draft).await?;
    let ids = json!({"ids": [set_id(&note)?, "00".repeat(32)]});
    let fetch = b.url("/sync/fetch");

    // Unsigned: 401, for both endpoints.
    for path in ["/sync/fetch", "/sync/negentropy"] {
        let reply = b.send(crate::support::Req::post(path).json(&ids)).await?;
        crate::support::assert_problem(&reply, 401)?;
    }
    // Signed by a node the note is not addressed to: nothing.
    let (status, body) = signed_post(&c, &fetch, &ids).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"items": []}));
    // Signed by alice's node: the note, and nothing for the unknown id.
    let (status, body) = signed_post(&a, &fetch, &ids).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"], json!([note]));
    // Malformed requests are 400 with a reason, not a failure.
    let (status, body) = signed_post(&a, &fetch, &json!({"ids": ["xyz"]})).await?;
    assert_eq!(status, 400, "{body}");
    let too_many: Vec<String> = (0..501).map(|_| "00".repeat(32)).collect();
    let (status, body) = signed_post(&a, &fetch, &json!({"ids": too_many})).await?;
    assert_eq!(status, 400, "{body}");
    let negentropy = b.url("/sync/negentropy");
    for bad in [
        json!({"msg": "zz"}),
        json!({"msg": "00"}),
        json!({"message": "61"}),
    ] {
        let (status, body) = signed_post(&a, &negentropy, &bad).await?;
        assert_eq!(status, 400, "{bad} → {body}");
    }
    a.stop().await?;
    b.stop().await?;
    c.stop().await
}

#[tokio::test]
async fn a_new_policy_wakes_the_reconcile_loop() -> anyhow::Result<()> {
    // The loop's timer is minutes away (the default interval): only the
    // new policy version can start this pass.
    let a = TestNode::start().await?;
    let b = TestNode::start().await?;
    let (bob, bob_token) = b.actor("bob").await?;
    let last = b.publish_ok(&bob_token, &note("to mirror")).await?;
    let (code, defined) = a
        .api()
        .post_json(
            "/actors/node/outbox",
            &a.admin,
            &json!({"type": "DefinePolicy", "name": "mirror", "kind": "replication", "spec": {"mirror": [bob]}}),
        )
        .await?;
    assert_eq!(code, 201, "{defined}");
    eventually(
        20,
        "the mirror policy to be met without a manual pass",
        || async {
            let status = a
                .get_ok("/admin/policies/mirror/status", Some(&a.admin))
                .await?;
            let compliant = status["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Compliant"))
                .is_some_and(|c| c["status"] == "True");
            Ok(compliant.then_some(()))
        },
    )
    .await?;
    let held = a
        .get_ok(
            &format!("/activities/{}", crate::support::id_of(&last)?),
            None,
        )
        .await?;
    assert_eq!(held, last);
    b.stop().await?;
    a.stop().await
}

#[tokio::test]
async fn a_sync_policy_budget_bounds_each_round() -> anyhow::Result<()> {
    // Pages of two; a budget of one byte a round: each round reads one
    // page, so the five missed notes take three rounds of one pass.
    let a = TestNode::start_with(|c| c.federation.sync_max_range = 2).await?;
    let b = TestNode::start().await?;
    let (_, alice_token) = a.actor("alice").await?;
    let (bob, bob_token) = b.actor("bob").await?;
    a.publish_ok(&alice_token, &follow(&bob)).await?;
    eventually(10, "alice to follow bob", || async {
        let page = a.get_ok("/actors/alice/following", None).await?;
        Ok((page["orderedItems"] == json!([bob])).then_some(()))
    })
    .await?;
    let (code, defined) = a
        .api()
        .post_json(
            "/actors/node/outbox",
            &a.admin,
            &json!({"type": "DefinePolicy", "name": "thrifty", "kind": "sync", "spec": {"budget": {"bytesPerRound": 1}}}),
        )
        .await?;
    assert_eq!(code, 201, "{defined}");
    let a = a
        .restart_after(async {
            for i in 0..5 {
                b.publish_ok(&bob_token, &note(&format!("thrifty {i}")))
                    .await?;
            }
            eventually(20, "the deliveries to be dead-lettered", || async {
                let dead = b.get_ok("/admin/dead-letter", Some(&b.admin)).await?;
                Ok((dead["totalItems"].as_u64() >= Some(5)).then_some(()))
            })
            .await
        })
        .await?;
    let (_, pass) = a
        .api()
        .post_json("/admin/sync", &a.admin, &json!({}))
        .await?;
    assert_eq!(pass["stored"], 5, "{pass}");
    assert!(pass["rounds"].as_u64() >= Some(3), "{pass}");
    b.stop().await?;
    a.stop().await
}
