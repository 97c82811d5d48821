//! How a CLI command reaches a node: always through the node's HTTP API,
//! with the admin token, over one of two transports.
//!
//! - **HTTP** (reqwest): a node given by `--node URL --token T`, or the
//!   data folder's node while it runs (at its listen address, with the
//!   token in `admin.token`; over HTTPS when it serves TLS).
//! - **In-process**: the data folder's node while it is stopped. The CLI
//!   opens the folder and hands each request to the same router `weft run`
//!   serves ([`weft_http::router`]), without a socket, and without starting
//!   deliveries or backfills (they resume when the node runs).
//!
//! Either way a command is written once, against [`Client`].

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::http::{Method, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use super::node::{DataDir, Node, OpenError};
use crate::config::Config;

/// How long an HTTP request may take, except the long ones.
const TIMEOUT: Duration = Duration::from_secs(300);
/// How long a long request (a projection rebuild) may take over HTTP: the
/// node answers once the projection has caught up, which on a long log
/// under load takes a while.
const LONG: Duration = Duration::from_secs(24 * 3600);

/// Where a token given on the command line came from, for messages.
const GIVEN: &str = "the token given with --token (or WEFT_TOKEN)";

/// Which node the command line talks to: `--node URL --token T`, or else
/// the data folder's node.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The base URL of a node to reach over HTTP(S) (`--node`).
    pub node: Option<String>,
    /// The admin token to present (`--token`); by default the data
    /// folder's `admin.token`.
    pub token: Option<String>,
}

/// A node's API, reached with the admin token.
#[derive(Debug, Clone)]
pub struct Client {
    transport: Transport,
    token: String,
    /// Where the token came from ("the admin token in …"), for the
    /// message when the node refuses it.
    token_from: String,
}

#[derive(Debug, Clone)]
enum Transport {
    Http { http: reqwest::Client, base: String },
    InProcess(Arc<InProcess>),
}

/// A stopped node opened from its data folder, and its router.
#[derive(Debug)]
struct InProcess {
    router: axum::Router,
    node: Node,
    federation: Arc<weft_federation::Federation>,
}

/// A request body.
#[derive(Debug)]
pub enum Body {
    Empty,
    Json(Value),
    Bytes {
        content_type: &'static str,
        bytes: Vec<u8>,
    },
}

/// A successful answer: its text as the node sent it, and that text parsed.
#[derive(Debug, Clone)]
pub struct Answer {
    pub text: String,
    pub json: Value,
}

impl Client {
    /// The node `target` names: `--node` over HTTP(S); else the data
    /// folder's node, over HTTP when it is running and in-process when it
    /// is stopped.
    pub fn connect(data: &DataDir, target: &Target) -> anyhow::Result<Self> {
        if let Some(url) = &target.node {
            let token = target.token.clone().with_context(|| {
                format!("--node {url} needs the node's admin token: pass --token or set WEFT_TOKEN")
            })?;
            // Only to trust more certificate authorities, if there is one.
            let ca_file = data.config().ok().and_then(|c| c.federation.ca_file);
            return Self::for_url(url, &token, ca_file.as_deref());
        }
        let config = data.config()?;
        if !data.db().exists() {
            bail!("no node in {} (run `weft init`)", data.path.display());
        }
        let token = |data: &DataDir| -> anyhow::Result<(String, String)> {
            match &target.token {
                Some(token) => Ok((token.clone(), GIVEN.to_owned())),
                None => Ok((
                    data.admin_token()?,
                    format!("the admin token in {}", data.admin_token_file().display()),
                )),
            }
        };
        match Node::open(data, config.clone()) {
            Ok(node) => {
                if !node.kernel.is_initialised()? {
                    bail!(
                        "{} is not initialised (run `weft init`)",
                        data.path.display()
                    );
                }
                let (token, token_from) = token(data)?;
                Self::in_process(node, token, token_from)
            }
            Err(OpenError::Running) => {
                let (token, token_from) = token(data)?;
                // The address the running node recorded, not a configured
                // port something else may answer on.
                let mut config = config;
                if let Some(at) = data.serving_addr() {
                    config.listen = at;
                }
                let mut client = Self::for_node(&config, &token)?;
                client.token_from = token_from;
                Ok(client)
            }
            Err(OpenError::Other(e)) => Err(e),
        }
    }

