//! A real `weft` node for end-to-end tests: a temp data folder, the built
//! binary run as a child process on a free loopback port, and helpers to run
//! CLI commands against the same data folder.
//!
//! The child is killed on drop, so a failing test never leaves a process
//! behind; its stdout and stderr go to files in the temp folder so a failure
//! can show what the node said. Several nodes, each behind a
//! fault-injecting proxy, for the partition suite: [`cluster`].
//!
//! Not the HTTP helpers, chain checks, fixtures and polling: those are
//! `weft-test-support`'s, shared with the API and module tests, and
//! re-exported here under the names these tests import.

pub mod cluster;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::Value;
use weft_test_support::Api;
pub use weft_test_support::{PUBLIC, cid, cid_of, note};

/// The `weft` binary cargo built for this test target.
pub const WEFT: &str = env!("CARGO_BIN_EXE_weft");

/// How long a node may take to answer `/health` or to exit after SIGTERM.
const PATIENCE: Duration = Duration::from_secs(30);

/// One node: its data folder, its port, and (while running) its process.
#[derive(Debug)]
pub struct Weft {
    /// Holds the data folder and the logs; removed on drop.
    tmp: tempfile::TempDir,
    /// The data folder (`--data`), inside `tmp`.
    pub data: PathBuf,
    pub port: u16,
    /// `http://127.0.0.1:{port}`.
    pub base: String,
    /// The admin token `init` printed (empty until the node is initialised).
    pub admin: String,
    pub http: reqwest::Client,
    child: Option<Child>,
    /// How many times the node has been started (names its log files).
    runs: usize,
    /// Extra environment for `run` (e.g. `RUST_LOG`).
    run_env: Vec<(String, String)>,
    /// Extra arguments for `run` (e.g. `--kernel-only`).
    pub run_args: Vec<String>,
}

