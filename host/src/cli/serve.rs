//! `weft run [--listen ADDR] [--kernel-only]`: serves the node until
//! SIGTERM or Ctrl-C, initialising the data folder with defaults on first
//! run (and then printing the admin token once, as `init` does).

use anyhow::{Context, bail};

use super::Output;
use super::node::{self, DataDir, Node, OpenError};

pub async fn run(
    data: &DataDir,
    listen: Option<std::net::SocketAddr>,
    kernel_only: bool,
    out: Output,
) -> anyhow::Result<()> {
    let mut config = data.config()?;
    if let Some(listen) = listen {
        config.listen = listen;
    }
    // Signals are caught from before the port accepts: a SIGTERM as soon
    // as it does stops the node cleanly, even while it initialises.
    let shutdown = node::shutdown_signal()?;
    let listen = config.listen;
    let bind = || async move {
        tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))
    };
    let (node, listener) = if data.db().exists() {
        let node = match Node::open_as(data, config, kernel_only) {
            Ok(node) => node,
            Err(OpenError::Running) => {
                bail!("a node is already running on {}", data.path.display())
            }
            Err(OpenError::Other(e)) => return Err(e),
        };
        (node, bind().await?)
    } else if kernel_only {
        bail!(
            "--kernel-only serves an initialised node: run `weft init` first ({} has none)",
            data.path.display()
        );
    } else {
        // The address first: a first start that cannot listen leaves no
        // half-made node behind (no data folder, no ids under that port).
        let listener = bind().await?;
        let (node, admin) = Node::init(data, config).await?;
        super::init::print(&node, &admin, out)?;
        (node, listener)
    };
    if !node.kernel.is_initialised()? {
        bail!(
            "{} holds a database but the node was never initialised; remove it and run `weft init`",
            data.path.display()
        );
    }
    let bound = listener.local_addr().unwrap_or(listen);
    std::fs::write(data.serving_file(), bound.to_string())
        .with_context(|| format!("cannot write {}", data.serving_file().display()))?;
    tracing::info!(listen = %bound, public_url = %node.config.public_url(), "weft is serving");
    let served = node.serve(listener, shutdown).await;
    let _ = std::fs::remove_file(data.serving_file());
    served
}
