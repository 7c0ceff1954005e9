//! What the monitor reads and writes to heal by itself beyond pausing automations: plugin
//! versions that trap run after run (found, quarantined, lifted), load shedding (holding low
//! priorities back while the queue is too old, and letting them go again in their old order), and
//! the agents that run on their fallback model while a provider is down. Deciding when is
//! `mc-monitor`'s business; this module only reads and writes.

use serde::Serialize;

use crate::{PLATFORM, Store, StoreError, now_micros};

/// The error kind of a run refused because its plugin's version is quarantined. Such runs do not
/// count towards an automation's failure streak: the quarantine is the incident.
pub const QUARANTINED: &str = "quarantined";
/// The kind of the incident of a quarantined plugin version.
pub const PLUGIN_QUARANTINED: &str = "plugin_quarantined";

/// A plugin version whose latest runs all trapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrappingPlugin {
    pub plugin: String,
    /// SHA-256 of the version, hex.
    pub hash: String,
    /// Its latest finished runs that trapped, in a row.
    pub streak: u32,
    /// The latest trap.
    pub last_error: Option<String>,
    /// Tenants whose runs trapped.
    pub tenants: Vec<String>,
}

/// A quarantined plugin version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantine {
    pub plugin: String,
    pub hash: String,
    pub reason: String,
    pub since: i64,
}

/// How a plugin version is shown to people: the first 12 hex digits of its hash.
pub fn short_hash(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// The incident subject of a plugin version: `name@` and its [`short_hash`].
pub fn plugin_version(plugin: &str, hash: &str) -> String {
    format!("{plugin}@{}", short_hash(hash))
}

/// An agent with a model and fallbacks, as the monitor's fallback check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentModels {
    pub tenant: String,
    pub agent: String,
    pub model: String,
    pub fallbacks: Vec<String>,
}

/// What one pass of load shedding did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Shed {
    /// Waiting jobs newly held back.
    pub held: u64,
    /// Jobs held back in all (newly and before).
    pub holding: u64,
}

/// A finished run of a plugin: tenant, error kind, plugin version, error.
type LatestRun = (String, Option<String>, Option<String>, Option<String>);

