//! The orchestration engine: what runs when, on which worker, with nothing lost or run twice.
//!
//! - [`Engine::schedule_once`] evaluates every time-triggered automation: it works out the ticks
//!   due since the automation's durable mark, applies the catch-up and overlap policies, and in one
//!   transaction advances the mark (compare-and-set, so exactly one node handles each tick),
//!   records every tick as fired, skipped or missed, and enqueues the fired ones.
//! - [`Engine::work_once`] stages due retries, claims a fair batch and runs each job in the
//!   plugin runtime, recording success or failure (with backoff) against the job's lease.
//! - [`Engine::run`] loops both, heartbeats leases, recovers the work of dead nodes, and on
//!   shutdown stops claiming, lets running jobs finish within a grace period and releases the rest.

mod approval;
mod delegate;
mod kv;
mod plugins;
mod registry;
mod scheduler;
mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mc_ai::AiGateway;
use mc_runtime::{CancelToken, KvStore, Runtime};
use mc_store::Store;

pub use approval::StoreApprovals;
pub use delegate::{CHILD_PRIORITY_BOOST, MAX_DEPTH, MAX_FANOUT};
pub use kv::StoreKv;
pub use plugins::{QUARANTINE_REFRESH, RECHECK_EVERY};
pub use registry::StoreRegistries;
pub use scheduler::{CATCH_UP_GRACE, MAX_TICKS_PER_PASS, PREPARE_AHEAD};
pub use worker::RECOVER_EVERY;

/// Attempts a scheduled job gets (the first run and two retries) unless configured otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// How the engine runs on this node.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This node's id: recorded on the jobs it claims.
    pub node_id: String,
    /// Where plugins are found by name (`<name>.wasm`, dashes as underscores). A file replaced
    /// here is a new version: runs use it from the next second on.
    pub plugin_dir: PathBuf,
    /// Jobs run at once on this node.
    pub workers: usize,
    /// How long a claim is valid without a heartbeat; a dead node's jobs return after it.
    pub lease: Duration,
    /// How long an idle worker waits before looking for work again.
    pub poll: Duration,
    /// How often the scheduler evaluates the schedules.
    pub schedule_every: Duration,
    /// How far ahead of a tick the scheduler enqueues its job (see [`PREPARE_AHEAD`]).
    pub prepare_ahead: Duration,
    /// How long running jobs may finish after shutdown is requested.
    pub grace: Duration,
    /// Most jobs of one tenant running at once across all nodes; `None` for no limit.
    pub tenant_max_running: Option<usize>,
    /// Opens the tenant secrets agents are granted; `None`: runs of such agents fail.
    pub sealer: Option<mc_store::Sealer>,
    /// Host patterns naming private, loopback or link-local IP literals that agents may be granted
    /// (test servers on this machine). Any other grant of such an address fails the run.
    pub test_hosts: Vec<String>,
}

impl EngineConfig {
    /// Defaults for one node.
    pub fn new(node_id: impl Into<String>, plugin_dir: impl Into<PathBuf>) -> EngineConfig {
        EngineConfig {
            node_id: node_id.into(),
            plugin_dir: plugin_dir.into(),
            workers: 8,
            lease: Duration::from_secs(8),
            poll: Duration::from_millis(200),
            schedule_every: Duration::from_millis(250),
            prepare_ahead: PREPARE_AHEAD,
            grace: Duration::from_secs(10),
            tenant_max_running: None,
            sealer: None,
            test_hosts: Vec::new(),
        }
    }
}

/// One node's engine.
pub struct Engine {
    store: Store,
    runtime: Runtime,
    config: EngineConfig,
    ai: Arc<dyn AiGateway>,
    kv: Arc<dyn KvStore>,
    registries: Arc<StoreRegistries>,
    approvals: Arc<StoreApprovals>,
    plugins: plugins::Plugins,
    /// Cancel handles of the jobs running on this node, by job id.
    running: Mutex<HashMap<i64, CancelToken>>,
    /// The scheduler's list of schedules between passes.
    schedules: Mutex<Option<scheduler::ScheduleCache>>,
    /// Wakes idle workers when this node enqueued work, so a fired tick starts at once instead of
    /// at the next poll.
    wake: tokio::sync::Notify,
    /// Wakes runs waiting for their children each time this node recorded results.
    finished: tokio::sync::Notify,
    /// Runs waiting for their children: they hold no worker slot meanwhile.
    parked: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("config", &self.config).finish()
    }
}

/// Why the engine could not do its work (a failing job is not an engine error).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] mc_store::StoreError),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Engine {
    /// An engine over `store`, running plugins in `runtime`, with the given AI gateway. Tenant
    /// key-value state lives in the store.
    pub fn new(store: Store, runtime: Runtime, config: EngineConfig, ai: Arc<dyn AiGateway>) -> Engine {
        let kv = Arc::new(StoreKv::new(store.clone()));
        let registries = Arc::new(StoreRegistries::new(store.clone()));
        let approvals = Arc::new(StoreApprovals::new(store.clone()));
        Engine {
            plugins: plugins::Plugins::new(config.plugin_dir.clone()),
            store,
            runtime,
            config,
            ai,
            kv,
            registries,
            approvals,
            running: Mutex::new(HashMap::new()),
            schedules: Mutex::new(None),
            wake: tokio::sync::Notify::new(),
            finished: tokio::sync::Notify::new(),
            parked: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs the scheduler, the workers and the lease keeper until `shutdown` resolves, then stops
    /// claiming, gives running jobs `grace` to finish, and releases the rest to other nodes.
    pub async fn run(
        self: Arc<Self>,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), EngineError> {
        let stop = CancelToken::new();
        let scheduler = tokio::spawn({
            let engine = self.clone();
            let stop = stop.clone();
            async move { engine.schedule_loop(stop).await }
        });
        // The lease keeper stops last, by its own token: it heartbeats the jobs that finish during
        // the grace period, and it is never aborted in the middle of a transaction.
        let keeper_stop = CancelToken::new();
        let keeper = tokio::spawn({
            let engine = self.clone();
            let stop = keeper_stop.clone();
            async move { engine.lease_loop(stop).await }
        });
        let workers = tokio::spawn({
            let engine = self.clone();
            let stop = stop.clone();
            async move { engine.work_loop(stop).await }
        });
        shutdown.await;
        tracing::info!(node = %self.config.node_id, "shutting down: no new claims");
        stop.cancel();
        let _ = scheduler.await;
        let _ = workers.await;
        keeper_stop.cancel();
        let _ = keeper.await;
        Ok(())
    }
}
