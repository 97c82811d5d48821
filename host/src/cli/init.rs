//! `weft init [--listen ADDR] [--public-url URL]`: creates the data folder,
//! `weft.toml`, the node's service actor and the admin token, which it
//! prints once (it is also kept in `admin.token`).

use serde_json::json;

use super::Output;
use super::node::{DataDir, Node};

pub async fn run(
    data: &DataDir,
    listen: Option<std::net::SocketAddr>,
    public_url: Option<String>,
    out: Output,
) -> anyhow::Result<()> {
    let mut config = data.config()?;
    if let Some(listen) = listen {
        config.listen = listen;
    }
    if public_url.is_some() {
        config.public_url = public_url;
    }
    let (node, admin) = Node::init(data, config).await?;
    let printed = print(&node, &admin, out);
    node.kernel.close();
    printed
}

/// Prints what `init` made: the public URL and the admin token.
pub fn print(node: &Node, admin: &str, out: Output) -> anyhow::Result<()> {
    let answer = json!({
        "data": node.data.path,
        "publicUrl": node.config.public_url(),
        "serviceActor": node.kernel.service_actor()?,
        "adminToken": admin,
        "adminTokenFile": node.data.admin_token_file(),
    });
    out.print(&answer, || {
        say!(
            "initialised {} (public URL {})",
            node.data.path.display(),
            node.config.public_url()
        );
        say!(
            "admin token (shown once; also kept in {}): {admin}",
            node.data.admin_token_file().display()
        );
    })
}
