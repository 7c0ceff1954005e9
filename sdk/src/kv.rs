//! The tenant's key-value state: cursors, last-seen markers, small documents that must survive
//! between runs. Keys are 1 to 512 bytes, values at most 1 MiB.
//!
//! ```no_run
//! # fn f() -> mission_control_sdk::Result<()> {
//! use mission_control_sdk::kv;
//! let runs: u64 = kv::get_json("runs")?.unwrap_or(0);
//! kv::set_json("runs", &(runs + 1))?;
//! # Ok(()) }
//! ```

use crate::bindings::wasi::keyvalue::store::{self, Bucket};
use crate::{Error, Result};

/// The name under which a plugin opens its own tenant's bucket.
const OWN_BUCKET: &str = "default";

fn map(e: store::Error) -> Error {
    match e {
        store::Error::AccessDenied => Error::not_granted("the key-value store is not granted to this run"),
        store::Error::NoSuchStore => Error::not_granted("this run has no key-value bucket"),
        store::Error::Other(m) => Error::internal(format!("key-value store: {m}")),
    }
}

fn bucket() -> Result<Bucket> {
    store::open(OWN_BUCKET).map_err(map)
}

/// Opens a bucket by name. Only the run's own bucket is ever granted; this exists so that a plugin
/// can be tested against the refusal of any other.
pub fn open_named(name: &str) -> Result<()> {
    store::open(name).map(drop).map_err(map)
}

/// The bytes stored under `key`.
pub fn get(key: &str) -> Result<Option<Vec<u8>>> {
    bucket()?.get(key).map_err(map)
}

/// Stores `value` under `key`.
pub fn set(key: &str, value: &[u8]) -> Result<()> {
    bucket()?.set(key, value).map_err(map)
}

/// Removes `key` (no error if absent).
pub fn delete(key: &str) -> Result<()> {
    bucket()?.delete(key).map_err(map)
}

/// Whether `key` is present.
pub fn exists(key: &str) -> Result<bool> {
    bucket()?.exists(key).map_err(map)
}

/// Every key, in order.
pub fn keys() -> Result<Vec<String>> {
    let b = bucket()?;
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = b.list_keys(cursor).map_err(map)?;
        keys.extend(page.keys);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(keys),
        }
    }
}

/// The JSON value stored under `key`, decoded.
pub fn get_json<T: serde::de::DeserializeOwned>(key: &str) -> Result<Option<T>> {
    match get(key)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

/// Stores `value` as JSON under `key`.
pub fn set_json(key: &str, value: &impl serde::Serialize) -> Result<()> {
    set(key, &serde_json::to_vec(value)?)
}
