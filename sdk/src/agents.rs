//! Delegation: hand a task to another agent of the same team and use its output.
//!
//! The host runs the specialist as a child run with its own limits and cost record, and bounds
//! depth, fan-out and cycles, so a team can never delegate forever.
//!
//! ```no_run
//! # fn f() -> mission_control_sdk::Result<()> {
//! use mission_control_sdk::{agents, json};
//! let draft = agents::delegate("content-writer", &json!({ "brief": "Spring sale" }))?;
//! # Ok(()) }
//! ```

use crate::bindings::mission::control::agents::{
    DelegateError, Task, delegate as wit_delegate, delegate_all as wit_delegate_all,
};
use crate::{Error, ErrorKind, Result, Value};

/// Sends `task` (any serialisable value) to `agent` and returns its output.
pub fn delegate(agent: &str, task: &impl serde::Serialize) -> Result<Value> {
    let task = serde_json::to_string(task)?;
    answer(agent, wit_delegate(agent, &task))
}

/// Sends each `(agent, task)` at once; the specialists work in parallel. One result per task, in
/// order: a refused or failed task does not stop the others.
pub fn delegate_all<T: serde::Serialize>(tasks: &[(String, T)]) -> Result<Vec<Result<Value>>> {
    let wit: Vec<Task> = tasks
        .iter()
        .map(|(agent, task)| {
            Ok(Task {
                agent: agent.clone(),
                input: serde_json::to_string(task)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(tasks
        .iter()
        .zip(wit_delegate_all(&wit))
        .map(|((agent, _), r)| answer(agent, r))
        .collect())
}

fn answer(agent: &str, r: std::result::Result<String, DelegateError>) -> Result<Value> {
    match r {
        Ok(out) => Ok(serde_json::from_str(&out)?),
        Err(DelegateError::NotGranted(m)) => Err(Error::not_granted(m)),
        Err(DelegateError::UnknownAgent(m)) => Err(Error::invalid_input(m)),
        Err(DelegateError::LimitReached(m)) => Err(Error::new(ErrorKind::Internal, m)),
        Err(DelegateError::Failed(m)) => Err(Error::upstream(format!("agent `{agent}` failed: {m}"))),
    }
}
