//! A stand-in weft peer for federation tests: a real HTTP server on a
//! loopback port that serves actor documents for actors whose secret keys
//! the test holds ([`crate::sign::TestActor`]), signs activities as them,
//! and records what is delivered to their inboxes, answering as each test
//! tells it to (202, 410, 500, 503 with Retry-After). It can also publish
//! verbs the way a weft node does: a registry view, signed
//! `DefineActivity`s and artifacts by id. An actor can rotate its key, and
//! the actor documents can be made unavailable. Each actor has a public
//! outbox, paged as a weft node pages it (`?page=N`, `?since=<id>&limit=N`),
//! holding its `Create` and what the test [`FakePeer::publish`]es; a served
//! copy can be altered after signing ([`FakePeer::tamper`]), as a dishonest
//! peer would serve it.
//!
//! Not a weft node (no store, no verification of what it is sent, no
//! private view of an outbox) and not an ActivityPub server: the fediverse
//! tests have their own stand-in, with RSA keys and HTTP signatures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use weft_core::model::PUBLIC;

use crate::sign::TestActor;

/// How an actor's inbox on the fake peer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Gone,
    Fail,
    /// 503 with `Retry-After: n` seconds.
    RetryAfter(u64),
}

/// One actor of the fake peer.
#[derive(Debug)]
struct Actor {
    log: TestActor,
    answer: Answer,
}

#[derive(Debug, Default)]
struct Inner {
    actors: HashMap<String, Actor>,
    /// (actor name, activity id, when) for every POST to an inbox.
    received: Vec<(String, String, Instant)>,
    /// Activities served at `/activities/{id}`.
    activities: HashMap<String, Value>,
    /// Bytes served at `/artifacts/{id}`.
    artifacts: HashMap<String, Vec<u8>>,
    /// Verbs listed at `/projections/define-registry`.
    verbs: Vec<Value>,
    /// Actor documents answer 503 while this is set.
    documents_down: bool,
    /// Requests for actor documents, answered or not.
    document_requests: usize,
    /// Each actor's public outbox as served, oldest first.
    outboxes: HashMap<String, Vec<Value>>,
    /// Requests for outboxes and their pages.
    outbox_requests: usize,
    /// The seq of every activity the peer signed, by content id, so an
    /// outbox page can start after one that is not public.
    seqs: HashMap<String, u64>,
}

