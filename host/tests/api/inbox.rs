//! The inbox's bad-input matrix (the cases README's table lists that
//! `federation.rs`, `fediverse.rs` and `ratelimit.rs` do not already
//! cover): each malformed, unproven, misaddressed, forked, early or
//! over-quota activity gets its status code and a problem document that
//! says what to fix, and leaves the node as it was — every log, inbox,
//! index and projection, every stored record (a peer's included), the fork
//! evidence (but for a fork, which adds exactly its evidence) and the key
//! store.

use anyhow::Context;
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use weft_core::model::{PUBLIC, Signed};

use crate::peer::FakePeer;
use crate::support::{Req, TestNode, id_of};

fn inbox(name: &str) -> String {
    format!("/actors/{name}/inbox")
}

fn note_to(content: &str, to: &str) -> Value {
    json!({"type": "Create", "object": {"type": "Note", "content": content}, "to": [to]})
}

/// Everything [`TestNode::snapshot`] holds, and also every stored record
/// (remote authors' too), the fork evidence and each origin's usage.
fn whole(node: &TestNode, origins: &[&str]) -> anyhow::Result<String> {
    let reader = node.kernel.store().read()?;
    let mut out = node.snapshot()?;
    out.push_str(&format!("last position {}\n", reader.last_position()?));
    for fork in reader.forks()? {
        out.push_str(&format!("fork {fork:?}\n"));
    }
    for origin in origins {
        out.push_str(&format!(
            "usage {origin} {:?}\n",
            reader.origin_usage(origin)?
        ));
    }
    Ok(out)
}

/// Sends `req`, which must be refused with `status` (a problem document
/// whose detail contains `says`) and change nothing at all.
async fn refused(
    node: &TestNode,
    origins: &[&str],
    what: &str,
    req: Req,
    status: u16,
    says: &str,
) -> anyhow::Result<Value> {
    let before = whole(node, origins)?;
    let problem = node
        .assert_rejected(req, status)
        .await
        .with_context(|| what.to_owned())?;
    let detail = problem["detail"].as_str().unwrap_or_default();
    anyhow::ensure!(
        detail.contains(says),
        "{what}: the detail does not say `{says}`: {detail}"
    );
    let after = whole(node, origins)?;
    anyhow::ensure!(
        before == after,
        "{what} changed the node:\n--- before\n{before}\n--- after\n{after}"
    );
    Ok(problem)
}

/// `activity` as JSON text.
fn text(activity: &Value) -> String {
    activity.to_string()
}

/// Signs `map` with a fresh key as `key_id`.
fn sign_with_any_key(map: Value, key_id: &str) -> anyhow::Result<Value> {
    let Value::Object(map) = map else {
        anyhow::bail!("not an object")
    };
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    Ok(Value::Object(Signed::sign(map, key_id, &key)?.json))
}