impl Weft {
    /// A node whose data folder does not exist yet.
    pub fn uninitialised() -> anyhow::Result<Self> {
        let tmp = tempfile::tempdir().context("cannot make a temp folder")?;
        let data = tmp.path().join("data");
        let port = free_port()?;
        let http = weft_test_support::http::client_builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            tmp,
            data,
            port,
            base: format!("http://127.0.0.1:{port}"),
            admin: String::new(),
            http,
            child: None,
            runs: 0,
            run_env: Vec::new(),
            run_args: Vec::new(),
        })
    }

    /// A node that serves HTTPS with a certificate of `tls`'s CA and
    /// trusts that CA for its own outbound requests, initialised (stopped).
    pub fn init_tls(tls: &TestCa) -> anyhow::Result<Self> {
        let mut weft = Self::uninitialised()?;
        let (cert, key) = tls.issue(weft.tmp(), "node")?;
        let ca = weft.tmp().join("ca.pem");
        std::fs::write(&ca, &tls.pem)?;
        std::fs::create_dir_all(&weft.data)?;
        let toml = format!(
            "listen = \"{}\"\ntls_cert = {:?}\ntls_key = {:?}\n\n[federation]\nca_file = {:?}\n",
            weft.listen(),
            cert,
            key,
            ca,
        );
        std::fs::write(weft.data.join("weft.toml"), toml)?;
        weft.base = format!("https://127.0.0.1:{}", weft.port);
        weft.http = weft_test_support::http::client_builder()
            .timeout(Duration::from_secs(30))
            .add_root_certificate(reqwest::Certificate::from_pem(tls.pem.as_bytes())?)
            .build()?;
        let out = weft.cli(&["init"])?;
        let out = success(out, "weft init")?;
        weft.admin = admin_token_from(&out)?;
        Ok(weft)
    }

    /// Initialises this node (stopped) with a `weft.toml` holding its
    /// `listen` address and then `toml` (for example a `public_url` and a
    /// `[federation]` table), which `weft init` keeps.
    pub fn initialise_with(&mut self, toml: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.data)?;
        let toml = format!("listen = \"{}\"\n{toml}", self.listen());
        std::fs::write(self.data.join("weft.toml"), toml)?;
        let out = self.cli(&["init"])?;
        let out = success(out, "weft init")?;
        self.admin = admin_token_from(&out)?;
        Ok(())
    }

    /// A node initialised with `weft init --listen 127.0.0.1:PORT` (stopped).
    pub fn init() -> anyhow::Result<Self> {
        let mut weft = Self::uninitialised()?;
        let listen = weft.listen();
        let out = weft.cli(&["init", "--listen", &listen])?;
        let out = success(out, "weft init")?;
        weft.admin = admin_token_from(&out)?;
        Ok(weft)
    }

    /// `127.0.0.1:PORT`.
    pub fn listen(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The folder holding the data folder and logs.
    pub fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    /// `weft --data DIR ARGS…`, with no stray `WEFT_*` settings from the
    /// environment of the test run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(WEFT);
        for var in [
            "WEFT_DATA",
            "WEFT_LISTEN",
            "WEFT_PUBLIC_URL",
            "WEFT_MAX_BODY_BYTES",
            "WEFT_MAX_BATCH",
            "WEFT_ADMIN_TOKEN",
            "WEFT_MODULE_CACHE",
            "WEFT_FEDERATION_RETRY",
            "WEFT_MODULE_POLICY",
            "WEFT_TLS_CERT",
            "WEFT_TLS_KEY",
            "WEFT_CA_FILE",
            "WEFT_ALLOW_PRIVATE_ADDRESSES",
            "WEFT_TEST_CLOCK_OFFSET",
            "WEFT_LOG_FORMAT",
        ] {
            cmd.env_remove(var);
        }
        // Every node of a test runs on loopback, which a node on the
        // internet refuses to reach.
        cmd.env("WEFT_ALLOW_PRIVATE_ADDRESSES", "true");
        cmd.env("RUST_LOG", "info");
        // Compile the built-in modules once per test run, not once per node.
        cmd.env("WEFT_MODULE_CACHE", weft_test_support::module_cache!());
        cmd.arg("--data").arg(&self.data).args(args);
        cmd
    }

    /// Runs a CLI command to completion (stdin empty).
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run weft {args:?}"))
    }

    /// Runs a CLI command with `input` on its stdin.
    pub fn cli_stdin(&self, args: &[&str], input: &str) -> anyhow::Result<Output> {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run weft {args:?}"))?;
        {
            let mut stdin = child.stdin.take().context("no stdin pipe")?;
            stdin.write_all(input.as_bytes())?;
        }
        Ok(child.wait_with_output()?)
    }

    /// Runs `weft verify FILE EXTRA…`.
    pub fn verify(&self, file: &Path, extra: &[&str]) -> anyhow::Result<Output> {
        let file = file.to_string_lossy().into_owned();
        let mut args = vec!["verify", file.as_str()];
        args.extend_from_slice(extra);
        self.cli(&args)
    }

    /// Runs a CLI command with `input` on stdin that must succeed; returns
    /// its stdout.
    pub fn cli_stdin_ok(&self, args: &[&str], input: &str) -> anyhow::Result<String> {
        success(
            self.cli_stdin(args, input)?,
            &format!("weft {} < input", args.join(" ")),
        )
    }

    /// Runs a CLI command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        success(self.cli(args)?, &format!("weft {}", args.join(" ")))
    }

    /// Runs a CLI command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> anyhow::Result<String> {
        failure(self.cli(args)?, &format!("weft {}", args.join(" ")))
    }

    /// Sets an environment variable for the next `start`.
    pub fn run_env(&mut self, name: &str, value: &str) {
        self.run_env.push((name.to_owned(), value.to_owned()));
    }

    /// Starts `weft run --listen 127.0.0.1:PORT` and waits until `/health`
    /// answers. Its stdout and stderr go to `run-N.stdout` / `run-N.stderr`.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        self.spawn_run()?;
        self.wait_healthy().await?;
        Ok(())
    }

    /// Spawns `weft run --listen 127.0.0.1:PORT` without waiting for it.
    pub fn spawn_run(&mut self) -> anyhow::Result<()> {
        ensure!(self.child.is_none(), "the node is already running");
        self.runs += 1;
        let stdout = File::create(self.stdout_path())?;
        let stderr = File::create(self.stderr_path())?;
        let listen = self.listen();
        let mut args = vec!["run", "--listen", &listen];
        args.extend(self.run_args.iter().map(String::as_str));
        let mut cmd = self.command(&args);
        for (name, value) in &self.run_env {
            cmd.env(name, value);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .context("cannot start weft run")?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until the node's port accepts TCP connections.
    pub fn wait_listening(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            self.still_running("listening")?;
            if std::net::TcpStream::connect(self.listen()).is_ok() {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "weft run did not listen on {} within {PATIENCE:?}",
                self.listen()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Fails, with its stderr, if the node's process has exited before
    /// `doing` what it was waited for.
    fn still_running(&mut self, doing: &str) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            self.child = None;
            bail!(
                "weft run exited with {status} before {doing}; its stderr:\n{}",
                self.stderr()
            );
        }
        Ok(())
    }

    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        let url = format!("{}/health", self.base);
        loop {
            self.still_running("serving")?;
            let answer = self
                .http
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if let Ok(response) = answer
                && response.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "weft run did not answer {url} within {PATIENCE:?}; its stderr:\n{}",
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends SIGTERM and waits for the node to exit; returns its exit status.
    pub fn terminate(&mut self) -> anyhow::Result<ExitStatus> {
        match self.terminate_within(PATIENCE)? {
            Some(status) => Ok(status),
            None => bail!(
                "the node did not exit within {PATIENCE:?} of SIGTERM; its stderr:\n{}",
                self.stderr()
            ),
        }
    }

    /// Sends SIGTERM and waits up to `patience` for the node to exit.
    /// Returns its exit status, or `None` if it was still running (it is
    /// then killed with SIGKILL).
    pub fn terminate_within(&mut self, patience: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let mut child = self.child.take().context("the node is not running")?;
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .context("cannot run kill")?;
        ensure!(status.success(), "kill -TERM failed: {status}");
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the node with SIGTERM and checks it shut down cleanly (exit 0).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let status = self.terminate()?;
        ensure!(
            status.success(),
            "the node did not shut down cleanly on SIGTERM ({status}); its stderr:\n{}",
            self.stderr()
        );
        Ok(())
    }

    /// Kills the node with SIGKILL (no chance to clean up) and reaps it.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        let mut child = self.child.take().context("the node is not running")?;
        child.kill().context("cannot SIGKILL the node")?;
        child.wait()?;
        Ok(())
    }

    fn stdout_path(&self) -> PathBuf {
        self.tmp.path().join(format!("run-{}.stdout", self.runs))
    }

    fn stderr_path(&self) -> PathBuf {
        self.tmp.path().join(format!("run-{}.stderr", self.runs))
    }

    /// The running node's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the latest `weft run` wrote to stdout.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.stdout_path()).unwrap_or_default()
    }

    /// What the latest `weft run` wrote to stderr (its log).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    /// Creates an actor with `weft actor create NAME`; returns (id, token).
    pub fn create_actor(&self, name: &str) -> anyhow::Result<(String, String)> {
        let out = self.ok(&["actor", "create", name])?;
        created_from(&out)
    }

    /// Creates an actor over HTTP with the admin token; returns (id, token).
    pub async fn create_actor_http(&self, name: &str) -> anyhow::Result<(String, String)> {
        self.api().create_actor(&self.admin, name).await
    }

    /// `POST /activity` with `token`; returns (status, body).
    pub async fn post_activity(&self, token: &str, draft: &Value) -> anyhow::Result<(u16, Value)> {
        self.api().publish(token, draft).await
    }

    /// GET `path` (optionally with a bearer token); returns (status, body).
    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<(u16, Value)> {
        self.api().get(path, token).await
    }

    /// GET `path`, which must answer 200; returns the JSON body.
    pub async fn get_ok(&self, path: &str, token: Option<&str>) -> anyhow::Result<Value> {
        self.api().get_ok(path, token).await
    }

    /// A handle on the node's HTTP API (its client and base URL as they are
    /// now).
    pub fn api(&self) -> Api {
        Api::new(self.http.clone(), self.base.clone())
    }

    /// Writes `contents` to a file in the temp folder; returns its path.
    pub fn write_file(&self, name: &str, contents: &str) -> anyhow::Result<PathBuf> {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, contents).with_context(|| format!("cannot write {name}"))?;
        Ok(path)
    }

    /// Walks an actor's whole log with `?since=&limit=200` and its token,
    /// checking it is a gap-free chain: seq 1..n in order, seq 1 has
    /// `prev: null`, every other `prev` is the content id of the one
    /// before ([`weft_test_support::assert_linked`]).
    /// Returns the activities, oldest first.
    pub async fn walk_log(&self, name: &str, token: &str) -> anyhow::Result<Vec<Value>> {
        let mut items: Vec<Value> = Vec::new();
        let mut since = String::new();
        loop {
            let page = self
                .get_ok(
                    &format!("/actors/{name}/outbox?since={since}&limit=200"),
                    Some(token),
                )
                .await?;
            let batch = page["orderedItems"]
                .as_array()
                .context("a page without orderedItems")?;
            items.extend(batch.iter().cloned());
            if page.get("next").is_none() {
                break;
            }
            ensure!(!batch.is_empty(), "an empty page with a next link");
            since = cid(items.last().context("no last item")?);
        }
        weft_test_support::assert_linked(&items, name)?;
        Ok(items)
    }
}

