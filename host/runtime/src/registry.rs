//! Registries behind the `registry` import. The runtime checks that the run was granted the
//! registry (and writing to it); the rows live where the caller keeps them (the engine's store),
//! which checks them against the registry's fields.

/// One condition of a query, as the plugin wrote it (`op`: `eq`, `ne`, `lt`, `le`, `gt`, `ge`,
/// `contains`).
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryFilter {
    pub field: String,
    pub op: &'static str,
    pub value: serde_json::Value,
}

/// A row: its id and its fields (a JSON object, as text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRecord {
    pub id: String,
    pub data: String,
}

/// Why a registry call failed (other than not being granted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryFailure {
    #[error("{0}")]
    UnknownRegistry(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Other(String),
}

/// A tenant's registries. Implementations keep tenants strictly apart.
#[async_trait::async_trait]
pub trait Registries: Send + Sync {
    async fn query(
        &self,
        tenant: &str,
        registry: &str,
        filters: Vec<RegistryFilter>,
        limit: u32,
    ) -> Result<Vec<RegistryRecord>, RegistryFailure>;
    async fn insert(
        &self,
        tenant: &str,
        registry: &str,
        data: serde_json::Value,
    ) -> Result<RegistryRecord, RegistryFailure>;
    async fn update(
        &self,
        tenant: &str,
        registry: &str,
        id: &str,
        data: serde_json::Value,
    ) -> Result<RegistryRecord, RegistryFailure>;
}
