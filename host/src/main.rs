//! The `weft` binary: parses the command line, sets up logging
//! (`RUST_LOG`, default `info`), and runs the command.

use clap::Parser;

/// glibc's allocator showed up in every thread's profile under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = weft::cli::Cli::parse();
    let format = cli.log_format;
    weft::main_with("info", format, weft::cli::run(cli))
}
