//! The actor lifecycle over HTTP: profile `Update`, `Move`, and the fields
//! and identities an actor cannot change.

use serde_json::{Value, json};

use crate::support::{Req, TestNode, assert_chain, id_of, verify};

fn update(object: Value) -> Value {
    json!({"type": "Update", "object": object})
}

#[tokio::test]
async fn a_profile_update_changes_the_actor_document() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let before = node.doc("alice").await?;
    assert_eq!(before["name"], "alice");

    let draft = update(json!({"type": "Person", "name": "Alice A.", "summary": "Knits logs."}));
    let activity = node.publish_ok(&token, &draft).await?;
    assert_eq!(activity["seq"], 2);
    assert_eq!(
        activity["object"]["id"],
        alice.as_str(),
        "the node fills the object's id"
    );

    let doc = node.doc("alice").await?;
    assert_eq!(doc["name"], "Alice A.");
    assert_eq!(doc["summary"], "Knits logs.");
    assert_eq!(doc["preferredUsername"], "alice");
    assert_eq!(doc["id"], alice.as_str());
    assert_eq!(doc["type"], "Person");
    assert_eq!(doc["inbox"], format!("{alice}/inbox"));
    assert_eq!(doc["updated"], activity["published"]);
    assert_eq!(doc["published"], before["published"]);
    assert_eq!(
        doc["assertionMethod"], before["assertionMethod"],
        "no key change"
    );
    verify(&doc, &activity)?;

    // Later updates merge; null removes a field.
    node.publish_ok(&token, &update(json!({"type": "Person", "summary": null})))
        .await?;
    let doc = node.doc("alice").await?;
    assert_eq!(doc["name"], "Alice A.");
    assert!(doc.get("summary").is_none(), "{doc}");
    assert_chain(&node.log(&alice)?, &alice)?;
    node.stop().await
}

#[tokio::test]
async fn lifecycle_activities_are_public_even_when_not_addressed() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let profile = node
        .publish_ok(&token, &update(json!({"type": "Person", "name": "A"})))
        .await?;
    let moved = node
        .publish_ok(
            &token,
            &json!({"type": "Move", "target": "http://127.0.0.1:9/actors/elsewhere"}),
        )
        .await?;
    let outbox = node.get_ok("/actors/alice/outbox?page=1", None).await?;
    assert_eq!(outbox["totalItems"], 3);
    assert_eq!(outbox["orderedItems"][0], moved);
    assert_eq!(outbox["orderedItems"][1], profile);
    for activity in [&profile, &moved] {
        // Its id is the URL that serves it to anyone.
        let url = activity["id"].as_str().unwrap_or_default();
        assert_eq!(
            url,
            format!("{}/activities/{}", node.base, id_of(activity)?)
        );
        let (status, fetched) = node.get(url, None).await?;
        assert_eq!(status, 200);
        assert_eq!(fetched, *activity);
    }
    node.stop().await
}

#[tokio::test]
async fn move_sets_moved_to() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    assert!(node.doc("alice").await?.get("movedTo").is_none());
    let target = "http://127.0.0.1:9/actors/elsewhere";
    let activity = node
        .publish_ok(&token, &json!({"type": "Move", "target": target}))
        .await?;
    assert_eq!(
        activity["object"],
        alice.as_str(),
        "the node fills the object"
    );
    assert_eq!(activity["target"], target);
    let doc = node.doc("alice").await?;
    assert_eq!(doc["movedTo"], target);
    assert_eq!(doc["updated"], activity["published"]);
    verify(&doc, &activity)?;
    node.stop().await
}

#[tokio::test]
async fn a_move_must_name_the_actor_and_another_url() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let (bob, _) = node.actor("bob").await?;
    let bad = [
        json!({"type": "Move"}),
        json!({"type": "Move", "target": "not a url"}),
        json!({"type": "Move", "target": 7}),
        json!({"type": "Move", "target": alice}),
        json!({"type": "Move", "object": bob, "target": "http://127.0.0.1:9/actors/x"}),
    ];
    for draft in &bad {
        node.assert_rejected(Req::publish(&token, draft), 422)
            .await?;
    }
    assert!(node.doc("alice").await?.get("movedTo").is_none());
    node.stop().await
}

#[tokio::test]
async fn preferred_username_cannot_change() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let draft = update(json!({"type": "Person", "preferredUsername": "mallory"}));
    let problem = node
        .assert_rejected(Req::publish(&token, &draft), 422)
        .await?;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("preferredUsername"),
        "{problem}"
    );
    // Restating the same name is not a change.
    let same = update(json!({"type": "Person", "preferredUsername": "alice", "name": "Al"}));
    node.publish_ok(&token, &same).await?;
    let doc = node.doc("alice").await?;
    assert_eq!(doc["preferredUsername"], "alice");
    assert_eq!(doc["name"], "Al");
    node.stop().await
}

#[tokio::test]
async fn reserved_profile_fields_cannot_be_set() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    for field in [
        "inbox",
        "outbox",
        "followers",
        "following",
        "publicKey",
        "assertionMethod",
        "movedTo",
        "endpoints",
        "@context",
    ] {
        let draft = update(json!({"type": "Person", field: "http://127.0.0.1:9/x"}));
        let problem = node
            .assert_rejected(Req::publish(&token, &draft), 422)
            .await?;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(field),
            "{field}: {problem}"
        );
    }
    let doc = node.doc("alice").await?;
    assert!(
        doc["inbox"]
            .as_str()
            .is_some_and(|i| i.ends_with("/actors/alice/inbox"))
    );
    node.stop().await
}

#[tokio::test]
async fn identity_rejections_name_the_field_at_fault() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let draft = update(json!({"type": "Person", "inbox": "http://127.0.0.1:9/x"}));
    let problem = node
        .assert_rejected(Req::publish(&token, &draft), 422)
        .await?;
    assert_eq!(problem["field"], "object.inbox", "{problem}");
    let draft = update(json!({"type": "Person", "preferredUsername": "mallory"}));
    let problem = node
        .assert_rejected(Req::publish(&token, &draft), 422)
        .await?;
    assert_eq!(problem["field"], "object.preferredUsername", "{problem}");
    node.stop().await
}

#[tokio::test]
async fn an_actor_cannot_update_another_actor_or_change_its_type() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let (bob, _) = node.actor("bob").await?;
    let other = update(json!({"type": "Person", "id": bob, "name": "Not Bob"}));
    let problem = node
        .assert_rejected(Req::publish(&token, &other), 422)
        .await?;
    assert_eq!(problem["field"], "object.id");
    assert_eq!(node.doc("bob").await?["name"], "bob");

    let retype = update(json!({"type": "Service", "name": "A bot now"}));
    node.assert_rejected(Req::publish(&token, &retype), 422)
        .await?;
    assert_eq!(node.doc("alice").await?["type"], "Person");

    node.stop().await
}
