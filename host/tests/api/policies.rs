//! Policies as data (`DefinePolicy`, `/admin/policies…`) on a real node:
//! defining and redefining (versions and history), the list, one policy
//! and its status, refusals that name the field and change nothing (the
//! digest and the whole state compared before and after), who may define
//! and read them, and a policy from a peer refused in an inbox.
//!
//! Not evaluation (`weft_kernel::policy`'s unit and property tests) nor
//! module admission under a `modules` policy (`host/tests/modules/travel.rs`).

use serde_json::{Value, json};

use crate::peer::FakePeer;
use crate::support::{Req, TestNode, assert_problem};

fn define(name: &str, kind: &str, spec: Value) -> Value {
    json!({"type": "DefinePolicy", "name": name, "kind": kind, "spec": spec})
}

/// Publishes `draft` as the service actor with the admin token.
async fn publish_admin(node: &TestNode, draft: &Value) -> anyhow::Result<crate::support::Reply> {
    node.send(
        Req::post("/actors/node/outbox")
            .bearer(&node.admin)
            .json(draft),
    )
    .await
}

async fn digest(node: &TestNode) -> anyhow::Result<Value> {
    node.get_ok("/admin/digest", Some(&node.admin)).await
}

#[tokio::test]
async fn a_policy_is_versioned_listed_and_shows_a_status() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let mut draft = define(
        "catch-up",
        "sync",
        json!({"interval": "5m", "maxLag": "1h"}),
    );
    draft["description"] = "catch followed actors up".into();
    let reply = publish_admin(&node, &draft).await?;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let first = reply.json()?;
    let reply = publish_admin(
        &node,
        &define(
            "catch-up",
            "sync",
            json!({"interval": "1m", "budget": {"bytesPerRound": 1000000, "roundsPerHour": 60}}),
        ),
    )
    .await?;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let second = reply.json()?;
    let reply = publish_admin(
        &node,
        &define(
            "mirror-a",
            "replication",
            json!({"mirror": ["https://a.example"]}),
        ),
    )
    .await?;
    assert_eq!(reply.status, 201, "{}", reply.text);

    let list = node.get_ok("/admin/policies", Some(&node.admin)).await?;
    let policies = list["policies"].as_array().cloned().unwrap_or_default();
    assert_eq!(policies.len(), 2, "{list}");
    let catch_up = node
        .get_ok("/admin/policies/catch-up", Some(&node.admin))
        .await?;
    assert_eq!(
        policies[0], catch_up,
        "the list shows each policy as its own endpoint does"
    );
    assert_eq!(catch_up["version"], 2, "{catch_up}");
    assert_eq!(catch_up["kind"], "sync");
    assert_eq!(catch_up["spec"]["interval"], "1m");
    let cid = |v: &Value| {
        weft_core::model::cid::internal(v["id"].as_str().unwrap_or_default()).to_owned()
    };
    assert_eq!(catch_up["id"], cid(&second));
    let history = catch_up["history"].as_array().cloned().unwrap_or_default();
    assert_eq!(history.len(), 2, "{catch_up}");
    assert_eq!(history[0]["version"], 1);
    assert_eq!(history[0]["id"], cid(&first));
    assert_eq!(history[0]["spec"]["maxLag"], "1h");
    assert_eq!(history[0]["description"], "catch followed actors up");
    assert!(catch_up.get("description").is_none(), "{catch_up}");
    assert_eq!(policies[1]["name"], "mirror-a");

    // Publishing a policy wakes the reconcile loop, which evaluates it with
    // no manual pass: nothing is followed, so nothing is outstanding.
    let status = crate::support::eventually(20, "the loop to evaluate catch-up", || async {
        let status = node
            .get_ok("/admin/policies/catch-up/status", Some(&node.admin))
            .await?;
        let evaluated = status["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["reason"] != "NotEvaluated"));
        Ok(evaluated.then_some(status))
    })
    .await?;
    assert_eq!(status["version"], 2, "{status}");
    assert_eq!(status["obligations"], json!([]));
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    let types: Vec<&str> = conditions
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(types, ["Compliant", "InSync"], "{status}");
    for c in &conditions {
        assert_eq!(c["status"], "True", "{c}");
        assert!(c["lastTransitionTime"].is_string(), "{c}");
    }

    // What the reconcile loop reads, and what it sets, is what is shown.
    let current = node.kernel.policies()?;
    assert_eq!(current.len(), 2);
    let mut set = weft_kernel::policy::PolicyStatus::not_evaluated(&current[0], "t");
    set.set_condition(weft_kernel::policy::Condition {
        kind: "InSync".into(),
        status: weft_kernel::policy::ConditionStatus::True,
        reason: "CaughtUp".into(),
        message: "every followed actor is within maxLag".into(),
        last_transition_time: "2026-01-01T00:00:00Z".into(),
    });
    // The loop may still run a pass a publication woke (and set its own);
    // once it is quiet, what is set is what is shown.
    let status = crate::support::eventually(20, "the status set to be shown", || async {
        node.kernel.policy_statuses().set("catch-up", set.clone());
        let status = node
            .get_ok("/admin/policies/catch-up/status", Some(&node.admin))
            .await?;
        Ok((status["conditions"][1]["reason"] == "CaughtUp").then_some(status))
    })
    .await?;
    assert_eq!(status["conditions"][1]["status"], "True", "{status}");

    // Unknown names are 404, naming the policy.
    for path in ["/admin/policies/nope", "/admin/policies/nope/status"] {
        let reply = node.send(Req::get(path).bearer(&node.admin)).await?;
        let problem = assert_problem(&reply, 404)?;
        assert!(
            problem["detail"].as_str().unwrap_or("").contains("`nope`"),
            "{problem}"
        );
    }

    // A policy is the node's own: not public, never delivered.
    let id = weft_core::model::cid::internal(first["id"].as_str().unwrap_or_default()).to_owned();
    assert_eq!(node.get(&format!("/activities/{id}"), None).await?.0, 404);
    assert_eq!(node.kernel.store().read()?.jobs()?.len(), 0);

    // The table is the log's `DefinePolicy` activities folded in order.
    let records = {
        let txn = node.kernel.store().begin_write()?;
        let records = txn.records(1, txn.last_position()?, usize::MAX)?;
        txn.abort()?;
        records
    };
    let derived = weft_store::Store::open(&node.dir.path().join("derived.redb"))?;
    let txn = derived.begin_write()?;
    for (position, record) in records {
        let signed = weft_core::model::Signed::parse(serde_json::from_str(&record.json)?)?;
        weft_kernel::policy::record(&txn, &signed, position)?;
    }
    txn.commit()?;
    let table = node.kernel.store().read()?.policies()?;
    assert_eq!(table.len(), 2);
    assert_eq!(derived.read()?.policies()?, table);

    // Versions survive a restart.
    let node = node.restart().await?;
    let again = node
        .get_ok("/admin/policies/catch-up", Some(&node.admin))
        .await?;
    assert_eq!(again, catch_up);
    node.stop().await
}

