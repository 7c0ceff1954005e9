//! Engine tests on both backends: durable schedules (each tick handled once, across restarts and
//! racing nodes; catch-up and overlap policies) and workers running real plugins.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use mc_engine::{Engine, EngineConfig};
use mc_runtime::{Runtime, RuntimeConfig};
use mc_store::Store;
use mc_testkit::{on_both, target_dir};

fn engine(store: &Store, node: &str) -> Arc<Engine> {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(target_dir().join("test-component-cache")),
        max_instances: 16,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let plugins = target_dir().join("wasm32-wasip2/plugin");
    assert!(
        plugins.join("noop.wasm").is_file(),
        "build the plugins first with `make plugins`"
    );
    Arc::new(Engine::new(
        store.clone(),
        runtime,
        EngineConfig::new(node, plugins),
        Arc::new(mc_ai::OfflineProvider),
    ))
}

const TENANT: &str = r#"tenant: acme
agents:
  - name: echo
    role: Echoes its input
    plugin: noop
  - name: flaky
    role: Fails on purpose
    plugin: hostile
automations:
  - name: every-second
    agent: echo
    trigger: { interval: 1s }
    input: { hello: world }
  - name: nightly
    agent: echo
    trigger: { cron: "0 2 * * *", timezone: Europe/Berlin }
    catch_up: all
    overlap: queue
  - name: failing
    agent: flaky
    trigger: { interval: 1s }
    input: { mode: fail }
    overlap: allow
"#;

