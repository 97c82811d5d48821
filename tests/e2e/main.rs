//! End-to-end tests of `weft`: every test drives real `weft` processes —
//! the binary cargo built, run as child processes on loopback ports over
//! temporary data folders — through its command line and its HTTP API,
//! the way an operator and a client would.
//!
//! - `cli`: `init`, `run` (and its logging), `actor create`, `publish`, and
//!   their error messages;
//! - `verify`: `weft verify` against published activities, tampered copies
//!   and the shared envelope test vectors;
//! - `rotate`: `weft actor rotate` with the node stopped and running;
//! - `dashboard`: the operator's dashboard in headless Chromium over
//!   WebDriver (`tests/browser/install.sh` installs Debian's chromium and
//!   chromium-driver): log in, a peer and a dead letter, retry it, roll a
//!   module back, with screenshots;
//! - `durability`: acknowledged activities survive SIGTERM and SIGKILL;
//! - `crash`: the crash loop — a node killed at random moments under load,
//!   restarted, and checked each time (`WEFT_CRASH_KILLS`);
//! - `hostile`: hostile modules — loops, memory and stack exhaustion, host
//!   call storms, compile bombs, state kept in globals — each stopped
//!   within bounded time and memory, changing nothing;
//! - `ops`: the `bench` load tool;
//! - `operator`: what an operator runs into: a first start that cannot
//!   listen leaves nothing half-made, `public_url` cannot move under
//!   existing ids, commands reach the node that owns the folder, `weft
//!   status`, `actor list`, `actor token`, `projection status`, `/readyz`,
//!   output to a closed pipe, logs without colour off a terminal and as
//!   JSON;
//! - `federation`: two nodes following, delivering and backfilling through
//!   restarts and a crash, over HTTP and over HTTPS;
//! - `fediverse`: weft and a Fedify server (a real ActivityPub
//!   implementation, from the npm registry) following each other;
//! - `languages`: modules in Python, JavaScript and C built from the examples
//!   and the SDK templates, for both contract versions;
//! - `partition`: three nodes, each behind a fault-injecting proxy, cut
//!   and healed while they talk, and a follower down past its retry
//!   schedule; every node converges (the scenarios that need sync and
//!   replication policies are ignored until those land);
//! - `retention`: a replication policy's `keep` rule pruning a followed
//!   actor's old activities (nodes started days ahead), sparing what names
//!   a local actor, and sync not fetching them again;
//! - `skew`: nodes started with clocks apart (the test-only
//!   `WEFT_TEST_CLOCK_OFFSET`): twenty minutes apart they federate, two
//!   hours ahead their activities are refused for `published`;
//! - `travel`: a verb defined on one node reaching its peers under the
//!   `followed` and `manual` module policies.
//!
//! Run with `cargo test --test e2e`.

mod cli;
mod crash;
mod dashboard;
mod durability;
mod federation;
mod fediverse;
mod hostile;
mod languages;
mod operator;
mod ops;
mod partition;
mod retention;
mod rotate;
mod skew;
mod support;
mod travel;
mod verify;