    /// The running node whose configuration is `config`, at its listen
    /// address. A node that serves HTTPS is reached under its public name
    /// (which its certificate names) at that address, trusting its own
    /// certificate besides the usual roots.
    pub fn for_node(config: &Config, token: &str) -> anyhow::Result<Self> {
        let builder = http_builder();
        let Some(cert) = &config.tls_cert else {
            return Self::http(builder, &format!("http://{}", config.listen), token);
        };
        // The node's own chain is trusted too (it may be self-signed).
        let trusted: Vec<&std::path::Path> = config
            .federation
            .ca_file
            .as_deref()
            .into_iter()
            .chain([cert.as_path()])
            .collect();
        let tls = weft_federation::fetch::client_tls(&trusted)?;
        let public = config.public_url();
        let url = reqwest::Url::parse(&public)
            .with_context(|| format!("public_url `{public}` is not a URL"))?;
        let host = url
            .host_str()
            .with_context(|| format!("public_url `{public}` has no host"))?
            .to_owned();
        let mut at = config.listen;
        if at.ip().is_unspecified() {
            at.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        let base = format!("https://{host}:{}", config.listen.port());
        let builder = builder
            .use_preconfigured_tls(tls)
            .resolve(host.trim_start_matches('[').trim_end_matches(']'), at);
        Self::http(builder, &base, token)
    }

    /// A node at `url` (`http://…` or `https://…`, trusting the usual roots
    /// and `ca_file`'s authorities).
    pub fn for_url(
        url: &str,
        token: &str,
        ca_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let parsed = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .with_context(|| {
                format!("--node `{url}` is not a node's URL (http://host:port or https://host)")
            })?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            bail!("--node `{url}` is not a node's base URL: leave out the query and fragment");
        }
        let tls = weft_federation::fetch::client_tls(&ca_file.into_iter().collect::<Vec<_>>())?;
        Self::http(http_builder().use_preconfigured_tls(tls), url, token)
    }

    fn http(builder: reqwest::ClientBuilder, base: &str, token: &str) -> anyhow::Result<Self> {
        Ok(Self {
            transport: Transport::Http {
                http: builder.build()?,
                base: base.trim_end_matches('/').to_owned(),
            },
            token: token.to_owned(),
            token_from: GIVEN.to_owned(),
        })
    }

    /// The stopped `node`, served in-process by the router `weft run`
    /// serves. Its federation is not started: deliveries and backfills
    /// the commands queue go out when the node runs.
    fn in_process(node: Node, token: String, token_from: String) -> anyhow::Result<Self> {
        let (state, federation) = node.app()?;
        Ok(Self {
            transport: Transport::InProcess(Arc::new(InProcess {
                router: weft_http::router(state),
                node,
                federation,
            })),
            token,
            token_from,
        })
    }

    /// Whether the node is stopped and served in this process (so nothing
    /// it queues is sent until it runs).
    pub fn in_process_node(&self) -> bool {
        matches!(self.transport, Transport::InProcess(_))
    }

