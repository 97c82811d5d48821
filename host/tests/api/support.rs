//! A real node for tests: a temp data folder, a real redb file, the real
//! router on a loopback socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use weft::cli::node::{DataDir, Node, OpenError};
use weft::config::Config;
use weft_core::identity::IdentityError;
use weft_core::identity::actor::{keys_from_document, verify_with_history};
use weft_core::model::Signed;
use weft_kernel::Kernel;

/// A running node and what a test needs to talk to it.
pub struct TestNode {
    pub base: String,
    pub admin: String,
    pub kernel: Arc<Kernel>,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestNode {
    /// Starts a fresh node on 127.0.0.1 with an ephemeral port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// Starts a fresh node whose configuration `edit` changes first.
    pub async fn start_with(edit: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let data = DataDir::new(dir.path().join("data"));
        let mut config = config(addr);
        edit(&mut config);
        let (node, admin) = Node::init(&data, config).await?;
        Ok(Self::serve(node, listener, admin, dir))
    }

    fn serve(
        node: Node,
        listener: tokio::net::TcpListener,
        admin: String,
        dir: tempfile::TempDir,
    ) -> Self {
        let addr = node.config.listen;
        let kernel = node.kernel.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            node.serve(listener, async {
                let _ = stopped.await;
            })
            .await
        });
        Self {
            base: format!("http://{addr}"),
            admin,
            kernel,
            http: {
                weft_federation::install_crypto();
                reqwest::Client::builder()
                    .pool_idle_timeout(weft_federation::fetch::POOL_IDLE)
                    .build()
                    .expect("an HTTP client")
            },
            dir,
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The node's data folder.
    pub fn data(&self) -> DataDir {
        DataDir::new(self.dir.path().join("data"))
    }

    /// Stops the node cleanly and opens the same data folder again, served
    /// on the same address (actor ids contain it).
    pub async fn restart(mut self) -> anyhow::Result<Self> {
        self.shutdown().await?;
        let Self {
            admin,
            kernel,
            dir,
            addr,
            ..
        } = self;
        drop(kernel);
        let data = DataDir::new(dir.path().join("data"));
        ensure!(
            data.admin_token()? == admin,
            "admin.token changed across the restart"
        );
        // The database stays locked until the last handle of the old kernel
        // is gone, and the port may linger briefly: retry both for a while.
        let mut attempts = 0;
        let node = loop {
            match Node::open(&data, config(addr)) {
                Ok(node) => break node,
                Err(OpenError::Running) if attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e).context("reopening the node"),
            }
        };
        let mut attempts = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(_) if attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("binding {addr} again")),
            }
        };
        Ok(Self::serve(node, listener, admin, dir))
    }

    /// Creates an actor through the admin API; returns (id, token).
    pub async fn actor(&self, name: &str) -> anyhow::Result<(String, String)> {
        let response = self
            .http
            .post(format!("{}/actors", self.base))
            .bearer_auth(&self.admin)
            .json(&json!({"name": name}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 201,
            "creating {name}: {}",
            response.status()
        );
        let body: Value = response.json().await?;
        Ok((
            body["id"].as_str().context("id")?.to_owned(),
            body["token"].as_str().context("token")?.to_owned(),
        ))
    }

    /// Publishes a draft with `token`; returns (status, body).
    pub async fn publish(&self, token: &str, draft: &Value) -> anyhow::Result<(u16, Value)> {
        self.api().publish(token, draft).await
    }

    /// Publishes a draft that must be accepted; returns the signed activity.
    pub async fn publish_ok(&self, token: &str, draft: &Value) -> anyhow::Result<Value> {
        let (status, body) = self.publish(token, draft).await?;
        ensure!(status == 201, "publishing {draft}: {status} {body}");
        Ok(body)
    }

    /// GET a path, optionally with a token; returns (status, body).
    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<(u16, Value)> {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// GET a path that must answer 200; returns the body.
    pub async fn get_ok(&self, path: &str, token: Option<&str>) -> anyhow::Result<Value> {
        let (status, body) = self.get(path, token).await?;
        ensure!(status == 200, "GET {path}: {status} {body}");
        Ok(body)
    }

    /// The actor document of `name`.
    pub async fn doc(&self, name: &str) -> anyhow::Result<Value> {
        self.get_ok(&format!("/actors/{name}"), None).await
    }

    /// A full URL for `path`; absolute URLs (such as `next` links) pass through.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// A cheap, cloneable handle for publishing from spawned tasks.
    pub fn api(&self) -> Api {
        Api {
            http: self.http.clone(),
            base: self.base.clone(),
        }
    }

    /// Sends any request and returns what came back, whatever the status.
    pub async fn send(&self, req: Req) -> anyhow::Result<Reply> {
        let mut request = self.http.request(req.method.clone(), self.url(&req.path));
        match &req.auth {
            Auth::None => {}
            Auth::Bearer(token) => request = request.bearer_auth(token),
            Auth::Header(value) => request = request.header("authorization", value),
        }
        if let Some(body) = req.body {
            let content_type = req.content_type.as_deref().unwrap_or("application/json");
            request = request.header("content-type", content_type).body(body);
        }
        let response = request.send().await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type");
        let location = header("location");
        let www_authenticate = header("www-authenticate");
        let retry_after = header("retry-after");
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok(Reply {
            status,
            content_type,
            location,
            www_authenticate,
            retry_after,
            text,
        })
    }

    /// Sends a request that must be refused with `status`: the answer must
    /// be a problem document, and the node's whole state (every log, tip,
    /// sequence and actor, and the key store) must be byte for byte what it
    /// was before. Returns the problem document.
    pub async fn assert_rejected(&self, req: Req, status: u16) -> anyhow::Result<Value> {
        let what = format!("{} {}", req.method, req.path);
        let before = self.snapshot()?;
        let keys_before = std::fs::read(self.data().keys())?;
        let reply = self.send(req).await?;
        let problem = assert_problem(&reply, status).with_context(|| what.clone())?;
        let after = self.snapshot()?;
        ensure!(
            before == after,
            "{what} was refused with {status} but changed the node:\n--- before\n{before}\n--- after\n{after}"
        );
        ensure!(
            keys_before == std::fs::read(self.data().keys())?,
            "{what} was refused with {status} but changed the key store"
        );
        Ok(problem)
    }

    /// Every activity of `actor_id`'s log, oldest first, straight from the
    /// store (checking that the log index and the records agree).
    pub fn log(&self, actor_id: &str) -> anyhow::Result<Vec<Value>> {
        let reader = self.kernel.store().read()?;
        let mut out = Vec::new();
        for (seq, id) in reader.log_range(actor_id, 1, u64::MAX)? {
            let record = reader.activity(&id)?.context("record of a log entry")?;
            ensure!(record.seq == seq && record.actor == actor_id);
            let value: Value = serde_json::from_str(&record.json)?;
            ensure!(
                id_of(&value)? == id,
                "log entry {seq} is {id}, but its record has id {}",
                value["id"]
            );
            out.push(value);
        }
        Ok(out)
    }

    /// Follows `next` links from `path` to the end; returns every item seen.
    pub async fn walk(&self, path: &str, token: Option<&str>) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut next = Some(path.to_owned());
        let mut pages = 0;
        while let Some(path) = next.take() {
            pages += 1;
            ensure!(pages <= 1000, "the `next` links do not end");
            let page = self.get_ok(&path, token).await?;
            ensure!(page["type"] == "OrderedCollectionPage", "{page}");
            let page_items = page["orderedItems"].as_array().context("orderedItems")?;
            items.extend(page_items.iter().cloned());
            next = page["next"].as_str().map(str::to_owned);
        }
        Ok(items)
    }

    /// Everything the node holds — every actor's state and whole log — as
    /// one string, to check that a rejected request changed nothing.
    pub fn snapshot(&self) -> anyhow::Result<String> {
        let reader = self.kernel.store().read()?;
        let mut out = String::new();
        for name in reader.local_names()? {
            let actor = reader.actor_by_name(&name)?.context("actor")?;
            out.push_str(&format!("{actor:?}\n"));
            for (seq, id) in reader.log_range(&actor.id, 1, u64::MAX)? {
                let record = reader.activity(&id)?.context("record")?;
                out.push_str(&format!("{seq} {id} {record:?}\n"));
            }
            out.push_str(&format!(
                "{:?}\n",
                reader.public_range(&actor.id, 1, u64::MAX)?
            ));
            for record in reader.inbox_range(&actor.id, 1, u64::MAX)? {
                out.push_str(&format!("inbox {} {}\n", actor.id, record.id));
            }
        }
        for job in reader.jobs()? {
            out.push_str(&format!("job {job:?}\n"));
        }
        let txn = self.kernel.store().begin_read()?;
        let kv = txn.open_table(weft_store::tables::PROJECTION_STATE)?;
        for entry in redb::ReadableTable::iter(&kv)? {
            let (k, v) = entry?;
            let (projection, key) =
                weft_store::tables::split_state_key(k.value()).context("a projection state key")?;
            out.push_str(&format!("kv {projection} {key} = {}\n", v.value()));
        }
        Ok(out)
    }

    async fn shutdown(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }

    /// Stops serving and closes the kernel.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown().await
    }

    /// Stops the node and hands back its temp folder, so the data outlives
    /// the node.
    #[allow(
        dead_code,
        reason = "used by the modules test crate, which shares this harness"
    )]
    pub async fn stop_keeping_data(mut self) -> anyhow::Result<tempfile::TempDir> {
        self.shutdown().await?;
        drop(self.kernel);
        Ok(self.dir)
    }
}

