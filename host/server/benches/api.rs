//! API latency under load (`cargo bench -p mc-server --bench api`): `GET
//! /api/v1/tenants/{t}/runs?limit=50` for a tenant with 100,000 runs, at a fixed rate of 500
//! requests per second, on SQLite and on PostgreSQL. The load generator is open-loop (each request
//! is sent at its scheduled time, and its latency counts from then, so a stall is not hidden by
//! the generator waiting for it) over keep-alive connections on loopback, in its own thread. The
//! baseline measured in the same run at the same rate is `GET /healthz`: the HTTP stack alone, no
//! key and no database.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mc_server::AppState;
use mc_store::Role;

#[path = "support/fill.rs"]
mod fill;

/// Runs in the tenant; `MC_BENCH_RUNS` overrides it for a quick look.
const DEFAULT_RUNS: usize = 100_000;
/// Requests per second of the load.
const RATE: u64 = 500;
/// Seconds of load per measurement; `MC_BENCH_SECS` overrides it.
const DEFAULT_SECS: u64 = 20;
/// Connections the generator keeps open (enough that 500/s never waits for a free one).
const CONNECTIONS: usize = 32;
fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Latencies of an open-loop load of `RATE` requests per second for `secs` seconds.
fn load(addr: SocketAddr, path: &str, key: Option<&str>, secs: u64) -> (Vec<Duration>, usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(CONNECTIONS)
            .build()
            .unwrap();
        let url = format!("http://{addr}{path}");
        let total = (RATE * secs) as usize;
        let every = Duration::from_nanos(1_000_000_000 / RATE);
        let start = tokio::time::Instant::now() + Duration::from_millis(100);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..total {
            let due = start + every * i as u32;
            let (client, url, key) = (client.clone(), url.clone(), key.map(str::to_string));
            tasks.spawn(async move {
                tokio::time::sleep_until(due).await;
                let mut req = client.get(&url);
                if let Some(key) = key {
                    req = req.bearer_auth(key);
                }
                let ok = match req.send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                (due.elapsed(), ok)
            });
        }
        let mut latencies = Vec::with_capacity(total);
        let mut errors = 0;
        while let Some(r) = tasks.join_next().await {
            let (latency, ok) = r.unwrap();
            latencies.push(latency);
            errors += usize::from(!ok);
        }
        latencies.sort();
        (latencies, errors)
    })
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(name: &str, (latencies, errors): &(Vec<Duration>, usize)) {
    println!(
        "  {name:<44} {:>6} requests  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  errors {errors}",
        latencies.len(),
        pct(latencies, 0.50),
        pct(latencies, 0.90),
        pct(latencies, 0.99),
        pct(latencies, 1.0),
    );
}

fn measure(backend: &str, make_db: fill::MakeDb) {
    let runs = env_or("MC_BENCH_RUNS", DEFAULT_RUNS as u64) as usize;
    let secs = env_or("MC_BENCH_SECS", DEFAULT_SECS);
    // The server gets its own runtime and threads, as in `missionctl serve`.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (db, addr, key) = server_rt.block_on(async {
        let db = make_db().await;
        let t = Instant::now();
        fill::fill(&db.store, runs).await;
        eprintln!("{backend}: {runs} runs written in {:.1} s", t.elapsed().as_secs_f64());
        let key = fill::key(&db.store, Role::Viewer).await;
        let addr = fill::serve(AppState::new(db.store.clone())).await;
        (db, addr, key)
    });
    println!("{backend}: {RATE} requests/s for {secs} s, open loop, {runs} runs in the tenant");
    // Warm up connections and caches, unmeasured.
    let _ = load(addr, "/healthz", None, 1);
    report(
        "GET /healthz (baseline: HTTP stack only)",
        &load(addr, "/healthz", None, secs),
    );
    report(
        "GET /api/v1/tenants/bench/runs?limit=50",
        &load(addr, "/api/v1/tenants/bench/runs?limit=50", Some(&key), secs),
    );
    report(
        "  … filtered: &state=succeeded&automation=daily",
        &load(
            addr,
            "/api/v1/tenants/bench/runs?limit=50&state=succeeded&automation=daily",
            Some(&key),
            secs,
        ),
    );
    server_rt.block_on(db.finish());
}

fn main() {
    fill::each_backend(measure);
}