/// The running fake peer.
#[derive(Debug, Clone)]
pub struct FakePeer {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakePeer {
    /// Starts serving on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .route("/actors/{name}", axum::routing::get(document))
            .route("/actors/{name}/inbox", axum::routing::post(inbox))
            .route("/actors/{name}/outbox", axum::routing::get(outbox))
            .route("/actors/{name}/head", axum::routing::get(head))
            .route("/projections/define-registry", axum::routing::get(registry))
            .route("/activities/{id}", axum::routing::get(activity))
            .route("/artifacts/{id}", axum::routing::get(artifact))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { base, inner })
    }

    /// Creates an actor: its key and its signed `Create` at seq 1. Returns
    /// its id.
    pub fn actor(&self, name: &str) -> anyhow::Result<String> {
        let id = format!("{}/actors/{name}", self.base);
        let log = TestActor::create(&id, name)?;
        let mut inner = self.inner.lock().expect("lock");
        inner
            .outboxes
            .insert(name.to_owned(), vec![log.create_activity().clone()]);
        inner.actors.insert(
            name.to_owned(),
            Actor {
                log,
                answer: Answer::Accept,
            },
        );
        Ok(id)
    }

    /// Signs `draft` as the next activity of `name`'s log and adds it to
    /// the actor's public outbox (and `/activities/{id}`), without sending
    /// it anywhere: what a peer's follower finds when it syncs.
    pub fn publish(&self, name: &str, draft: Value) -> anyhow::Result<Value> {
        let signed = self.sign(name, draft)?;
        let mut inner = self.inner.lock().expect("lock");
        inner
            .outboxes
            .entry(name.to_owned())
            .or_default()
            .push(signed.clone());
        inner
            .activities
            .insert(crate::activity::cid(&signed), signed.clone());
        Ok(signed)
    }

    /// Alters the copy of activity `id` (a content id or URL) that `name`'s
    /// outbox and `/activities/{id}` serve, after it was signed: its bytes
    /// no longer hash to its id nor match its proof.
    pub fn tamper(
        &self,
        name: &str,
        id: &str,
        alter: impl FnOnce(&mut Value),
    ) -> anyhow::Result<()> {
        let cid = crate::activity::cid_of(id).to_owned();
        let mut inner = self.inner.lock().expect("lock");
        let served = inner
            .outboxes
            .get_mut(name)
            .and_then(|items| items.iter_mut().find(|a| crate::activity::cid(a) == cid))
            .context("no such activity in the outbox")?;
        alter(served);
        let altered = served.clone();
        inner.activities.insert(cid, altered);
        Ok(())
    }

    /// How many times an outbox or one of its pages was asked for.
    pub fn outbox_requests(&self) -> usize {
        self.inner.lock().expect("lock").outbox_requests
    }

    /// Signs `draft` as the next activity of `name`'s log.
    pub fn sign(&self, name: &str, draft: Value) -> anyhow::Result<Value> {
        let signed = self.with_actor(name, |actor| actor.log.sign(draft))?;
        let seq = signed["seq"].as_u64().unwrap_or_default();
        self.inner
            .lock()
            .expect("lock")
            .seqs
            .insert(crate::activity::cid(&signed), seq);
        Ok(signed)
    }

    /// Signs `draft` at the next position without advancing the log, so
    /// two calls make two different activities at one seq (a fork).
    pub fn sign_detached(&self, name: &str, draft: Value) -> anyhow::Result<Value> {
        self.with_actor(name, |actor| actor.log.sign_detached(draft))
    }

    /// `name` defines verb `verb` with the component `bytes`, as a weft
    /// node would publish it; the artifact URL serves `served` instead when
    /// given (a tampered artifact). Returns the definition.
    pub fn define_verb(
        &self,
        name: &str,
        verb: &str,
        bytes: &[u8],
        served: Option<Vec<u8>>,
    ) -> anyhow::Result<Value> {
        let module = weft_core::model::cid::artifact_id(bytes);
        let define = self.sign(
            name,
            json!({
                "type": "DefineActivity", "name": verb, "module": module,
                "wit": "weft:module@0.1.0", "language": "rust",
                "to": [PUBLIC],
            }),
        )?;
        let id = define["id"].as_str().context("id")?.to_owned();
        let mut inner = self.inner.lock().expect("lock");
        inner.activities.insert(id.clone(), define.clone());
        inner
            .artifacts
            .insert(module.clone(), served.unwrap_or_else(|| bytes.to_vec()));
        inner
            .verbs
            .push(json!({"name": verb, "version": 1, "module": module, "definedBy": id}));
        Ok(define)
    }

    /// Rotates `name`'s key: an Update signed by the current key adds a new
    /// one and supersedes the current one, which is returned (as whoever
    /// stole it would hold it). The rotation is not sent anywhere.
    pub fn rotate(&self, name: &str) -> anyhow::Result<SigningKey> {
        self.with_actor(name, |actor| actor.log.rotate())
    }

    /// Signs `draft` at `name`'s next position with a retired key (its
    /// first), without advancing the log: what a thief of that key makes.
    pub fn sign_with_retired(
        &self,
        name: &str,
        draft: Value,
        retired: &SigningKey,
    ) -> anyhow::Result<Value> {
        self.with_actor(name, |actor| actor.log.sign_with_retired(draft, retired))
    }

    /// Makes every actor document answer 503 (`true`) or be served again.
    pub fn documents_unavailable(&self, down: bool) {
        self.inner.lock().expect("lock").documents_down = down;
    }

    /// How many times an actor document was asked for.
    pub fn document_requests(&self) -> usize {
        self.inner.lock().expect("lock").document_requests
    }

    /// Runs `f` on actor `name`, under the peer's lock.
    fn with_actor<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut Actor) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut inner = self.inner.lock().expect("lock");
        f(inner.actors.get_mut(name).context("no such fake actor")?)
    }

    /// Makes `name`'s inbox answer `answer` from now on.
    pub fn answer(&self, name: &str, answer: Answer) {
        if let Some(actor) = self.inner.lock().expect("lock").actors.get_mut(name) {
            actor.answer = answer;
        }
    }

    /// The activity ids delivered to `name`'s inbox, with when.
    pub fn received(&self, name: &str) -> Vec<(String, Instant)> {
        self.inner
            .lock()
            .expect("lock")
            .received
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, id, at)| (id.clone(), *at))
            .collect()
    }
}

