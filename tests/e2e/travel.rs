//! Verbs travel between real nodes (issue 5): a verb defined only on node
//! B, by bob, is used by bob; node A (whose alice follows bob, `followed`
//! policy) fetches and registers it and folds the activity; node C (whose
//! carol follows bob too, `manual` policy) keeps it pending until the
//! operator approves it.

use anyhow::ensure;
use serde_json::{Value, json};

use crate::support::{PUBLIC, Weft, cid, eventually, note, publish};

/// The Rust example verb (`examples/rust-rsvp`), built by build.rs.
fn rsvp_wasm() -> String {
    format!("{}/weft-example-rsvp.wasm", weft_test_guests::DIR)
}

async fn node(policy: &str) -> anyhow::Result<Weft> {
    let mut weft = Weft::init()?;
    weft.run_env("WEFT_FEDERATION_RETRY", "200ms,400ms,800ms,1s,2s,5s");
    weft.run_env("WEFT_MODULE_POLICY", policy);
    weft.start().await?;
    Ok(weft)
}

/// Whether `actor`'s feed on `weft` holds the activity `id`.
async fn in_feed(weft: &Weft, actor: &str, token: &str, id: &Value) -> anyhow::Result<bool> {
    let body = weft
        .get_ok(
            &format!("/projections/feed?actor={actor}&limit=100"),
            Some(token),
        )
        .await?;
    Ok(body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|i| &i["activity"]["id"] == id))
}

async fn follow(weft: &Weft, token: &str, name: &str, target: &str) -> anyhow::Result<()> {
    publish(
        weft,
        token,
        json!({"type": "Follow", "object": target, "to": [target]}),
    )
    .await?;
    eventually(20, "the follow to be accepted", || async {
        let body = weft
            .get_ok(&format!("/actors/{name}/following"), None)
            .await?;
        Ok(body["orderedItems"]
            .as_array()
            .is_some_and(|f| f.contains(&json!(target)))
            .then_some(()))
    })
    .await
}

#[tokio::test]
async fn a_verb_defined_on_one_node_reaches_its_peers() -> anyhow::Result<()> {
    let b = node("followed").await?;
    let a = node("followed").await?;
    let c = node("manual").await?;
    let (bob, bob_token) = b.create_actor_http("bob").await?;
    let (alice, alice_token) = a.create_actor_http("alice").await?;
    let (carol, carol_token) = c.create_actor_http("carol").await?;
    follow(&a, &alice_token, "alice", &bob).await?;
    follow(&c, &carol_token, "carol", &bob).await?;

    // B's operator defines Rsvp as bob, from the example's build.
    let out = b.ok(&[
        "module",
        "add",
        "verb",
        "Rsvp",
        &rsvp_wasm(),
        "--as",
        "bob",
        "--language",
        "rust",
        "--description",
        "answer an invitation",
    ])?;
    ensure!(out.contains("defined DefineActivity `Rsvp`"), "{out}");
    // A does not know it: alice cannot use it there yet.
    let (status, body) = a
        .post_activity(&alice_token, &json!({"type": "Rsvp"}))
        .await?;
    ensure!(status == 422, "A knows no Rsvp yet: {status} {body}");

    // bob invites, and both followers get the invitation. The Rsvp verb
    // names it by its content id.
    let invitation = publish(&b, &bob_token, note("party on friday?")).await?;
    for (weft, actor, token) in [(&a, &alice, &alice_token), (&c, &carol, &carol_token)] {
        eventually(20, "the invitation to arrive", || async {
            Ok(in_feed(weft, actor, token, &invitation["id"])
                .await?
                .then_some(()))
        })
        .await?;
    }
    let answer = publish(
        &b,
        &bob_token,
        json!({"type": "Rsvp", "object": cid(&invitation), "answer": "yes", "to": [PUBLIC]}),
    )
    .await?;

    // A admits it (alice follows bob, its definer) and folds the answer.
    eventually(30, "A to admit Rsvp and fold bob's answer", || async {
        Ok(in_feed(&a, &alice, &alice_token, &answer["id"])
            .await?
            .then_some(()))
    })
    .await?;
    let list = a.ok(&["module", "list"])?;
    ensure!(
        list.contains("Rsvp") && list.contains("[rust] answer an invitation"),
        "{list}"
    );
    let mine = publish(
        &a,
        &alice_token,
        json!({"type": "Rsvp", "object": cid(&invitation), "answer": "maybe", "to": [PUBLIC]}),
    )
    .await?;
    ensure!(mine["type"] == "Rsvp");

    // C keeps it pending until its operator approves.
    let pending = eventually(30, "C to hold Rsvp for approval", || async {
        let out = c.ok(&["module", "pending"])?;
        Ok(out.contains("awaiting-approval").then_some(out))
    })
    .await?;
    ensure!(
        pending.contains("Rsvp") && pending.contains("1 parked"),
        "{pending}"
    );
    ensure!(pending.contains(&cid(&answer)), "{pending}");
    ensure!(!in_feed(&c, &carol, &carol_token, &answer["id"]).await?);
    let approved = c.ok(&["module", "approve", "Rsvp"])?;
    ensure!(
        approved.contains("1 parked activities ingested"),
        "{approved}"
    );
    ensure!(in_feed(&c, &carol, &carol_token, &answer["id"]).await?);
    ensure!(
        c.ok(&["module", "pending"])?
            .contains("no pending modules and no parked activities")
    );
    Ok(())
}
