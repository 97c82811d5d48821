//! A small HTTP client for the node's own API, used by CLI commands when the
//! node is running (its database is then locked to the server process).

use anyhow::{Context, bail};
use serde_json::{Map, Value};

use crate::config::Config;

/// The running node, reached with the admin token.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    /// The node whose configuration is `config`, at its listen address.
    /// A node that serves HTTPS is reached under its public name (which
    /// its certificate names) at that address, trusting its own
    /// certificate besides the usual roots.
    pub fn for_node(config: &Config, token: &str) -> anyhow::Result<Self> {
        let builder = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(300))
            .pool_idle_timeout(weft_federation::fetch::POOL_IDLE);
        let Some(cert) = &config.tls_cert else {
            return Self::with(builder, &format!("http://{}", config.listen), token);
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
            at.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let base = format!("https://{host}:{}", config.listen.port());
        let builder = builder
            .use_preconfigured_tls(tls)
            .resolve(host.trim_start_matches('[').trim_end_matches(']'), at);
        Self::with(builder, &base, token)
    }

    fn with(builder: reqwest::ClientBuilder, base: &str, token: &str) -> anyhow::Result<Self> {
        Ok(Self {
            http: builder.build()?,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    /// `POST /actors`.
    pub async fn create_actor(&self, name: &str, kind: &str) -> anyhow::Result<Value> {
        let body = serde_json::json!({"name": name, "type": kind});
        self.send(self.http.post(format!("{}/actors", self.base)).json(&body))
            .await
    }

    /// `POST /actors/{name}/outbox` with the admin token.
    pub async fn publish_as(
        &self,
        name: &str,
        draft: &Map<String, Value>,
    ) -> anyhow::Result<Value> {
        self.send(
            self.http
                .post(format!("{}/actors/{name}/outbox", self.base))
                .json(draft),
        )
        .await
    }

    /// `GET /actors/{name}`.
    pub async fn actor(&self, name: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}/actors/{name}", self.base)))
            .await
    }

    /// `POST /artifacts`: returns the artifact id.
    pub async fn upload(&self, bytes: Vec<u8>) -> anyhow::Result<String> {
        let body = self
            .send(
                self.http
                    .post(format!("{}/artifacts", self.base))
                    .header("content-type", "application/wasm")
                    .body(bytes),
            )
            .await?;
        Ok(body["id"].as_str().unwrap_or_default().to_owned())
    }

    /// `POST /admin/projections/{name}/rebuild`: returns how many activities
    /// were folded. The node answers once the projection has caught up,
    /// which on a long log under load takes a while: this waits up to a day.
    pub async fn rebuild(&self, name: &str) -> anyhow::Result<u64> {
        let body = self
            .send(
                self.http
                    .post(format!("{}/admin/projections/{name}/rebuild", self.base))
                    .timeout(std::time::Duration::from_secs(24 * 3600)),
            )
            .await?;
        Ok(body["folded"].as_u64().unwrap_or_default())
    }

    /// `POST {path}` on the node, without a body.
    pub async fn post(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.base)))
            .await
    }

    /// `DELETE {path}` on the node.
    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }

    /// `GET {path}` on the node.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach the node at {}", self.base))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .context("the node's answer is not JSON")?;
        if !status.is_success() {
            let detail = body
                .get("detail")
                .and_then(Value::as_str)
                .unwrap_or("no detail");
            bail!("the node answered {status}: {detail}");
        }
        Ok(body)
    }
}
