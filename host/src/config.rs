//! Node configuration: `weft.toml` in the data folder, overridden by
//! `WEFT_*` environment variables. Defaults run a node on loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}={value} is not valid: {message}")]
    Env {
        name: &'static str,
        value: String,
        message: String,
    },
}

/// Settings of one node. Every field has a default; see `weft.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds (`WEFT_LISTEN`).
    pub listen: SocketAddr,
    /// Base URL peers use to reach this node; actor ids start with it
    /// (`WEFT_PUBLIC_URL`). Defaults to `http://{listen}`. Fixed into actor
    /// ids when they are created, so choose it before creating actors.
    pub public_url: Option<String>,
    /// Name of the node's own Service actor, created by `weft init`.
    pub service_actor: String,
    /// Largest request body accepted, in bytes (`WEFT_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Most activities group-committed in one durable write (`WEFT_MAX_BATCH`).
    pub max_batch: usize,
    /// Memory for the store's page cache, in MiB (`WEFT_CACHE_MB`); unset,
    /// sized from the machine at each start
    /// ([`weft_store::default_cache_mb`]). Pages not in it are read from
    /// the file (the operating system's file cache) on every use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_mb: Option<usize>,
    /// Activities per outbox page.
    pub page_size: usize,
    /// What modules may use per call (`[runtime]`).
    pub runtime: weft_runtime::Limits,
    /// Where compiled modules are cached (`WEFT_MODULE_CACHE`); default
    /// `modules/` in the data folder. Safe to share between nodes: entries
    /// are keyed by artifact id and engine.
    pub module_cache: Option<std::path::PathBuf>,
    /// Talking to other nodes (`[federation]`).
    pub federation: weft_federation::Settings,
    /// Serve HTTPS directly: the certificate chain (PEM) and its private
    /// key (PEM, PKCS#8, PKCS#1 or SEC1). Both or neither; without them the
    /// node serves plain HTTP, usually behind a TLS-terminating proxy.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// What one client may hold of the server (`[server]`).
    pub server: weft_http::server::Limits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            service_actor: "node".into(),
            max_body_bytes: 256 * 1024,
            max_batch: 1024,
            cache_mb: None,
            page_size: 20,
            runtime: weft_runtime::Limits::default(),
            module_cache: None,
            federation: weft_federation::Settings::default(),
            tls_cert: None,
            tls_key: None,
            server: weft_http::server::Limits::default(),
        }
    }
}

impl Config {
    /// Reads `weft.toml` from `data_dir` (if present), then applies the
    /// environment overrides.
    pub fn load(data_dir: &Path) -> Result<Self, ConfigError> {
        let path = data_dir.join("weft.toml");
        let mut config = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    /// Applies `WEFT_*` overrides read through `var`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(name: &'static str, value: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e: T::Err| ConfigError::Env {
                name,
                message: e.to_string(),
                value,
            })
        }
        if let Some(v) = var("WEFT_LISTEN") {
            self.listen = parse("WEFT_LISTEN", v)?;
        }
        if let Some(v) = var("WEFT_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = var("WEFT_MAX_BODY_BYTES") {
            self.max_body_bytes = parse("WEFT_MAX_BODY_BYTES", v)?;
        }
        if let Some(v) = var("WEFT_CACHE_MB") {
            self.cache_mb = Some(parse("WEFT_CACHE_MB", v)?);
        }
        if let Some(v) = var("WEFT_MODULE_CACHE") {
            self.module_cache = Some(v.into());
        }
        if let Some(v) = var("WEFT_MAX_BATCH") {
            self.max_batch = parse("WEFT_MAX_BATCH", v)?;
        }
        if let Some(v) = var("WEFT_FEDERATION_RETRY") {
            let retry: Vec<String> = v.split(',').map(|s| s.trim().to_owned()).collect();
            let mut settings = self.federation.clone();
            settings.retry = retry;
            settings.schedule().map_err(|message| ConfigError::Env {
                name: "WEFT_FEDERATION_RETRY",
                value: v.clone(),
                message,
            })?;
            self.federation = settings;
        }
        if let Some(v) = var("WEFT_TLS_CERT") {
            self.tls_cert = Some(v.into());
        }
        if let Some(v) = var("WEFT_TLS_KEY") {
            self.tls_key = Some(v.into());
        }
        if let Some(v) = var("WEFT_ALLOW_PRIVATE_ADDRESSES") {
            self.federation.allow_private_addresses = parse("WEFT_ALLOW_PRIVATE_ADDRESSES", v)?;
        }
        if let Some(v) = var("WEFT_CA_FILE") {
            self.federation.ca_file = Some(v.into());
        }
        if let Some(v) = var("WEFT_RATE_LIMIT") {
            match v.as_str() {
                "off" => self.server.rate_limit = weft_http::ratelimit::RateLimits::off(),
                "on" => {}
                _ => {
                    return Err(ConfigError::Env {
                        name: "WEFT_RATE_LIMIT",
                        value: v,
                        message: "must be `off` (no rate limits, as `weft bench` wants) or `on` (those of weft.toml)".into(),
                    });
                }
            }
        }
        if let Some(v) = var("WEFT_MODULE_POLICY") {
            self.federation.module_policy =
                serde_json::from_value(serde_json::Value::String(v.clone())).map_err(|_| {
                    ConfigError::Env {
                        name: "WEFT_MODULE_POLICY",
                        value: v.clone(),
                        message: "must be `followed`, `manual` or `allow`".into(),
                    }
                })?;
        }
        Ok(())
    }

    /// The base URL of this node, without a trailing slash: `https://`
    /// when it serves TLS itself.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None if self.tls_cert.is_some() => format!("https://{}", self.listen),
            None => format!("http://{}", self.listen),
        }
    }

    /// The file this configuration is written to by `weft init`.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file() {
        let mut config: Config =
            toml::from_str("listen = \"127.0.0.1:9000\"\nmax_batch = 8").expect("toml");
        assert_eq!(config.max_batch, 8);
        config
            .apply_env(|n| (n == "WEFT_LISTEN").then(|| "127.0.0.1:9100".to_owned()))
            .expect("env");
        assert_eq!(config.public_url(), "http://127.0.0.1:9100");
        assert_eq!(config.cache_mb, None, "sized from the machine");
        config
            .apply_env(|n| (n == "WEFT_CACHE_MB").then(|| "4096".to_owned()))
            .expect("env");
        assert_eq!(config.cache_mb, Some(4096));
        let bad = config.apply_env(|n| (n == "WEFT_MAX_BATCH").then(|| "many".to_owned()));
        assert!(matches!(
            bad,
            Err(ConfigError::Env {
                name: "WEFT_MAX_BATCH",
                ..
            })
        ));
    }

    #[test]
    fn rate_limits_can_be_turned_off_from_the_environment() {
        let mut config = Config::default();
        assert_ne!(
            config.server.rate_limit,
            weft_http::ratelimit::RateLimits::off()
        );
        config
            .apply_env(|n| (n == "WEFT_RATE_LIMIT").then(|| "off".to_owned()))
            .expect("env");
        assert_eq!(
            config.server.rate_limit,
            weft_http::ratelimit::RateLimits::off()
        );
        let bad = config.apply_env(|n| (n == "WEFT_RATE_LIMIT").then(|| "maybe".to_owned()));
        assert!(matches!(
            bad,
            Err(ConfigError::Env {
                name: "WEFT_RATE_LIMIT",
                ..
            })
        ));
    }

    #[test]
    fn unknown_settings_are_an_error() {
        assert!(toml::from_str::<Config>("listne = \"x\"").is_err());
    }
}
