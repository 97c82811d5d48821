//! The fediverse path (issue 20) against a real node over loopback:
//! activities shaped as Mastodon and GoToSocial send them (fixtures in
//! `tests/data/fediverse`), delivered with real HTTP signatures by a
//! stand-in server that publishes RSA keys the way they do; weft's own
//! deliveries checked against the key weft publishes; and every way a
//! hostile or broken sender is refused, with nothing stored and nothing
//! fetched beyond what the case needs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use weft_core::identity::RsaKey;
use weft_federation::httpsig::{self, PublicKey, Scheme, Signer, Window};

use crate::support::{TestNode, eventually};

/// How the stand-in serves its actor documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Documents {
    Normal,
    /// 302 to another URL.
    Redirect,
    /// 2 MiB of JSON.
    Huge,
}

/// A request the stand-in received.
#[derive(Debug, Clone)]
struct Delivery {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Debug)]
struct Inner {
    base: String,
    /// Actor name → (key, whether its key id is `…#main-key` (Mastodon)
    /// or `…/main-key` (GoToSocial)).
    actors: HashMap<String, (Arc<RsaKey>, bool)>,
    received: Vec<Delivery>,
    /// Every GET, answered or not.
    gets: usize,
    documents: Documents,
}

/// A stand-in ActivityPub server: actor documents with RSA `publicKey`s,
/// inboxes that record what arrives, and signed POSTs as its actors.
#[derive(Debug, Clone)]
struct Fedi {
    base: String,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
}

impl Fedi {
    async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let inner = Arc::new(Mutex::new(Inner {
            base: base.clone(),
            actors: HashMap::new(),
            received: Vec::new(),
            gets: 0,
            documents: Documents::Normal,
        }));
        let app = axum::Router::new()
            .route("/users/{name}", axum::routing::get(document))
            .route("/users/{name}/main-key", axum::routing::get(key_document))
            .route("/users/{name}/inbox", axum::routing::post(inbox))
            .route("/users/{name}/statuses/{id}", axum::routing::get(status))
            .route("/inbox", axum::routing::post(shared_inbox))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        weft_federation::install_crypto();
        Ok(Self {
            base,
            inner,
            http: reqwest::Client::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("the stand-in's lock")
    }

    /// Adds an actor with a fresh RSA key; `gotosocial` names its key
    /// `…/main-key` instead of `…#main-key`. Returns its URL.
    fn actor(&self, name: &str, gotosocial: bool) -> anyhow::Result<String> {
        let key = Arc::new(RsaKey::generate()?);
        self.lock()
            .actors
            .insert(name.to_owned(), (key, gotosocial));
        Ok(self.actor_url(name))
    }

    fn actor_url(&self, name: &str) -> String {
        format!("{}/users/{name}", self.base)
    }

    fn key_id(&self, name: &str) -> String {
        let gotosocial = self.lock().actors.get(name).is_some_and(|a| a.1);
        key_id_of(&self.actor_url(name), gotosocial)
    }

    fn key(&self, name: &str) -> anyhow::Result<Arc<RsaKey>> {
        Ok(self
            .lock()
            .actors
            .get(name)
            .context("no such actor")?
            .0
            .clone())
    }

    fn gets(&self) -> usize {
        self.lock().gets
    }

    fn received(&self) -> Vec<Delivery> {
        self.lock().received.clone()
    }

    fn serve(&self, documents: Documents) {
        self.lock().documents = documents;
    }

    /// A fixture with its placeholders filled in.
    fn fixture(&self, file: &str, actor: &str, local: &str, n: u32) -> anyhow::Result<Value> {
        self.fixture_about(file, actor, local, n, "")
    }

    /// A fixture whose `{OBJECT}` names `object`.
    fn fixture_about(
        &self,
        file: &str,
        actor: &str,
        local: &str,
        n: u32,
        object: &str,
    ) -> anyhow::Result<Value> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/fediverse")
            .join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .replace("{ACTOR}", &self.actor_url(actor))
            .replace("{ORIGIN}", &self.base)
            .replace("{LOCAL}", local)
            .replace("{N}", &n.to_string())
            .replace("{OBJECT}", object);
        Ok(serde_json::from_str(&text)?)
    }

