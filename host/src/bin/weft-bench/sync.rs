//! `weft bench --sync`: how fast a node catches up on a followed actor it
//! missed `--count` activities of. A stand-in origin in this process
//! serves one actor (`bob`) with that many pre-signed public notes: its
//! document, its head and its outbox pages (`?since=&limit=`). A local
//! actor of the node follows bob (the Accept is posted to the node's inbox
//! as bob would send it), then one `POST /admin/sync` runs a reconcile
//! pass; the pass fetches, stages, verifies and commits every range, and
//! the bench prints activities committed per second and checks that the
//! node holds bob's whole log.
//!
//! It measures; it asserts nothing about speed. The node must allow
//! loopback peers (`WEFT_ALLOW_PRIVATE_ADDRESSES=1`) and enough sync
//! rounds (`sync_rounds_per_hour` × `sync_max_range` ≥ `--count`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::origin::genesis;
use weft_core::model::{PUBLIC, cid};
use weft_core::wire::ACTIVITY_JSON;

/// What the stand-in origin serves.
struct Served {
    actor: String,
    document: String,
    /// Activities in seq order (seq 1 first), JSON text.
    log: Vec<String>,
    /// Content id → index in `log`.
    index: HashMap<String, usize>,
}

pub async fn sync(base: &str, admin: &str, count: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let (alice, alice_token) =
        super::federation::create_actor(&http, base, admin, &format!("s{}", std::process::id()))
            .await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let origin = format!("http://{}", listener.local_addr()?);
    let mut bob = genesis(&origin, "bob")?;
    let actor = bob.state.id.clone();
    let http_key = weft_core::identity::RsaKey::generate()?;
    let document =
        weft_core::wire::actor::document(&bob.state, Some(&http_key.public_key_pem())).to_string();

    // alice follows bob; bob's Accept (seq 2) is the newest activity of his
    // the node will hold before the pass.
    let (status, follow) = post(
        &http,
        &format!("{base}/activity"),
        Some(&alice_token),
        &json!({"type": "Follow", "object": actor, "backfill": {"mode": "none"}, "to": [actor]}),
    )
    .await?;
    if status != 201 {
        bail!("alice's Follow was refused: {status} {follow}");
    }
    let accept = bob.sign(json!({"type": "Accept", "object": follow["id"], "to": [alice]}))?;
    let mut log = Vec::with_capacity(count + 2);
    log.push(String::new()); // seq 1, the Create: not served here
    log.push(accept.with_url_id().to_json_string());
    let started = Instant::now();
    for i in 0..count {
        let note = bob.sign(json!({
            "type": "Create",
            "object": {"type": "Note", "content": format!("missed note {i}")},
            "to": [PUBLIC],
        }))?;
        log.push(note.with_url_id().to_json_string());
    }
    println!(
        "signed {count} notes in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let index = log
        .iter()
        .enumerate()
        .filter_map(|(i, text)| {
            let value: Value = serde_json::from_str(text).ok()?;
            Some((cid::internal(value["id"].as_str()?).to_owned(), i))
        })
        .collect();
    let served = Arc::new(Served {
        actor: actor.clone(),
        document,
        log,
        index,
    });
    let app = axum::Router::new()
        .route("/actors/bob", axum::routing::get(doc))
        .route("/actors/bob/head", axum::routing::get(head))
        .route("/actors/bob/outbox", axum::routing::get(outbox))
        .route(
            "/actors/bob/inbox",
            axum::routing::post(|| async { StatusCode::ACCEPTED }),
        )
        .with_state(served.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let (status, body) = post(
        &http,
        &format!(
            "{base}/actors/{}/inbox",
            alice.rsplit('/').next().unwrap_or("")
        ),
        None,
        &serde_json::from_str(&served.log[1])?,
    )
    .await?;
    if status != 202 {
        bail!("the node refused bob's Accept: {status} {body}");
    }

    let started = Instant::now();
    let (status, pass) = post(
        &http,
        &format!("{base}/admin/sync"),
        Some(admin),
        &json!({}),
    )
    .await?;
    let elapsed = started.elapsed().as_secs_f64();
    if status != 200 {
        bail!("POST /admin/sync: {status} {pass}");
    }
    let stored = pass["stored"].as_u64().unwrap_or(0);
    println!(
        "sync pass: {} rounds, {stored} activities committed in {elapsed:.2} s: {:.0} activities/s",
        pass["rounds"],
        stored as f64 / elapsed
    );
    let view: Value = http
        .get(format!("{base}/admin/sync"))
        .bearer_auth(admin)
        .send()
        .await?
        .json()
        .await?;
    let entry = view["actors"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["actor"] == actor.as_str()))
        .context("the node shows no sync state for bob")?;
    let want = count as u64 + 2;
    if entry["held"]["seq"] != want || stored != count as u64 {
        bail!("the node did not catch up: {entry}");
    }
    println!(
        "the node holds bob's whole log (seq {want}), lag {}",
        entry["lag"]
    );
    Ok(())
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> anyhow::Result<(u16, Value)> {
    let mut request = http
        .post(url)
        .header("content-type", ACTIVITY_JSON)
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

fn activity(text: String) -> Response {
    ([("content-type", ACTIVITY_JSON)], text).into_response()
}

async fn doc(State(served): State<Arc<Served>>) -> Response {
    activity(served.document.clone())
}

async fn head(State(served): State<Arc<Served>>) -> Response {
    let last = served.log.len() - 1;
    let id = serde_json::from_str::<Value>(&served.log[last])
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned));
    activity(
        json!({"actor": served.actor, "seq": last + 1, "id": id, "totalItems": last}).to_string(),
    )
}

async fn outbox(
    State(served): State<Arc<Served>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(200)
        .min(200);
    let from = match query.get("since") {
        Some(id) => match served.index.get(cid::internal(id)) {
            Some(i) => i + 1,
            None => return StatusCode::BAD_REQUEST.into_response(),
        },
        None => 1,
    };
    let to = (from + limit).min(served.log.len());
    let items: Vec<&str> = served.log[from..to].iter().map(String::as_str).collect();
    let outbox = format!("{}/outbox", served.actor);
    let mut page = format!(
        r#"{{"type":"OrderedCollectionPage","partOf":"{outbox}","orderedItems":[{}]"#,
        items.join(",")
    );
    if to < served.log.len()
        && let Some(last) = items.last()
        && let Some(id) = serde_json::from_str::<Value>(last)
            .ok()
            .and_then(|v| v["id"].as_str().map(|s| cid::internal(s).to_owned()))
    {
        page.push_str(&format!(r#","next":"{outbox}?since={id}&limit={limit}""#));
    }
    page.push('}');
    activity(page)
}
