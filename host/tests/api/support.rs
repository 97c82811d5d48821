//! A real node for the API and module tests ([`TestNode`]): a temp data
//! folder, a real redb file, the real router on a loopback socket, run in
//! this process through the `weft` package's library; and the helpers of
//! `weft-test-support` these tests use, re-exported under the names they
//! import.
//!
//! Not the helpers themselves (HTTP, checks on logs and signatures,
//! fixtures, polling, reading the store are `weft-test-support`'s, shared
//! with the end-to-end tests), and not a `weft` process: the end-to-end
//! tests run the binary (`tests/e2e/support.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::Value;
use tokio::sync::oneshot;
use weft::cli::node::{DataDir, Node, OpenError};
use weft::config::Config;
use weft_kernel::Kernel;
use weft_test_support::state;
pub use weft_test_support::{
    Api, Reply, Req, assert_chain, assert_http_key, assert_problem, eventually, id_of, note,
    private_note, url_id, verify, verify_err,
};

/// A running node and what a test needs to talk to it.
pub struct TestNode {
    pub base: String,
    pub admin: String,
    pub kernel: Arc<Kernel>,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    addr: SocketAddr,
    /// The configuration it runs with (kept across restarts).
    config: Config,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestNode {
    /// Starts a fresh node on 127.0.0.1 with an ephemeral port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// Starts a fresh node whose configuration `edit` changes first.
    pub async fn start_with(edit: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let data = DataDir::new(dir.path().join("data"));
        let mut config = config(addr);
        edit(&mut config);
        let (node, admin) = Node::init(&data, config.clone()).await?;
        Ok(Self::serve(node, listener, admin, dir, config))
    }

    fn serve(
        node: Node,
        listener: tokio::net::TcpListener,
        admin: String,
        dir: tempfile::TempDir,
        config: Config,
    ) -> Self {
        let addr = node.config.listen;
        let kernel = node.kernel.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            node.serve(listener, async {
                let _ = stopped.await;
            })
            .await
        });
        Self {
            base: format!("http://{addr}"),
            admin,
            kernel,
            http: weft_test_support::http::client(),
            dir,
            addr,
            config,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The node's data folder.
    pub fn data(&self) -> DataDir {
        DataDir::new(self.dir.path().join("data"))
    }

    /// Stops the node cleanly and opens the same data folder again, served
    /// on the same address (actor ids contain it).
    pub async fn restart(self) -> anyhow::Result<Self> {
        self.restart_after(async { Ok(()) }).await
    }

    /// Stops the node cleanly, runs `while_down` (the node is unreachable
    /// meanwhile), then opens the same data folder again on the same
    /// address.
    pub async fn restart_after(
        mut self,
        while_down: impl std::future::Future<Output = anyhow::Result<()>>,
    ) -> anyhow::Result<Self> {
        self.shutdown().await?;
        while_down.await?;
        let Self {
            admin,
            kernel,
            dir,
            addr,
            config: kept,
            ..
        } = self;
        drop(kernel);
        let data = DataDir::new(dir.path().join("data"));
        ensure!(
            data.admin_token()? == admin,
            "admin.token changed across the restart"
        );
        // The database stays locked until the last handle of the old kernel
        // is gone, and the port may linger briefly: retry both for a while.
        let mut attempts = 0;
        let node = loop {
            match Node::open(&data, kept.clone()) {
                Ok(node) => break node,
                Err(OpenError::Running) if attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e).context("reopening the node"),
            }
        };
        let mut attempts = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(_) if attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("binding {addr} again")),
            }
        };
        Ok(Self::serve(node, listener, admin, dir, kept))
    }

    /// Creates an actor through the admin API; returns (id, token).
    pub async fn actor(&self, name: &str) -> anyhow::Result<(String, String)> {
        self.api().create_actor(&self.admin, name).await
    }

    /// Publishes a draft with `token`; returns (status, body).
    pub async fn publish(&self, token: &str, draft: &Value) -> anyhow::Result<(u16, Value)> {
        self.api().publish(token, draft).await
    }

    /// Publishes a draft that must be accepted; returns the signed activity.
    pub async fn publish_ok(&self, token: &str, draft: &Value) -> anyhow::Result<Value> {
        self.api().publish_ok(token, draft).await
    }

    /// GET a path, optionally with a token; returns (status, body).
    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<(u16, Value)> {
        self.api().get(path, token).await
    }

    /// GET a path that must answer 200; returns the body.
    pub async fn get_ok(&self, path: &str, token: Option<&str>) -> anyhow::Result<Value> {
        self.api().get_ok(path, token).await
    }

    /// The actor document of `name`.
    pub async fn doc(&self, name: &str) -> anyhow::Result<Value> {
        self.get_ok(&format!("/actors/{name}"), None).await
    }

    /// A full URL for `path`; absolute URLs (such as `next` links) pass through.
    pub fn url(&self, path: &str) -> String {
        self.api().url(path)
    }

    /// A cheap, cloneable handle on the node's API, for spawned tasks too.
    pub fn api(&self) -> Api {
        Api::new(self.http.clone(), self.base.clone())
    }

    /// Sends any request and returns what came back, whatever the status.
    pub async fn send(&self, req: Req) -> anyhow::Result<Reply> {
        self.api().send(req).await
    }

    /// Sends a request that must be refused with `status`: the answer must
    /// be a problem document, and the node's whole state (every log, tip,
    /// sequence and actor, and the key store) must be byte for byte what it
    /// was before. Returns the problem document.
    pub async fn assert_rejected(&self, req: Req, status: u16) -> anyhow::Result<Value> {
        let what = format!("{} {}", req.method, req.path);
        let before = self.snapshot()?;
        let keys_before = std::fs::read(self.data().keys())?;
        let reply = self.send(req).await?;
        let problem = assert_problem(&reply, status).with_context(|| what.clone())?;
        let after = self.snapshot()?;
        ensure!(
            before == after,
            "{what} was refused with {status} but changed the node:\n--- before\n{before}\n--- after\n{after}"
        );
        ensure!(
            keys_before == std::fs::read(self.data().keys())?,
            "{what} was refused with {status} but changed the key store"
        );
        Ok(problem)
    }

    /// Every activity of `actor_id`'s log, oldest first, straight from the
    /// store (checking that the log index and the records agree).
    pub fn log(&self, actor_id: &str) -> anyhow::Result<Vec<Value>> {
        state::log(self.kernel.store(), actor_id)
    }

    /// Follows `next` links from `path` to the end; returns every item seen.
    pub async fn walk(&self, path: &str, token: Option<&str>) -> anyhow::Result<Vec<Value>> {
        self.api().walk(path, token).await
    }

    /// Everything the node holds — every actor's state and whole log — as
    /// one string, to check that a rejected request changed nothing.
    pub fn snapshot(&self) -> anyhow::Result<String> {
        state::snapshot(self.kernel.store())
    }

    async fn shutdown(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }

    /// Stops serving and closes the kernel.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown().await
    }

    /// Stops the node and hands back its temp folder, so the data outlives
    /// the node.
    #[allow(
        dead_code,
        reason = "used by the modules test crate, which shares this harness"
    )]
    pub async fn stop_keeping_data(mut self) -> anyhow::Result<tempfile::TempDir> {
        self.shutdown().await?;
        drop(self.kernel);
        Ok(self.dir)
    }
}

fn config(addr: SocketAddr) -> Config {
    Config {
        listen: addr,
        module_cache: Some(shared_module_cache()),
        // A compressed delivery schedule, so retries and dead letters
        // happen within a test.
        federation: weft_federation::Settings {
            retry: vec!["300ms".into(), "600ms".into()],
            jitter_percent: 0,
            // Every node and peer of a test is on loopback.
            allow_private_addresses: true,
            ..Default::default()
        },
        ..Config::default()
    }
}

/// One compiled-module cache for every test node, so the genesis bundle is
/// compiled once per test run rather than once per node.
pub fn shared_module_cache() -> std::path::PathBuf {
    weft_test_support::module_cache!()
}