    /// POSTs `activity` to `url`, signed (draft-cavage, as Mastodon signs)
    /// as `name` unless `how` says otherwise. Returns (status, body).
    async fn post(
        &self,
        url: &str,
        activity: &Value,
        name: &str,
        how: How,
    ) -> anyhow::Result<(u16, Value)> {
        let body = serde_json::to_vec(activity)?;
        let mut key = self.key(name)?;
        let mut key_id = self.key_id(name);
        let mut now = SystemTime::now();
        match &how {
            How::OldDate => now -= Duration::from_secs(13 * 3600),
            How::UnlistedKey => {
                key = Arc::new(RsaKey::generate()?);
                key_id = format!("{}#other-key", self.actor_url(name));
            }
            How::KeyOf(other, other_name) => {
                key = other.key(other_name)?;
                key_id = other.key_id(other_name);
            }
            _ => {}
        }
        let mut request = self
            .http
            .post(url)
            .header(header::CONTENT_TYPE, "application/activity+json");
        if how != How::Unsigned {
            let scheme = if how == How::Rfc9421 {
                Scheme::Rfc9421
            } else {
                Scheme::Cavage
            };
            for (name, value) in httpsig::sign(
                scheme,
                &Method::POST,
                url,
                Some(&body),
                &key_id,
                Signer::Rsa(&key),
                now,
            )? {
                request = request.header(name, value);
            }
        }
        let body = if how == How::AlteredBody {
            let mut altered = activity.clone();
            altered["type"] = "Like".into();
            serde_json::to_vec(&altered)?
        } else {
            body
        };
        let response = request.body(body).send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }
}

/// How a stand-in's POST is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum How {
    Cavage,
    Rfc9421,
    Unsigned,
    /// `Date` 13 hours ago.
    OldDate,
    /// By a key the actor's document does not list.
    UnlistedKey,
    /// By another server's actor's key.
    KeyOf(Box<Fedi>, String),
    /// The body changed after signing.
    AlteredBody,
}

impl PartialEq for Fedi {
    fn eq(&self, other: &Self) -> bool {
        self.base == other.base
    }
}

impl Eq for Fedi {}

fn key_id_of(actor: &str, gotosocial: bool) -> String {
    if gotosocial {
        format!("{actor}/main-key")
    } else {
        format!("{actor}#main-key")
    }
}

fn actor_json(inner: &Inner, name: &str) -> Option<Value> {
    let (key, gotosocial) = inner.actors.get(name)?;
    let id = format!("{}/users/{name}", inner.base);
    Some(json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": id,
        "type": "Person",
        "preferredUsername": name,
        "inbox": format!("{id}/inbox"),
        "outbox": format!("{id}/outbox"),
        "followers": format!("{id}/followers"),
        "endpoints": {"sharedInbox": format!("{}/inbox", inner.base)},
        "publicKey": {
            "id": key_id_of(&id, *gotosocial),
            "owner": id,
            "publicKeyPem": key.public_key_pem(),
        },
    }))
}

