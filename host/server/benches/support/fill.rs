//! Filling a benchmark tenant quickly, shared by the server's benchmarks (each includes this file
//! with `#[path]`): finished runs written through the queue's own batched statements (enqueue,
//! claim, complete: the rows real runs leave), a key, and the server started on a free port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mc_server::{AppState, RateLimit, RateLimiter};
use mc_store::{Finished, NewJob, NewKey, Principal, Role, Store};

/// The benchmarks' tenant.
pub const TENANT: &str = "bench";
/// Runs enqueued and completed per transaction while filling the tenant.
pub const FILL_BATCH: usize = 1_000;
/// Lease of the filler's claims: long enough that none lapses while a batch is completed.
const FILL_LEASE: Duration = Duration::from_secs(600);

/// The one-agent tenant of the API benchmark.
pub const ONE_AGENT: &str = "tenant: bench\nagents:\n  - name: writer\n    role: Writer\n    plugin: noop\nautomations:\n  - name: daily\n    agent: writer\n    trigger: { manual: true }\n";

/// Applies `config` (a tenant YAML for [`TENANT`]).
pub async fn apply(store: &Store, config: &str) {
    let config = mc_config::parse(config, &mc_config::Known::default()).unwrap();
    store.apply(&config).await.unwrap();
}

/// What a run of `automation` (by `agent`) looks like when it is enqueued.
pub fn job(automation: &str, agent: &str) -> NewJob {
    NewJob {
        tenant: TENANT.into(),
        automation: Some(automation.into()),
        agent: agent.into(),
        plugin: "noop".into(),
        input: r#"{"brief":"Spring sale on garden tools"}"#.into(),
        trigger: "manual".into(),
        priority: 0,
        max_attempts: 1,
        run_at: None,
        idempotency_key: None,
    }
}

/// Writes `runs` finished runs, the i-th of `kinds[i % kinds.len()]` (automation, agent), with
/// outputs and logs as real ones have and `fuel` each (a fuel row in the ledger when non-zero).
/// A run of an automation with `approval` is left awaiting approval, as the engine leaves it.
pub async fn runs(store: &Store, kinds: &[(&str, &str)], runs: usize, fuel: u64) {
    let output = serde_json::json!({"title": "Offline draft", "body": "x".repeat(400)}).to_string();
    let mut done = 0;
    while done < runs {
        let n = FILL_BATCH.min(runs - done);
        let jobs: Vec<NewJob> = (done..done + n)
            .map(|i| {
                let (automation, agent) = kinds[i % kinds.len()];
                job(automation, agent)
            })
            .collect();
        store.enqueue(&jobs).await.unwrap();
        let claimed = store.claim("bench", n, FILL_LEASE).await.unwrap();
        let finished: Vec<Finished> = claimed
            .iter()
            .map(|j| Finished {
                id: j.id,
                output: output.clone(),
                logs: Some(r#"[{"at_ms":0,"level":"info","message":"drafted"}]"#.into()),
                fuel,
            })
            .collect();
        store.complete_many("bench", &finished).await.unwrap();
        done += n;
    }
}

/// Fills the one-agent tenant with `runs` finished runs (the API benchmark's tenant).
pub async fn fill(store: &Store, runs_in_tenant: usize) {
    apply(store, ONE_AGENT).await;
    runs(store, &[("daily", "writer")], runs_in_tenant, 0).await;
}

/// A new key of `role` (for [`TENANT`], or for every tenant when `role` is the operator's).
pub async fn key(store: &Store, role: Role) -> String {
    let tenant = (role != Role::Operator).then(|| TENANT.to_string());
    store
        .create_key(
            &Principal::local(),
            NewKey {
                role,
                tenant,
                partner: None,
                label: "bench".into(),
                expires_at: None,
            },
        )
        .await
        .unwrap()
        .1
}

/// Serves `state` on a free loopback port (on the current runtime), with no rate limit: the
/// benchmarks measure the server, not its limiter.
pub async fn serve(mut state: AppState) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    state.limiter = Arc::new(RateLimiter::new(RateLimit {
        per_second: 1e9,
        burst: 1e9,
    }));
    tokio::spawn(mc_server::serve(listener, state, std::future::pending()));
    addr
}

/// Makes a fresh database of one backend.
pub type MakeDb = fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = mc_testkit::TestDb>>>;

/// Runs `measure` on SQLite, then on PostgreSQL; `MC_BENCH_ONLY=sqlite|postgres` keeps one.
pub fn each_backend(measure: fn(&str, MakeDb)) {
    let only = std::env::var("MC_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "sqlite" {
        measure("SQLite", || Box::pin(mc_testkit::TestDb::sqlite()));
    }
    if only.is_empty() || only == "postgres" {
        measure("PostgreSQL", || Box::pin(mc_testkit::TestDb::postgres()));
    }
}
