//! The `weft` binary's library: the node's configuration (`weft.toml`) and
//! the command line, which composes the layers (`weft-core` … `weft-http`)
//! into a running node. See `docs/architecture.md`.

pub mod cli;
pub mod config;

/// What both binaries (`weft`, `weft-bench`) do around their command: the
/// node's clock (`WEFT_TEST_CLOCK_OFFSET`, test-only, read once and
/// checked here), TLS crypto, logging to stderr (`RUST_LOG`, else
/// `default_log`), a multi-threaded async runtime, and an error printed as
/// `error: …` with a failing exit code.
/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, coloured only when standard error is a
    /// terminal (a file or a pipe gets no ANSI escapes).
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`),
    /// for log collectors.
    Json,
}

pub fn main_with<F>(default_log: &str, format: LogFormat, command: F) -> std::process::ExitCode
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    if let Err(e) = weft_core::clock::init() {
        eprintln!("error: {e}");
        return std::process::ExitCode::FAILURE;
    }
    weft_federation::install_crypto();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log)),
        )
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            use std::io::IsTerminal;
            logs.with_ansi(std::io::stderr().is_terminal()).init();
        }
        LogFormat::Json => logs.json().init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
