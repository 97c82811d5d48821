//! `GET /actors/{name}/outbox`: the collection, `?page=N` (newest first) and
//! `?since=<id>&limit=N` (oldest first, for backfill), and their links.

use anyhow::Context;
use serde_json::Value;

use crate::support::{Req, TestNode, id_of, note};

/// A node where alice has `extra` public notes after her Create; returns the
/// node, her id, token and log.
async fn alice_with(extra: usize) -> anyhow::Result<(TestNode, String, String, Vec<Value>)> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    for i in 0..extra {
        node.publish_ok(&token, &note(&format!("note {i}"))).await?;
    }
    let log = node.log(&alice)?;
    anyhow::ensure!(log.len() == extra + 1);
    Ok((node, alice, token, log))
}

fn seqs(items: &[Value]) -> Vec<u64> {
    items.iter().filter_map(|a| a["seq"].as_u64()).collect()
}

fn page_seqs(page: &Value) -> anyhow::Result<Vec<u64>> {
    Ok(seqs(
        page["orderedItems"].as_array().context("orderedItems")?,
    ))
}

#[tokio::test]
async fn the_outbox_is_an_ordered_collection() -> anyhow::Result<()> {
    let (node, alice, _, _) = alice_with(44).await?;
    let reply = node.send(Req::get("/actors/alice/outbox")).await?;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/activity+json")
    );
    let outbox = reply.json()?;
    assert_eq!(outbox["type"], "OrderedCollection");
    assert_eq!(outbox["id"], format!("{alice}/outbox"));
    assert_eq!(outbox["totalItems"], 45);
    assert_eq!(outbox["first"], format!("{alice}/outbox?page=1"));
    assert_eq!(outbox["last"], format!("{alice}/outbox?page=3"));
    // The actor document points at it.
    assert_eq!(node.doc("alice").await?["outbox"], outbox["id"]);
    // A new actor's outbox holds just its Create, on one page.
    let (_, _) = node.actor("bob").await?;
    let bob = node.get_ok("/actors/bob/outbox", None).await?;
    assert_eq!(bob["totalItems"], 1);
    assert_eq!(bob["first"], bob["last"]);
    node.stop().await
}

#[tokio::test]
async fn pages_are_newest_first_twenty_at_a_time() -> anyhow::Result<()> {
    let (node, alice, _, log) = alice_with(44).await?;
    let base = format!("{alice}/outbox");

    let page1 = node.get_ok("/actors/alice/outbox?page=1", None).await?;
    assert_eq!(page1["type"], "OrderedCollectionPage");
    assert_eq!(page1["partOf"], base.as_str());
    assert_eq!(page1["totalItems"], 45);
    assert_eq!(page_seqs(&page1)?, (26..=45).rev().collect::<Vec<_>>());
    assert_eq!(page1["orderedItems"][0], log[44]);
    assert_eq!(page1["next"], format!("{base}?page=2"));
    assert!(page1.get("prev").is_none());

    let page2 = node
        .get_ok(page1["next"].as_str().context("next")?, None)
        .await?;
    assert_eq!(page_seqs(&page2)?, (6..=25).rev().collect::<Vec<_>>());
    assert_eq!(page2["prev"], format!("{base}?page=1"));
    assert_eq!(page2["next"], format!("{base}?page=3"));

    let page3 = node.get_ok("/actors/alice/outbox?page=3", None).await?;
    assert_eq!(page_seqs(&page3)?, vec![5, 4, 3, 2, 1]);
    assert_eq!(page3["orderedItems"][4], log[0]);
    assert!(page3.get("next").is_none(), "the last page has no next");
    assert_eq!(page3["prev"], format!("{base}?page=2"));

    // Walking `next` from the first page yields the whole log, once, newest first.
    let all = node.walk("/actors/alice/outbox?page=1", None).await?;
    let mut expected = log.clone();
    expected.reverse();
    assert_eq!(all, expected);

    // Past the end: an empty page that still links back.
    let past = node.get_ok("/actors/alice/outbox?page=4", None).await?;
    assert_eq!(past["orderedItems"].as_array().map(Vec::len), Some(0));
    assert!(past.get("next").is_none());
    node.stop().await
}

#[tokio::test]
async fn a_page_can_have_a_smaller_limit() -> anyhow::Result<()> {
    let (node, _, _, _) = alice_with(14).await?;
    let page = node
        .get_ok("/actors/alice/outbox?page=1&limit=5", None)
        .await?;
    assert_eq!(page_seqs(&page)?, vec![15, 14, 13, 12, 11]);
    assert!(page.get("next").is_some());
    let page = node
        .get_ok("/actors/alice/outbox?page=3&limit=5", None)
        .await?;
    assert_eq!(page_seqs(&page)?, vec![5, 4, 3, 2, 1]);
    assert!(
        page.get("next").is_none(),
        "15 items make exactly 3 pages of 5"
    );
    let page = node
        .get_ok("/actors/alice/outbox?page=2&limit=200", None)
        .await?;
    assert_eq!(page_seqs(&page)?, Vec::<u64>::new());
    node.stop().await
}

