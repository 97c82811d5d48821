//! Nodes whose clocks disagree (issue 23): real `weft` processes started
//! with the test-only `WEFT_TEST_CLOCK_OFFSET`, which moves every wall-clock
//! read of the node (`weft_core::clock`). Two nodes twenty minutes apart
//! federate as if their clocks agreed, because both windows that look at
//! time (`published_max_ahead`, 1 h, and the HTTP signatures', 12 h back and
//! 1 h ahead) take that; a node two hours ahead has its activities refused
//! with 422 naming `published`, or already at its HTTP signature (401) by a
//! node with the default signature window.
//!
//! Not the partition suite (`partition.rs`), and not a test of the windows'
//! edges: those are the API tests' (`host/tests/api`), with times set in the
//! activities themselves.

use std::time::SystemTime;

use anyhow::Context;
use serde_json::{Value, json};
use weft_test_support::{Req, assert_problem, detail};

use crate::support::{PUBLIC, Weft, cid, collection, eventually, note, publish};

/// Retries quick enough for a test, long enough to outlast nothing.
const RETRY: &str = "200ms,400ms,800ms,1s,2s";

/// A node initialised with `toml`, run with its clock moved by
/// `offset_s` seconds.
async fn node(offset_s: i64, toml: &str) -> anyhow::Result<Weft> {
    let mut weft = Weft::uninitialised()?;
    weft.initialise_with(toml)?;
    weft.run_env("WEFT_TEST_CLOCK_OFFSET", &offset_s.to_string());
    weft.run_env("WEFT_FEDERATION_RETRY", RETRY);
    weft.start().await?;
    Ok(weft)
}

/// How far `activity`'s `published` is from the test's own clock, in
/// seconds (positive: ahead of it).
fn skew_of(activity: &Value) -> anyhow::Result<i64> {
    let published = activity["published"].as_str().context("no published")?;
    let published = humantime::parse_rfc3339_weak(published)?;
    let now = SystemTime::now();
    Ok(match published.duration_since(now) {
        Ok(ahead) => i64::try_from(ahead.as_secs())?,
        Err(behind) => -i64::try_from(behind.duration().as_secs())?,
    })
}

/// The ids of the activities in `actor`'s feed on `weft`.
async fn feed_ids(weft: &Weft, actor: &str, token: &str) -> anyhow::Result<Vec<Value>> {
    let body = weft
        .get_ok(
            &format!("/projections/feed?actor={actor}&limit=100"),
            Some(token),
        )
        .await?;
    Ok(body["items"]
        .as_array()
        .map(|items| items.iter().map(|i| i["activity"]["id"].clone()).collect())
        .unwrap_or_default())
}

#[tokio::test]
async fn nodes_twenty_minutes_apart_federate() -> anyhow::Result<()> {
    let behind = node(-600, "").await?;
    let ahead = node(600, "").await?;
    let (alice, alice_token) = behind.create_actor_http("alice").await?;
    let (bob, bob_token) = ahead.create_actor_http("bob").await?;

    // Each node writes `published` from its own skewed clock (wide
    // margins: the check is the sign and size of the skew, not timing).
    let early = publish(&behind, &alice_token, note("from ten minutes ago")).await?;
    let late = publish(&ahead, &bob_token, note("from ten minutes on")).await?;
    let (early_skew, late_skew) = (skew_of(&early)?, skew_of(&late)?);
    assert!(
        (-900..=-300).contains(&early_skew),
        "{early_skew} s: {early}"
    );
    assert!((300..=900).contains(&late_skew), "{late_skew} s: {late}");

    // alice follows bob across the twenty minutes: her Follow is old news
    // to bob's node, his Accept comes from alice's future.
    publish(
        &behind,
        &alice_token,
        json!({"type": "Follow", "object": bob, "to": [bob]}),
    )
    .await?;
    eventually(30, "alice to follow bob", || async {
        Ok(collection(&behind, "alice", "following")
            .await?
            .contains(&json!(bob))
            .then_some(()))
    })
    .await?;
    assert_eq!(
        collection(&ahead, "bob", "followers").await?,
        vec![json!(alice)]
    );

    // bob's next note reaches alice's feed; alice's reply reaches bob.
    let fresh = publish(&ahead, &bob_token, note("ten minutes ahead of you")).await?;
    eventually(30, "bob's note in alice's feed", || async {
        Ok(feed_ids(&behind, &alice, &alice_token)
            .await?
            .contains(&fresh["id"])
            .then_some(()))
    })
    .await?;
    let reply = publish(
        &behind,
        &alice_token,
        json!({"type": "Create", "object": {"type": "Note", "content": "and behind you", "inReplyTo": fresh["id"]}, "to": [PUBLIC], "cc": [bob]}),
    )
    .await?;
    eventually(30, "alice's reply in bob's feed", || async {
        Ok(feed_ids(&ahead, &bob, &bob_token)
            .await?
            .contains(&reply["id"])
            .then_some(()))
    })
    .await?;
    for weft in [&behind, &ahead] {
        let dead = weft.get_ok("/admin/dead-letter", Some(&weft.admin)).await?;
        assert_eq!(dead["totalItems"], 0, "{dead}");
    }
    Ok(())
}

