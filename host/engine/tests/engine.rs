//! Engine tests on both backends: durable schedules (each tick handled once, across restarts and
//! racing nodes; catch-up and overlap policies) and workers running real plugins.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use mc_engine::{Engine, EngineConfig};
use mc_runtime::{Runtime, RuntimeConfig};
use mc_store::Store;
use mc_testkit::{on_both, target_dir};
use serde_json::json;

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
        assert_eq!(
            store.queue_mismatches().await.unwrap(),
            [],
            "the queue agrees with the runs"
        );
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
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while count("succeeded").await < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "fewer than 10 jobs succeeded in a minute before the restart (are the plugins built? `make plugins`)"
        );
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
    assert_eq!(
        store.queue_mismatches().await.unwrap(),
        [],
        "the queue agrees with the runs"
    );
    store.close().await;
}

/// A one-shot HTTP server on 127.0.0.1 answering `/ok` with 200 and `/redirect` with a redirect
/// to a private address. Returns its port.
async fn http_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let reply = if request.starts_with("GET /redirect") {
                    "HTTP/1.1 302 Found\r\nlocation: http://10.0.0.1/admin\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string()
                } else {
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}".to_string()
                };
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn tenant_grants_bound_what_a_plugin_reaches_and_refusals_harm_nothing() {
    on_both(|store| async move {
        let port = http_server().await;
        let test_host = format!("http://127.0.0.1:{port}");
        let file = format!(
            "tenant: acme
agents:
  - name: prober
    role: Probes the network
    plugin: hostile
    hosts: [\"{test_host}\", \"http://localhost:{port}\", \"https://example.com\"]
    secrets: [crm-token]
  - name: sneaky
    role: Grants itself a private address
    plugin: hostile
    hosts: [\"http://10.0.0.1\"]
  - name: plain
    role: Granted nothing
    plugin: hostile
automations:
  - name: probe
    agent: prober
    trigger: {{ manual: true }}
  - name: sneak
    agent: sneaky
    trigger: {{ manual: true }}
  - name: plain
    agent: plain
    trigger: {{ manual: true }}
"
        );
        store
            .apply(&mc_config::parse(&file, &mc_config::Known::default()).unwrap())
            .await
            .unwrap();
        let globex = "tenant: globex\nagents:\n  - name: a\n    role: A\n    plugin: noop\n";
        store
            .apply(&mc_config::parse(globex, &mc_config::Known::default()).unwrap())
            .await
            .unwrap();
        let sealer = mc_store::Sealer::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
        let local = mc_store::Principal::local();
        store
            .tenant("acme")
            .put_secret(&local, &sealer, "crm-token", "acme-token")
            .await
            .unwrap();
        store
            .tenant("globex")
            .put_secret(&local, &sealer, "crm-token", "globex-token")
            .await
            .unwrap();
        store.kv_set("tenant:globex", "plan", b"\"secret plan\"").await.unwrap();

        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(target_dir().join("test-component-cache")),
            max_instances: 16,
            ..RuntimeConfig::default()
        })
        .unwrap();
        let mut config = EngineConfig::new("node", target_dir().join("wasm32-wasip2/plugin"));
        config.sealer = Some(sealer);
        config.test_hosts = vec![test_host.clone()];
        let engine = Arc::new(Engine::new(
            store.clone(),
            runtime,
            config,
            Arc::new(mc_ai::OfflineProvider),
        ));

        let scope = store.tenant("acme");
        let cases = [
            (
                "probe",
                json!({"mode": "http", "url": format!("{test_host}/ok")}),
                "succeeded",
                "\"status\":200",
            ),
            (
                "probe",
                json!({"mode": "http", "url": format!("{test_host}/redirect")}),
                "dead",
                "http://10.0.0.1:80 is not in this run's allow-list",
            ),
            (
                "probe",
                json!({"mode": "http", "url": "http://10.0.0.1/"}),
                "dead",
                "http://10.0.0.1:80 is not in this run's allow-list",
            ),
            (
                "probe",
                json!({"mode": "http", "url": "http://169.254.169.254/latest/meta-data/"}),
                "dead",
                "http://169.254.169.254:80 is not in this run's allow-list",
            ),
            (
                "probe",
                json!({"mode": "http", "url": format!("http://localhost:{port}/ok")}),
                "dead",
                "localhost resolves to 127.0.0.1, a loopback address, which plugins may not reach",
            ),
            (
                "probe",
                json!({"mode": "kv-other-bucket", "bucket": "tenant:globex"}),
                "dead",
                "tenant:globex",
            ),
            (
                "probe",
                json!({"mode": "config"}),
                "succeeded",
                "[[\"secret.crm-token\",\"acme-token\"]]",
            ),
            ("plain", json!({"mode": "config"}), "succeeded", "[]"),
            (
                "sneak",
                json!({"mode": "http", "url": "http://10.0.0.1/"}),
                "dead",
                "agent `sneaky` is granted http://10.0.0.1, but 10.0.0.1 is a private address and this deployment does not allow it as a test host",
            ),
        ];
        let mut ids = Vec::new();
        for (automation, input, _, _) in &cases {
            ids.push(scope.run_now(&local, automation, Some(input.clone()), 1).await.unwrap());
        }
        let mut ran = 0;
        while ran < cases.len() {
            ran += engine.work_once(16).await.unwrap();
        }
        for (id, (automation, input, state, needle)) in ids.iter().zip(&cases) {
            let run = scope.run(*id).await.unwrap().unwrap();
            let text = format!(
                "{} {}",
                run.output.map(|o| o.to_string()).unwrap_or_default(),
                run.summary.error.unwrap_or_default()
            );
            assert_eq!(run.summary.state, *state, "{automation} {input}: {text}");
            assert!(text.contains(needle), "{automation} {input}: {text}");
            assert!(
                !text.contains("globex-token") && !text.contains("secret plan"),
                "{text}"
            );
        }
        // The host is unharmed: the next run works, and globex's state is untouched.
        let again = scope
            .run_now(
                &local,
                "probe",
                Some(json!({"mode": "http", "url": format!("{test_host}/ok")})),
                1,
            )
            .await
            .unwrap();
        engine.work_once(1).await.unwrap();
        assert_eq!(scope.run(again).await.unwrap().unwrap().summary.state, "succeeded");
        assert_eq!(
            store.kv_get("tenant:globex", "plan").await.unwrap().unwrap(),
            b"\"secret plan\""
        );
        assert_eq!(
            store.queue_counts("acme").await.unwrap(),
            (0, 0),
            "every run ended exactly once"
        );
    })
    .await;
}