async fn document(State(inner): State<Arc<Mutex<Inner>>>, Path(name): Path<String>) -> Response {
    let mut inner = inner.lock().expect("lock");
    inner.gets += 1;
    match inner.documents {
        Documents::Redirect => {
            return (
                StatusCode::FOUND,
                [(header::LOCATION, format!("{}/elsewhere/{name}", inner.base))],
            )
                .into_response();
        }
        Documents::Huge => {
            let filler = "x".repeat(2 * 1024 * 1024);
            return (
                [(header::CONTENT_TYPE, "application/activity+json")],
                json!({"filler": filler}).to_string(),
            )
                .into_response();
        }
        Documents::Normal => {}
    }
    match actor_json(&inner, &name) {
        Some(doc) => (
            [(header::CONTENT_TYPE, "application/activity+json")],
            doc.to_string(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A status as Mastodon serves it: a Note attributed to its author. The
/// status `forged` names an author on another origin.
async fn status(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((name, id)): Path<(String, String)>,
) -> Response {
    let mut inner = inner.lock().expect("lock");
    inner.gets += 1;
    let url = format!("{}/users/{name}/statuses/{id}", inner.base);
    let author = if id == "forged" {
        format!("http://127.0.0.1:1/users/{name}")
    } else {
        format!("{}/users/{name}", inner.base)
    };
    (
        [(header::CONTENT_TYPE, "application/activity+json")],
        json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": url,
            "type": "Note",
            "attributedTo": author,
            "content": "<p>a status</p>",
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
        })
        .to_string(),
    )
        .into_response()
}

/// GoToSocial serves a key's URL as a stub of its owner with the key.
async fn key_document(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(name): Path<String>,
) -> Response {
    let mut inner = inner.lock().expect("lock");
    inner.gets += 1;
    match actor_json(&inner, &name) {
        Some(doc) => (
            [(header::CONTENT_TYPE, "application/activity+json")],
            json!({
                "@context": doc["@context"],
                "id": doc["id"],
                "type": "Person",
                "preferredUsername": name,
                "publicKey": doc["publicKey"],
            })
            .to_string(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn inbox(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let path = format!("/users/{name}/inbox");
    inner.lock().expect("lock").received.push(Delivery {
        path,
        headers,
        body,
    });
    StatusCode::ACCEPTED
}

async fn shared_inbox(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    inner.lock().expect("lock").received.push(Delivery {
        path: "/inbox".into(),
        headers,
        body,
    });
    StatusCode::ACCEPTED
}

/// Checks a delivery's HTTP signature the way a receiving server does:
/// the key named by `keyId`, as the signer's actor document publishes it.
async fn verify_delivery(node: &TestNode, delivery: &Delivery) -> anyhow::Result<String> {
    let pending = httpsig::parse(
        &Method::POST,
        &delivery.path,
        &delivery.headers,
        &delivery.body,
        "http",
        Window::default(),
        SystemTime::now(),
    )?;
    let owner = pending
        .key_id
        .split_once('#')
        .context("weft's key ids are {actor}#main-key")?
        .0
        .to_owned();
    let name = owner.rsplit('/').next().context("a name")?;
    let doc = node.doc(name).await?;
    assert_eq!(doc["publicKey"]["id"], pending.key_id.as_str(), "{doc}");
    let pem = doc["publicKey"]["publicKeyPem"].as_str().context("a PEM")?;
    pending.verify(&PublicKey::from_pem(pem)?)?;
    Ok(owner)
}

fn inbox_path(name: &str) -> String {
    format!("/actors/{name}/inbox")
}

async fn inbox_items(node: &TestNode, name: &str, token: &str) -> anyhow::Result<Vec<Value>> {
    let page = node
        .get_ok(
            &format!("{}?page=1&limit=200", inbox_path(name)),
            Some(token),
        )
        .await?;
    Ok(page["orderedItems"].as_array().cloned().unwrap_or_default())
}

async fn graph(node: &TestNode, list: &str, actor: &str) -> anyhow::Result<Vec<Value>> {
    let body = node
        .get_ok(
            &format!("/projections/follower-graph/{list}?actor={actor}"),
            None,
        )
        .await?;
    Ok(body["items"].as_array().cloned().unwrap_or_default())
}

/// A Like names what it likes by URL, addressing no one: a remote note's
/// Like goes to the author its document names on its own origin (signed
/// by the liker), and so does its Undo; one that names an author elsewhere is a dead letter that
/// says so (nothing is posted), and a local note's goes to its owner's
/// inbox.
#[tokio::test]
async fn a_like_of_a_note_by_its_url_reaches_the_notes_author() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let (_, bob_token) = node.actor("bob").await?;
    let fedi = Fedi::start().await?;
    let mastodon = fedi.actor("mastodon", false)?;

    let status = format!("{mastodon}/statuses/1");
    let like = node
        .publish_ok(&token, &json!({"type": "Like", "object": status}))
        .await?;
    // The delivery of the activity with this id, once the stand-in has it.
    let delivery_of = async |what: &str, id: &Value| {
        eventually(20, what, || async {
            Ok(fedi
                .received()
                .into_iter()
                .find(|d| serde_json::from_slice::<Value>(&d.body).is_ok_and(|v| v["id"] == *id)))
        })
        .await
    };
    let delivered = delivery_of("the Like at the note's author", &like["id"]).await?;
    assert_eq!(delivered.path, "/users/mastodon/inbox");
    assert_eq!(verify_delivery(&node, &delivered).await?, alice);
    let body: Value = serde_json::from_slice(&delivered.body)?;
    assert_eq!(body["object"], status.as_str());
    // Its Undo, addressed to no one either, follows it there.
    let undo = node
        .publish_ok(&token, &json!({"type": "Undo", "object": like["id"]}))
        .await?;
    let undone = delivery_of("the Undo at the note's author", &undo["id"]).await?;
    assert_eq!(undone.path, "/users/mastodon/inbox");

    // Another origin's actor is not taken as the author.
    let forged = format!("{mastodon}/statuses/forged");
    node.publish_ok(&token, &json!({"type": "Like", "object": forged}))
        .await?;
    let dead = eventually(20, "the forged status's dead letter", || async {
        let dead = node.get_ok("/admin/dead-letter", Some(&node.admin)).await?;
        Ok((dead["totalItems"] == 1).then_some(dead))
    })
    .await?;
    let letter = &dead["items"][0];
    assert_eq!(letter["recipient"], forged.as_str(), "{letter}");
    assert!(
        letter["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("attributedTo")),
        "{letter}"
    );
    assert_eq!(
        fedi.received().len(),
        2,
        "only the first Like and its Undo were posted"
    );

    // bob likes alice's own note by its URL: it lands in alice's inbox.
    let note = node
        .publish_ok(&token, &weft_test_support::fixtures::note("mine"))
        .await?;
    let note_url = note["object"]["id"]
        .as_str()
        .context("the note's URL")?
        .to_owned();
    let liked = node
        .publish_ok(&bob_token, &json!({"type": "Like", "object": note_url}))
        .await?;
    let items = inbox_items(&node, "alice", &token).await?;
    assert!(
        items.iter().any(|i| i["id"] == liked["id"]),
        "bob's Like is not in alice's inbox: {items:?}"
    );
    node.stop().await
}

/// A Mastodon Follow is taken on its HTTP signature, kept with the
/// signature as evidence, answered by an Accept that weft signs with the
/// key its actor document publishes, and undone by Mastodon's Undo.
#[tokio::test]
async fn a_mastodon_follow_is_accepted_with_a_signed_accept_and_undone() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let fedi = Fedi::start().await?;
    let mastodon = fedi.actor("mastodon", false)?;
    let follow = fedi.fixture("mastodon-follow.json", "mastodon", &alice, 1)?;
    let follow_id = follow["id"].as_str().context("id")?.to_owned();

    let (status, body) = fedi
        .post(
            &node.url(&inbox_path("alice")),
            &follow,
            "mastodon",
            How::Cavage,
        )
        .await?;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "accepted", "{body}");
    assert_eq!(body["id"], follow_id.as_str());

    // The Follow is in alice's inbox under its URL id, with its evidence.
    let items = inbox_items(&node, "alice", &token).await?;
    assert!(
        items.iter().any(|i| i["id"] == follow_id.as_str()),
        "{items:?}"
    );
    let evidence = node
        .kernel
        .store()
        .read()?
        .evidence(&follow_id)?
        .context("the signature is kept beside the Follow")?;
    assert_eq!(evidence.scheme, "cavage");
    assert_eq!(evidence.key_id, format!("{mastodon}#main-key"));
    assert_eq!(evidence.signer, mastodon);
    assert!(
        evidence
            .signed
            .starts_with("(request-target): post /actors/alice/inbox")
    );

    // alice's Follow verb accepts: the Accept reaches Mastodon's inbox,
    // signed by alice's published key.
    let accept = eventually(20, "the Accept at the stand-in", || async {
        Ok(fedi.received().into_iter().find(|d| {
            serde_json::from_slice::<Value>(&d.body)
                .is_ok_and(|v| v["type"] == "Accept" && v["object"] == follow_id.as_str())
        }))
    })
    .await?;
    assert_eq!(accept.path, "/users/mastodon/inbox");
    assert_eq!(verify_delivery(&node, &accept).await?, alice);
    let accept_json: Value = serde_json::from_slice(&accept.body)?;
    assert_eq!(
        accept_json["@context"],
        "https://www.w3.org/ns/activitystreams"
    );
    assert!(
        accept_json["id"]
            .as_str()
            .is_some_and(|id| id.starts_with(&format!("{}/activities/b", node.base))),
        "{accept_json}"
    );
    assert_eq!(
        graph(&node, "followers", &alice).await?,
        vec![json!(mastodon)]
    );

    // alice's public note goes to the follower's server once, at its
    // shared inbox.
    let note = node
        .publish_ok(
            &token,
            &json!({"type": "Create", "object": {"type": "Note", "content": "hi"}, "to": [weft_core::model::PUBLIC]}),
        )
        .await?;
    let delivered = eventually(20, "the note at the shared inbox", || async {
        Ok(fedi.received().into_iter().find(|d| {
            serde_json::from_slice::<Value>(&d.body).is_ok_and(|v| v["id"] == note["id"])
        }))
    })
    .await?;
    assert_eq!(delivered.path, "/inbox");
    assert_eq!(verify_delivery(&node, &delivered).await?, alice);
    let created: Value = serde_json::from_slice(&delivered.body)?;
    assert_eq!(created["object"]["attributedTo"], alice.as_str());
    let seq = note["seq"].as_u64().context("seq")?;
    assert_eq!(created["object"]["id"], format!("{alice}/objects/{seq}"));
    let object = node
        .get_ok(&format!("/actors/alice/objects/{seq}"), None)
        .await?;
    assert_eq!(object["content"], "hi");
    assert_eq!(object["@context"], "https://www.w3.org/ns/activitystreams");

    // The same Follow again changes nothing.
    eventually(20, "the deliveries to finish", || async {
        Ok(node.kernel.store().read()?.jobs()?.is_empty().then_some(()))
    })
    .await?;
    let before = node.snapshot()?;
    let (status, body) = fedi
        .post(
            &node.url(&inbox_path("alice")),
            &follow,
            "mastodon",
            How::Cavage,
        )
        .await?;
    assert_eq!((status, body["status"].as_str()), (202, Some("duplicate")));
    assert!(node.snapshot()? == before, "a duplicate changed the node");

    // Mastodon's Undo embeds the Follow; RFC 9421 signatures work too.
    let undo = fedi.fixture("mastodon-undo-follow.json", "mastodon", &alice, 1)?;
    let (status, body) = fedi
        .post(
            &node.url(&inbox_path("alice")),
            &undo,
            "mastodon",
            How::Rfc9421,
        )
        .await?;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        node.kernel
            .store()
            .read()?
            .evidence(undo["id"].as_str().context("id")?)?
            .map(|e| e.scheme),
        Some("rfc9421".to_owned())
    );
    eventually(10, "the follower to be gone", || async {
        Ok(graph(&node, "followers", &alice)
            .await?
            .is_empty()
            .then_some(()))
    })
    .await?;
    node.stop().await
}

/// alice follows a Mastodon account and a GoToSocial one; their Accepts
/// (embedding the Follow) make them followed, and their notes, posted to
/// the shared inbox or alice's own, reach her inbox and feed with their
/// HTML, mentions and hashtags as sent. An `Update` of the actor makes
/// the node fetch its document again.
#[tokio::test]
async fn notes_from_mastodon_and_gotosocial_reach_the_feed() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, token) = node.actor("alice").await?;
    let fedi = Fedi::start().await?;
    let mastodon = fedi.actor("mastodon", false)?;
    let gts = fedi.actor("gotosocial", true)?;

    for (target, name) in [(&mastodon, "mastodon"), (&gts, "gotosocial")] {
        let follow = node
            .publish_ok(
                &token,
                &json!({"type": "Follow", "object": target, "to": [target]}),
            )
            .await?;
        let delivered = eventually(20, "alice's Follow at the stand-in", || async {
            Ok(fedi.received().into_iter().find(|d| {
                serde_json::from_slice::<Value>(&d.body)
                    .is_ok_and(|v| v["type"] == "Follow" && v["object"] == target.as_str())
            }))
        })
        .await?;
        assert_eq!(verify_delivery(&node, &delivered).await?, alice);
        let accept = json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": format!("{target}#accepts/follows/1"),
            "type": "Accept",
            "actor": target,
            "object": {"id": follow["id"], "type": "Follow", "actor": alice, "object": target},
        });
        let (status, body) = fedi
            .post(&node.url(&inbox_path("alice")), &accept, name, How::Cavage)
            .await?;
        assert_eq!(status, 202, "{body}");
    }
    let following = graph(&node, "following", &alice).await?;
    assert!(
        following.contains(&json!(mastodon)) && following.contains(&json!(gts)),
        "{following:?}"
    );

    let toot = fedi.fixture("mastodon-create-note.json", "mastodon", &alice, 7)?;
    let (status, body) = fedi
        .post(&node.url("/inbox"), &toot, "mastodon", How::Cavage)
        .await?;
    assert_eq!(status, 202, "{body}");
    let post = fedi.fixture("gotosocial-create-note.json", "gotosocial", &alice, 8)?;
    let (status, body) = fedi
        .post(
            &node.url(&inbox_path("alice")),
            &post,
            "gotosocial",
            How::Rfc9421,
        )
        .await?;
    assert_eq!(status, 202, "{body}");

    let feed = node
        .get_ok(&format!("/projections/feed?actor={alice}"), Some(&token))
        .await?;
    let shown: Vec<&Value> = feed["items"]
        .as_array()
        .context("items")?
        .iter()
        .map(|i| &i["activity"])
        .collect();
    for sent in [&toot, &post] {
        let found = shown
            .iter()
            .find(|a| a["id"] == sent["id"])
            .with_context(|| format!("{} in alice's feed: {feed}", sent["id"]))?;
        assert_eq!(found["object"]["content"], sent["object"]["content"]);
        assert_eq!(found["object"]["tag"], sent["object"]["tag"]);
    }
    let items = inbox_items(&node, "alice", &token).await?;
    for sent in [&toot, &post] {
        assert!(items.iter().any(|i| i["id"] == sent["id"]), "{items:?}");
    }

    // Mastodon deletes its toot: the feed shows a Tombstone. GoToSocial
    // edits its post: the feed shows the edit. Each where the post was.
    let delete = fedi.fixture("mastodon-delete-note.json", "mastodon", &alice, 7)?;
    let (status, body) = fedi
        .post(&node.url("/inbox"), &delete, "mastodon", How::Cavage)
        .await?;
    assert_eq!(status, 202, "{body}");
    let edit = fedi.fixture("gotosocial-update-note.json", "gotosocial", &alice, 8)?;
    let (status, body) = fedi
        .post(
            &node.url(&inbox_path("alice")),
            &edit,
            "gotosocial",
            How::Cavage,
        )
        .await?;
    assert_eq!(status, 202, "{body}");
    let feed = node
        .get_ok(&format!("/projections/feed?actor={alice}"), Some(&token))
        .await?;
    let items = feed["items"].as_array().context("items")?;
    let shown = |id: &Value| {
        items
            .iter()
            .find(|i| i["activity"]["id"] == *id)
            .map(|i| i["activity"]["object"].clone())
    };
    assert_eq!(
        shown(&toot["id"]),
        Some(json!({"id": toot["object"]["id"], "type": "Tombstone"})),
        "{feed}"
    );
    assert_eq!(
        shown(&post["id"]).map(|o| o["content"].clone()),
        Some(json!("<p>a post from GoToSocial, edited</p>")),
        "{feed}"
    );
    assert!(
        !items
            .iter()
            .any(|i| matches!(i["activity"]["type"].as_str(), Some("Delete" | "Update"))),
        "a Delete or Update is no entry of its own: {feed}"
    );

    // A Like of alice's note counts with the likes of Endorse; a boost of
    // it by URL is accepted.
    let note = node
        .publish_ok(
            &token,
            &json!({"type": "Create", "object": {"type": "Note", "content": "like me"}, "to": [weft_core::model::PUBLIC]}),
        )
        .await?;
    let note_url = note["id"].as_str().context("id")?;
    let like = fedi.fixture_about("mastodon-like.json", "mastodon", &alice, 10, note_url)?;
    let (status, body) = fedi
        .post(
            &node.url(&inbox_path("alice")),
            &like,
            "mastodon",
            How::Cavage,
        )
        .await?;
    assert_eq!(status, 202, "{body}");
    let cid = weft_core::model::cid::internal(note_url);
    let counts = node
        .get_ok(&format!("/projections/endorsements/counts?id={cid}"), None)
        .await?;
    assert_eq!(counts["like"], 1, "{counts}");
    let boost = fedi.fixture_about("mastodon-announce.json", "mastodon", &alice, 11, note_url)?;
    let (status, body) = fedi
        .post(
            &node.url(&inbox_path("alice")),
            &boost,
            "mastodon",
            How::Cavage,
        )
        .await?;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("accepted")),
        "{body}"
    );

    // A Delete by another server of a post that is not its own is refused.
    fedi.actor("mallory", false)?;
    let mut forged = fedi.fixture("mastodon-delete-note.json", "mallory", &alice, 12)?;
    forged["object"]["id"] = post["object"]["id"].clone();
    // Addressed to alice, so that it reaches the Delete verb (she follows
    // neither sender).
    forged["cc"] = json!([alice]);
    let (status, _) = fedi
        .post(
            &node.url(&inbox_path("alice")),
            &forged,
            "mallory",
            How::Cavage,
        )
        .await?;
    assert_eq!(status, 202, "same origin: the stand-in hosts both");
    let other = Fedi::start().await?;
    other.actor("eve", false)?;
    let mut forged = other.fixture("mastodon-delete-note.json", "eve", &alice, 13)?;
    forged["object"]["id"] = post["object"]["id"].clone();
    forged["cc"] = json!([alice]);
    let (status, body) = other
        .post(&node.url(&inbox_path("alice")), &forged, "eve", How::Cavage)
        .await?;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("only its author"),
        "{body}"
    );

    // An Update of the actor: its document is fetched again from its URL.
    let gets = fedi.gets();
    let update = fedi.fixture("mastodon-update-person.json", "mastodon", &alice, 9)?;
    let (status, body) = fedi
        .post(
            &node.url(&inbox_path("alice")),
            &update,
            "mastodon",
            How::Cavage,
        )
        .await?;
    assert_eq!(status, 202, "{body}");
    assert!(fedi.gets() > gets, "the document was not fetched again");
    node.stop().await
}

