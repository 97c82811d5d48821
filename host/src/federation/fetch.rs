//! Outbound HTTP with bounds: connect and total timeouts, a cap on response
//! bodies, no redirects (a document is trusted only from the URL it names),
//! and a per-request budget of fetches so one inbound activity cannot make
//! the node fetch without end.
//!
//! It fetches and posts JSON; it does not decide whom to trust.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::Settings;
use crate::http::activity_json;

/// Why a fetch gave nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0} is not an http(s) URL")]
    BadUrl(String),
    #[error("this request already caused its limit of {0} fetches")]
    Budget(u32),
    #[error("fetching {url} failed: {message}")]
    Network { url: String, message: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: StatusCode },
    #[error("{url} sent more than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url} did not send a JSON object: {message}")]
    NotJson { url: String, message: String },
}

impl FetchError {
    /// The resource is gone or never existed (404, 410): asking again
    /// will not help.
    pub fn is_absent(&self) -> bool {
        matches!(self, Self::Status { status, .. } if *status == StatusCode::NOT_FOUND || *status == StatusCode::GONE)
    }
}

/// How many more fetches one inbound request may cause. Clones share it.
#[derive(Debug, Clone)]
pub struct Budget {
    left: Arc<AtomicU32>,
    limit: u32,
}

impl Budget {
    pub fn new(limit: u32) -> Self {
        Self {
            left: Arc::new(AtomicU32::new(limit)),
            limit,
        }
    }

    /// Takes one fetch from the budget.
    pub fn take(&self) -> Result<(), FetchError> {
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .map(|_| ())
            .map_err(|_| FetchError::Budget(self.limit))
    }
}

/// The node's HTTP client for peers. Cheap to clone; connections are reused.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    max_bytes: usize,
}

impl Fetcher {
    pub fn new(settings: &Settings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .timeout(Duration::from_millis(settings.request_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            .user_agent(concat!("weft/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            max_bytes: settings.max_fetch_bytes,
        })
    }

    /// `GET url` as JSON, charged to `budget`.
    pub async fn get_json(&self, url: &str, budget: &Budget) -> Result<Value, FetchError> {
        let request = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, activity_json());
        let bytes = self.get(url, request, budget, self.max_bytes).await?;
        serde_json::from_slice::<Value>(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|v| {
                v.is_object()
                    .then_some(v)
                    .ok_or_else(|| "not an object".to_owned())
            })
            .map_err(|message| FetchError::NotJson {
                url: url.to_owned(),
                message,
            })
    }

    /// `GET url` as bytes of at most `limit`, with `timeout` for the whole
    /// request (artifacts are larger than documents), charged to `budget`.
    pub async fn get_bytes(
        &self,
        url: &str,
        budget: &Budget,
        limit: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>, FetchError> {
        let request = self.client.get(url).timeout(timeout);
        self.get(url, request, budget, limit).await
    }

    /// Sends the GET `request` for `url` (an http(s) URL, charged to
    /// `budget`) and reads a successful answer's body of at most `limit`.
    async fn get(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
        budget: &Budget,
        limit: usize,
    ) -> Result<Vec<u8>, FetchError> {
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(FetchError::BadUrl(url.to_owned()));
        }
        budget.take()?;
        let response = request.send().await.map_err(|e| network(url, &e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status,
            });
        }
        read_capped(url, response, limit).await
    }

    /// `POST body` (an activity's JSON) to an inbox. Answers the response
    /// status and its `Retry-After` in seconds, if any.
    pub async fn post_activity(
        &self,
        url: &str,
        body: String,
    ) -> Result<(StatusCode, Option<u64>), FetchError> {
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, activity_json())
            .body(body)
            .send()
            .await
            .map_err(|e| network(url, &e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // Drain a little of the body so the connection can be reused.
        let _ = read_capped(url, response, self.max_bytes).await;
        Ok((status, retry_after))
    }
}

/// Reads a response body of at most `limit` bytes.
async fn read_capped(
    url: &str,
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, FetchError> {
    let too_large = || FetchError::TooLarge {
        url: url.to_owned(),
        limit,
    };
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| network(url, &e))? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn network(url: &str, e: &reqwest::Error) -> FetchError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    FetchError::Network {
        url: url.to_owned(),
        message,
    }
}

/// `Retry-After` as seconds from now: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<u64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds);
    }
    let at = httpdate_parse(value)?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .map_or(0, |d| d.as_secs()),
    )
}

fn httpdate_parse(value: &str) -> Option<std::time::SystemTime> {
    // IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
    let rest = value.split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let day = parts.next()?;
    let month = parts.next()?;
    let year = parts.next()?;
    let time = parts.next()?;
    if parts.next()? != "GMT" {
        return None;
    }
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months.iter().position(|m| *m == month)? + 1;
    let rfc3339 = format!("{year}-{month:02}-{day}T{time}Z");
    humantime::parse_rfc3339(&rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_runs_out() {
        let budget = Budget::new(2);
        let shared = budget.clone();
        assert!(budget.take().is_ok());
        assert!(shared.take().is_ok());
        assert!(matches!(budget.take(), Err(FetchError::Budget(2))));
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120"), Some(120));
        assert_eq!(parse_retry_after(" 7 "), Some(7));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(0));
        let at = humantime::format_rfc3339_seconds(
            std::time::SystemTime::now() + Duration::from_secs(3600),
        )
        .to_string();
        // 2026-11-21T12:00:00Z → Sat, 21 Nov 2026 12:00:00 GMT
        let (date, time) = at.trim_end_matches('Z').split_once('T').expect("rfc3339");
        let ymd: Vec<&str> = date.split('-').collect();
        let (y, m, d) = (ymd[0], ymd[1], ymd[2]);
        let months = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = months[m.parse::<usize>().expect("a month number") - 1];
        let future = format!("Sat, {d} {month} {y} {time} GMT");
        let secs = parse_retry_after(&future).expect("a date parses");
        assert!((3590..=3600).contains(&secs), "{future} → {secs}");
        assert_eq!(parse_retry_after("soon"), None);
    }
}
