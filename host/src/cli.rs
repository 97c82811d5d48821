//! The `weft` command line (DESIGN §7).
//!
//! Commands that change a node (`actor create`, `publish`) open the data
//! folder directly when the node is stopped, and go through the running
//! node's HTTP API with the admin token when it is running.

pub mod bench;
pub mod client;
pub mod node;
pub mod verify;

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Map, Value, json};

use crate::identity::ActorKind;
use client::Client;
use node::{DataDir, Node, OpenError};

/// weft: a federated activity-log node whose vocabulary is WebAssembly.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about)]
pub struct Cli {
    /// The node's data folder.
    #[arg(long, global = true, env = "WEFT_DATA", default_value = "weft-data")]
    pub data: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the data folder, `weft.toml`, the service actor and the admin token.
    Init {
        /// Address to serve on (kept in weft.toml).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Base URL peers reach this node at (kept in weft.toml).
        #[arg(long)]
        public_url: Option<String>,
    },
    /// Serve the node (initialising it with defaults on first run).
    Run {
        /// Address to serve on, overriding weft.toml.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Benchmarking only: serve the kernel without its verbs and
        /// projections (every verb accepted, nothing folded), to measure the
        /// kernel alone. The node must already be initialised.
        #[arg(long)]
        kernel_only: bool,
    },
    /// Manage local actors.
    #[command(subcommand)]
    Actor(ActorCommand),
    /// Publish a draft activity (JSON, from FILE or stdin) as a local actor.
    Publish {
        #[arg(long)]
        actor: String,
        /// A file holding the draft, or `-` for standard input.
        #[arg(default_value = "-")]
        file: String,
    },
    /// Check a signed activity offline and say why it fails, if it does.
    Verify(verify::VerifyArgs),
    /// Manage verbs and projections (WASM modules).
    #[command(subcommand)]
    Module(ModuleCommand),
    /// Manage projections.
    #[command(subcommand)]
    Projection(ProjectionCommand),
    /// Drive a running node with concurrent publishers and report throughput.
    Bench(bench::BenchArgs),
    /// Find an actor by WebFinger (`acct:name@host:port`) and print its URL
    /// and document.
    Resolve {
        /// `acct:name@host:port` (or `name@host:port`).
        account: String,
    },
    /// Deliveries that gave up.
    #[command(subcommand, name = "dead-letter")]
    DeadLetter(DeadLetterCommand),
}

#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// List the dead letters.
    List,
    /// Queue a dead letter for delivery again, now.
    Retry { id: u64 },
}

#[derive(Debug, Subcommand)]
pub enum ActorCommand {
    /// Create an actor and print its bearer token (shown once).
    Create {
        name: String,
        #[arg(long = "type", value_enum, default_value_t = Kind::Person)]
        kind: Kind,
    },
    /// Rotate an actor's keys: add a fresh key and supersede the current ones.
    Rotate { name: String },
}

#[derive(Debug, Subcommand)]
pub enum ModuleCommand {
    /// Upload a component and define it as a verb or projection in one step.
    Add {
        #[arg(value_enum)]
        kind: ModuleKindArg,
        /// The verb (e.g. `Poll`) or projection (e.g. `word-count`) name.
        name: String,
        /// The compiled component (`.wasm`).
        file: PathBuf,
        /// What the module does, shown in the registry.
        #[arg(long)]
        description: Option<String>,
        /// The language it was written in, shown in the registry.
        #[arg(long)]
        language: Option<String>,
        /// Define it as this local actor instead of the node's service
        /// actor: peers that follow the actor admit the verb under the
        /// `followed` module policy.
        #[arg(long = "as", value_name = "ACTOR")]
        definer: Option<String>,
        /// Fuel per call the module asks for (capped by the node's limit).
        #[arg(long)]
        fuel: Option<u64>,
        /// Linear memory in bytes the module asks for (capped by the node's limit).
        #[arg(long)]
        memory: Option<u64>,
    },
    /// List every verb and projection with its module id, version and metadata.
    List,
    /// Peers' verbs waiting for admission, and the activities parked for them.
    Pending,
    /// Admit a peer's verb that awaits approval; its parked activities are
    /// then ingested.
    Approve { verb: String },
    /// Drop a peer's verb that is not wanted here: its parked activities
    /// and its pending module are deleted (a later activity of the verb
    /// starts a new lookup).
    Discard { verb: String },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionCommand {
    /// Refold a projection from the whole log.
    Rebuild { name: String },
}

/// Module kinds on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModuleKindArg {
    Verb,
    Projection,
}

