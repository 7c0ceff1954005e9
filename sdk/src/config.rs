//! The agent's parameters (brand voice, report email, data source URL ...), set when the agent or
//! template was configured.
//!
//! ```no_run
//! # fn f() -> mission_control_sdk::Result<()> {
//! let voice = mission_control_sdk::config::get("brand_voice")?.unwrap_or_else(|| "friendly".into());
//! # Ok(()) }
//! ```

use crate::bindings::wasi::config::store;
use crate::{Error, Result};

fn map(e: store::Error) -> Error {
    match e {
        store::Error::Upstream(m) | store::Error::Io(m) => Error::upstream(format!("cannot read configuration: {m}")),
    }
}

/// The value of `key`, if set.
pub fn get(key: &str) -> Result<Option<String>> {
    store::get(key).map_err(map)
}

/// The value of `key`, or an invalid-input error naming the missing parameter.
pub fn require(key: &str) -> Result<String> {
    get(key)?.ok_or_else(|| Error::invalid_input(format!("the agent parameter `{key}` is not set")))
}

/// Every parameter, as (key, value) pairs.
pub fn all() -> Result<Vec<(String, String)>> {
    store::get_all().map_err(map)
}
