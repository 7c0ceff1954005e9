//! The [`Runtime`]: one wasmtime engine per process, the linker with every host import, the
//! compiled-component cache, and [`Runtime::run`], which executes one plugin call in a fresh store
//! under fuel, memory and deadline limits and classifies whatever happens into a [`RunOutcome`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mc_ai::CallContext;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap, UpdateDeadline,
    WasmBacktrace,
};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpCtx;

use crate::bindings::WorkflowPre;
use crate::bindings::exports::mission::control::handler::Failure;
use crate::bindings::mission::control::types::{FailureKind, RunContext as WitRunContext};
use crate::cache::{CacheOutcome, ComponentCache, content_hash};
use crate::cancel::CancelToken;
use crate::grants::Grants;
use crate::host::http::EgressHooks;
use crate::limits::{LimitError, Limits, RunLimiter};
use crate::outcome::{LogLevel, LogLine, RunFailure, RunOutcome, RunUsage};
use crate::plugin::{LoadError, Plugin, check_contract, check_header};
use crate::state::{CappedOutput, RunState, Services, lock};

/// How often the epoch advances. It is the granularity of deadlines and cancellation, and how often
/// a computing plugin yields its thread to other runs.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Default number of plugin instances that may exist at once in this process (the pooling
/// allocator reserves address space, not memory, for each).
pub const DEFAULT_MAX_INSTANCES: u32 = 128;
/// Default per-instance memory ceiling: the largest memory cap a run may ask for.
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 1 << 30;
/// Core instances, memories and tables per component instance the pool provisions: a Rust guest
/// component has one main module plus a few shim modules, one memory and a few tables.
const CORE_INSTANCES_PER_COMPONENT: u32 = 8;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 4;
/// Slots the pooling allocator resets with one batch of `madvise` calls instead of one call per
/// slot: fewer system calls and TLB shootdowns across threads when thousands of short runs end.
const DECOMMIT_BATCH: usize = 32;
/// Bytes of a slot's linear memory reset by copying (the pages the run touched, found with
/// Linux's `PAGEMAP_SCAN` where the kernel has it) rather than given back with `madvise`: more
/// than a typical plugin run touches (a Rust guest's stack, data and small heap, a few hundred
/// KiB). The pages stay mapped, so the next run in the slot takes no copy-on-write faults, each
/// of which flushed the TLBs of every core (`perf`: a fifth of the queue's CPU went to those
/// faults and their IPIs). At most this much per slot stays resident between runs.
const LINEAR_MEMORY_KEEP_RESIDENT: usize = 1 << 20;
/// The same for tables (a Rust guest's function tables are a few KiB).
const TABLE_KEEP_RESIDENT: usize = 64 << 10;
/// Most of stderr quoted in a trap message (a panic message and its location).
const MAX_PANIC_QUOTE: usize = 2_000;

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
    /// How many plugin instances may run at once.
    pub max_instances: u32,
    /// The largest memory cap a run may ask for, in bytes.
    pub max_memory_bytes: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            max_instances: DEFAULT_MAX_INSTANCES,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
        }
    }
}

/// Who a run is for and why it runs; passed to the plugin and to every metered import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunContext {
    pub tenant: String,
    pub agent: String,
    pub automation: Option<String>,
    pub run_id: String,
    /// The run at the top of this run's delegation tree; `None` when it is the run itself.
    pub root_run_id: Option<String>,
    pub attempt: u32,
    pub trigger: String,
}

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The input JSON document.
    pub input: String,
    pub context: RunContext,
    pub grants: Arc<Grants>,
    pub limits: Limits,
    pub services: Services,
    pub cancel: Option<CancelToken>,
}

/// The plugin runtime. Cheap to clone; all clones share one engine, one cache and one pool.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<RunState>,
    cache: Option<ComponentCache>,
    plugins: Mutex<HashMap<String, Arc<Plugin>>>,
    config: RuntimeConfig,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("config", &self.inner.config).finish()
    }
}

/// Why the epoch callback stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum Interrupted {
    #[error("deadline exceeded")]
    Deadline,
    #[error("cancelled")]
    Cancelled,
}

/// Keeps `RUST_BACKTRACE` for panics but stops library errors from capturing backtraces, unless
/// `RUST_LIB_BACKTRACE` is set. wasmtime builds an error each time a run's store is dropped (it
/// unwinds the store's idle fiber with one), so under `RUST_BACKTRACE=1` every run walked and
/// recorded its stack: about a tenth of a busy node's CPU in the queue benchmark.
///
/// # Safety
/// Sets an environment variable: call it before any other thread exists (first thing in `main`).
#[allow(unsafe_code)]
pub unsafe fn quiet_library_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: the caller guarantees no other thread reads the environment meanwhile.
        unsafe {
            std::env::set_var("RUST_LIB_BACKTRACE", "0");
        }
    }
}

