//! `weft resolve acct:NAME@HOST:PORT` (or an actor URL): finds an actor by
//! WebFinger and prints its URL and document. It asks the actor's node,
//! not the data folder's.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use weft_core::wire::ACTIVITY_JSON;

use super::Output;
use super::node::DataDir;

pub async fn run(data: &DataDir, account: &str, out: Output) -> anyhow::Result<()> {
    let ca_file = data.config().ok().and_then(|c| c.federation.ca_file);
    let (url, document) = resolve(account, ca_file.as_deref()).await?;
    out.print(&json!({"url": url, "document": document}), || {
        say!("{url}");
        say!(
            "{}",
            serde_json::to_string_pretty(&document).unwrap_or_default()
        );
    })
}

/// Looks an account up by WebFinger and fetches its actor document.
/// `acct:name@host` is looked up over HTTPS, or plain HTTP when the host is
/// a loopback address; an actor URL is fetched as written. `ca_file` adds
/// trusted certificate authorities (the node's `[federation] ca_file`).
pub async fn resolve(
    account: &str,
    ca_file: Option<&std::path::Path>,
) -> anyhow::Result<(String, Value)> {
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(weft_federation::fetch::client_tls(
            &ca_file.into_iter().collect::<Vec<_>>(),
        )?)
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let url = if account.starts_with("https://") || account.starts_with("http://") {
        account.to_owned()
    } else {
        webfinger(&http, account).await?
    };
    let response = http
        .get(&url)
        .header("accept", ACTIVITY_JSON)
        .send()
        .await
        .with_context(|| format!("cannot fetch {url}"))?;
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    let document: Value = response
        .json()
        .await
        .context("the actor document is not JSON")?;
    if document["id"].as_str() != Some(url.as_str()) {
        bail!(
            "the document at {url} names a different id: {}",
            document["id"]
        );
    }
    Ok((url, document))
}

/// The actor URL WebFinger gives for `acct:name@host`.
async fn webfinger(http: &reqwest::Client, account: &str) -> anyhow::Result<String> {
    let acct = account.strip_prefix("acct:").unwrap_or(account);
    let (name, host) = acct
        .rsplit_once('@')
        .filter(|(n, h)| !n.is_empty() && !h.is_empty() && !h.contains('/'))
        .with_context(|| {
            format!("`{account}` is not an account: use acct:name@host[:port] or an actor URL")
        })?;
    // HTTPS, except that a node on this machine may serve plain HTTP.
    let schemes: &[&str] = if is_loopback_host(host) {
        &["https", "http"]
    } else {
        &["https"]
    };
    let mut answer = None;
    for scheme in schemes {
        let finger = format!("{scheme}://{host}/.well-known/webfinger?resource=acct:{name}@{host}");
        match http
            .get(&finger)
            .header("accept", "application/jrd+json, application/json")
            .send()
            .await
        {
            Ok(response) => {
                answer = Some((finger, response));
                break;
            }
            Err(e) if scheme == schemes.last().unwrap_or(&"https") => {
                return Err(
                    anyhow::Error::new(e).context(format!("cannot reach {host} ({finger})"))
                );
            }
            Err(_) => {}
        }
    }
    let (finger, response) = answer.with_context(|| format!("cannot reach {host}"))?;
    if !response.status().is_success() {
        bail!("{finger} answered {}", response.status());
    }
    let jrd: Value = response
        .json()
        .await
        .context("the WebFinger answer is not JSON")?;
    Ok(jrd["links"]
        .as_array()
        .and_then(|links| {
            links.iter().find(|l| {
                l["rel"] == "self"
                    && l["type"]
                        .as_str()
                        .is_some_and(|t| t.contains("activity+json") || t.contains("ld+json"))
            })
        })
        .and_then(|l| l["href"].as_str())
        .with_context(|| format!("{finger} names no ActivityPub actor (no `self` link)"))?
        .to_owned())
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(authority: &str) -> bool {
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
