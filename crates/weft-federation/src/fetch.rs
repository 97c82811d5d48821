//! Outbound HTTP with bounds: HTTPS (rustls, the webpki roots plus
//! `[federation] ca_file`), connect and total timeouts, a cap on response
//! bodies, no redirects (a document is trusted only from the URL it names),
//! no private or internal addresses unless allowed (`guard`), a failed URL
//! remembered for a minute, and a per-request budget of fetches so one
//! inbound activity cannot make the node fetch without end.
//!
//! It fetches and posts JSON; it does not decide whom to trust.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use super::Settings;
use super::httpsig::{self, Scheme};
use weft_core::identity::RsaKey;
use weft_core::wire::ACTIVITY_JSON;
use weft_kernel::Kernel;

/// Why a fetch gave nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0} is not an http(s) URL")]
    BadUrl(String),
    #[error("{url} is refused: {refused}")]
    Refused {
        url: String,
        refused: super::guard::Refused,
    },
    #[error("fetching {url} failed less than a minute ago ({message}); not trying again yet")]
    RecentlyFailed { url: String, message: String },
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

/// Why the HTTP client cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read federation.ca_file {path}: {message}")]
    CaFile { path: String, message: String },
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// What a GET for an ActivityStreams document accepts.
pub const ACCEPT_ACTIVITY: &str = "application/activity+json, application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"";

/// How long an idle connection to a peer is kept for reuse.
pub const POOL_IDLE: Duration = Duration::from_secs(20);

/// How long a failed URL is not fetched again.
pub const REMEMBER_FAILURE: Duration = Duration::from_secs(60);
/// Most failed URLs remembered; past it the memory starts over.
const MAX_REMEMBERED: usize = 16_384;

