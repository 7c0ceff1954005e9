//! Queue throughput (`cargo bench -p mc-engine --bench queue`): N jobs of the trivial plugin
//! through enqueue → claim → run → complete, on SQLite and on PostgreSQL (a fresh database on the
//! local server), with the engine's serving loop (what `missionctl serve` runs). Prints jobs per
//! second for each phase, and graphile-worker's figures on the same server in the same run.

/// The allocator `missionctl` serves with (see its `main`), so the engine is measured as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mc_engine::{Engine, EngineConfig};
use mc_runtime::{Runtime, RuntimeConfig};
use mc_store::{NewJob, Store};
use mc_testkit::{TestDb, target_dir};

/// Jobs per run; `MC_BENCH_JOBS` overrides it for a quick look.
const DEFAULT_JOBS: usize = 100_000;
/// Jobs enqueued per transaction.
const ENQUEUE_BATCH: usize = 1_000;
/// Worker slots of the node: jobs claimed and running at once.
const WORKERS: usize = 1_000;
/// Jobs per claim in the store-alone row: what the serving loop claims when the queue is deep
/// (a quarter of its slots).
const STORE_BATCH: usize = WORKERS / 4;

async fn measure(name: &str, db: TestDb, jobs: usize) {
    let store: Store = db.store.clone();
    let t = Instant::now();
    fill(&store, jobs).await;
    let enqueue = t.elapsed();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(target_dir().join("test-component-cache")),
        max_instances: WORKERS as u32 + 8,
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
    // The serving loop `missionctl serve` runs: claims, runs and commits overlap. It stops once
    // the tenant's counters show nothing available or running.
    let server = server_cpu(&db.url).await;
    let t = Instant::now();
    let cpu = cpu_time();
    let machine = machine_ticks();
    let watcher = store.clone();
    engine
        .clone()
        .run(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                if watcher.queue_counts("bench").await.unwrap() == (0, 0) {
                    return;
                }
            }
        })
        .await
        .unwrap();
    let run = t.elapsed();
    let cpu = cpu_time() - cpu;
    let idle = idle_share(machine, machine_ticks());
    let server = match (server, server_cpu(&db.url).await) {
        (Some(before), Some(after)) => format!("{:.1}", (after - before).as_secs_f64() * 1e6 / jobs as f64),
        _ => "in this process".into(),
    };
    let succeeded = store
        .jobs("bench", jobs as i64)
        .await
        .unwrap()
        .iter()
        .filter(|j| j.state == "succeeded")
        .count();
    assert_eq!(succeeded, jobs, "every job succeeded exactly once");
    let (month, _) = mc_store::month_and_day(mc_store::now_micros());
    let ledger = store.tenant("bench").ledger_of_month(&month).await.unwrap();
    let fuel_rows = ledger.iter().filter(|r| r.kind == "fuel").count();
    assert_eq!(
        fuel_rows, jobs,
        "every run has its fuel row in the ledger, as on a served node"
    );
    println!(
        "| {name} | {jobs} | {:.0} | {:.0} | {:.1} | {server} | {:.0}% |",
        jobs as f64 / enqueue.as_secs_f64(),
        jobs as f64 / run.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / jobs as f64,
        idle * 100.0
    );
    db.finish().await;
}

/// The machine's CPU ticks so far from `/proc/stat`: (idle and waiting for I/O, all).
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    (cpu.get(3..5).map_or(0, |f| f.iter().sum()), cpu.iter().sum())
}

/// The share of the machine's CPU time left idle between two readings of [`machine_ticks`]: what
/// the drain leaves unused of both cores (a queue that is not CPU-bound waits on something).
fn idle_share(before: (u64, u64), after: (u64, u64)) -> f64 {
    let all = after.1.saturating_sub(before.1).max(1);
    after.0.saturating_sub(before.0) as f64 / all as f64
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces): the line's
/// 3rd field is the first.
fn stat_fields(pid: &str) -> Vec<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    // The state (a letter) reads as 0; the rest are numbers.
    rest.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect()
}

/// Clock ticks (1/100 s) of user and system CPU, the line's fields 14 and 15, and with `children`
/// also 16 and 17 (of the children it has reaped).
fn ticks(fields: &[u64], children: bool) -> u64 {
    let last = if children { 15 } else { 13 };
    fields.get(11..last).map_or(0, |f| f.iter().sum())
}

/// CPU time this process has used so far (user and system, all threads): what a job costs here,
/// which noise from the machine's other work moves less than jobs per second. (The database
/// server's own CPU is not in it: see [`server_cpu`].)
fn cpu_time() -> Duration {
    Duration::from_millis(ticks(&stat_fields("self"), false) * 10)
}

/// CPU time the local PostgreSQL server has used so far: its postmaster, the processes it started
/// and those of them that ended. `None` when the server is not a process of this machine.
async fn server_cpu(url: &str) -> Option<Duration> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.ok()?;
    let (backend,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .ok()?;
    conn.close().await.ok()?;
    // The line's 4th field is the parent.
    let postmaster = *stat_fields(&backend.to_string()).get(1)?;
    let mut total = ticks(&stat_fields(&postmaster.to_string()), true);
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.bytes().all(|b| b.is_ascii_digit()) {
            let fields = stat_fields(&name);
            if fields.get(1) == Some(&postmaster) {
                total += ticks(&fields, false);
            }
        }
    }
    Some(Duration::from_millis(total * 10))
}

