//! The federation benchmarks of `weft bench`:
//!
//! - `--inbox`: many senders posting pre-signed activities from many remote
//!   actors (served by a stand-in origin in this process) to one local
//!   actor's inbox; prints throughput and latency percentiles, then checks
//!   that the inbox holds exactly the accepted activities.
//! - `--inbox --foreign`: the same with ActivityPub activities that carry
//!   no weft proof, each request HTTP-signed (draft-cavage, RSA) by its
//!   origin, as Mastodon delivers;
//! - `--fanout`: stand-in peer origins with followers of one local actor
//!   (they follow over the inbox; the node accepts); the actor publishes
//!   `--notes` public notes a round, and the time until every origin has
//!   them (once each, at its shared inbox, HTTP-signed) gives deliveries
//!   (followers reached) per second.
//!
//! They measure; they assert nothing about speed.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::ms;
use super::origin::Origin;
use weft_core::model::PUBLIC;

/// Creates a local actor through the admin API; answers (id, token).
pub(super) async fn create_actor(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    name: &str,
) -> anyhow::Result<(String, String)> {
    let response = http
        .post(format!("{base}/actors"))
        .bearer_auth(admin)
        .json(&json!({"name": name}))
        .send()
        .await
        .with_context(|| format!("cannot reach {base}"))?;
    if !response.status().is_success() {
        bail!("creating {name} failed: {}", response.status());
    }
    let body: Value = response.json().await?;
    Ok((
        body["id"].as_str().context("no id")?.to_owned(),
        body["token"].as_str().context("no token")?.to_owned(),
    ))
}

fn inbox_request(addr: &str, name: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /actors/{name}/inbox HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/activity+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends every request once over its own keep-alive connection per sender;
/// answers (latencies of 202s, other answers).
async fn send_all(
    addr: &str,
    requests: Vec<Vec<u8>>,
    senders: usize,
) -> anyhow::Result<(Vec<Duration>, Refused)> {
    let mut shares: Vec<Vec<Vec<u8>>> = (0..senders).map(|_| Vec::new()).collect();
    for (i, r) in requests.into_iter().enumerate() {
        shares[i % senders].push(r);
    }
    let mut tasks = Vec::new();
    for share in shares {
        let addr = addr.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            let mut buf = Vec::with_capacity(4096);
            let mut latencies = Vec::with_capacity(share.len());
            let mut refused = Refused::default();
            for request in share {
                let sent = Instant::now();
                let status = super::exchange(&mut stream, &mut buf, &request).await?;
                if status == "202" {
                    latencies.push(sent.elapsed());
                } else {
                    refused.add(&status, &buf);
                }
            }
            anyhow::Ok((latencies, refused))
        }));
    }
    let mut latencies = Vec::new();
    let mut refused = Refused::default();
    for task in tasks {
        let (l, r) = task.await??;
        latencies.extend(l);
        refused.count += r.count;
        refused.first = refused.first.or(r.first);
    }
    Ok((latencies, refused))
}

/// The requests a node refused: how many, and the first one's status and
/// body (which says why).
#[derive(Debug, Default)]
struct Refused {
    count: u64,
    first: Option<String>,
}

impl Refused {
    /// Counts a refusal; `response` is its head and body.
    fn add(&mut self, status: &str, response: &[u8]) {
        self.count += 1;
        if self.first.is_none() {
            let text = String::from_utf8_lossy(response);
            let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            self.first = Some(format!(
                "{status} {}",
                body.chars().take(400).collect::<String>()
            ));
        }
    }

    /// A line naming the first refusal, when there was one.
    fn explain(&self) {
        if let Some(first) = &self.first {
            println!("the first refusal: {first}");
        }
    }
}

/// A POST of `body` to `name`'s inbox signed (draft-cavage, as Mastodon
/// signs) with `key` as `key_id`.
fn signed_inbox_request(
    base: &str,
    addr: &str,
    name: &str,
    body: &str,
    key_id: &str,
    key: &weft_core::identity::RsaKey,
) -> anyhow::Result<Vec<u8>> {
    use weft_federation::httpsig::{self, Scheme, Signer};
    let url = format!("{base}/actors/{name}/inbox");
    let headers = httpsig::sign(
        Scheme::Cavage,
        &axum::http::Method::POST,
        &url,
        Some(body.as_bytes()),
        key_id,
        Signer::Rsa(key),
        weft_core::clock::now(),
    )?;
    let mut head = format!(
        "POST /actors/{name}/inbox HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/activity+json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (header, value) in headers {
        head.push_str(&format!("{header}: {}\r\n", value.to_str()?));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body.as_bytes());
    Ok(request)
}

