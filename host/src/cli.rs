//! The `weft` command line (docs/architecture.md §11): the clap
//! definitions and the dispatch; each command is in a file of its own.
//!
//! Every command about a node talks to it one way, through its HTTP API
//! with the admin token ([`client::Client`]): the node `--node URL --token
//! T` names, or else the data folder's node — over HTTP when it is running,
//! and in-process (the same router, without a socket) when it is stopped.
//! `init`, `run`, `verify` (offline) and `resolve` (WebFinger) are not
//! about a node's API and work as they always did. With `--json` a command
//! prints the node's JSON answer instead of text.

/// `println!` for what a command prints: a reader that goes away early
/// (`weft resolve … | head -1`) ends the command quietly, as it ends
/// other Unix tools, instead of a panic with a backtrace.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::say(format_args!($($arg)*))
    };
}

pub mod actor;
pub mod client;
pub mod componentize;
pub mod dead_letter;
pub mod follow;
pub mod init;
pub mod module;
pub mod node;
pub mod policy;
pub mod projection;
pub mod publish;
pub mod resolve;
pub mod serve;
pub mod status;
pub mod verify;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::Value;

use client::{Client, Target};
use node::DataDir;
use weft_core::identity::ActorKind;

/// weft: a federated activity-log node whose vocabulary is WebAssembly.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about)]
pub struct Cli {
    /// The node's data folder.
    #[arg(long, global = true, env = "WEFT_DATA", default_value = "weft-data")]
    pub data: PathBuf,
    /// Reach the node at this base URL over HTTP(S) instead of the data
    /// folder's node (needs --token).
    #[arg(long, global = true, env = "WEFT_NODE", value_name = "URL")]
    pub node: Option<String>,
    /// The node's admin token (by default the data folder's `admin.token`).
    #[arg(
        long,
        global = true,
        env = "WEFT_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Print the node's JSON answer (pretty) instead of text, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
    /// How log lines are written (to standard error): `text` (coloured
    /// only on a terminal) or `json` (one object per line). The level is
    /// `RUST_LOG`'s (default `info`).
    #[arg(
        long,
        global = true,
        env = "WEFT_LOG_FORMAT",
        value_enum,
        default_value_t = crate::LogFormat::Text
    )]
    pub log_format: crate::LogFormat,
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
    /// Drive a running node with concurrent publishers and report throughput
    /// (runs the `weft-bench` tool installed beside `weft`; `weft bench
    /// --help` lists its options).
    #[command(disable_help_flag = true)]
    Bench {
        /// `weft-bench`'s arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Find an actor by WebFinger (`acct:name@host:port`) and print its URL
    /// and document.
    Resolve {
        /// `acct:name@host:port` (or `name@host:port`).
        account: String,
    },
    /// Deliveries that gave up.
    #[command(subcommand, name = "dead-letter")]
    DeadLetter(DeadLetterCommand),
    /// The node's policies (replication, modules, follows, sync).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Follows a `follows` policy holds for the operator's answer.
    #[command(subcommand)]
    Follow(FollowCommand),
    /// The node at a glance: readiness, actors, activities and their rate,
    /// deliveries, dead letters, parked activities, forks, projections and
    /// policies.
    Status,
    /// The node's configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// The configuration in effect (`weft.toml` with the `WEFT_*`
    /// environment over it), every key with its value and meaning.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum FollowCommand {
    /// List the Follows of local actors waiting for an answer.
    Pending,
    /// Accept one: the followed actor publishes what its Follow verb answers.
    Approve {
        /// The Follow's id (as `weft follow pending` lists it).
        id: String,
    },
    /// Reject one: the followed actor publishes a Reject of it.
    Reject {
        /// The Follow's id (as `weft follow pending` lists it).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Define a policy (again: a new version), as a `DefinePolicy` activity.
    Define {
        /// The policy's name (a letter, then letters, digits, `_`, `-`).
        name: String,
        /// `replication`, `modules`, `follows` or `sync`.
        #[arg(long)]
        kind: String,
        /// The spec: JSON, or `@FILE` holding JSON.
        #[arg(long)]
        spec: String,
        /// What the policy is for.
        #[arg(long)]
        description: Option<String>,
        /// Define it as this local actor instead of the node's service actor.
        #[arg(long = "as", value_name = "ACTOR")]
        definer: Option<String>,
    },
    /// List every policy's current version.
    List,
    /// A policy's conditions (`Compliant`, `InSync`) and obligations.
    Status { name: String },
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
    /// List the local actors: name, type, activities, id.
    List,
    /// Issue a new bearer token for an actor (shown once); every token it
    /// had stops working. For a token lost or leaked.
    Token { name: String },
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
        /// A verb whose `react` never asks for anything: the definition
        /// says `"reacts": false` and the node does not call it (not
        /// carried over to a later version).
        #[arg(long)]
        no_react: bool,
        /// Replace a built-in verb or projection of that name (without it,
        /// defining a built-in's name is refused).
        #[arg(long)]
        replace: bool,
        /// Define a projection even if every fold of its dry run over the
        /// newest 100 activities fails.
        #[arg(long)]
        force: bool,
    },
    /// List every verb and projection with its module id, version and
    /// metadata, and every earlier version.
    List,
    /// Define a module again as one of its earlier versions (by default the
    /// one before the current): a new version with that version's module
    /// and metadata.
    Rollback {
        name: String,
        /// The version to go back to (`weft module list` shows them).
        version: Option<u32>,
    },
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
    /// Refold a projection from the whole log, showing its progress.
    Rebuild { name: String },
    /// Each projection's state (ready, building and how far, failing), or
    /// one projection's with its latest fold errors.
    Status { name: Option<String> },
}

