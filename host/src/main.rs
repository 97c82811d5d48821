//! The `weft` binary: parses the command line, sets up logging
//! (`RUST_LOG`, default `info`), and runs the command.

use clap::Parser;

/// glibc's allocator showed up in every thread's profile under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    no_huge_pages();
    let cli = weft::cli::Cli::parse();
    let format = cli.log_format;
    weft::main_with("info", format, weft::cli::run(cli))
}

/// Turns the kernel's transparent huge pages off for this process, before
/// it allocates much. The allocator gives freed memory back in pages of
/// 64 KiB; a huge page (2 MiB) stays resident while any of it is in use, so
/// with them what a node freed was not given back: a fresh node held 168 MB
/// after compiling its modules on its first start (82 MB without), and its
/// peak under inbox load to 1M activities was 205 MiB (141 MiB without).
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        // Not fatal: the node runs, only with more resident memory.
        eprintln!(
            "weft: cannot turn transparent huge pages off ({e}); memory freed may stay resident"
        );
    }
}
