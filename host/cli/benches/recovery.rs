//! Recovery after a node dies (`cargo bench -p missionctl --bench recovery`): two real
//! `missionctl serve` processes on one fresh PostgreSQL database hold 100 running jobs between
//! them; one is killed with SIGKILL. Owns the figure "all complete on the other node within 10 s,
//! each exactly once": it measures, from the jobs' own timestamps, the time from the kill until the
//! dead node's jobs restart on the survivor and until every job has succeeded, and checks that each
//! job succeeded exactly once (one row per enqueued job, the killed node's jobs run a second time
//! by the survivor and nothing else run twice, queue counters back at zero).
//!
//! Three leases in the same run: 3 s (the figure "all complete within 10 s"), `serve`'s default
//! 8 s (the monitor's figure "a dead node's runs are requeued ≤ 10 s after it stops
//! heartbeating": the kill → first restart column), and the former default 30 s as the baseline:
//! the lease is what a dead node's jobs wait for.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mc_store::{NewJob, now_micros};
use mc_testkit::{TestDb, target_dir};

/// Jobs in flight when the node dies: the figure's 100.
const JOBS: usize = 100;
/// Workers per node: half the jobs each, so the two nodes hold the 100 between them (the first
/// node to claim cannot take them all), and the survivor has no idle slot: it must finish its own
/// jobs before it can rerun the dead node's.
const WORKERS: usize = JOBS / 2;
/// The short lease the figure is measured with: a dead node's jobs wait at most this long (plus
/// one recovery pass, every third of a lease) before the survivor takes them.
const LEASE_SECS: u64 = 3;
/// `missionctl serve`'s default lease.
const DEFAULT_LEASE_SECS: u64 = 8;
/// The former default, the baseline row.
const OLD_DEFAULT_LEASE_SECS: u64 = 30;
/// The monitor's figure: a dead node's runs requeued (restarted) within this of the kill.
const REQUEUE_GOAL: Duration = Duration::from_secs(10);

/// What a row is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// The short lease, for "all complete within 10 s".
    Fast,
    /// serve's default, for "requeued within 10 s".
    Default,
    /// The former default: the baseline.
    Baseline,
}
/// How long each job runs (the hostile plugin's `sleep` mode): long enough that all 100 are still
/// running when the kill comes, short enough that a rerun fits the 10 s budget with the lease.
const JOB_MS: u64 = 3_000;
/// The figure's budget from the kill until every job has succeeded.
const GOAL: Duration = Duration::from_secs(10);
/// How long the nodes may take to start and claim every job.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long recovery may take before the row is reported as a failure (covers the default lease).
const FINISH_TIMEOUT: Duration = Duration::from_secs(180);
/// How often the bench looks at the jobs while it waits.
const POLL: Duration = Duration::from_millis(10);

/// A `missionctl serve` process, killed if still running when dropped (a failed bench leaves no
/// node behind).
struct Node(Child);

