//! Imports whose capability no run can be granted yet: registries and approvals.
//! They are part of the contract so plugins can be written against them today; each answers a
//! `not-granted` error naming what was asked for, and records the refusal.

use crate::bindings::mission::control::approval::{self, ApprovalError, ApprovalRequest, Decision};
use crate::bindings::mission::control::registry::{self, Filter, RegistryError, Row};
use crate::state::RunState;

impl registry::Host for RunState {
    async fn query(&mut self, registry: String, _filters: Vec<Filter>, _limit: u32) -> Result<Vec<Row>, RegistryError> {
        Err(RegistryError::NotGranted(self.deny(
            "registry",
            format!("registry `{registry}` is not granted to this run"),
        )))
    }

    async fn insert(&mut self, registry: String, _data: String) -> Result<Row, RegistryError> {
        Err(RegistryError::NotGranted(self.deny(
            "registry",
            format!("registry `{registry}` is not granted to this run"),
        )))
    }

    async fn update(&mut self, registry: String, _id: String, _data: String) -> Result<Row, RegistryError> {
        Err(RegistryError::NotGranted(self.deny(
            "registry",
            format!("registry `{registry}` is not granted to this run"),
        )))
    }
}

impl approval::Host for RunState {
    async fn request(&mut self, request: ApprovalRequest) -> Result<Decision, ApprovalError> {
        Err(ApprovalError::NotGranted(self.deny(
            "approval",
            format!("asking for approval (\"{}\") is not granted to this run", request.title),
        )))
    }
}
