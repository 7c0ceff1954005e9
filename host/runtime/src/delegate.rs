//! Delegation as the runtime sees it: a run hands tasks to other agents of its tenant through a
//! [`Delegator`] its caller provides. The runtime checks that delegation is granted at all and
//! numbers the tasks; the delegator (the engine, which owns the queue and the run tree) checks
//! the team, the depth, fan-out, cycle and cost bounds, runs the children and waits for them.

use std::time::Instant;

use mc_ai::CallContext;

/// Most tasks one `delegate-all` call may hand out; the engine's fan-out bound per run is the
/// real limit, this one keeps a single call's bookkeeping small.
pub const MAX_TASKS_PER_CALL: usize = 64;

/// One task for one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegatedTask {
    pub agent: String,
    /// The child's input, a JSON document.
    pub input: String,
    /// The task's number within the delegating run (0, 1, …): the same task of a retried run
    /// has the same number, so its child run is found instead of started twice.
    pub seq: u32,
}

/// What a delegating run asks for.
#[derive(Debug, Clone)]
pub struct Delegation {
    /// The delegating run.
    pub from: CallContext,
    pub tasks: Vec<DelegatedTask>,
    /// The delegating run's deadline: children are stopped when it passes.
    pub deadline: Instant,
}

/// Why one task was not done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelegationError {
    #[error("{0}")]
    NotGranted(String),
    #[error("{0}")]
    UnknownAgent(String),
    /// Depth, fan-out, a cycle, or the run tree's cost cap.
    #[error("{0}")]
    LimitReached(String),
    /// The child run failed; the text is its error.
    #[error("{0}")]
    Failed(String),
}

/// Runs delegated tasks as child runs and waits for them.
#[async_trait::async_trait]
pub trait Delegator: Send + Sync {
    /// One result per task of `d`, in order: a child's output (a JSON document) or why it was
    /// refused or failed.
    async fn delegate(&self, d: Delegation) -> Vec<Result<String, DelegationError>>;
}