/// Every way a sender can fail to prove itself is a 401 that says why,
/// and leaves the log, inboxes, jobs and projections exactly as before.
#[tokio::test]
async fn unproven_foreign_activities_are_refused_and_change_nothing() -> anyhow::Result<()> {
    let node = TestNode::start().await?;
    let (alice, _) = node.actor("alice").await?;
    let fedi = Fedi::start().await?;
    fedi.actor("mastodon", false)?;
    let other = Fedi::start().await?;
    other.actor("mallory", false)?;
    let url = node.url(&inbox_path("alice"));
    let before = node.snapshot()?;
    let cases: Vec<(How, &str)> = vec![
        (How::Unsigned, "not signed"),
        (How::UnlistedKey, "does not list the key"),
        (
            How::KeyOf(Box::new(other.clone()), "mallory".into()),
            "cannot speak for",
        ),
        (How::OldDate, "13 hours old"),
        (How::AlteredBody, "igest"),
    ];
    for (n, (how, says)) in cases.into_iter().enumerate() {
        let follow = fedi.fixture("mastodon-follow.json", "mastodon", &alice, 100 + n as u32)?;
        let (status, body) = fedi.post(&url, &follow, "mastodon", how.clone()).await?;
        assert_eq!(status, 401, "{how:?}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(says), "{how:?}: {detail}");
        assert!(node.snapshot()? == before, "{how:?} changed something");
    }
    node.stop().await
}

/// A sender whose key lives at an internal address is refused before any
/// connection when the node is not allowed to reach such addresses (422,
/// saying why); a key document that redirects, or is larger than
/// `max_fetch_bytes`, is refused too. Nothing is stored.
#[tokio::test]
async fn internal_addresses_redirects_and_oversized_documents_are_refused() -> anyhow::Result<()> {
    let guarded = TestNode::start_with(|c| c.federation.allow_private_addresses = false).await?;
    let (alice, _) = guarded.actor("alice").await?;
    let fedi = Fedi::start().await?;
    fedi.actor("mastodon", false)?;
    let before = guarded.snapshot()?;
    let follow = fedi.fixture("mastodon-follow.json", "mastodon", &alice, 1)?;
    let (status, body) = fedi
        .post(
            &guarded.url(&inbox_path("alice")),
            &follow,
            "mastodon",
            How::Cavage,
        )
        .await?;
    assert_eq!(status, 422, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("loopback") && detail.contains("allow_private_addresses"),
        "{detail}"
    );
    assert_eq!(fedi.gets(), 0, "the node connected to an internal address");
    assert!(guarded.snapshot()? == before, "a refusal changed the node");

    // Delivering there is refused too, and dead-lettered at once: no retry
    // can make the address reachable.
    let (_, token) = guarded.actor("bob").await?;
    let target = fedi.actor_url("mastodon");
    guarded
        .publish_ok(
            &token,
            &json!({"type": "Follow", "object": target, "to": [target]}),
        )
        .await?;
    let dead = eventually(20, "the dead letter", || async {
        let dead = guarded
            .get_ok("/admin/dead-letter", Some(&guarded.admin))
            .await?;
        Ok((dead["totalItems"] == 1).then_some(dead))
    })
    .await?;
    assert_eq!(dead["items"][0]["attempts"], 1, "{dead}");
    assert!(
        dead["items"][0]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("allow_private_addresses")),
        "{dead}"
    );
    assert_eq!(fedi.gets(), 0, "the node connected to an internal address");
    guarded.stop().await?;

    let node = TestNode::start_with(|c| c.federation.max_fetch_bytes = 64 * 1024).await?;
    let (alice, _) = node.actor("alice").await?;
    let before = node.snapshot()?;
    for (name, documents, says) in [
        ("redirected", Documents::Redirect, "redirect"),
        ("huge", Documents::Huge, "more than"),
    ] {
        fedi.actor(name, false)?;
        fedi.serve(documents);
        let follow = fedi.fixture("mastodon-follow.json", name, &alice, 2)?;
        let (status, body) = fedi
            .post(&node.url(&inbox_path("alice")), &follow, name, How::Cavage)
            .await?;
        assert_eq!(status, 401, "{documents:?}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(says), "{documents:?}: {detail}");
        assert!(node.snapshot()? == before, "{documents:?} changed the node");
        // A refused URL is not fetched again within a minute.
        let gets = fedi.gets();
        let (status, body) = fedi
            .post(&node.url(&inbox_path("alice")), &follow, name, How::Cavage)
            .await?;
        assert_ne!(status, 202, "{body}");
        assert_eq!(fedi.gets(), gets, "{documents:?}: fetched again at once");
        assert!(node.snapshot()? == before, "{documents:?} changed the node");
    }
    node.stop().await
}
