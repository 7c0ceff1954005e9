//! Test support shared by the crates whose tests need a database: a fresh SQLite file, or a fresh
//! PostgreSQL database on the local server (127.0.0.1:5432, user postgres, trust auth) created for
//! the test and dropped after it; and a private PostgreSQL server ([`PgCluster`]) for tests that
//! restart the database. [`fake_ai`] has fake AI providers that speak the real wire formats;
//! [`WebhookSink`] receives outbound webhooks, [`SmtpSink`] escalation emails.

mod cluster;
pub mod fake_ai;
mod sink;
mod smtp;

use std::future::Future;
use std::path::PathBuf;

use mc_store::Store;
use sqlx::Connection;

pub use cluster::PgCluster;
pub use sink::{Received, WebhookSink};
pub use smtp::{Mail, SmtpSink};

/// The workspace's target directory (`CARGO_TARGET_DIR`, else `target/`): where the plugins are
/// built (`wasm32-wasip2/plugin/`) and the tests share their compiled-component cache.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// The maintenance database used to create and drop test databases.
pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database for one test; `finish` drops the PostgreSQL one.
pub struct TestDb {
    pub store: Store,
    /// The URL the store was opened with (to open it again, e.g. from another process).
    pub url: String,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    nanos * 1000 + N.fetch_add(1, Ordering::Relaxed)
}

impl TestDb {
    /// A fresh SQLite file in a temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite:{}", dir.path().join("mc.db").display());
        let store = Store::open(&url).await.expect("open SQLite");
        TestDb {
            store,
            url,
            pg_name: None,
            _dir: Some(dir),
        }
    }

    /// A fresh PostgreSQL database. Panics with a clear message when the server is down.
    pub async fn postgres() -> TestDb {
        let name = format!("mc_test_{}_{}", std::process::id(), unique());
        let mut admin = sqlx::PgConnection::connect(PG_ADMIN_URL).await.unwrap_or_else(|e| {
            panic!("PostgreSQL must run on 127.0.0.1:5432 for these tests (`.ci/run` starts it): {e}")
        });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create database");
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        let store = Store::open(&url).await.expect("open PostgreSQL");
        TestDb {
            store,
            url,
            pg_name: Some(name),
            _dir: None,
        }
    }

    /// Closes the store and drops the PostgreSQL database.
    pub async fn finish(self) {
        self.store.close().await;
        if let Some(name) = self.pg_name {
            let mut admin = sqlx::PgConnection::connect(PG_ADMIN_URL)
                .await
                .expect("connect to PostgreSQL");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .expect("drop database");
        }
    }
}

/// Runs `test` against a fresh SQLite database, then a fresh PostgreSQL one.
pub async fn on_both<F, Fut>(test: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    for db in [TestDb::sqlite().await, TestDb::postgres().await] {
        test(db.store.clone()).await;
        db.finish().await;
    }
}

/// Puts the shipped price book in force, as every serving node's gateway does when it starts: from
/// then on each run's fuel is priced and written to the ledger when the run is recorded (with no
/// price book a run has no fuel row, which no served node ever sees).
pub async fn shipped_prices(store: &Store) {
    let shipped = mc_ai::prices::PriceBook::shipped();
    store
        .ensure_price_book(mc_ai::prices::SHIPPED, shipped.fuel_per_billion)
        .await
        .expect("install the shipped price book");
}

/// Records one AI call as the gateway does: reserves its cost on the budgets of its tenant,
/// agent and run (`entry.run_id` as the root run), then settles it, which writes its ledger row.
/// Panics if a budget refuses it.
pub async fn bill(store: &Store, entry: &mc_store::LedgerEntry) {
    let reservation = store
        .reserve(&mc_store::ReserveRequest {
            tenant: &entry.tenant,
            agent: &entry.agent,
            root_run: &entry.run_id,
            amount: entry.cost,
            expires_at: entry.at + 60_000_000,
            at: entry.at,
            secret: None,
        })
        .await
        .expect("reserve")
        .expect("a budget refused the call");
    store.settle(&reservation, entry).await.expect("settle");
}