/// `weft bench --inbox` (weft envelopes) and `--inbox --foreign`
/// (ActivityPub activities without a weft proof, each request HTTP-signed
/// with the sending origin's RSA key, as Mastodon delivers).
pub async fn inbox(
    base: &str,
    admin: &str,
    senders: usize,
    actors: usize,
    count: usize,
    foreign: bool,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let addr = super::authority(base)?;
    let mut origin = Origin::start(actors).await?;
    let name = format!("inbox-{}", std::process::id());
    let (recipient, _) = create_actor(&http, base, admin, &name).await?;
    let kind = if foreign {
        "HTTP-signed foreign"
    } else {
        "weft envelope"
    };
    eprintln!("signing {count} {kind} activities from {actors} remote actors…");
    let mut fakes = std::mem::take(&mut origin.actors);
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let (fakes, requests) = if foreign {
        // RSA signing is slow: share it over the cores.
        let ids: Vec<String> = fakes.iter().map(|f| f.state.id.clone()).collect();
        let mut tasks = Vec::new();
        for w in 0..workers {
            let (base, addr, name, recipient) = (
                base.to_owned(),
                addr.clone(),
                name.clone(),
                recipient.clone(),
            );
            let (ids, key) = (ids.clone(), origin.http_key.clone());
            tasks.push(tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let mut requests = Vec::new();
                for i in (w..count).step_by(workers) {
                    let actor = &ids[i % ids.len()];
                    let body = json!({
                        "@context": "https://www.w3.org/ns/activitystreams",
                        "id": format!("{actor}/statuses/{i}/activity"),
                        "type": "Create",
                        "actor": actor,
                        // Now, as a peer publishes (see `FakeActor::sign`).
                        "published": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
                        "to": [recipient],
                        "object": {
                            "id": format!("{actor}/statuses/{i}"),
                            "type": "Note",
                            "attributedTo": actor,
                            "content": "<p>a benchmark note of ordinary length, about a tweet or so, with some words in it</p>",
                            "to": [recipient],
                        },
                    });
                    requests.push(signed_inbox_request(
                        &base,
                        &addr,
                        &name,
                        &body.to_string(),
                        &format!("{actor}#main-key"),
                        &key,
                    )?);
                }
                Ok(requests)
            }));
        }
        let mut requests = Vec::with_capacity(count);
        for task in tasks {
            requests.extend(task.await??);
        }
        (fakes, requests)
    } else {
        tokio::task::spawn_blocking({
            let (addr, name, recipient) = (addr.clone(), name.clone(), recipient.clone());
            move || -> anyhow::Result<_> {
                let mut requests = Vec::with_capacity(count);
                for i in 0..count {
                    let n = fakes.len();
                    let actor = &mut fakes[i % n];
                    let signed = actor.sign(json!({
                        "type": "Create",
                        "object": {"type": "Note", "content": "a benchmark note of ordinary length, about a tweet or so, with some words in it"},
                        "to": [recipient],
                    }))?;
                    requests.push(inbox_request(&addr, &name, &signed.to_json_string()));
                }
                Ok((fakes, requests))
            }
        })
        .await??
    };
    origin.actors = fakes;
    eprintln!("posting them to {recipient}'s inbox with {senders} senders…");
    let before = super::writer_seconds(&http, base).await;
    let started = Instant::now();
    let (mut latencies, refused) = send_all(&addr, requests, senders).await?;
    let errors = refused.count;
    let elapsed = started.elapsed();
    let accepted = latencies.len();
    println!(
        "inbox: {accepted} activities accepted in {:.2}s: {:.0} activities/s ({errors} refused)",
        elapsed.as_secs_f64(),
        accepted as f64 / elapsed.as_secs_f64()
    );
    refused.explain();
    super::rate_limit_hint();
    super::print_latency(&mut latencies);
    super::print_writer(&http, base, before, accepted).await;
    let inbox: Value = http
        .get(format!("{base}/actors/{name}/inbox"))
        .bearer_auth(admin)
        .send()
        .await?
        .json()
        .await?;
    let total = inbox["totalItems"].as_u64().unwrap_or(0);
    if total != accepted as u64 {
        bail!("the inbox holds {total} activities but {accepted} were accepted");
    }
    println!("checked: the inbox holds exactly the {accepted} accepted activities");
    Ok(())
}