fn config(addr: SocketAddr) -> Config {
    Config {
        listen: addr,
        module_cache: Some(shared_module_cache()),
        // A compressed delivery schedule, so retries and dead letters
        // happen within a test.
        federation: weft_federation::Settings {
            retry: vec!["300ms".into(), "600ms".into()],
            jitter_percent: 0,
            // Every node and peer of a test is on loopback.
            allow_private_addresses: true,
            ..Default::default()
        },
        ..Config::default()
    }
}

/// Polls `check` until it answers `Some`, for at most `seconds`.
pub async fn eventually<T, F, Fut>(seconds: u64, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "timed out after {seconds} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One compiled-module cache for every test node, so the genesis bundle is
/// compiled once per test run rather than once per node. Entries are keyed
/// by artifact id and engine, so sharing is safe.
pub fn shared_module_cache() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("weft-module-cache")
}

/// A handle on a node's API that spawned tasks can own.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// Publishes a draft with `token`; returns (status, body).
    pub async fn publish(&self, token: &str, draft: &Value) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(format!("{}/activity", self.base))
            .bearer_auth(token)
            .json(draft)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }
}

/// How a request authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Bearer(String),
    /// A raw `Authorization` header value.
    Header(String),
}

/// A request for [`TestNode::send`].
#[derive(Debug, Clone)]
pub struct Req {
    pub method: reqwest::Method,
    pub path: String,
    pub auth: Auth,
    pub body: Option<Vec<u8>>,
    /// The body's `Content-Type` (default `application/json`).
    pub content_type: Option<String>,
}

