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
    let node = if data.db().exists() {
        match Node::open_as(data, config, kernel_only) {
            Ok(node) => node,
            Err(OpenError::Running) => {
                bail!("a node is already running on {}", data.path.display())
            }
            Err(OpenError::Other(e)) => return Err(e),
        }
    } else if kernel_only {
        bail!(
            "--kernel-only serves an initialised node: run `weft init` first ({} has none)",
            data.path.display()
        );
    } else {
        let (node, admin) = Node::init(data, config).await?;
        super::init::print(&node, &admin, out)?;
        node
    };
    if !node.kernel.is_initialised()? {
        bail!(
            "{} holds a database but the node was never initialised; remove it and run `weft init`",
            data.path.display()
        );
    }
    let shutdown = node::shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(node.config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", node.config.listen))?;
    tracing::info!(listen = %node.config.listen, public_url = %node.config.public_url(), "weft is serving");
    node.serve(listener, shutdown).await
}
