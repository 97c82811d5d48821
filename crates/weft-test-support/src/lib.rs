//! What weft's test suites share: the API tests (`host/tests/api`), the
//! module tests (`host/tests/modules`) and the end-to-end tests
//! (`tests/e2e`) all talk to a node over HTTP, sign activities, wait for
//! effects and check logs, and do it with these helpers.
//!
//! - [`http`]: a client set up as the node's own, a handle on one node's
//!   API ([`Api`]), requests and replies as tests see them, problem+json;
//! - [`activity`]: content ids, chain and signature checks of logs, the
//!   HTTP key of an actor document;
//! - [`fixtures`]: drafts tests publish (notes);
//! - [`poll`]: waiting for an effect ([`eventually`]);
//! - [`sign`]: a weft actor whose keys the test holds, signing its log;
//! - [`peer`]: a stand-in weft peer on a loopback port ([`FakePeer`]), whose
//!   outbox can serve an activity altered after signing;
//! - [`proxy`]: a fault-injecting TCP proxy in front of a node ([`Proxy`]:
//!   cut, heal, drop, delay);
//! - [`state`]: reading a node's store (logs, projections, a snapshot).
//!
//! Not here: starting a node. The API and module tests run one in process
//! (`host/tests/api/support.rs`, which needs the `weft` package's library),
//! the end-to-end tests run the built binary (`tests/e2e/support.rs`); this
//! crate depends on neither, since `weft` dev-depends on it.

pub mod activity;
pub mod fixtures;
pub mod http;
pub mod peer;
pub mod poll;
pub mod proxy;
pub mod sign;
pub mod state;

pub use activity::{
    assert_chain, assert_http_key, assert_linked, cid, cid_of, id_of, url_id, verify, verify_err,
};
pub use fixtures::{PUBLIC, note, private_note};
pub use http::{Api, Auth, Reply, Req, assert_problem, detail};
pub use peer::{Answer, FakePeer};
pub use poll::{eventually, eventually_every};
pub use proxy::Proxy;

/// The name of the compiled-module cache every test node shares, in
/// cargo's `CARGO_TARGET_TMPDIR` (see [`module_cache!`]).
pub const MODULE_CACHE: &str = "weft-module-cache";

/// The compiled-module cache every test node of a run shares, so the
/// genesis bundle is compiled once per run rather than once per node
/// (entries are keyed by artifact id and engine, so sharing is safe). A
/// macro because cargo sets `CARGO_TARGET_TMPDIR` only when it compiles a
/// test target, not this crate.
#[macro_export]
macro_rules! module_cache {
    () => {
        ::std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join($crate::MODULE_CACHE)
    };
}
