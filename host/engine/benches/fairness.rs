//! Fairness between tenants (`cargo bench -p mc-engine --bench fairness`): tenant A enqueues
//! 10,000 jobs of the trivial plugin, then tenant B enqueues one, and the engine's own serving loop
//! (`Engine::run`, as `missionctl serve` runs it) works them off. Owns the figure "B's job waits
//! no longer than one job of A": from the jobs' `started_at` it counts how many of A's jobs
//! started after B's job was enqueued (its enqueue committed: no claim can see it before) and
//! before it started, and B's wait. The jobs of A that started while B's enqueue was under way
//! are shown apart: since claims stopped waiting for the WAL flush (BENCHMARKS.md), 8 workers
//! start a dozen of A's jobs in the few milliseconds B's enqueue takes.
//!
//! Two arrivals: B's job is queued behind A's 10,000 before the workers start, or arrives while
//! the workers are already 1,000 jobs into A's flood. The baseline, measured in the same run, is
//! the same workload in one queue (B's job enqueued under tenant A, i.e. first in, first out).
//! Runs on SQLite and on PostgreSQL, a fresh database per row. A second table shows how the
//! serving loop claimed each row's jobs (claims, pauses, throughput): what B's wait in one queue is
//! made of.

/// The allocator `missionctl` serves with (see its `main`), so the engine is measured as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mc_engine::{Engine, EngineConfig};
use mc_runtime::{Runtime, RuntimeConfig};
use mc_store::{NewJob, Store, now_micros};
use mc_testkit::{TestDb, target_dir};

/// Tenant A's flood: the figure's 10,000.
const A_JOBS: usize = 10_000;
/// Jobs enqueued per transaction, as `benches/queue.rs` does.
const ENQUEUE_BATCH: usize = 1_000;
/// Worker slots: `missionctl serve`'s default, so "one worker slot's worth" is what a node runs
/// out of the box.
const WORKERS: usize = 8;
/// In the "arrives mid-flood" row, B's job is enqueued once this many of A's jobs have started:
/// the workers are busy with A and 9,000 of A's jobs are still queued.
const A_STARTED_BEFORE_B: i64 = 1_000;
/// How often the bench looks at the queue counters while it waits.
const POLL: Duration = Duration::from_millis(2);
/// A pause between two claims this long, with work queued and jobs that take about a millisecond,
/// is the serving loop sleeping (its idle poll is 200 ms), not the work.
const LONG_PAUSE: Duration = Duration::from_millis(150);
/// A row that has not drained by then is reported as a failure rather than waited for forever.
const ROW_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// B's job is enqueued after A's 10,000, before the workers start.
    Queued,
    /// B's job is enqueued while the workers run A's flood.
    MidFlood,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    /// A and B are tenants: the engine's fair claims.
    Fair,
    /// B's job is enqueued under tenant A: one queue, first in, first out (the baseline).
    OneQueue,
}

fn job(tenant: &str) -> NewJob {
    NewJob {
        tenant: tenant.into(),
        automation: None,
        agent: "echo".into(),
        plugin: "noop".into(),
        input: "{}".into(),
        trigger: "manual".into(),
        priority: 0,
        max_attempts: 1,
        run_at: None,
        idempotency_key: None,
    }
}

fn p50(mut v: Vec<i64>) -> f64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0) as f64 / 1000.0
}

/// Enqueues B's job under `tenant`; returns its id and the time the enqueue returned.
async fn enqueue_b(store: &Store, tenant: &str) -> (i64, i64) {
    let id = store.enqueue(&[job(tenant)]).await.unwrap()[0].id();
    (id, now_micros())
}

