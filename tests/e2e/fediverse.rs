//! weft against a real ActivityPub implementation that nobody on this
//! project wrote: a small server on Fedify (`tests/ap-peer`, installed from
//! the npm registry by `tests/ap-peer/install.sh`, which this test runs).
//! Fedify verifies weft's HTTP signatures and reads weft's documents with
//! its own code, and signs what it sends with its own.
//!
//! The peer follows a weft actor and receives weft's Accept and a Note; the
//! weft actor follows the peer, gets its Accept, and the peer's Note shows
//! in the weft actor's feed; the peer's Undo ends its follow.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use crate::support::{PUBLIC, Weft, collection, eventually, free_port, publish};

/// The Fedify peer's folder.
fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ap-peer")
}

/// Runs the peer's install script once per test run.
fn install() -> anyhow::Result<()> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let out = Command::new(peer_dir().join("install.sh"))
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run tests/ap-peer/install.sh: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "tests/ap-peer/install.sh failed ({}):\n{}\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// A running Fedify peer, killed on drop.
struct Peer {
    child: Child,
    base: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    async fn start(dir: &Path) -> anyhow::Result<Self> {
        install()?;
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}");
        let log = dir.join("ap-peer.log");
        let child = Command::new(peer_dir().join("run.sh"))
            .env("PEER_LISTEN", port.to_string())
            .env("PEER_ORIGIN", &base)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::create(dir.join("ap-peer.stderr"))?)
            .spawn()
            .context("cannot start tests/ap-peer/run.sh")?;
        let mut peer = Self {
            child,
            base,
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        };
        for _ in 0..600 {
            if let Some(status) = peer.child.try_wait()? {
                bail!("the Fedify peer exited with {status}:\n{}", peer.log());
            }
            if peer.state().await.is_ok() {
                return Ok(peer);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the Fedify peer did not start:\n{}", peer.log())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn actor(&self) -> String {
        format!("{}/users/peer", self.base)
    }

    async fn state(&self) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}/_control/state?raw=0", self.base))
            .send()
            .await?;
        ensure!(response.status().is_success(), "{}", response.status());
        Ok(response.json().await?)
    }

    async fn control(&self, what: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}/_control/{what}", self.base))
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        ensure!(
            status.is_success(),
            "{what}: {status} {body}\npeer log:\n{}",
            self.log()
        );
        Ok(body)
    }
}

fn items(state: &Value, list: &str) -> Vec<Value> {
    state[list].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn weft_and_a_fedify_server_follow_each_other_and_deliver() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    weft.start().await?;
    let (alice, token) = weft.create_actor_http("alice").await?;
    let peer = Peer::start(weft.tmp()).await?;
    let context = |what: &str| {
        format!(
            "{what}\npeer log:\n{}\nweft log:\n{}",
            peer.log(),
            weft.stderr()
        )
    };

    // The peer follows alice: weft takes Fedify's signed Follow, its Follow
    // verb accepts, and Fedify takes weft's signed Accept.
    peer.control("follow", json!({"target": alice})).await?;
    eventually(30, "the peer to follow alice", || async {
        Ok(items(&peer.state().await?, "following")
            .contains(&json!(alice))
            .then_some(()))
    })
    .await
    .with_context(|| context("no Accept"))?;
    assert_eq!(
        collection(&weft, "alice", "followers").await?,
        vec![json!(peer.actor())]
    );

    // alice's note reaches the peer.
    let note = publish(
        &weft,
        &token,
        json!({"type": "Create", "object": {"type": "Note", "content": "hello, fediverse"}, "to": [PUBLIC]}),
    )
    .await?;
    let got = eventually(30, "alice's note at the peer", || async {
        Ok(items(&peer.state().await?, "received")
            .into_iter()
            .find(|r| r["type"] == "Create" && r["id"] == note["id"]))
    })
    .await
    .with_context(|| context("no note"))?;
    assert_eq!(got["actor"], alice.as_str());
    assert_eq!(got["objectType"], "Note");
    assert_eq!(got["content"], "hello, fediverse");

    // alice follows the peer; Fedify's Accept makes it so.
    publish(
        &weft,
        &token,
        json!({"type": "Follow", "object": peer.actor(), "to": [peer.actor()]}),
    )
    .await?;
    eventually(30, "alice to follow the peer", || async {
        Ok(collection(&weft, "alice", "following")
            .await?
            .contains(&json!(peer.actor()))
            .then_some(()))
    })
    .await
    .with_context(|| context("alice does not follow the peer"))?;
    assert!(
        items(&peer.state().await?, "followers").contains(&json!(alice)),
        "{}",
        context("the peer does not list alice")
    );

    // The peer's note shows in alice's feed.
    let sent = peer
        .control(
            "note",
            json!({"content": "<p>hello from Fedify</p>", "to": "public"}),
        )
        .await?;
    let note_id = sent["id"].as_str().context("the note's id")?.to_owned();
    let shown = eventually(30, "the peer's note in alice's feed", || async {
        let feed = weft
            .get_ok(&format!("/projections/feed?actor={alice}"), Some(&token))
            .await?;
        Ok(feed["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|i| i["activity"]["object"]["id"] == note_id.as_str())
                .cloned()
        }))
    })
    .await
    .with_context(|| context("the note is not in the feed"))?;
    assert_eq!(
        shown["activity"]["object"]["content"],
        "<p>hello from Fedify</p>"
    );
    assert_eq!(shown["activity"]["actor"], peer.actor().as_str());

    // alice likes the peer's note, named only by its URL: the Like goes to
    // the note's author, found from the note's document (no dead letter
    // for the note's URL, which is no actor).
    let like = publish(&weft, &token, json!({"type": "Like", "object": note_id})).await?;
    let liked = eventually(30, "alice's Like at the peer", || async {
        Ok(items(&peer.state().await?, "received")
            .into_iter()
            .find(|r| r["type"] == "Like" && r["id"] == like["id"]))
    })
    .await
    .with_context(|| context("no Like"))?;
    assert_eq!(liked["actor"], alice.as_str());
    assert_eq!(liked["objectId"], note_id.as_str());

    // The peer unfollows alice.
    peer.control("unfollow", json!({"target": alice})).await?;
    eventually(30, "the peer's Undo", || async {
        Ok(collection(&weft, "alice", "followers")
            .await?
            .is_empty()
            .then_some(()))
    })
    .await
    .with_context(|| context("the peer still follows alice"))?;
    assert!(
        items(&peer.state().await?, "unverified").is_empty(),
        "{}",
        context("Fedify could not verify something weft sent")
    );
    // Every request weft sent the peer was signed, and Fedify took it.
    let log = peer.log();
    let inbound: Vec<&str> = log.lines().filter(|l| l.contains("HTTP-IN")).collect();
    assert!(
        !inbound.is_empty(),
        "{}",
        context("the peer logged no requests")
    );
    for line in &inbound {
        assert!(!line.contains("sig=unsigned"), "{}", context(line));
    }
    // And everything weft sent was delivered.
    let dead = weft.get_ok("/admin/dead-letter", Some(&weft.admin)).await?;
    assert_eq!(dead["totalItems"], 0, "{}", context(&dead.to_string()));
    if std::env::var_os("WEFT_SHOW_PEER_LOG").is_some() {
        eprintln!("{log}");
    }
    weft.stop()
}

