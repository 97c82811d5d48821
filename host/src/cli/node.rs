//! A node on disk: the data folder's files, `init`, and serving.
//!
//! The data folder holds `weft.toml`, the store's file
//! ([`weft_store::FILE_NAME`]), `keys.json` (0600) and `admin.token` (0600).
//! Nothing else is needed to run a node.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::net::TcpListener;

use crate::config::Config;
use weft_core::identity::token;
use weft_http::{self as http, AppState};
use weft_kernel::{Kernel, KernelError, KernelOptions};
use weft_store::StoreError;

/// The files of one node.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub path: PathBuf,
}

impl DataDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn config_file(&self) -> PathBuf {
        self.path.join("weft.toml")
    }

    pub fn db(&self) -> PathBuf {
        self.path.join(weft_store::FILE_NAME)
    }

    pub fn keys(&self) -> PathBuf {
        self.path.join("keys.json")
    }

    pub fn admin_token_file(&self) -> PathBuf {
        self.path.join("admin.token")
    }

    /// Where the running node listens, written when it starts serving, so
    /// that commands reach the node that owns this folder (`weft run
    /// --listen` may differ from `weft.toml`), never whatever else
    /// answers at a configured port.
    pub fn serving_file(&self) -> PathBuf {
        self.path.join("serving.addr")
    }

    /// The address the running node recorded, if it did.
    pub fn serving_addr(&self) -> Option<std::net::SocketAddr> {
        fs::read_to_string(self.serving_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The admin token `weft init` wrote.
    pub fn admin_token(&self) -> anyhow::Result<String> {
        let path = self.admin_token_file();
        let token = fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read the admin token at {} (run `weft init`)",
                path.display()
            )
        })?;
        Ok(token.trim().to_owned())
    }

    pub fn config(&self) -> anyhow::Result<Config> {
        Config::load(&self.path).context("cannot load the configuration")
    }
}

/// An open node: the kernel over a data folder, with its configuration.
#[derive(Debug)]
pub struct Node {
    pub kernel: Arc<Kernel>,
    pub config: Config,
    pub data: DataDir,
}