/// The pooling allocator every run's instance comes from: `max_instances` slots of at most
/// `max_memory_bytes`, slots reset in batches and their touched pages kept resident.
pub fn pooling_config(max_instances: u32, max_memory_bytes: u64) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(max_instances)
        .total_core_instances(max_instances * CORE_INSTANCES_PER_COMPONENT)
        .total_memories(max_instances * MEMORIES_PER_COMPONENT)
        .total_tables(max_instances * TABLES_PER_COMPONENT)
        .total_stacks(max_instances)
        .max_memory_size(max_memory_bytes as usize)
        .decommit_batch_size(DECOMMIT_BATCH)
        .linear_memory_keep_resident(LINEAR_MEMORY_KEEP_RESIDENT)
        .table_keep_resident(TABLE_KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto);
    pool
}

/// The engine configuration every run relies on: fuel, epochs, pooling with copy-on-write images.
pub fn engine_config(max_instances: u32, max_memory_bytes: u64) -> Config {
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(
            max_instances,
            max_memory_bytes,
        )));
    config
}

impl Runtime {
    /// Builds the engine, the linker and the cache, and starts the epoch ticker thread.
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Runtime> {
        if config.max_instances == 0 {
            anyhow::bail!("max_instances must be at least 1");
        }
        let engine = Engine::new(&engine_config(config.max_instances, config.max_memory_bytes))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut linker = Linker::new(&engine);
        crate::host::add_to_linker(&mut linker).map_err(|e| anyhow::anyhow!("{e}"))?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(
                ComponentCache::open(dir, &engine)
                    .map_err(|e| anyhow::anyhow!("cannot use cache directory {}: {e}", dir.display()))?,
            ),
            None => None,
        };
        let stop_ticker = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = stop_ticker.clone();
            std::thread::Builder::new().name("mc-epoch".into()).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        }
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                plugins: Mutex::new(HashMap::new()),
                config,
                stop_ticker,
            }),
        })
    }

    /// The engine (for benchmarks and tools that compare against bare wasmtime).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The largest memory cap a run may ask for.
    pub fn max_memory_bytes(&self) -> u64 {
        self.inner.config.max_memory_bytes
    }

    /// Loads a plugin from a file.
    pub fn load_file(&self, path: &Path) -> Result<Arc<Plugin>, LoadError> {
        let what = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => LoadError::NotFound { what: what.clone() },
            _ => LoadError::Io {
                what: what.clone(),
                reason: e.to_string(),
            },
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().replace('_', "-"))
            .unwrap_or_else(|| what.clone());
        self.load_bytes(&name, &bytes)
    }

    /// Loads a plugin from its bytes. Loading the same bytes again returns the same plugin.
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<Arc<Plugin>, LoadError> {
        let started = Instant::now();
        check_header(name, bytes)?;
        let hash = content_hash(bytes);
        if let Some(p) = lock(&self.inner.plugins).get(&hash) {
            return Ok(p.clone());
        }
        let engine = &self.inner.engine;
        let invalid = |e: wasmtime::Error| LoadError::Invalid {
            what: name.into(),
            reason: format!("{e:#}"),
        };
        let (component, source) = match &self.inner.cache {
            Some(cache) => cache.load_or_compile(engine, &hash, bytes).map_err(invalid)?,
            None => (Component::new(engine, bytes).map_err(invalid)?, CacheOutcome::Compiled),
        };
        check_contract(name, engine, &component)?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::UnknownImport {
                what: name.into(),
                detail: format!("{e:#}"),
            })?;
        let pre = WorkflowPre::new(pre).map_err(|e| LoadError::MissingExport {
            what: name.into(),
            expected: crate::plugin::HANDLER_EXPORT.into(),
            found: format!("{e:#}"),
        })?;
        let plugin = Arc::new(Plugin {
            name: name.to_string(),
            hash: hash.clone(),
            pre,
            source,
            load_time: started.elapsed(),
        });
        lock(&self.inner.plugins).insert(hash, plugin.clone());
        Ok(plugin)
    }

    /// Runs `plugin` once. The only error is an out-of-range limit; everything that happens
    /// during the run, good or bad, is in the returned outcome.
    pub async fn run(&self, plugin: &Plugin, req: RunRequest) -> Result<RunOutcome, LimitError> {
        req.limits.validate(self.inner.config.max_memory_bytes)?;
        let started = Instant::now();
        let limits = req.limits;
        let stderr = CappedOutput::default();
        let denials = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicU32::new(0));

        // The empty WASI context: no preopens, no env, no args, no sockets, stdout discarded,
        // stderr captured (capped) for panic messages.
        let mut wasi = WasiCtx::builder();
        wasi.stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);

        let ctx = &req.context;
        let state = RunState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: EgressHooks {
                allow: Arc::new(req.grants.http.clone()),
                denials: denials.clone(),
                requests: requests.clone(),
            },
            limiter: RunLimiter::new(limits.memory_bytes),
            call: CallContext {
                tenant: ctx.tenant.clone(),
                agent: ctx.agent.clone(),
                automation: ctx.automation.clone(),
                run_id: ctx.run_id.clone(),
                root_run_id: ctx.root_run_id.clone().unwrap_or_else(|| ctx.run_id.clone()),
                attempt: ctx.attempt,
                call_seq: None,
            },
            grants: req.grants.clone(),
            services: req.services.clone(),
            started,
            deadline_at: started + limits.deadline,
            delegated: 0,
            approvals_asked: 0,
            usage: RunUsage::default(),
            logs: Vec::new(),
            logs_dropped: 0,
            denials: denials.clone(),
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        if let Err(e) = store.set_fuel(limits.fuel) {
            return Ok(host_failure(format!("cannot set fuel: {e}"), started));
        }
        store.set_epoch_deadline(1);
        let deadline_at = started + limits.deadline;
        let cancel = req.cancel.clone();
        store.epoch_deadline_callback(move |_| {
            if cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
                return Err(wasmtime::Error::from(Interrupted::Cancelled));
            }
            if Instant::now() >= deadline_at {
                return Err(wasmtime::Error::from(Interrupted::Deadline));
            }
            // Yield to the executor every tick so a computing plugin shares its thread.
            Ok(UpdateDeadline::Yield(1))
        });

        let wit_ctx = WitRunContext {
            tenant: ctx.tenant.clone(),
            agent: ctx.agent.clone(),
            automation: ctx.automation.clone(),
            run_id: ctx.run_id.clone(),
            attempt: ctx.attempt,
            trigger: ctx.trigger.clone(),
            deadline_ms: limits.deadline.as_millis() as u64,
        };

        enum Ended {
            Instantiate(wasmtime::Error),
            Call(wasmtime::Result<Result<String, Failure>>),
            Deadline,
            Cancelled,
        }
        let ended = {
            let store = &mut store;
            let call = async {
                let workflow = match plugin.pre.instantiate_async(&mut *store).await {
                    Ok(w) => w,
                    Err(e) => return Ended::Instantiate(e),
                };
                Ended::Call(
                    workflow
                        .mission_control_handler()
                        .call_run(&mut *store, &req.input, &wit_ctx)
                        .await,
                )
            };
            let cancelled = async {
                match &req.cancel {
                    Some(c) => c.cancelled().await,
                    None => std::future::pending().await,
                }
            };
            // The epoch callback stops computing plugins; this stops plugins waiting on a host call.
            tokio::select! {
                ended = call => ended,
                _ = tokio::time::sleep_until(deadline_at.into()) => Ended::Deadline,
                _ = cancelled => Ended::Cancelled,
            }
        };

        let fuel_left = store.get_fuel().unwrap_or(0);
        let stderr_text = stderr.text();
        let mut state = store.into_data();
        let denials = std::mem::take(&mut *lock(&denials));
        let result = match ended {
            Ended::Deadline => Err(RunFailure::Deadline {
                limit_ms: limits.deadline.as_millis() as u64,
            }),
            Ended::Cancelled => Err(RunFailure::Cancelled),
            Ended::Instantiate(e) => Err(classify_instantiate(e, &state, &limits)),
            Ended::Call(Err(e)) => Err(classify_trap(e, &state, &limits, &stderr_text)),
            Ended::Call(Ok(Err(failure))) => Err(RunFailure::Plugin {
                code: failure_code(failure.kind).into(),
                message: failure.message,
                retryable: failure.retryable,
            }),
            Ended::Call(Ok(Ok(output))) => check_output(output, &limits),
        };
        // A plugin that failed after being refused a capability failed because of the refusal.
        let result = match (result, denials.first()) {
            (Err(RunFailure::Plugin { .. } | RunFailure::Trap { .. }), Some(d)) => Err(RunFailure::CapabilityDenied {
                capability: d.capability.clone(),
                detail: d.detail.clone(),
            }),
            (r, _) => r,
        };
        if state.logs_dropped > 0 {
            state.logs.push(LogLine {
                at_ms: started.elapsed().as_millis() as u64,
                level: LogLevel::Warn,
                message: format!(
                    "{} more log lines dropped (limit {} per run)",
                    state.logs_dropped,
                    crate::state::MAX_LOG_LINES
                ),
            });
        }
        let usage = RunUsage {
            fuel_consumed: limits.fuel.saturating_sub(fuel_left),
            peak_memory_bytes: state.limiter.peak(),
            wall_time: started.elapsed(),
            ai_calls: state.usage.ai_calls,
            tokens: state.usage.tokens,
            http_requests: requests.load(Ordering::Relaxed),
        };
        Ok(RunOutcome {
            result,
            usage,
            logs: state.logs,
            denials,
            stderr: stderr_text,
        })
    }
}

