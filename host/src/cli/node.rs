//! A node on disk: the data folder's files, `init`, and serving.
//!
//! The data folder holds `weft.toml`, `weft.redb`, `keys.json` (0600) and
//! `admin.token` (0600). Nothing else is needed to run a node.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::identity::token;
use crate::kernel::{Kernel, KernelError, KernelOptions, OpenVocabulary};
use crate::store::StoreError;

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
        self.path.join("weft.redb")
    }

    pub fn keys(&self) -> PathBuf {
        self.path.join("keys.json")
    }

    pub fn admin_token_file(&self) -> PathBuf {
        self.path.join("admin.token")
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
        let options = KernelOptions {
            db_path: data.db(),
            keys_path: data.keys(),
            max_batch: config.max_batch,
        };
        match Kernel::open(&options, Arc::new(OpenVocabulary)) {
            Ok(kernel) => Ok(Self {
                kernel: Arc::new(kernel),
                config,
                data: data.clone(),
            }),
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
            fs::write(data.config_file(), config.to_toml())
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
        Ok((node, admin))
    }

    /// Serves HTTP on `listener` until `shutdown` resolves, then stops the
    /// kernel cleanly (in-flight requests finish, the writer drains).
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = AppState {
            kernel: self.kernel.clone(),
            config: Arc::new(self.config.clone()),
            public_url: self.config.public_url().into(),
        };
        http::serve(listener, http::router(state), shutdown)
            .await
            .context("the HTTP server failed")?;
        self.kernel.close();
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

/// Resolves when the process gets SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
