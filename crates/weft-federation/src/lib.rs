//! Federation (docs/architecture.md §8): talking to other weft nodes. Inbound activities
//! are verified here and handed to the kernel; outbound ones leave as
//! durable delivery jobs the kernel wrote with their append; a Follow's
//! backfill is pulled from the followed actor's outbox.
//!
//! Everything that reaches the network is bounded: each fetch by time and
//! size, each inbound request by how many fetches it may cause. This module
//! does not decide what an activity means (verbs do) or who follows whom
//! (the follower-graph projection does).

pub mod backfill;
pub mod delivery;
pub mod fetch;
pub mod foreign;
pub mod guard;
pub mod httpsig;
pub mod inbox;
pub mod modules;
pub mod peers;
pub mod reconcile;
pub mod setsync;
pub mod signatures;
pub mod stage;
pub mod sync;
pub mod verifier;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use fetch::{Budget, FetchError, Fetcher};
pub use inbox::{InboxError, Received};
pub use peers::Peers;
use weft_kernel::{Kernel, KernelError, Outbound};

/// Federation settings (`[federation]` in `weft.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Waits between delivery attempts; after the last, a job is
    /// dead-lettered. Human-readable durations (`30s`, `5m`, `6h`).
    pub retry: Vec<String>,
    /// Each wait is stretched by a random amount of up to this many percent.
    pub jitter_percent: u32,
    /// Deliveries in flight to one peer at a time.
    pub per_peer_in_flight: usize,
    /// Connect timeout of every outbound request, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Total time of every outbound request, in milliseconds.
    pub request_timeout_ms: u64,
    /// Largest response body read from a peer, in bytes.
    pub max_fetch_bytes: usize,
    /// Most fetches one inbound request may cause.
    pub fetches_per_request: u32,
    /// Longest `Retry-After` honoured, in seconds.
    pub max_retry_after_s: u64,
    /// Which peers' verbs this node admits when it meets them: `followed`
    /// (defined by an actor a local actor follows), `manual` (every one
    /// waits for `weft module approve`) or `allow` (only `module_allow`).
    pub module_policy: modules::Policy,
    /// Artifact ids and definer actor URLs admitted under any policy.
    pub module_allow: Vec<String>,
    /// Most activities kept waiting for a verb this node does not know;
    /// past it, such activities are refused with 503 (the sender retries).
    pub max_parked: u64,
    /// Most of those that one origin's authors may hold, so one peer
    /// cannot take the whole of `max_parked` from the others.
    pub max_parked_per_origin: u64,
    /// How long a peer actor's document is trusted before it is fetched
    /// again on next use (a human-readable duration such as `1d` or `6h`),
    /// so a key rotation or a moved inbox is learnt even when no activity
    /// names a new key. A failed refetch keeps the old document.
    pub peer_refresh: String,
    /// Extra trusted certificate authorities (a PEM file) for outbound
    /// HTTPS, beside the webpki roots: a private CA, or a test's.
    pub ca_file: Option<std::path::PathBuf>,
    /// Let outbound connections reach loopback, private (RFC 1918, ULA),
    /// link-local, CGNAT and other internal addresses. Off on the internet;
    /// on for nodes federating on one machine or a LAN, and in tests
    /// (`WEFT_ALLOW_PRIVATE_ADDRESSES`).
    pub allow_private_addresses: bool,
    /// How old an inbound request's signature (`Date` or `created`) may
    /// be (a human-readable duration).
    pub signature_max_age: String,
    /// How far ahead of this node's clock it may be.
    pub signature_max_ahead: String,
    /// How far ahead of this node's clock an inbound activity's
    /// `published` may be (a human-readable duration); past it 422.
    pub published_max_ahead: String,
    /// Most activities kept from one peer origin's authors; past it 507.
    pub max_activities_per_origin: u64,
    /// Most bytes (of JSON text) of them; past it 507.
    pub max_bytes_per_origin: u64,
    /// Most pieces of fork evidence kept at one position of one actor's
    /// log; past it a fork is still refused, but not kept.
    pub max_forks_per_position: u64,
    /// Most pieces of fork evidence kept against one origin's actors.
    pub max_forks_per_origin: u64,
    /// How often the reconcile loop compares followed actors' heads with
    /// what this node holds and fetches what it lacks (a human duration).
    pub sync_interval: String,
    /// Most activities one sync range stages and commits in one transaction
    /// (a round reads the next range while it commits one).
    pub sync_max_range: u64,
    /// Most outbox pages one round reads.
    pub sync_pages_per_round: u32,
    /// Most bytes (of JSON text) one round stages.
    pub sync_bytes_per_round: u64,
    /// A range larger than this is staged on disk (`staging/` in the data
    /// folder) rather than in memory.
    pub sync_stage_memory_bytes: u64,
    /// Most rounds that fetch from one remote actor per hour (comparing
    /// heads is not counted).
    pub sync_rounds_per_hour: u32,
    /// Most dead letters one pass asks their recipients' nodes about.
    pub sync_heal_checks_per_pass: u32,
    /// Largest negentropy message of set reconciliation, either way, in
    /// bytes (at least 4096); a larger difference takes more messages.
    pub sync_frame_bytes: u64,
    /// Most negentropy messages one set-reconciliation round with an
    /// origin sends (its bytes and fetched activities are bounded by
    /// `sync_bytes_per_round` too).
    pub sync_set_messages: u32,
    /// Where staged ranges spill: set by the node to `staging/` in its
    /// data folder (not configurable); a temporary folder when unset.
    #[serde(skip)]
    pub staging_dir: Option<std::path::PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            retry: ["30s", "5m", "30m", "6h", "24h"]
                .map(str::to_owned)
                .to_vec(),
            jitter_percent: 10,
            per_peer_in_flight: 32,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 10_000,
            max_fetch_bytes: 1024 * 1024,
            fetches_per_request: 20,
            max_retry_after_s: 24 * 3600,
            module_policy: modules::Policy::Followed,
            module_allow: Vec::new(),
            max_parked: 10_000,
            max_parked_per_origin: 1_000,
            peer_refresh: "1d".to_owned(),
            ca_file: None,
            allow_private_addresses: false,
            signature_max_age: "12h".to_owned(),
            signature_max_ahead: "1h".to_owned(),
            published_max_ahead: "1h".to_owned(),
            max_activities_per_origin: weft_kernel::IngestLimits::default()
                .max_activities_per_origin,
            max_bytes_per_origin: weft_kernel::IngestLimits::default().max_bytes_per_origin,
            max_forks_per_position: weft_kernel::IngestLimits::default().max_forks_per_position,
            max_forks_per_origin: weft_kernel::IngestLimits::default().max_forks_per_origin,
            sync_interval: "5m".to_owned(),
            sync_max_range: 5_000,
            sync_pages_per_round: 1_000,
            sync_bytes_per_round: 128 << 20,
            sync_stage_memory_bytes: 4 << 20,
            sync_rounds_per_hour: 60,
            sync_heal_checks_per_pass: 100,
            sync_frame_bytes: 64 << 10,
            sync_set_messages: 64,
            staging_dir: None,
        }
    }
}