impl Req {
    pub fn new(method: reqwest::Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            auth: Auth::None,
            body: None,
            content_type: None,
        }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Self::new(reqwest::Method::GET, path)
    }

    pub fn post(path: impl Into<String>) -> Self {
        Self::new(reqwest::Method::POST, path)
    }

    /// `POST /activity` of `draft` with `token`.
    pub fn publish(token: &str, draft: &Value) -> Self {
        Self::post("/activity").bearer(token).json(draft)
    }

    pub fn bearer(mut self, token: &str) -> Self {
        self.auth = Auth::Bearer(token.to_owned());
        self
    }

    pub fn authorization(mut self, header: &str) -> Self {
        self.auth = Auth::Header(header.to_owned());
        self
    }

    pub fn json(mut self, value: &Value) -> Self {
        self.body = Some(value.to_string().into_bytes());
        self
    }

    pub fn raw(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }
}

/// A response as the tests look at it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub www_authenticate: Option<String>,
    pub retry_after: Option<String>,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.text).with_context(|| format!("not JSON: {}", self.text))
    }
}

/// Checks that `reply` is an RFC 9457 problem with `status` and a detail a
/// person can act on; returns the problem document.
pub fn assert_problem(reply: &Reply, status: u16) -> anyhow::Result<Value> {
    ensure!(
        reply.status == status,
        "expected {status}, got {}: {}",
        reply.status,
        reply.text
    );
    ensure!(
        reply
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/problem+json")),
        "a {status} must be application/problem+json, not {:?}",
        reply.content_type
    );
    let problem = reply.json()?;
    ensure!(problem["status"] == status, "{problem}");
    ensure!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty()),
        "a problem needs a detail: {problem}"
    );
    Ok(problem)
}

