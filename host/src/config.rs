//! Node configuration: `weft.toml` in the data folder, overridden by
//! `WEFT_*` environment variables. Defaults run a node on loopback.
//!
//! Every key can be set from the environment: `WEFT_` and its path in
//! capitals, sections joined by `__` (`WEFT_MAX_BATCH`,
//! `WEFT_RUNTIME__FUEL_PER_CALL`, `WEFT_SERVER__RATE_LIMIT__PER_IP_BURST`);
//! the value is read as TOML (`8`, `true`, `["1s", "5s"]`) or else as text.
//! A few named variables predate that rule and stay: three are aliases of a
//! key (`WEFT_ALLOW_PRIVATE_ADDRESSES`, `WEFT_CA_FILE`, `WEFT_MODULE_POLICY`),
//! two are not a key's value (`WEFT_FEDERATION_RETRY`, a comma-separated
//! schedule; `WEFT_RATE_LIMIT=off`). `weft init` writes the file with every key, its
//! value and what it means ([`Config::commented_toml`]); `weft config show`
//! prints the configuration in effect the same way.

mod docs;

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
        name: String,
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
    /// Whether every commit saves the store's allocator state, so that a
    /// node killed at any moment reopens at once (`WEFT_QUICK_REPAIR`).
    /// Off, commits are cheaper (one flush to disk instead of two) and as
    /// durable, and a node killed in the middle of a stretch of writes
    /// walks its whole store file when it opens; the file is made quick
    /// to open again once the node has been idle for 200 ms.
    pub quick_repair: bool,
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
            quick_repair: true,
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
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Self::from_parts(&path, &text, std::env::vars())
    }

    /// The configuration of file `text` (read from `path`) with the
    /// environment `vars` over it.
    pub fn from_parts(
        path: &Path,
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let mut config: Self =
            Self::deserialize(table.clone()).map_err(|e| ConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        for (name, value) in &vars {
            let Some(key) = env_key(name) else {
                continue;
            };
            config = set(&mut table, &key, value).map_err(|message| ConfigError::Env {
                name: name.clone(),
                value: value.clone(),
                message,
            })?;
        }
        let named = |name: &str| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        config.apply_named(named)?;
        Ok(config)
    }

    /// Applies the two named variables that are not a key's value:
    /// `WEFT_FEDERATION_RETRY` (a comma-separated schedule) and
    /// `WEFT_RATE_LIMIT` (`off` or `on`), read through `var`.
    fn apply_named(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = var("WEFT_FEDERATION_RETRY") {
            let retry: Vec<String> = v.split(',').map(|s| s.trim().to_owned()).collect();
            let mut settings = self.federation.clone();
            settings.retry = retry;
            settings.schedule().map_err(|message| ConfigError::Env {
                name: "WEFT_FEDERATION_RETRY".into(),
                value: v.clone(),
                message,
            })?;
            self.federation = settings;
        }
        if let Some(v) = var("WEFT_RATE_LIMIT") {
            match v.as_str() {
                "off" => self.server.rate_limit = weft_http::ratelimit::RateLimits::off(),
                "on" => {}
                _ => {
                    return Err(ConfigError::Env {
                        name: "WEFT_RATE_LIMIT".into(),
                        value: v,
                        message: "must be `off` (no rate limits, as `weft bench` wants) or `on` (those of weft.toml)".into(),
                    });
                }
            }
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

    /// This configuration as `weft.toml` with every key, its value and
    /// what it means, and the keys left unset as comments: what `weft
    /// init` writes and `weft config show` prints. Reads back as itself.
    pub fn commented_toml(&self) -> String {
        let table = toml::Table::try_from(self).unwrap_or_default();
        let mut out = String::from(
            "# weft node configuration. Every key is shown with its value and what it means;\n\
             # a commented-out key is unset (its default applies). Any key can also be set\n\
             # from the environment: WEFT_ and its path in capitals, sections joined by __\n\
             # (WEFT_MAX_BATCH=512, WEFT_RUNTIME__FUEL_PER_CALL=20000000).\n",
        );
        let mut section = String::new();
        for (path, meaning) in docs::KEYS {
            let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
            if parent != section {
                section = parent.to_owned();
                out.push_str(&format!("\n[{section}]\n"));
            }
            let value = lookup(&table, path);
            out.push_str(&format!("# {meaning}\n"));
            match value {
                Some(value) => out.push_str(&format!("{key} = {value}\n")),
                None => out.push_str(&format!("# {key} = {}\n", docs::example(path))),
            }
        }
        out
    }
}

/// Variables named before keys could be set by their path, and the key
/// each sets.
const ALIASES: [(&str, &str); 3] = [
    (
        "WEFT_ALLOW_PRIVATE_ADDRESSES",
        "federation.allow_private_addresses",
    ),
    ("WEFT_CA_FILE", "federation.ca_file"),
    ("WEFT_MODULE_POLICY", "federation.module_policy"),
];

/// The key path an environment variable sets, if it names a key:
/// `WEFT_RUNTIME__FUEL_PER_CALL` → `runtime.fuel_per_call`, or an alias.
fn env_key(name: &str) -> Option<String> {
    if let Some((_, path)) = ALIASES.iter().find(|(alias, _)| *alias == name) {
        return Some((*path).to_owned());
    }
    let rest = name.strip_prefix("WEFT_")?;
    let path = rest
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join(".");
    docs::meaning(&path).map(|_| path)
}

/// The value at `path` in `table`.
fn lookup<'t>(table: &'t toml::Table, path: &str) -> Option<&'t toml::Value> {
    let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
    let mut at = table;
    if !parent.is_empty() {
        for part in parent.split('.') {
            at = at.get(part)?.as_table()?;
        }
    }
    at.get(key)
}

