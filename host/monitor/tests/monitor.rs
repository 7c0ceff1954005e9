//! The monitor's cycle on both backends: what it measures, what it does by itself, how each
//! action is recorded as an incident (once), and how incidents resolve.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mc_monitor::{Monitor, MonitorConfig};
use mc_store::{FailedAttempt, NewJob, Principal, Store};
use mc_testkit::on_both;

const TENANT: &str = r#"tenant: acme
agents:
  - { name: bot, role: Works, plugin: noop }
automations:
  - { name: flaky, agent: bot, trigger: { manual: true } }
  - { name: steady, agent: bot, trigger: { manual: true } }
"#;

async fn setup(store: &Store) {
    let known = mc_config::Known::default();
    store.apply(&mc_config::parse(TENANT, &known).unwrap()).await.unwrap();
    let other = "tenant: other\nagents:\n  - { name: bot, role: Works, plugin: noop }\n";
    store.apply(&mc_config::parse(other, &known).unwrap()).await.unwrap();
}

fn job(automation: &str) -> NewJob {
    NewJob {
        tenant: "acme".into(),
        automation: Some(automation.into()),
        agent: "bot".into(),
        plugin: "noop".into(),
        input: "{}".into(),
        trigger: "manual".into(),
        priority: 0,
        max_attempts: 1,
        run_at: None,
        idempotency_key: None,
    }
}

/// Runs `n` jobs of `automation` to a failure that ends them dead.
async fn fail_runs(store: &Store, automation: &str, n: usize) {
    store.enqueue(&vec![job(automation); n]).await.unwrap();
    let claimed = store.claim("worker", n, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claimed.len(), n);
    for j in claimed {
        let attempt = FailedAttempt {
            kind: "trap",
            error: "trap: unreachable\nbacktrace…",
            retryable: false,
            logs: None,
            fuel: 0,
            plugin_hash: None,
        };
        store.fail("worker", j.id, &attempt).await.unwrap().unwrap();
    }
}

/// Where the tests' monitors escalate to (nothing listens: the deliveries are only written).
const ESCALATE_TO: &str = "https://ops.example.com/hooks/incidents";

fn config(node: &str) -> MonitorConfig {
    let mut c = MonitorConfig::new(node);
    c.escalate_to = vec![mc_store::Destination::operator_webhook(ESCALATE_TO)];
    c
}

/// An automation whose last five runs failed for good is switched off, with an incident saying
/// why and what was done; the next cycle does not do it again; a person switching it back on
/// resolves the incident. Four failures, or failures broken by a success, are left alone. The
/// incident is the tenant's: another tenant does not see it.
#[tokio::test]
async fn an_automation_failing_run_after_run_is_paused_once_and_resumed_by_a_person() {
    on_both(|store| async move {
        setup(&store).await;
        fail_runs(&store, "steady", 4).await;
        fail_runs(&store, "flaky", 5).await;
        let monitor = Monitor::new(store.clone(), config("n1"));
        let cycle = monitor.cycle().await.unwrap();
        assert_eq!(cycle.paused, [("acme".to_string(), "flaky".to_string())]);
        assert_eq!(cycle.opened.len(), 1);
        let acme = store.tenant("acme");
        let incidents = acme.incidents(10).await.unwrap();
        assert_eq!(incidents.len(), 1);
        let i = &incidents[0];
        assert_eq!(
            (i.kind.as_str(), i.subject.as_str(), i.state.as_str()),
            ("automation_paused", "flaky", "open")
        );
        assert_eq!(
            i.summary,
            "automation `flaky` was switched off: its last 5 runs failed (latest: trap: unreachable)"
        );
        assert_eq!(
            acme.paused_reason("flaky").await.unwrap().as_deref(),
            Some("its last 5 runs failed (latest: trap: unreachable)")
        );
        assert!(store.tenant("other").incidents(10).await.unwrap().is_empty());

        let again = monitor.cycle().await.unwrap();
        assert!(again.paused.is_empty() && again.opened.is_empty(), "{again:?}");
        // Escalated once, with the incident, to the operator's webhook, signed with the
        // deployment's key.
        let sent = store.escalations(10).await.unwrap();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(
            (
                sent[0].tenant.as_str(),
                sent[0].event_type.as_str(),
                sent[0].url.as_str(),
                sent[0].secret.as_str()
            ),
            ("acme", "incident.opened", ESCALATE_TO, mc_store::OPERATOR_SIGNED)
        );
        let payload: serde_json::Value = serde_json::from_str(&sent[0].payload).unwrap();
        assert_eq!(payload["data"]["incident"], i.id);
        assert_eq!(payload["data"]["kind"], "automation_paused");

        let person = Principal::local();
        assert!(acme.set_enabled(&person, "flaky", true).await.unwrap());
        let i = &acme.incidents(10).await.unwrap()[0];
        assert_eq!(i.state, "resolved");
        assert_eq!(
            i.action.as_deref(),
            Some(&*format!(
                "switched the automation off; switch it on again once it is fixed; switched back on by key `{}`",
                person.key_id
            ))
        );
        assert_eq!(acme.paused_reason("flaky").await.unwrap(), None);
        let sent = store.escalations(10).await.unwrap();
        let kinds: Vec<&str> = sent.iter().map(|d| d.event_type.as_str()).collect();
        assert_eq!(
            kinds,
            ["incident.resolved", "incident.opened"],
            "its resolution is posted where it was escalated"
        );
        let later = monitor.cycle().await.unwrap();
        assert!(later.paused.is_empty(), "old failures do not pause it again");
    })
    .await;
}

