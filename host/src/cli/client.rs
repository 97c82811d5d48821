//! A small HTTP client for the node's own API, used by CLI commands when the
//! node is running (its database is then locked to the server process).

use anyhow::{Context, bail};
use serde_json::{Map, Value};

/// The running node, reached with the admin token.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    pub fn new(base: &str, token: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(Self {
            http,
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