/// `weft bench --fanout`.
pub async fn fanout(
    base: &str,
    admin: &str,
    peers: usize,
    followers: usize,
    rounds: usize,
    notes: usize,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let addr = super::authority(base)?;
    let per_peer = followers.div_ceil(peers.max(1));
    let mut origins = Vec::with_capacity(peers);
    for _ in 0..peers {
        origins.push(Origin::start(per_peer).await?);
    }
    let name = format!("star-{}", std::process::id());
    let (star, token) = create_actor(&http, base, admin, &name).await?;
    let mut follows = Vec::new();
    for origin in &mut origins {
        for actor in &mut origin.actors {
            let follow = actor.sign(json!({"type": "Follow", "object": star, "to": [star]}))?;
            follows.push(inbox_request(&addr, &name, &follow.to_json_string()));
        }
    }
    let total = follows.len() as u64;
    eprintln!("{total} remote actors on {peers} origins follow {star}…");
    let (_, refused) = send_all(&addr, follows, 64).await?;
    super::rate_limit_hint();
    if refused.count > 0 {
        bail!(
            "{} Follows were refused, the first with {}",
            refused.count,
            refused.first.unwrap_or_default()
        );
    }
    let accepts = || {
        origins
            .iter()
            .map(|o| o.received.accepts.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    while accepts() < total {
        if Instant::now() > deadline {
            bail!("only {} of {total} Accepts were delivered", accepts());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed: Value = http
        .get(format!("{base}/actors/{name}/followers"))
        .send()
        .await?
        .json()
        .await?;
    if listed["totalItems"].as_u64() != Some(total) {
        bail!(
            "the node lists {} followers, not {total}",
            listed["totalItems"]
        );
    }
    // A public note reaches each origin once, at its shared inbox, and
    // through it every follower there: a delivery per follower, a signed
    // POST per origin.
    let posts = || {
        origins
            .iter()
            .map(|o| {
                o.received.shared.load(Ordering::Relaxed)
                    + o.received.others.load(Ordering::Relaxed)
            })
            .sum::<u64>()
    };
    let per_note = origins.len() as u64;
    let mut rates = Vec::new();
    for round in 0..rounds {
        let start_count = posts();
        let started = Instant::now();
        for n in 0..notes {
            let response = http
                .post(format!("{base}/activity"))
                .bearer_auth(&token)
                .json(&json!({"type": "Create", "object": {"type": "Note", "content": format!("fan-out round {round} note {n}")}, "to": [PUBLIC]}))
                .send()
                .await?;
            if response.status() != 201 {
                bail!("publishing failed: {}", response.status());
            }
        }
        let want = start_count + per_note * notes as u64;
        let deadline = Instant::now() + Duration::from_secs(300);
        while posts() < want {
            if Instant::now() > deadline {
                bail!(
                    "round {round}: only {} of {} signed POSTs arrived",
                    posts() - start_count,
                    want - start_count
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let elapsed = started.elapsed();
        let reached = total * notes as u64;
        let rate = reached as f64 / elapsed.as_secs_f64();
        println!(
            "round {round}: {notes} notes to {total} followers ({reached} deliveries, {} signed POSTs) in {:.1} ms: {rate:.0} deliveries/s, {:.0} POSTs/s",
            want - start_count,
            ms(elapsed),
            (want - start_count) as f64 / elapsed.as_secs_f64(),
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    if let Some(median) = rates.get(rates.len() / 2) {
        println!(
            "fan-out to {total} followers on {peers} peers (shared inboxes, HTTP-signed): median {median:.0} deliveries/s"
        );
    }
    Ok(())
}
