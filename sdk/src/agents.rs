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

use crate::bindings::mission::control::agents::{DelegateError, delegate as wit_delegate};
use crate::{Error, ErrorKind, Result, Value};

/// Sends `task` (any serialisable value) to `agent` and returns its output.
pub fn delegate(agent: &str, task: &impl serde::Serialize) -> Result<Value> {
    let task = serde_json::to_string(task)?;
    match wit_delegate(agent, &task) {
        Ok(out) => Ok(serde_json::from_str(&out)?),
        Err(DelegateError::NotGranted(m)) => Err(Error::not_granted(m)),
        Err(DelegateError::UnknownAgent(m)) => Err(Error::invalid_input(m)),
        Err(DelegateError::LimitReached(m)) => Err(Error::new(ErrorKind::Internal, m)),
        Err(DelegateError::Failed(m)) => Err(Error::upstream(format!("agent `{agent}` failed: {m}"))),
    }
}