/// Why a node could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the node is running (its database is locked)")]
    Running,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Node {
    /// Opens the kernel over `data` with `config`.
    pub fn open(data: &DataDir, config: Config) -> Result<Self, OpenError> {
        Self::open_as(data, config, false)
    }

    /// Opens the kernel over `data`; with `kernel_only`, without the WASM
    /// runtime: every verb is accepted and nothing is folded. That mode
    /// exists to measure the kernel alone (`weft run --kernel-only`); a node
    /// serving users runs its modules.
    pub fn open_as(data: &DataDir, config: Config, kernel_only: bool) -> Result<Self, OpenError> {
        let options = KernelOptions {
            db_path: data.db(),
            keys_path: data.keys(),
            max_batch: config.max_batch,
            cache_mb: config.cache_mb.unwrap_or_else(weft_store::default_cache_mb),
            quick_repair: config.quick_repair,
        };
        let cache = config
            .module_cache
            .clone()
            .unwrap_or_else(|| data.path.join("modules"));
        let opened = if kernel_only {
            Kernel::open(&options, Arc::new(weft_kernel::modules::OpenVocabulary))
        } else {
            Kernel::open_wasm(&options, config.runtime.clone(), cache)
        };
        match opened {
            Ok(kernel) => {
                let kernel = Arc::new(kernel);
                let mut config = config;
                // Actor ids were fixed under the public URL at init.
                if kernel.is_initialised().unwrap_or(false)
                    && let Ok(stored) = kernel.public_url()
                {
                    match &config.public_url {
                        Some(url) if url.trim_end_matches('/') != stored => {
                            kernel.close();
                            return Err(OpenError::Other(anyhow::anyhow!(
                                "weft.toml sets public_url = \"{url}\", but this node's actor ids were fixed under {stored} when it was initialised, and ids cannot move: put public_url = \"{stored}\" back in {} (`listen` may change freely), or initialise a new data folder for the new address",
                                data.config_file().display()
                            )));
                        }
                        Some(_) => {}
                        // Unset: the node's own URL, whatever `listen` is now.
                        None => config.public_url = Some(stored.to_owned()),
                    }
                }
                kernel.start_reactions();
                Ok(Self {
                    kernel,
                    config,
                    data: data.clone(),
                })
            }
            Err(KernelError::Store(StoreError::Locked)) => Err(OpenError::Running),
            Err(e) => Err(OpenError::Other(
                anyhow::Error::new(e)
                    .context(format!("cannot open the node in {}", data.path.display())),
            )),
        }
    }

    /// Creates the data folder (0700), writes `weft.toml` if absent, and
    /// bootstraps the node: its service actor and the admin token, which is
    /// returned once and kept in `admin.token` (0600).
    pub async fn init(data: &DataDir, config: Config) -> anyhow::Result<(Self, String)> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&data.path)
            .with_context(|| format!("cannot create the data folder {}", data.path.display()))?;
        if !data.config_file().exists() {
            fs::write(data.config_file(), config.commented_toml())
                .with_context(|| format!("cannot write {}", data.config_file().display()))?;
        }
        let node = match Self::open(data, config) {
            Ok(node) => node,
            Err(OpenError::Running) => bail!(
                "the node in {} is running; stop it first",
                data.path.display()
            ),
            Err(OpenError::Other(e)) => return Err(e),
        };
        if node.kernel.is_initialised()? {
            bail!(
                "{} is already initialised; its admin token is in {}",
                data.path.display(),
                data.admin_token_file().display()
            );
        }
        let admin = token::generate();
        write_secret(&data.admin_token_file(), &admin)?;
        node.kernel
            .bootstrap(
                &node.config.service_actor,
                &node.config.public_url(),
                &admin,
            )
            .await
            .context("cannot create the node's service actor")?;
        node.kernel
            .install_genesis()
            .await
            .context("cannot register the built-in verbs and projections")?;
        Ok((node, admin))
    }

    /// What the HTTP handlers reach ([`http::router`]'s state), with the
    /// node's federation, which is not started: [`Node::serve`] starts it
    /// (deliveries, backfills); the CLI's in-process transport
    /// ([`super::client`]) leaves it stopped.
    pub fn app(&self) -> anyhow::Result<(AppState, Arc<weft_federation::Federation>)> {
        let mut settings = self.config.federation.clone();
        settings.staging_dir = Some(self.data.path.join("staging"));
        let federation = weft_federation::Federation::new(self.kernel.clone(), settings)
            .map_err(|e| anyhow::anyhow!("weft.toml [federation]: {e}"))?;
        let state = AppState {
            kernel: self.kernel.clone(),
            config: Arc::new(http::Settings {
                max_body_bytes: self.config.max_body_bytes,
                page_size: self.config.page_size,
                runtime: self.config.runtime.clone(),
            }),
            public_url: self.config.public_url().into(),
            federation: federation.clone(),
            rate: Arc::new(http::ratelimit::Limiter::new(
                &self.config.server.rate_limit,
            )),
            history: Arc::default(),
            sessions: Arc::default(),
        };
        Ok((state, federation))
    }

    /// Serves HTTP on `listener` until `shutdown` resolves, then stops the
    /// kernel cleanly (in-flight requests finish, the writer drains).
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let tls = http::tls::acceptor(
            self.config.tls_cert.as_deref(),
            self.config.tls_key.as_deref(),
        )
        .context("weft.toml tls_cert / tls_key")?;
        self.config
            .server
            .check()
            .map_err(|e| anyhow::anyhow!("weft.toml [server]: {e}"))?;
        let (state, federation) = self.app()?;
        http::status::spawn_sampler(&state);
        let added = self
            .kernel
            .install_missing_builtins()
            .await
            .context("cannot register this release's new built-in modules")?;
        if !added.is_empty() {
            tracing::info!(modules = ?added, "registered built-in modules this node did not have yet");
        }
        federation
            .start()
            .context("cannot resume deliveries and backfills")?;
        let served = http::serve(
            listener,
            http::router(state),
            tls,
            &self.config.server,
            shutdown,
        )
        .await
        .context("the HTTP server failed");
        federation.stop();
        drop(federation);
        served?;
        // Waiting for the writer blocks; keep it off the async threads, which
        // may still be finishing reactions.
        let kernel = self.kernel.clone();
        tokio::task::spawn_blocking(move || kernel.close())
            .await
            .context("stopping the kernel")?;
        Ok(())
    }
}

/// Writes a secret file readable only by its owner.
pub fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(file, "{secret}")?;
    file.sync_all()?;
    Ok(())
}

/// A future that resolves when the process gets SIGTERM or Ctrl-C. The
/// handlers are installed now, before the port opens, so a signal that
/// arrives at any moment after this call shuts the node down cleanly.
pub fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("shutting down");
    })
}