/// The TLS settings of every outbound connection: the webpki roots and the
/// certificates in `pem_files` (`ca_file`, if any).
pub fn client_tls(pem_files: &[&Path]) -> Result<rustls::ClientConfig, ClientError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for path in pem_files {
        use rustls_pki_types::pem::PemObject;
        let ca = |message: String| ClientError::CaFile {
            path: path.display().to_string(),
            message,
        };
        let mut added = 0;
        for cert in
            rustls_pki_types::CertificateDer::pem_file_iter(path).map_err(|e| ca(e.to_string()))?
        {
            let cert = cert.map_err(|e| ca(e.to_string()))?;
            roots.add(cert).map_err(|e| ca(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(ca("it holds no PEM certificate".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The node's HTTP client for peers. Cheap to clone; connections are reused.
///
/// Every request is signed (HTTP Signatures) once [`Fetcher::sign_with`]
/// gave it the kernel: a GET as the node's service actor (authorized
/// fetch), a delivery as the activity's local author. A peer origin is
/// first asked with RFC 9421 and, if it answers 401, with draft-cavage;
/// what it accepted is remembered.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    max_bytes: usize,
    allow_private: bool,
    /// Where the signing keys come from.
    kernel: Arc<std::sync::OnceLock<Arc<Kernel>>>,
    /// The signature scheme each peer origin accepted.
    accepts: Arc<Mutex<HashMap<String, Scheme>>>,
    /// URLs whose fetch failed, when, and why.
    failed: Arc<Mutex<HashMap<String, (Instant, String)>>>,
    /// Whether the loopback hint was logged already.
    hinted: Arc<AtomicBool>,
}

impl Fetcher {
    pub fn new(settings: &Settings) -> Result<Self, ClientError> {
        crate::install_crypto();
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(client_tls(
                &settings.ca_file.as_deref().into_iter().collect::<Vec<_>>(),
            )?)
            .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .timeout(Duration::from_millis(settings.request_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            // Below the usual servers' idle limits (weft's 30 s, nginx's
            // 75 s), so a kept connection is not reused as the peer closes it.
            .pool_idle_timeout(POOL_IDLE)
            .user_agent(concat!("weft/", env!("CARGO_PKG_VERSION")));
        if !settings.allow_private_addresses {
            builder = builder.dns_resolver(Arc::new(super::guard::GuardedResolver));
        }
        Ok(Self {
            client: builder.build()?,
            max_bytes: settings.max_fetch_bytes,
            allow_private: settings.allow_private_addresses,
            failed: Arc::new(Mutex::new(HashMap::new())),
            hinted: Arc::new(AtomicBool::new(false)),
            kernel: Arc::new(std::sync::OnceLock::new()),
            accepts: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// Signs every request from now on with the keys of `kernel`'s actors.
    pub fn sign_with(&self, kernel: Arc<Kernel>) {
        let _ = self.kernel.set(kernel);
    }

    /// The key id and key that sign as `actor` (a local actor), or as the
    /// service actor when `actor` is `None` or not local; `None` when
    /// requests go unsigned (no kernel) or the key cannot be had.
    fn signing_key(&self, actor: Option<&str>) -> Option<(String, Arc<RsaKey>)> {
        let kernel = self.kernel.get()?;
        let actor = match actor.filter(|a| kernel.is_local_url(a)) {
            Some(actor) => actor.to_owned(),
            None => kernel.service_actor().ok()?,
        };
        match kernel.http_key(&actor) {
            Ok(key) => Some(key),
            Err(e) => {
                tracing::warn!(%actor, error = %e, "cannot sign a request: no HTTP-signature key");
                None
            }
        }
    }

    /// Sends the request `make` builds, signed as `actor` (see
    /// [`Fetcher::signing_key`]): RFC 9421 first with an origin not met
    /// before, draft-cavage if that is refused with 401.
    async fn send_signed(
        &self,
        make: impl Fn() -> reqwest::RequestBuilder,
        url: &str,
        body: Option<&[u8]>,
        actor: Option<&str>,
    ) -> Result<reqwest::Response, FetchError> {
        let Some((key_id, key)) = self.signing_key(actor) else {
            return make().send().await.map_err(|e| self.network(url, &e));
        };
        let origin = weft_kernel::audience_origin(url).unwrap_or_default();
        let known = self
            .accepts
            .lock()
            .ok()
            .and_then(|a| a.get(&origin).copied());
        let schemes: &[Scheme] = match known {
            Some(Scheme::Cavage) => &[Scheme::Cavage],
            Some(Scheme::Rfc9421) => &[Scheme::Rfc9421],
            None => &[Scheme::Rfc9421, Scheme::Cavage],
        };
        let mut last = None;
        for (i, scheme) in schemes.iter().enumerate() {
            let mut request = make().build().map_err(|e| self.network(url, &e))?;
            let headers = httpsig::sign(
                *scheme,
                request.method(),
                url,
                body,
                &key_id,
                httpsig::Signer::Rsa(&key),
                weft_core::clock::now(),
            )
            .map_err(|e| FetchError::Network {
                url: url.to_owned(),
                message: format!("cannot sign the request: {e}"),
            })?;
            for (name, value) in headers {
                request.headers_mut().insert(name, value);
            }
            let response = self
                .client
                .execute(request)
                .await
                .map_err(|e| self.network(url, &e))?;
            let refused = response.status() == StatusCode::UNAUTHORIZED;
            if !refused || i + 1 == schemes.len() {
                if !refused
                    && known.is_none()
                    && let Ok(mut accepts) = self.accepts.lock()
                {
                    if accepts.len() >= MAX_REMEMBERED {
                        accepts.clear();
                    }
                    accepts.insert(origin.clone(), *scheme);
                }
                return Ok(response);
            }
            last = Some(response);
        }
        last.ok_or_else(|| FetchError::Network {
            url: url.to_owned(),
            message: "no signature scheme to try".into(),
        })
    }

    /// Refuses what may not be fetched: a URL that is not http(s), or whose
    /// literal address is internal while that is not allowed.
    fn check(&self, url: &str) -> Result<(), FetchError> {
        let parsed = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| FetchError::BadUrl(url.to_owned()))?;
        if self.allow_private {
            return Ok(());
        }
        super::guard::check_url(&parsed).map_err(|refused| {
            self.hint(&refused);
            FetchError::Refused {
                url: url.to_owned(),
                refused,
            }
        })
    }

    /// Says once, in the log, how to let a node on loopback reach its peers.
    fn hint(&self, refused: &super::guard::Refused) {
        if refused.ip.is_loopback() && !self.hinted.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "refusing a loopback peer ({}); nodes federating on one machine need `allow_private_addresses = true` under [federation] in weft.toml (or WEFT_ALLOW_PRIVATE_ADDRESSES=true)",
                refused.host
            );
        }
    }

    /// The error of a fetch of `url` that failed within
    /// [`REMEMBER_FAILURE`], if any.
    fn failed_recently(&self, url: &str) -> Option<FetchError> {
        let failed = self.failed.lock().ok()?;
        let (at, message) = failed.get(url)?;
        (at.elapsed() < REMEMBER_FAILURE).then(|| FetchError::RecentlyFailed {
            url: url.to_owned(),
            message: message.clone(),
        })
    }

    /// Forgets the failed fetches of URLs on `origin`, so that they are
    /// tried at once: the peer was heard from, or the operator asked.
    pub fn forget_failures(&self, origin: &str) {
        if let Ok(mut failed) = self.failed.lock() {
            failed.retain(|url, _| weft_core::model::origin(url).as_deref() != Some(origin));
        }
    }

    /// Remembers (or, on success, forgets) the outcome of fetching `url`.
    fn remember<T>(&self, url: &str, result: &Result<T, FetchError>) {
        let Ok(mut failed) = self.failed.lock() else {
            return;
        };
        match result {
            Ok(_) => {
                failed.remove(url);
            }
            // Out of budget says nothing about the URL.
            Err(FetchError::Budget(_) | FetchError::RecentlyFailed { .. }) => {}
            Err(e) => {
                if failed.len() >= MAX_REMEMBERED {
                    failed.retain(|_, (at, _)| at.elapsed() < REMEMBER_FAILURE);
                    if failed.len() >= MAX_REMEMBERED {
                        failed.clear();
                    }
                }
                failed.insert(url.to_owned(), (Instant::now(), e.to_string()));
            }
        }
    }

    /// `GET url` as JSON, charged to `budget`.
    pub async fn get_json(&self, url: &str, budget: &Budget) -> Result<Value, FetchError> {
        self.json(url, budget, true).await
    }

    /// [`Fetcher::get_json`] for a probe repeated on a schedule (is the
    /// activity there yet?): neither refused by nor remembered among the
    /// recent failures.
    pub async fn probe_json(&self, url: &str, budget: &Budget) -> Result<Value, FetchError> {
        self.json(url, budget, false).await
    }

    async fn json(&self, url: &str, budget: &Budget, remember: bool) -> Result<Value, FetchError> {
        let make = || {
            self.client
                .get(url)
                .header(reqwest::header::ACCEPT, ACCEPT_ACTIVITY)
        };
        let bytes = if remember {
            self.get(url, make, budget, self.max_bytes).await?
        } else {
            self.send_get(url, make, budget, self.max_bytes).await?
        };
        serde_json::from_slice::<Value>(&bytes)
            // Where it broke, not what the peer wrote: a peer's text is
            // never echoed to whoever caused the fetch.
            .map_err(|e| format!("invalid JSON at line {} column {}", e.line(), e.column()))
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
        let make = || self.client.get(url).timeout(timeout);
        self.get(url, make, budget, limit).await
    }

    /// Sends the GET `request` for `url` (an http(s) URL, charged to
    /// `budget`) and reads a successful answer's body of at most `limit`.
    /// A URL that failed in the last minute is not fetched again.
    async fn get(
        &self,
        url: &str,
        make: impl Fn() -> reqwest::RequestBuilder,
        budget: &Budget,
        limit: usize,
    ) -> Result<Vec<u8>, FetchError> {
        // A URL refused on its face is refused as such, before any memory
        // of failures (which would make it look worth a retry).
        self.check(url)?;
        if let Some(e) = self.failed_recently(url) {
            return Err(e);
        }
        let result = self.send_get(url, make, budget, limit).await;
        self.remember(url, &result);
        result
    }

    /// The GET itself: checked, charged, sent signed, read capped.
    async fn send_get(
        &self,
        url: &str,
        make: impl Fn() -> reqwest::RequestBuilder,
        budget: &Budget,
        limit: usize,
    ) -> Result<Vec<u8>, FetchError> {
        self.check(url)?;
        budget.take()?;
        let response = self.send_signed(make, url, None, None).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status,
            });
        }
        read_capped(url, response, limit).await
    }

    /// `POST body` (an activity's JSON) to an inbox, signed as `author`
    /// (a local actor; the service actor otherwise). Answers the response
    /// status and its `Retry-After` in seconds, if any.
    pub async fn post_activity(
        &self,
        url: &str,
        body: String,
        author: &str,
    ) -> Result<(StatusCode, Option<u64>), FetchError> {
        self.check(url)?;
        let body = bytes::Bytes::from(body);
        let make = || {
            self.client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, ACTIVITY_JSON)
                .body(body.clone())
        };
        let response = self
            .send_signed(make, url, Some(&body), Some(author))
            .await?;
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

impl Fetcher {
    /// `POST body` (JSON) to `url`, signed as this node's service actor,
    /// charged to `budget`; answers the response, a JSON object of at most
    /// `max_fetch_bytes`. For node-to-node requests (set reconciliation),
    /// where the signature proves which node asks.
    pub async fn post_json(
        &self,
        url: &str,
        body: Vec<u8>,
        budget: &Budget,
    ) -> Result<Value, FetchError> {
        self.check(url)?;
        budget.take()?;
        let body = bytes::Bytes::from(body);
        let make = || {
            self.client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::ACCEPT, "application/json")
                .body(body.clone())
        };
        let response = self.send_signed(make, url, Some(&body), None).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status,
            });
        }
        let bytes = read_capped(url, response, self.max_bytes).await?;
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| FetchError::NotJson {
                url: url.to_owned(),
                message: "not a JSON object".into(),
            })
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

impl Fetcher {
    /// A failed request as an error: a connection the resolver refused
    /// says so (and why); anything else says what failed.
    fn network(&self, url: &str, e: &reqwest::Error) -> FetchError {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(refused) = s.downcast_ref::<super::guard::Refused>() {
                self.hint(refused);
                return FetchError::Refused {
                    url: url.to_owned(),
                    refused: refused.clone(),
                };
            }
            message = format!("{message}: {s}");
            source = s.source();
        }
        FetchError::Network {
            url: url.to_owned(),
            message,
        }
    }
}

fn network(url: &str, e: &reqwest::Error) -> FetchError {
    FetchError::Network {
        url: url.to_owned(),
        message: e.to_string(),
    }
}

/// `Retry-After` as seconds from now: delay-seconds (`1*DIGIT`, past
/// `u64::MAX` taken as that) or an HTTP date, read as the HTTP-signature
/// code reads `Date` (IMF-fixdate).
pub fn parse_retry_after(value: &str) -> Option<u64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(value.parse::<u64>().unwrap_or(u64::MAX));
    }
    let at = super::httpsig::parse_http_date(value)?;
    let now = weft_core::clock::now_ms() / 1000;
    Some(at.saturating_sub(now))
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
        let at =
            humantime::format_rfc3339_seconds(weft_core::clock::now() + Duration::from_secs(3600))
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

    #[test]
    fn retry_after_is_strict_and_saturates() {
        // Found by fuzzing: delay-seconds past u64 were ignored, and the
        // date parser took any weekday and other non-IMF-fixdate forms.
        assert_eq!(parse_retry_after("99999999999999999999"), Some(u64::MAX));
        assert_eq!(parse_retry_after("+7"), None);
        assert_eq!(parse_retry_after("bun, 06 Nov 1994 08:49:18 GMT"), None);
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37.5 GMT"), None);
        assert_eq!(parse_retry_after("Sun, 6 Nov 1994 08:49:37 GMT"), None);
    }
}