impl Drop for Weft {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The stdout of a command that must have succeeded.
pub fn success(out: Output, what: &str) -> anyhow::Result<String> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    Ok(stdout)
}

/// The stderr of a command that must have failed; checks it says something.
pub fn failure(out: Output, what: &str) -> anyhow::Result<String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(
        !out.status.success(),
        "{what} should have failed but succeeded:\nstdout: {stdout}\nstderr: {stderr}"
    );
    ensure!(
        stderr.contains("error:"),
        "{what} failed without an error message on stderr: {stderr:?}"
    );
    Ok(stderr)
}

/// The admin token from `weft init` / first `weft run` output.
pub fn admin_token_from(stdout: &str) -> anyhow::Result<String> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("admin token"))
        .with_context(|| format!("no admin token line in {stdout:?}"))?;
    let token = line.rsplit(": ").next().context("no token")?.trim();
    ensure!(!token.is_empty(), "an empty admin token in {line:?}");
    Ok(token.to_owned())
}

/// The (id, token) from `weft actor create` output.
pub fn created_from(stdout: &str) -> anyhow::Result<(String, String)> {
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("created "))
        .with_context(|| format!("no `created ID` line in {stdout:?}"))?
        .trim()
        .to_owned();
    let token = stdout
        .lines()
        .find(|l| l.starts_with("token"))
        .and_then(|l| l.rsplit(": ").next())
        .with_context(|| format!("no token line in {stdout:?}"))?
        .trim()
        .to_owned();
    ensure!(
        !id.is_empty() && !token.is_empty(),
        "empty id or token in {stdout:?}"
    );
    Ok((id, token))
}

