//! What a run returns: its output or a typed failure, what it consumed, its log and the
//! capabilities it was refused.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// How a run failed. Each variant is a distinct cause with its own message, so the engine can
/// decide what to retry and a person can tell what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunFailure {
    /// The fuel budget ran out: the plugin computed too much (often an endless loop).
    #[error("out of fuel: the plugin used its whole budget of {limit} fuel units (an endless loop, or raise --fuel)")]
    OutOfFuel { limit: u64 },
    /// The plugin tried to grow its memory past the cap.
    #[error("memory limit: the plugin tried to use more than {limit_mib} MiB of memory")]
    MemoryLimit { limit_mib: u64 },
    /// The wall-clock deadline passed.
    #[error("deadline exceeded: the run did not finish within {limit_ms} ms")]
    Deadline { limit_ms: u64 },
    /// The wasm call stack overflowed (unbounded recursion).
    #[error("stack overflow: the plugin recursed too deeply{}", backtrace_suffix(backtrace))]
    StackOverflow { backtrace: String },
    /// Any other trap: a panic, an unreachable instruction, an out-of-bounds access.
    #[error("trap: {message}{}", backtrace_suffix(backtrace))]
    Trap { message: String, backtrace: String },
    /// The plugin returned its own error.
    #[error("plugin error ({code}): {message}")]
    Plugin {
        code: String,
        message: String,
        retryable: bool,
    },
    /// The plugin used a capability this run was not granted (and failed because of it).
    #[error("capability not granted: {detail}")]
    CapabilityDenied { capability: String, detail: String },
    /// The output exceeded the output cap.
    #[error("output too large: {size} bytes, the limit is {limit} bytes")]
    OutputTooLarge { size: usize, limit: usize },
    /// The output is not a JSON document.
    #[error("invalid output: the plugin returned text that is not JSON ({reason})")]
    InvalidOutput { reason: String },
    /// The run was cancelled from outside.
    #[error("cancelled")]
    Cancelled,
    /// The plugin asked a person to approve something and stopped to wait: the run is to be
    /// suspended and run again once the answer is in (not a failure of the plugin).
    #[error("waiting for approval of \"{title}\"")]
    AwaitingApproval { title: String },
    /// The host could not run the plugin (no free instance slot, internal error); retryable.
    #[error("host error: {message}")]
    Host { message: String },
}

fn backtrace_suffix(bt: &str) -> String {
    if bt.is_empty() {
        String::new()
    } else {
        format!("\n{bt}")
    }
}

impl RunFailure {
    /// The kind of [`RunFailure::AwaitingApproval`]: the one "failure" that is a pause.
    pub const AWAITING_APPROVAL: &'static str = "awaiting_approval";

    /// A short stable name for the kind, as used in JSON, metrics and the CLI's exit codes.
    pub fn kind(&self) -> &'static str {
        match self {
            RunFailure::OutOfFuel { .. } => "out_of_fuel",
            RunFailure::MemoryLimit { .. } => "memory_limit",
            RunFailure::Deadline { .. } => "deadline",
            RunFailure::StackOverflow { .. } => "stack_overflow",
            RunFailure::Trap { .. } => "trap",
            RunFailure::Plugin { .. } => "plugin",
            RunFailure::CapabilityDenied { .. } => "capability_denied",
            RunFailure::OutputTooLarge { .. } => "output_too_large",
            RunFailure::InvalidOutput { .. } => "invalid_output",
            RunFailure::Cancelled => "cancelled",
            RunFailure::AwaitingApproval { .. } => Self::AWAITING_APPROVAL,
            RunFailure::Host { .. } => "host",
        }
    }

    /// Whether running the same input again may succeed (the engine's retry policy starts here).
    pub fn retryable(&self) -> bool {
        match self {
            RunFailure::Plugin { retryable, .. } => *retryable,
            RunFailure::Host { .. } | RunFailure::Deadline { .. } => true,
            _ => false,
        }
    }
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        })
    }
}

/// One line of a run's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// Milliseconds since the run started.
    pub at_ms: u64,
    pub level: LogLevel,
    pub message: String,
}

/// A capability the run asked for and was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    /// `http`, `ai`, `kv`, `agents`, `registry`, `approval`.
    pub capability: String,
    pub detail: String,
}

/// What a run consumed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunUsage {
    pub fuel_consumed: u64,
    pub peak_memory_bytes: u64,
    #[serde(serialize_with = "as_micros")]
    pub wall_time: Duration,
    pub ai_calls: u32,
    pub tokens: mc_ai::Usage,
    pub http_requests: u32,
}

fn as_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

/// The result of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunOutcome {
    /// The plugin's output (a JSON document) or why there is none.
    #[serde(serialize_with = "result_as_object")]
    pub result: Result<String, RunFailure>,
    pub usage: RunUsage,
    pub logs: Vec<LogLine>,
    pub denials: Vec<Denial>,
    /// What the plugin wrote to stderr (panic messages, mostly), capped.
    pub stderr: String,
}

fn result_as_object<S: serde::Serializer>(r: &Result<String, RunFailure>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(2))?;
    match r {
        Ok(out) => {
            let value: serde_json::Value = serde_json::from_str(out).unwrap_or(serde_json::Value::String(out.clone()));
            m.serialize_entry("ok", &value)?;
        }
        Err(f) => {
            m.serialize_entry("error", f)?;
            m.serialize_entry("message", &f.to_string())?;
        }
    }
    m.end()
}