/// Runs whose node stopped renewing their leases go back to the queue and the requeue is recorded
/// with the node and the count; a node not seen for too long is forgotten, recorded too; a
/// provider's open breaker opens one incident that resolves when the breaker closes; each cycle
/// keeps a snapshot.
#[tokio::test]
async fn lost_nodes_and_provider_outages_are_recorded_and_resolved() {
    on_both(|store| async move {
        setup(&store).await;
        let retried = NewJob {
            max_attempts: 3,
            ..job("steady")
        };
        store.enqueue(&[retried.clone(), retried]).await.unwrap();
        store.claim("ghost", 2, Duration::from_millis(1)).await.unwrap();
        store.node_seen("ghost").await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(store.recover_expired(mc_store::now_micros()).await.unwrap(), 2);

        let breaker = Arc::new(Mutex::new("open".to_string()));
        let state = breaker.clone();
        let mut cfg = config("n1");
        cfg.node_dead_after = Duration::from_millis(10);
        cfg.providers = Some(Arc::new(move || {
            vec![("anthropic".to_string(), state.lock().unwrap().clone())]
        }));
        let monitor = Monitor::new(store.clone(), cfg);
        store.node_seen("n1").await.unwrap();
        let cycle = monitor.cycle().await.unwrap();
        assert_eq!(cycle.lost_nodes, ["ghost"]);
        assert_eq!(cycle.opened.len(), 1, "the provider outage");

        let all = store.incidents(10).await.unwrap();
        let find = |kind: &str| {
            all.iter()
                .find(|i| i.kind == kind)
                .unwrap_or_else(|| panic!("{kind}: {all:?}"))
        };
        let sent: Vec<String> = store
            .escalations(10)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.payload)
            .collect();
        assert_eq!(sent.len(), 1, "only the outage needs a person: {sent:?}");
        assert!(sent[0].contains("provider_down"), "{sent:?}");
        let requeued = find("runs_requeued");
        assert_eq!(
            (requeued.subject.as_str(), requeued.state.as_str()),
            ("ghost", "resolved")
        );
        assert_eq!(
            requeued.summary,
            "node `ghost` stopped renewing the leases of 2 running job(s)"
        );
        assert_eq!(
            requeued.action.as_deref(),
            Some("requeued 2 to run again on a live node")
        );
        assert_eq!(find("node_lost").state, "resolved");
        let down = find("provider_down");
        assert_eq!(
            (down.subject.as_str(), down.state.as_str(), down.tenant.as_str()),
            ("anthropic", "open", "")
        );
        let nodes: Vec<String> = store.nodes().await.unwrap().into_iter().map(|n| n.0).collect();
        assert_eq!(nodes, ["n1"]);

        assert!(
            monitor.cycle().await.unwrap().opened.is_empty(),
            "still open, not opened again"
        );
        // Half-open is not recovered: the probe may fail and open it again, so the incident
        // stays as it is rather than closing and opening anew with each probe.
        *breaker.lock().unwrap() = "half-open".into();
        let cycle = monitor.cycle().await.unwrap();
        assert!(cycle.opened.is_empty() && cycle.resolved.is_empty(), "{cycle:?}");
        *breaker.lock().unwrap() = "closed".into();
        let cycle = monitor.cycle().await.unwrap();
        assert_eq!(cycle.resolved, [down.id]);
        let sent = store.escalations(10).await.unwrap();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].event_type, "incident.resolved");
        assert!(sent[0].payload.contains("the condition ended"), "{}", sent[0].payload);

        let (_, node, snapshot) = store.latest_snapshot().await.unwrap().unwrap();
        assert_eq!(node, "n1");
        assert_eq!(snapshot["queues"][0]["tenant"], "acme");
        assert_eq!(snapshot["queues"][0]["available"], 2);
        assert_eq!(snapshot["providers"][0]["state"], "closed");
        assert_eq!(store.snapshot_count().await.unwrap(), 4);
    })
    .await;
}