impl Settings {
    /// The retry schedule, parsed.
    pub fn schedule(&self) -> Result<Vec<Duration>, String> {
        self.retry
            .iter()
            .map(|s| {
                humantime::parse_duration(s).map_err(|e| {
                    format!("federation.retry: `{s}` is not a duration such as 30s or 5m: {e}")
                })
            })
            .collect()
    }

    /// The signature window, parsed.
    pub fn window(&self) -> Result<httpsig::Window, String> {
        let parse = |name: &str, value: &str| {
            humantime::parse_duration(value).map_err(|e| {
                format!("federation.{name}: `{value}` is not a duration such as 12h or 30m: {e}")
            })
        };
        Ok(httpsig::Window {
            max_age: parse("signature_max_age", &self.signature_max_age)?,
            max_ahead: parse("signature_max_ahead", &self.signature_max_ahead)?,
        })
    }

    /// `published_max_ahead`, parsed.
    pub fn published_max_ahead(&self) -> Result<Duration, String> {
        humantime::parse_duration(&self.published_max_ahead).map_err(|e| {
            format!(
                "federation.published_max_ahead: `{}` is not a duration such as 1h or 10m: {e}",
                self.published_max_ahead
            )
        })
    }

    /// The sync settings, parsed.
    pub fn sync(&self) -> Result<reconcile::SyncSettings, String> {
        let interval = humantime::parse_duration(&self.sync_interval).map_err(|e| {
            format!(
                "federation.sync_interval: `{}` is not a duration such as 5m or 30s: {e}",
                self.sync_interval
            )
        })?;
        if interval.is_zero() {
            return Err("federation.sync_interval must be longer than zero".into());
        }
        if self.sync_frame_bytes < 4096 {
            return Err(format!(
                "federation.sync_frame_bytes is {}; negentropy needs frames of at least 4096 bytes",
                self.sync_frame_bytes
            ));
        }
        if self.sync_set_messages == 0 {
            return Err("federation.sync_set_messages must be at least 1".into());
        }
        if self.sync_max_range == 0 || self.sync_pages_per_round == 0 {
            return Err(
                "federation.sync_max_range and sync_pages_per_round must be at least 1".into(),
            );
        }
        Ok(reconcile::SyncSettings {
            interval,
            max_range: self.sync_max_range,
            pages_per_round: self.sync_pages_per_round,
            bytes_per_round: self.sync_bytes_per_round,
            stage_memory_bytes: self.sync_stage_memory_bytes,
            rounds_per_hour: self.sync_rounds_per_hour,
            heal_checks_per_pass: self.sync_heal_checks_per_pass,
            frame_bytes: self.sync_frame_bytes,
            set_messages: self.sync_set_messages,
        })
    }

    /// `peer_refresh`, parsed.
    pub fn peer_refresh(&self) -> Result<Duration, String> {
        humantime::parse_duration(&self.peer_refresh).map_err(|e| {
            format!(
                "federation.peer_refresh: `{}` is not a duration such as 1d or 6h: {e}",
                self.peer_refresh
            )
        })
    }
}