#[tokio::test]
async fn a_node_two_hours_ahead_is_refused_for_published() -> anyhow::Result<()> {
    // The normal node takes HTTP signatures up to 3 h ahead, so what the
    // skewed node's deliveries meet is the `published` check (with the
    // default 1 h the signature is refused first, with 401).
    let normal = node(0, "[federation]\nsignature_max_ahead = \"3h\"\n").await?;
    let future = node(7200, "").await?;
    let (nat, _) = normal.create_actor_http("nat").await?;
    let (_, sam_token) = future.create_actor_http("sam").await?;

    let from_the_future = publish(
        &future,
        &sam_token,
        json!({"type": "Create", "object": {"type": "Note", "content": "hello from 2 h on"}, "to": [nat]}),
    )
    .await?;
    let skew = skew_of(&from_the_future)?;
    assert!((6600..=7800).contains(&skew), "{skew} s: {from_the_future}");

    // Delivered: the normal node answers 422, which no retry fixes, so the
    // skewed node dead-letters it at once.
    let dead = eventually(30, "the refused delivery in the dead letters", || async {
        let dead = future
            .get_ok("/admin/dead-letter", Some(&future.admin))
            .await?;
        Ok(dead["items"]
            .as_array()
            .and_then(|items| {
                items.iter().find(|i| {
                    i["activity"]
                        .as_str()
                        .is_some_and(|a| a.ends_with(&cid(&from_the_future)))
                })
            })
            .cloned())
    })
    .await?;
    let error = dead["lastError"].as_str().unwrap_or_default();
    assert!(error.contains("422"), "{dead}");
    let (status, _) = normal
        .get(&format!("/activities/{}", cid(&from_the_future)), None)
        .await?;
    assert_eq!(
        status, 404,
        "the normal node stored an activity from 2 h on"
    );

    // The refusal itself, as the sender sees it: a problem naming
    // `published` and the receiving node's clock.
    let mut request = Req::post("/actors/nat/inbox").json(&from_the_future);
    request.content_type = Some("application/activity+json".into());
    let reply = normal.api().send(request).await?;
    let problem = assert_problem(&reply, 422)?;
    assert_eq!(problem["field"], "published", "{problem}");
    assert!(detail(&problem).contains("`published`"), "{problem}");
    assert!(detail(&problem).contains("ahead"), "{problem}");

    Ok(())
}

/// The skewed node's HTTP signatures carry its clock too: a node with the
/// default window (1 h ahead) refuses its deliveries at the signature,
/// with 401, before it reads the activity.
#[tokio::test]
async fn a_node_two_hours_ahead_signs_its_requests_from_the_future() -> anyhow::Result<()> {
    let strict = node(0, "").await?;
    let future = node(7200, "").await?;
    let (nat, _) = strict.create_actor_http("nat").await?;
    let (_, sam_token) = future.create_actor_http("sam").await?;
    let sent = publish(
        &future,
        &sam_token,
        json!({"type": "Create", "object": {"type": "Note", "content": "signed 2 h on"}, "to": [nat]}),
    )
    .await?;
    let dead = eventually(30, "the refused delivery in the dead letters", || async {
        let dead = future
            .get_ok("/admin/dead-letter", Some(&future.admin))
            .await?;
        Ok(dead["items"]
            .as_array()
            .and_then(|items| {
                items.iter().find(|i| {
                    i["activity"]
                        .as_str()
                        .is_some_and(|a| a.ends_with(&cid(&sent)))
                })
            })
            .cloned())
    })
    .await?;
    let error = dead["lastError"].as_str().unwrap_or_default();
    assert!(error.contains("401"), "{dead}");
    Ok(())
}

#[tokio::test]
async fn an_invalid_clock_offset_is_a_startup_error() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    weft.run_env("WEFT_TEST_CLOCK_OFFSET", "1h");
    let refused = weft
        .start()
        .await
        .err()
        .context("weft run started with WEFT_TEST_CLOCK_OFFSET=1h")?;
    let said = format!("{refused:#}");
    assert!(
        said.contains("error: environment variable WEFT_TEST_CLOCK_OFFSET=\"1h\" is not valid"),
        "{said}"
    );
    assert!(said.contains("seconds"), "{said}");
    assert!(!said.contains("panicked"), "{said}");
    Ok(())
}