/// One node at a time holds the monitor's lease; another takes over once it lapses, and at once
/// when the holder gives it up.
#[tokio::test]
async fn one_node_at_a_time_runs_the_cycle() {
    on_both(|store| async move {
        let ttl = Duration::from_millis(200);
        assert!(store.hold_lease("monitor", "n1", ttl).await.unwrap());
        assert!(!store.hold_lease("monitor", "n2", ttl).await.unwrap());
        assert!(store.hold_lease("monitor", "n1", ttl).await.unwrap(), "renewed");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(store.hold_lease("monitor", "n2", ttl).await.unwrap(), "taken over");
        assert!(!store.hold_lease("monitor", "n1", ttl).await.unwrap());
        store.release_lease("monitor", "n2").await.unwrap();
        assert!(store.hold_lease("monitor", "n1", ttl).await.unwrap());
    })
    .await;
}

#[test]
fn the_disk_is_low_below_five_percent_or_half_a_gibibyte() {
    let gib = 1u64 << 30;
    assert!(!mc_monitor::disk_low(10 * gib, 100 * gib));
    assert!(mc_monitor::disk_low(4 * gib, 100 * gib));
    assert!(mc_monitor::disk_low(256 << 20, gib));
    assert!(!mc_monitor::disk_low(600 << 20, gib));
    let dir = std::env::temp_dir();
    let (free, total) = mc_monitor::disk_space(&dir).unwrap();
    assert!(free <= total && total > 0);
}

