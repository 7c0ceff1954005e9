//! The `registry` import: query, insert and update rows of the tenant's registries the run was
//! granted (reading, or reading and writing), through the caller's [`Registries`].

use crate::bindings::mission::control::registry::{self, Filter, FilterOp, RegistryError, Row};
use crate::registry::{RegistryFailure, RegistryFilter, RegistryRecord};
use crate::state::RunState;

/// Most rows one query returns, whatever the plugin asks for.
pub const MAX_QUERY_ROWS: u32 = 1_000;

fn row(r: RegistryRecord) -> Row {
    Row { id: r.id, data: r.data }
}

fn failure(e: RegistryFailure) -> RegistryError {
    match e {
        RegistryFailure::UnknownRegistry(m) => RegistryError::UnknownRegistry(m),
        RegistryFailure::Invalid(m) => RegistryError::Invalid(m),
        RegistryFailure::NotFound(m) => RegistryError::NotFound(m),
        RegistryFailure::Other(m) => RegistryError::Other(m),
    }
}

fn json(what: &str, text: &str) -> Result<serde_json::Value, RegistryError> {
    serde_json::from_str(text).map_err(|e| RegistryError::Invalid(format!("{what} is not JSON: {e}")))
}

impl RunState {
    /// The service, if the run may `write` (or read) `registry`.
    fn registry_service(
        &self,
        registry: &str,
        write: bool,
    ) -> Result<std::sync::Arc<dyn crate::Registries>, RegistryError> {
        let granted = self.grants.registries.get(registry).copied();
        let refused = match (granted, write) {
            (None, _) => Some(format!(
                "registry `{registry}` is not granted to agent `{}`",
                self.call.agent
            )),
            (Some(false), true) => Some(format!(
                "agent `{}` may read registry `{registry}` but not write to it",
                self.call.agent
            )),
            _ => None,
        };
        if let Some(text) = refused {
            return Err(RegistryError::NotGranted(self.deny("registry", text)));
        }
        self.services
            .registries
            .clone()
            .ok_or_else(|| RegistryError::NotGranted(self.deny("registry", "this run has no registries".into())))
    }
}

impl registry::Host for RunState {
    async fn query(&mut self, registry: String, filters: Vec<Filter>, limit: u32) -> Result<Vec<Row>, RegistryError> {
        let service = self.registry_service(&registry, false)?;
        let filters = filters
            .into_iter()
            .map(|f| {
                Ok(RegistryFilter {
                    op: match f.op {
                        FilterOp::Eq => "eq",
                        FilterOp::Ne => "ne",
                        FilterOp::Lt => "lt",
                        FilterOp::Le => "le",
                        FilterOp::Gt => "gt",
                        FilterOp::Ge => "ge",
                        FilterOp::Contains => "contains",
                    },
                    value: json(&format!("the value of the filter on `{}`", f.field), &f.value)?,
                    field: f.field,
                })
            })
            .collect::<Result<Vec<_>, RegistryError>>()?;
        let rows = service
            .query(&self.call.tenant, &registry, filters, limit.min(MAX_QUERY_ROWS))
            .await
            .map_err(failure)?;
        Ok(rows.into_iter().map(row).collect())
    }

    async fn insert(&mut self, registry: String, data: String) -> Result<Row, RegistryError> {
        let service = self.registry_service(&registry, true)?;
        let data = json("the row", &data)?;
        service
            .insert(&self.call.tenant, &registry, data)
            .await
            .map(row)
            .map_err(failure)
    }

    async fn update(&mut self, registry: String, id: String, data: String) -> Result<Row, RegistryError> {
        let service = self.registry_service(&registry, true)?;
        let data = json("the change", &data)?;
        service
            .update(&self.call.tenant, &registry, &id, data)
            .await
            .map(row)
            .map_err(failure)
    }
}
