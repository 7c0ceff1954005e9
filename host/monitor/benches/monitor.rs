//! The monitor's figures (`cargo bench -p mc-monitor --bench monitor`):
//!
//! - **Its own cost**: a fleet of 100 tenants with 10 automations each (1,000), a queue of 2,000
//!   waiting runs and 20,000 finished ones; 100 cycles back to back. The CPU time of a cycle
//!   (this process, plus the PostgreSQL server's processes on PostgreSQL) is divided by the cycle
//!   period (5 s) to give the share of one core. Goal ≤ 1%.
//! - **Escalation delay**: an AI provider's breaker opens; the time from the incident's opening
//!   to its `incident.opened` post reaching a receiver on 127.0.0.1 (the outbox's own loop, as
//!   `serve` runs it). Goal ≤ 5 s. The comparison, printed beside it: the business plan's own
//!   monitor looks every 30 s, so its worst case before even noticing is 30 s, ours is one cycle.
//!
//! Both on SQLite and on PostgreSQL, a fresh database each.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mc_monitor::{CYCLE, Monitor, MonitorConfig};
use mc_store::{NewJob, Store};
use mc_testkit::{TestDb, WebhookSink};

const TENANTS: usize = 100;
const AUTOMATIONS_PER_TENANT: usize = 10;
const WAITING_PER_TENANT: usize = 20;
const FINISHED: usize = 20_000;
const CYCLES: usize = 100;
const ESCALATIONS: usize = 10;
/// The business plan's monitor checked every 30 seconds.
const PLAN_CHECK_EVERY: Duration = Duration::from_secs(30);
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// CPU time (user + system) of the processes `pids` (this process when empty is not wanted:
/// pass `["self"]`), from `/proc/<pid>/stat`.
fn cpu_of(pids: &[String]) -> Duration {
    let tick = rustix::param::clock_ticks_per_second() as f64;
    let mut total = 0u64;
    for pid in pids {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command may hold spaces: fields are counted after its closing parenthesis.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
        total += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        total += f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    Duration::from_secs_f64(total as f64 / tick)
}

/// The PostgreSQL server's processes on this machine.
fn postgres_pids() -> Vec<String> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.chars().all(|c| c.is_ascii_digit())
            && std::fs::read_to_string(entry.path().join("comm")).is_ok_and(|c| c.trim() == "postgres")
        {
            pids.push(name);
        }
    }
    pids
}

fn job(tenant: &str, automation: &str) -> NewJob {
    NewJob {
        tenant: tenant.into(),
        automation: Some(automation.into()),
        agent: "bot".into(),
        plugin: "noop".into(),
        input: "{}".into(),
        trigger: "interval".into(),
        priority: 0,
        max_attempts: 1,
        run_at: None,
        idempotency_key: None,
    }
}