/// A tenant's availability counts its scheduled ticks: a run that started on time and did not
/// fail for a platform reason counts; a late start, a platform failure and a tick missed while no
/// node ran do not; a tick the overlap policy skipped is left out.
#[tokio::test]
async fn availability_counts_runs_that_started_on_time_and_did_not_fail_for_the_platform() {
    on_both(|store| async move {
        setup(&store).await;
        let now = mc_store::now_micros();
        let s = |secs: i64| now - secs * 1_000_000;
        store
            .init_schedules(&[("acme".into(), "steady".into())], s(3600))
            .await
            .unwrap();
        let fired = |input: &str| {
            mc_store::TickOutcome::Fired(NewJob {
                input: format!("{{\"case\":\"{input}\"}}"),
                ..job("steady")
            })
        };
        let ticks = vec![
            (s(150), fired("late")),
            (s(40), mc_store::TickOutcome::Missed("no node ran".into())),
            (s(30), mc_store::TickOutcome::Skipped("a run was still going".into())),
            (s(5), fired("lost")),
            (s(2), fired("ok")),
        ];
        store
            .advance_schedules(vec![mc_store::Advance {
                tenant: "acme".into(),
                automation: "steady".into(),
                from: s(3600),
                to: s(2),
                ticks,
            }])
            .await
            .unwrap();
        let claimed = store.claim("n", 10, Duration::from_secs(60)).await.unwrap();
        assert_eq!(claimed.len(), 3);
        for j in claimed {
            if j.input.contains("lost") {
                let attempt = FailedAttempt {
                    kind: "host",
                    error: "host error: no free instance slot",
                    retryable: false,
                    logs: None,
                    fuel: 0,
                    plugin_hash: None,
                };
                store.fail("n", j.id, &attempt).await.unwrap().unwrap();
            } else {
                let done = mc_store::Finished {
                    id: j.id,
                    output: "{}".into(),
                    logs: None,
                    fuel: 0,
                };
                store.complete_many("n", &[done]).await.unwrap();
            }
        }
        // The ticks may straddle a month's end: count both months then.
        let months: std::collections::BTreeSet<String> = [s(150), now]
            .into_iter()
            .map(|t| mc_store::month_and_day(t).0)
            .collect();
        let mut sum = (0, 0, 0, 0, 0);
        for m in &months {
            let sla = store.tenant("acme").sla(m).await.unwrap();
            sum.0 += sla.scheduled;
            sum.1 += sla.available;
            sum.2 += sla.late;
            sum.3 += sla.platform_failures;
            sum.4 += sla.missed;
        }
        assert_eq!(
            sum,
            (4, 1, 1, 1, 1),
            "scheduled, available, late, platform failures, missed"
        );
        if months.len() == 1 {
            let sla = store.tenant("acme").sla(months.first().unwrap()).await.unwrap();
            assert_eq!(sla.availability, Some(25.0));
        }
        let other = store
            .tenant("other")
            .sla(&mc_store::month_and_day(now).0)
            .await
            .unwrap();
        assert_eq!((other.scheduled, other.availability), (0, None));
        assert!(store.tenant("acme").sla("2026-13").await.is_err());
    })
    .await;
}

const VERSION_2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

/// Runs `n` jobs of `steady` (plugin `noop`) that trap in plugin version `hash`.
async fn trap_runs(store: &Store, hash: &str, n: usize) {
    store.enqueue(&vec![job("steady"); n]).await.unwrap();
    for j in store.claim("worker", n, Duration::from_secs(60)).await.unwrap() {
        let attempt = FailedAttempt {
            kind: "trap",
            error: "trap: wasm `unreachable` instruction executed\nbacktrace…",
            retryable: false,
            logs: None,
            fuel: 10,
            plugin_hash: Some(hash),
        };
        store.fail("worker", j.id, &attempt).await.unwrap().unwrap();
    }
}

