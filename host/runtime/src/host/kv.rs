//! `wasi:keyvalue/store`: a plugin may open only the bucket its run was granted (by that name, or
//! as `default`); every operation is then confined to that bucket by construction, because the
//! open bucket resource carries the granted name, not the one the guest asked for.

use wasmtime::component::Resource;

use crate::bindings::wasi::keyvalue::store::{Error, Host, HostBucket, KeyResponse};
use crate::kv::{KvError, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use crate::state::RunState;

/// The name a plugin may use for its own tenant's bucket without knowing it.
pub const DEFAULT_BUCKET: &str = "default";

/// A bucket the guest opened: the granted bucket's name.
#[derive(Debug)]
pub struct OpenBucket {
    name: String,
}

fn other(e: KvError) -> Error {
    Error::Other(e.0)
}

impl RunState {
    fn bucket_name(&self, b: &Resource<OpenBucket>) -> Result<String, Error> {
        self.table
            .get(b)
            .map(|b| b.name.clone())
            .map_err(|e| Error::Other(e.to_string()))
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Error::Other(format!(
            "keys must be 1 to {MAX_KEY_BYTES} bytes, got {}",
            key.len()
        )));
    }
    Ok(())
}

impl Host for RunState {
    async fn open(&mut self, identifier: String) -> Result<Resource<OpenBucket>, Error> {
        let Some(granted) = self.grants.kv_bucket.clone() else {
            self.deny(
                "kv",
                format!("key-value bucket `{identifier}` is not granted to this run (no bucket is)"),
            );
            return Err(Error::AccessDenied);
        };
        if identifier != DEFAULT_BUCKET && identifier != granted {
            self.deny(
                "kv",
                format!("key-value bucket `{identifier}` is not granted to this run (only its own bucket is)"),
            );
            return Err(Error::AccessDenied);
        }
        self.table
            .push(OpenBucket { name: granted })
            .map_err(|e| Error::Other(e.to_string()))
    }
}

impl HostBucket for RunState {
    async fn get(&mut self, b: Resource<OpenBucket>, key: String) -> Result<Option<Vec<u8>>, Error> {
        let bucket = self.bucket_name(&b)?;
        check_key(&key)?;
        self.services.kv.get(&bucket, &key).await.map_err(other)
    }

    async fn set(&mut self, b: Resource<OpenBucket>, key: String, value: Vec<u8>) -> Result<(), Error> {
        let bucket = self.bucket_name(&b)?;
        check_key(&key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(Error::Other(format!(
                "values are limited to {MAX_VALUE_BYTES} bytes, got {}",
                value.len()
            )));
        }
        self.services.kv.set(&bucket, &key, value).await.map_err(other)
    }

    async fn delete(&mut self, b: Resource<OpenBucket>, key: String) -> Result<(), Error> {
        let bucket = self.bucket_name(&b)?;
        check_key(&key)?;
        self.services.kv.delete(&bucket, &key).await.map_err(other)
    }

    async fn exists(&mut self, b: Resource<OpenBucket>, key: String) -> Result<bool, Error> {
        let bucket = self.bucket_name(&b)?;
        check_key(&key)?;
        self.services.kv.exists(&bucket, &key).await.map_err(other)
    }

    async fn list_keys(&mut self, b: Resource<OpenBucket>, cursor: Option<u64>) -> Result<KeyResponse, Error> {
        let bucket = self.bucket_name(&b)?;
        let page = self.services.kv.list_keys(&bucket, cursor).await.map_err(other)?;
        Ok(KeyResponse {
            keys: page.keys,
            cursor: page.cursor,
        })
    }

    async fn drop(&mut self, b: Resource<OpenBucket>) -> wasmtime::Result<()> {
        self.table.delete(b)?;
        Ok(())
    }
}