async fn seed(store: &Store) {
    let known = mc_config::Known::default();
    for t in 0..TENANTS {
        let mut file =
            format!("tenant: t{t:03}\nagents:\n  - {{ name: bot, role: Works, plugin: noop }}\nautomations:\n");
        for a in 0..AUTOMATIONS_PER_TENANT {
            file.push_str(&format!(
                "  - {{ name: a{a}, agent: bot, trigger: {{ interval: 1h }} }}\n"
            ));
        }
        store.apply(&mc_config::parse(&file, &known).unwrap()).await.unwrap();
    }
    // Finished history, then the waiting queue.
    let per_batch = 1_000;
    for b in 0..FINISHED / per_batch {
        let jobs: Vec<NewJob> = (0..per_batch)
            .map(|i| {
                job(
                    &format!("t{:03}", (b * per_batch + i) % TENANTS),
                    &format!("a{}", i % AUTOMATIONS_PER_TENANT),
                )
            })
            .collect();
        store.enqueue(&jobs).await.unwrap();
        let claimed = store.claim("seed", per_batch, Duration::from_secs(60)).await.unwrap();
        let done: Vec<mc_store::Finished> = claimed
            .iter()
            .map(|j| mc_store::Finished {
                id: j.id,
                output: "{}".into(),
                logs: None,
                fuel: 0,
            })
            .collect();
        store.complete_many("seed", &done).await.unwrap();
    }
    let waiting: Vec<NewJob> = (0..TENANTS * WAITING_PER_TENANT)
        .map(|i| job(&format!("t{:03}", i % TENANTS), "a0"))
        .collect();
    store.enqueue(&waiting).await.unwrap();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Measures one store; returns its line of each table.
async fn row(name: &str, db: TestDb, pg: bool) -> (String, String) {
    let store = db.store.clone();
    seed(&store).await;
    let breaker_open = Arc::new(AtomicBool::new(false));
    let state = breaker_open.clone();
    let sink = WebhookSink::start([]).await;
    let origin = sink.origin().to_string();
    let mut config = MonitorConfig::new("bench");
    config.data_dir = Some(std::env::temp_dir());
    config.escalate_to = vec![mc_store::Destination::operator_webhook(&format!("{origin}/incidents"))];
    config.providers = Some(Arc::new(move || {
        let s = if state.load(Ordering::SeqCst) { "open" } else { "closed" };
        vec![
            ("anthropic".into(), s.into()),
            ("openai".into(), "closed".into()),
            ("offline".into(), "closed".into()),
        ]
    }));
    let monitor = Monitor::new(store.clone(), config);
    for _ in 0..3 {
        monitor.cycle().await.unwrap();
    }

    // Its own cost.
    let pids: Vec<String> = if pg { postgres_pids() } else { Vec::new() };
    let me = vec!["self".to_string()];
    let (cpu0, db0) = (cpu_of(&me), cpu_of(&pids));
    let mut walls = Vec::with_capacity(CYCLES);
    for _ in 0..CYCLES {
        let t = Instant::now();
        monitor.cycle().await.unwrap();
        walls.push(t.elapsed());
    }
    let (cpu, db_cpu) = (cpu_of(&me) - cpu0, cpu_of(&pids) - db0);
    walls.sort();
    let per_cycle = (cpu + db_cpu) / CYCLES as u32;
    let share = per_cycle.as_secs_f64() / CYCLE.as_secs_f64() * 100.0;
    let cost = format!(
        "| {name} | {} | {} | {} | {} | **{share:.2}%** (goal ≤ 1%) — {} |",
        ms(percentile(&walls, 0.5)),
        ms(percentile(&walls, 0.99)),
        ms(cpu / CYCLES as u32),
        if pg {
            ms(db_cpu / CYCLES as u32)
        } else {
            "in process".into()
        },
        if share <= 1.0 { "met" } else { "NOT met" }
    );

    // Escalation delay: the outbox runs as `serve` runs it.
    let outbox = mc_outbox::Outbox::new(
        store.clone(),
        mc_outbox::OutboxConfig {
            escalation_secret: Some(SECRET.into()),
            test_hosts: vec![origin.clone()],
            ..mc_outbox::OutboxConfig::default()
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let sender = tokio::spawn(async move {
        outbox
            .run(async move {
                let _ = stopped.await;
            })
            .await
    });
    let mut delays = Vec::new();
    for _ in 0..ESCALATIONS {
        breaker_open.store(true, Ordering::SeqCst);
        let before = sink.count();
        let opened_at = Instant::now();
        let cycle = monitor.cycle().await.unwrap();
        assert_eq!(cycle.opened.len(), 1, "the outage opened one incident");
        let deadline = Instant::now() + Duration::from_secs(30);
        let arrived = loop {
            if let Some(r) = sink.received().get(before) {
                break r.at;
            }
            assert!(Instant::now() < deadline, "the escalation did not arrive");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        delays.push(arrived - opened_at);
        breaker_open.store(false, Ordering::SeqCst);
        monitor.cycle().await.unwrap();
    }
    let _ = stop.send(());
    let _ = sender.await;
    delays.sort();
    let worst = *delays.last().unwrap();
    let escalation = format!(
        "| {name} | {} | {} | {} (one cycle of {} s + the slowest post) | looks every {} s | {} |",
        ms(percentile(&delays, 0.5)),
        ms(worst),
        ms(CYCLE + worst),
        CYCLE.as_secs(),
        PLAN_CHECK_EVERY.as_secs(),
        if worst <= Duration::from_secs(5) {
            "met (goal ≤ 5 s)"
        } else {
            "NOT met (goal ≤ 5 s)"
        }
    );
    db.finish().await;
    (cost, escalation)
}

#[tokio::main]
async fn main() {
    println!(
        "## The monitor: its own cost ({TENANTS} tenants, {} automations, {} waiting and {FINISHED} finished runs; {CYCLES} cycles)",
        TENANTS * AUTOMATIONS_PER_TENANT,
        TENANTS * WAITING_PER_TENANT
    );
    println!(
        "| store | cycle p50 ms | cycle p99 ms | monitor CPU per cycle ms | database CPU per cycle ms | share of one core at one cycle per {} s |",
        CYCLE.as_secs()
    );
    println!("|---|---|---|---|---|---|");
    let rows = [
        row("SQLite", TestDb::sqlite().await, false).await,
        row("PostgreSQL", TestDb::postgres().await, true).await,
    ];
    for (cost, _) in &rows {
        println!("{cost}");
    }
    println!();
    println!(
        "## Escalation: from an incident's opening to its post at the receiver ({ESCALATIONS} provider outages per store)"
    );
    println!("| store | p50 ms | max ms | worst case from the outage, ms | the business plan's monitor | |");
    println!("|---|---|---|---|---|---|");
    for (_, escalation) in &rows {
        println!("{escalation}");
    }
}