/// The store alone, no plugin and no engine: claim a batch the size the serving loop claims when
/// the queue is deep, record each job's success as the recorder does (with its fuel), repeat. The
/// ceiling the database part of the path allows on one connection at a time.
async fn store_only(name: &str, db: TestDb, jobs: usize) {
    let store: Store = db.store.clone();
    fill(&store, jobs).await;
    let lease = Duration::from_secs(30);
    let t = Instant::now();
    let mut done = 0;
    let (mut tclaim, mut tcomplete) = (Duration::ZERO, Duration::ZERO);
    while done < jobs {
        let tc = Instant::now();
        let claimed = store.claim("bench", STORE_BATCH, lease).await.unwrap();
        tclaim += tc.elapsed();
        let results: Vec<mc_store::Finished> = claimed
            .iter()
            .map(|j| mc_store::Finished {
                id: j.id,
                output: "{}".into(),
                logs: None,
                fuel: 1_000,
            })
            .collect();
        let tc = Instant::now();
        let recorded = store.complete_many("bench", &results).await.unwrap();
        tcomplete += tc.elapsed();
        assert!(recorded.iter().all(|r| *r));
        done += claimed.len();
    }
    let run = t.elapsed();
    eprintln!("{name}, store alone: claims took {tclaim:.2?}, recordings {tcomplete:.2?}");
    println!(
        "| {name}, store alone (claim {STORE_BATCH} → complete, no plugin) | {jobs} | | {:.0} | | |",
        jobs as f64 / run.as_secs_f64()
    );
    db.finish().await;
}

/// Creates the bench tenant (one agent running `noop`) and enqueues its `jobs` jobs.
async fn fill(store: &Store, jobs: usize) {
    let config = mc_config::parse(
        "tenant: bench\nagents:\n  - name: echo\n    role: Echo\n    plugin: noop\n",
        &mc_config::Known::default(),
    )
    .unwrap();
    store.apply(&config).await.unwrap();
    mc_testkit::shipped_prices(store).await;
    let job = bench_job();
    for _ in 0..jobs / ENQUEUE_BATCH {
        store.enqueue(&vec![job.clone(); ENQUEUE_BATCH]).await.unwrap();
    }
}

fn bench_job() -> NewJob {
    NewJob {
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
    }
}

/// graphile-worker (npm) on the same PostgreSQL server, in this run: `benches/graphile/run.mjs`
/// in a fresh database per configuration. Prints a row per configuration, or why it was skipped.
async fn graphile(jobs: usize) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/graphile");
    let has = |tool: &str| {
        std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has("node") || !has("npm") {
        println!("| graphile-worker | skipped: node and npm are not installed | | | | |");
        return;
    }
    if !dir.join("node_modules").is_dir() {
        let ci = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&dir)
            .status();
        if !ci.is_ok_and(|s| s.success()) {
            println!(
                "| graphile-worker | skipped: `npm ci` failed in {} | | | | |",
                dir.display()
            );
            return;
        }
    }
    for (mode, processes) in [("default", 1), ("batched", 1), ("batched", 2)] {
        let db = TestDb::postgres().await;
        // Blocking is fine here: nothing else runs while the baseline does.
        let out = std::process::Command::new("node")
            .arg(dir.join("run.mjs"))
            .args(["--database-url", &db.url, "--jobs", &jobs.to_string(), "--mode", mode])
            .args(["--processes", &processes.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run node");
        db.finish().await;
        let line = String::from_utf8_lossy(&out.stdout);
        let parsed: Option<serde_json::Value> = line.lines().last().and_then(|l| serde_json::from_str(l).ok());
        match parsed {
            Some(v) if out.status.success() => println!(
                "| graphile-worker 0.17.3, {mode}, {processes} process{} (JavaScript no-op) | {jobs} | {:.0} | {:.0} | | |",
                if processes == 1 { "" } else { "es" },
                v["enqueue_per_sec"].as_f64().unwrap_or(0.0),
                v["drain_per_sec"].as_f64().unwrap_or(0.0)
            ),
            _ => println!(
                "| graphile-worker, {mode}, {processes} | failed: {} | | | | |",
                line.trim()
            ),
        }
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("queue benchmark: run with `cargo bench -p mc-engine --bench queue`");
        return;
    }
    // As `missionctl` does (SAFETY: no other thread exists yet).
    #[allow(unsafe_code)]
    unsafe {
        mc_runtime::quiet_library_backtraces()
    };
    let jobs = std::env::var("MC_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_JOBS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| backend | jobs | enqueue jobs/s | claim → run → complete jobs/s | our CPU µs per job | database server CPU µs per job | machine idle |"
    );
    println!("|---|---|---|---|---|---|---|");
    rt.block_on(async {
        // `MC_BENCH_ONLY=sqlite|postgres|graphile` runs one part (for profiling).
        let only = std::env::var("MC_BENCH_ONLY").ok();
        let part = |name: &str| only.as_deref().is_none_or(|o| o == name);
        if part("sqlite") {
            measure("SQLite (WAL, one file)", TestDb::sqlite().await, jobs).await;
        }
        if part("sqlite") || part("store") {
            store_only("SQLite", TestDb::sqlite().await, jobs).await;
        }
        if part("postgres") {
            measure("PostgreSQL 15 (loopback)", TestDb::postgres().await, jobs).await;
        }
        if part("postgres") || part("store") {
            store_only("PostgreSQL", TestDb::postgres().await, jobs).await;
        }
        if part("graphile") {
            graphile(jobs).await;
        }
    });
}