/// A plugin version whose last three runs trapped is quarantined once, with an escalated
/// incident naming what trapped; two traps are not enough. Runs refused by the quarantine do not
/// pause the automation. A newer version that runs successfully closes the incident (the broken
/// version stays refused) and an operator lifts the quarantine.
#[tokio::test]
async fn a_plugin_version_that_traps_run_after_run_is_quarantined_until_lifted() {
    on_both(|store| async move {
        setup(&store).await;
        let monitor = Monitor::new(store.clone(), config("n1"));
        trap_runs(&store, VERSION_2, 2).await;
        assert!(
            monitor.cycle().await.unwrap().quarantined.is_empty(),
            "two traps in a row are not enough"
        );
        trap_runs(&store, VERSION_2, 1).await;
        let cycle = monitor.cycle().await.unwrap();
        assert_eq!(cycle.quarantined, ["noop@222222222222"]);
        let q = store.quarantined().await.unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(
            (q[0].plugin.as_str(), q[0].hash.as_str(), q[0].reason.as_str()),
            (
                "noop",
                VERSION_2,
                "its last 3 runs trapped (latest: trap: wasm `unreachable` instruction executed)"
            )
        );
        let incident = store.open_incidents().await.unwrap().remove(0);
        assert_eq!(
            (
                incident.kind.as_str(),
                incident.subject.as_str(),
                incident.severity.as_str()
            ),
            ("plugin_quarantined", "noop@222222222222", "critical")
        );
        assert_eq!(
            incident.summary,
            "plugin `noop` version 222222222222 was quarantined: its last 3 runs trapped (latest: trap: wasm \
             `unreachable` instruction executed); tenants whose runs trapped: acme"
        );
        let sent = store.escalations(10).await.unwrap();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].payload.contains("plugin_quarantined"), "{}", sent[0].payload);
        assert!(monitor.cycle().await.unwrap().quarantined.is_empty(), "once");

        // Runs the engine refuses for the quarantine are not failures of the automation.
        store.enqueue(&vec![job("steady"); 6]).await.unwrap();
        for j in store.claim("worker", 6, Duration::from_secs(60)).await.unwrap() {
            let refused = FailedAttempt {
                kind: mc_store::QUARANTINED,
                error: "plugin `noop` version 222222222222 is quarantined",
                retryable: false,
                logs: None,
                fuel: 0,
                plugin_hash: Some(VERSION_2),
            };
            store.fail("worker", j.id, &refused).await.unwrap().unwrap();
        }
        assert!(monitor.cycle().await.unwrap().paused.is_empty());

        // A new version works: the incident ends, the broken version stays quarantined.
        store.enqueue(&[job("steady")]).await.unwrap();
        let j = store
            .claim("worker", 1, Duration::from_secs(60))
            .await
            .unwrap()
            .remove(0);
        let done = mc_store::Finished {
            id: j.id,
            output: "{}".into(),
            logs: None,
            fuel: 1,
        };
        store.complete_many("worker", &[done]).await.unwrap();
        let cycle = monitor.cycle().await.unwrap();
        assert_eq!(cycle.resolved, [incident.id]);
        assert_eq!(store.quarantined().await.unwrap().len(), 1);
        assert_eq!(store.escalations(10).await.unwrap()[0].event_type, "incident.resolved");
        assert_eq!(store.release_plugin("noop", "operator").await.unwrap(), [VERSION_2]);
        assert!(store.quarantined().await.unwrap().is_empty());
    })
    .await;
}

/// While the oldest waiting run is older than the bound, the lowest priority is held back, one
/// level more each cycle, never the highest waiting; the incident says so and is updated (and
/// the update escalated) as it widens. Once the queue catches up every held run goes back in
/// its old order; nothing is lost and the counters agree.
#[tokio::test]
async fn load_is_shed_lowest_priorities_first_and_let_go_in_order() {
    on_both(|store| async move {
        setup(&store).await;
        let long_ago = mc_store::now_micros() - 600_000_000;
        let at = |priority: i32, n: usize| {
            vec![
                NewJob {
                    priority,
                    run_at: Some(long_ago),
                    ..job("steady")
                };
                n
            ]
        };
        for (priority, n) in [(-10, 3), (0, 2), (10, 1)] {
            store.enqueue(&at(priority, n)).await.unwrap();
        }
        store.stage_due(mc_store::now_micros()).await.unwrap();
        let mut cfg = config("n1");
        cfg.shed_after = Duration::from_secs(60);
        let monitor = Monitor::new(store.clone(), cfg);

        assert_eq!(monitor.cycle().await.unwrap().shedding, Some(3));
        let shed = store.open_incidents().await.unwrap().remove(0);
        assert_eq!((shed.kind.as_str(), shed.subject.as_str()), ("load_shed", "queue"));
        assert_eq!(
            shed.action.as_deref(),
            Some("holding back runs of priority -10 and lower until the queue catches up; they keep their place")
        );
        assert_eq!(store.queue_counts("acme").await.unwrap(), (3, 0));
        assert_eq!(monitor.cycle().await.unwrap().shedding, Some(5), "one level more");
        // The queue is also old enough for a backlog incident of its own; only the shedding's count here.
        let shedding_news = || async {
            store
                .escalations(20)
                .await
                .unwrap()
                .into_iter()
                .filter(|d| d.payload.contains("load_shed"))
                .map(|d| d.event_type)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            shedding_news().await,
            ["incident.updated", "incident.opened"],
            "the widening is news; the same state noticed again is not"
        );
        assert_eq!(
            monitor.cycle().await.unwrap().shedding,
            Some(5),
            "never the highest level"
        );
        assert_eq!(shedding_news().await.len(), 2);
        assert_eq!(store.queue_counts("acme").await.unwrap(), (1, 0));

        let top = store.claim("worker", 10, Duration::from_secs(60)).await.unwrap();
        assert_eq!(top.iter().map(|j| j.priority).collect::<Vec<_>>(), [10]);
        let done = mc_store::Finished {
            id: top[0].id,
            output: "{}".into(),
            logs: None,
            fuel: 1,
        };
        store.complete_many("worker", &[done]).await.unwrap();
        let cycle = monitor.cycle().await.unwrap();
        assert!(cycle.resolved.contains(&shed.id), "{cycle:?}");
        assert_eq!(cycle.shedding, None);
        assert_eq!(store.shed_count().await.unwrap(), 0);
        store.stage_due(mc_store::now_micros()).await.unwrap();
        assert_eq!(store.queue_counts("acme").await.unwrap(), (5, 0));
        let rest = store.claim("worker", 10, Duration::from_secs(60)).await.unwrap();
        assert_eq!(
            rest.iter().map(|j| j.priority).collect::<Vec<_>>(),
            [0, 0, -10, -10, -10]
        );
        let resolved = &store.incidents(10).await.unwrap()[0];
        assert!(
            resolved
                .action
                .as_deref()
                .unwrap()
                .ends_with("let 5 held-back runs go in their old order"),
            "{resolved:?}"
        );
    })
    .await;
}

