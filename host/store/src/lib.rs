//! The durable store: one interface over SQLite (one file, the embedded default) and PostgreSQL
//! (production, and several nodes sharing one database).
//!
//! Both backends go through sqlx's `Any` driver with SQL written once where the dialects agree
//! (`$1` parameters, BIGINT, TEXT); statements that must differ (claiming work, locking) branch
//! on [`Backend`]. Times are integer microseconds since the Unix epoch, UTC; money and token counts
//! are integers; JSON documents are text.
//!
//! Every tenant-owned row is reached through [`TenantScope`], whose queries all carry the tenant
//! id: a handler cannot forget the scope because there is no unscoped query to call.

mod access;
mod approvals;
mod brands;
mod chat;
mod dashboard;
mod heal;
mod metering;
mod migrate;
mod monitor;
mod outbox;
mod queue;
mod registries;
mod runs;
mod schedules;
mod secrets;
mod sessions;
mod tenants;
mod totals;
mod tree;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Connection, Executor};

pub use access::{
    AccessError, AuditFilter, AuditRow, KEY_PREFIX, KeyRefusal, KeyRow, MAX_AUDIT_PAGE, MAX_LABEL_LEN, Need, NewKey,
    Principal, Role, same, sha256_hex,
};
pub use approvals::{ApprovalError, AskState, Decision, PendingApproval};
pub use brands::{BrandRow, TenantBranding};
pub use chat::{ChatMessage, ChatThread};
pub use dashboard::{AgentActivity, RunCounts};
pub use heal::{
    AgentModels, PLUGIN_QUARANTINED, QUARANTINED, Quarantine, Shed, TrappingPlugin, plugin_version, short_hash,
};
pub use metering::{
    ALERT_THRESHOLDS, AgentSpend, BudgetAlert, BudgetRefusal, BudgetScope, BudgetStatus, LedgerEntry, LedgerRow,
    MarginLine, Plan, PriceBookRow, ReplyRecord, Reservation, ReserveRequest, UsageBy, UsageLine, month_and_day,
    valid_month,
};
pub use monitor::{
    AUTOMATION_PAUSED, Contact, ContactWebhook, Destination, FailingAutomation, Histogram, Incident, NewIncident,
    Opened, PLATFORM, PLATFORM_FAILURES, QueueHealth, RUN_FUEL_BOUNDS, RUN_SECONDS_BOUNDS, RUNS_REQUEUED,
    SLA_START_GRACE, Sla, Totals, month_bounds,
};
pub use outbox::{Delivery, DeliveryOutcome, NewDelivery, OPERATOR_SIGNED};
pub use queue::{
    AVAILABLE_AHEAD, BACKOFF_BASE, BACKOFF_MAX, ClaimedJob, Enqueued, Failed, FailedAttempt, Finished, JobRow,
    MAX_ATTEMPTS, MAX_CLAIM, NewJob, PRIORITY_STEP, backoff, fair_shares,
};
pub use registries::{FilterOp, MAX_ROWS_PAGE, RegistryError, RegistryRow, RowFilter};
pub use runs::{FILTER_WINDOW, MAX_RUNS_PAGE, RUN_STATES, RunDetail, RunFilter, RunPage, RunSummary};
pub use schedules::{Advance, Schedulable, TickEvent, TickOutcome};
pub use secrets::{KeyError, MAX_SECRET_BYTES, SECRET_KEY_BYTES, Sealer, SecretMeta};
pub use sessions::{SESSION_LIFETIME_MICROS, Session};
pub use tenants::{AgentRow, ApplyReport, AutomationRow, Change, ChangeKind, TenantRow, TenantScope};
pub use tree::{ChildState, ParentRun, RunNode};

/// How long a statement waits for a SQLite write lock before failing: several engine tasks write
/// concurrently, and SQLite serialises them.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections per pool. SQLite has one writer regardless; PostgreSQL's default limit is 100
/// connections shared by every node.
const MAX_CONNECTIONS: u32 = 10;
/// Connections of SQLite's pool for write transactions. SQLite lets one writer in at a time, so
/// more connections only made the others wait in its busy handler, which sleeps 1, 2, 5, 10 ms
/// and longer between tries instead of being woken; and each connection kept its own statement
/// and page cache, emptied whenever another connection wrote. With one, writers queue in the
/// pool (woken in order) and find their statements prepared and their pages cached: the queue
/// benchmark went from 7.1-8.5k to 9.4-9.5k jobs/s in A/B pairs. Reads keep the main pool and run beside
/// the writer (WAL).
const SQLITE_WRITERS: u32 = 1;
/// Connections of the PostgreSQL pool for budget reservations: each is one short statement.
const MAX_HOLD_CONNECTIONS: u32 = 4;
/// Connections of the claims' pool on PostgreSQL: a node's serving loop claims one batch at a
/// time; the second is for a claim made beside it (a test's, a `work_once`).
const MAX_CLAIM_CONNECTIONS: u32 = 2;
/// How long to wait for a connection from the pool before reporting the database unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// A pooled connection idle this long is pinged before use: the database may have restarted or a
/// firewall dropped the connection meanwhile.
const IDLE_RECHECK: Duration = Duration::from_secs(5);