/// Federation's running parts, shared by the HTTP handlers and workers.
#[derive(Debug)]
pub struct Federation {
    pub kernel: Arc<Kernel>,
    pub fetcher: Fetcher,
    pub peers: Peers,
    pub settings: Settings,
    pub verifier: verifier::Verifier,
    /// Inbound requests' signatures may be this old or this far ahead.
    pub window: httpsig::Window,
    /// An inbound activity's `published` may be this far ahead.
    pub published_ahead: Duration,
    /// Keys of verified HTTP signatures.
    http_keys: signatures::KeyCache,
    schedule: Vec<Duration>,
    /// Verbs being looked up at a peer, and when a refused one was last tried.
    discovery: modules::Discovery,
    /// Anti-entropy's settings.
    pub sync: reconcile::SyncSettings,
    /// Where staged sync ranges spill.
    pub staging: std::path::PathBuf,
    /// The reconcile loop's state.
    pub reconciler: reconcile::Reconciler,
    /// Set reconciliation's answering side (its storage cache).
    pub responder: setsync::Responder,
    /// What each peer origin's delivery worker is doing (the dashboard's
    /// peers page).
    pub deliveries: delivery::PeerStats,
    /// Flips to true when the node stops; every worker watches it.
    stop: tokio::sync::watch::Sender<bool>,
}

impl Federation {
    pub fn new(kernel: Arc<Kernel>, settings: Settings) -> Result<Arc<Self>, String> {
        let schedule = settings.schedule()?;
        let window = settings.window()?;
        let published_ahead = settings.published_max_ahead()?;
        let sync = settings.sync()?;
        let staging = settings.staging_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("weft-staging-{}", std::process::id()))
        });
        if settings.jitter_percent > 1000 {
            return Err("federation.jitter_percent must be at most 1000".into());
        }
        kernel.set_ingest_limits(weft_kernel::IngestLimits {
            max_activities_per_origin: settings.max_activities_per_origin,
            max_bytes_per_origin: settings.max_bytes_per_origin,
            max_forks_per_position: settings.max_forks_per_position,
            max_forks_per_origin: settings.max_forks_per_origin,
        });
        let fetcher = Fetcher::new(&settings).map_err(|e| e.to_string())?;
        fetcher.sign_with(kernel.clone());
        let peers = Peers::new(kernel.clone(), fetcher.clone(), settings.peer_refresh()?);
        Ok(Arc::new(Self {
            kernel,
            fetcher,
            peers,
            settings,
            verifier: verifier::Verifier::start().map_err(|e| e.to_string())?,
            window,
            published_ahead,
            http_keys: signatures::KeyCache::default(),
            schedule,
            discovery: modules::Discovery::default(),
            sync,
            staging,
            reconciler: reconcile::Reconciler::default(),
            responder: setsync::Responder::default(),
            deliveries: delivery::PeerStats::default(),
            stop: tokio::sync::watch::Sender::new(false),
        }))
    }

    /// Stops every worker and backfill; queued work stays in the database
    /// and resumes at the next start.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Resolves once [`Federation::stop`] was called.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }

    /// A fresh fetch budget for one inbound request.
    pub fn budget(&self) -> Budget {
        Budget::new(self.settings.fetches_per_request)
    }

    /// Starts delivering the queued jobs and running the pending backfills,
    /// and takes the new ones the kernel commits. Call once, inside tokio.
    pub fn start(self: &Arc<Self>) -> Result<(), KernelError> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Outbound>();
        self.kernel.set_outbound(tx);
        let deliveries = delivery::Dispatcher::new(self.clone());
        let (jobs, backfills) = {
            let reader = self.kernel.store().read()?;
            (reader.jobs()?, reader.backfills()?)
        };
        tracing::info!(
            jobs = jobs.len(),
            backfills = backfills.len(),
            "resuming federation work"
        );
        for job in jobs {
            deliveries.dispatch(job);
        }
        for job in backfills {
            backfill::spawn(self.clone(), job);
        }
        self.resume_parked()?;
        // Half-staged ranges of an earlier run are discarded; the loop
        // fetches them again.
        if let Err(e) = stage::clear(&self.staging) {
            tracing::warn!(dir = %self.staging.display(), error = %e, "cannot empty the staging folder");
        }
        reconcile::spawn(self.clone());
        let federation = Arc::downgrade(self);
        let stopped = self.stopped();
        tokio::spawn(async move {
            tokio::pin!(stopped);
            loop {
                let item = tokio::select! {
                    item = rx.recv() => item,
                    () = &mut stopped => None,
                };
                let Some(item) = item else {
                    break;
                };
                match item {
                    Outbound::Job(job) => deliveries.dispatch(job),
                    Outbound::Backfill(job) => {
                        let Some(federation) = federation.upgrade() else {
                            break;
                        };
                        backfill::spawn(federation, job);
                    }
                }
            }
        });
        Ok(())
    }
}

/// Makes aws-lc-rs the process's TLS crypto (rustls' default provider),
/// which every HTTP client of the node and its tools uses. Idempotent;
/// call it before making an HTTP client.
pub fn install_crypto() {
    // Err means a provider is installed already, which is all we need.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