    /// Where the node is, for messages: `at URL`, or `in FOLDER`.
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Http { base, .. } => format!("at {base}"),
            Transport::InProcess(n) => format!("in {}", n.node.data.path.display()),
        }
    }

    /// `GET {path}`.
    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.send(Method::GET, path, Body::Empty, TIMEOUT).await
    }

    /// `POST {path}` with `body`.
    pub async fn post(&self, path: &str, body: Body) -> anyhow::Result<Answer> {
        self.send(Method::POST, path, body, TIMEOUT).await
    }

    /// `POST {path}` that may take long (a projection rebuild): over HTTP
    /// this waits up to a day; in-process as long as it takes.
    pub async fn post_long(&self, path: &str) -> anyhow::Result<Answer> {
        self.send(Method::POST, path, Body::Empty, LONG).await
    }

    /// `DELETE {path}`.
    pub async fn delete(&self, path: &str) -> anyhow::Result<Answer> {
        self.send(Method::DELETE, path, Body::Empty, TIMEOUT).await
    }

    /// Sends one request with the admin token; a non-2xx answer is an error
    /// carrying the node's `detail`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Body,
        timeout: Duration,
    ) -> anyhow::Result<Answer> {
        let (status, text) = match &self.transport {
            Transport::Http { http, base } => {
                let mut request = http
                    .request(method, format!("{base}{path}"))
                    .bearer_auth(&self.token)
                    .timeout(timeout);
                request = match body {
                    Body::Empty => request,
                    Body::Json(value) => request.json(&value),
                    Body::Bytes {
                        content_type,
                        bytes,
                    } => request.header("content-type", content_type).body(bytes),
                };
                let response = request
                    .send()
                    .await
                    .with_context(|| format!("cannot reach the node at {base}"))?;
                let status = response.status();
                let text = response
                    .text()
                    .await
                    .with_context(|| format!("the node at {base} did not finish its answer"))?;
                (status, text)
            }
            Transport::InProcess(node) => node.send(method, path, body, &self.token).await?,
        };
        let json = serde_json::from_str::<Value>(&text);
        if !status.is_success() {
            let detail = json
                .as_ref()
                .ok()
                .and_then(|b| b.get("detail"))
                .and_then(Value::as_str)
                .unwrap_or("no detail")
                .to_owned();
            if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                bail!(
                    "the node {} refused {} ({status}: {detail}); \
                     give the node's admin token with --token or WEFT_TOKEN",
                    self.describe(),
                    self.token_from
                );
            }
            bail!("the node answered {status}: {detail}");
        }
        let json = json.context("the node's answer is not JSON")?;
        Ok(Answer { text, json })
    }

    /// Stops an in-process node cleanly (the writer drains); nothing for a
    /// node reached over HTTP.
    pub async fn close(self) {
        let Transport::InProcess(node) = self.transport else {
            return;
        };
        node.federation.stop();
        let kernel = node.node.kernel.clone();
        drop(node);
        // Waiting for the writer blocks; keep it off the async threads.
        if let Err(e) = tokio::task::spawn_blocking(move || kernel.close()).await {
            tracing::error!(error = %e, "stopping the kernel");
        }
    }
}

impl InProcess {
    /// Hands one request to the router, as a loopback client (which the
    /// per-IP rate limit exempts, as it does a local tool over HTTP).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Body,
        token: &str,
    ) -> anyhow::Result<(StatusCode, String)> {
        let request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header(axum::http::header::AUTHORIZATION, format!("Bearer {token}"));
        let (request, bytes) = match body {
            Body::Empty => (request, Vec::new()),
            Body::Json(value) => (
                request.header(axum::http::header::CONTENT_TYPE, "application/json"),
                serde_json::to_vec(&value)?,
            ),
            Body::Bytes {
                content_type,
                bytes,
            } => (
                request.header(axum::http::header::CONTENT_TYPE, content_type),
                bytes,
            ),
        };
        let mut request = request
            .header(axum::http::header::CONTENT_LENGTH, bytes.len())
            .body(axum::body::Body::from(bytes))
            .with_context(|| format!("cannot make a request for {path}"))?;
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        request
            .extensions_mut()
            .insert(weft_http::ratelimit::ClientAddr(loopback));
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(loopback));
        let response = match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .context("the node's answer could not be read")?;
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }
}

/// The HTTP client's common settings.
fn http_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(TIMEOUT)
        .pool_idle_timeout(weft_federation::fetch::POOL_IDLE)
}

/// `text` as one URL path segment (percent-encoded but for the unreserved
/// characters).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