/// Waits until `done` says so, polling the store.
async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let t = Instant::now();
    while !done().await {
        assert!(t.elapsed() < ROW_TIMEOUT, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// A's jobs that have started (claimed), from the queue counters.
async fn a_started(store: &Store) -> i64 {
    let (available, _) = store.queue_counts("a").await.unwrap();
    A_JOBS as i64 - available
}

/// Measures one row; prints it and returns the row of the drain table (how the serving loop
/// claimed the jobs, which is what B's wait in one queue is made of).
async fn measure(backend: &str, postgres: bool, arrival: Arrival, order: Order) -> String {
    let db = if postgres {
        TestDb::postgres().await
    } else {
        TestDb::sqlite().await
    };
    let store = db.store.clone();
    for tenant in ["a", "b"] {
        let yaml = format!("tenant: {tenant}\nagents:\n  - name: echo\n    role: Echo\n    plugin: noop\n");
        store
            .apply(&mc_config::parse(&yaml, &mc_config::Known::default()).unwrap())
            .await
            .unwrap();
    }
    mc_testkit::shipped_prices(&store).await;
    for _ in 0..A_JOBS / ENQUEUE_BATCH {
        store.enqueue(&vec![job("a"); ENQUEUE_BATCH]).await.unwrap();
    }
    let b_tenant = match order {
        Order::Fair => "b",
        Order::OneQueue => "a",
    };
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(target_dir().join("test-component-cache")),
        max_instances: WORKERS as u32 * 2,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let mut config = EngineConfig::new("bench", target_dir().join("wasm32-wasip2/plugin"));
    config.workers = WORKERS;
    let engine = Arc::new(Engine::new(
        store.clone(),
        runtime,
        config,
        Arc::new(mc_ai::OfflineProvider),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // B's job and when its enqueue returned (committed: from then on every claim sees it).
    let mut b = None;
    if arrival == Arrival::Queued {
        b = Some(enqueue_b(&store, b_tenant).await);
    }
    let engine_start = now_micros();
    let serving = tokio::spawn(engine.run(async move {
        let _ = stopped.await;
    }));
    if arrival == Arrival::MidFlood {
        wait_for("A's first jobs to start", async || {
            a_started(&store).await >= A_STARTED_BEFORE_B
        })
        .await;
        b = Some(enqueue_b(&store, b_tenant).await);
    }
    let (b_id, b_committed) = b.unwrap();
    wait_for("every job to finish", async || {
        let a = store.queue_counts("a").await.unwrap();
        let b = store.queue_counts("b").await.unwrap();
        a == (0, 0) && b == (0, 0)
    })
    .await;
    let _ = stop.send(());
    serving.await.unwrap().unwrap();

    // Read what happened. The store keeps its pool to itself; a read-only pool of our own will do.
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .unwrap();
    type Row = (i64, String, i64, Option<i64>, Option<i64>);
    let rows: Vec<Row> = sqlx::query_as("SELECT id, state, created_at, started_at, finished_at FROM runs ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(rows.len(), A_JOBS + 1);
    assert!(rows.iter().all(|r| r.1 == "succeeded"), "every job succeeded");
    let b = rows.iter().find(|r| r.0 == b_id).unwrap();
    let b_started = b.3.unwrap();
    // When B's job arrived: its enqueue began (`created_at`), or the workers started. Until the
    // enqueue commits a claim cannot see it: A's jobs claimed in between are shown, and left out
    // of the goal's count.
    let arrived = b.2.max(engine_start);
    let visible = b_committed.max(engine_start);
    let a_rows = rows.iter().filter(|r| r.0 != b_id);
    let started = |r: &Row| r.3.unwrap();
    let waiting = a_rows.clone().filter(|r| started(r) >= arrived).count();
    let ahead = a_rows
        .clone()
        .filter(|r| (arrived..b_started).contains(&started(r)))
        .count();
    let unseen = a_rows
        .clone()
        .filter(|r| (arrived..b_started.min(visible)).contains(&started(r)))
        .count();
    let with_b = a_rows.clone().filter(|r| started(r) == b_started).count();
    let a_run = p50(a_rows.clone().filter_map(|r| Some(r.4? - r.3?)).collect());
    let b_wait = (b_started - arrived) as f64 / 1000.0;
    let b_wait_seen = (b_started - visible).max(0) as f64 / 1000.0;
    // The goal's count: A's jobs that started while B's job was in the queue for every claim to see.
    let seen_ahead = ahead - unseen;
    let arrival_name = match arrival {
        Arrival::Queued => "queued behind A's 10,000",
        Arrival::MidFlood => "arrives 1,000 jobs into A's flood",
    };
    let (order_name, goal) = match order {
        Order::Fair => (
            "fair (A, B tenants)",
            if seen_ahead <= WORKERS {
                format!("met ({seen_ahead} ≤ {WORKERS})")
            } else {
                format!("NOT met ({seen_ahead} > {WORKERS})")
            },
        ),
        Order::OneQueue => ("baseline: one FIFO queue", "—".to_string()),
    };
    println!(
        "| {backend} | {arrival_name} | {order_name} | {waiting} | {ahead} | {unseen} | {with_b} | {b_wait:.1} | {b_wait_seen:.1} | {a_run:.2} | {goal} |"
    );
    db.finish().await;
    let mut claims: Vec<i64> = rows.iter().map(started).collect();
    claims.sort_unstable();
    claims.dedup();
    let gaps: Vec<i64> = claims.windows(2).map(|w| w[1] - w[0]).collect();
    let longest_gap = gaps.iter().copied().max().unwrap_or(0);
    let long_pauses = gaps.iter().filter(|&&g| g >= LONG_PAUSE.as_micros() as i64).count();
    let last_finished = rows.iter().filter_map(|r| r.4).max().unwrap_or(engine_start);
    format!(
        "| {backend} | {arrival_name} | {order_name} | {} | {:.1} | {:.1} | {long_pauses} | {:.0} |",
        claims.len(),
        rows.len() as f64 / claims.len() as f64,
        longest_gap as f64 / 1000.0,
        rows.len() as f64 / ((last_finished - engine_start) as f64 / 1e6),
    )
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("fairness benchmark: run with `cargo bench -p mc-engine --bench fairness`");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{A_JOBS} jobs of tenant A, then 1 of tenant B; `Engine::run` with {WORKERS} workers; goal: at most {WORKERS} of A's jobs start after B's job is enqueued and before it starts"
    );
    println!();
    println!(
        "| backend | B's job | queue | A's jobs waiting when B arrived | A's jobs started after B arrived, before B | of them, before B's enqueue committed | A's jobs claimed with B | B's wait ms | of it, after B's enqueue committed, ms | one A job, claim → result recorded, p50 ms | goal: A's jobs started after B's enqueue committed, before B |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let drains = rt.block_on(async {
        let mut drains = Vec::new();
        for (backend, postgres) in [("SQLite", false), ("PostgreSQL", true)] {
            for arrival in [Arrival::Queued, Arrival::MidFlood] {
                for order in [Order::Fair, Order::OneQueue] {
                    drains.push(measure(backend, postgres, arrival, order).await);
                }
            }
        }
        drains
    });
    println!();
    println!("How the serving loop claimed the {} jobs of each row:", A_JOBS + 1);
    println!();
    println!(
        "| backend | B's job | queue | claims | jobs per claim | longest pause between claims ms | pauses ≥ {} ms | jobs/s (workers' start → last finish) |",
        LONG_PAUSE.as_millis()
    );
    println!("|---|---|---|---|---|---|---|---|");
    for row in drains {
        println!("{row}");
    }
}
