//! Who sees what: anonymous readers see what is addressed to Public and the
//! actor's lifecycle; the actor's own token (and the admin's) sees everything.

use anyhow::Context;
use serde_json::{Value, json};
use weft_core::model::PUBLIC;

use crate::support::{Req, TestNode, assert_problem, id_of, note, private_note};

/// alice: Create (1), public (2), private (3), public (4), profile Update
/// (5, not addressed), private (6), public (7).
async fn mixed() -> anyhow::Result<(TestNode, String, String, Vec<Value>)> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    node.publish_ok(&token, &note("p2")).await?;
    node.publish_ok(&token, &private_note("s3")).await?;
    node.publish_ok(&token, &note("p4")).await?;
    node.publish_ok(
        &token,
        &json!({"type": "Update", "object": {"type": "Person", "name": "A"}}),
    )
    .await?;
    node.publish_ok(
        &token,
        &json!({"type": "Create", "object": {"type": "Note", "content": "s6"}, "to": [format!("{alice}/followers")]}),
    )
    .await?;
    node.publish_ok(&token, &note("p7")).await?;
    let log = node.log(&alice)?;
    Ok((node, alice, token, log))
}

fn seqs(value: &Value) -> Vec<u64> {
    value["orderedItems"]
        .as_array()
        .map(|items| items.iter().filter_map(|a| a["seq"].as_u64()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn anonymous_readers_see_public_activities_and_the_lifecycle() -> anyhow::Result<()> {
    let (node, _, token, log) = mixed().await?;
    let anonymous = node.get_ok("/actors/alice/outbox", None).await?;
    assert_eq!(anonymous["totalItems"], 5);
    let owner = node.get_ok("/actors/alice/outbox", Some(&token)).await?;
    assert_eq!(owner["totalItems"], 7);
    let admin = node
        .get_ok("/actors/alice/outbox", Some(&node.admin))
        .await?;
    assert_eq!(admin["totalItems"], 7);

    let page = node.get_ok("/actors/alice/outbox?page=1", None).await?;
    assert_eq!(seqs(&page), vec![7, 5, 4, 2, 1]);
    assert_eq!(
        page["orderedItems"][1], log[4],
        "the profile Update is public"
    );
    let page = node
        .get_ok("/actors/alice/outbox?page=1", Some(&token))
        .await?;
    assert_eq!(seqs(&page), vec![7, 6, 5, 4, 3, 2, 1]);

    let walked = node.walk("/actors/alice/outbox?limit=2", None).await?;
    assert_eq!(
        walked
            .iter()
            .filter_map(|a| a["seq"].as_u64())
            .collect::<Vec<_>>(),
        vec![1, 2, 4, 5, 7]
    );
    let walked = node
        .walk("/actors/alice/outbox?limit=2", Some(&token))
        .await?;
    assert_eq!(walked, log);
    node.stop().await
}

#[tokio::test]
async fn anonymous_pages_are_counted_in_public_activities() -> anyhow::Result<()> {
    let (node, alice, _, log) = mixed().await?;
    let page = node
        .get_ok("/actors/alice/outbox?page=1&limit=2", None)
        .await?;
    assert_eq!(seqs(&page), vec![7, 5]);
    let page = node
        .get_ok("/actors/alice/outbox?page=3&limit=2", None)
        .await?;
    assert_eq!(seqs(&page), vec![1]);
    assert!(page.get("next").is_none());
    // Since a public activity, anonymous readers get the next public ones.
    let since = id_of(&log[1])?;
    let page = node
        .get_ok(&format!("/actors/alice/outbox?since={since}&limit=2"), None)
        .await?;
    assert_eq!(seqs(&page), vec![4, 5]);
    assert_eq!(
        page["next"],
        format!("{alice}/outbox?since={}&limit=2", id_of(&log[4])?)
    );
    node.stop().await
}

#[tokio::test]
async fn another_actors_token_cannot_read_alices_outbox() -> anyhow::Result<()> {
    let (node, _, _, _) = mixed().await?;
    let (_, bob_token) = node.actor("bob").await?;
    for query in ["", "?page=1", "?limit=5"] {
        node.assert_rejected(
            Req::get(format!("/actors/alice/outbox{query}")).bearer(&bob_token),
            403,
        )
        .await
        .with_context(|| query.to_owned())?;
    }
    // Bob reads his own outbox in full, and alice's anonymously.
    let own = node.get_ok("/actors/bob/outbox", Some(&bob_token)).await?;
    assert_eq!(own["totalItems"], 1);
    node.stop().await
}

#[tokio::test]
async fn a_private_activity_is_404_to_everyone_but_its_actor_and_the_admin() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let (_, bob_token) = node.actor("bob").await?;
    let private = node.publish_ok(&token, &private_note("just me")).await?;
    let path = format!("/activities/{}", id_of(&private)?);

    let anonymous = node.send(Req::get(path.clone())).await?;
    let hidden = assert_problem(&anonymous, 404)?;
    node.assert_rejected(Req::get(path.clone()).bearer(&bob_token), 404)
        .await?;
    // Indistinguishable from an id the node has never seen.
    let unknown = node
        .send(Req::get(
            "/activities/bagaaihranothingherexxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ))
        .await?;
    let missing = assert_problem(&unknown, 404)?;
    assert_eq!(hidden["title"], missing["title"]);

    assert_eq!(node.get_ok(&path, Some(&token)).await?, private);
    assert_eq!(node.get_ok(&path, Some(&node.admin)).await?, private);

    // A public one is readable by all three.
    let public = node.publish_ok(&token, &note("everyone")).await?;
    let path = format!("/activities/{}", id_of(&public)?);
    for reader in [None, Some(token.as_str()), Some(bob_token.as_str())] {
        assert_eq!(node.get_ok(&path, reader).await?, public);
    }
    node.stop().await
}

#[tokio::test]
async fn every_spelling_of_public_makes_an_activity_public() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let public = [
        json!({"type": "Create", "object": {"type": "Note", "content": "1"}, "to": [PUBLIC]}),
        json!({"type": "Create", "object": {"type": "Note", "content": "2"}, "to": PUBLIC}),
        json!({"type": "Create", "object": {"type": "Note", "content": "3"}, "cc": [PUBLIC]}),
        json!({"type": "Create", "object": {"type": "Note", "content": "4"}, "to": ["as:Public"]}),
        json!({"type": "Create", "object": {"type": "Note", "content": "5"}, "to": "Public"}),
        json!({"type": "Endorse", "kind": "like", "object": "http://127.0.0.1:9/x", "to": [format!("{alice}/followers"), PUBLIC]}),
    ];
    let private = [
        json!({"type": "Create", "object": {"type": "Note", "content": "6"}, "to": []}),
        json!({"type": "Create", "object": {"type": "Note", "content": "7"}, "to": [format!("{alice}/followers")]}),
        json!({"type": "Create", "object": {"type": "Note", "content": "8"}, "bto": [PUBLIC]}),
        json!({"type": "Create", "object": {"type": "Note", "content": "9", "to": [PUBLIC]}}),
    ];
    for draft in &public {
        let activity = node.publish_ok(&token, draft).await?;
        let (status, _) = node
            .get(&format!("/activities/{}", id_of(&activity)?), None)
            .await?;
        assert_eq!(status, 200, "{draft} is public");
    }
    for draft in &private {
        let activity = node.publish_ok(&token, draft).await?;
        let (status, _) = node
            .get(&format!("/activities/{}", id_of(&activity)?), None)
            .await?;
        assert_eq!(status, 404, "{draft} is not public");
    }
    let outbox = node.get_ok("/actors/alice/outbox", None).await?;
    assert_eq!(outbox["totalItems"], 1 + public.len());
    node.stop().await
}

/// A projection's query reads the log as its caller may: the feed shows
/// alice, with her token, what bob addressed to her and to his followers
/// (she follows him) beside his public note; anyone else — anonymous, or
/// carol with her own token — gets the public note only, though the same
/// entries are in alice's feed; the admin sees all. The same rule serves
/// `GET /activities/{id}`: alice may read bob's followers-only note there,
/// carol may not.
#[tokio::test]
async fn a_projection_query_shows_only_what_its_caller_may_read() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, alice_token) = node.actor("alice").await?;
    let (bob, bob_token) = node.actor("bob").await?;
    let (_, carol_token) = node.actor("carol").await?;
    node.publish_ok(
        &alice_token,
        &json!({"type": "Follow", "object": bob, "to": [bob]}),
    )
    .await?;
    crate::support::eventually(10, "alice to follow bob", || async {
        let following = node
            .get_ok(
                &format!("/projections/follower-graph/following?actor={alice}"),
                None,
            )
            .await?;
        Ok((following["items"] == json!([bob])).then_some(()))
    })
    .await?;
    let public = node.publish_ok(&bob_token, &note("for all")).await?;
    let direct = node
        .publish_ok(
            &bob_token,
            &json!({"type": "Create", "object": {"type": "Note", "content": "for alice"}, "to": [alice]}),
        )
        .await?;
    let followers_only = node
        .publish_ok(
            &bob_token,
            &json!({"type": "Create", "object": {"type": "Note", "content": "for followers"}, "to": [format!("{bob}/followers")]}),
        )
        .await?;

    let feed = async |token: Option<&str>| -> anyhow::Result<Vec<Value>> {
        let feed = node
            .get_ok(&format!("/projections/feed?actor={alice}"), token)
            .await?;
        Ok(feed["items"]
            .as_array()
            .context("items")?
            .iter()
            .map(|i| i["activity"]["id"].clone())
            .collect())
    };
    // Newest first, after alice's Follow and bob's Accept of it.
    let hers = feed(Some(&alice_token)).await?;
    assert_eq!(
        hers.get(..3),
        Some(
            &[
                followers_only["id"].clone(),
                direct["id"].clone(),
                public["id"].clone(),
            ][..]
        ),
        "{hers:?}"
    );
    assert_eq!(feed(Some(&node.admin)).await?, hers);
    // Anyone else: the entries anyone may fetch, the public note among
    // them, the two for alice not.
    let mut readable = Vec::new();
    for id in &hers {
        let url = id.as_str().context("an id")?;
        let path = url.strip_prefix(&node.url("")).context("a local id")?;
        if node.get(path, None).await?.0 == 200 {
            readable.push(id.clone());
        }
    }
    assert!(readable.contains(&public["id"]), "{readable:?}");
    assert!(!readable.contains(&direct["id"]), "{readable:?}");
    assert!(!readable.contains(&followers_only["id"]), "{readable:?}");
    for reader in [None, Some(carol_token.as_str())] {
        assert_eq!(feed(reader).await?, readable, "{reader:?}");
    }

    let path = format!("/activities/{}", id_of(&followers_only)?);
    assert_eq!(
        node.get_ok(&path, Some(&alice_token)).await?,
        followers_only
    );
    node.assert_rejected(Req::get(path.clone()).bearer(&carol_token), 404)
        .await?;
    node.assert_rejected(Req::get(path), 404).await?;
    node.stop().await
}