/// Actor types on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    Person,
    Service,
    Group,
}

impl From<Kind> for ActorKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Person => Self::Person,
            Kind::Service => Self::Service,
            Kind::Group => Self::Group,
        }
    }
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let data = DataDir::new(&cli.data);
    match cli.command {
        Command::Init { listen, public_url } => {
            let mut config = data.config()?;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            if public_url.is_some() {
                config.public_url = public_url;
            }
            let (node, admin) = Node::init(&data, config).await?;
            print_init(&node, &admin);
            node.kernel.close();
            Ok(())
        }
        Command::Run {
            listen,
            kernel_only,
        } => {
            let mut config = data.config()?;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            let node = if data.db().exists() {
                match Node::open_as(&data, config, kernel_only) {
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
                let (node, admin) = Node::init(&data, config).await?;
                print_init(&node, &admin);
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
        Command::Actor(ActorCommand::Create { name, kind }) => {
            let kind = ActorKind::from(kind);
            let (id, token) = match open_or_client(&data)? {
                Access::Local(node) => {
                    require_initialised(&node, &data)?;
                    let created = node.kernel.create_actor(&name, kind).await?;
                    (created.id, created.token)
                }
                Access::Remote(client) => {
                    let body = client.create_actor(&name, kind.as_str()).await?;
                    let field = |k: &str| {
                        body.get(k)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned()
                    };
                    (field("id"), field("token"))
                }
            };
            println!("created {id}");
            println!("token (shown once; keep it secret): {token}");
            Ok(())
        }
        Command::Actor(ActorCommand::Rotate { name }) => {
            let access = open_or_client(&data)?;
            let doc = match &access {
                Access::Local(node) => {
                    let actor = node.kernel.store().read()?.actor_by_name(&name)?;
                    let actor = actor.with_context(|| format!("no actor named `{name}`"))?;
                    crate::http::actors::actor_document(&actor, None)
                }
                Access::Remote(client) => client.actor(&name).await?,
            };
            let current: Vec<Value> = doc["assertionMethod"]
                .as_array()
                .map(|keys| {
                    keys.iter()
                        .filter(|k| k.get("supersededAtSeq").is_none())
                        .map(|k| k["id"].clone())
                        .collect()
                })
                .unwrap_or_default();
            let draft = json!({
                "type": "Update",
                "object": {"type": doc["type"], "keys": {"add": [{"purposes": ["sign-activity", "rotate-key"]}], "supersede": current}},
                "to": [crate::model::PUBLIC],
            });
            let published = publish(
                &access,
                &name,
                draft.as_object().cloned().unwrap_or_default(),
            )
            .await?;
            println!("{published}");
            Ok(())
        }
        Command::Publish { actor, file } => {
            let text = if file == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read the draft from stdin")?;
                text
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("cannot read {file}"))?
            };
            let draft: Map<String, Value> =
                serde_json::from_str(&text).context("the draft must be a JSON object")?;
            let access = open_or_client(&data)?;
            let published = publish(&access, &actor, draft).await?;
            println!("{published}");
            Ok(())
        }
        Command::Verify(args) => verify::run(&data, args).await,
        Command::Module(ModuleCommand::Add {
            kind,
            name,
            file,
            description,
            language,
            definer,
            fuel,
            memory,
        }) => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let world = match kind {
                ModuleKindArg::Verb => "verb",
                ModuleKindArg::Projection => "projection",
            };
            let bytes = componentize(bytes, world)
                .with_context(|| format!("{} is not a usable module", file.display()))?;
            let access = open_or_client(&data)?;
            let artifact = match &access {
                Access::Local(node) => node.kernel.put_artifact(bytes).await?,
                Access::Remote(client) => client.upload(bytes).await?,
            };
            let define = match kind {
                ModuleKindArg::Verb => "DefineActivity",
                ModuleKindArg::Projection => "DefineProjection",
            };
            let mut draft = json!({
                "type": define,
                "name": name,
                "module": artifact,
                "wit": crate::runtime::PACKAGE,
                "to": [crate::model::PUBLIC],
            });
            if let Some(d) = description {
                draft["description"] = d.into();
            }
            if let Some(l) = language {
                draft["language"] = l.into();
            }
            if let Some(f) = fuel {
                draft["fuel"] = f.into();
            }
            if let Some(m) = memory {
                draft["memory"] = m.into();
            }
            let actor = match definer {
                Some(actor) => actor,
                None => data.config()?.service_actor,
            };
            let published = publish(
                &access,
                &actor,
                draft.as_object().cloned().unwrap_or_default(),
            )
            .await?;
            let id = serde_json::from_str::<Value>(&published)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_owned));
            println!("uploaded {artifact}");
            println!("defined {define} `{name}` in {}", id.unwrap_or_default());
            Ok(())
        }
        Command::Module(ModuleCommand::List) => {
            let registry = match open_or_client(&data)? {
                Access::Local(node) => node
                    .kernel
                    .registry()
                    .context("no WASM runtime")?
                    .describe()?,
                Access::Remote(client) => client.get("/projections/define-registry").await?,
            };
            for (title, key) in [("verbs", "verbs"), ("projections", "projections")] {
                println!("{title}:");
                for m in registry[key].as_array().into_iter().flatten() {
                    println!(
                        "  {:<20} v{:<3} {}  {}{}",
                        m["name"].as_str().unwrap_or_default(),
                        m["version"],
                        m["module"].as_str().unwrap_or_default(),
                        m["language"]
                            .as_str()
                            .map(|l| format!("[{l}] "))
                            .unwrap_or_default(),
                        m["description"].as_str().unwrap_or_default(),
                    );
                    println!(
                        "  {:<20} wit {}, fuel {} per call, memory {} bytes, defined by {}",
                        "",
                        m["wit"].as_str().unwrap_or("?"),
                        m["budget"]["fuel"],
                        m["budget"]["memory"],
                        m["definedBy"].as_str().unwrap_or_default(),
                    );
                }
            }
            Ok(())
        }
        Command::Module(ModuleCommand::Pending) => {
            let pending = match open_or_client(&data)? {
                Access::Local(node) => crate::federation::modules::describe_pending(&node.kernel)?,
                Access::Remote(client) => client.get("/admin/modules/pending").await?,
            };
            print_pending(&pending);
            Ok(())
        }
        Command::Module(ModuleCommand::Approve { verb }) => {
            let released = match open_or_client(&data)? {
                Access::Local(node) => {
                    // The artifact is fetched now, as the node's service actor.
                    crate::federation::Federation::new(
                        node.kernel.clone(),
                        node.config.federation.clone(),
                    )
                    .map_err(|e| anyhow::anyhow!("weft.toml [federation]: {e}"))?
                    .approve(&verb)
                    .await?
                }
                Access::Remote(client) => client
                    .post(&format!("/admin/modules/pending/{verb}/approve"))
                    .await?["released"]
                    .as_u64()
                    .unwrap_or(0) as usize,
            };
            println!("admitted verb `{verb}`; {released} parked activities ingested");
            Ok(())
        }
        Command::Module(ModuleCommand::Discard { verb }) => {
            let discarded = match open_or_client(&data)? {
                Access::Local(node) => {
                    crate::federation::modules::discard(&node.kernel, &verb).await?
                }
                Access::Remote(client) => client
                    .delete(&format!("/admin/modules/pending/{verb}"))
                    .await?["discarded"]
                    .as_u64()
                    .unwrap_or(0) as usize,
            };
            println!("discarded verb `{verb}` and its {discarded} parked activities");
            Ok(())
        }
        Command::Projection(ProjectionCommand::Rebuild { name }) => {
            let folded = match open_or_client(&data)? {
                Access::Local(node) => node.kernel.rebuild(&name).await?,
                Access::Remote(client) => client.rebuild(&name).await?,
            };
            println!("rebuilt `{name}` from {folded} activities");
            Ok(())
        }
        Command::Bench(args) => bench::run(&data, args).await,
        Command::Resolve { account } => {
            let ca_file = data.config().ok().and_then(|c| c.federation.ca_file);
            let (url, document) = resolve(&account, ca_file.as_deref()).await?;
            println!("{url}");
            println!("{}", serde_json::to_string_pretty(&document)?);
            Ok(())
        }
        Command::DeadLetter(DeadLetterCommand::List) => {
            let items = match open_or_client(&data)? {
                Access::Local(node) => {
                    let jobs = node.kernel.store().read()?.dead_letters()?;
                    jobs.iter()
                        .map(crate::http::federation::job_json)
                        .collect::<Vec<_>>()
                }
                Access::Remote(client) => client.get("/admin/dead-letter").await?["items"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            };
            if items.is_empty() {
                println!("no dead letters");
            }
            for item in items {
                println!(
                    "{:>6}  {}  → {}  after {} attempts: {}",
                    item["id"],
                    item["activity"].as_str().unwrap_or_default(),
                    item["recipient"].as_str().unwrap_or_default(),
                    item["attempts"],
                    item["lastError"].as_str().unwrap_or("?"),
                );
            }
            Ok(())
        }
        Command::DeadLetter(DeadLetterCommand::Retry { id }) => {
            match open_or_client(&data)? {
                Access::Local(node) => {
                    node.kernel
                        .federation_write(vec![crate::kernel::FederationWrite::Revive {
                            id,
                            now_ms: crate::kernel::now_ms(),
                        }])
                        .await?;
                    println!("dead letter {id} queued; it is sent when the node runs");
                }
                Access::Remote(client) => {
                    client
                        .post(&format!("/admin/dead-letter/{id}/retry"))
                        .await?;
                    println!("dead letter {id} queued");
                }
            }
            Ok(())
        }
    }
}

