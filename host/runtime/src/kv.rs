//! Key-value storage behind `wasi:keyvalue/store`. The runtime only checks that a plugin opens the
//! bucket its run was granted; where the data lives is the caller's choice ([`MemoryKv`] for a
//! single `missionctl run`, a database-backed store in the engine).

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::state::lock;

/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value accepted, in bytes: key-value state is for cursors and small documents; larger
/// data belongs in a registry.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Most keys returned by one `list-keys` page.
pub const LIST_PAGE: usize = 1_000;

/// Why a key-value operation failed (other than the bucket not being granted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KvError(pub String);

/// One page of keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPage {
    pub keys: Vec<String>,
    /// Where the next page starts, if there is one.
    pub cursor: Option<u64>,
}

/// A store of buckets of byte values. Implementations must keep buckets strictly apart.
#[async_trait::async_trait]
pub trait KvStore: Send + Sync {
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    async fn set(&self, bucket: &str, key: &str, value: Vec<u8>) -> Result<(), KvError>;
    async fn delete(&self, bucket: &str, key: &str) -> Result<(), KvError>;
    async fn exists(&self, bucket: &str, key: &str) -> Result<bool, KvError>;
    /// Keys in order, starting at offset `cursor`.
    async fn list_keys(&self, bucket: &str, cursor: Option<u64>) -> Result<KeyPage, KvError>;
}

/// An in-process store, for single runs and tests.
#[derive(Debug, Default)]
pub struct MemoryKv {
    data: Mutex<BTreeMap<(String, String), Vec<u8>>>,
}

impl MemoryKv {
    pub fn new() -> MemoryKv {
        MemoryKv::default()
    }
}

#[async_trait::async_trait]
impl KvStore for MemoryKv {
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(lock(&self.data).get(&(bucket.to_string(), key.to_string())).cloned())
    }

    async fn set(&self, bucket: &str, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        lock(&self.data).insert((bucket.to_string(), key.to_string()), value);
        Ok(())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), KvError> {
        lock(&self.data).remove(&(bucket.to_string(), key.to_string()));
        Ok(())
    }

    async fn exists(&self, bucket: &str, key: &str) -> Result<bool, KvError> {
        Ok(lock(&self.data).contains_key(&(bucket.to_string(), key.to_string())))
    }

    async fn list_keys(&self, bucket: &str, cursor: Option<u64>) -> Result<KeyPage, KvError> {
        let data = lock(&self.data);
        let start = cursor.unwrap_or(0) as usize;
        let keys: Vec<String> = data
            .keys()
            .filter(|(b, _)| b == bucket)
            .skip(start)
            .take(LIST_PAGE + 1)
            .map(|(_, k)| k.clone())
            .collect();
        let more = keys.len() > LIST_PAGE;
        let keys: Vec<String> = keys.into_iter().take(LIST_PAGE).collect();
        let cursor = more.then(|| (start + keys.len()) as u64);
        Ok(KeyPage { keys, cursor })
    }
}
