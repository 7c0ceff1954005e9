//! What one run is allowed to reach. Everything not granted here is refused inside the guest with
//! an error that says what was refused; the refusal is also recorded in the run's outcome.

use std::collections::BTreeMap;

use mc_egress::AllowList;

/// The capabilities of one run.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// Origins `wasi:http` may reach.
    pub http: AllowList,
    /// Models `ai.chat` may use; the first is the default when a plugin names none. Empty means
    /// the run may not call AI at all.
    pub models: Vec<String>,
    /// The tenant's key-value bucket; `None` refuses `wasi:keyvalue` entirely.
    pub kv_bucket: Option<String>,
    /// The agent's parameters, served by `wasi:config/store`.
    pub config: BTreeMap<String, String>,
    /// Registries `registry` may use: `true` to read and write, `false` to read only.
    pub registries: BTreeMap<String, bool>,
}