async fn document(State(inner): State<Arc<Mutex<Inner>>>, Path(name): Path<String>) -> Response {
    let mut inner = inner.lock().expect("lock");
    inner.document_requests += 1;
    if inner.documents_down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match inner.actors.get(&name) {
        Some(actor) => (
            [("content-type", "application/activity+json")],
            weft_core::wire::actor::document(actor.log.state(), None).to_string(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /actors/{name}/head`: the newest activity of the public outbox, as
/// a node serves it (`weft_core::wire::sync::Head`), tampered or not.
async fn head(State(inner): State<Arc<Mutex<Inner>>>, Path(name): Path<String>) -> Response {
    let inner = inner.lock().expect("lock");
    let Some(actor) = inner.actors.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let id = actor.log.state().id.clone();
    let items = inner.outboxes.get(&name).cloned().unwrap_or_default();
    let newest = items.last();
    let head = weft_core::wire::sync::Head {
        actor: id,
        seq: newest.and_then(|a| a["seq"].as_u64()).unwrap_or(0),
        id: newest.and_then(|a| a["id"].as_str().map(str::to_owned)),
        total_items: items.len() as u64,
    };
    (
        [("content-type", weft_core::wire::ACTIVITY_JSON)],
        serde_json::to_string(&head).unwrap_or_default(),
    )
        .into_response()
}

/// `GET /actors/{name}/outbox`: the collection, `?page=N` (page 1 the
/// newest) or `?since=<id>&limit=N` (oldest first after `id`), shaped by
/// `weft_core::wire::collection` as a node shapes them.
async fn outbox(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(name): Path<String>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    use weft_core::wire::collection;
    let mut inner = inner.lock().expect("lock");
    inner.outbox_requests += 1;
    let base = format!("{}/actors/{name}/outbox", peer_base(&inner, &name));
    let Some(items) = inner.outboxes.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let total = items.len() as u64;
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<u64>().ok())
        .unwrap_or(20)
        .clamp(1, 200);
    let body = if let Some(page) = query.get("page").and_then(|p| p.parse::<u64>().ok()) {
        let window = collection::window(total, page, limit);
        let served: Vec<Value> = window
            .map(|(oldest, newest)| {
                items[(oldest - 1) as usize..newest as usize]
                    .iter()
                    .rev()
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let pages = collection::page_count(total, limit);
        collection::Page {
            id: collection::page_url(&base, page, Some(limit)),
            part_of: &base,
            total: Some(total),
            items: served,
            next: (page < pages).then(|| collection::page_url(&base, page + 1, Some(limit))),
            prev: (page > 1).then(|| collection::page_url(&base, page - 1, Some(limit))),
        }
        .to_json()
    } else if query.contains_key("since") || query.contains_key("limit") {
        let since = query.get("since").map(String::as_str).unwrap_or_default();
        // After the activity `since` names, public or not, as a node
        // pages its public view.
        let after_seq = if since.is_empty() {
            0
        } else {
            let cid = crate::activity::cid_of(since);
            let create = items
                .first()
                .filter(|a| crate::activity::cid(a) == cid)
                .map(|_| 1);
            match create.or_else(|| inner.seqs.get(cid).copied()) {
                Some(seq) => seq,
                None => return StatusCode::BAD_REQUEST.into_response(),
            }
        };
        let from = items
            .iter()
            .position(|a| a["seq"].as_u64().unwrap_or_default() > after_seq)
            .unwrap_or(items.len());
        let to = (from + limit as usize).min(items.len());
        let served = items[from..to].to_vec();
        let next = (to < items.len())
            .then(|| served.last().map(crate::activity::cid))
            .flatten()
            .map(|last| collection::since_url(&base, Some(&last), limit));
        collection::Page {
            id: collection::since_url(&base, Some(since), limit),
            part_of: &base,
            total: None,
            items: served,
            next,
            prev: None,
        }
        .to_json()
    } else {
        let pages = collection::page_count(total, 20);
        collection::paged(
            &base,
            total,
            collection::page_url(&base, 1, None),
            collection::page_url(&base, pages, None),
        )
    };
    (
        [("content-type", "application/activity+json")],
        body.to_string(),
    )
        .into_response()
}

/// The base URL actor `name`'s id starts with (`http://127.0.0.1:PORT`).
fn peer_base(inner: &Inner, name: &str) -> String {
    inner
        .actors
        .get(name)
        .and_then(|a| a.log.state().id.strip_suffix(&format!("/actors/{name}")))
        .unwrap_or_default()
        .to_owned()
}

async fn registry(State(inner): State<Arc<Mutex<Inner>>>) -> Response {
    let inner = inner.lock().expect("lock");
    axum::Json(json!({"verbs": inner.verbs, "projections": []})).into_response()
}

async fn activity(State(inner): State<Arc<Mutex<Inner>>>, Path(id): Path<String>) -> Response {
    match inner.lock().expect("lock").activities.get(&id) {
        Some(a) => axum::Json(a.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn artifact(State(inner): State<Arc<Mutex<Inner>>>, Path(id): Path<String>) -> Response {
    match inner.lock().expect("lock").artifacts.get(&id) {
        Some(bytes) => bytes.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn inbox(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(name): Path<String>,
    body: String,
) -> Response {
    let mut inner = inner.lock().expect("lock");
    let answer = inner.actors.get(&name).map(|a| a.answer);
    let id = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    inner.received.push((name, id, Instant::now()));
    match answer {
        None => StatusCode::NOT_FOUND.into_response(),
        Some(Answer::Accept) => StatusCode::ACCEPTED.into_response(),
        Some(Answer::Gone) => StatusCode::GONE.into_response(),
        Some(Answer::Fail) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Some(Answer::RetryAfter(s)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", s.to_string())],
        )
            .into_response(),
    }
}