/// A write transaction of the pool.
pub(crate) type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database URL `{0}`: expected sqlite:PATH or postgres://USER@HOST/DB")]
    InvalidUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        source: sqlx::Error,
    },
    #[error(
        "the database was migrated by a newer version of Mission Control (schema {found}, this build knows up to {known})"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("{0}")]
    Invalid(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// A connection pool to one database, migrated to this build's schema.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// Write transactions' connections: on SQLite one connection (see [`SQLITE_WRITERS`]), on
    /// PostgreSQL the main pool.
    writer: AnyPool,
    /// Budget reservations' connections. On PostgreSQL a small pool whose commits do not wait for
    /// the disk (see [`Store::reserve`] for why that is safe); on SQLite the main pool.
    holds: AnyPool,
    /// Claims' connections on PostgreSQL: a small pool whose sessions plan with
    /// `queue::IN_RANK_ORDER`, so a claim needs no transaction to set it; on SQLite the main pool.
    claims: AnyPool,
    backend: Backend,
}

/// Placeholders for statements built at run time, numbered in the order they are written: `$1, $2,
/// …` on PostgreSQL, plain `?` on SQLite (SQLite looks numbered parameters up by a linear search,
/// so thousands of `$n` cost quadratic time).
///
/// Statements over many rows take the rows as one JSON parameter instead of thousands of bound
/// values ([`Placeholders::json_rows`]): the statement text stays the same whatever the batch size,
/// so it is prepared once per connection, and parsing a JSON array inside the database is far
/// cheaper than binding and planning a `VALUES` list of 12,000 parameters (on PostgreSQL a
/// thousand-row `VALUES` insert took 80 ms).
pub(crate) struct Placeholders {
    sqlite: bool,
    n: usize,
}

impl Placeholders {
    /// Placeholders for a statement run on `conn` (a connection or transaction of the pool).
    pub(crate) fn for_conn(conn: &sqlx::AnyConnection) -> Placeholders {
        Placeholders {
            sqlite: conn.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME,
            n: 0,
        }
    }

    /// Placeholders for SQLite (`?`) or PostgreSQL (`$n`).
    pub(crate) fn new(sqlite: bool) -> Placeholders {
        Placeholders { sqlite, n: 0 }
    }

    /// Whether these are SQLite's placeholders (the statement runs on SQLite).
    pub(crate) fn is_sqlite(&self) -> bool {
        self.sqlite
    }

    /// The next parameter's placeholder; bind the values in the order these were taken.
    pub(crate) fn next(&mut self) -> String {
        self.n += 1;
        if self.sqlite {
            "?".to_string()
        } else {
            format!("${}", self.n)
        }
    }

    /// `column IN (ids)` with the ids bound to the next placeholder as one parameter (bind
    /// [`Placeholders::ids`] of them): the statement's text is the same for any number of ids, so
    /// it is prepared once. Written out as literals, each batch size was a new statement to parse
    /// and plan.
    pub(crate) fn id_in(&mut self, column: &str) -> String {
        let p = self.next();
        if self.sqlite {
            format!("{column} IN (SELECT value FROM json_each({p}))")
        } else {
            format!("{column} = ANY(CAST({p} AS BIGINT[]))")
        }
    }

    /// The parameter [`Placeholders::id_in`] reads: a JSON array on SQLite, an array literal on
    /// PostgreSQL.
    pub(crate) fn ids(&self, ids: impl IntoIterator<Item = i64>) -> String {
        let list = ids.into_iter().map(|id| id.to_string()).collect::<Vec<_>>().join(",");
        if self.sqlite {
            format!("[{list}]")
        } else {
            format!("{{{list}}}")
        }
    }

    /// A FROM item `r` over the elements of a JSON array of arrays bound to the next placeholder
    /// (see [`json_rows`]): `r.value ->> i` is a row's field `i` as text (SQL NULL for JSON
    /// null), the same on both backends; integers need `CAST(… AS BIGINT)`.
    pub(crate) fn json_rows(&mut self) -> String {
        let p = self.next();
        if self.sqlite {
            format!("json_each({p}) AS r")
        } else {
            // jsonb: parsed once; `->>` on plain json re-parses the element at every access.
            format!("jsonb_array_elements(CAST({p} AS jsonb)) AS r(value)")
        }
    }
}