#[tokio::test]
async fn a_bad_policy_is_refused_naming_the_field_and_changes_nothing() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let reply = publish_admin(
        &node,
        &define(
            "keep",
            "replication",
            json!({"keep": [{"actors": ["https://c.example"], "days": 7}]}),
        ),
    )
    .await?;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let cases = [
        (
            define(
                "m",
                "replication",
                json!({"mirror": ["https://a.example", "https://b.example/actors/bob", "ftp://x"]}),
            ),
            "spec.mirror[2]",
        ),
        (
            define(
                "keep",
                "replication",
                json!({"keep": [{"actors": ["https://c.example"], "days": -1}]}),
            ),
            "spec.keep[0].days",
        ),
        (
            define("m", "modules", json!({"policy": "everyone"})),
            "spec.policy",
        ),
        (
            define("f", "follows", json!({"accept": "sometimes"})),
            "spec.accept",
        ),
        (
            define("s", "sync", json!({"interval": "often"})),
            "spec.interval",
        ),
        (define("s", "sync", json!({"every": "5m"})), "spec.every"),
        (define("s", "gossip", json!({})), "kind"),
        (define("s", "sync", json!("5m")), "spec"),
        (define("9lives", "sync", json!({})), "name"),
        (
            json!({"type": "DefinePolicy", "name": "s", "kind": "sync", "spec": {}, "to": ["https://www.w3.org/ns/activitystreams#Public"]}),
            "to",
        ),
    ];
    for (draft, field) in cases {
        let before = digest(&node).await?;
        let problem = node
            .assert_rejected(
                Req::post("/actors/node/outbox")
                    .bearer(&node.admin)
                    .json(&draft),
                422,
            )
            .await?;
        assert_eq!(problem["field"], field, "{draft}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap_or("").contains(field),
            "{problem}"
        );
        assert_eq!(digest(&node).await?, before, "{draft} changed the node");
    }
    let keep = node
        .get_ok("/admin/policies/keep", Some(&node.admin))
        .await?;
    assert_eq!(
        keep["version"], 1,
        "a refused redefinition makes no version"
    );
    node.stop().await
}

