//! The on-disk cache of compiled components.
//!
//! Compiling a plugin takes tens of milliseconds; loading its compiled form takes well under one.
//! Entries are keyed by the SHA-256 of the component's bytes and a hash of everything about the
//! engine that affects compiled code (wasmtime version, target, settings), so a changed plugin or
//! a changed engine never loads a stale artifact. Entries are written to a temporary file and
//! renamed into place, so concurrent writers (several nodes, several tests) never expose a half
//! written file; the last rename wins and both contents are identical.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Hex SHA-256 of `bytes`.
pub fn content_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A `Hasher` over SHA-256, so the engine's compatibility hash is stable across processes
/// (std's `DefaultHasher` makes no such promise).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let d = self.0.clone().finalize();
        u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a compiled artifact from disk.
    Hit,
    /// Compiled now (and stored, if the cache is writable).
    Compiled,
}

/// A directory of compiled components for one engine configuration.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
    engine_key: String,
}

impl ComponentCache {
    /// Opens (creating if needed) the cache in `dir` for `engine`.
    pub fn open(dir: &Path, engine: &Engine) -> std::io::Result<ComponentCache> {
        std::fs::create_dir_all(dir)?;
        let mut h = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_key = hex(&h.0.finalize()[..8]);
        Ok(ComponentCache {
            dir: dir.to_path_buf(),
            engine_key,
        })
    }

    fn path_for(&self, hash: &str) -> PathBuf {
        self.dir.join(format!("{hash}-{}.cwasm", self.engine_key))
    }

    /// The compiled component for `bytes` (whose hash is `hash`): from disk when present and
    /// loadable, else compiled and stored. A cache that cannot be written costs speed, never
    /// correctness: the component is still returned.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        hash: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.path_for(hash);
        if path.exists() {
            match load(engine, &path) {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "discarding unloadable cached component"),
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), error = %e, "could not write the component cache");
        }
        Ok((component, CacheOutcome::Compiled))
    }

    fn store(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
        let (tmp, mut file) = tempfile_in(&self.dir)?;
        let written = file
            .write_all(&bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        Ok(written?)
    }
}

/// A uniquely named file in `dir` (process id, thread and time make collisions impossible between
/// concurrent writers on one machine).
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let path = dir.join(format!(
        ".tmp-{}-{:?}-{nanos}",
        std::process::id(),
        std::thread::current().id()
    ));
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
    Ok((path, file))
}

#[allow(unsafe_code)]
fn load(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // Read into memory rather than mapping the file: a mapped file that someone truncates or
    // rewrites in place (an operator clearing the cache, a disk repair) would crash the process
    // with SIGBUS; a copy costs well under a millisecond.
    let bytes = std::fs::read(path).map_err(|e| wasmtime::format_err!("cannot read {}: {e}", path.display()))?;
    // SAFETY: the cache directory belongs to this host; its files are written only by `store`
    // above (atomically, by rename) from `Component::serialize` of an engine with the same
    // compatibility hash, which `deserialize` checks again before using the code.
    unsafe { Component::deserialize(engine, &bytes) }
}
