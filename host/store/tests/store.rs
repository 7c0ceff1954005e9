//! The store's tests, each run against both backends: a fresh SQLite file, and a fresh PostgreSQL
//! database on the local server (127.0.0.1:5432, user postgres) created and dropped by the test.

use mc_config::{Known, Validated};
use mc_store::{Backend, Store, StoreError};
use sqlx::Connection;

use mc_testkit::on_both;

const ACME: &str = r#"tenant: acme
name: Acme Garden Supplies
agents:
  - name: writer
    role: Content writer
    plugin: content-writer
    config: { brand_voice: warm }
  - name: analyst
    role: Analytics
    plugin: analytics
automations:
  - name: weekly-post
    agent: writer
    trigger: { cron: "0 9 * * 1", timezone: Europe/Berlin }
    input: { brief: "Spring sale" }
  - name: kpis
    agent: analyst
    trigger: { interval: 15m }
"#;

fn config(text: &str) -> Validated {
    mc_config::parse(text, &Known::default()).unwrap()
}

fn summary(report: &mc_store::ApplyReport) -> Vec<String> {
    report
        .changes
        .iter()
        .map(|c| {
            format!("{:?} {} {} {}", c.kind, c.object, c.name, c.fields.join(","))
                .trim_end()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn apply_is_idempotent_and_reports_each_change() {
    on_both(|store| async move {
        let first = store.apply(&config(ACME)).await.unwrap();
        assert_eq!(
            summary(&first),
            [
                "Created tenant acme",
                "Created agent writer",
                "Created agent analyst",
                "Created automation weekly-post",
                "Created automation kpis"
            ]
        );
        let again = store.apply(&config(ACME)).await.unwrap();
        assert!(!again.changed(), "{:?}", again.changes);

        let edited = ACME
            .replace("brand_voice: warm", "brand_voice: bold")
            .replace("{ interval: 15m }", "{ interval: 30m }")
            .replace("  - name: weekly-post\n    agent: writer\n    trigger: { cron: \"0 9 * * 1\", timezone: Europe/Berlin }\n    input: { brief: \"Spring sale\" }\n", "")
            + "  - name: launch\n    agent: writer\n    trigger: { manual: true }\n";
        let report = store.apply(&config(&edited)).await.unwrap();
        assert_eq!(
            summary(&report),
            [
                "Deleted automation weekly-post",
                "Updated agent writer config",
                "Unchanged agent analyst",
                "Updated automation kpis trigger",
                "Created automation launch"
            ]
        );
        let scope = store.tenant("acme");
        let autos = scope.automations().await.unwrap();
        assert_eq!(autos.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["kpis", "launch"]);
        assert_eq!(autos[0].trigger, mc_config::Trigger::Interval { seconds: 1800 });
        assert_eq!(scope.agents().await.unwrap()[1].config["brand_voice"], "bold");

        // Removing an agent together with its automations works in one apply.
        let shrunk = "tenant: acme\nagents:\n  - name: analyst\n    role: Analytics\n    plugin: analytics\n";
        let report = store.apply(&config(shrunk)).await.unwrap();
        assert!(summary(&report).contains(&"Deleted agent writer".to_string()), "{:?}", summary(&report));
        assert_eq!(scope.automations().await.unwrap().len(), 0);
        // A file without a name keeps the tenant's name.
        assert_eq!(scope.get().await.unwrap().unwrap().name, "Acme Garden Supplies");
    })
    .await;
}

#[tokio::test]
async fn a_failing_apply_changes_nothing() {
    on_both(|store| async move {
        store.apply(&config(ACME)).await.unwrap();
        // Bypass validation to make the database refuse the second half of the change: an
        // automation naming an agent that does not exist violates a foreign key.
        let mut bad = config(&ACME.replace("brand_voice: warm", "brand_voice: changed"));
        bad.config.automations[1].agent = "ghost".into();
        let err = store.apply(&bad).await.unwrap_err();
        assert!(matches!(err, StoreError::Database(_)), "{err}");
        let scope = store.tenant("acme");
        assert_eq!(
            scope.agents().await.unwrap()[1].config["brand_voice"],
            "warm",
            "the agent update was rolled back"
        );
        assert_eq!(scope.automations().await.unwrap().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn tenants_see_only_their_own_rows() {
    on_both(|store| async move {
        store.apply(&config(ACME)).await.unwrap();
        store
            .apply(&config(
                &ACME
                    .replace("tenant: acme", "tenant: globex")
                    .replace("Acme Garden Supplies", "Globex"),
            ))
            .await
            .unwrap();
        let acme = store.tenant("acme");
        let globex = store.tenant("globex");
        assert!(acme.agents().await.unwrap().iter().all(|a| a.tenant == "acme"));
        assert!(globex.automations().await.unwrap().iter().all(|a| a.tenant == "globex"));
        // Emptying one tenant leaves the other intact.
        store.apply(&config("tenant: globex\n")).await.unwrap();
        assert_eq!(globex.agents().await.unwrap().len(), 0);
        assert_eq!(acme.agents().await.unwrap().len(), 2);
        assert!(store.tenant("initech").get().await.unwrap().is_none());
        assert_eq!(
            store
                .tenants()
                .await
                .unwrap()
                .iter()
                .map(|t| t.id.as_str())
                .collect::<Vec<_>>(),
            ["acme", "globex"]
        );
    })
    .await;
}

#[tokio::test]
async fn migrations_apply_once_and_refuse_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mc.db");
    let store = Store::open_sqlite(&path).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.apply(&config(ACME)).await.unwrap();
    store.close().await;
    // Reopening keeps the data and applies nothing twice.
    let store = Store::open_sqlite(&path).await.unwrap();
    assert_eq!(store.tenant("acme").agents().await.unwrap().len(), 2);
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM mc_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 28);
    sqlx::query("INSERT INTO mc_migrations (version, name, applied_at) VALUES (999, 'future', 0)")
        .execute(&mut conn)
        .await
        .unwrap();
    store.close().await;
    let err = Store::open_sqlite(&path).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the database was migrated by a newer version of Mission Control (schema 999, this build knows up to 28)"
    );
}

#[tokio::test]
async fn bad_urls_are_refused() {
    let err = Store::open("mysql://localhost/x").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid database URL `mysql://localhost/x`: expected sqlite:PATH or postgres://USER@HOST/DB"
    );
}

fn job(tenant: &str, n: usize) -> mc_store::NewJob {
    mc_store::NewJob {
        tenant: tenant.into(),
        automation: Some("kpis".into()),
        agent: "analyst".into(),
        plugin: "analytics".into(),
        input: format!("{{\"n\":{n}}}"),
        trigger: "manual".into(),
        priority: 0,
        max_attempts: 3,
        run_at: None,
        idempotency_key: None,
    }
}

async fn with_tenants(store: &Store) {
    store.apply(&config(ACME)).await.unwrap();
    store
        .apply(&config(&ACME.replace("tenant: acme", "tenant: globex")))
        .await
        .unwrap();
}

/// The counters the claim relies on agree with the jobs themselves.
async fn assert_counters(store: &Store, tenant: &str) {
    let jobs = store.jobs(tenant, 100_000).await.unwrap();
    let count = |s: &str| jobs.iter().filter(|j| j.state == s).count() as i64;
    assert_eq!(
        store.queue_counts(tenant).await.unwrap(),
        (count("available"), count("running")),
        "{tenant}"
    );
}

const LEASE: std::time::Duration = std::time::Duration::from_secs(30);

#[tokio::test]
async fn jobs_run_once_and_idempotency_keys_deduplicate() {
    on_both(|store| async move {
        with_tenants(&store).await;
        let mut keyed = job("acme", 1);
        keyed.idempotency_key = Some("webhook-delivery-42".into());
        let first = store.enqueue(&[keyed.clone()]).await.unwrap();
        let again = store.enqueue(&[keyed.clone()]).await.unwrap();
        assert!(matches!(first[0], mc_store::Enqueued::Created(_)));
        assert_eq!(again[0], mc_store::Enqueued::Duplicate(first[0].id()));
        // The same key in another tenant is another job.
        keyed.tenant = "globex".into();
        assert!(matches!(
            store.enqueue(&[keyed]).await.unwrap()[0],
            mc_store::Enqueued::Created(_)
        ));

        let claimed = store.claim("node-1", 10, LEASE).await.unwrap();
        assert_eq!(claimed.len(), 2);
        assert!(
            store.claim("node-2", 10, LEASE).await.unwrap().is_empty(),
            "a claimed job is not claimed again"
        );
        for j in &claimed {
            assert_eq!(j.attempt, 1);
            assert!(store.complete("node-1", j.id, "{\"ok\":true}").await.unwrap());
            assert!(
                !store.complete("node-1", j.id, "{}").await.unwrap(),
                "completing twice records nothing"
            );
        }
        let rows = store.jobs("acme", 10).await.unwrap();
        assert_eq!(
            (rows[0].state.as_str(), rows[0].output.as_deref()),
            ("succeeded", Some("{\"ok\":true}"))
        );
        assert_counters(&store, "acme").await;
        let bad = mc_store::NewJob {
            max_attempts: 0,
            ..job("acme", 0)
        };
        assert_eq!(
            store.enqueue(&[bad]).await.unwrap_err().to_string(),
            "max_attempts must be between 1 and 25, got 0"
        );
    })
    .await;
}

#[tokio::test]
async fn one_tenants_flood_does_not_delay_another_beyond_one_job() {
    on_both(|store| async move {
        with_tenants(&store).await;
        let flood: Vec<_> = (0..2_000).map(|n| job("acme", n)).collect();
        store.enqueue(&flood).await.unwrap();
        store.enqueue(&[job("globex", 0)]).await.unwrap();
        // One slot at a time: globex's job is the second job to run.
        let first = store.claim("node", 1, LEASE).await.unwrap();
        let second = store.claim("node", 1, LEASE).await.unwrap();
        assert_eq!(
            (first[0].tenant.as_str(), second[0].tenant.as_str()),
            ("acme", "globex")
        );
        // In batches, the lone job is in the next batch, behind at most one job of the flood.
        store.enqueue(&[job("globex", 1)]).await.unwrap();
        let batch = store.claim("node", 50, LEASE).await.unwrap();
        assert_eq!(batch.len(), 50, "the flood fills the rest of the batch");
        assert!(
            batch.iter().position(|j| j.tenant == "globex").is_some_and(|p| p <= 1),
            "{:?}",
            batch.iter().map(|j| &j.tenant).collect::<Vec<_>>()
        );
        assert_counters(&store, "acme").await;
        assert_counters(&store, "globex").await;
    })
    .await;
}

/// A claim across a tenant whose automation has a `max_running` limit and one without limits
/// (on PostgreSQL the first is claimed step by step, the second in one statement, in the same
/// transaction) takes each tenant's share within its limits, in turns, and keeps the counters.
#[tokio::test]
async fn a_claim_mixes_limited_and_unlimited_tenants_in_turns() {
    on_both(|store| async move {
        store
            .apply(&config(&ACME.replace(
                "    trigger: { interval: 15m }\n",
                "    trigger: { interval: 15m }\n    max_running: 2\n",
            )))
            .await
            .unwrap();
        store
            .apply(&config(&ACME.replace("tenant: acme", "tenant: globex")))
            .await
            .unwrap();
        let jobs: Vec<_> = (0..5)
            .map(|n| job("acme", n))
            .chain((0..5).map(|n| job("globex", n)))
            .collect();
        store.enqueue(&jobs).await.unwrap();
        // Shares of three each; acme's `kpis` runs two at most.
        let claimed = store.claim("n1", 6, LEASE).await.unwrap();
        assert_eq!(
            claimed.iter().map(|j| j.tenant.as_str()).collect::<Vec<_>>(),
            ["acme", "globex", "acme", "globex", "globex"]
        );
        for tenant in ["acme", "globex"] {
            assert_counters(&store, tenant).await;
        }
        // What is left: nothing of acme's until one of its runs ends, globex's two.
        let rest = store.claim("n2", 10, LEASE).await.unwrap();
        assert_eq!(
            rest.iter().map(|j| j.tenant.as_str()).collect::<Vec<_>>(),
            ["globex", "globex"]
        );
        assert_counters(&store, "globex").await;
    })
    .await;
}

#[tokio::test]
async fn priorities_order_work_and_waiting_jobs_age() {
    on_both(|store| async move {
        with_tenants(&store).await;
        let now = mc_store::now_micros();
        let low = mc_store::NewJob {
            priority: 0,
            ..job("acme", 1)
        };
        let high = mc_store::NewJob {
            priority: 5,
            ..job("acme", 2)
        };
        store.enqueue(&[low.clone(), high.clone()]).await.unwrap();
        let order: Vec<String> = store
            .claim("n", 2, LEASE)
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.input)
            .collect();
        assert_eq!(order, ["{\"n\":2}", "{\"n\":1}"]);
        // A low-priority job that has waited 60 s outranks a priority-5 job that just arrived
        // (one level per 10 s of waiting).
        let waited = mc_store::NewJob {
            run_at: Some(now - 60_000_000),
            ..low
        };
        store.enqueue(&[high, waited]).await.unwrap();
        let first = store.claim("n", 1, LEASE).await.unwrap();
        assert_eq!(first[0].input, "{\"n\":1}");
    })
    .await;
}

/// Enqueues one job of acme with `max_attempts`; its id.
async fn one_job(store: &Store, max_attempts: u32) -> i64 {
    let job = mc_store::NewJob {
        max_attempts,
        ..job("acme", 1)
    };
    store.enqueue(&[job]).await.unwrap()[0].id()
}

/// A claim writes only the job's queue row (migration 26); what people see of a run still
/// follows each attempt: its state, attempt, start and node while it runs, and the same on the
/// job's row once the attempt ends, whichever way it ends.
#[tokio::test]
async fn a_running_job_shows_its_attempt_start_and_node_whichever_way_it_ends() {
    on_both(|store| async move {
        with_tenants(&store).await;
        let id = one_job(&store, 3).await;
        let acme = store.tenant("acme");
        // (state, attempt, node, whether it has a start), as the runs API and the jobs list see it.
        let seen = async || {
            let run = acme.run(id).await.unwrap().unwrap().summary;
            let row = store.jobs("acme", 1).await.unwrap().remove(0);
            assert_eq!((row.state.as_str(), row.attempt), (run.state.as_str(), run.attempt));
            assert_eq!(store.queue_mismatches().await.unwrap(), []);
            (run.state, run.attempt, row.claimed_by, run.started_at)
        };
        let before = mc_store::now_micros();
        assert_eq!(store.claim("n1", 1, LEASE).await.unwrap()[0].attempt, 1);
        let (state, attempt, node, started) = seen().await;
        assert_eq!((state.as_str(), attempt, node.as_deref()), ("running", 1, Some("n1")));
        assert!(started.is_some_and(|t| t >= before), "started {started:?}");
        // A node that shuts down hands it back: the attempt does not count.
        assert_eq!(store.release("n1", &[id]).await.unwrap(), 1);
        assert_eq!(seen().await.0, "available");
        assert_eq!(seen().await.1, 0);
        assert_eq!(store.claim("n2", 1, LEASE).await.unwrap()[0].attempt, 1);
        let failure = mc_store::FailedAttempt {
            kind: "trap",
            error: "boom",
            retryable: true,
            logs: None,
            fuel: 0,
            plugin_hash: None,
        };
        assert!(store.fail("n2", id, &failure).await.unwrap().is_some());
        let (state, attempt, node, first_start) = seen().await;
        assert_eq!((state.as_str(), attempt, node), ("scheduled", 1, None));
        assert!(first_start.is_some());
        // The retry is due within a second (the first backoff); claims take it from then on.
        store.stage_due(mc_store::now_micros() + 3_600_000_000).await.unwrap();
        let again = loop {
            let claimed = store.claim("n3", 1, LEASE).await.unwrap();
            if let Some(j) = claimed.into_iter().next() {
                break j;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert_eq!(again.attempt, 2);
        let (state, attempt, node, second_start) = seen().await;
        assert_eq!((state.as_str(), attempt, node.as_deref()), ("running", 2, Some("n3")));
        assert!(second_start > first_start);
        assert!(store.complete("n3", id, "{}").await.unwrap());
        let (state, attempt, node, started) = seen().await;
        assert_eq!((state.as_str(), attempt, node.as_deref()), ("succeeded", 2, Some("n3")));
        assert_eq!(started, second_start);
        assert_counters(&store, "acme").await;
    })
    .await;
}

#[tokio::test]
async fn failures_retry_with_backoff_then_go_dead() {
    on_both(|store| async move {
        with_tenants(&store).await;
        let id = one_job(&store, 2).await;
        let j = store.claim("n", 1, LEASE).await.unwrap().remove(0);
        let before = mc_store::now_micros();
        let Some(mc_store::Failed::Retrying { run_at }) = store
            .fail(
                "n",
                j.id,
                &mc_store::FailedAttempt {
                    kind: "trap",
                    error: "boom",
                    retryable: true,
                    logs: None,
                    fuel: 0,
                    plugin_hash: None,
                },
            )
            .await
            .unwrap()
        else {
            panic!("expected a retry")
        };
        let delay = run_at - before;
        assert!(
            (500_000..=1_100_000).contains(&delay),
            "first retry after 0.5-1 s, got {delay} µs"
        );
        assert!(
            store.claim("n", 1, LEASE).await.unwrap().is_empty(),
            "not before its time"
        );
        tokio::time::sleep(std::time::Duration::from_micros(
            (run_at - mc_store::now_micros()).max(0) as u64 + 5_000,
        ))
        .await;
        assert_eq!(store.stage_due(mc_store::now_micros()).await.unwrap(), 1);
        let j = store.claim("n", 1, LEASE).await.unwrap().remove(0);
        assert_eq!((j.id, j.attempt), (id, 2));
        assert_eq!(
            store
                .fail(
                    "n",
                    j.id,
                    &mc_store::FailedAttempt {
                        kind: "trap",
                        error: "boom again",
                        retryable: true,
                        logs: None,
                        fuel: 0,
                        plugin_hash: None
                    }
                )
                .await
                .unwrap(),
            Some(mc_store::Failed::Dead)
        );
        let row = &store.jobs("acme", 1).await.unwrap()[0];
        assert_eq!((row.state.as_str(), row.error.as_deref()), ("dead", Some("boom again")));
        // A failure that retrying cannot fix goes dead at once.
        store.enqueue(&[job("acme", 2)]).await.unwrap();
        let j = store.claim("n", 1, LEASE).await.unwrap().remove(0);
        assert_eq!(
            store
                .fail(
                    "n",
                    j.id,
                    &mc_store::FailedAttempt {
                        kind: "invalid_input",
                        error: "bad",
                        retryable: false,
                        logs: None,
                        fuel: 0,
                        plugin_hash: None
                    }
                )
                .await
                .unwrap(),
            Some(mc_store::Failed::Dead)
        );
        assert_counters(&store, "acme").await;
    })
    .await;
}

#[test]
fn backoff_grows_exponentially_with_jitter_and_a_cap() {
    use std::time::Duration;
    for attempt in 1..=12u32 {
        let d = mc_store::backoff(7, attempt);
        let full = (Duration::from_secs(1) * 2u32.pow(attempt - 1)).min(mc_store::BACKOFF_MAX);
        assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
    }
    assert_ne!(
        mc_store::backoff(1, 3),
        mc_store::backoff(2, 3),
        "jobs failing together spread out"
    );
}

#[tokio::test]
async fn expired_leases_return_work_and_late_results_are_discarded() {
    on_both(|store| async move {
        with_tenants(&store).await;
        store.enqueue(&[job("acme", 1)]).await.unwrap();
        let j = store
            .claim("dead-node", 1, std::time::Duration::from_millis(1))
            .await
            .unwrap()
            .remove(0);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert_eq!(store.recover_expired(mc_store::now_micros()).await.unwrap(), 1);
        assert!(
            store.heartbeat("dead-node", &[j.id], LEASE).await.unwrap().is_empty(),
            "the old node lost its lease"
        );
        let again = store.claim("live-node", 1, LEASE).await.unwrap().remove(0);
        assert_eq!((again.id, again.attempt), (j.id, 2));
        assert_eq!(store.heartbeat("live-node", &[j.id], LEASE).await.unwrap(), [j.id]);
        assert!(!store.complete("dead-node", j.id, "{\"late\":1}").await.unwrap());
        assert!(store.complete("live-node", j.id, "{\"ok\":1}").await.unwrap());
        // A finished job is never recovered or run again.
        assert_eq!(store.recover_expired(i64::MAX).await.unwrap(), 0);
        assert!(store.claim("x", 10, LEASE).await.unwrap().is_empty());
        assert_eq!(
            store.jobs("acme", 1).await.unwrap()[0].output.as_deref(),
            Some("{\"ok\":1}")
        );
        assert_counters(&store, "acme").await;
    })
    .await;
}

#[tokio::test]
async fn cancellation_stops_queued_and_running_jobs_of_the_own_tenant_only() {
    on_both(|store| async move {
        with_tenants(&store).await;
        let ids: Vec<i64> = store
            .enqueue(&[job("acme", 1), job("acme", 2)])
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id())
            .collect();
        assert!(
            !store.cancel("globex", ids[0]).await.unwrap(),
            "another tenant cannot cancel it"
        );
        assert!(store.cancel("acme", ids[0]).await.unwrap());
        let running = store.claim("n", 10, LEASE).await.unwrap();
        assert_eq!(running.iter().map(|j| j.id).collect::<Vec<_>>(), [ids[1]]);
        assert!(store.cancel("acme", ids[1]).await.unwrap());
        assert!(
            store.heartbeat("n", &[ids[1]], LEASE).await.unwrap().is_empty(),
            "the node learns of it"
        );
        assert!(!store.complete("n", ids[1], "{}").await.unwrap());
        assert!(!store.cancel("acme", ids[1]).await.unwrap(), "already cancelled");
        assert_counters(&store, "acme").await;
    })
    .await;
}

#[test]
fn fair_shares_fill_the_batch() {
    assert_eq!(mc_store::fair_shares(50, &[2000, 1]), [49, 1]);
    assert_eq!(mc_store::fair_shares(10, &[5, 5, 5]), [4, 3, 3]);
    assert_eq!(mc_store::fair_shares(10, &[1, 1]), [1, 1]);
    assert_eq!(mc_store::fair_shares(3, &[100, 100, 100, 100]).iter().sum::<usize>(), 3);
}

const CHAIN: &str = r#"tenant: acme
agents:
  - name: writer
    role: Content writer
    plugin: content-writer
  - name: social
    role: Social media
    plugin: social-media
automations:
  - name: draft
    agent: writer
    trigger: { manual: true }
  - name: share
    agent: social
    trigger: { after: draft }
    priority: 7
"#;

#[tokio::test]
async fn completion_enqueues_followers_with_the_output_as_input_once() {
    on_both(|store| async move {
        store.apply(&config(CHAIN)).await.unwrap();
        let draft = mc_store::NewJob {
            automation: Some("draft".into()),
            agent: "writer".into(),
            plugin: "content-writer".into(),
            ..job("acme", 1)
        };
        store.enqueue(&[draft]).await.unwrap();
        let j = store.claim("n", 1, LEASE).await.unwrap().remove(0);
        assert!(store.complete("n", j.id, "{\"title\":\"Spring\"}").await.unwrap());
        let follow = store.claim("n", 10, LEASE).await.unwrap();
        assert_eq!(follow.len(), 1);
        let f = &follow[0];
        assert_eq!(
            (
                f.automation.as_deref(),
                f.agent.as_str(),
                f.input.as_str(),
                f.trigger.as_str(),
                f.priority
            ),
            (Some("share"), "social", "{\"title\":\"Spring\"}", "after", 7)
        );
        // The follower's own completion starts nothing (nobody runs after `share`).
        assert!(store.complete("n", f.id, "{}").await.unwrap());
        assert!(store.claim("n", 10, LEASE).await.unwrap().is_empty());
        assert_counters(&store, "acme").await;
    })
    .await;
}

/// A batch of results is one recording: every run of an automation with followers starts them
/// with its own output, once per follower, and a run of a tenant whose same-named automation has
/// no followers starts nothing.
#[tokio::test]
async fn a_batch_of_results_starts_each_runs_followers_with_its_own_output() {
    on_both(|store| async move {
        let two_followers = format!("{CHAIN}  - name: archive\n    agent: writer\n    trigger: {{ after: draft }}\n");
        store.apply(&config(&two_followers)).await.unwrap();
        let lone = CHAIN
            .replace("tenant: acme", "tenant: globex")
            .replace("trigger: { after: draft }", "trigger: { manual: true }");
        store.apply(&config(&lone)).await.unwrap();
        let draft = |tenant: &str, n: usize| mc_store::NewJob {
            automation: Some("draft".into()),
            agent: "writer".into(),
            plugin: "content-writer".into(),
            ..job(tenant, n)
        };
        let manual = mc_store::NewJob {
            automation: None,
            ..draft("acme", 9)
        };
        store
            .enqueue(&[draft("acme", 1), draft("globex", 2), manual, draft("acme", 3)])
            .await
            .unwrap();
        let claimed = store.claim("n", 10, LEASE).await.unwrap();
        assert_eq!(claimed.len(), 4);
        let results: Vec<mc_store::Finished> = claimed
            .iter()
            .map(|j| mc_store::Finished {
                id: j.id,
                output: format!("{{\"from\":{}}}", j.id),
                logs: None,
                fuel: 0,
            })
            .collect();
        assert_eq!(store.complete_many("n", &results).await.unwrap(), vec![true; 4]);
        let mut started: Vec<(String, String, String)> = store
            .claim("n", 10, LEASE)
            .await
            .unwrap()
            .into_iter()
            .map(|j| (j.tenant, j.automation.unwrap_or_default(), j.input))
            .collect();
        started.sort();
        let of = |n: usize| {
            let id = claimed.iter().find(|j| j.input == format!("{{\"n\":{n}}}")).unwrap().id;
            format!("{{\"from\":{id}}}")
        };
        let mut expected: Vec<(String, String, String)> = [1, 3]
            .into_iter()
            .flat_map(|n| ["archive", "share"].map(|a| ("acme".to_string(), a.to_string(), of(n))))
            .collect();
        expected.sort();
        assert_eq!(started, expected);
        assert_counters(&store, "acme").await;
        assert_counters(&store, "globex").await;
    })
    .await;
}

#[tokio::test]
async fn dead_jobs_can_be_retried_by_their_tenant() {
    on_both(|store| async move {
        with_tenants(&store).await;
        let id = store.enqueue(&[job("acme", 1)]).await.unwrap()[0].id();
        let j = store.claim("n", 1, LEASE).await.unwrap().remove(0);
        store
            .fail(
                "n",
                j.id,
                &mc_store::FailedAttempt {
                    kind: "trap",
                    error: "boom",
                    retryable: false,
                    logs: None,
                    fuel: 0,
                    plugin_hash: None,
                },
            )
            .await
            .unwrap();
        assert!(!store.retry_dead("globex", id).await.unwrap(), "not another tenant's");
        assert!(store.retry_dead("acme", id).await.unwrap());
        assert!(!store.retry_dead("acme", id).await.unwrap(), "no longer dead");
        let j = store.claim("n", 1, LEASE).await.unwrap().remove(0);
        assert_eq!((j.id, j.attempt), (id, 1));
        assert_counters(&store, "acme").await;
    })
    .await;
}

#[tokio::test]
async fn a_per_tenant_limit_caps_running_jobs_across_claims() {
    on_both(|store| async move {
        with_tenants(&store).await;
        store
            .enqueue(&(0..10).map(|n| job("acme", n)).collect::<Vec<_>>())
            .await
            .unwrap();
        store.enqueue(&[job("globex", 0)]).await.unwrap();
        let first = store.claim_limited("n1", 10, LEASE, Some(3)).await.unwrap();
        assert_eq!(first.iter().filter(|j| j.tenant == "acme").count(), 3);
        assert_eq!(first.iter().filter(|j| j.tenant == "globex").count(), 1);
        assert!(
            store.claim_limited("n2", 10, LEASE, Some(3)).await.unwrap().is_empty(),
            "acme is at its limit"
        );
        store.complete("n1", first[0].id, "{}").await.unwrap();
        assert_eq!(store.claim_limited("n2", 10, LEASE, Some(3)).await.unwrap().len(), 1);
        assert_counters(&store, "acme").await;
    })
    .await;
}

#[tokio::test]
async fn an_automation_limit_holds_its_runs_back_without_blocking_others() {
    on_both(|store| async move {
        let limited = ACME
            .replace(
                "    trigger: { interval: 15m }\n",
                "    trigger: { interval: 15m }\n    max_running: 2\n",
            )
            .replace(
                "    input: { brief: \"Spring sale\" }\n",
                "    input: { brief: \"Spring sale\" }\n    overlap: queue\n",
            );
        store.apply(&config(&limited)).await.unwrap();
        // Ten runs of `kpis` (at most 2 at once) first in line, then two of `weekly-post`
        // (`overlap: queue`: one at a time), then two without an automation.
        let mut jobs: Vec<_> = (0..10).map(|n| job("acme", n)).collect();
        for n in 0..2 {
            jobs.push(mc_store::NewJob {
                automation: Some("weekly-post".into()),
                ..job("acme", 100 + n)
            });
        }
        for n in 0..2 {
            jobs.push(mc_store::NewJob {
                automation: None,
                ..job("acme", 200 + n)
            });
        }
        store.enqueue(&jobs).await.unwrap();
        let by_automation = |claimed: &[mc_store::ClaimedJob]| {
            let mut names: Vec<String> = claimed
                .iter()
                .map(|j| j.automation.clone().unwrap_or_else(|| "-".into()))
                .collect();
            names.sort();
            names
        };
        let first = store.claim("n1", 100, LEASE).await.unwrap();
        assert_eq!(by_automation(&first), ["-", "-", "kpis", "kpis", "weekly-post"]);
        assert!(
            store.claim("n2", 100, LEASE).await.unwrap().is_empty(),
            "both automations are at their limits"
        );
        let kpis = first.iter().find(|j| j.automation.as_deref() == Some("kpis")).unwrap();
        store.complete("n1", kpis.id, "{}").await.unwrap();
        let weekly = first
            .iter()
            .find(|j| j.automation.as_deref() == Some("weekly-post"))
            .unwrap();
        store
            .fail(
                "n1",
                weekly.id,
                &mc_store::FailedAttempt {
                    kind: "trap",
                    error: "boom",
                    retryable: false,
                    logs: None,
                    fuel: 0,
                    plugin_hash: None,
                },
            )
            .await
            .unwrap();
        let next = store.claim("n2", 100, LEASE).await.unwrap();
        assert_eq!(by_automation(&next), ["kpis", "weekly-post"]);
        assert_counters(&store, "acme").await;

        let absurd = ACME.replace(
            "    trigger: { interval: 15m }\n",
            "    trigger: { interval: 15m }\n    max_running: 0\n",
        );
        assert_eq!(
            mc_config::parse(&absurd, &Known::default()).unwrap_err().to_string(),
            "line 19, column 18: automations[1].max_running: max_running must be between 1 and 1000, got 0"
        );
    })
    .await;
}

#[tokio::test]
async fn a_batch_with_repeated_and_existing_keys_creates_each_key_once() {
    on_both(|store| async move {
        with_tenants(&store).await;
        let keyed = |key: &str, n| mc_store::NewJob {
            idempotency_key: Some(key.into()),
            ..job("acme", n)
        };
        let first = store.enqueue(&[keyed("a", 0)]).await.unwrap();
        let batch = store
            .enqueue(&[
                job("acme", 1),
                keyed("a", 2),
                keyed("b", 3),
                keyed("b", 4),
                job("acme", 5),
            ])
            .await
            .unwrap();
        use mc_store::Enqueued::{Created, Duplicate};
        assert!(matches!(batch[0], Created(_)));
        assert_eq!(batch[1], Duplicate(first[0].id()));
        assert!(matches!(batch[2], Created(_)));
        assert_eq!(batch[3], Duplicate(batch[2].id()));
        assert!(matches!(batch[4], Created(_)));
        // Each created id holds the job given at its position.
        let rows = store.jobs("acme", 10).await.unwrap();
        assert_eq!(rows.len(), 4);
        let claimed = store.claim("n", 10, LEASE).await.unwrap();
        for (i, n) in [(0, 1), (2, 3), (4, 5)] {
            let j = claimed.iter().find(|j| j.id == batch[i].id()).unwrap();
            assert_eq!(j.input, format!("{{\"n\":{n}}}"));
        }
        assert_counters(&store, "acme").await;
    })
    .await;
}

#[tokio::test]
async fn a_job_due_within_a_second_waits_in_the_queue_for_its_time() {
    on_both(|store| async move {
        with_tenants(&store).await;
        let soon = mc_store::now_micros() + 400_000;
        let job = mc_store::NewJob {
            run_at: Some(soon),
            ..job("acme", 0)
        };
        store.enqueue(&[job]).await.unwrap();
        assert_eq!(store.queue_counts("acme").await.unwrap(), (1, 0), "available already");
        assert!(
            store.claim("n", 10, LEASE).await.unwrap().is_empty(),
            "but not before its time"
        );
        tokio::time::sleep(std::time::Duration::from_micros(
            (soon - mc_store::now_micros()).max(0) as u64 + 10_000,
        ))
        .await;
        assert_eq!(store.claim("n", 10, LEASE).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn run_pages_are_keyset_pages_and_a_rare_filter_scans_a_bounded_window() {
    on_both(|store| async move {
        with_tenants(&store).await;
        let rare = |n| mc_store::NewJob {
            automation: Some("launch".into()),
            ..job("acme", n)
        };
        store.enqueue(&(0..10).map(rare).collect::<Vec<_>>()).await.unwrap();
        let common: Vec<_> = (0..mc_store::FILTER_WINDOW as usize + 50)
            .map(|n| job("acme", n))
            .collect();
        for chunk in common.chunks(1_000) {
            store.enqueue(chunk).await.unwrap();
        }
        store.enqueue(&[job("globex", 0)]).await.unwrap();
        let scope = store.tenant("acme");
        let filter = |automation: Option<&str>, before, limit| mc_store::RunFilter {
            automation: automation.map(str::to_string),
            before,
            limit,
            ..Default::default()
        };
        // Unfiltered: full pages, newest first, each after the last.
        let p1 = scope.runs(&filter(None, None, 100)).await.unwrap();
        let p2 = scope.runs(&filter(None, p1.next, 100)).await.unwrap();
        assert_eq!((p1.runs.len(), p2.runs.len()), (100, 100));
        assert!(p1.runs.last().unwrap().id > p2.runs[0].id);
        // The rare automation's runs are older than the window: the first page is empty but
        // says where to go on; the next finds all ten, and is the last.
        let r1 = scope.runs(&filter(Some("launch"), None, 50)).await.unwrap();
        assert!(r1.runs.is_empty());
        let r2 = scope.runs(&filter(Some("launch"), r1.next, 50)).await.unwrap();
        assert_eq!((r2.runs.len(), r2.next), (10, None));
        assert!(r2.runs.iter().all(|r| r.automation.as_deref() == Some("launch")));
        // Another tenant's runs never appear.
        let all = scope.runs(&filter(Some("kpis"), None, 200)).await.unwrap();
        let globex = store.jobs("globex", 1).await.unwrap()[0].id;
        assert!(all.runs.iter().all(|r| r.id != globex));
    })
    .await;
}

#[tokio::test]
async fn plans_limit_what_a_tenant_creates_and_operators_change_them() {
    on_both(|store| async move {
        let agents = |n: usize| {
            let mut text = String::from("tenant: acme\nagents:\n");
            for i in 0..n {
                text.push_str(&format!("  - {{ name: a{i}, role: Agent, plugin: noop }}\n"));
            }
            text
        };
        store.apply(&config(&agents(3))).await.unwrap();
        let e = store.apply(&config(&agents(4))).await.unwrap_err().to_string();
        assert_eq!(
            e,
            "tenant `acme` is on the Starter plan, which allows 3 agents; this configuration has 4; the Growth plan allows 8"
        );
        assert_eq!(store.tenant("acme").agents().await.unwrap().len(), 3, "nothing half-applied");
        let operator = mc_store::Principal::local();
        assert_eq!(
            store.set_plan(&operator, "acme", mc_store::Plan::Growth).await.unwrap(),
            mc_store::Plan::Starter
        );
        store.apply(&config(&agents(8))).await.unwrap();
        let e = store.apply(&config(&agents(9))).await.unwrap_err().to_string();
        assert!(e.ends_with("the Scale plan has no limit"), "{e}");
        // Lowered below what it has, a tenant keeps its agents but cannot add one.
        store.set_plan(&operator, "acme", mc_store::Plan::Starter).await.unwrap();
        store.apply(&config(&agents(8))).await.unwrap();
        assert!(store.apply(&config(&agents(9))).await.is_err());
        assert_eq!(store.tenant("acme").get().await.unwrap().unwrap().plan, "starter");
        let margin = store.margin_report("2026-11").await.unwrap();
        assert_eq!((margin[0].revenue, margin[0].margin), (1_500_000_000, 1_500_000_000));
    })
    .await;
}

#[tokio::test]
async fn run_fuel_is_priced_and_the_ledger_refuses_changes() {
    for db in [mc_testkit::TestDb::sqlite().await, mc_testkit::TestDb::postgres().await] {
        let store = db.store.clone();
        with_tenants(&store).await;
        // 0.02 USD per billion fuel units.
        store.ensure_price_book("(test book)", 20_000).await.unwrap();
        store.enqueue(&[job("acme", 0), job("acme", 1)]).await.unwrap();
        let claimed = store.claim("n", 2, LEASE).await.unwrap();
        let done = mc_store::Finished {
            id: claimed[0].id,
            output: "{}".into(),
            logs: None,
            fuel: 2_500_000_000,
        };
        store.complete_many("n", &[done]).await.unwrap();
        store
            .fail(
                "n",
                claimed[1].id,
                &mc_store::FailedAttempt {
                    kind: "out_of_fuel",
                    error: "out of fuel",
                    retryable: false,
                    logs: None,
                    fuel: 1_000_000_000,
                    plugin_hash: None,
                },
            )
            .await
            .unwrap();
        let month = mc_store::month_and_day(mc_store::now_micros()).0;
        let rows = store.tenant("acme").ledger_of_month(&month).await.unwrap();
        let fuel: Vec<(String, u64, u64, i64)> = rows
            .iter()
            .map(|r| (r.kind.clone(), r.fuel, r.cost, r.price_version))
            .collect();
        assert_eq!(
            fuel,
            [
                ("fuel".to_string(), 2_500_000_000, 50_000, 1),
                ("fuel".to_string(), 1_000_000_000, 20_000, 1)
            ]
        );
        let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
        for sql in ["UPDATE ledger SET cost = 0", "DELETE FROM ledger"] {
            let e = sqlx::query(sql).execute(&mut conn).await.unwrap_err().to_string();
            assert!(e.contains("the ledger is append-only"), "{sql}: {e}");
        }
        drop(conn);
        db.finish().await;
    }
}

/// What the month's usage `by` adds up to, recomputed from the ledger rows themselves.
fn usage_from_rows(rows: &[mc_store::LedgerRow], by: mc_store::UsageBy) -> Vec<mc_store::UsageLine> {
    let mut lines: std::collections::BTreeMap<String, mc_store::UsageLine> = Default::default();
    for r in rows {
        let key = match by {
            mc_store::UsageBy::Agent => r.agent.clone(),
            mc_store::UsageBy::Automation => r.automation.clone().unwrap_or_else(|| "(manual)".into()),
            mc_store::UsageBy::Model => r.model.clone().unwrap_or_else(|| "(plugin fuel)".into()),
            mc_store::UsageBy::Day => mc_store::month_and_day(r.at).1,
        };
        let l = lines.entry(key.clone()).or_insert_with(|| mc_store::UsageLine {
            key,
            ..Default::default()
        });
        let ai = r.kind == "ai";
        l.ai_calls += u64::from(ai);
        l.input_tokens += r.input_tokens;
        l.output_tokens += r.output_tokens;
        l.cache_read_tokens += r.cache_read_tokens;
        l.cache_write_tokens += r.cache_write_tokens;
        l.estimated_calls += u64::from(r.usage_estimated);
        l.fuel += r.fuel;
        if ai {
            l.ai_cost += r.cost;
        } else {
            l.fuel_cost += r.cost;
        }
        l.cost += r.cost;
    }
    lines.into_values().collect()
}

/// The running totals (migration 21) agree with the ledger and the runs they sum, whichever way a
/// run finished or came back, and folding them (PostgreSQL) changes no sum.
#[tokio::test]
async fn running_totals_agree_with_the_ledger_and_the_runs() {
    on_both(|store| async move {
        with_tenants(&store).await;
        store.ensure_price_book("(test book)", 20_000).await.unwrap();
        let jobs: Vec<_> = (0..12)
            .map(|n| job(if n < 10 { "acme" } else { "globex" }, n))
            .collect();
        store.enqueue(&jobs).await.unwrap();
        let mut claimed = store.claim("n", 12, LEASE).await.unwrap();
        claimed.sort_by_key(|j| j.id);
        let acme: Vec<i64> = claimed.iter().filter(|j| j.tenant == "acme").map(|j| j.id).collect();
        // Six of acme's runs succeed in one batch, with fuel; two die; one is cancelled while
        // running; one still runs. Globex's two succeed.
        let finished = |id: i64, fuel: u64| mc_store::Finished {
            id,
            output: "{}".into(),
            logs: None,
            fuel,
        };
        let mut done: Vec<_> = acme[..6]
            .iter()
            .map(|&id| finished(id, 1_000_000_000 + id as u64))
            .collect();
        done.extend(
            claimed
                .iter()
                .filter(|j| j.tenant == "globex")
                .map(|j| finished(j.id, 7)),
        );
        store.complete_many("n", &done).await.unwrap();
        for &id in &acme[6..8] {
            let dead = mc_store::FailedAttempt {
                kind: "trap",
                error: "trapped",
                retryable: false,
                logs: None,
                fuel: 3_000_000,
                plugin_hash: None,
            };
            store.fail("n", id, &dead).await.unwrap();
        }
        assert!(store.cancel("acme", acme[8]).await.unwrap());
        // An AI call of one of them, and one of a manual run with no automation.
        let now = mc_store::now_micros();
        for (automation, model, cost) in [(Some("kpis"), "claude-sonnet-4-5", 1_234), (None, "gpt-4.1", 99)] {
            let entry = mc_store::LedgerEntry {
                tenant: "acme".into(),
                agent: "analyst".into(),
                automation: automation.map(str::to_string),
                run_id: acme[0].to_string(),
                attempt: 1,
                provider: "anthropic".into(),
                model: model.into(),
                input_tokens: 1_000,
                output_tokens: 200,
                cache_read_tokens: 300,
                cache_write_tokens: 40,
                usage_estimated: automation.is_none(),
                price_version: 1,
                cost,
                at: now,
                reply: None,
            };
            mc_testkit::bill(&store, &entry).await;
        }
        let month = mc_store::month_and_day(now).0;
        let hour = 3_600_000_000;
        let check = |label: &'static str| {
            let store = store.clone();
            let month = month.clone();
            async move {
                for tenant in ["acme", "globex"] {
                    let scope = store.tenant(tenant);
                    let rows = scope.ledger_of_month(&month).await.unwrap();
                    for by in [
                        mc_store::UsageBy::Agent,
                        mc_store::UsageBy::Automation,
                        mc_store::UsageBy::Model,
                        mc_store::UsageBy::Day,
                    ] {
                        let (lines, total) = scope.usage(&month, by).await.unwrap();
                        assert_eq!(lines, usage_from_rows(&rows, by), "{label}: {tenant} by {by:?}");
                        assert_eq!(total.cost, rows.iter().map(|r| r.cost).sum::<u64>(), "{label}");
                    }
                    let team = scope.team_activity(&month).await.unwrap();
                    assert_eq!(team[0].month_cost, rows.iter().map(|r| r.cost).sum::<u64>(), "{label}");
                    let jobs = store.jobs(tenant, 1_000).await.unwrap();
                    let created = jobs.iter().map(|j| j.created_at).min().unwrap();
                    // On a bucket's edge, within the first bucket, and half an hour before it
                    // (a time zone half an hour off UTC).
                    let start = created - created.rem_euclid(hour);
                    for since in [start, created, start - hour / 2, created + 1] {
                        let mut expected: std::collections::BTreeMap<String, u64> = Default::default();
                        for j in jobs.iter().filter(|j| j.created_at >= since) {
                            *expected.entry(j.state.clone()).or_default() += 1;
                        }
                        let counts = scope.run_counts_since(since).await.unwrap();
                        assert_eq!(counts.by_state, expected, "{label}: {tenant} since {since}");
                    }
                }
                let margin = store.margin_report(&month).await.unwrap();
                let acme_rows = store.tenant("acme").ledger_of_month(&month).await.unwrap();
                let ai: u64 = acme_rows.iter().filter(|r| r.kind == "ai").map(|r| r.cost).sum();
                assert_eq!((margin[0].tenant.as_str(), margin[0].ai_cost), ("acme", ai), "{label}");
            }
        };
        check("after the runs").await;
        // A dead run retried leaves the dead count and finishes again as a success.
        assert!(store.retry_dead("acme", acme[6]).await.unwrap());
        check("after a dead-letter retry").await;
        let again = store.claim("n", 5, LEASE).await.unwrap();
        assert_eq!(again.iter().map(|j| j.id).collect::<Vec<_>>(), [acme[6]]);
        store.complete_many("n", &[finished(acme[6], 5)]).await.unwrap();
        check("after the retried run succeeded").await;
        let folded = store.fold_totals().await.unwrap();
        assert_eq!(folded > 0, store.backend() == Backend::Postgres, "{folded} rows folded");
        check("after folding").await;
        assert_eq!(store.fold_totals().await.unwrap(), 0, "nothing fresh is left to fold");
    })
    .await;
}

/// Every other way a run moves keeps the run totals, the queue and its counters in step with the
/// runs: output held for a person and then approved or rejected, a plugin's own request answered,
/// a lost node's runs requeued or dead, a node handing its runs back, a cancelled run retried.
#[tokio::test]
async fn totals_queue_and_counters_follow_every_move() {
    on_both(|store| async move {
        let tenant = "tenant: acme\nagents:\n  - { name: a, role: A, plugin: noop }\nautomations:\n  \
                      - { name: held, agent: a, trigger: { manual: true }, approval: {} }\n";
        store.apply(&config(tenant)).await.unwrap();
        let new = |automation: Option<&str>, max_attempts: u32| mc_store::NewJob {
            automation: automation.map(str::to_string),
            agent: "a".into(),
            plugin: "noop".into(),
            max_attempts,
            ..job("acme", 0)
        };
        let check = |label: &'static str| {
            let store = store.clone();
            async move {
                assert_eq!(store.queue_mismatches().await.unwrap(), [], "{label}");
                assert_counters(&store, "acme").await;
                let jobs = store.jobs("acme", 1_000).await.unwrap();
                let mut expected: std::collections::BTreeMap<String, u64> = Default::default();
                for j in &jobs {
                    *expected.entry(j.state.clone()).or_default() += 1;
                }
                let counts = store.tenant("acme").run_counts_since(0).await.unwrap();
                assert_eq!(counts.by_state, expected, "{label}");
            }
        };
        let ids: Vec<i64> = store
            .enqueue(&[
                new(Some("held"), 3),
                new(Some("held"), 3),
                new(None, 3),
                new(None, 1),
                new(None, 3),
                new(None, 3),
            ])
            .await
            .unwrap()
            .iter()
            .map(|e| e.id())
            .collect();
        let claimed = store.claim("n", 10, LEASE).await.unwrap();
        assert_eq!(claimed.len(), 6);
        check("claimed").await;
        // Two outputs held for a person; one approved, one rejected.
        let done = |id: i64| mc_store::Finished {
            id,
            output: "{}".into(),
            logs: None,
            fuel: 10,
        };
        store.complete_many("n", &[done(ids[0]), done(ids[1])]).await.unwrap();
        check("held for approval").await;
        let scope = store.tenant("acme");
        let who = mc_store::Principal::local();
        scope.approve(&who, ids[0], None).await.unwrap();
        scope.reject(&who, ids[1], Some("no")).await.unwrap();
        check("approved and rejected").await;
        // A plugin's own request: suspended, answered, back in the queue.
        assert!(store.suspend("n", ids[2], None, 5).await.unwrap());
        assert_eq!(
            scope.ask_approval(ids[2], 1, "ok?", "body").await.unwrap(),
            mc_store::AskState::Pending
        );
        check("suspended").await;
        scope.approve(&who, ids[2], None).await.unwrap();
        check("answered").await;
        // The node is lost: its runs come back, or die when they have no attempt left.
        assert_eq!(
            store
                .recover_expired(mc_store::now_micros() + 2 * LEASE.as_micros() as i64)
                .await
                .unwrap(),
            3
        );
        check("recovered").await;
        // Another node hands its runs back; one is cancelled, then retried.
        let again = store.claim("m", 10, LEASE).await.unwrap();
        assert_eq!(again.len(), 3);
        assert_eq!(store.release("m", &[ids[4]]).await.unwrap(), 1);
        assert!(store.cancel("acme", ids[5]).await.unwrap());
        check("released and cancelled").await;
        assert!(store.retry_dead("acme", ids[5]).await.unwrap());
        assert!(store.retry_dead("acme", ids[3]).await.unwrap());
        check("retried").await;
    })
    .await;
}