#[tokio::test]
async fn page_links_keep_the_limit() -> anyhow::Result<()> {
    let (node, _, _, log) = alice_with(14).await?;
    let all = node
        .walk("/actors/alice/outbox?page=1&limit=5", None)
        .await?;
    assert_eq!(seqs(&all), (1..=15).rev().collect::<Vec<_>>());
    assert_eq!(all.len(), log.len());
    node.stop().await
}

#[tokio::test]
async fn since_pages_oldest_first_and_next_walks_to_the_end() -> anyhow::Result<()> {
    let (node, alice, _, log) = alice_with(44).await?;
    let since = id_of(&log[9])?; // seq 10
    let path = format!("/actors/alice/outbox?since={since}&limit=7");
    let page = node.get_ok(&path, None).await?;
    assert_eq!(page["type"], "OrderedCollectionPage");
    assert_eq!(page["partOf"], format!("{alice}/outbox"));
    assert_eq!(page_seqs(&page)?, (11..=17).collect::<Vec<_>>());
    assert_eq!(
        page["next"],
        format!("{alice}/outbox?since={}&limit=7", id_of(&log[16])?)
    );

    let walked = node.walk(&path, None).await?;
    assert_eq!(
        walked,
        log[10..].to_vec(),
        "every later activity once, in order"
    );

    // The last page ends the walk.
    let last = node
        .get_ok(
            &format!("/actors/alice/outbox?since={}&limit=7", id_of(&log[37])?),
            None,
        )
        .await?;
    assert_eq!(page_seqs(&last)?, (39..=45).collect::<Vec<_>>());
    assert!(last.get("next").is_none(), "{last}");

    // Since the tip: nothing yet, and nothing to follow.
    let tip = node
        .get_ok(
            &format!("/actors/alice/outbox?since={}&limit=7", id_of(&log[44])?),
            None,
        )
        .await?;
    assert_eq!(page_seqs(&tip)?, Vec::<u64>::new());
    assert!(tip.get("next").is_none());
    node.stop().await
}

#[tokio::test]
async fn a_walk_picks_up_what_was_published_meanwhile() -> anyhow::Result<()> {
    let (node, _, token, log) = alice_with(5).await?;
    let first = node.get_ok("/actors/alice/outbox?limit=6", None).await?;
    assert_eq!(page_seqs(&first)?, (1..=6).collect::<Vec<_>>());
    assert!(first.get("next").is_none());
    // A follower resumes from the last id it saw.
    let newer = node.publish_ok(&token, &note("newer")).await?;
    let resumed = node
        .get_ok(
            &format!("/actors/alice/outbox?since={}&limit=6", id_of(&log[5])?),
            None,
        )
        .await?;
    assert_eq!(resumed["orderedItems"], serde_json::json!([newer]));
    node.stop().await
}

#[tokio::test]
async fn limit_alone_starts_at_the_beginning() -> anyhow::Result<()> {
    let (node, alice, _, log) = alice_with(9).await?;
    let page = node.get_ok("/actors/alice/outbox?limit=4", None).await?;
    assert_eq!(page_seqs(&page)?, vec![1, 2, 3, 4]);
    assert_eq!(page["orderedItems"][0], log[0], "it starts with the Create");
    assert_eq!(
        page["next"],
        format!("{alice}/outbox?since={}&limit=4", id_of(&log[3])?)
    );
    let walked = node.walk("/actors/alice/outbox?limit=4", None).await?;
    assert_eq!(walked, log);
    // An empty `since` is the same as none.
    let empty = node
        .get_ok("/actors/alice/outbox?since=&limit=4", None)
        .await?;
    assert_eq!(empty["orderedItems"], page["orderedItems"]);
    node.stop().await
}

#[tokio::test]
async fn bad_outbox_queries_are_400() -> anyhow::Result<()> {
    let (node, _, token, log) = alice_with(3).await?;
    let (_, bob_token) = node.actor("bob").await?;
    let bobs = node.publish_ok(&bob_token, &note("bob's")).await?;
    let bad = [
        "since=bagaaihranotanid&limit=5".to_owned(),
        "since=nonsense".to_owned(),
        format!("since={}&limit=5", id_of(&bobs)?),
        "limit=0".to_owned(),
        "limit=1000".to_owned(),
        "limit=201".to_owned(),
        "limit=-1".to_owned(),
        "limit=ten".to_owned(),
        "page=0".to_owned(),
        "page=-1".to_owned(),
        "page=first".to_owned(),
        "page=1&limit=0".to_owned(),
    ];
    for query in &bad {
        for token in [None, Some(token.as_str())] {
            let mut req = Req::get(format!("/actors/alice/outbox?{query}"));
            if let Some(token) = token {
                req = req.bearer(token);
            }
            node.assert_rejected(req, 400)
                .await
                .with_context(|| query.clone())?;
        }
    }
    // The edges of the valid range are accepted.
    let page = node.get_ok("/actors/alice/outbox?limit=200", None).await?;
    assert_eq!(page_seqs(&page)?, vec![1, 2, 3, 4]);
    let page = node.get_ok("/actors/alice/outbox?limit=1", None).await?;
    assert_eq!(page["orderedItems"], serde_json::json!([log[0]]));
    node.stop().await
}