/// Looks an account up by WebFinger and fetches its actor document.
/// `acct:name@host` is looked up over HTTPS, or plain HTTP when the host is
/// a loopback address; an actor URL is fetched as written. `ca_file` adds
/// trusted certificate authorities (the node's `[federation] ca_file`).
pub async fn resolve(
    account: &str,
    ca_file: Option<&std::path::Path>,
) -> anyhow::Result<(String, Value)> {
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(crate::federation::fetch::client_tls(
            &ca_file.into_iter().collect::<Vec<_>>(),
        )?)
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let url = if account.starts_with("https://") || account.starts_with("http://") {
        account.to_owned()
    } else {
        webfinger(&http, account).await?
    };
    let response = http
        .get(&url)
        .header("accept", crate::http::activity_json())
        .send()
        .await
        .with_context(|| format!("cannot fetch {url}"))?;
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    let document: Value = response
        .json()
        .await
        .context("the actor document is not JSON")?;
    if document["id"].as_str() != Some(url.as_str()) {
        bail!(
            "the document at {url} names a different id: {}",
            document["id"]
        );
    }
    Ok((url, document))
}

/// The actor URL WebFinger gives for `acct:name@host`.
async fn webfinger(http: &reqwest::Client, account: &str) -> anyhow::Result<String> {
    let acct = account.strip_prefix("acct:").unwrap_or(account);
    let (name, host) = acct
        .rsplit_once('@')
        .filter(|(n, h)| !n.is_empty() && !h.is_empty() && !h.contains('/'))
        .with_context(|| {
            format!("`{account}` is not an account: use acct:name@host[:port] or an actor URL")
        })?;
    // HTTPS, except that a node on this machine may serve plain HTTP.
    let schemes: &[&str] = if is_loopback_host(host) {
        &["https", "http"]
    } else {
        &["https"]
    };
    let mut answer = None;
    for scheme in schemes {
        let finger = format!("{scheme}://{host}/.well-known/webfinger?resource=acct:{name}@{host}");
        match http
            .get(&finger)
            .header("accept", "application/jrd+json, application/json")
            .send()
            .await
        {
            Ok(response) => {
                answer = Some((finger, response));
                break;
            }
            Err(e) if scheme == schemes.last().unwrap_or(&"https") => {
                return Err(
                    anyhow::Error::new(e).context(format!("cannot reach {host} ({finger})"))
                );
            }
            Err(_) => {}
        }
    }
    let (finger, response) = answer.with_context(|| format!("cannot reach {host}"))?;
    if !response.status().is_success() {
        bail!("{finger} answered {}", response.status());
    }
    let jrd: Value = response
        .json()
        .await
        .context("the WebFinger answer is not JSON")?;
    Ok(jrd["links"]
        .as_array()
        .and_then(|links| {
            links.iter().find(|l| {
                l["rel"] == "self"
                    && l["type"]
                        .as_str()
                        .is_some_and(|t| t.contains("activity+json") || t.contains("ld+json"))
            })
        })
        .and_then(|l| l["href"].as_str())
        .with_context(|| format!("{finger} names no ActivityPub actor (no `self` link)"))?
        .to_owned())
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(authority: &str) -> bool {
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn print_init(node: &Node, admin: &str) {
    println!(
        "initialised {} (public URL {})",
        node.data.path.display(),
        node.config.public_url()
    );
    println!(
        "admin token (shown once; also kept in {}): {admin}",
        node.data.admin_token_file().display()
    );
}

/// The node, opened directly, or through its API when it is running.
#[derive(Debug)]
pub enum Access {
    Local(Box<Node>),
    Remote(Client),
}

fn open_or_client(data: &DataDir) -> anyhow::Result<Access> {
    let config = data.config()?;
    if !data.db().exists() {
        bail!("no node in {} (run `weft init`)", data.path.display());
    }
    match Node::open(data, config.clone()) {
        Ok(node) => Ok(Access::Local(Box::new(node))),
        Err(OpenError::Running) => Ok(Access::Remote(Client::for_node(
            &config,
            &data.admin_token()?,
        )?)),
        Err(OpenError::Other(e)) => Err(e),
    }
}

fn require_initialised(node: &Node, data: &DataDir) -> anyhow::Result<()> {
    if !node.kernel.is_initialised()? {
        bail!(
            "{} is not initialised (run `weft init`)",
            data.path.display()
        );
    }
    Ok(())
}

async fn publish(access: &Access, name: &str, draft: Map<String, Value>) -> anyhow::Result<String> {
    match access {
        Access::Local(node) => {
            let id = node.kernel.store().read()?.actor_id_by_name(name)?;
            let id = id.with_context(|| format!("no actor named `{name}` on this node"))?;
            Ok(node.kernel.publish_by_admin(&id, draft).await?.json)
        }
        Access::Remote(client) => Ok(client.publish_as(name, &draft).await?.to_string()),
    }
}

/// Prints `weft module pending`.
fn print_pending(pending: &Value) {
    let modules = pending["modules"].as_array().cloned().unwrap_or_default();
    let activities = pending["activities"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if modules.is_empty() && activities.is_empty() {
        println!("no pending modules and no parked activities");
        return;
    }
    println!("pending modules:");
    for m in &modules {
        println!(
            "  {:<20} {:<18} {} parked  module {}  by {}",
            m["verb"].as_str().unwrap_or_default(),
            m["state"].as_str().unwrap_or_default(),
            m["parked"],
            m["module"].as_str().unwrap_or("?"),
            m["definer"].as_str().unwrap_or("?"),
        );
        println!("    {}", m["reason"].as_str().unwrap_or_default());
    }
    println!("parked activities:");
    for a in &activities {
        println!(
            "  {:<20} {}  from {}  received {}",
            a["verb"].as_str().unwrap_or_default(),
            a["id"].as_str().unwrap_or_default(),
            a["actor"].as_str().unwrap_or("?"),
            a["received"].as_str().unwrap_or_default(),
        );
    }
}

/// A core WebAssembly module built with wit-bindgen (the Rust SDK, or
/// `cargo build --target wasm32-unknown-unknown`) carries its WIT world in a
/// custom section; one built from C with the SDK's committed bindings (no
/// wit-bindgen at build time) does not, and gets `world` of the contract
/// embedded. Either becomes the component the node runs. A component
/// passes through unchanged.
fn componentize(bytes: Vec<u8>, world: &str) -> anyhow::Result<Vec<u8>> {
    if !bytes.starts_with(b"\0asm\x01\0\0\0") {
        return Ok(bytes);
    }
    let encode = |core: &[u8]| {
        wit_component::ComponentEncoder::default()
            .module(core)
            .and_then(|encoder| encoder.validate(true).encode())
    };
    // Without a `component-type` section the encoder makes an empty
    // component of it, exporting nothing: embed the world first.
    let has_world = wasmtime::wasmparser::Parser::new(0)
        .parse_all(&bytes)
        .any(|payload| {
            matches!(payload, Ok(wasmtime::wasmparser::Payload::CustomSection(c))
                if c.name().starts_with("component-type"))
        });
    let first = if has_world {
        encode(&bytes)
    } else {
        Err(anyhow::anyhow!("the core module carries no WIT world"))
    };
    let component = match first {
        Ok(component) => component,
        Err(first) => {
            let mut resolve = wit_parser::Resolve::default();
            let package = resolve.push_str("weft.wit", crate::runtime::WIT)?;
            let world = resolve.select_world(&[package], Some(world))?;
            let mut core = bytes.clone();
            wit_component::embed_component_metadata(
                &mut core,
                &resolve,
                world,
                wit_component::StringEncoding::UTF8,
            )?;
            encode(&core).map_err(|_| first).context(
                "it is a core WebAssembly module that does not fit the weft WIT world: build it \
                 with an SDK (sdk/), or make a component with `wasm-tools component new`",
            )?
        }
    };
    eprintln!(
        "made a component of the core module ({} → {} bytes)",
        bytes.len(),
        component.len()
    );
    Ok(component)
}