/// Module kinds on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModuleKindArg {
    Verb,
    Projection,
}

impl ModuleKindArg {
    /// The WIT world a module of this kind implements.
    pub fn world(self) -> &'static str {
        match self {
            Self::Verb => "verb",
            Self::Projection => "projection",
        }
    }

    /// The activity that defines a module of this kind.
    pub fn define(self) -> &'static str {
        match self {
            Self::Verb => "DefineActivity",
            Self::Projection => "DefineProjection",
        }
    }
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

/// How a command prints its result: text for people, or with `--json` the
/// node's JSON answer, pretty.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` with `--json`, else runs `text`.
    pub fn print(self, value: &Value, text: impl FnOnce()) -> anyhow::Result<()> {
        if self.json {
            say!("{}", serde_json::to_string_pretty(value)?);
        } else {
            text();
        }
        Ok(())
    }
}

/// Writes one line of a command's output (see `say!`).
pub fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(line).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write the output: {e}");
        std::process::exit(1);
    }
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let data = DataDir::new(&cli.data);
    let out = Output { json: cli.json };
    let target = Target {
        node: cli.node,
        token: cli.token,
    };
    match cli.command {
        Command::Init { listen, public_url } => init::run(&data, listen, public_url, out).await,
        Command::Run {
            listen,
            kernel_only,
        } => serve::run(&data, listen, kernel_only, out).await,
        Command::Verify(args) => verify::run(&data, args, out).await,
        Command::Resolve { account } => resolve::run(&data, &account, out).await,
        Command::Bench { args } => bench(&cli.data, &args),
        Command::Actor(command) => {
            with_client(&data, &target, |client| async move {
                actor::run(&client, command, out).await
            })
            .await
        }
        Command::Publish { actor, file } => {
            let draft = publish::read_draft(&file)?;
            with_client(&data, &target, |client| async move {
                let published = publish::publish(&client, &actor, draft).await?;
                publish::print(&published, out)
            })
            .await
        }
        Command::Module(ModuleCommand::Add {
            kind,
            name,
            file,
            description,
            language,
            definer,
            fuel,
            memory,
            no_react,
            replace,
            force,
        }) => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            if !bytes.starts_with(b"\0asm") {
                bail!(
                    "{} is not a WebAssembly file (it does not start with `\\0asm`): give the .wasm your build produced (e.g. target/wasm32-unknown-unknown/release/NAME.wasm)",
                    file.display()
                );
            }
            let bytes = componentize::componentize(bytes, kind.world())
                .with_context(|| format!("{} is not a usable module", file.display()))?;
            let module = module::Definition {
                kind,
                name,
                description,
                language,
                definer: match definer {
                    Some(actor) => actor,
                    None => data.config()?.service_actor,
                },
                fuel,
                memory,
                no_react,
                replace,
                force,
            };
            with_client(&data, &target, |client| async move {
                module::add(&client, bytes, module, out).await
            })
            .await
        }
        Command::Module(ModuleCommand::Rollback { name, version }) => {
            let definer = data
                .config()
                .map_or_else(|_| "node".to_owned(), |c| c.service_actor);
            with_client(&data, &target, |client| async move {
                module::rollback(&client, &name, version, definer, out).await
            })
            .await
        }
        Command::Module(ModuleCommand::List) => {
            with_client(&data, &target, |client| async move {
                module::list(&client, out).await
            })
            .await
        }
        Command::Module(ModuleCommand::Pending) => {
            with_client(&data, &target, |client| async move {
                module::pending(&client, out).await
            })
            .await
        }
        Command::Module(ModuleCommand::Approve { verb }) => {
            with_client(&data, &target, |client| async move {
                module::approve(&client, &verb, out).await
            })
            .await
        }
        Command::Module(ModuleCommand::Discard { verb }) => {
            with_client(&data, &target, |client| async move {
                module::discard(&client, &verb, out).await
            })
            .await
        }
        Command::Projection(ProjectionCommand::Status { name }) => {
            with_client(&data, &target, |client| async move {
                projection::status(&client, name.as_deref(), out).await
            })
            .await
        }
        Command::Config(ConfigCommand::Show) => {
            let config = data.config()?;
            let json = serde_json::to_value(&config)?;
            out.print(&json, || say!("{}", config.commented_toml().trim_end()))
        }
        Command::Status => {
            with_client(&data, &target, |client| async move {
                status::run(&client, out).await
            })
            .await
        }
        Command::Projection(ProjectionCommand::Rebuild { name }) => {
            with_client(&data, &target, |client| async move {
                projection::rebuild(&client, &name, out).await
            })
            .await
        }
        Command::Policy(PolicyCommand::Define {
            name,
            kind,
            spec,
            description,
            definer,
        }) => {
            let policy = policy::Definition {
                name,
                kind,
                spec,
                description,
                definer: match definer {
                    Some(actor) => actor,
                    None => data.config()?.service_actor,
                },
            };
            with_client(&data, &target, |client| async move {
                policy::define(&client, policy, out).await
            })
            .await
        }
        Command::Policy(PolicyCommand::List) => {
            with_client(&data, &target, |client| async move {
                policy::list(&client, out).await
            })
            .await
        }
        Command::Policy(PolicyCommand::Status { name }) => {
            with_client(&data, &target, |client| async move {
                policy::status(&client, &name, out).await
            })
            .await
        }
        Command::Follow(command) => {
            with_client(&data, &target, |client| async move {
                follow::run(&client, command, out).await
            })
            .await
        }
        Command::DeadLetter(command) => {
            with_client(&data, &target, |client| async move {
                dead_letter::run(&client, command, out).await
            })
            .await
        }
    }
}

/// Reaches the node `target` names, runs `command` against it, and then
/// closes a node opened in-process (whether the command succeeded or not).
async fn with_client<F, Fut>(data: &DataDir, target: &Target, command: F) -> anyhow::Result<()>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let client = Client::connect(data, target)?;
    let result = command(client.clone()).await;
    client.close().await;
    result
}

/// Runs the benchmark tool, `weft-bench`, from the folder `weft` is in (or
/// else from `PATH`), with the data folder and `args`; fails as it fails.
fn bench(data: &std::path::Path, args: &[std::ffi::OsString]) -> anyhow::Result<()> {
    let name = format!("weft-bench{}", std::env::consts::EXE_SUFFIX);
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(&name)))
        .filter(|path| path.is_file());
    let program = beside.unwrap_or_else(|| PathBuf::from(&name));
    let status = std::process::Command::new(&program)
        .arg("--data")
        .arg(data)
        .args(args)
        .status()
        .with_context(|| {
            format!(
                "cannot run {} (build it with `cargo build --release --bin weft-bench`; \
                 it is installed beside `weft`)",
                program.display()
            )
        })?;
    if !status.success() {
        bail!("weft-bench failed ({status})");
    }
    Ok(())
}
