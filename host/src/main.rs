//! The `weft` binary: parses the command line, sets up logging
//! (`RUST_LOG`, default `info`), and runs the command.

use clap::Parser;

/// glibc's allocator showed up in every thread's profile under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc v3 gives freed memory back to the system a second after it is
/// freed (its `purge_delay`; ten times that for whole arenas). Under inbox
/// load at 4–5 million activities that held the node's peak at 196–204 MiB
/// where 10 ms — mimalloc v2's default — gave 163–168 MiB, at a rate
/// within the runs' spread. A delay the operator set
/// (`MIMALLOC_PURGE_DELAY`, other than v3's default) is kept.
fn purge_promptly() {
    use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};
    /// `mi_option_purge_delay` in v3's `mi_option_e` (the bindings do not
    /// name it); read back first, so another numbering changes nothing.
    const PURGE_DELAY: mi_option_t = 15;
    const V3_DEFAULT_MS: std::ffi::c_long = 1_000;
    const PROMPT_MS: std::ffi::c_long = 10;
    #[allow(
        unsafe_code,
        reason = "mimalloc's option calls: plain C calls on an option number, made before any other thread starts (they are not thread-safe)"
    )]
    // SAFETY: no other thread exists yet; the calls read and write one
    // option of the allocator's options table.
    unsafe {
        if mi_option_get(PURGE_DELAY) == V3_DEFAULT_MS {
            mi_option_set(PURGE_DELAY, PROMPT_MS);
        }
    }
}

fn main() -> std::process::ExitCode {
    purge_promptly();
    let cli = weft::cli::Cli::parse();
    let format = cli.log_format;
    weft::main_with("info", format, weft::cli::run(cli))
}