/// Checks that `log` is a well-formed log of `actor`: seqs 1..=n, seq 1 its
/// `Create` with `prev: null`, each `prev` the content id of the activity
/// before, every id the URL `{base}/activities/{cid}` of the recomputed
/// content id.
pub fn assert_chain(log: &[Value], actor: &str) -> anyhow::Result<()> {
    ensure!(!log.is_empty(), "{actor} has an empty log");
    ensure!(
        log[0]["type"] == "Create",
        "seq 1 is not a Create: {}",
        log[0]
    );
    ensure!(
        log[0]["object"]["id"] == actor,
        "seq 1 creates another actor"
    );
    for (i, activity) in log.iter().enumerate() {
        let seq = i as u64 + 1;
        ensure!(activity["actor"] == actor, "{activity}");
        ensure!(activity["seq"] == seq, "expected seq {seq}: {activity}");
        let expected_prev = if i == 0 {
            Value::Null
        } else {
            Value::String(id_of(&log[i - 1])?)
        };
        ensure!(
            activity["prev"] == expected_prev,
            "seq {seq} of {actor} has prev {} but seq {} is {expected_prev}",
            activity["prev"],
            seq - 1
        );
        let signed = Signed::parse(activity.clone()).with_context(|| format!("seq {seq}"))?;
        ensure!(
            activity["id"] == url_id(actor, &signed.id),
            "seq {seq} of {actor} has id {} for content id {}",
            activity["id"],
            signed.id
        );
    }
    Ok(())
}

/// Verifies `activity` as a client would: recompute its id, then check its
/// signature against the key history in the actor document `doc`.
pub fn verify(doc: &Value, activity: &Value) -> anyhow::Result<()> {
    let signed = Signed::parse(activity.clone()).context("not a well-formed signed activity")?;
    let keys = keys_from_document(doc).context("the actor document's keys")?;
    verify_with_history(&keys, &signed).context("does not verify")?;
    Ok(())
}

/// Checks the actor document `doc` of `actor` offers ActivityPub peers its
/// RSA-2048 key for HTTP signatures as `publicKey`: `{actor}#main-key`,
/// owned by the actor, an SPKI `PUBLIC KEY` PEM in 64-character lines.
pub fn assert_http_key(doc: &Value, actor: &str) -> anyhow::Result<()> {
    let key = &doc["publicKey"];
    ensure!(key["id"] == format!("{actor}#main-key"), "{key}");
    ensure!(key["owner"] == actor, "{key}");
    let pem = key["publicKeyPem"].as_str().context("publicKeyPem")?;
    let body = pem
        .strip_prefix("-----BEGIN PUBLIC KEY-----\n")
        .and_then(|p| p.strip_suffix("-----END PUBLIC KEY-----\n"))
        .with_context(|| format!("not a PUBLIC KEY PEM: {pem:?}"))?;
    ensure!(
        body.lines().all(|l| l.len() <= 64) && body.ends_with('\n'),
        "{pem:?}"
    );
    let der = data_encoding::BASE64.decode(body.replace('\n', "").as_bytes())?;
    // SubjectPublicKeyInfo of rsaEncryption with a 2048-bit modulus.
    const RSA_2048_SPKI: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA";
    ensure!(
        der.len() == 294 && body.starts_with(RSA_2048_SPKI),
        "not an RSA-2048 SubjectPublicKeyInfo: {pem:?}"
    );
    Ok(())
}

/// Like [`verify`], but returns the identity error itself.
pub fn verify_err(doc: &Value, activity: &Value) -> anyhow::Result<Result<(), IdentityError>> {
    let signed = Signed::parse(activity.clone())?;
    let keys = keys_from_document(doc)?;
    Ok(verify_with_history(&keys, &signed))
}

/// The content id of an activity (its `id` is `…/activities/{cid}` on
/// the wire).
pub fn id_of(activity: &Value) -> anyhow::Result<String> {
    let id = activity["id"].as_str().context("id")?;
    Ok(weft_core::model::cid::internal(id).to_owned())
}

/// The URL id `{base}/activities/{cid}` a node gives the activity `cid`
/// of `actor` (`{base}/actors/{name}`) on the wire.
pub fn url_id(actor: &str, cid: &str) -> String {
    let (base, _) = actor
        .rsplit_once("/actors/")
        .expect("a local actor id is {base}/actors/{name}");
    format!("{base}/activities/{cid}")
}

/// A public Note draft.
pub fn note(content: &str) -> Value {
    json!({"type": "Create", "object": {"type": "Note", "content": content}, "to": [weft_core::model::PUBLIC]})
}

/// A Note draft addressed to nobody in particular: only its author (and the
/// admin) may read it.
pub fn private_note(content: &str) -> Value {
    json!({"type": "Create", "object": {"type": "Note", "content": content}})
}