/// Malformed bodies, a spoofed local author, unaddressed recipients, an
/// unknown key, a non-JSON content type: each refused before anything is
/// stored.
#[tokio::test]
async fn malformed_misaddressed_and_unproven_activities_change_nothing() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, _) = node.actor("alice").await?;
    let (bob, _) = node.actor("bob").await?;
    let peer = FakePeer::start().await?;
    let eve = peer.actor("eve")?;
    // The service actor's HTTP key is made on first use (fetches are
    // signed with it): make it now, so that refusals change no key store.
    node.doc("node").await?;
    let origins = [peer.base.as_str()];
    // A good activity goes in first (so the peer's document is kept).
    let good = peer.sign("eve", note_to("first", &alice))?;
    let reply = node.send(Req::post(inbox("alice")).json(&good)).await?;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let next = || peer.sign_detached("eve", note_to("hello", &alice));

    // Deep nesting: past the parser's depth limit.
    let mut deep = next()?;
    let mut nested = json!("bottom");
    for _ in 0..200 {
        nested = json!([nested]);
    }
    deep["object"]["deep"] = nested;
    refused(
        &node,
        &origins,
        "deep nesting",
        Req::post(inbox("alice")).raw(text(&deep)),
        400,
        "recursion",
    )
    .await?;

    // A member named twice: readers would disagree on which counts.
    let activity = next()?;
    let twice = text(&activity).replacen('{', "{\"type\":\"Like\",", 1);
    refused(
        &node,
        &origins,
        "duplicate keys",
        Req::post(inbox("alice")).raw(twice),
        400,
        "appears twice",
    )
    .await?;

    // A number not spelt as JCS spells it (the signature, over canonical
    // bytes, still holds).
    let mut draft = note_to("numbers", &alice);
    draft["object"]["rating"] = json!(5);
    let activity = peer.sign_detached("eve", draft)?;
    let spelt = text(&activity).replace("\"rating\":5", "\"rating\":5.0");
    assert_ne!(spelt, text(&activity));
    refused(
        &node,
        &origins,
        "non-canonical number",
        Req::post(inbox("alice")).raw(spelt),
        400,
        "5.0",
    )
    .await?;
    let minus_zero = text(&activity).replace("\"rating\":5", "\"rating\":-0");
    refused(
        &node,
        &origins,
        "negative zero",
        Req::post(inbox("alice")).raw(minus_zero),
        400,
        "-0",
    )
    .await?;

    // Numbers past 2^53 have no canonical form.
    let big = text(&activity).replace("\"rating\":5", "\"rating\":9007199254740993");
    refused(
        &node,
        &origins,
        "number past 2^53",
        Req::post(inbox("alice")).raw(big),
        400,
        "2^53",
    )
    .await?;

    // seq 0, and a seq past 2^53 − 1.
    for seq in [json!(0), json!(9_007_199_254_740_992_u64)] {
        let mut bad = next()?;
        bad["seq"] = seq.clone();
        refused(
            &node,
            &origins,
            &format!("seq {seq}"),
            Req::post(inbox("alice")).json(&bad),
            400,
            "seq",
        )
        .await?;
    }

    // Unicode: a lone surrogate (escaped), an escaped NUL, overlong UTF-8.
    let activity = next()?;
    let lone = text(&activity).replace("hello", "\\ud800");
    refused(
        &node,
        &origins,
        "lone surrogate",
        Req::post(inbox("alice")).raw(lone),
        400,
        "not valid JSON",
    )
    .await?;
    let nul = text(&activity).replace("hello", "he\\u0000llo");
    refused(
        &node,
        &origins,
        "NUL",
        Req::post(inbox("alice")).raw(nul),
        400,
        "U+0000",
    )
    .await?;
    let mut overlong = text(&activity).into_bytes();
    let at = overlong
        .windows(5)
        .position(|w| w == b"hello")
        .context("the content")?;
    overlong.splice(at..at + 1, [0xC0, 0xAF]);
    refused(
        &node,
        &origins,
        "overlong UTF-8",
        Req::post(inbox("alice")).raw(overlong),
        400,
        "invalid unicode",
    )
    .await?;

    // `published` that is not a timestamp.
    let mut bad = next()?;
    bad["published"] = json!("yesterday");
    refused(
        &node,
        &origins,
        "published not RFC 3339",
        Req::post(inbox("alice")).json(&bad),
        400,
        "published",
    )
    .await?;

    // A spoofed local author: alice's activities are published here.
    let spoof = sign_with_any_key(
        json!({"type": "Create", "actor": alice, "object": {"type": "Note", "content": "as alice"},
               "to": [bob], "published": "2026-11-21T00:00:00.000Z", "seq": 9,
               "prev": id_of(&good)?}),
        &format!("{alice}#key-1"),
    )?;
    refused(
        &node,
        &origins,
        "spoofed local author",
        Req::post(inbox("bob")).json(&spoof),
        422,
        "actor of this node",
    )
    .await?;

    // A proof by a key eve's document does not list.
    let mut unknown = next()?;
    unknown["proof"]["key"] = format!("{eve}#key-9").into();
    refused(
        &node,
        &origins,
        "unknown key",
        Req::post(inbox("alice")).json(&unknown),
        401,
        "key-9",
    )
    .await?;

    // Unaddressed: to bob, posted to alice's inbox; to Public, which
    // reaches no one here (nobody follows eve), at the shared inbox.
    let to_bob = peer.sign_detached("eve", note_to("for bob", &bob))?;
    let problem = refused(
        &node,
        &origins,
        "unaddressed recipient",
        Req::post(inbox("alice")).json(&to_bob),
        403,
        "not for",
    )
    .await?;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(&alice),
        "{problem}"
    );
    let public = peer.sign_detached("eve", note_to("to whom it may concern", PUBLIC))?;
    refused(
        &node,
        &origins,
        "unaddressed at the shared inbox",
        Req::post("/inbox").json(&public),
        403,
        "no actor of this node",
    )
    .await?;
    refused(
        &node,
        &origins,
        "Public from someone alice does not follow",
        Req::post(inbox("alice")).json(&public),
        403,
        "do not follow",
    )
    .await?;

    // A body declared as something other than JSON.
    let mut form = Req::post(inbox("alice")).json(&next()?);
    form.content_type = Some("application/x-www-form-urlencoded".into());
    refused(
        &node,
        &origins,
        "non-JSON content type",
        form,
        415,
        "Content-Type",
    )
    .await?;

    // A module definition does not come in through an inbox.
    let define = peer.sign_detached(
        "eve",
        json!({"type": "DefineActivity", "name": "Poll", "module": "bafkreiexample", "to": [alice]}),
    )?;
    refused(
        &node,
        &origins,
        "module definition",
        Req::post(inbox("alice")).json(&define),
        422,
        "not accepted in an inbox",
    )
    .await?;

    // What is addressed still goes in; to bob at the shared inbox too.
    let reply = node.send(Req::post("/inbox").json(&to_bob)).await?;
    assert_eq!(reply.status, 202, "{}", reply.text);
    node.stop().await
}

