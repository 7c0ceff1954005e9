//! Queue throughput (`cargo bench -p mc-engine --bench queue`): N jobs of the trivial plugin
//! through enqueue → claim → run → complete, on SQLite and on PostgreSQL (a fresh database on the
//! local server), with the engine's own worker pass. Prints jobs per second for each phase.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use mc_engine::{Engine, EngineConfig};
use mc_runtime::{Runtime, RuntimeConfig};
use mc_store::{NewJob, Store};
use mc_testkit::TestDb;

/// Jobs per run; `MC_BENCH_JOBS` overrides it for a quick look.
const DEFAULT_JOBS: usize = 100_000;
/// Jobs enqueued per transaction.
const ENQUEUE_BATCH: usize = 1_000;
/// Jobs claimed (and then run concurrently) per worker pass.
const CLAIM_BATCH: usize = 500;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

async fn measure(name: &str, db: TestDb, jobs: usize) {
    let store: Store = db.store.clone();
    let config = mc_config::parse(
        "tenant: bench\nagents:\n  - name: echo\n    role: Echo\n    plugin: noop\n",
        &mc_config::Known::default(),
    )
    .unwrap();
    store.apply(&config).await.unwrap();
    let job = NewJob {
        tenant: "bench".into(),
        automation: None,
        agent: "echo".into(),
        plugin: "noop".into(),
        input: "{}".into(),
        trigger: "manual".into(),
        priority: 0,
        max_attempts: 1,
        run_at: None,
        idempotency_key: None,
    };
    let t = Instant::now();
    for _ in 0..jobs / ENQUEUE_BATCH {
        store.enqueue(&vec![job.clone(); ENQUEUE_BATCH]).await.unwrap();
    }
    let enqueue = t.elapsed();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(target_dir().join("test-component-cache")),
        max_instances: CLAIM_BATCH as u32 + 8,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let engine = Arc::new(Engine::new(
        store.clone(),
        runtime,
        EngineConfig::new("bench", target_dir().join("wasm32-wasip2/plugin")),
        Arc::new(mc_ai::OfflineProvider),
    ));
    let t = Instant::now();
    let mut done = 0;
    while done < jobs {
        let n = engine.work_once(CLAIM_BATCH).await.unwrap();
        assert!(n > 0, "the queue ran dry after {done} jobs");
        done += n;
    }
    let run = t.elapsed();
    let succeeded = store
        .jobs("bench", jobs as i64)
        .await
        .unwrap()
        .iter()
        .filter(|j| j.state == "succeeded")
        .count();
    assert_eq!(succeeded, jobs, "every job succeeded exactly once");
    println!(
        "| {name} | {jobs} | {:.0} | {:.0} |",
        jobs as f64 / enqueue.as_secs_f64(),
        jobs as f64 / run.as_secs_f64()
    );
    db.finish().await;
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("queue benchmark: run with `cargo bench -p mc-engine --bench queue`");
        return;
    }
    let jobs = std::env::var("MC_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_JOBS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("| backend | jobs | enqueue jobs/s | claim → run → complete jobs/s |");
    println!("|---|---|---|---|");
    rt.block_on(async {
        measure("SQLite (WAL, one file)", TestDb::sqlite().await, jobs).await;
        measure("PostgreSQL 15 (loopback)", TestDb::postgres().await, jobs).await;
    });
}