/// The JSON document [`Placeholders::json_rows`] reads: one array per row.
pub(crate) fn json_rows(rows: Vec<serde_json::Value>) -> String {
    serde_json::Value::Array(rows).to_string()
}

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// A pool of at most `max` connections to `backend`.
fn pool_options(backend: Backend, max: u32) -> AnyPoolOptions {
    let pool = AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(ACQUIRE_TIMEOUT);
    match backend {
        // SQLite keeps pinging each connection it hands out: a connection can come back to the
        // pool holding its write lock until its next use (a dropped transaction's rollback, a
        // writing statement not yet reset), and the ping is that use. It costs microseconds.
        Backend::Sqlite => pool,
        // On PostgreSQL the ping is a network round trip before each of the several statements an
        // AI call or a claim makes. sqlx already pings each connection when it comes back, so only
        // one that sat idle (the server may have restarted meanwhile) is checked again.
        Backend::Postgres => pool.test_before_acquire(false).before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_RECHECK {
                    conn.ping().await?;
                }
                Ok(true)
            })
        }),
    }
}

/// Every SQLite connection's settings. WAL lets readers proceed while one writer writes; foreign
/// keys are off by default in SQLite and the schema relies on them.
async fn sqlite_pragmas(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    conn.execute(format!("PRAGMA busy_timeout = {}", SQLITE_BUSY_TIMEOUT.as_millis()).as_str())
        .await?;
    Ok(())
}

impl Store {
    /// Opens the database at `url` (`sqlite:PATH`, `sqlite::memory:` or `postgres://…`) and
    /// applies any migration it lacks.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let store = Store::connect(url).await?;
        migrate::run(&store).await?;
        Ok(store)
    }

    /// Connects to the database at `url` without migrating it.
    async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::InvalidUrl(url.to_string()));
        };
        let url = match backend {
            // Create the file when it does not exist yet.
            Backend::Sqlite if !url.contains("mode=") && !url.contains(":memory:") => {
                format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
            }
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url).map_err(|_| StoreError::InvalidUrl(url.clone()))?;
        let mut pool = pool_options(backend, MAX_CONNECTIONS);
        let memory = url.contains(":memory:");
        if backend == Backend::Sqlite {
            pool = pool.after_connect(|conn, _| Box::pin(sqlite_pragmas(conn)));
            if memory {
                // Every connection to `:memory:` is its own database: keep exactly one.
                pool = pool
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
            }
        }
        let pool = pool.connect_with(options.clone()).await?;
        let writer = match backend {
            // Every connection to `:memory:` is its own database: the one of the pool writes too.
            Backend::Sqlite if memory => pool.clone(),
            Backend::Sqlite => {
                pool_options(backend, SQLITE_WRITERS)
                    .after_connect(|conn, _| Box::pin(sqlite_pragmas(conn)))
                    .connect_with(options.clone())
                    .await?
            }
            Backend::Postgres => pool.clone(),
        };
        let holds = match backend {
            Backend::Sqlite => pool.clone(),
            Backend::Postgres => pool_options(backend, MAX_HOLD_CONNECTIONS)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute("SET synchronous_commit TO off").await?;
                        Ok(())
                    })
                })
                .connect_lazy_with(options.clone()),
        };
        let claims = match backend {
            Backend::Sqlite => pool.clone(),
            Backend::Postgres => pool_options(backend, MAX_CLAIM_CONNECTIONS)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        for (name, value) in queue::IN_RANK_ORDER.iter().chain(&queue::CLAIM_COMMIT) {
                            sqlx::query("SELECT set_config($1, $2, false)")
                                .bind(name)
                                .bind(value)
                                .execute(&mut *conn)
                                .await?;
                        }
                        Ok(())
                    })
                })
                .connect_lazy_with(options),
        };
        Ok(Store {
            pool,
            writer,
            holds,
            claims,
            backend,
        })
    }

    /// Opens (creating) the SQLite database file `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        Store::open(&format!("sqlite:{}", path.display())).await
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for the crate's modules.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool for write transactions ([`Store::write_tx`]).
    pub(crate) fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// The pool for budget reservations and their releases (see [`Store::reserve`]).
    pub(crate) fn holds(&self) -> &AnyPool {
        &self.holds
    }

    /// The pool claims run on outside a transaction (see `Store::claim_limited`).
    pub(crate) fn claims(&self) -> &AnyPool {
        &self.claims
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.claims.close().await;
        self.holds.close().await;
        self.writer.close().await;
        self.pool.close().await;
    }
}
