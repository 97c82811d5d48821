//! What a successful publish answers, and what a client may put in a draft.

use anyhow::Context;
use serde_json::{Value, json};
use weft_core::identity::IdentityError;
use weft_core::model::{EnvelopeError, PUBLIC, Signed};

use crate::support::{Req, TestNode, assert_chain, id_of, note, verify, verify_err};

#[tokio::test]
async fn created_has_a_location_that_serves_the_same_activity() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let reply = node.send(Req::publish(&token, &note("hello"))).await?;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/activity+json")
    );
    let activity = reply.json()?;
    let id = id_of(&activity)?;
    let location = reply.location.context("a 201 has a Location")?;
    assert_eq!(location, format!("{}/activities/{id}", node.base));

    let fetched = node.send(Req::get(location.clone())).await?;
    assert_eq!(fetched.status, 200);
    assert_eq!(
        fetched.content_type.as_deref(),
        Some("application/activity+json")
    );
    assert_eq!(
        fetched.text, reply.text,
        "the stored bytes are the ones returned"
    );
    node.stop().await
}

#[tokio::test]
async fn the_returned_activity_has_its_recomputed_id_and_a_valid_signature() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let activity = node.publish_ok(&token, &note("verify me")).await?;
    let signed = Signed::parse(activity.clone()).context("id recomputes")?;
    assert_eq!(signed.id, id_of(&activity)?);
    assert_eq!(signed.key_id, format!("{alice}#key-1"));
    assert_eq!(signed.header.actor, alice);
    verify(&node.doc("alice").await?, &activity)?;

    // Any change to the signed content breaks it, so the check above is real:
    // first the id no longer matches, and with the id fixed up the signature
    // no longer verifies.
    let mut tampered = activity.clone();
    tampered["object"]["content"] = json!("forged");
    match Signed::parse(tampered.clone()) {
        Err(EnvelopeError::IdMismatch { computed, .. }) => tampered["id"] = json!(computed),
        other => anyhow::bail!("a changed activity must not keep its id: {other:?}"),
    }
    let refused = verify_err(&node.doc("alice").await?, &tampered)?;
    assert!(
        matches!(refused, Err(IdentityError::BadSignature(_))),
        "{refused:?}"
    );
    node.stop().await
}

#[tokio::test]
async fn the_node_fills_the_envelope_and_keeps_the_draft() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let tip = node.doc("alice").await?["log"]["tip"].clone();
    let draft = json!({
        "type": "Create",
        "object": {"type": "Note", "content": "héllo \u{1F600}", "tags": [1, 2.5, true, null]},
        "to": [PUBLIC],
        "cc": [format!("{alice}/followers")],
    });
    let activity = node.publish_ok(&token, &draft).await?;
    assert_eq!(activity["actor"], alice.as_str());
    assert_eq!(activity["seq"], 2);
    assert_eq!(activity["prev"], tip);
    let published = activity["published"].as_str().context("published")?;
    humantime::parse_rfc3339(published).context("published is RFC 3339")?;
    assert_eq!(activity["proof"]["key"], format!("{alice}#key-1"));
    assert!(activity["proof"]["signature"].is_string());
    assert_eq!(
        activity["@context"],
        "https://www.w3.org/ns/activitystreams"
    );
    for field in ["type", "to", "cc"] {
        assert_eq!(activity[field], draft[field], "{field} is kept as drafted");
    }
    // The object keeps every drafted field, and gains what ActivityPub
    // peers expect of a created object: its own id, its author, when it
    // was published, and the activity's audience.
    let object = activity["object"].as_object().context("object")?;
    for (field, value) in draft["object"].as_object().context("drafted object")? {
        assert_eq!(
            object.get(field),
            Some(value),
            "object.{field} is kept as drafted"
        );
    }
    assert_eq!(object["id"], format!("{alice}/objects/2"));
    assert_eq!(object["attributedTo"], alice.as_str());
    assert_eq!(object["published"], published);
    assert_eq!(object["to"], draft["to"]);
    assert_eq!(object["cc"], draft["cc"]);
    assert_eq!(
        object.len(),
        draft["object"].as_object().context("drafted object")?.len() + 5,
        "nothing else is added to the object: {}",
        activity["object"]
    );
    node.stop().await
}

#[tokio::test]
async fn publishing_through_the_outbox_is_the_same_as_post_activity() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let reply = node
        .send(
            Req::post("/actors/alice/outbox")
                .bearer(&token)
                .json(&note("via outbox")),
        )
        .await?;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let activity = reply.json()?;
    assert_eq!(activity["actor"], alice.as_str());
    assert_eq!(activity["seq"], 2);
    assert_eq!(
        reply.location,
        Some(format!("{}/activities/{}", node.base, id_of(&activity)?))
    );
    let next = node.publish_ok(&token, &note("via activity")).await?;
    assert_eq!(next["prev"], id_of(&activity)?.as_str());
    assert_chain(&node.log(&alice)?, &alice)?;
    node.stop().await
}

#[tokio::test]
async fn a_draft_may_carry_the_seq_and_prev_the_node_would_assign() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let tip = node.doc("alice").await?["log"]["tip"].clone();

    let mut with_seq = note("seq given");
    with_seq["seq"] = json!(2);
    let first = node.publish_ok(&token, &with_seq).await?;
    assert_eq!(first["seq"], 2);
    assert_eq!(first["prev"], tip);

    let mut with_prev = note("prev given");
    with_prev["prev"] = json!(id_of(&first)?);
    let second = node.publish_ok(&token, &with_prev).await?;
    assert_eq!(second["seq"], 3);

    let mut with_both = note("both given, and actor");
    with_both["seq"] = json!(4);
    with_both["prev"] = json!(id_of(&second)?);
    with_both["actor"] = json!(alice);
    let third = node.publish_ok(&token, &with_both).await?;
    assert_eq!(third["seq"], 4);
    assert_chain(&node.log(&alice)?, &alice)?;
    node.stop().await
}

#[tokio::test]
async fn a_follow_is_stored_as_drafted() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let (bob, _) = node.actor("bob").await?;
    // A verb the node does not know is refused.
    node.assert_rejected(
        Req::post("/activity")
            .bearer(&token)
            .json(&json!({"type": "Wave", "object": bob})),
        422,
    )
    .await?;
    let draft = json!({"type": "Follow", "object": bob, "to": [bob]});
    let activity = node.publish_ok(&token, &draft).await?;
    assert_eq!(activity["type"], "Follow");
    assert_eq!(activity["object"], bob.as_str());
    let log = node.log(&alice)?;
    assert_eq!(log.last(), Some(&activity));
    let fetched: Value = node
        .get_ok(&format!("/activities/{}", id_of(&activity)?), Some(&token))
        .await?;
    assert_eq!(fetched, activity);
    node.stop().await
}