/// An engine whose AI calls go through the metered gateway to a fake OpenAI on loopback.
async fn metered_engine(store: &Store) -> (Arc<Engine>, mc_testkit::fake_ai::FakeProvider) {
    use mc_testkit::fake_ai::{DEFAULT_KEY, FakeProvider, Flavor};
    let openai = FakeProvider::start(Flavor::OpenAi).await;
    let gateway = mc_gateway::Gateway::open(
        store.clone(),
        mc_gateway::GatewayConfig {
            endpoints: vec![mc_gateway::Endpoint {
                name: "openai".into(),
                kind: mc_gateway::ProviderKind::OpenAi,
                base_url: openai.base_url(),
                api_key: Some(DEFAULT_KEY.into()),
                key_required: true,
                key_hint: "OPENAI_API_KEY".into(),
            }],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(target_dir().join("test-component-cache")),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let engine = Arc::new(Engine::new(
        store.clone(),
        runtime,
        EngineConfig::new("n1", target_dir().join("wasm32-wasip2/plugin")),
        Arc::new(gateway),
    ));
    (engine, openai)
}

#[tokio::test]
async fn runs_are_metered_and_a_budget_stops_a_run_with_its_reason() {
    on_both(|store| async move {
        let (engine, openai) = metered_engine(&store).await;
        let file = |tenant: &str, budget: &str| {
            format!(
                "tenant: {tenant}\nbudget: {{ monthly: \"{budget}\" }}\nagents:\n  - {{ name: bot, role: Asks AI, plugin: hostile, model: gpt-4o-mini }}\nautomations:\n  - {{ name: ask, agent: bot, trigger: {{ manual: true }} }}\n"
            )
        };
        let local = mc_store::Principal::local();
        let mut runs = Vec::new();
        for (tenant, budget) in [("acme", "10"), ("frugal", "0.000001")] {
            store
                .apply(&mc_config::parse(&file(tenant, budget), &mc_config::Known::default()).unwrap())
                .await
                .unwrap();
            let input = json!({"mode": "ai", "prompt": "Say hello to the team"});
            runs.push(store.tenant(tenant).run_now(&local, "ask", Some(input), 1).await.unwrap());
        }
        let mut ran = 0;
        while ran < 2 {
            ran += engine.work_once(4).await.unwrap();
        }
        let month = mc_store::month_and_day(mc_store::now_micros()).0;

        let acme = store.tenant("acme");
        let run = acme.run(runs[0]).await.unwrap().unwrap();
        assert_eq!(run.summary.state, "succeeded", "{:?}", run.summary.error);
        let rows = acme.ledger_of_run(&runs[0].to_string()).await.unwrap();
        let kinds: Vec<(&str, Option<&str>)> = rows.iter().map(|r| (r.kind.as_str(), r.model.as_deref())).collect();
        assert_eq!(kinds, [("ai", Some("gpt-4o-mini")), ("fuel", None)], "one row per call and one for the run's fuel");
        assert!(rows[0].cost > 0 && rows[1].fuel > 0);
        assert_eq!(
            (rows[0].agent.as_str(), rows[0].automation.as_deref(), rows[0].attempt),
            ("bot", Some("ask"), 1)
        );

        let frugal = store.tenant("frugal");
        let run = frugal.run(runs[1]).await.unwrap().unwrap();
        assert_eq!(run.summary.state, "dead");
        let error = run.summary.error.unwrap_or_default();
        assert!(error.contains("budget"), "{error}");
        let logs = frugal.run_logs(runs[1]).await.unwrap().unwrap().to_string();
        assert!(
            logs.contains(&format!("AI call refused: tenant `frugal`'s budget for {month} is $0.000001")),
            "{logs}"
        );
        let frugal_rows = frugal.ledger_of_run(&runs[1].to_string()).await.unwrap();
        assert_eq!(frugal_rows.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(), ["fuel"], "no AI call billed");
        assert_eq!(openai.request_count(), 1, "the refused call never reached the provider");
        assert_eq!(store.open_reservations().await.unwrap(), 0);
    })
    .await;
}

/// A plugin asks a person to approve an AI-written draft: the run is suspended holding nothing,
/// the draft waits in the inbox, and the answer (edited, or a rejection with its reason) sends the
/// run back to go on with it. The AI call made before asking is answered from the run's journal
/// when the run comes back, as it is for a retried run: billed once, sent to the provider once.
/// Deciding twice is refused with who decided first.
#[tokio::test]
async fn a_plugin_asks_for_approval_and_goes_on_with_the_answer_paying_once() {
    on_both(|store| async move {
        let (engine, openai) = metered_engine(&store).await;
        let file =
            "tenant: acme\nagents:\n  - { name: bot, role: Drafts posts, plugin: hostile, model: gpt-4o-mini }\n";
        store
            .apply(&mc_config::parse(file, &mc_config::Known::default()).unwrap())
            .await
            .unwrap();
        let acme = store.tenant("acme");
        let reviewer = mc_store::Principal::local();
        let work = |n: usize| {
            let engine = engine.clone();
            async move {
                let mut ran = 0;
                while ran < n {
                    ran += engine.work_once(4).await.unwrap();
                }
            }
        };
        let ai_rows = |rows: &[mc_store::LedgerRow]| rows.iter().filter(|r| r.kind == "ai").count();

        let input = json!({ "mode": "approval", "prompt": "Draft a post about spring" });
        let approved = enqueue_job(&store, "acme", "bot", "hostile", input.clone(), 1).await;
        work(1).await;
        let run = acme.run(approved).await.unwrap().unwrap();
        assert_eq!(run.summary.state, "awaiting_approval", "{:?}", run.summary.error);
        assert_eq!(
            store.queue_counts("acme").await.unwrap(),
            (0, 0),
            "the waiting run holds no worker"
        );
        let inbox = acme.pending_approvals(10).await.unwrap();
        assert_eq!(inbox.len(), 1);
        assert_eq!(
            (inbox[0].kind.as_str(), inbox[0].title.as_deref()),
            ("request", Some("Post"))
        );
        let draft = inbox[0].output.as_str().unwrap().to_string();
        assert!(!draft.is_empty());

        let decision = acme
            .approve(&reviewer, approved, Some(&json!("Spring is here!")))
            .await
            .unwrap();
        assert_eq!(decision.decision, "approved");
        assert_eq!(
            decision.original_output,
            Some(json!(draft)),
            "the agent's draft is kept on record"
        );
        work(1).await;
        let run = acme.run(approved).await.unwrap().unwrap();
        assert_eq!(run.summary.state, "succeeded", "{:?}", run.summary.error);
        assert_eq!(
            run.output.unwrap(),
            json!({ "draft": draft, "decision": "Approved(\"Spring is here!\")" }),
            "the run went on with the edited text and the same draft"
        );
        let rows = acme.ledger_of_run(&approved.to_string()).await.unwrap();
        assert_eq!(ai_rows(&rows), 1, "the draft was paid for once: {rows:?}");
        assert_eq!(openai.request_count(), 1);
        let again = acme.approve(&reviewer, approved, None).await.unwrap_err().to_string();
        assert!(
            again.starts_with(&format!(
                "run {approved} was approved already, by key `{}` at ",
                reviewer.key_id
            )),
            "{again}"
        );
        assert!(acme.pending_approvals(10).await.unwrap().is_empty());

        // A rejection goes back to the plugin with its reason.
        let rejected = enqueue_job(&store, "acme", "bot", "hostile", json!({ "mode": "approval" }), 1).await;
        work(1).await;
        acme.reject(&reviewer, rejected, Some("Not this week")).await.unwrap();
        work(1).await;
        let run = acme.run(rejected).await.unwrap().unwrap();
        assert_eq!(
            run.output.unwrap(),
            json!({ "draft": "draft", "decision": "Rejected(\"Not this week\")" })
        );

        // A retried run is not billed again for the call its failed attempt made.
        let input = json!({ "mode": "ai", "prompt": "Say hello", "fail_first_attempt": true });
        let retried = enqueue_job(&store, "acme", "bot", "hostile", input, 2).await;
        let _ = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                engine.work_once(4).await.unwrap();
                let run = acme.run(retried).await.unwrap().unwrap();
                if run.summary.state == "succeeded" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        let run = acme.run(retried).await.unwrap().unwrap();
        assert_eq!((run.summary.state.as_str(), run.summary.attempt), ("succeeded", 2));
        assert_eq!(ai_rows(&acme.ledger_of_run(&retried.to_string()).await.unwrap()), 1);
        assert_eq!(
            openai.request_count(),
            2,
            "one call for the approval draft, one for the retried run"
        );
        assert_eq!(store.open_reservations().await.unwrap(), 0);
    })
    .await;
}

/// Runs the engine (one worker) until run `id` of `tenant` has finished, and returns it.
async fn run_until_done(engine: Arc<Engine>, store: &Store, tenant: &str, id: i64) -> mc_store::RunDetail {
    let store2 = store.clone();
    let tenant2 = tenant.to_string();
    let done = async move {
        loop {
            let run = store2.tenant(&tenant2).run(id).await.unwrap().unwrap();
            if ["succeeded", "dead", "cancelled"].contains(&run.summary.state.as_str()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), engine.run(done))
        .await
        .expect("the run finished in time")
        .unwrap();
    store.tenant(tenant).run(id).await.unwrap().unwrap()
}

/// Enqueues a run of `plugin` as `agent` with `input`, `max_attempts` attempts.
async fn enqueue_job(
    store: &Store,
    tenant: &str,
    agent: &str,
    plugin: &str,
    input: serde_json::Value,
    max_attempts: u32,
) -> i64 {
    let job = mc_store::NewJob {
        tenant: tenant.into(),
        automation: None,
        agent: agent.into(),
        plugin: plugin.into(),
        input: input.to_string(),
        trigger: "manual".into(),
        priority: 0,
        max_attempts,
        run_at: None,
        idempotency_key: None,
    };
    match store.enqueue(&[job]).await.unwrap()[0] {
        mc_store::Enqueued::Created(id) | mc_store::Enqueued::Duplicate(id) => id,
    }
}

/// Enqueues a run of the hostile plugin as `agent` with `input`.
async fn enqueue_as(store: &Store, tenant: &str, agent: &str, input: serde_json::Value) -> i64 {
    enqueue_job(store, tenant, agent, "hostile", input, 1).await
}

const TEAM: &str = r#"tenant: acme
budget: { per_run: "0.000001" }
agents:
  - { name: boss, role: Directs, plugin: hostile }
  - { name: a, role: Helper, plugin: hostile, reports_to: boss, delegates_to: [boss] }
  - { name: b, role: Helper, plugin: hostile, reports_to: boss }
  - { name: c, role: Outsider, plugin: hostile }
  - { name: l1, role: Level one, plugin: hostile, reports_to: c }
  - { name: l2, role: Level two, plugin: hostile, reports_to: l1 }
  - { name: l3, role: Level three, plugin: hostile, reports_to: l2 }
  - { name: l4, role: Level four, plugin: hostile, reports_to: l3 }
  - { name: l5, role: Level five, plugin: hostile, reports_to: l4 }
"#;

fn delegate_all(tasks: serde_json::Value) -> serde_json::Value {
    json!({ "mode": "delegate-all", "tasks": tasks })
}

/// A director hands out tasks at once through the `agents` import, on a node with a single worker
/// slot and a limit of one running job per tenant (both of which it gives up while it waits, or
/// its children could never run): the children run as
/// runs of the tree, and the host refuses unknown agents, another tenant's agent, agents that do
/// not report to the delegator, cycles, depth beyond the bound and fan-out beyond the bound, each
/// with its own words, without stopping the other tasks.
#[tokio::test]
async fn a_team_delegates_within_the_hosts_bounds() {
    on_both(|store| async move {
        let known = mc_config::Known::default();
        let first = "tenant: acme\nagents:\n  - { name: boss, role: Directs, plugin: hostile }\n";
        store.apply(&mc_config::parse(first, &known).unwrap()).await.unwrap();
        let operator = mc_store::Principal::local();
        store.set_plan(&operator, "acme", mc_store::Plan::Scale).await.unwrap();
        store.apply(&mc_config::parse(TEAM, &known).unwrap()).await.unwrap();
        let book = mc_ai::prices::PriceBook::shipped();
        store
            .ensure_price_book(mc_ai::prices::SHIPPED, book.fuel_per_billion)
            .await
            .unwrap();
        let other = "tenant: other\nagents:\n  - { name: spy, role: Another tenant's, plugin: hostile }\n";
        store.apply(&mc_config::parse(other, &known).unwrap()).await.unwrap();
        let mk = |store: &Store| {
            let runtime = Runtime::new(RuntimeConfig {
                cache_dir: Some(target_dir().join("test-component-cache")),
                ..RuntimeConfig::default()
            })
            .unwrap();
            let mut config = EngineConfig::new("n1", target_dir().join("wasm32-wasip2/plugin"));
            config.workers = 1;
            config.tenant_max_running = Some(1);
            config.poll = Duration::from_millis(20);
            config.grace = Duration::from_millis(100);
            Arc::new(Engine::new(
                store.clone(),
                runtime,
                config,
                Arc::new(mc_ai::OfflineProvider),
            ))
        };

        let input = delegate_all(json!([
            { "agent": "a", "input": { "mode": "context" } },
            { "agent": "b", "input": { "mode": "sleep", "ms": 20 } },
            { "agent": "ghost", "input": {} },
            { "agent": "spy", "input": {} },
            { "agent": "c", "input": {} },
            { "agent": "a", "input": delegate_all(json!([{ "agent": "boss", "input": {} }])) },
        ]));
        let id = enqueue_as(&store, "acme", "boss", input).await;
        let run = run_until_done(mk(&store), &store, "acme", id).await;
        assert_eq!(run.summary.state, "succeeded", "{:?}", run.summary.error);
        let out = run.output.unwrap();
        let context = &out[0]["ok"];
        assert_eq!(context["agent"], "a");
        assert_eq!(context["trigger"], "delegation");
        assert_ne!(context["run_id"], id.to_string(), "the task ran as a run of its own");
        assert!(out[1].get("ok").is_some(), "{out}");
        assert_eq!(
            out[2]["error"],
            "tenant `acme` has no agent `ghost` (its agents: a, b, boss, c, l1, l2, l3, l4, l5)"
        );
        assert_eq!(
            out[3]["error"], "tenant `acme` has no agent `spy` (its agents: a, b, boss, c, l1, l2, l3, l4, l5)",
            "another tenant's agent is not there to be found"
        );
        assert_eq!(
            out[4]["error"],
            "agent `boss` may not delegate to `c`: it may delegate to a, b"
        );
        assert_eq!(out[4]["kind"], "NotGranted");
        assert_eq!(
            out[5]["ok"][0]["error"],
            "delegating to `boss` would form a cycle: boss → a → boss"
        );

        // The run tree: who asked whom, what, and what each cost (offline AI is free; fuel is
        // billed per run).
        let tree = store.tenant("acme").run_tree(id).await.unwrap().unwrap();
        assert_eq!(tree.id, id);
        let children: Vec<(&str, &str)> = tree
            .children
            .iter()
            .map(|c| (c.agent.as_str(), c.state.as_str()))
            .collect();
        assert_eq!(children, [("a", "succeeded"), ("b", "succeeded"), ("a", "succeeded")]);
        assert!(
            tree.fuel > 0 && tree.children.iter().all(|c| c.fuel > 0),
            "each run's fuel is its own: {tree:?}"
        );
        assert_eq!(
            tree.tree_cost,
            tree.cost + tree.children.iter().map(|c| c.tree_cost).sum::<u64>()
        );
        assert!(
            store.tenant("other").run_tree(id).await.unwrap().is_none(),
            "another tenant sees no tree"
        );
        assert_eq!(
            store.queue_counts("acme").await.unwrap(),
            (0, 0),
            "parking and taking back the slot leave the tenant's counters exact"
        );
        let from_child = store
            .tenant("acme")
            .run_tree(tree.children[0].id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(from_child.id, id, "any run of the tree shows the whole tree");

        // Depth: c → l1 → l2 → l3 → l4 is four levels below c; l4 may not add a fifth.
        let mut nested = json!({ "mode": "context" });
        for agent in ["l5", "l4", "l3", "l2", "l1"] {
            nested = delegate_all(json!([{ "agent": agent, "input": nested }]));
        }
        let id = enqueue_as(&store, "acme", "c", nested).await;
        let run = run_until_done(mk(&store), &store, "acme", id).await;
        let out = run.output.unwrap();
        let deepest = &out[0]["ok"][0]["ok"][0]["ok"][0]["ok"][0];
        assert!(
            deepest["error"]
                .as_str()
                .unwrap_or_default()
                .ends_with("is 4 levels below the top of its tree, and a tree may be at most 4 deep"),
            "{out}"
        );

        // Fan-out: one run may hand out 16 tasks; the 17th is refused, the others run.
        let tasks: Vec<_> = (0..17)
            .map(|_| json!({ "agent": "b", "input": { "mode": "context" } }))
            .collect();
        let id = enqueue_as(&store, "acme", "boss", delegate_all(json!(tasks))).await;
        let run = run_until_done(mk(&store), &store, "acme", id).await;
        let out = run.output.unwrap();
        assert_eq!(
            out.as_array().unwrap().iter().filter(|r| r.get("ok").is_some()).count(),
            16
        );
        assert_eq!(
            out[16]["error"],
            format!("run {id} has handed out 16 tasks, the most one run may")
        );
        assert_eq!(out[16]["kind"], "Internal");

        // A retried parent finds the child its first attempt started instead of starting another.
        let input = json!({
            "mode": "delegate-all",
            "fail_first_attempt": true,
            "tasks": [{ "agent": "a", "input": { "mode": "context" } }],
        });
        let id = enqueue_job(&store, "acme", "boss", "hostile", input, 2).await;
        let run = run_until_done(mk(&store), &store, "acme", id).await;
        assert_eq!((run.summary.state.as_str(), run.summary.attempt), ("succeeded", 2));
        let tree = store.tenant("acme").run_tree(id).await.unwrap().unwrap();
        assert_eq!(
            tree.children.len(),
            1,
            "the second attempt reused the first attempt's child"
        );
        assert_eq!(run.output.unwrap()[0]["ok"]["run_id"], tree.children[0].id.to_string());

        // The tenant's per-run budget caps the whole tree: once the tree has spent it, no more
        // tasks are handed out.
        let id = enqueue_as(
            &store,
            "acme",
            "boss",
            delegate_all(json!([{ "agent": "a", "input": {} }])),
        )
        .await;
        let now = mc_store::now_micros();
        mc_testkit::bill(
            &store,
            &mc_store::LedgerEntry {
                tenant: "acme".into(),
                agent: "boss".into(),
                run_id: id.to_string(),
                attempt: 1,
                provider: "openai".into(),
                model: "gpt-4o-mini".into(),
                input_tokens: 1,
                price_version: 1,
                cost: 1,
                at: now,
                ..Default::default()
            },
        )
        .await;
        let run = run_until_done(mk(&store), &store, "acme", id).await;
        assert_eq!(
            run.output.unwrap()[0]["error"],
            format!("run tree {id} has used $0.000001 of its per-run budget of $0.000001")
        );
    })
    .await;
}

const REGISTRY_TENANT: &str = r#"tenant: acme
registries:
  - name: clients
    fields:
      - { name: email, type: string, required: true, unique: true }
      - { name: company, type: string }
      - { name: mrr, type: number }
      - { name: active, type: boolean }
      - { name: since, type: date }
  - name: kpis
    fields:
      - { name: day, type: date, required: true }
agents:
  - { name: crm, role: Keeps the client list, plugin: hostile, registries: { clients: write } }
  - { name: reader, role: Reads it, plugin: hostile, registries: { clients: read } }
"#;

/// Agents use the tenant's registries through the `registry` import as granted: rows are checked
/// against the fields (types, required, unique) and filtered by type; reading does not allow
/// writing; an ungranted registry is refused; another tenant's registries are not there.
#[tokio::test]
async fn agents_read_and_write_registries_as_granted() {
    on_both(|store| async move {
        let known = mc_config::Known::default();
        store.apply(&mc_config::parse(REGISTRY_TENANT, &known).unwrap()).await.unwrap();
        let other = "tenant: globex\nregistries:\n  - { name: clients, fields: [{ name: email, type: string }] }\n";
        store.apply(&mc_config::parse(other, &known).unwrap()).await.unwrap();
        let run = |agent: &'static str, input: serde_json::Value| {
            let store = store.clone();
            async move {
                let engine = engine(&store, "n1");
                let id = enqueue_as(&store, "acme", agent, input).await;
                run_until_done(engine, &store, "acme", id).await
            }
        };
        let insert = |data: serde_json::Value| json!({ "mode": "registry-insert", "registry": "clients", "data": data });
        for (email, mrr, active) in [("a@x.io", 50.0, true), ("b@x.io", 250.5, false), ("c@y.io", 1200.0, true)] {
            let r = run("crm", insert(json!({ "email": email, "company": "X", "mrr": mrr, "active": active, "since": "2026-01-15" }))).await;
            assert_eq!(r.summary.state, "succeeded", "{:?}", r.summary.error);
        }
        let r = run("crm", insert(json!({ "email": "a@x.io" }))).await;
        assert_eq!(
            r.summary.error.as_deref(),
            Some("plugin error (invalid-input): field `email` of registry `clients` is unique, and row 1 has \"a@x.io\" already")
        );
        let r = run("crm", insert(json!({ "email": "d@x.io", "mrr": "lots" }))).await;
        assert_eq!(
            r.summary.error.as_deref(),
            Some("plugin error (invalid-input): field `mrr` of registry `clients` must be a number, not \"lots\"")
        );
        let r = run("crm", json!({ "mode": "registry-update", "registry": "clients", "id": "2", "data": { "active": true } })).await;
        assert_eq!(r.output.unwrap()["data"], json!({ "email": "b@x.io", "company": "X", "mrr": 250.5, "active": true, "since": "2026-01-15" }));

        let query = |filters: serde_json::Value| json!({ "mode": "registry-query", "registry": "clients", "filters": filters });
        let ids = |r: mc_store::RunDetail| -> Vec<String> {
            r.output.unwrap().as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap_or_default().to_string()).collect()
        };
        assert_eq!(ids(run("reader", query(json!([{ "field": "mrr", "op": "gt", "value": 100 }]))).await), ["2", "3"], "numbers compare as numbers");
        assert_eq!(ids(run("reader", query(json!([{ "field": "email", "op": "contains", "value": "@x." }]))).await), ["1", "2"]);
        assert_eq!(
            ids(run("reader", query(json!([{ "field": "active", "op": "eq", "value": true }, { "field": "mrr", "op": "lt", "value": 1000 }]))).await),
            ["1", "2"]
        );
        assert_eq!(ids(run("reader", query(json!([{ "field": "since", "op": "ge", "value": "2026-01-01" }]))).await).len(), 3);

        let r = run("reader", insert(json!({ "email": "e@x.io" }))).await;
        assert_eq!(r.summary.error_kind.as_deref(), Some("capability_denied"), "{:?}", r.summary.error);
        assert!(r.summary.error.unwrap().contains("agent `reader` may read registry `clients` but not write to it"));
        let r = run("crm", json!({ "mode": "registry-query", "registry": "kpis", "filters": [] })).await;
        assert!(r.summary.error.unwrap().contains("registry `kpis` is not granted to agent `crm`"));

        assert_eq!(store.tenant("globex").registry_rows("clients", &[], None, 100).await.unwrap().len(), 0, "another tenant's rows stay apart");
        let e = store.tenant("acme").registry_rows("nope", &[], None, 10).await.unwrap_err().to_string();
        assert_eq!(e, "tenant `acme` has no registry `nope` (its registries: clients, kpis)");
        let e = store
            .tenant("acme")
            .registry_rows("clients", &[mc_store::RowFilter { field: "active".into(), op: mc_store::FilterOp::Gt, value: json!(true) }], None, 10)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(e, "`active` is true or false: filter it with eq or ne");

        // A registry with rows cannot be dropped from the configuration; nothing is half-applied.
        let without = REGISTRY_TENANT.replace("  - name: clients\n    fields:\n      - { name: email, type: string, required: true, unique: true }\n      - { name: company, type: string }\n      - { name: mrr, type: number }\n      - { name: active, type: boolean }\n      - { name: since, type: date }\n", "")
            .replace(", registries: { clients: write }", "")
            .replace(", registries: { clients: read }", "");
        let e = store.apply(&mc_config::parse(&without, &known).unwrap()).await.unwrap_err().to_string();
        assert_eq!(e, "registry `clients` has 3 rows, so it cannot be removed from the configuration: delete its rows first");
        assert_eq!(store.tenant("acme").registries().await.unwrap().len(), 2);
    })
    .await;
}

/// Installs template `id` into `tenant` (created on `plan`) with `params`, as the API does.
async fn install(store: &Store, tenant: &str, plan: mc_store::Plan, id: &str, params: &[(&str, &str)]) {
    let known = mc_config::Known::default();
    store
        .apply(&mc_config::parse(&format!("tenant: {tenant}\n"), &known).unwrap())
        .await
        .unwrap();
    store
        .set_plan(&mc_store::Principal::local(), tenant, plan)
        .await
        .unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
    let template = mc_config::Template::load(&dir, id).unwrap();
    let given = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut config = store.tenant(tenant).config().await.unwrap().unwrap().0;
    template.render(&given).unwrap().merge_into(&mut config);
    let validated = mc_config::validate(config, &known, &mc_config::Positions::default()).unwrap();
    store.apply(&validated).await.unwrap();
}

/// Runs `agent` of `tenant` (its own plugin) once with `input` and returns the run.
async fn run_agent(store: &Store, tenant: &str, agent: &str, input: serde_json::Value) -> mc_store::RunDetail {
    let row = store.tenant(tenant).agent(agent).await.unwrap().unwrap();
    let id = enqueue_job(store, tenant, agent, &row.plugin, input, 1).await;
    let run = run_until_done(engine(store, "n1"), store, tenant, id).await;
    assert_eq!(run.summary.state, "succeeded", "{agent}: {:?}", run.summary.error);
    run
}

/// The professional services template's plugins do their work against its registries: a new
/// client becomes open items and a welcome letter, a month of time entries becomes a report, and
/// overdue items are followed up once.
#[tokio::test]
async fn the_professional_services_team_works() {
    on_both(|store| async move {
        install(
            &store,
            "firm",
            mc_store::Plan::Starter,
            "professional-services",
            &[("firm", "Smith & Partners")],
        )
        .await;
        let scope = store.tenant("firm");

        let run = run_agent(
            &store,
            "firm",
            "onboarding",
            json!({ "client": "Acme", "service": "legal", "start": "2026-11-01" }),
        )
        .await;
        let out = run.output.unwrap();
        assert_eq!(out["recorded"], 6);
        assert_eq!(
            out["checklist"][1],
            json!({ "item": "Conflict check cleared", "due": "2026-11-02" })
        );
        assert!(out["welcome"]["subject"].as_str().unwrap().contains("Smith & Partners"));
        assert_eq!(
            scope.registry_rows("open-items", &[], None, 100).await.unwrap().len(),
            6
        );

        for (date, hours, rate) in [
            ("2026-10-02", 2.5, 150.0),
            ("2026-10-20", 1.5, 150.0),
            ("2026-11-01", 4.0, 150.0),
        ] {
            scope
                .registry_insert(
                    "time-entries",
                    &json!({ "client": "Acme", "date": date, "hours": hours, "rate": rate }),
                )
                .await
                .unwrap();
        }
        let out = run_agent(&store, "firm", "reporting", json!({ "month": "2026-10" }))
            .await
            .output
            .unwrap();
        assert_eq!(
            out["clients"],
            json!([{ "client": "Acme", "hours": 4.0, "fees": 600.0, "entries": 2 }]),
            "only October's entries"
        );

        let out = run_agent(&store, "firm", "follow-ups", json!({ "today": "2026-11-05" }))
            .await
            .output
            .unwrap();
        assert_eq!(out["overdue"], 5, "{out}");
        let open = scope
            .registry_rows(
                "open-items",
                &[mc_store::RowFilter {
                    field: "status".into(),
                    op: mc_store::FilterOp::Eq,
                    value: json!("open"),
                }],
                None,
                100,
            )
            .await
            .unwrap();
        assert_eq!(open.len(), 1, "followed-up items are marked");
        let out = run_agent(&store, "firm", "follow-ups", json!({ "today": "2026-11-05" }))
            .await
            .output
            .unwrap();
        assert_eq!(out["overdue"], 0, "an item is followed up once");
    })
    .await;
}

/// The e-commerce template's plugins: drafts in the catalogue get descriptions, low stock is
/// listed with what to order, reviews are triaged complaints first, and a campaign is handed to
/// the copywriter and the social media agent at once.
#[tokio::test]
async fn the_e_commerce_team_works() {
    on_both(|store| async move {
        install(&store, "shop", mc_store::Plan::Growth, "e-commerce", &[("shop", "Green Thumb")]).await;
        let scope = store.tenant("shop");
        for (sku, name, status, stock, level) in [("T1", "Trowel", "draft", 4, 10), ("R1", "Rake", "draft", 30, 10), ("H1", "Hose", "ready", 10, 10)] {
            scope
                .registry_insert(
                    "catalogue",
                    &json!({ "sku": sku, "name": name, "category": "Garden tools", "status": status, "stock": stock, "reorder_level": level }),
                )
                .await
                .unwrap();
        }
        let out = run_agent(&store, "shop", "catalogue", json!({})).await.output.unwrap();
        assert_eq!(out["written"], 2);
        let ready = scope.registry_rows("catalogue", &[], None, 10).await.unwrap();
        assert!(ready.iter().all(|r| r.data["status"] == "ready"));
        assert!(ready[0].data["description"].as_str().is_some_and(|d| !d.is_empty()));

        let out = run_agent(&store, "shop", "stock", json!({})).await.output.unwrap();
        let skus: Vec<&str> = out["alerts"].as_array().unwrap().iter().map(|a| a["sku"].as_str().unwrap()).collect();
        assert_eq!(skus, ["T1", "H1"]);
        assert_eq!(out["alerts"][0]["order"], 16);

        let reviews = json!({ "reviews": [
            { "id": "a", "rating": 5, "text": "Lovely rake" },
            { "id": "b", "rating": 4, "text": "Good, but it arrived damaged" },
            { "id": "c", "rating": 3, "text": "Fine" },
        ]});
        let out = run_agent(&store, "shop", "reviews", reviews).await.output.unwrap();
        assert_eq!(out["summary"], json!({ "negative": 1, "neutral": 1, "positive": 1 }));
        assert_eq!((&out["triaged"][0]["id"], &out["triaged"][0]["urgent"]), (&json!("b"), &json!(true)));

        let out = run_agent(&store, "shop", "campaign-manager", json!({ "campaign": "Autumn sale", "channels": ["blog", "social"] }))
            .await
            .output
            .unwrap();
        let done: Vec<(&str, &str)> = out["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["agent"].as_str().unwrap(), t["status"].as_str().unwrap()))
            .collect();
        assert_eq!(done, [("copywriter", "done"), ("social", "done")]);
    })
    .await;
}
