//! Imports whose capability no run can be granted yet: approvals.
//! They are part of the contract so plugins can be written against them today; each answers a
//! `not-granted` error naming what was asked for, and records the refusal.

use crate::bindings::mission::control::approval::{self, ApprovalError, ApprovalRequest, Decision};
use crate::state::RunState;

impl approval::Host for RunState {
    async fn request(&mut self, request: ApprovalRequest) -> Result<Decision, ApprovalError> {
        Err(ApprovalError::NotGranted(self.deny(
            "approval",
            format!("asking for approval (\"{}\") is not granted to this run", request.title),
        )))
    }
}