impl Store {
    /// Plugin versions not quarantined with a trapped run since `since` whose latest `streak`
    /// finished runs (of the plugin, any tenant) all trapped in that version.
    pub async fn trapping_plugins(&self, since: i64, streak: u32) -> Result<Vec<TrappingPlugin>, StoreError> {
        let candidates: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT j.plugin, j.plugin_hash FROM queue d JOIN jobs j ON j.id = d.id \
             WHERE d.state = 'dead' AND d.finished_at > $1 AND j.error_kind = 'trap' AND j.plugin_hash IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM plugin_quarantine q WHERE q.plugin = j.plugin AND q.hash = j.plugin_hash) ORDER BY 1, 2",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for (plugin, hash) in candidates {
            // Runs refused by a quarantine are not the plugin's doing; anything else that ended
            // (a success, another failure) breaks the streak.
            let latest: Vec<LatestRun> = sqlx::query_as(
                "SELECT tenant_id, error_kind, plugin_hash, error FROM jobs WHERE plugin = $1 \
                 AND state IN ('succeeded', 'dead') AND COALESCE(error_kind, '') <> $2 \
                 ORDER BY finished_at DESC, id DESC LIMIT $3",
            )
            .bind(&plugin)
            .bind(QUARANTINED)
            .bind(i64::from(streak))
            .fetch_all(self.pool())
            .await?;
            let trapped: Vec<_> = latest
                .iter()
                .take_while(|(_, kind, h, _)| kind.as_deref() == Some("trap") && h.as_deref() == Some(&hash))
                .collect();
            if trapped.len() as u32 >= streak {
                let mut tenants: Vec<String> = trapped.iter().map(|t| t.0.clone()).collect();
                tenants.sort();
                tenants.dedup();
                out.push(TrappingPlugin {
                    last_error: latest.first().and_then(|t| t.3.clone()),
                    streak: trapped.len() as u32,
                    plugin,
                    hash,
                    tenants,
                });
            }
        }
        Ok(out)
    }

    /// Quarantines a plugin version. False if it was already.
    pub async fn quarantine_plugin(&self, plugin: &str, hash: &str, reason: &str) -> Result<bool, StoreError> {
        let added = sqlx::query(
            "INSERT INTO plugin_quarantine (plugin, hash, reason, since) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (plugin, hash) DO NOTHING",
        )
        .bind(plugin)
        .bind(hash)
        .bind(reason)
        .bind(now_micros())
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(added > 0)
    }

    /// Every quarantined plugin version, oldest first.
    pub async fn quarantined(&self) -> Result<Vec<Quarantine>, StoreError> {
        let rows: Vec<(String, String, String, i64)> =
            sqlx::query_as("SELECT plugin, hash, reason, since FROM plugin_quarantine ORDER BY since, plugin")
                .fetch_all(self.pool())
                .await?;
        Ok(rows
            .into_iter()
            .map(|(plugin, hash, reason, since)| Quarantine {
                plugin,
                hash,
                reason,
                since,
            })
            .collect())
    }

    /// Lifts every quarantine of `plugin` (an operator's decision) and resolves their incidents
    /// in the same transaction. Returns the versions lifted.
    pub async fn release_plugin(&self, plugin: &str, who: &str) -> Result<Vec<String>, StoreError> {
        let mut tx = self.write_tx().await?;
        let hashes: Vec<(String,)> = sqlx::query_as("DELETE FROM plugin_quarantine WHERE plugin = $1 RETURNING hash")
            .bind(plugin)
            .fetch_all(&mut *tx)
            .await?;
        for (hash,) in &hashes {
            crate::monitor::resolve_in(
                &mut tx,
                PLATFORM,
                PLUGIN_QUARANTINED,
                &plugin_version(plugin, hash),
                &format!("{who} lifted the quarantine"),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(hashes.into_iter().map(|(h,)| h).collect())
    }

    /// Whether a run of `plugin` succeeded after `since` (a new version works).
    pub async fn plugin_succeeded_since(&self, plugin: &str, since: i64) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM jobs WHERE plugin = $1 AND state = 'succeeded' AND finished_at > $2 LIMIT 1",
        )
        .bind(plugin)
        .bind(since)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// The priorities of waiting jobs, lowest first, with how many wait at each. Held-back jobs
    /// are not waiting.
    pub async fn waiting_priorities(&self) -> Result<Vec<(i32, i64)>, StoreError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT priority, COUNT(*) FROM queue WHERE state = 'available' GROUP BY priority ORDER BY priority",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(p, n)| (p as i32, n)).collect())
    }

    /// Holds back waiting jobs of priority `at_most` or lower until `until` (µs), and keeps those
    /// held before held until then. A held job waits `scheduled` and remembers when it was due
    /// (`shed_from`); its rank is untouched, so when [`Store::end_shedding`] lets it go it takes
    /// its old place.
    pub async fn shed(&self, at_most: i32, until: i64) -> Result<Shed, StoreError> {
        let mut tx = self.write_tx().await?;
        let held: Vec<(i64, String)> = sqlx::query_as(
            "UPDATE queue SET state = 'scheduled', shed_from = run_at, run_at = $2 \
             WHERE state = 'available' AND priority <= $1 RETURNING id, tenant_id",
        )
        .bind(i64::from(at_most))
        .bind(until)
        .fetch_all(&mut *tx)
        .await?;
        let later: Vec<(i64,)> = sqlx::query_as(
            "UPDATE queue SET run_at = $1 WHERE shed_from IS NOT NULL AND state = 'scheduled' AND run_at < $1 RETURNING id",
        )
        .bind(until)
        .fetch_all(&mut *tx)
        .await?;
        // Their runs show them waiting until then (held ones are in both lists; both set the same).
        let ids = held.iter().map(|(id, _)| *id).chain(later.iter().map(|(id,)| *id));
        mirror_shedding(&mut tx, ids).await?;
        crate::queue::bump_available_each(&mut tx, held.iter().map(|(_, tenant)| tenant.as_str()), -1).await?;
        let (total,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM queue WHERE shed_from IS NOT NULL AND state = 'scheduled'")
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(Shed {
            held: held.len() as u64,
            holding: total as u64,
        })
    }

    /// Lets every held-back job go: due again when it was due before it was held, so the next
    /// staging makes it available in its old place. Returns how many.
    pub async fn end_shedding(&self) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let freed: Vec<(i64,)> = sqlx::query_as(
            "UPDATE queue SET run_at = shed_from, shed_from = NULL WHERE shed_from IS NOT NULL AND state = 'scheduled' \
             RETURNING id",
        )
        .fetch_all(&mut *tx)
        .await?;
        mirror_shedding(&mut tx, freed.iter().map(|(id,)| *id)).await?;
        // Jobs held back and then cancelled or otherwise ended keep no mark.
        sqlx::query("UPDATE queue SET shed_from = NULL WHERE shed_from IS NOT NULL AND state <> 'scheduled'")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(freed.len() as u64)
    }

    /// How many jobs load shedding holds back.
    pub async fn shed_count(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM queue WHERE shed_from IS NOT NULL AND state = 'scheduled'")
                .fetch_one(self.pool())
                .await?;
        Ok(n as u64)
    }

    /// Every agent that names a model and fallbacks, across tenants.
    pub async fn agents_with_fallbacks(&self) -> Result<Vec<AgentModels>, StoreError> {
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT tenant_id, name, model, grants FROM agents WHERE model IS NOT NULL ORDER BY tenant_id, name",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for (tenant, agent, model, grants) in rows {
            let grants: crate::tenants::StoredGrants =
                serde_json::from_str(&grants).map_err(|e| StoreError::Corrupt(format!("agent grants: {e}")))?;
            if !grants.fallbacks.is_empty() {
                out.push(AgentModels {
                    tenant,
                    agent,
                    model,
                    fallbacks: grants.fallbacks,
                });
            }
        }
        Ok(out)
    }
}

/// Shows on the runs `ids` the state and due time shedding gave their queue rows.
async fn mirror_shedding(tx: &mut crate::Tx, ids: impl Iterator<Item = i64>) -> Result<(), StoreError> {
    crate::queue::set_jobs(
        tx,
        ids,
        "state = (SELECT q.state FROM queue q WHERE q.id = jobs.id), \
         run_at = (SELECT q.run_at FROM queue q WHERE q.id = jobs.id)",
    )
    .await
}