impl Node {
    fn start(name: &str, url: &str, lease_secs: u64) -> Node {
        let plugins = target_dir().join("wasm32-wasip2/plugin");
        assert!(
            plugins.join("hostile.wasm").is_file(),
            "build the plugins first: `make plugins`"
        );
        let child = Command::new(env!("CARGO_BIN_EXE_missionctl"))
            .args([
                "serve",
                "--database-url",
                url,
                "--workers",
                &WORKERS.to_string(),
                "--lease-secs",
                &lease_secs.to_string(),
                "--node-id",
                name,
                "--listen",
                "127.0.0.1:0",
            ])
            .env("MISSIONCTL_PLUGIN_DIR", plugins)
            .env("MISSIONCTL_CACHE_DIR", target_dir().join("test-component-cache"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start missionctl serve");
        Node(child)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

type Row = (i64, String, i64, Option<String>, Option<i64>, Option<i64>);

async fn measure(pool: &sqlx::AnyPool, db: &TestDb, lease_secs: u64, purpose: Purpose) {
    let jobs: Vec<NewJob> = (0..JOBS)
        .map(|_| NewJob {
            tenant: "acme".into(),
            automation: None,
            agent: "sleeper".into(),
            plugin: "hostile".into(),
            input: format!(r#"{{"mode":"sleep","ms":{JOB_MS}}}"#),
            trigger: "manual".into(),
            priority: 0,
            max_attempts: 3,
            run_at: None,
            idempotency_key: None,
        })
        .collect();
    let enqueued: BTreeSet<i64> = db.store.enqueue(&jobs).await.unwrap().iter().map(|e| e.id()).collect();
    let mut victim = Node::start("node-a", &db.url, lease_secs);
    let survivor = Node::start("node-b", &db.url, lease_secs);

    // Wait until the two nodes hold every job between them, then kill node A without warning.
    let t = Instant::now();
    let held: BTreeMap<String, Vec<i64>> = loop {
        let running: Vec<(i64, String)> = sqlx::query_as(&format!(
            "SELECT id, claimed_by FROM runs WHERE state = 'running' AND id IN ({})",
            enqueued.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
        ))
        .fetch_all(pool)
        .await
        .unwrap();
        if running.len() == JOBS {
            let mut by_node: BTreeMap<String, Vec<i64>> = BTreeMap::new();
            for (id, node) in running {
                by_node.entry(node).or_default().push(id);
            }
            break by_node;
        }
        assert!(t.elapsed() < START_TIMEOUT, "the nodes did not claim every job");
        tokio::time::sleep(POLL).await;
    };
    assert!(victim.0.try_wait().unwrap().is_none(), "node A is alive until killed");
    let killed_at = now_micros();
    victim.0.kill().unwrap();
    victim.0.wait().unwrap();
    let victim_jobs: BTreeSet<i64> = held.get("node-a").cloned().unwrap_or_default().into_iter().collect();
    let survivor_held = held.get("node-b").map_or(0, Vec::len);

    let t = Instant::now();
    let rows: Vec<Row> = loop {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT id, state, attempt, claimed_by, started_at, finished_at FROM runs WHERE id IN ({}) ORDER BY id",
            enqueued.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
        ))
        .fetch_all(pool)
        .await
        .unwrap();
        if rows.iter().all(|r| r.1 == "succeeded") {
            break rows;
        }
        assert!(
            t.elapsed() < FINISH_TIMEOUT,
            "jobs did not all finish after the kill: {:?}",
            rows.iter().map(|r| &r.1).collect::<Vec<_>>()
        );
        tokio::time::sleep(POLL).await;
    };
    let counters = db.store.queue_counts("acme").await.unwrap();
    // Stop the survivor the way an operator would; it has nothing left to finish.
    let _ = Command::new("kill")
        .args(["-TERM", &survivor.0.id().to_string()])
        .status();
    drop(survivor);

    // Exactly once: one row per enqueued job, all succeeded; the killed node's jobs were run a
    // second time, by the survivor; every other job ran once; no counter left behind.
    let mut problems = Vec::new();
    let ids: BTreeSet<i64> = rows.iter().map(|r| r.0).collect();
    if ids != enqueued || rows.len() != JOBS {
        problems.push(format!("{} rows for {} jobs", rows.len(), enqueued.len()));
    }
    for (id, _, attempt, claimed_by, _, _) in &rows {
        let recovered = victim_jobs.contains(id);
        let expected = if recovered { 2 } else { 1 };
        if *attempt != expected || (recovered && claimed_by.as_deref() != Some("node-b")) {
            problems.push(format!("job {id}: attempt {attempt} by {claimed_by:?}"));
        }
    }
    if counters != (0, 0) {
        problems.push(format!("queue counters {counters:?}"));
    }
    let secs = |micros: i64| (micros - killed_at) as f64 / 1e6;
    let first_restart = rows
        .iter()
        .filter(|r| victim_jobs.contains(&r.0))
        .filter_map(|r| r.4)
        .min()
        .map_or(f64::NAN, secs);
    let all_done = rows.iter().filter_map(|r| r.5).max().map_or(f64::NAN, secs);
    let once = if problems.is_empty() {
        format!("yes ({JOBS}/{JOBS})")
    } else {
        format!("NO: {}", problems.join("; "))
    };
    let lease = match purpose {
        Purpose::Fast => format!("{lease_secs} s"),
        Purpose::Default => format!("{lease_secs} s (serve's default)"),
        Purpose::Baseline => format!("{lease_secs} s (the former default: baseline)"),
    };
    let goal = match purpose {
        Purpose::Baseline => "—".to_string(),
        Purpose::Fast if all_done <= GOAL.as_secs_f64() && problems.is_empty() => {
            format!("all done: met ({all_done:.1} ≤ {} s)", GOAL.as_secs())
        }
        Purpose::Fast => format!("all done: NOT met ({all_done:.1} s)"),
        Purpose::Default if first_restart <= REQUEUE_GOAL.as_secs_f64() && problems.is_empty() => {
            format!("requeued: met ({first_restart:.1} ≤ {} s)", REQUEUE_GOAL.as_secs())
        }
        Purpose::Default => format!("requeued: NOT met ({first_restart:.1} s)"),
    };
    println!(
        "| {lease} | 2 × {WORKERS} | {:.1} s | {} / {survivor_held} | {} | {first_restart:.1} | {all_done:.1} | {once} | {goal} |",
        JOB_MS as f64 / 1000.0,
        victim_jobs.len(),
        rows.iter().filter(|r| victim_jobs.contains(&r.0) && r.2 == 2).count(),
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("recovery benchmark: run with `cargo bench -p missionctl --bench recovery`");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{JOBS} jobs of {JOB_MS} ms on two `missionctl serve` nodes (PostgreSQL); node A killed with SIGKILL once both hold their jobs; times from the kill"
    );
    println!();
    println!(
        "| lease | nodes × workers | job length | running at kill (killed / survivor) | recovered by survivor | kill → first recovered job starts s | kill → all succeeded s | each succeeded exactly once | goal |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    rt.block_on(async {
        for (lease, purpose) in [
            (LEASE_SECS, Purpose::Fast),
            (DEFAULT_LEASE_SECS, Purpose::Default),
            (OLD_DEFAULT_LEASE_SECS, Purpose::Baseline),
        ] {
            let db = TestDb::postgres().await;
            db.store
                .apply(
                    &mc_config::parse(
                        "tenant: acme\nagents:\n  - name: sleeper\n    role: Sleeps\n    plugin: hostile\n",
                        &mc_config::Known::default(),
                    )
                    .unwrap(),
                )
                .await
                .unwrap();
            let pool = sqlx::any::AnyPoolOptions::new()
                .max_connections(1)
                .connect(&db.url)
                .await
                .unwrap();
            measure(&pool, &db, lease, purpose).await;
            pool.close().await;
            db.finish().await;
        }
    });
}