/// While a provider's breaker is open, each agent whose model it serves and that has a
/// fallback on a working provider is recorded as running on its fallback (the tenant's
/// incident, not escalated: it was dealt with); the breaker closing ends it.
#[tokio::test]
async fn agents_on_their_fallback_model_are_recorded_while_their_provider_is_down() {
    on_both(|store| async move {
        let known = mc_config::Known::default();
        let team = "tenant: acme\nagents:\n  - { name: writer, role: Writes, plugin: noop, model: claude-sonnet-4-5, fallbacks: [gpt-4o-mini] }\n  - { name: solo, role: Alone, plugin: noop, model: claude-sonnet-4-5 }\n";
        store.apply(&mc_config::parse(team, &known).unwrap()).await.unwrap();
        let breaker = Arc::new(Mutex::new("open".to_string()));
        let state = breaker.clone();
        let mut cfg = config("n1");
        cfg.providers = Some(Arc::new(move || {
            vec![
                ("anthropic".to_string(), state.lock().unwrap().clone()),
                ("openai".to_string(), "closed".to_string()),
            ]
        }));
        cfg.model_provider = Some(Arc::new(|m: &str| {
            Some(if m.starts_with("claude") { "anthropic" } else { "openai" }.to_string())
        }));
        let monitor = Monitor::new(store.clone(), cfg);
        let cycle = monitor.cycle().await.unwrap();
        assert_eq!(
            cycle.on_fallback,
            [("acme".to_string(), "writer".to_string(), "gpt-4o-mini".to_string())]
        );
        let incidents = store.tenant("acme").incidents(10).await.unwrap();
        assert_eq!(incidents.len(), 1);
        assert_eq!(incidents[0].kind, "model_fallback");
        assert_eq!(
            incidents[0].summary,
            "agent `writer` runs on its fallback model `gpt-4o-mini` while `anthropic` (its model `claude-sonnet-4-5`) is down"
        );
        let sent: Vec<String> = store.escalations(10).await.unwrap().into_iter().map(|d| d.payload).collect();
        assert!(
            sent.iter().all(|p| !p.contains("model_fallback")),
            "dealt with, not escalated: {sent:?}"
        );
        *breaker.lock().unwrap() = "closed".into();
        let cycle = monitor.cycle().await.unwrap();
        assert!(cycle.resolved.contains(&incidents[0].id), "{cycle:?}");
        assert!(cycle.on_fallback.is_empty());
    })
    .await;
}