#[tokio::test]
async fn weft_reads_back_a_fedify_outbox_for_what_it_missed_while_down() -> anyhow::Result<()> {
    let mut weft = Weft::init()?;
    weft.start().await?;
    let (alice, token) = weft.create_actor_http("alice").await?;
    let peer = Peer::start(weft.tmp()).await?;
    publish(
        &weft,
        &token,
        json!({"type": "Follow", "object": peer.actor(), "to": [peer.actor()]}),
    )
    .await?;
    eventually(30, "alice to follow the peer", || async {
        Ok(collection(&weft, "alice", "following")
            .await?
            .contains(&json!(peer.actor())))
        .map(|yes| yes.then_some(()))
    })
    .await
    .with_context(|| explain(&peer, &weft, "alice does not follow the peer"))?;
    // One note while weft is up, so weft holds something of the peer's.
    peer.control("note", json!({"content": "<p>before</p>", "to": "public"}))
        .await?;
    eventually(30, "the first note in alice's feed", || async {
        Ok(feed_has(&weft, &alice, &token, "<p>before</p>")
            .await?
            .then_some(()))
    })
    .await
    .with_context(|| explain(&peer, &weft, "the first note never arrived"))?;

    // weft is down while the peer posts: Fedify's delivery fails (and
    // without a queue it does not retry).
    weft.stop()?;
    let _ = peer
        .control("note", json!({"content": "<p>missed</p>", "to": "public"}))
        .await;
    weft.start().await?;
    assert!(
        !feed_has(&weft, &alice, &token, "<p>missed</p>").await?,
        "{}",
        explain(&peer, &weft, "the missed note arrived without sync")
    );

    // A reconcile pass reads the peer's outbox back to the first note.
    let (status, pass) = weft
        .api()
        .post_json("/admin/sync", &weft.admin, &json!({}))
        .await?;
    assert_eq!(status, 200, "{pass}");
    assert_eq!(
        pass["stored"],
        1,
        "{}",
        explain(&peer, &weft, &pass.to_string())
    );
    assert!(
        feed_has(&weft, &alice, &token, "<p>missed</p>").await?,
        "{}",
        explain(
            &peer,
            &weft,
            "the missed note is not in alice's feed after sync"
        )
    );
    let view = weft.get_ok("/admin/sync", Some(&weft.admin)).await?;
    assert_eq!(view["actors"][0]["actor"], peer.actor().as_str(), "{view}");
    assert_eq!(view["actors"][0]["offences"], 0, "{view}");
    weft.stop()
}

fn explain(peer: &Peer, weft: &Weft, what: &str) -> String {
    format!(
        "{what}\npeer log:\n{}\nweft log:\n{}",
        peer.log(),
        weft.stderr()
    )
}

/// Whether alice's feed shows a note with `content`.
async fn feed_has(weft: &Weft, alice: &str, token: &str, content: &str) -> anyhow::Result<bool> {
    let feed = weft
        .get_ok(&format!("/projections/feed?actor={alice}"), Some(token))
        .await?;
    Ok(feed["items"].as_array().is_some_and(|items| {
        items
            .iter()
            .any(|i| i["activity"]["object"]["content"] == content)
    }))
}
