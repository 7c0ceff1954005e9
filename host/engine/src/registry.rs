//! Tenant registries in the store: the backend of the `registry` import for engine runs.

use mc_runtime::{Registries, RegistryFailure, RegistryFilter, RegistryRecord};
use mc_store::{FilterOp, RegistryError, RegistryRow, RowFilter, Store};

/// `Registries` over the store's registry tables.
#[derive(Debug, Clone)]
pub struct StoreRegistries {
    store: Store,
}

impl StoreRegistries {
    pub fn new(store: Store) -> StoreRegistries {
        StoreRegistries { store }
    }
}

fn failure(e: RegistryError) -> RegistryFailure {
    match e {
        RegistryError::UnknownRegistry(m) => RegistryFailure::UnknownRegistry(m),
        RegistryError::Invalid(m) => RegistryFailure::Invalid(m),
        RegistryError::NotFound(m) => RegistryFailure::NotFound(m),
        RegistryError::Store(e) => RegistryFailure::Other(e.to_string()),
    }
}

fn record(r: RegistryRow) -> RegistryRecord {
    RegistryRecord {
        id: r.id.to_string(),
        data: serde_json::Value::Object(r.data).to_string(),
    }
}

fn row_id(registry: &str, id: &str) -> Result<i64, RegistryFailure> {
    id.parse()
        .map_err(|_| RegistryFailure::NotFound(format!("registry `{registry}` has no row `{id}`")))
}

#[async_trait::async_trait]
impl Registries for StoreRegistries {
    async fn query(
        &self,
        tenant: &str,
        registry: &str,
        filters: Vec<RegistryFilter>,
        limit: u32,
    ) -> Result<Vec<RegistryRecord>, RegistryFailure> {
        let filters = filters
            .into_iter()
            .map(|f| RowFilter {
                op: FilterOp::parse(f.op).unwrap_or(FilterOp::Eq),
                field: f.field,
                value: f.value,
            })
            .collect::<Vec<_>>();
        let rows = self
            .store
            .tenant(tenant)
            .registry_rows(registry, &filters, None, limit)
            .await
            .map_err(failure)?;
        Ok(rows.into_iter().map(record).collect())
    }

    async fn insert(
        &self,
        tenant: &str,
        registry: &str,
        data: serde_json::Value,
    ) -> Result<RegistryRecord, RegistryFailure> {
        let row = self
            .store
            .tenant(tenant)
            .registry_insert(registry, &data)
            .await
            .map_err(failure)?;
        Ok(record(row))
    }

    async fn update(
        &self,
        tenant: &str,
        registry: &str,
        id: &str,
        data: serde_json::Value,
    ) -> Result<RegistryRecord, RegistryFailure> {
        let id = row_id(registry, id)?;
        let row = self
            .store
            .tenant(tenant)
            .registry_update(registry, id, &data)
            .await
            .map_err(failure)?;
        Ok(record(row))
    }
}
