//! Schema migrations, embedded in the binary and applied at start, in order, each in its own
//! transaction. Migrations are append-only: a released one is never edited.
//!
//! On PostgreSQL a transaction-scoped advisory lock serialises nodes that start at the same time;
//! on SQLite the database's single writer does.

use sqlx::Connection;

use crate::{Backend, Store, StoreError, now_micros};

/// One migration: its SQL for SQLite and for PostgreSQL (the same text where the dialects agree).
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tenants",
        sqlite: include_str!("../migrations/0001_tenants.sql"),
        postgres: include_str!("../migrations/0001_tenants.sql"),
    },
    Migration {
        version: 2,
        name: "jobs",
        sqlite: concat!(
            include_str!("../migrations/0002_jobs_sqlite.sql"),
            include_str!("../migrations/0002_jobs_common.sql")
        ),
        postgres: concat!(
            include_str!("../migrations/0002_jobs_postgres.sql"),
            include_str!("../migrations/0002_jobs_common.sql")
        ),
    },
    Migration {
        version: 3,
        name: "schedules and key-value state",
        sqlite: include_str!("../migrations/0003_schedules_kv.sql"),
        postgres: include_str!("../migrations/0003_schedules_kv.sql"),
    },
    Migration {
        version: 4,
        name: "webhooks",
        sqlite: include_str!("../migrations/0004_webhooks.sql"),
        postgres: include_str!("../migrations/0004_webhooks.sql"),
    },
    Migration {
        version: 5,
        name: "automation concurrency limits",
        sqlite: include_str!("../migrations/0005_automation_limits.sql"),
        postgres: include_str!("../migrations/0005_automation_limits.sql"),
    },
    Migration {
        version: 6,
        name: "keys, secrets, audit log, run logs",
        sqlite: concat!(
            include_str!("../migrations/0006_access_common.sql"),
            include_str!("../migrations/0006_audit_sqlite.sql")
        ),
        postgres: concat!(
            include_str!("../migrations/0006_access_common.sql"),
            include_str!("../migrations/0006_audit_postgres.sql")
        ),
    },
    Migration {
        version: 7,
        name: "key expiry",
        sqlite: include_str!("../migrations/0007_key_expiry.sql"),
        postgres: include_str!("../migrations/0007_key_expiry.sql"),
    },
    Migration {
        version: 8,
        name: "plans, budgets, price books, ledger",
        sqlite: concat!(
            include_str!("../migrations/0008_metering_common.sql"),
            include_str!("../migrations/0008_ledger_sqlite.sql")
        ),
        postgres: concat!(
            include_str!("../migrations/0008_metering_common.sql"),
            include_str!("../migrations/0008_ledger_postgres.sql")
        ),
    },
    Migration {
        version: 9,
        name: "budget counters keep their limit",
        sqlite: include_str!("../migrations/0009_counter_budget.sql"),
        postgres: concat!(
            include_str!("../migrations/0009_counter_budget.sql"),
            include_str!("../migrations/0009_refuse_postgres.sql")
        ),
    },
    Migration {
        version: 10,
        name: "run tree",
        sqlite: include_str!("../migrations/0010_run_tree.sql"),
        postgres: include_str!("../migrations/0010_run_tree.sql"),
    },
    Migration {
        version: 11,
        name: "data registries",
        sqlite: include_str!("../migrations/0011_registries.sql"),
        postgres: include_str!("../migrations/0011_registries.sql"),
    },
    Migration {
        version: 12,
        name: "approvals",
        sqlite: include_str!("../migrations/0012_approvals.sql"),
        postgres: include_str!("../migrations/0012_approvals.sql"),
    },
    Migration {
        version: 13,
        name: "chat",
        sqlite: include_str!("../migrations/0013_chat.sql"),
        postgres: include_str!("../migrations/0013_chat.sql"),
    },
    Migration {
        version: 14,
        name: "dashboard sessions",
        sqlite: include_str!("../migrations/0014_sessions.sql"),
        postgres: include_str!("../migrations/0014_sessions.sql"),
    },
    Migration {
        version: 15,
        name: "webhook deliveries",
        sqlite: include_str!("../migrations/0015_outbox_sqlite.sql"),
        postgres: include_str!("../migrations/0015_outbox_postgres.sql"),
    },
    Migration {
        version: 16,
        name: "parked and resumed runs",
        sqlite: include_str!("../migrations/0016_resume.sql"),
        postgres: include_str!("../migrations/0016_resume.sql"),
    },
    Migration {
        version: 17,
        name: "monitor",
        sqlite: concat!(
            include_str!("../migrations/0017_monitor_sqlite.sql"),
            include_str!("../migrations/0017_monitor_common.sql")
        ),
        postgres: concat!(
            include_str!("../migrations/0017_monitor_postgres.sql"),
            include_str!("../migrations/0017_monitor_common.sql")
        ),
    },
    Migration {
        version: 18,
        name: "quarantine, load shedding, tenant contacts",
        sqlite: include_str!("../migrations/0018_heal.sql"),
        postgres: include_str!("../migrations/0018_heal.sql"),
    },
    Migration {
        version: 19,
        name: "dashboard summaries",
        sqlite: include_str!("../migrations/0019_dashboard.sql"),
        postgres: include_str!("../migrations/0019_dashboard.sql"),
    },
    Migration {
        version: 20,
        name: "white-label brands",
        sqlite: include_str!("../migrations/0020_brands.sql"),
        postgres: include_str!("../migrations/0020_brands.sql"),
    },
    Migration {
        version: 21,
        name: "running totals of the ledger and of finished runs",
        sqlite: concat!(
            include_str!("../migrations/0021_totals_common.sql"),
            include_str!("../migrations/0021_totals_sqlite.sql")
        ),
        postgres: concat!(
            include_str!("../migrations/0021_totals_common.sql"),
            include_str!("../migrations/0021_totals_postgres.sql")
        ),
    },
    Migration {
        version: 22,
        name: "the ledger's running totals written with the ledger on PostgreSQL",
        // SQLite keeps its triggers.
        sqlite: "SELECT 1;",
        postgres: include_str!("../migrations/0022_ledger_totals_inline_postgres.sql"),
    },
    Migration {
        version: 23,
        name: "the run totals' trigger sums each transition table on its own (no quadratic join)",
        sqlite: "SELECT 1;",
        postgres: include_str!("../migrations/0023_run_totals_linear_postgres.sql"),
    },
    Migration {
        version: 24,
        name: "fewer index entries written per job",
        sqlite: concat!(
            include_str!("../migrations/0024_fewer_job_indexes_common.sql"),
            include_str!("../migrations/0024_fewer_job_indexes_sqlite.sql")
        ),
        postgres: include_str!("../migrations/0024_fewer_job_indexes_common.sql"),
    },
    Migration {
        version: 25,
        name: "the queue beside the jobs (HOT updates of jobs on PostgreSQL)",
        sqlite: concat!(
            include_str!("../migrations/0025_queue_sqlite.sql"),
            include_str!("../migrations/0025_queue_common.sql"),
            include_str!("../migrations/0025_queue_sqlite_after.sql")
        ),
        postgres: concat!(
            include_str!("../migrations/0025_queue_postgres.sql"),
            include_str!("../migrations/0025_queue_common.sql"),
            include_str!("../migrations/0025_queue_postgres_after.sql")
        ),
    },
    Migration {
        version: 26,
        name: "a claim writes the queue row alone; the view of runs as they are now",
        sqlite: include_str!("../migrations/0026_live_runs.sql"),
        postgres: include_str!("../migrations/0026_live_runs.sql"),
    },
    Migration {
        version: 27,
        name: "the ledger's month index on PostgreSQL a range index over its time",
        // SQLite keeps its month index (it has no range indexes).
        sqlite: "SELECT 1;",
        postgres: include_str!("../migrations/0027_ledger_range_postgres.sql"),
    },
    Migration {
        version: 28,
        name: "more room for HOT updates on the pages of jobs on PostgreSQL",
        // SQLite has no page fill factor.
        sqlite: "SELECT 1;",
        postgres: include_str!("../migrations/0028_jobs_room_postgres.sql"),
    },
];