/// Sets `path` in `table` to `value` read as TOML (or else as text) and
/// answers the configuration it makes, or why it makes none.
fn set(table: &mut toml::Table, path: &str, value: &str) -> Result<Config, String> {
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"));
    let candidates = parsed
        .into_iter()
        .chain(std::iter::once(toml::Value::String(value.to_owned())));
    let mut first_error = None;
    for candidate in candidates {
        let mut trial = table.clone();
        let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
        let mut at = &mut trial;
        if !parent.is_empty() {
            for part in parent.split('.') {
                at = at
                    .entry(part)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .ok_or_else(|| format!("`{part}` is not a section"))?;
            }
        }
        at.insert(key.to_owned(), candidate);
        match Config::deserialize(trial.clone()) {
            Ok(config) => {
                *table = trial;
                return Ok(config);
            }
            Err(e) => {
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    Err(first_error.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file() {
        let path = Path::new("weft.toml");
        let file = "listen = \"127.0.0.1:9000\"\nmax_batch = 8";
        let config = Config::from_parts(path, file, vars(&[])).expect("a configuration");
        assert_eq!(config.max_batch, 8);
        assert_eq!(config.cache_mb, None, "sized from the machine");
        assert!(config.quick_repair, "quick repair is on unless turned off");
        let config = Config::from_parts(
            path,
            file,
            vars(&[
                ("WEFT_LISTEN", "127.0.0.1:9100"),
                ("WEFT_CACHE_MB", "4096"),
                ("WEFT_QUICK_REPAIR", "false"),
                ("WEFT_ALLOW_PRIVATE_ADDRESSES", "true"),
                ("WEFT_MODULE_POLICY", "manual"),
            ]),
        )
        .expect("a configuration");
        assert_eq!(config.public_url(), "http://127.0.0.1:9100");
        assert_eq!(config.cache_mb, Some(4096));
        assert!(!config.quick_repair);
        assert!(config.federation.allow_private_addresses);
        assert_eq!(
            config.federation.module_policy,
            Config::from_parts(path, "[federation]\nmodule_policy = \"manual\"", vars(&[]))
                .expect("a configuration")
                .federation
                .module_policy
        );
        let bad = Config::from_parts(path, file, vars(&[("WEFT_MAX_BATCH", "many")]));
        assert!(matches!(bad, Err(ConfigError::Env { name, .. }) if name == "WEFT_MAX_BATCH"));
        let bad = Config::from_parts(path, file, vars(&[("WEFT_MODULE_POLICY", "maybe")]));
        assert!(matches!(bad, Err(ConfigError::Env { name, .. }) if name == "WEFT_MODULE_POLICY"));
    }

    #[test]
    fn rate_limits_and_retries_have_named_variables() {
        let path = Path::new("weft.toml");
        let config = Config::from_parts(path, "", vars(&[])).expect("a configuration");
        assert_ne!(
            config.server.rate_limit,
            weft_http::ratelimit::RateLimits::off()
        );
        let config = Config::from_parts(
            path,
            "",
            vars(&[
                ("WEFT_RATE_LIMIT", "off"),
                ("WEFT_FEDERATION_RETRY", "1s, 5s"),
            ]),
        )
        .expect("a configuration");
        assert_eq!(
            config.server.rate_limit,
            weft_http::ratelimit::RateLimits::off()
        );
        assert_eq!(config.federation.retry, ["1s", "5s"]);
        for (name, value) in [
            ("WEFT_RATE_LIMIT", "maybe"),
            ("WEFT_FEDERATION_RETRY", "soon"),
        ] {
            let bad = Config::from_parts(path, "", vars(&[(name, value)]));
            assert!(
                matches!(&bad, Err(ConfigError::Env { name: n, .. }) if n == name),
                "{bad:?}"
            );
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Any key, at any depth, from the environment: numbers, booleans,
    /// lists and text; other WEFT_ variables are not keys and pass by; a
    /// value the key cannot take names the variable.
    #[test]
    fn every_key_can_be_set_from_the_environment() {
        let path = Path::new("weft.toml");
        let config = Config::from_parts(
            path,
            "max_batch = 8\n[runtime]\nbuild_step = 5\n",
            vars(&[
                ("WEFT_RUNTIME__FUEL_PER_CALL", "1000"),
                ("WEFT_SERVER__RATE_LIMIT__PER_IP_BURST", "7"),
                ("WEFT_FEDERATION__RETRY", "[\"1s\", \"5s\"]"),
                ("WEFT_FEDERATION__LIMIT_LOOPBACK", "true"),
                ("WEFT_SERVER__RATE_LIMIT__LIMIT_LOOPBACK", "true"),
                ("WEFT_SERVICE_ACTOR", "8"),
                ("WEFT_PUBLIC_URL", "https://weft.example.org"),
                ("WEFT_PERFMAP", "1"),
                ("HOME", "/root"),
            ]),
        )
        .expect("a configuration");
        assert_eq!(config.max_batch, 8);
        assert_eq!(config.runtime.build_step, 5);
        assert_eq!(config.runtime.fuel_per_call, 1000);
        assert_eq!(config.server.rate_limit.per_ip_burst, 7);
        assert!(config.server.rate_limit.limit_loopback);
        assert_eq!(config.federation.retry, ["1s", "5s"]);
        assert_eq!(
            config.service_actor, "8",
            "text when TOML reads another type"
        );
        assert_eq!(config.public_url(), "https://weft.example.org");
        let bad = Config::from_parts(path, "", vars(&[("WEFT_RUNTIME__DEADLINE_MS", "soon")]));
        assert!(
            matches!(&bad, Err(ConfigError::Env { name, .. }) if name == "WEFT_RUNTIME__DEADLINE_MS"),
            "{bad:?}"
        );
    }

    /// Every key the configuration has, nested ones included, is
    /// documented, and the commented file reads back as the configuration.
    #[test]
    fn the_commented_file_has_every_key_and_reads_back() {
        fn leaves(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
            for (key, value) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match value {
                    toml::Value::Table(inner) => leaves(&path, inner, out),
                    _ => out.push(path),
                }
            }
        }
        let mut config = Config {
            public_url: Some("https://weft.example.org".into()),
            cache_mb: Some(24),
            module_cache: Some("/cache".into()),
            tls_cert: Some("/c.pem".into()),
            tls_key: Some("/k.pem".into()),
            ..Config::default()
        };
        config.federation.ca_file = Some("/etc/ca.pem".into());
        let mut paths = Vec::new();
        leaves(
            "",
            &toml::Table::try_from(&config).expect("a table"),
            &mut paths,
        );
        for path in &paths {
            assert!(
                docs::meaning(path).is_some(),
                "`{path}` is not in config/docs.rs"
            );
        }
        assert_eq!(
            paths.len(),
            docs::KEYS.len(),
            "a documented key the configuration lacks"
        );
        for config in [Config::default(), config] {
            let text = config.commented_toml();
            let read: Config = toml::from_str(&text).expect("the commented file parses");
            assert_eq!(read, config, "{text}");
        }
        let text = Config::default().commented_toml();
        assert!(text.contains("# fuel (about WebAssembly instructions) per module call"));
        assert!(text.contains("# public_url = \"https://weft.example.org\""));
    }

    #[test]
    fn unknown_settings_are_an_error() {
        assert!(toml::from_str::<Config>("listne = \"x\"").is_err());
    }
}
