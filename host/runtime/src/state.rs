//! The per-run store data: everything the host imports need while one plugin instance runs.
//! A fresh `RunState` is built for every run and dropped with its store, so nothing leaks from
//! one run (or tenant) to the next.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use mc_ai::{AiGateway, CallContext};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::delegate::Delegator;
use crate::grants::Grants;
use crate::host::http::EgressHooks;
use crate::kv::KvStore;
use crate::limits::RunLimiter;
use crate::outcome::{Denial, LogLine, RunUsage};

/// Most log lines kept per run; a plugin logging in a loop must not fill the database.
pub const MAX_LOG_LINES: usize = 1_000;
/// Longest log line kept, in bytes; longer lines are cut.
pub const MAX_LOG_LINE_BYTES: usize = 4_096;
/// Most of stderr kept per run: enough for a panic message and its location.
pub const MAX_STDERR_BYTES: usize = 16 * 1024;

/// Services a run's imports call out to. The runtime owns none of them: the caller (the CLI, the
/// engine) decides which gateway and which key-value store back a tenant.
#[derive(Clone)]
pub struct Services {
    pub ai: Arc<dyn AiGateway>,
    pub kv: Arc<dyn KvStore>,
    /// Runs delegated tasks as child runs; `None` refuses delegation (a run outside the engine).
    pub delegator: Option<Arc<dyn Delegator>>,
    /// The tenant's registries; `None` refuses the `registry` import.
    pub registries: Option<Arc<dyn crate::Registries>>,
    /// Records approval requests; `None` refuses the `approval` import (a run outside the
    /// engine has nobody to ask).
    pub approvals: Option<Arc<dyn crate::Approvals>>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Services")
    }
}

/// Refusals recorded by imports, shared with the HTTP hooks (which record from inside futures
/// that outlive the borrow of the store).
pub type Denials = Arc<Mutex<Vec<Denial>>>;

pub struct RunState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) hooks: EgressHooks,
    pub(crate) limiter: RunLimiter,
    pub(crate) call: CallContext,
    pub(crate) grants: Arc<Grants>,
    pub(crate) services: Services,
    pub(crate) started: Instant,
    /// When the run's deadline passes; delegated tasks must finish before it.
    pub(crate) deadline_at: Instant,
    /// Tasks this run has delegated so far: numbers each task, so a retried run finds the child
    /// runs its earlier attempt started.
    pub(crate) delegated: u32,
    /// Approval requests this run has made so far: numbers each, so the run that comes back
    /// after a person answered finds the answer.
    pub(crate) approvals_asked: u32,
    pub(crate) usage: RunUsage,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) logs_dropped: u64,
    pub(crate) denials: Denials,
}

impl RunState {
    /// Records a refusal and returns its text, for the error the guest receives.
    pub(crate) fn deny(&self, capability: &str, detail: String) -> String {
        tracing::info!(run_id = %self.call.run_id, capability, %detail, "capability refused");
        lock(&self.denials).push(Denial {
            capability: capability.to_string(),
            detail: detail.clone(),
        });
        detail
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the data is a list of
/// records that stays valid whatever was interrupted).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RunState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// A stderr that keeps the first `MAX_STDERR_BYTES` and silently drops the rest. Dropping rather
/// than failing matters: Rust's `eprintln!` panics when a write fails.
#[derive(Clone, Default)]
pub(crate) struct CappedOutput(pub(crate) Arc<Mutex<Vec<u8>>>);

impl CappedOutput {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.0)).into_owned()
    }
}

impl wasmtime_wasi::cli::IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for CappedOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for CappedOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let mut kept = lock(&self.0);
        let room = MAX_STDERR_BYTES.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..buf.len().min(room)]);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
