//! Tenant key-value state in the store: the durable backend of `wasi:keyvalue` for engine runs.

use mc_runtime::{KeyPage, KvError, KvStore};
use mc_store::Store;

/// Keys returned per `list-keys` page.
const PAGE: i64 = 1_000;

/// `KvStore` over the database's `kv` table.
#[derive(Debug, Clone)]
pub struct StoreKv {
    store: Store,
}

impl StoreKv {
    pub fn new(store: Store) -> StoreKv {
        StoreKv { store }
    }
}

fn err(e: mc_store::StoreError) -> KvError {
    KvError(e.to_string())
}

#[async_trait::async_trait]
impl KvStore for StoreKv {
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.store.kv_get(bucket, key).await.map_err(err)
    }

    async fn set(&self, bucket: &str, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        self.store.kv_set(bucket, key, &value).await.map_err(err)
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), KvError> {
        self.store.kv_delete(bucket, key).await.map_err(err)
    }

    async fn exists(&self, bucket: &str, key: &str) -> Result<bool, KvError> {
        Ok(self.store.kv_get(bucket, key).await.map_err(err)?.is_some())
    }

    async fn list_keys(&self, bucket: &str, cursor: Option<u64>) -> Result<KeyPage, KvError> {
        let offset = cursor.unwrap_or(0) as i64;
        let mut keys = self.store.kv_keys(bucket, offset, PAGE + 1).await.map_err(err)?;
        let more = keys.len() as i64 > PAGE;
        keys.truncate(PAGE as usize);
        let cursor = more.then(|| (offset + keys.len() as i64) as u64);
        Ok(KeyPage { keys, cursor })
    }
}
