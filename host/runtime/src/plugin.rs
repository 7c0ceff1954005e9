//! Loading a plugin: from bytes to a pre-instantiated component, with every way a file can fail to
//! be a workflow plugin reported as its own [`LoadError`] that names what is wrong.

use std::time::Duration;

use crate::bindings::WorkflowPre;
use crate::cache::CacheOutcome;
use crate::state::RunState;

/// The contract version this host speaks (the `mission:control` package version in `wit/`).
pub const CONTRACT_VERSION: &str = "0.1.0";
/// The export every plugin must provide.
pub const HANDLER_EXPORT: &str = "mission:control/handler@0.1.0";
const CONTRACT_PACKAGE: &str = "mission:control/";

/// A plugin ready to run: compiled, linked against the host's imports, pre-instantiated.
pub struct Plugin {
    pub(crate) name: String,
    pub(crate) hash: String,
    pub(crate) pre: WorkflowPre<RunState>,
    pub(crate) source: CacheOutcome,
    pub(crate) load_time: Duration,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("hash", &self.hash)
            .finish()
    }
}

impl Plugin {
    /// The name it was loaded under (file stem or given name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of the component's bytes, hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Whether it came from the disk cache or was compiled.
    pub fn source(&self) -> CacheOutcome {
        self.source
    }

    /// How long loading took (reading aside).
    pub fn load_time(&self) -> Duration {
        self.load_time
    }
}

/// Why a file is not a loadable plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("plugin not found: {what}")]
    NotFound { what: String },
    #[error("cannot read {what}: {reason}")]
    Io { what: String, reason: String },
    #[error("{what} is not a WebAssembly file (it does not start with the \\0asm header)")]
    NotWasm { what: String },
    #[error(
        "{what} is a core WebAssembly module, not a component: build it for the wasm32-wasip2 target (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule { what: String },
    #[error("{what} is not a valid component: {reason}")]
    Invalid { what: String, reason: String },
    #[error(
        "{what} was built for contract mission:control@{plugin}, but this host speaks mission:control@{host}: rebuild it with a matching SDK"
    )]
    IncompatibleContract { what: String, plugin: String, host: String },
    #[error("{what} does not export `{expected}`, so it is not a workflow plugin (its exports: {found})")]
    MissingExport {
        what: String,
        expected: String,
        found: String,
    },
    #[error("{what} needs an import this host does not provide: {detail}")]
    UnknownImport { what: String, detail: String },
}

/// Rejects bytes that are not a component before handing them to the compiler, whose messages
/// for these cases are less helpful.
pub(crate) fn check_header(what: &str, bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm { what: what.into() });
    }
    // Bytes 4..8: version 1 and layer 0 for a core module; layer 1 for a component.
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(LoadError::CoreModule { what: what.into() });
    }
    Ok(())
}

/// The version part of `mission:control/<iface>@<version>`, if the name is of our package.
fn contract_version(name: &str) -> Option<&str> {
    name.strip_prefix(CONTRACT_PACKAGE)?.split_once('@').map(|(_, v)| v)
}

/// Same major.minor for 0.x (semver: a 0.x minor bump is breaking), same major otherwise.
fn compatible(version: &str) -> bool {
    let family = |v: &str| -> String {
        let mut parts = v.split('.');
        let major = parts.next().unwrap_or("");
        if major == "0" {
            format!("0.{}", parts.next().unwrap_or(""))
        } else {
            major.to_string()
        }
    };
    family(version) == family(CONTRACT_VERSION)
}

/// Checks the component's imports and exports against the contract, naming what does not fit.
pub(crate) fn check_contract(
    what: &str,
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> Result<(), LoadError> {
    let ty = component.component_type();
    let incompatible = |v: &str| LoadError::IncompatibleContract {
        what: what.into(),
        plugin: v.into(),
        host: CONTRACT_VERSION.into(),
    };
    for (name, _) in ty.imports(engine) {
        if let Some(v) = contract_version(name)
            && !compatible(v)
        {
            return Err(incompatible(v));
        }
    }
    let exports: Vec<&str> = ty.exports(engine).map(|(n, _)| n).collect();
    if exports
        .iter()
        .any(|e| *e == HANDLER_EXPORT || e.strip_prefix("mission:control/handler@").is_some_and(compatible))
    {
        return Ok(());
    }
    if let Some(v) = exports.iter().find_map(|e| e.strip_prefix("mission:control/handler@")) {
        return Err(incompatible(v));
    }
    Err(LoadError::MissingExport {
        what: what.into(),
        expected: HANDLER_EXPORT.into(),
        found: if exports.is_empty() {
            "none".into()
        } else {
            exports.join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_version_matches_the_wit_package() {
        let wit = include_str!("../../../wit/mission-control.wit");
        assert!(wit.contains(&format!("package mission:control@{CONTRACT_VERSION};")));
    }

    #[test]
    fn version_compatibility_follows_semver() {
        assert!(compatible("0.1.0"));
        assert!(compatible("0.1.7"));
        assert!(!compatible("0.2.0"));
        assert!(!compatible("1.0.0"));
        assert_eq!(contract_version("mission:control/ai@0.2.0"), Some("0.2.0"));
        assert_eq!(contract_version("wasi:io/poll@0.2.0"), None);
    }

    #[test]
    fn header_check_names_the_problem() {
        assert!(matches!(
            check_header("x", b"hello world"),
            Err(LoadError::NotWasm { .. })
        ));
        assert!(matches!(
            check_header("x", b"\0asm\x01\0\0\0"),
            Err(LoadError::CoreModule { .. })
        ));
        assert!(check_header("x", b"\0asm\x0d\0\x01\0").is_ok());
    }
}