fn host_failure(message: String, started: Instant) -> RunOutcome {
    RunOutcome {
        result: Err(RunFailure::Host { message }),
        usage: RunUsage {
            wall_time: started.elapsed(),
            ..RunUsage::default()
        },
        logs: Vec::new(),
        denials: Vec::new(),
        stderr: String::new(),
    }
}

fn failure_code(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::InvalidInput => "invalid-input",
        FailureKind::NotGranted => "not-granted",
        FailureKind::Upstream => "upstream",
        FailureKind::BudgetExceeded => "budget-exceeded",
        FailureKind::Internal => "internal",
    }
}

fn check_output(output: String, limits: &Limits) -> Result<String, RunFailure> {
    if output.len() > limits.max_output_bytes {
        return Err(RunFailure::OutputTooLarge {
            size: output.len(),
            limit: limits.max_output_bytes,
        });
    }
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&output) {
        return Err(RunFailure::InvalidOutput { reason: e.to_string() });
    }
    Ok(output)
}

/// Instantiation runs the component's start code, so it can run out of fuel or memory like a call;
/// anything else (the pool is full) is the host's problem and worth retrying.
fn classify_instantiate(e: wasmtime::Error, state: &RunState, limits: &Limits) -> RunFailure {
    if e.downcast_ref::<Trap>().is_some()
        || e.downcast_ref::<Interrupted>().is_some()
        || state.limiter.hit_memory_limit()
    {
        return classify_trap(e, state, limits, "");
    }
    RunFailure::Host {
        message: format!("cannot instantiate the plugin: {e:#}"),
    }
}

