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
pub fn main_with<F>(default_log: &str, command: F) -> std::process::ExitCode
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    if let Err(e) = weft_core::clock::init() {
        eprintln!("error: {e}");
        return std::process::ExitCode::FAILURE;
    }
    weft_federation::install_crypto();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log)),
        )
        .with_writer(std::io::stderr)
        .init();
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