/// `published` further ahead than `published_max_ahead` (1 h) is 422;
/// within it the activity goes in.
#[tokio::test]
async fn an_activity_from_the_future_is_422() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, _) = node.actor("alice").await?;
    let peer = FakePeer::start().await?;
    peer.actor("eve")?;
    let at = |ahead: std::time::Duration| {
        humantime::format_rfc3339_millis(std::time::SystemTime::now() + ahead).to_string()
    };
    let mut draft = note_to("from tomorrow", &alice);
    draft["published"] = at(std::time::Duration::from_secs(2 * 3600)).into();
    let future = peer.sign_detached("eve", draft)?;
    let problem = refused(
        &node,
        &[peer.base.as_str()],
        "future published",
        Req::post(inbox("alice")).json(&future),
        422,
        "ahead of this node's clock",
    )
    .await?;
    assert_eq!(problem["field"], "published");
    let mut draft = note_to("a little early", &alice);
    draft["published"] = at(std::time::Duration::from_secs(60)).into();
    let soon = peer.sign("eve", draft)?;
    let reply = node.send(Req::post(inbox("alice")).json(&soon)).await?;
    assert_eq!(reply.status, 202, "{}", reply.text);
    node.stop().await
}

/// A peer document that lists a weak (small-order) key: no activity
/// verifies under it.
#[tokio::test]
async fn a_weak_key_in_a_peer_document_is_401() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, _) = node.actor("alice").await?;
    node.doc("node").await?;
    // A peer whose actor document is a real one with its key replaced by
    // the identity point.
    let peer = FakePeer::start().await?;
    let eve = peer.actor("eve")?;
    let doc: Value = reqwest::get(&eve).await?.json().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak =
        weft_core::identity::multikey::encode(&ed25519_dalek::VerifyingKey::from_bytes(&identity)?);
    let good_key = doc["assertionMethod"][0]["publicKeyMultibase"]
        .as_str()
        .context("a Multikey in the document")?
        .to_owned();
    let served = doc
        .to_string()
        .replace(&peer.base, &base)
        .replace(&good_key, &weak);
    anyhow::ensure!(served.contains(&weak), "the key was not replaced");
    let app = axum::Router::new().route(
        "/actors/eve",
        axum::routing::get(move || {
            let served = served.clone();
            async move { ([("content-type", "application/activity+json")], served) }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let actor = format!("{base}/actors/eve");
    let create = peer.sign_detached("eve", note_to("x", &alice))?;
    let forged = sign_with_any_key(
        json!({"type": "Create", "actor": actor, "object": {"type": "Note", "content": "weak"},
               "to": [alice], "published": "2026-11-21T00:00:00.000Z", "seq": 2,
               "prev": id_of(&create)?}),
        &format!("{actor}#key-1"),
    )?;
    refused(
        &node,
        &[base.as_str()],
        "weak key in a peer document",
        Req::post(inbox("alice")).json(&forged),
        401,
        "weak",
    )
    .await?;
    node.stop().await
}

/// An activity whose `prev` is not the id of the stored activity before
/// it, or that the stored activity after it does not name as its `prev`,
/// is a fork: 422 naming `prev`, kept as evidence (and nothing else); past
/// `max_forks_per_position` the evidence is not kept either.
#[tokio::test]
async fn activities_that_do_not_link_are_fork_evidence_within_caps() -> anyhow::Result<()> {
    let node = TestNode::start_with(|c| c.federation.max_forks_per_position = 1).await?;
    let (alice, _) = node.actor("alice").await?;
    let peer = FakePeer::start().await?;
    peer.actor("eve")?;
    let origins = [peer.base.as_str()];
    // eve's log, as the node will see it: `a` at seq 2 (a branch), and
    // `b`, `c` at seq 2 and 3 (the chain `c` links to).
    let a = peer.sign_detached("eve", note_to("a", &alice))?;
    let b = peer.sign("eve", note_to("b", &alice))?;
    let c = peer.sign("eve", note_to("c", &alice))?;
    assert_eq!(c["prev"], json!(id_of(&b)?));
    let reply = node.send(Req::post(inbox("alice")).json(&a)).await?;
    assert_eq!(reply.status, 202, "{}", reply.text);

    // `c`'s prev is `b`, but the node holds `a` at seq 2.
    let snapshot = node.snapshot()?;
    let last = node.kernel.store().read()?.last_position()?;
    let forks_before = node.kernel.store().read()?.forks()?.len();
    let reply = node.send(Req::post(inbox("alice")).json(&c)).await?;
    assert_eq!(reply.status, 422, "{}", reply.text);
    let problem = reply.json()?;
    assert_eq!(problem["field"], "prev", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(&id_of(&a)?),
        "{problem}"
    );
    let c_id = id_of(&c)?;
    let forks = node.kernel.store().read()?.forks()?;
    assert_eq!(forks.len(), forks_before + 1, "the evidence is kept");
    assert!(forks.iter().any(|f| f.1 == 3 && f.2 == c_id), "{forks:?}");
    assert_eq!(node.snapshot()?, snapshot, "a fork changed a log");
    assert_eq!(node.kernel.store().read()?.last_position()?, last);
    let (status, _) = node
        .get(&format!("/activities/{}", id_of(&c)?), None)
        .await?;
    assert_eq!(status, 404, "a fork is not served");

    // On a node that holds `c` (at seq 3) first, `a` at seq 2 is not what
    // `c` links to.
    let other = TestNode::start().await?;
    let (alice2, _) = other.actor("alice").await?;
    let peer2 = FakePeer::start().await?;
    peer2.actor("eve")?;
    let a2 = peer2.sign_detached("eve", note_to("a", &alice2))?;
    peer2.sign("eve", note_to("b", &alice2))?;
    let c2 = peer2.sign("eve", note_to("c", &alice2))?;
    let reply = other.send(Req::post(inbox("alice")).json(&c2)).await?;
    assert_eq!(reply.status, 202, "a gap is fine: {}", reply.text);
    let reply = other.send(Req::post(inbox("alice")).json(&a2)).await?;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert!(
        reply.text.contains("does not name this one"),
        "{}",
        reply.text
    );

    // A second fork at the same position is refused, but past the cap of
    // one its evidence is not kept.
    let d = peer.sign_detached("eve", note_to("d", &alice))?; // seq 4, prev c
    let reply = node.send(Req::post(inbox("alice")).json(&d)).await?;
    // seq 3 is not held (c was refused): a gap, so d goes in…
    assert_eq!(reply.status, 202, "{}", reply.text);
    // …and now `c` (seq 3, prev b) fails both ways; the cap of one fork at
    // seq 3 is reached, so this time nothing is kept.
    let before = whole(&node, &origins)?;
    let reply = node.send(Req::post(inbox("alice")).json(&c)).await?;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert!(reply.text.contains("not kept"), "{}", reply.text);
    assert_eq!(
        whole(&node, &origins)?,
        before,
        "evidence past the cap was kept"
    );
    other.stop().await?;
    node.stop().await
}

/// Past `max_activities_per_origin` (or bytes) an origin's activities get
/// 507 and nothing is stored; another origin is still served.
#[tokio::test]
async fn an_origin_past_its_quota_gets_507() -> anyhow::Result<()> {
    let node = TestNode::start_with(|c| c.federation.max_activities_per_origin = 2).await?;
    let (alice, _) = node.actor("alice").await?;
    let peer = FakePeer::start().await?;
    peer.actor("eve")?;
    let other = FakePeer::start().await?;
    other.actor("olga")?;
    for n in 0..2 {
        let activity = peer.sign("eve", note_to(&format!("n{n}"), &alice))?;
        let reply = node.send(Req::post(inbox("alice")).json(&activity)).await?;
        assert_eq!(reply.status, 202, "{}", reply.text);
    }
    let usage = node.kernel.store().read()?.origin_usage(&peer.base)?;
    assert_eq!(usage.activities, 2, "{usage:?}");
    let third = peer.sign("eve", note_to("one too many", &alice))?;
    let origins = [peer.base.as_str(), other.base.as_str()];
    refused(
        &node,
        &origins,
        "over quota",
        Req::post(inbox("alice")).json(&third),
        507,
        "max_activities_per_origin",
    )
    .await?;
    let theirs = other.sign("olga", note_to("mine", &alice))?;
    let reply = node.send(Req::post(inbox("alice")).json(&theirs)).await?;
    assert_eq!(reply.status, 202, "{}", reply.text);
    node.stop().await?;

    let node = TestNode::start_with(|c| c.federation.max_bytes_per_origin = 600).await?;
    let (alice, _) = node.actor("alice").await?;
    node.doc("node").await?;
    let big = peer.sign("eve", note_to(&"x".repeat(700), &alice))?;
    refused(
        &node,
        &[peer.base.as_str()],
        "over the byte quota",
        Req::post(inbox("alice")).json(&big),
        507,
        "max_bytes_per_origin",
    )
    .await?;
    node.stop().await
}

/// What this node publishes passes its peers' number check: a draft's
/// integral `5.0` is signed and served as `5`.
#[tokio::test]
async fn published_numbers_are_spelt_canonically() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (_, token) = node.actor("alice").await?;
    let draft = r#"{"type":"Create","object":{"type":"Note","content":"n","rating":5.0,"share":0.25,"zero":-0.0},"to":["https://www.w3.org/ns/activitystreams#Public"]}"#;
    let reply = node
        .send(Req::post("/activity").bearer(&token).raw(draft))
        .await?;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let id = id_of(&reply.json()?)?;
    let served = node.send(Req::get(format!("/activities/{id}"))).await?;
    assert!(served.text.contains("\"rating\":5,"), "{}", served.text);
    assert!(served.text.contains("\"share\":0.25"), "{}", served.text);
    assert!(served.text.contains("\"zero\":0"), "{}", served.text);
    node.stop().await
}