#[tokio::test]
async fn only_the_operator_defines_and_reads_policies() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let draft = define("s", "sync", json!({}));
    // An actor's own token cannot define one…
    let problem = node
        .assert_rejected(Req::publish(&token, &draft), 422)
        .await?;
    assert_eq!(problem["field"], "actor", "{problem}");
    // …the operator can, as that actor.
    let reply = node
        .send(
            Req::post("/actors/alice/outbox")
                .bearer(&node.admin)
                .json(&draft),
        )
        .await?;
    assert_eq!(reply.status, 201, "{}", reply.text);
    for path in [
        "/admin/policies",
        "/admin/policies/s",
        "/admin/policies/s/status",
    ] {
        let reply = node.send(Req::get(path).bearer(&token)).await?;
        assert_problem(&reply, 403)?;
        let reply = node.send(Req::get(path)).await?;
        assert_problem(&reply, 401)?;
        let reply = node.send(Req::get(path).bearer(&node.admin)).await?;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    }
    node.stop().await
}

#[tokio::test]
async fn a_policy_is_refused_in_an_inbox() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, _) = node.actor("alice").await?;
    let peer = FakePeer::start().await?;
    peer.actor("eve")?;
    node.doc("node").await?;
    // A good activity first, so eve's document is kept before comparing.
    let hello = peer.sign(
        "eve",
        json!({"type": "Create", "object": {"type": "Note", "content": "hi"}, "to": [alice]}),
    )?;
    let reply = node
        .send(Req::post("/actors/alice/inbox").json(&hello))
        .await?;
    assert_eq!(reply.status, 202, "{}", reply.text);

    let policy = peer.sign(
        "eve",
        json!({"type": "DefinePolicy", "name": "s", "kind": "sync", "spec": {}, "to": [alice]}),
    )?;
    let before = digest(&node).await?;
    let problem = node
        .assert_rejected(Req::post("/actors/alice/inbox").json(&policy), 422)
        .await?;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("not accepted in an inbox"),
        "{problem}"
    );
    assert_eq!(digest(&node).await?, before);
    let list = node.get_ok("/admin/policies", Some(&node.admin)).await?;
    assert_eq!(list["policies"], json!([]));
    node.stop().await
}

/// Publishes a `follows` policy (admin token, as the service actor).
async fn follows_policy(node: &TestNode, accept: &str) -> anyhow::Result<()> {
    let reply = publish_admin(
        node,
        &define("followers", "follows", json!({"accept": accept})),
    )
    .await?;
    anyhow::ensure!(reply.status == 201, "{}", reply.text);
    Ok(())
}