/// Key of the advisory lock held while migrating (an arbitrary constant: "mc-migr").
const MIGRATION_LOCK: i64 = 0x006d_632d_6d69_6772;

pub(crate) async fn run(store: &Store) -> Result<(), StoreError> {
    run_to(store, i64::MAX).await
}

/// Applies the migrations up to version `last` (tests start from an older schema with it).
async fn run_to(store: &Store, last: i64) -> Result<(), StoreError> {
    let mut conn = store.pool().acquire().await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS mc_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await
    .or_else(|e| match store.backend() {
        // Two nodes creating the table at once on PostgreSQL: one loses the race harmlessly.
        Backend::Postgres if e.to_string().contains("already exists") => Ok(Default::default()),
        _ => Err(e),
    })?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    for m in MIGRATIONS.iter().take_while(|m| m.version <= last) {
        let mut tx = conn.begin().await?;
        if store.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        let applied: Option<(i64,)> = sqlx::query_as("SELECT version FROM mc_migrations WHERE version = $1")
            .bind(m.version)
            .fetch_optional(&mut *tx)
            .await?;
        if applied.is_some() {
            continue;
        }
        let sql = match store.backend() {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        let fail = |source| StoreError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(fail)?;
        sqlx::query("INSERT INTO mc_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(now_micros())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
    }
    let (found,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(version), 0) FROM mc_migrations")
        .fetch_one(&mut *conn)
        .await?;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;

    /// A job as schema 24 kept it: id, state, rank key, run at, lease until, node, parked, held
    /// since, finished at.
    type OldJob = (
        i64,
        &'static str,
        i64,
        i64,
        Option<i64>,
        Option<&'static str>,
        i64,
        Option<i64>,
        Option<i64>,
    );

    /// A database at schema 24 with a job in every state, then migrated to this build's: the
    /// queue holds exactly the jobs it has in hand, with their rank, lease, node and hold, and
    /// the queue works on them.
    async fn the_queue_starts_with_the_live_jobs(url: &str) {
        let store = Store::connect(url).await.unwrap();
        run_to(&store, 24).await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO tenants (id, name, created_at, updated_at) VALUES ('acme', 'acme', 0, 0); \
             INSERT INTO queue_tenants (tenant_id, available, running, served_at) VALUES ('acme', 2, 2, 0);",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let jobs: [OldJob; 9] = [
            (1, "succeeded", -1, 1, None, Some("a"), 0, None, Some(5)),
            (2, "available", -20, 20, None, None, 0, None, None),
            (3, "available", 10_000_000 - 30, 30, None, None, 0, None, None),
            (4, "running", -4, 4, Some(1), Some("gone"), 0, None, None),
            (5, "running", -5, 5, Some(i64::MAX), Some("alive"), 1, None, None),
            (6, "scheduled", -6, i64::MAX, None, None, 0, Some(6), None),
            (7, "awaiting_approval", -7, 7, None, None, 0, None, Some(7)),
            (8, "dead", -8, 8, None, Some("a"), 0, None, Some(8)),
            (9, "cancelled", -9, 9, None, None, 0, None, Some(9)),
        ];
        for (id, state, rank, run_at, lease, node, parked, shed, finished) in jobs {
            sqlx::query(
                "INSERT INTO jobs (id, tenant_id, agent, plugin, input, trigger_kind, priority, rank_key, state, attempt, \
                 max_attempts, run_at, lease_until, claimed_by, created_at, parked, shed_from, finished_at) \
                 VALUES ($1, 'acme', 'a', 'noop', '{}', 'manual', 0, $2, $3, 1, 3, $4, $5, $6, $1, $7, $8, $9)",
            )
            .bind(id)
            .bind(rank)
            .bind(state)
            .bind(run_at)
            .bind(lease)
            .bind(node)
            .bind(parked)
            .bind(shed)
            .bind(finished)
            .execute(store.pool())
            .await
            .unwrap();
        }
        run(&store).await.unwrap();
        type Row = (
            i64,
            String,
            i64,
            i64,
            Option<i64>,
            Option<String>,
            i64,
            Option<i64>,
            Option<i64>,
        );
        let queue: Vec<Row> = sqlx::query_as(
            "SELECT id, state, rank_key, run_at, lease_until, claimed_by, parked, shed_from, finished_at FROM queue ORDER BY id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        let expected: Vec<Row> = jobs
            .iter()
            .filter(|j| {
                matches!(
                    j.1,
                    "available" | "running" | "scheduled" | "awaiting_approval" | "dead"
                )
            })
            // Only a running job's row names its node.
            .map(|j| {
                (
                    j.0,
                    j.1.into(),
                    j.2,
                    j.3,
                    j.4,
                    j.5.filter(|_| j.1 == "running").map(Into::into),
                    j.6,
                    j.7,
                    j.8,
                )
            })
            .collect();
        assert_eq!(queue, expected);
        // Migration 26: a job running as it migrates keeps its attempt on its queue row, and its
        // row in `jobs` shows it as a claim leaves it now (available, the attempts before).
        let live: Vec<(i64, String, i64)> =
            sqlx::query_as("SELECT id, state, attempt FROM runs WHERE id IN (4, 5) ORDER BY id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(live, [(4, "running".into(), 1), (5, "running".into(), 1)]);
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT state, attempt FROM jobs WHERE id IN (4, 5)")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(rows, [("available".into(), 0), ("available".into(), 0)]);
        assert_eq!(store.queue_mismatches().await.unwrap(), []);
        // The higher priority first, then the older; the lapsed lease comes back, the live one
        // stays; a held job and the dead-lettered one are left alone.
        let claim = async || -> Vec<i64> {
            let claimed = store.claim("n", 10, std::time::Duration::from_secs(30)).await.unwrap();
            claimed.iter().map(|j| j.id).collect()
        };
        assert_eq!(claim().await, [3, 2]);
        assert_eq!(store.recover_expired(now_micros()).await.unwrap(), 1);
        let states: Vec<(i64, String)> = sqlx::query_as("SELECT id, state FROM runs ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
        let states: Vec<(i64, &str)> = states.iter().map(|(id, s)| (*id, s.as_str())).collect();
        assert_eq!(
            states,
            [
                (1, "succeeded"),
                (2, "running"),
                (3, "running"),
                (4, "available"),
                (5, "running"),
                (6, "scheduled"),
                (7, "awaiting_approval"),
                (8, "dead"),
                (9, "cancelled")
            ]
        );
        assert_eq!(store.shed_count().await.unwrap(), 1);
        assert!(store.retry_dead("acme", 8).await.unwrap());
        assert!(store.retry_dead("acme", 9).await.unwrap());
        assert_eq!(claim().await, [4, 8, 9]);
        store.close().await;
    }

    #[tokio::test]
    async fn the_queue_starts_with_the_live_jobs_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        the_queue_starts_with_the_live_jobs(&format!("sqlite:{}", dir.path().join("mc.db").display())).await;
    }

    #[tokio::test]
    async fn the_queue_starts_with_the_live_jobs_on_postgres() {
        let name = format!("mc_test_migrate_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(mc_testkit::PG_ADMIN_URL).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        the_queue_starts_with_the_live_jobs(&format!("postgres://postgres@127.0.0.1:5432/{name}")).await;
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}