async fn setup(store: &Store) {
    let config = mc_config::parse(TENANT, &mc_config::Known::default()).unwrap();
    store.apply(&config).await.unwrap();
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn outcomes(events: &[mc_store::TickEvent]) -> Vec<&str> {
    events.iter().rev().map(|e| e.outcome.as_str()).collect()
}

#[tokio::test]
async fn ticks_fire_once_and_catch_up_follows_the_policy() {
    on_both(|store| async move {
        setup(&store).await;
        let e = engine(&store, "node-a");
        let t0 = at("2026-03-28T12:00:00Z");
        // First sight marks the schedules; nothing before an automation existed is "missed".
        assert_eq!(e.schedule_once(t0).await.unwrap(), 0);
        // 3.2 s later: three interval ticks are due; catch-up "once" runs the latest.
        let fired = e
            .schedule_once(Timestamp::from_microsecond(t0.as_microsecond() + 3_200_000).unwrap())
            .await
            .unwrap();
        assert_eq!(fired, 2, "every-second once, failing once");
        let events = store.tick_events("acme", "every-second", 10).await.unwrap();
        assert_eq!(outcomes(&events), ["missed", "missed", "fired"]);
        assert!(events[1].reason.as_deref().unwrap().contains("catch-up policy: once"));

        // A restarted node (a new engine on the same store) repeats nothing.
        let again = engine(&store, "node-a");
        assert_eq!(
            again
                .schedule_once(Timestamp::from_microsecond(t0.as_microsecond() + 3_200_000).unwrap())
                .await
                .unwrap(),
            0
        );

        // The next tick comes while the last run has not finished: overlap "skip" records it.
        let t4 = Timestamp::from_microsecond(t0.as_microsecond() + 4_200_000).unwrap();
        assert_eq!(
            again.schedule_once(t4).await.unwrap(),
            1,
            "only `failing` (overlap: allow) fires"
        );
        let events = store.tick_events("acme", "every-second", 10).await.unwrap();
        assert_eq!(events[0].outcome, "skipped");
        assert!(events[0].reason.as_deref().unwrap().contains("overlap policy: skip"));

        // Ticks less than PREPARE_AHEAD away are prepared: at 4.6 s the job of `failing`'s 5 s
        // tick is enqueued, claimable from 5 s on. `every-second` is busy, so whether its 5 s
        // tick is skipped is left to the pass at 5 s.
        let t46 = Timestamp::from_microsecond(t0.as_microsecond() + 4_600_000).unwrap();
        assert_eq!(again.schedule_once(t46).await.unwrap(), 1);
        let prepared = &store.jobs("acme", 1).await.unwrap()[0];
        assert_eq!(
            (prepared.automation.as_deref(), prepared.run_at),
            (Some("failing"), t0.as_microsecond() + 5_000_000)
        );
        assert_eq!(
            store.tick_events("acme", "every-second", 1).await.unwrap()[0].tick,
            t0.as_microsecond() + 4_000_000,
            "not decided ahead"
        );

        // Catch-up "all" runs each missed nightly tick, across the DST change of 29 March 2026:
        // 02:00 does not exist in Berlin that night, so that tick runs at 03:00 CEST (01:00 UTC).
        let later = at("2026-03-31T12:00:00Z");
        e.schedule_once(later).await.unwrap();
        let nightly = store.tick_events("acme", "nightly", 10).await.unwrap();
        let ticks: Vec<String> = nightly
            .iter()
            .rev()
            .map(|t| Timestamp::from_microsecond(t.tick).unwrap().to_string())
            .collect();
        assert_eq!(
            ticks,
            ["2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-31T00:00:00Z"]
        );
        assert_eq!(outcomes(&nightly), ["fired", "fired", "fired"]);
    })
    .await;
}

#[tokio::test]
async fn racing_nodes_handle_each_tick_exactly_once() {
    on_both(|store| async move {
        setup(&store).await;
        let nodes: Vec<Arc<Engine>> = (0..4).map(|i| engine(&store, &format!("node-{i}"))).collect();
        let t0 = at("2026-06-01T08:00:00Z");
        nodes[0].schedule_once(t0).await.unwrap();
        let t = Timestamp::from_microsecond(t0.as_microsecond() + 1_000_000).unwrap();
        let results = futures_join(nodes.iter().map(|n| {
            let n = n.clone();
            async move { n.schedule_once(t).await.unwrap() }
        }))
        .await;
        assert_eq!(
            results.iter().sum::<usize>(),
            2,
            "one job per due automation across all nodes: {results:?}"
        );
        assert_eq!(store.jobs("acme", 100).await.unwrap().len(), 2);
    })
    .await;
}

async fn futures_join<F: std::future::Future<Output = usize> + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<usize> {
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn workers_run_jobs_and_retry_failures_with_backoff() {
    on_both(|store| async move {
        setup(&store).await;
        let e = engine(&store, "worker-1");
        let t0 = Timestamp::now();
        e.schedule_once(t0).await.unwrap();
        // Jobs are claimable from their tick on, so this test runs on the real clock.
        tokio::time::sleep(Duration::from_millis(1_050)).await;
        e.schedule_once(Timestamp::now()).await.unwrap();
        assert_eq!(e.work_once(10).await.unwrap(), 2);
        let jobs = store.jobs("acme", 10).await.unwrap();
        let echo = jobs
            .iter()
            .find(|j| j.automation.as_deref() == Some("every-second"))
            .unwrap();
        assert_eq!(
            (echo.state.as_str(), echo.output.as_deref()),
            ("succeeded", Some("{\"hello\":\"world\"}"))
        );
        let failing = jobs
            .iter()
            .find(|j| j.automation.as_deref() == Some("failing"))
            .unwrap();
        assert_eq!(failing.state, "scheduled", "a retryable plugin error is retried later");
        assert_eq!(
            failing.error.as_deref(),
            Some("plugin error (upstream): the upstream service said no")
        );
        // After its backoff (at most a second for the first retry), the retry runs.
        let failing_id = failing.id;
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        assert_eq!(e.work_once(10).await.unwrap(), 1);
        let failing = store
            .jobs("acme", 10)
            .await
            .unwrap()
            .into_iter()
            .find(|j| j.id == failing_id)
            .unwrap();
        assert_eq!((failing.state.as_str(), failing.attempt), ("scheduled", 2));
    })
    .await;
}

#[tokio::test]
async fn plugin_state_in_the_store_survives_between_runs() {
    on_both(|store| async move {
        let tenant = "tenant: acme\nagents:\n  - name: counter\n    role: Counts\n    plugin: hostile\n";
        store
            .apply(&mc_config::parse(tenant, &mc_config::Known::default()).unwrap())
            .await
            .unwrap();
        let e = engine(&store, "n");
        for value in [1, 2] {
            let job = mc_store::NewJob {
                tenant: "acme".into(),
                automation: None,
                agent: "counter".into(),
                plugin: "hostile".into(),
                input: format!("{{\"mode\":\"kv\",\"key\":\"seen\",\"value\":{value}}}"),
                trigger: "manual".into(),
                priority: 0,
                max_attempts: 1,
                run_at: None,
                idempotency_key: None,
            };
            store.enqueue(&[job]).await.unwrap();
            e.work_once(1).await.unwrap();
        }
        let jobs = store.jobs("acme", 2).await.unwrap();
        assert_eq!(jobs[0].output.as_deref(), Some("{\"before\":1,\"keys\":[\"seen\"]}"));
        assert_eq!(store.kv_get("tenant:acme", "seen").await.unwrap(), Some(b"2".to_vec()));
    })
    .await;
}

#[tokio::test]
async fn shutdown_releases_unfinished_jobs_to_other_nodes() {
    on_both(|store| async move {
        let tenant = "tenant: acme\nagents:\n  - name: sleeper\n    role: Sleeps\n    plugin: hostile\n";
        store
            .apply(&mc_config::parse(tenant, &mc_config::Known::default()).unwrap())
            .await
            .unwrap();
        let job = mc_store::NewJob {
            tenant: "acme".into(),
            automation: None,
            agent: "sleeper".into(),
            plugin: "hostile".into(),
            input: "{\"mode\":\"sleep\",\"ms\":30000}".into(),
            trigger: "manual".into(),
            priority: 0,
            max_attempts: 3,
            run_at: None,
            idempotency_key: None,
        };
        store.enqueue(&[job]).await.unwrap();
        let runtime = Runtime::new(RuntimeConfig {
            max_instances: 4,
            ..RuntimeConfig::default()
        })
        .unwrap();
        let mut config = EngineConfig::new("leaving", target_dir().join("wasm32-wasip2/plugin"));
        config.grace = Duration::from_millis(200);
        config.poll = Duration::from_millis(20);
        let e = Arc::new(Engine::new(
            store.clone(),
            runtime,
            config,
            Arc::new(mc_ai::OfflineProvider),
        ));
        let run = tokio::spawn(e.clone().run(tokio::time::sleep(Duration::from_millis(500))));
        tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let job = &store.jobs("acme", 1).await.unwrap()[0];
        assert_eq!(
            (job.state.as_str(), job.attempt),
            ("available", 0),
            "released, and the attempt not counted"
        );
        assert_eq!(store.queue_counts("acme").await.unwrap(), (1, 0));
    })
    .await;
}

/// A database that goes away for a few seconds — a private PostgreSQL server stopped as in a
/// crash, then started again — is waited out: every job still ends succeeded, recorded once, and
/// the queue's counters agree with the jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_loses_no_job() {
    const JOBS: usize = 150;
    let cluster = mc_testkit::PgCluster::start();
    let store = Store::open(&cluster.url("postgres")).await.unwrap();
    let tenant = "tenant: acme\nagents:\n  - name: sleeper\n    role: Sleeps\n    plugin: hostile\n";
    store
        .apply(&mc_config::parse(tenant, &mc_config::Known::default()).unwrap())
        .await
        .unwrap();
    let job = mc_store::NewJob {
        tenant: "acme".into(),
        automation: None,
        agent: "sleeper".into(),
        plugin: "hostile".into(),
        input: "{\"mode\":\"sleep\",\"ms\":40}".into(),
        trigger: "manual".into(),
        priority: 0,
        max_attempts: 5,
        run_at: None,
        idempotency_key: None,
    };
    store.enqueue(&vec![job; JOBS]).await.unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(target_dir().join("test-component-cache")),
        max_instances: 16,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let mut config = EngineConfig::new("survivor", target_dir().join("wasm32-wasip2/plugin"));
    config.workers = 4;
    config.poll = Duration::from_millis(20);
    config.lease = Duration::from_secs(3);
    let e = Arc::new(Engine::new(
        store.clone(),
        runtime,
        config,
        Arc::new(mc_ai::OfflineProvider),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(e.clone().run(async {
        let _ = stopped.await;
    }));
    let count = |state: &'static str| {
        let store = store.clone();
        async move {
            match store.jobs("acme", JOBS as i64).await {
                Ok(jobs) => jobs.iter().filter(|j| j.state == state).count(),
                Err(_) => 0,
            }
        }
    };
    // Under way, not finished: then the server goes away for a few seconds.
    while count("succeeded").await < 10 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.stop_server();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.start_server();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while count("succeeded").await < JOBS {
        assert!(
            std::time::Instant::now() < deadline,
            "jobs did not all finish after the restart: {:?}",
            store
                .jobs("acme", JOBS as i64)
                .await
                .map(|j| j.into_iter().filter(|j| j.state != "succeeded").collect::<Vec<_>>())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    run.await.unwrap().unwrap();
    let jobs = store.jobs("acme", 10 * JOBS as i64).await.unwrap();
    assert_eq!(jobs.len(), JOBS, "no job lost or added");
    assert!(jobs.iter().all(|j| j.state == "succeeded" && j.output.is_some()));
    assert_eq!(store.queue_counts("acme").await.unwrap(), (0, 0));
    store.close().await;
}
