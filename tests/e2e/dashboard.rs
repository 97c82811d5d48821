//! The operator's dashboard (issue 24) in a real headless browser: Debian's
//! Chromium driven over WebDriver (`chromedriver`, installed by
//! `tests/browser/install.sh`, which this test runs) against two real
//! `weft` nodes. The operator logs in with the admin token, sees the peer
//! a delivery went to and the dead letter it left while that peer was
//! down, retries it once the peer is back (and it is delivered), and rolls
//! a module back to an earlier version. Each page is also saved as a
//! screenshot (`target/tmp/dashboard-*.png`) and checked to be a real,
//! non-empty page of the window's size; what each page must show is
//! checked in the page itself, not pixel by pixel.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, ensure};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::support::cluster::{self, SYNC, dead_letters_to, origin};
use crate::support::{eventually, free_port, note};

/// Runs the browser's install script once per test run.
fn install() -> anyhow::Result<()> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser/install.sh");
    INSTALLED
        .get_or_init(|| {
            let out = Command::new(&script)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run tests/browser/install.sh: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "tests/browser/install.sh failed ({}):\n{}\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// `chromedriver` on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start() -> anyhow::Result<Self> {
        install()?;
        let port = free_port()?;
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start /usr/bin/chromedriver")?;
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(driver);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        anyhow::bail!("chromedriver did not listen on {port} within 5 s")
    }

    /// A headless Chromium session, with a profile of its own in `dir`
    /// and nothing that reaches beyond loopback.
    async fn browser(&self, dir: &Path) -> anyhow::Result<Client> {
        let profile = dir.join("chromium-profile");
        std::fs::create_dir_all(&profile)?;
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let Value::Object(caps) = caps else {
            anyhow::bail!("capabilities are an object");
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .context("cannot start a Chromium session through chromedriver")
    }
}

/// The text of the element `css` selects.
async fn text(browser: &Client, css: &str) -> anyhow::Result<String> {
    let found = browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await;
    match found {
        Ok(element) => Ok(element.text().await?),
        Err(e) => {
            let url = browser.current_url().await.map(|u| u.to_string());
            let body = browser.source().await.unwrap_or_default();
            anyhow::bail!("no `{css}` on {url:?} ({e}); the page:\n{body}")
        }
    }
}

/// Saves the page as `name`.png and checks it is a PNG of the window's
/// size holding more than a blank page would.
async fn screenshot(browser: &Client, name: &str) -> anyhow::Result<PathBuf> {
    let png = browser.screenshot().await?;
    ensure!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into()?);
    let height = u32::from_be_bytes(png[20..24].try_into()?);
    ensure!(
        width >= 1000 && height >= 600,
        "{name}: {width}×{height}, not the window's size"
    );
    ensure!(
        png.len() > 12_000,
        "{name}: {} bytes, about what a blank page takes",
        png.len()
    );
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("dashboard-{name}.png"));
    std::fs::write(&path, &png)?;
    Ok(path)
}