/// A signed activity from the JSON a command printed.
pub fn activity_from(stdout: &str) -> anyhow::Result<Value> {
    let value: Value = serde_json::from_str(stdout.trim())
        .with_context(|| format!("the output is not one JSON activity: {stdout:?}"))?;
    ensure!(
        value["id"].is_string() && value["proof"]["signature"].is_string(),
        "not a signed activity: {value}"
    );
    Ok(value)
}

/// Polls `check` every 100 ms (these nodes are processes, polled over
/// HTTP) until it answers `Some`, for at most `seconds`.
pub async fn eventually<T>(
    seconds: u64,
    what: &str,
    check: impl AsyncFnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    weft_test_support::eventually_every(Duration::from_millis(100), seconds, what, check).await
}

/// Publishes `draft` with `token` and expects 201; returns the activity.
pub async fn publish(weft: &Weft, token: &str, draft: Value) -> anyhow::Result<Value> {
    weft.api().publish_ok(token, &draft).await
}

/// The Unix permission bits of `path`.
pub fn mode(path: &Path) -> anyhow::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).with_context(|| format!("no {}", path.display()))?;
    Ok(meta.permissions().mode() & 0o777)
}

/// A certificate authority made by the test (rcgen), whose certificates
/// name `localhost` and `127.0.0.1`.
#[derive(Debug)]
pub struct TestCa {
    /// The CA certificate, PEM.
    pub pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new() -> anyhow::Result<Self> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "weft test CA");
        let key = rcgen::KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// A server certificate and key for `localhost` and `127.0.0.1`,
    /// written into `dir` as `{name}.crt` and `{name}.key`.
    pub fn issue(&self, dir: &Path, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        let key = rcgen::KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let (cert_path, key_path) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_path, cert.pem())?;
        std::fs::write(&key_path, key.serialize_pem())?;
        Ok((cert_path, key_path))
    }
}

/// The items of `name`'s `followers` or `following` collection.
pub async fn collection(weft: &Weft, name: &str, which: &str) -> anyhow::Result<Vec<Value>> {
    let body = weft
        .get_ok(&format!("/actors/{name}/{which}"), None)
        .await?;
    Ok(body["orderedItems"].as_array().cloned().unwrap_or_default())
}
