//! weft: a federated activity-log node whose vocabulary is WebAssembly
//! published in the log.
//!
//! One folder per kernel concern; see `DESIGN.md` §8.

pub mod cli;
pub mod config;
pub mod federation;
pub mod genesis;
pub mod http;
pub mod identity;
pub mod kernel;
pub mod model;
pub mod runtime;
pub mod store;

/// Makes aws-lc-rs the process's TLS crypto (rustls' default provider),
/// which every HTTP client of the node and its tools uses. Idempotent;
/// call it before making an HTTP client.
pub fn install_crypto() {
    // Err means a provider is installed already, which is all we need.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
