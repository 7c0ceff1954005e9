//! The sandboxed plugin runtime.
//!
//! A tenant's workflow logic is a WebAssembly component targeting the `workflow` world in `wit/`.
//! This crate compiles it once (caching the result on disk), pre-instantiates it, and runs each
//! call in a fresh store with a fuel budget, a memory cap and a wall-clock deadline. The plugin
//! reaches the outside world only through the imports in [`host`], each of which checks the run's
//! [`Grants`]; the services behind them (AI gateway, key-value store) are passed in by the caller.
//!
//! The crate knows nothing of HTTP servers, SQL or tenants' configuration: it runs what it is
//! given, under the limits it is given, and reports what happened as a [`RunOutcome`].

mod approval;
mod bindings;
mod cache;
mod cancel;
mod delegate;
mod grants;
mod host;
mod kv;
mod limits;
mod outcome;
mod plugin;
mod registry;
mod runtime;
mod state;

pub use approval::{ApprovalAsk, Approvals, Asked};
pub use cache::{CacheOutcome, content_hash};
pub use cancel::CancelToken;
pub use delegate::{DelegatedTask, Delegation, DelegationError, Delegator, MAX_TASKS_PER_CALL};
pub use grants::Grants;
pub use host::ai::{DEFAULT_MAX_TOKENS, MAX_AI_CALLS_PER_RUN, MAX_TOKENS};
pub use host::approval::{MAX_BODY_BYTES as MAX_APPROVAL_BODY_BYTES, MAX_TITLE_BYTES as MAX_APPROVAL_TITLE_BYTES};
pub use host::http::MAX_HTTP_REQUESTS_PER_RUN;
pub use host::kv::DEFAULT_BUCKET;
pub use host::registry::MAX_QUERY_ROWS;
pub use kv::{KeyPage, KvError, KvStore, MemoryKv};
pub use limits::{
    DEFAULT_DEADLINE, DEFAULT_FUEL, DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MEMORY_BYTES, LimitError, Limits, MAX_DEADLINE,
    MAX_FUEL,
};
pub use outcome::{Denial, LogLevel, LogLine, RunFailure, RunOutcome, RunUsage};
pub use plugin::{CONTRACT_VERSION, HANDLER_EXPORT, LoadError, Plugin};
pub use registry::{Registries, RegistryFailure, RegistryFilter, RegistryRecord};
pub use runtime::{
    DEFAULT_MAX_INSTANCES, DEFAULT_MAX_MEMORY_BYTES, EPOCH_TICK, RunContext, RunRequest, Runtime, RuntimeConfig,
    engine_config, pooling_config, quiet_library_backtraces,
};
pub use state::{MAX_LOG_LINES, Services};

/// Bindings for benchmarks that drive the same component with bare wasmtime.
#[doc(hidden)]
pub mod __bench {
    pub use crate::bindings::exports::mission::control::handler::Failure;
    pub use crate::bindings::mission::control::types::RunContext as WitRunContext;
}