async fn pending_follows(node: &TestNode) -> anyhow::Result<Vec<Value>> {
    let list = node
        .get_ok("/admin/follows/pending", Some(&node.admin))
        .await?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

/// The content id of an activity or an id.
fn cid_of(id: &Value) -> String {
    weft_core::model::cid::internal(id.as_str().unwrap_or_default()).to_owned()
}

/// Posts a Follow of `alice` signed by the peer's `name`; answers its
/// content id once the node has taken it.
async fn follow_from(
    node: &TestNode,
    peer: &FakePeer,
    name: &str,
    alice: &str,
) -> anyhow::Result<String> {
    let follow = peer.sign(
        name,
        json!({"type": "Follow", "object": alice, "to": [alice]}),
    )?;
    let reply = node
        .send(Req::post("/actors/alice/inbox").json(&follow))
        .await?;
    anyhow::ensure!(reply.status == 202, "{}", reply.text);
    Ok(cid_of(&follow["id"]))
}

/// Whether alice's log holds an activity of `kind` whose object is `follow`.
fn answered(node: &TestNode, alice: &str, kind: &str, follow: &str) -> anyhow::Result<bool> {
    Ok(node
        .log(alice)?
        .iter()
        .any(|a| a["type"] == kind && cid_of(&a["object"]) == follow))
}

#[tokio::test]
async fn under_a_manual_follows_policy_a_follow_waits_for_the_operator() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    follows_policy(&node, "manual").await?;
    let peer = FakePeer::start().await?;
    let eve = peer.actor("eve")?;
    peer.actor("fay")?;

    let from_eve = follow_from(&node, &peer, "eve", &alice).await?;
    let items = weft_test_support::eventually(5, "eve's Follow to be pending", || async {
        let items = pending_follows(&node).await?;
        Ok((!items.is_empty()).then_some(items))
    })
    .await?;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["id"], from_eve.as_str());
    assert_eq!(items[0]["follower"], eve.as_str());
    assert_eq!(items[0]["followed"], alice.as_str());
    assert!(
        !answered(&node, &alice, "Accept", &from_eve)?,
        "held, not accepted"
    );

    // The hold outlives a restart.
    let node = node.restart().await?;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(pending_follows(&node).await?.len(), 1);
    assert!(!answered(&node, &alice, "Accept", &from_eve)?);

    // Only the operator answers; an unknown Follow is 404.
    let approve = format!("/admin/follows/pending/{from_eve}/approve");
    assert_problem(&node.send(Req::post(&approve).bearer(&token)).await?, 403)?;
    assert_problem(
        &node
            .send(Req::post("/admin/follows/pending/bnope/approve").bearer(&node.admin))
            .await?,
        404,
    )?;
    let reply = node.send(Req::post(&approve).bearer(&node.admin)).await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let published = reply.json()?;
    assert_eq!(published["published"][0]["type"], "Accept", "{published}");
    assert!(answered(&node, &alice, "Accept", &from_eve)?);
    assert!(pending_follows(&node).await?.is_empty());
    let followers = node.get_ok("/actors/alice/followers", None).await?;
    assert_eq!(followers["orderedItems"], json!([eve]), "{followers}");

    // Rejecting: alice publishes a Reject of fay's Follow.
    let from_fay = follow_from(&node, &peer, "fay", &alice).await?;
    weft_test_support::eventually(5, "fay's Follow to be pending", || async {
        Ok(pending_follows(&node)
            .await?
            .iter()
            .any(|i| i["id"] == from_fay.as_str())
            .then_some(()))
    })
    .await?;
    let reply = node
        .send(Req::post(format!("/admin/follows/pending/{from_fay}/reject")).bearer(&node.admin))
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(answered(&node, &alice, "Reject", &from_fay)?);
    assert!(!answered(&node, &alice, "Accept", &from_fay)?);
    assert!(pending_follows(&node).await?.is_empty());
    let followers = node.get_ok("/actors/alice/followers", None).await?;
    assert_eq!(
        followers["orderedItems"],
        json!([eve]),
        "fay is not a follower: {followers}"
    );

    // A Follow held under `manual` is answered by its verb once the policy
    // says `auto`, without a restart.
    peer.actor("gus")?;
    let from_gus = follow_from(&node, &peer, "gus", &alice).await?;
    weft_test_support::eventually(5, "gus's Follow to be pending", || async {
        Ok((!pending_follows(&node).await?.is_empty()).then_some(()))
    })
    .await?;
    follows_policy(&node, "auto").await?;
    weft_test_support::eventually(5, "gus's Follow to be accepted", || async {
        Ok(answered(&node, &alice, "Accept", &from_gus)?.then_some(()))
    })
    .await?;
    assert!(pending_follows(&node).await?.is_empty());
    node.stop().await
}

#[tokio::test]
async fn under_a_followed_follows_policy_only_actors_followed_here_are_accepted_at_once()
-> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    follows_policy(&node, "followed").await?;
    let peer = FakePeer::start().await?;
    let eve = peer.actor("eve")?;
    peer.actor("fay")?;
    // alice follows eve, and eve accepts.
    let follow = node
        .publish_ok(
            &token,
            &json!({"type": "Follow", "object": eve, "to": [eve]}),
        )
        .await?;
    let accept = peer.sign(
        "eve",
        json!({"type": "Accept", "object": follow["id"], "to": [alice]}),
    )?;
    let reply = node
        .send(Req::post("/actors/alice/inbox").json(&accept))
        .await?;
    assert_eq!(reply.status, 202, "{}", reply.text);

    let from_eve = follow_from(&node, &peer, "eve", &alice).await?;
    weft_test_support::eventually(5, "eve's Follow to be accepted", || async {
        Ok(answered(&node, &alice, "Accept", &from_eve)?.then_some(()))
    })
    .await?;
    let from_fay = follow_from(&node, &peer, "fay", &alice).await?;
    let items = weft_test_support::eventually(5, "fay's Follow to be pending", || async {
        let items = pending_follows(&node).await?;
        Ok((!items.is_empty()).then_some(items))
    })
    .await?;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["id"], from_fay.as_str());
    assert!(!answered(&node, &alice, "Accept", &from_fay)?);
    node.stop().await
}
