//! HTTP for tests: a `reqwest` client set up as the node's own outbound
//! client is (its crypto provider, its idle-connection timeout), a handle
//! on one node's API ([`Api`]: GET, publish, create actors, upload and
//! define modules, follow `next` links), any request and its reply as a
//! test looks at them ([`Req`], [`Reply`]), and the check that a refusal is
//! an RFC 9457 problem document ([`assert_problem`]).
//!
//! Not a node and not a peer: what serves the requests is each suite's
//! harness or [`crate::peer`]; signing activities is [`crate::sign`].

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use crate::fixtures::PUBLIC;

/// A client builder set up as the node's own client: the crypto provider
/// installed, idle connections dropped after the node's pool timeout.
pub fn client_builder() -> reqwest::ClientBuilder {
    weft_federation::install_crypto();
    reqwest::Client::builder().pool_idle_timeout(weft_federation::fetch::POOL_IDLE)
}

/// A client from [`client_builder`], as it is.
pub fn client() -> reqwest::Client {
    client_builder().build().expect("an HTTP client")
}

/// A handle on one node's API: a client and the node's base URL. Cheap to
/// clone, so spawned tasks can own one.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// The node at `base` (`http://127.0.0.1:PORT`), reached with `http`.
    pub fn new(http: reqwest::Client, base: impl Into<String>) -> Self {
        Self {
            http,
            base: base.into(),
        }
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A full URL for `path`; absolute URLs (such as `next` links) pass
    /// through.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// GET `path`, optionally with a bearer token; returns (status, body),
    /// the body `null` when it is not JSON.
    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<(u16, Value)> {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        status_and_json(request).await
    }

    /// GET `path`, which must answer 200; returns the body.
    pub async fn get_ok(&self, path: &str, token: Option<&str>) -> anyhow::Result<Value> {
        let (status, body) = self.get(path, token).await?;
        ensure!(status == 200, "GET {path}: {status} {body}");
        Ok(body)
    }

    /// POST `body` as JSON to `path` with a bearer token; returns (status,
    /// body).
    pub async fn post_json(
        &self,
        path: &str,
        token: &str,
        body: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        status_and_json(self.http.post(self.url(path)).bearer_auth(token).json(body)).await
    }

    /// `POST /activity` of `draft` with `token`; returns (status, body).
    pub async fn publish(&self, token: &str, draft: &Value) -> anyhow::Result<(u16, Value)> {
        self.post_json("/activity", token, draft).await
    }

    /// Publishes a draft that must be accepted (201); returns the signed
    /// activity.
    pub async fn publish_ok(&self, token: &str, draft: &Value) -> anyhow::Result<Value> {
        let (status, body) = self.publish(token, draft).await?;
        ensure!(status == 201, "publishing {draft}: {status} {body}");
        Ok(body)
    }

    /// Creates actor `name` with the admin token (`POST /actors`); returns
    /// (id, token).
    pub async fn create_actor(&self, admin: &str, name: &str) -> anyhow::Result<(String, String)> {
        let (status, body) = self
            .post_json("/actors", admin, &json!({"name": name}))
            .await?;
        ensure!(status == 201, "creating {name}: {status} {body}");
        Ok((
            body["id"].as_str().context("no id")?.to_owned(),
            body["token"].as_str().context("no token")?.to_owned(),
        ))
    }

    /// Uploads `bytes` as an artifact with the admin token; returns
    /// (status, body).
    pub async fn upload(&self, admin: &str, bytes: Vec<u8>) -> anyhow::Result<(u16, Value)> {
        status_and_json(
            self.http
                .post(self.url("/artifacts"))
                .bearer_auth(admin)
                .body(bytes),
        )
        .await
    }

    /// Uploads `bytes` and defines a module of them (`kind` is
    /// `DefineActivity` or `DefineProjection`) named `name` as the node's
    /// service actor: the status and body of the definition, or of the
    /// upload when that was refused.
    pub async fn define(
        &self,
        admin: &str,
        kind: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> anyhow::Result<(u16, Value)> {
        let (status, body) = self.upload(admin, bytes).await?;
        if status != 201 {
            return Ok((status, body));
        }
        let draft = json!({"type": kind, "name": name, "module": body["id"], "to": [PUBLIC]});
        self.post_json("/actors/node/outbox", admin, &draft).await
    }

    /// Follows `next` links from `path` to the end; returns every item
    /// seen, page by page.
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
}

/// Sends `request`; returns its status and its body as JSON (`null` when
/// it is not).
async fn status_and_json(request: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// How a request authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Bearer(String),
    /// A raw `Authorization` header value.
    Header(String),
}

/// A request for [`Api::send`].
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
        !detail(&problem).trim().is_empty(),
        "a problem needs a detail: {problem}"
    );
    Ok(problem)
}

/// The `detail` of a problem+json body (empty when it has none).
pub fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or_default()
}
