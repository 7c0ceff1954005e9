//! The plugins this node runs: loaded by name from the plugin directory and kept; a file that
//! changed (a new version deployed) is loaded again at the next run, without a restart; and a
//! version the monitor quarantined is refused before it runs (the list is read from the store at
//! most once per [`QUARANTINE_REFRESH`], not once per run, and runs check it without waiting on
//! each other).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use mc_runtime::{Plugin, Runtime};
use mc_store::{Store, StoreError};

/// How often a loaded plugin's file is looked at for a new version: a deploy takes effect within
/// this, and a busy node does not stat the file for every run.
pub const RECHECK_EVERY: Duration = Duration::from_secs(1);
/// How often the quarantine list is read: a version the monitor quarantined stops running on
/// every node within this.
pub const QUARANTINE_REFRESH: Duration = Duration::from_secs(1);

/// What identifies a file's version without reading it.
type Stamp = (Option<SystemTime>, u64);

struct Loaded {
    plugin: Arc<Plugin>,
    stamp: Stamp,
    checked: Instant,
}

/// Quarantined versions: (plugin, reason) by version hash (a hash names one plugin's one version).
type Reasons = HashMap<String, (String, String)>;

/// The quarantine list as last read, and when it was read.
#[derive(Default)]
struct Quarantined {
    reasons: Arc<Reasons>,
    read: Option<Instant>,
}

pub(crate) struct Plugins {
    dir: PathBuf,
    loaded: Mutex<HashMap<String, Loaded>>,
    /// Read by every run without waiting; replaced once a [`QUARANTINE_REFRESH`].
    quarantined: Mutex<Quarantined>,
    /// Held while the list is read again, so one run reads it and the others go on with the old.
    refreshing: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn stamp(path: &Path) -> Stamp {
    match std::fs::metadata(path) {
        Ok(m) => (m.modified().ok(), m.len()),
        Err(_) => (None, 0),
    }
}

impl Plugins {
    pub(crate) fn new(dir: PathBuf) -> Plugins {
        Plugins {
            dir,
            loaded: Mutex::new(HashMap::new()),
            quarantined: Mutex::new(Quarantined::default()),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The plugin `name`, loaded again if its file changed since it was loaded.
    pub(crate) fn get(&self, runtime: &Runtime, name: &str) -> Result<Arc<Plugin>, String> {
        let path = self.dir.join(format!("{}.wasm", name.replace('-', "_")));
        let now = Instant::now();
        let known = {
            let mut loaded = lock(&self.loaded);
            match loaded.get_mut(name) {
                Some(l) if now.duration_since(l.checked) < RECHECK_EVERY => return Ok(l.plugin.clone()),
                Some(l) => {
                    let current = stamp(&path);
                    if current == l.stamp {
                        l.checked = now;
                        return Ok(l.plugin.clone());
                    }
                    Some(current)
                }
                None => None,
            }
        };
        let current = known.unwrap_or_else(|| stamp(&path));
        let plugin = runtime.load_file(&path).map_err(|e| e.to_string())?;
        lock(&self.loaded).insert(
            name.to_string(),
            Loaded {
                plugin: plugin.clone(),
                stamp: current,
                checked: now,
            },
        );
        Ok(plugin)
    }

    /// The list as last read, and whether it is due to be read again.
    fn snapshot(&self) -> (Arc<Reasons>, bool) {
        let q = lock(&self.quarantined);
        (
            q.reasons.clone(),
            q.read.is_none_or(|at| at.elapsed() >= QUARANTINE_REFRESH),
        )
    }

    /// Why version `hash` of plugin `name` is quarantined, if it is.
    pub(crate) async fn quarantined(
        &self,
        store: &Store,
        name: &str,
        hash: &str,
    ) -> Result<Option<String>, StoreError> {
        let lookup = |reasons: &Reasons| {
            reasons
                .get(hash)
                .filter(|(plugin, _)| plugin == name)
                .map(|(_, reason)| reason.clone())
        };
        let (reasons, stale) = self.snapshot();
        if !stale {
            return Ok(lookup(&reasons));
        }
        let _refreshing = match self.refreshing.try_lock() {
            Ok(guard) => guard,
            // Another run is reading it: this one goes by the list as it was a moment ago,
            // unless it was never read.
            Err(_) if lock(&self.quarantined).read.is_some() => return Ok(lookup(&reasons)),
            Err(_) => self.refreshing.lock().await,
        };
        // Read meanwhile by the run this one waited for?
        let (reasons, stale) = self.snapshot();
        if !stale {
            return Ok(lookup(&reasons));
        }
        let fresh: Reasons = store
            .quarantined()
            .await?
            .into_iter()
            .map(|r| (r.hash, (r.plugin, r.reason)))
            .collect();
        let found = lookup(&fresh);
        *lock(&self.quarantined) = Quarantined {
            reasons: Arc::new(fresh),
            read: Some(Instant::now()),
        };
        Ok(found)
    }
}