fn classify_trap(e: wasmtime::Error, state: &RunState, limits: &Limits, stderr: &str) -> RunFailure {
    match e.downcast_ref::<Interrupted>() {
        Some(Interrupted::Deadline) => {
            return RunFailure::Deadline {
                limit_ms: limits.deadline.as_millis() as u64,
            };
        }
        Some(Interrupted::Cancelled) => return RunFailure::Cancelled,
        None => {}
    }
    if let Some(s) = e.downcast_ref::<crate::host::approval::Suspended>() {
        return RunFailure::AwaitingApproval { title: s.title.clone() };
    }
    // A refused `memory.grow` surfaces as a generic error (or, in some allocators, as an abort):
    // the limiter's own record is the reliable signal.
    if state.limiter.hit_memory_limit() {
        return RunFailure::MemoryLimit {
            limit_mib: limits.memory_bytes >> 20,
        };
    }
    let backtrace = e
        .downcast_ref::<WasmBacktrace>()
        .map(|bt| bt.to_string())
        .unwrap_or_default();
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => RunFailure::OutOfFuel { limit: limits.fuel },
        Some(Trap::Interrupt) => RunFailure::Deadline {
            limit_ms: limits.deadline.as_millis() as u64,
        },
        Some(Trap::StackOverflow) => RunFailure::StackOverflow { backtrace },
        Some(trap) => {
            let message = match panic_message(stderr) {
                Some(p) => format!("the plugin panicked: {p}"),
                None => trap.to_string(),
            };
            RunFailure::Trap { message, backtrace }
        }
        None => RunFailure::Trap {
            message: format!("{e:#}"),
            backtrace,
        },
    }
}

/// The panic message Rust's runtime wrote to stderr, if any.
fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.find("panicked at")?;
    let quote: String = stderr[start..].trim().chars().take(MAX_PANIC_QUOTE).collect();
    Some(quote.replace('\n', " "))
}
