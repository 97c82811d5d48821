//! Stand-in peer origins for the federation benchmarks: an HTTP server on a
//! loopback port that serves actor documents for actors whose keys the
//! bench holds, signs activities as them, and counts what is delivered to
//! their inboxes. Load generation only; not a node.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use weft_core::wire::ACTIVITY_JSON;

use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ed25519_dalek::SigningKey;
use serde_json::{Map, Value};

use weft_core::identity::actor::{Signature, apply};
use weft_core::identity::{ActorKind, ActorState};
use weft_core::model::Signed;
use weft_core::wire::actor::NewActor;

/// One fake actor: its key and its log's state.
pub struct FakeActor {
    pub secret: SigningKey,
    pub state: ActorState,
}

impl FakeActor {
    /// Signs `draft` as the actor's next activity and advances its log.
    pub fn sign(&mut self, draft: Value) -> anyhow::Result<Signed> {
        let mut map: Map<String, Value> = match draft {
            Value::Object(map) => map,
            _ => anyhow::bail!("a draft is a JSON object"),
        };
        map.insert("actor".into(), self.state.id.clone().into());
        map.insert("seq".into(), (self.state.tip_seq + 1).into());
        map.insert("prev".into(), self.state.tip_id.clone().into());
        // Signed now, as a peer publishes: an origin's activities then
        // arrive about in the order of their `published`, as real traffic
        // does (one fixed time would key them at random in the set index).
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        map.insert("published".into(), now.to_string().into());
        let key_id = format!("{}#key-1", self.state.id);
        let signed = Signed::sign(map, &key_id, &self.secret)?;
        self.state = apply(Some(&self.state), &signed, Signature::Trusted)?;
        Ok(signed)
    }
}

/// A running origin with `actors` actors named `a0`, `a1`, …. Their
/// documents list one RSA key of the origin's (`{actor}#main-key`) for HTTP
/// signatures and the origin's shared inbox (`{base}/inbox`).
pub struct Origin {
    pub actors: Vec<FakeActor>,
    /// Deliveries received, by activity type.
    pub received: Arc<Counters>,
    /// The HTTP-signature key every actor of the origin lists.
    pub http_key: Arc<weft_core::identity::RsaKey>,
}

/// Counts of inbox deliveries.
#[derive(Debug, Default)]
pub struct Counters {
    pub accepts: AtomicU64,
    pub others: AtomicU64,
    /// POSTs to the shared inbox (any type).
    pub shared: AtomicU64,
}

struct Served {
    documents: HashMap<String, String>,
    counters: Arc<Counters>,
}

impl Origin {
    pub async fn start(actors: usize) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let http_key = Arc::new(weft_core::identity::RsaKey::generate()?);
        let pem = http_key.public_key_pem();
        let mut fakes = Vec::with_capacity(actors);
        let mut documents = HashMap::new();
        for i in 0..actors {
            let name = format!("a{i}");
            let fake = genesis(&base, &name)?;
            documents.insert(
                name,
                weft_core::wire::actor::document(&fake.state, Some(&pem)).to_string(),
            );
            fakes.push(fake);
        }
        let counters = Arc::new(Counters::default());
        let served = Arc::new(Served {
            documents,
            counters: counters.clone(),
        });
        let app = axum::Router::new()
            .route("/actors/{name}", axum::routing::get(document))
            .route("/actors/{name}/inbox", axum::routing::post(inbox))
            .route("/inbox", axum::routing::post(shared_inbox))
            .with_state(served);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            actors: fakes,
            received: counters,
            http_key,
        })
    }
}

async fn shared_inbox(State(served): State<Arc<Served>>) -> StatusCode {
    served.counters.shared.fetch_add(1, Ordering::Relaxed);
    StatusCode::ACCEPTED
}

pub(super) fn genesis(base: &str, name: &str) -> anyhow::Result<FakeActor> {
    let id = format!("{base}/actors/{name}");
    let secret = SigningKey::generate(&mut rand::rngs::OsRng);
    let key_id = format!("{id}#key-1");
    let map = NewActor {
        id: &id,
        kind: ActorKind::Person,
        username: name,
        name: None,
        key_id: &key_id,
        key: &secret.verifying_key(),
        published: "2026-11-21T00:00:00.000Z",
    }
    .create();
    let signed = Signed::sign(map, &key_id, &secret)?;
    let state = apply(None, &signed, Signature::Trusted).context("a fake actor's Create")?;
    Ok(FakeActor { secret, state })
}

async fn document(State(served): State<Arc<Served>>, Path(name): Path<String>) -> Response {
    match served.documents.get(&name) {
        Some(doc) => ([("content-type", ACTIVITY_JSON)], doc.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn inbox(State(served): State<Arc<Served>>, body: axum::body::Bytes) -> StatusCode {
    // A cheap look at the type: `"type":"Accept"` as the node serialises it.
    let accept = memchr_find(&body, br#""type":"Accept""#);
    let counter = if accept {
        &served.counters.accepts
    } else {
        &served.counters.others
    };
    counter.fetch_add(1, Ordering::Relaxed);
    StatusCode::ACCEPTED
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