#[tokio::test]
async fn the_operator_logs_in_sees_a_peer_and_a_dead_letter_retries_it_and_rolls_back_a_module()
-> anyhow::Result<()> {
    let mut nodes = cluster::start(&["alice", "bob"], SYNC).await?;
    cluster::follow(&nodes[1], &nodes[0]).await?;
    let bob_origin = origin(&nodes[1]);
    // bob's node is down while alice posts: the delivery dead-letters.
    nodes[1].weft.stop()?;
    let sent = nodes[0].publish(note("while bob is away")).await?;
    let dead = eventually(30, "the delivery to bob's node to dead-letter", || async {
        Ok(dead_letters_to(&nodes[0], &bob_origin)
            .await?
            .first()
            .cloned())
    })
    .await?;
    let dead_id = dead["id"].as_u64().context("a dead letter without an id")?;
    nodes[1].weft.start().await?;
    let (alice, bob) = (&nodes[0], &nodes[1]);
    // Two versions of a verb, to roll back.
    let verb = format!("{}/weft-test-misbehave.wasm", weft_test_guests::DIR);
    alice.weft.ok(&[
        "module",
        "add",
        "verb",
        "Poll",
        &verb,
        "--description",
        "first",
    ])?;
    alice.weft.ok(&[
        "module",
        "add",
        "verb",
        "Poll",
        &verb,
        "--description",
        "second",
    ])?;

    let driver = Driver::start()?;
    let browser = driver.browser(alice.weft.tmp()).await?;
    let base = &alice.weft.base;
    let result = async {
        // The node's address shows what it is, and the way in.
        browser.goto(base).await?;
        let home = text(&browser, "main").await?;
        ensure!(
            home.contains("A weft node") && home.contains(&alice.actor),
            "the home page: {home}"
        );
        browser
            .find(Locator::Css("a[href=\"/admin\"]"))
            .await?
            .click()
            .await?;
        // Not logged in: the login form, and a wrong token is refused.
        browser.goto(&format!("{base}/admin")).await?;
        ensure!(
            browser.current_url().await?.path() == "/admin/login",
            "not sent to the login form"
        );
        browser
            .find(Locator::Css("#token"))
            .await?
            .send_keys("not the token")
            .await?;
        browser
            .find(Locator::Css("form.login button"))
            .await?
            .click()
            .await?;
        let refused = text(&browser, ".flash.error").await?;
        ensure!(refused.contains("not this node's admin token"), "{refused}");
        browser
            .find(Locator::Css("#token"))
            .await?
            .send_keys(&alice.weft.admin)
            .await?;
        browser
            .find(Locator::Css("form.login button"))
            .await?
            .click()
            .await?;
        let readiness = text(&browser, "#readiness").await?;
        ensure!(readiness == "ready", "the overview says {readiness}");
        let overview = text(&browser, "main").await?;
        ensure!(
            overview.contains("Activities stored per second")
                && overview.contains("Deliveries queued"),
            "the overview's charts: {overview}"
        );
        screenshot(&browser, "overview").await?;

        // The peer the delivery went to.
        browser.goto(&format!("{base}/admin/ui/peers")).await?;
        let peers = text(&browser, "#delivery-peers").await?;
        ensure!(
            peers.contains(&bob_origin),
            "bob's origin is not listed: {peers}"
        );
        screenshot(&browser, "peers").await?;

        // The dead letter, retried now that bob's node is back.
        browser.goto(&format!("{base}/admin/ui/deliveries")).await?;
        let row = format!("tr[data-dead-letter=\"{dead_id}\"]");
        let listed = text(&browser, &row).await?;
        ensure!(
            listed.contains(&bob_origin),
            "the dead letter's row: {listed}"
        );
        screenshot(&browser, "dead-letters").await?;
        browser
            .find(Locator::Css(&format!("{row} button[name=retry]")))
            .await?
            .click()
            .await?;
        let done = text(&browser, ".flash.done").await?;
        ensure!(
            done.contains(&format!("dead letter {dead_id} queued")),
            "{done}"
        );
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = screenshot(&browser, "failure").await;
        let _ = browser.close().await;
        return Err(e);
    }
    // Delivered this time: it leaves the dead letters, and bob's node has it.
    eventually(30, "the retried dead letter to be delivered", || async {
        let dead = dead_letters_to(alice, &bob_origin).await?;
        Ok((!dead.iter().any(|d| d["id"] == dead_id)).then_some(()))
    })
    .await?;
    let (status, _) = bob
        .weft
        .get(&format!("/activities/{}", crate::support::cid(&sent)), None)
        .await?;
    assert_eq!(status, 200, "bob's node lacks the retried activity");

    let result = async {
        browser.goto(&format!("{base}/admin/ui/deliveries")).await?;
        ensure!(
            browser
                .find(Locator::Css(&format!("tr[data-dead-letter=\"{dead_id}\"]")))
                .await
                .is_err(),
            "the delivered dead letter is still listed"
        );

        // Roll Poll back from version 2 to 1.
        browser.goto(&format!("{base}/admin/ui/modules")).await?;
        let version = text(&browser, "tr[data-module=\"Poll\"] td.version").await?;
        ensure!(version == "2", "Poll is at version {version}");
        screenshot(&browser, "modules").await?;
        browser
            .find(Locator::Css(
                "tr[data-module=\"Poll\"] button[name=rollback]",
            ))
            .await?
            .click()
            .await?;
        browser
            .accept_alert()
            .await
            .context("no confirmation asked")?;
        let done = text(&browser, ".flash.done").await?;
        ensure!(
            done.contains("rolled back to version 1 as version 3"),
            "{done}"
        );
        let version = text(&browser, "tr[data-module=\"Poll\"] td.version").await?;
        ensure!(
            version == "3",
            "Poll is at version {version} after the rollback"
        );
        screenshot(&browser, "rolled-back").await?;

        // Logging out ends the session.
        browser
            .find(Locator::Css("header form button"))
            .await?
            .click()
            .await?;
        browser.goto(&format!("{base}/admin/ui/modules")).await?;
        ensure!(
            browser.current_url().await?.path() == "/admin/login",
            "still logged in after logging out"
        );
        anyhow::Ok(())
    }
    .await;
    if result.is_err() {
        let _ = screenshot(&browser, "failure").await;
    }
    browser.close().await?;
    result?;

    // The registry agrees with the page: version 3 is version 1's module.
    let registry = alice
        .weft
        .get_ok("/projections/define-registry", None)
        .await?;
    let poll = registry["verbs"]
        .as_array()
        .and_then(|v| v.iter().find(|m| m["name"] == "Poll"))
        .cloned()
        .context("no Poll")?;
    assert_eq!(poll["version"], 3, "{poll}");
    assert_eq!(poll["description"], "first", "{poll}");
    // An action without a session is refused, and changes nothing.
    let reply = alice
        .weft
        .http
        .post(format!("{base}/admin/ui/modules/Poll/rollback"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("version=2")
        .send()
        .await?;
    assert_eq!(reply.status(), 401);
    let again = alice
        .weft
        .get_ok("/projections/define-registry", None)
        .await?;
    assert_eq!(
        again, registry,
        "an action without a session changed the registry"
    );
    Ok(())
}
