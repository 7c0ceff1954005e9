//! Delegation overhead (`cargo bench -p mc-engine --bench delegation`): a director run hands four
//! tasks at once to four specialists through the `agents` import (the hostile test plugin's
//! `delegate-all` mode; the specialists sleep 50, 100, 150 and 200 ms), on the engine's own serving
//! loop (`Engine::run`, as `missionctl serve` runs it, default 8 worker slots) over SQLite. Owns the
//! figure "the director finishes in the time of the slowest child plus ≤ 20 ms".
//!
//! The baseline, measured in the same run and interleaved with the director's runs, is the slowest
//! child on its own: a run of the same plugin sleeping 200 ms, enqueued directly. Both durations
//! are the store's own timestamps (claimed to recorded), so how often this bench looks does not
//! enter them; the director's includes claiming, running and recording its four children. The added time is the director's duration minus the baseline's, per pair, at p50.

/// The allocator `missionctl` serves with (see its `main`), so the engine is measured as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Duration;

use mc_engine::{Engine, EngineConfig};
use mc_runtime::{Runtime, RuntimeConfig};
use mc_store::{Enqueued, NewJob, Store};
use mc_testkit::{TestDb, target_dir};
use serde_json::json;

/// Pairs measured (director run, lone slowest child) after one warm-up pair.
const PAIRS: usize = 20;
/// The specialists' sleeps, in ms; the last is the slowest.
const SLEEPS: [u64; 4] = [50, 100, 150, 200];
/// The figure: added ms at p50.
const GOAL_MS: f64 = 20.0;
/// How often the bench looks for a finished run.
const POLL: Duration = Duration::from_millis(5);

const TEAM: &str = "tenant: acme
agents:
  - { name: director, role: Directs, plugin: hostile }
  - { name: s1, role: Specialist, plugin: hostile, reports_to: director }
  - { name: s2, role: Specialist, plugin: hostile, reports_to: director }
  - { name: s3, role: Specialist, plugin: hostile, reports_to: director }
";

async fn enqueue(store: &Store, agent: &str, input: serde_json::Value) -> i64 {
    let job = NewJob {
        tenant: "acme".into(),
        automation: None,
        agent: agent.into(),
        plugin: "hostile".into(),
        input: input.to_string(),
        trigger: "manual".into(),
        priority: 0,
        max_attempts: 1,
        run_at: None,
        idempotency_key: None,
    };
    match store.enqueue(&[job]).await.expect("enqueue")[0] {
        Enqueued::Created(id) | Enqueued::Duplicate(id) => id,
    }
}

/// Waits for run `id` and returns its duration, claimed to recorded, in ms (the wait in the queue
/// before it is claimed is the serving loop's poll, the same for both runs, and not the figure).
async fn duration_ms(store: &Store, id: i64) -> f64 {
    loop {
        let run = store
            .tenant("acme")
            .run(id)
            .await
            .expect("read run")
            .expect("run exists");
        if let Some(finished) = run.summary.finished_at {
            assert_eq!(run.summary.state, "succeeded", "{:?}", run.summary.error);
            let started = run.summary.started_at.expect("a finished run was started");
            return (finished - started) as f64 / 1000.0;
        }
        tokio::time::sleep(POLL).await;
    }
}

fn p50(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn bench() {
    let db = TestDb::sqlite().await;
    let store = db.store.clone();
    let known = mc_config::Known::default();
    store
        .apply(&mc_config::parse("tenant: acme\nagents: []\n", &known).expect("parse"))
        .await
        .expect("apply");
    store
        .set_plan(&mc_store::Principal::local(), "acme", mc_store::Plan::Scale)
        .await
        .expect("plan");
    let team = format!("{TEAM}  - {{ name: s4, role: Specialist, plugin: hostile, reports_to: director }}\n");
    store
        .apply(&mc_config::parse(&team, &known).expect("parse"))
        .await
        .expect("apply");
    mc_testkit::shipped_prices(&store).await;
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(target_dir().join("bench-component-cache")),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let plugins = target_dir().join("wasm32-wasip2/plugin");
    assert!(
        plugins.join("hostile.wasm").is_file(),
        "build the plugins first with `make plugins`"
    );
    let engine = Arc::new(Engine::new(
        store.clone(),
        runtime,
        EngineConfig::new("bench", plugins),
        Arc::new(mc_ai::OfflineProvider),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(engine.run(async move {
        let _ = stopped.await;
    }));
    let tasks: Vec<_> = SLEEPS
        .iter()
        .zip(["s1", "s2", "s3", "s4"])
        .map(|(ms, agent)| json!({ "agent": agent, "input": { "mode": "sleep", "ms": ms } }))
        .collect();
    let director_input = json!({ "mode": "delegate-all", "tasks": tasks });
    let slowest = *SLEEPS.last().expect("sleeps");
    let (mut director, mut alone, mut added) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..=PAIRS {
        let d = enqueue(&store, "director", director_input.clone()).await;
        let d = duration_ms(&store, d).await;
        let a = enqueue(&store, "s4", json!({ "mode": "sleep", "ms": slowest })).await;
        let a = duration_ms(&store, a).await;
        if i > 0 {
            director.push(d);
            alone.push(a);
            added.push(d - a);
        }
    }
    let _ = stop.send(());
    let _ = serving.await;
    let (d, a, x) = (p50(&mut director), p50(&mut alone), p50(&mut added));
    println!("## Delegation: a director and four specialists in parallel (SQLite, {PAIRS} pairs, p50)");
    println!("| run | p50 ms |");
    println!("|---|---|");
    println!("| baseline: the slowest specialist alone (sleeps {slowest} ms) | {a:.1} |");
    println!("| director delegating to four specialists at once (sleeps {SLEEPS:?} ms) | {d:.1} |");
    println!(
        "| added: director − slowest alone (goal ≤ {GOAL_MS} ms) | {x:.1} — {} |",
        if x <= GOAL_MS { "met" } else { "**missed**" }
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(bench());
}
