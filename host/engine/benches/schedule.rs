//! Schedule precision (`cargo bench -p mc-engine --bench schedule`): 1,000 automations on a 1 s
//! interval run by one node for a minute (`MC_BENCH_SECS` to change it), on SQLite and on
//! PostgreSQL. Prints the delay between each tick's due time and its job's start (p50, p99, max)
//! and how many ticks were missed or skipped. Goal: p99 ≤ 50 ms, none missed.

/// The allocator `missionctl` serves with (see its `main`), so the engine is measured as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Duration;

use mc_engine::{Engine, EngineConfig};
use mc_runtime::{Runtime, RuntimeConfig};
use mc_testkit::{TestDb, target_dir};

const SCHEDULES: usize = 1_000;
/// Worker slots of the node: every automation ticks at the same instant, so a node that should
/// start a thousand runs at once needs a thousand slots (slots are tasks; runs that wait on AI
/// calls hold no thread).
const WORKERS: usize = 1_000;
const DEFAULT_SECS: u64 = 60;

fn percentile(sorted: &[i64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

async fn measure(name: &str, db: TestDb, secs: u64) {
    let mut yaml =
        String::from("tenant: bench\nagents:\n  - name: echo\n    role: Echo\n    plugin: noop\nautomations:\n");
    for i in 0..SCHEDULES {
        yaml.push_str(&format!(
            "  - name: s{i}\n    agent: echo\n    trigger: {{ interval: 1s }}\n"
        ));
    }
    // A thousand automations need the Scale plan: the tenant exists first, then its plan.
    let known = mc_config::Known::default();
    db.store
        .apply(&mc_config::parse("tenant: bench\nagents: []\n", &known).unwrap())
        .await
        .unwrap();
    db.store
        .set_plan(&mc_store::Principal::local(), "bench", mc_store::Plan::Scale)
        .await
        .unwrap();
    db.store.apply(&mc_config::parse(&yaml, &known).unwrap()).await.unwrap();
    mc_testkit::shipped_prices(&db.store).await;
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(target_dir().join("test-component-cache")),
        max_instances: WORKERS as u32 + 8,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let mut config = EngineConfig::new("bench", target_dir().join("wasm32-wasip2/plugin"));
    config.workers = WORKERS;
    let engine = Arc::new(Engine::new(
        db.store.clone(),
        runtime,
        config,
        Arc::new(mc_ai::OfflineProvider),
    ));
    engine
        .clone()
        .run(tokio::time::sleep(Duration::from_secs(secs)))
        .await
        .unwrap();
    let (fired, other) = db.store.tick_start_delays("bench").await.unwrap();
    let mut delays: Vec<i64> = fired
        .iter()
        .filter_map(|(tick, started)| started.map(|s| s - tick))
        .collect();
    let not_started = fired.len() - delays.len();
    // Which seconds started late, for the record (the goal is about the p99).
    let first = fired.first().map_or(0, |(t, _)| *t);
    let mut late: std::collections::BTreeMap<i64, i64> = Default::default();
    for (tick, started) in &fired {
        if let Some(s) = started
            && s - tick > 50_000
        {
            let e = late.entry((tick - first) / 1_000_000).or_default();
            *e = (*e).max(s - tick);
        }
    }
    for (second, worst) in &late {
        eprintln!(
            "{name}: ticks of second {second} started up to {:.1} ms late",
            *worst as f64 / 1000.0
        );
    }
    delays.sort_unstable();
    println!(
        "| {name} | {SCHEDULES} × 1 s for {secs} s | {} | {:.1} | {:.1} | {:.1} | {other} | {not_started} |",
        fired.len(),
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        *delays.last().unwrap_or(&0) as f64 / 1000.0,
    );
    db.finish().await;
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("schedule benchmark: run with `cargo bench -p mc-engine --bench schedule`");
        return;
    }
    let secs = std::env::var("MC_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SECS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| backend | schedules | ticks fired | p50 delay ms | p99 delay ms | max ms | missed or skipped | fired, not started |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    rt.block_on(async {
        measure("SQLite", TestDb::sqlite().await, secs).await;
        measure("PostgreSQL", TestDb::postgres().await, secs).await;
    });
}
