//! Bearer tokens: who may publish as whom, who may create actors, and how
//! actors are created.

use anyhow::Context;
use serde_json::json;

use crate::support::{Req, TestNode, assert_chain, id_of, note, verify};

#[tokio::test]
async fn publishing_needs_a_valid_actor_token() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let draft = note("hi");
    let problem = node
        .assert_rejected(Req::post("/activity").json(&draft), 401)
        .await?;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("Bearer")
    );
    let reply = node.send(Req::post("/activity").json(&draft)).await?;
    assert_eq!(
        reply.www_authenticate.as_deref(),
        Some("Bearer realm=\"weft\"")
    );
    for header in [
        "Bearer weft_notarealtoken".to_owned(),
        "Basic x".to_owned(),
        "Bearer ".to_owned(),
        "Bearer".to_owned(),
        token.clone(),
        format!("Token {token}"),
        format!("Bearer {token}x"),
    ] {
        node.assert_rejected(
            Req::post("/activity").authorization(&header).json(&draft),
            401,
        )
        .await
        .with_context(|| header.clone())?;
    }
    // The token itself works, so the refusals above were about the header.
    node.publish_ok(&token, &draft).await?;
    node.stop().await
}

#[tokio::test]
async fn the_auth_scheme_is_case_insensitive() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let reply = node
        .send(
            Req::post("/activity")
                .authorization(&format!("bearer {token}"))
                .json(&note("hi")),
        )
        .await?;
    assert_eq!(reply.status, 201, "{}", reply.text);
    node.stop().await
}

#[tokio::test]
async fn a_bad_token_is_refused_even_where_anonymous_reading_is_allowed() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let activity = node.publish_ok(&token, &note("public")).await?;
    for path in [
        "/actors/alice/outbox".to_owned(),
        format!("/activities/{}", id_of(&activity)?),
    ] {
        node.assert_rejected(
            Req::get(path.clone()).authorization("Bearer weft_wrong"),
            401,
        )
        .await
        .with_context(|| path.clone())?;
        // Without the header, the same read is fine.
        node.get_ok(&path, None).await?;
    }
    node.stop().await
}

#[tokio::test]
async fn the_admin_token_does_not_name_an_actor() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    node.actor("alice").await?;
    let problem = node
        .assert_rejected(Req::publish(&node.admin, &note("as whom?")), 422)
        .await?;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("outbox"),
        "the detail says what to do instead: {problem}"
    );
    node.stop().await
}

#[tokio::test]
async fn only_the_admin_creates_actors() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let body = json!({"name": "bob"});
    node.assert_rejected(Req::post("/actors").json(&body), 401)
        .await?;
    node.assert_rejected(Req::post("/actors").bearer(&token).json(&body), 403)
        .await?;
    node.assert_rejected(
        Req::post("/actors")
            .bearer("weft_notarealtoken")
            .json(&body),
        401,
    )
    .await?;
    let (status, _) = node.get("/actors/bob", None).await?;
    assert_eq!(status, 404);
    node.stop().await
}

#[tokio::test]
async fn the_outbox_accepts_the_owners_token_or_the_admins() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, _) = node.actor("alice").await?;
    let (_, bob_token) = node.actor("bob").await?;
    let draft = note("for alice");
    node.assert_rejected(
        Req::post("/actors/alice/outbox")
            .bearer(&bob_token)
            .json(&draft),
        403,
    )
    .await?;
    node.assert_rejected(Req::post("/actors/alice/outbox").json(&draft), 401)
        .await?;
    node.assert_rejected(
        Req::post("/actors/nobody/outbox")
            .bearer(&node.admin)
            .json(&draft),
        404,
    )
    .await?;

    let reply = node
        .send(
            Req::post("/actors/alice/outbox")
                .bearer(&node.admin)
                .json(&draft),
        )
        .await?;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let activity = reply.json()?;
    assert_eq!(activity["actor"], alice.as_str());
    assert_eq!(activity["proof"]["key"], format!("{alice}#key-1"));
    verify(&node.doc("alice").await?, &activity)?;
    assert_chain(&node.log(&alice)?, &alice)?;
    // The node's own Service actor publishes the same way.
    let reply = node
        .send(
            Req::post("/actors/node/outbox")
                .bearer(&node.admin)
                .json(&draft),
        )
        .await?;
    assert_eq!(reply.status, 201, "{}", reply.text);
    node.stop().await
}

#[tokio::test]
async fn creating_an_actor_returns_its_id_token_and_create() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let reply = node
        .send(
            Req::post("/actors")
                .bearer(&node.admin)
                .json(&json!({"name": "team", "type": "Group"})),
        )
        .await?;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let body = reply.json()?;
    let id = format!("{}/actors/team", node.base);
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["name"], "team");
    assert_eq!(reply.location.as_deref(), Some(id.as_str()));
    let token = body["token"].as_str().context("token")?;
    assert_eq!(body["activity"]["type"], "Create");
    assert_eq!(body["activity"]["object"]["type"], "Group");
    let doc = node.doc("team").await?;
    assert_eq!(doc["type"], "Group");
    verify(&doc, &body["activity"])?;
    assert_eq!(node.log(&id)?, vec![body["activity"].clone()]);
    // The token publishes as the new actor.
    let activity = node.publish_ok(token, &note("from the team")).await?;
    assert_eq!(activity["actor"], id.as_str());

    let service = node
        .send(
            Req::post("/actors")
                .bearer(&node.admin)
                .json(&json!({"name": "bot", "type": "Service"})),
        )
        .await?;
    assert_eq!(service.status, 201);
    assert_eq!(node.doc("bot").await?["type"], "Service");
    node.stop().await
}

#[tokio::test]
async fn actor_names_are_unique_and_well_formed() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    node.actor("alice").await?;
    let create = |body: serde_json::Value| Req::post("/actors").bearer(&node.admin).json(&body);
    node.assert_rejected(create(json!({"name": "alice"})), 409)
        .await?;
    node.assert_rejected(create(json!({"name": "node"})), 409)
        .await?;
    for name in [
        "Alice!".to_owned(),
        "Alice".to_owned(),
        String::new(),
        "a".repeat(65),
        "-alice".to_owned(),
        "al ice".to_owned(),
        "al/ice".to_owned(),
        "ålice".to_owned(),
    ] {
        let problem = node
            .assert_rejected(create(json!({"name": name})), 422)
            .await
            .with_context(|| name.clone())?;
        assert_eq!(problem["field"], "name", "{name}");
    }
    for body in [json!({}), json!({"name": 7}), json!({"name": null})] {
        let problem = node.assert_rejected(create(body), 422).await?;
        assert_eq!(problem["field"], "name");
    }
    for kind in [
        json!("Robot"),
        json!("person"),
        json!(null),
        json!(["Person"]),
    ] {
        let problem = node
            .assert_rejected(create(json!({"name": "robby", "type": kind})), 422)
            .await?;
        assert_eq!(problem["field"], "type");
    }
    // The longest valid name and the other allowed characters are fine.
    for name in ["a".repeat(64), "0-day_fan".to_owned()] {
        let reply = node.send(create(json!({"name": name}))).await?;
        assert_eq!(reply.status, 201, "{name}: {}", reply.text);
    }
    node.stop().await
}
