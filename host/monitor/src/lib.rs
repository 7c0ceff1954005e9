//! The self-healing monitor. Every node runs [`Monitor::run`]: it says the node is alive, and
//! the node that holds the `monitor` lease (one at a time across a cluster; another takes over
//! when its holder stops renewing it) runs a [`Monitor::cycle`] every few seconds:
//!
//! - measures each tenant's queue (depth, oldest wait), the database's latency, the free space of
//!   the data directory, the AI providers' breakers and which nodes are alive, and keeps it all as
//!   a health snapshot (dropped after [`SNAPSHOT_KEEP`]);
//! - acts by itself, recording each action as an incident: it switches off an automation whose
//!   latest [`FAILURE_STREAK`] runs failed for good (a person switches it back on, which resolves
//!   the incident); quarantines a plugin version whose latest [`TRAP_STREAK`] runs trapped (its
//!   runs then fail at once, kept to be retried, until a new version works or an operator lifts
//!   it); records each agent that runs on its fallback model while its provider's breaker is open
//!   (the gateway switches per call); holds back the lowest priorities while the oldest waiting
//!   run is older than [`SHED_AFTER`], one level more each cycle it stays so, and lets them go in
//!   their old order once the queue has caught up; and forgets a node not seen for
//!   [`NODE_DEAD_AFTER`] (the engine's lease recovery requeues its runs and records that, in the
//!   same transaction);
//! - opens an incident for what it cannot fix (a provider's breaker open, a tenant's queue
//!   backed up, the disk nearly full, the database slow) and resolves it when the condition ends.
//!   Every node also asks the database each [`DB_PROBE_EVERY`] whether it answers, and records
//!   how long it did not once it does again ([`DATABASE_UNREACHABLE`]).
//!   An incident is opened once: noticing the same thing again updates it. A new incident that
//!   needs a person (these, a paused automation, a quarantined plugin) is escalated to the
//!   operator ([`MonitorConfig::escalate_to`]: a webhook, an email address) and, when it concerns
//!   a tenant, to the tenant's own contact, through the outbox, written in the incident's
//!   transaction, so it is sent once and survives a crash.
//!
//! The crate knows the store and nothing of HTTP: the server shows what it records, and the AI
//! providers' state reaches it through [`ProviderStates`].

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mc_store::{
    AUTOMATION_PAUSED, Destination, NewIncident, Opened, PLATFORM, PLUGIN_QUARANTINED, Store, StoreError,
    plugin_version,
};
use serde::Serialize;
use serde_json::json;

/// How often the monitor looks: "every few seconds" (the business plan's own monitor checked
/// every 30 seconds).
pub const CYCLE: Duration = Duration::from_secs(5);
/// The name of the lease the cycle runs under.
pub const LEASE: &str = "monitor";
/// How long the leader's lease lasts: three cycles, so a dead leader is replaced within 15 s and a
/// slow cycle does not lose it.
pub const LEASE_TTL: Duration = Duration::from_secs(15);
/// A node not seen for this long is dead: four missed heartbeats, not one slow one.
pub const NODE_DEAD_AFTER: Duration = Duration::from_secs(20);
/// Runs in a row that failed for good before the monitor switches their automation off: a
/// failure that repeats this often is not transient, and each run costs the tenant.
pub const FAILURE_STREAK: u32 = 5;
/// Runs of one plugin version in a row that trapped before it is quarantined: a trap is a bug in
/// the plugin (a panic, an out-of-bounds access), not bad luck, and three tenants' runs trapping
/// the same way is not their input's fault.
pub const TRAP_STREAK: u32 = 3;
/// The oldest waiting run's age above which load is shed. Well under [`QUEUE_WAIT_ALERT`]: shedding
/// low priorities is meant to keep the backlog incident from happening.
pub const SHED_AFTER: Duration = Duration::from_secs(120);
/// How long held-back runs are kept back at a time; each cycle that still sheds extends it, so if
/// the monitor stops they come back by themselves within this.
pub const SHED_HOLD: Duration = Duration::from_secs(30);
/// How far back the first cycle looks for failures when there is no earlier snapshot.
const FIRST_LOOK_BACK: Duration = Duration::from_secs(3600);
/// How long health snapshots are kept: two days of history at one per cycle (about 35,000 rows).
pub const SNAPSHOT_KEEP: Duration = Duration::from_secs(2 * 24 * 3600);
/// A tenant's oldest waiting job older than this is a backlog incident.
pub const QUEUE_WAIT_ALERT: Duration = Duration::from_secs(5 * 60);
/// How often every node asks the database whether it answers: an outage of a few seconds (a
/// restart) falls between two cycles, and a `SELECT 1` a second costs nothing.
pub const DB_PROBE_EVERY: Duration = Duration::from_secs(1);
/// A probe not answered within this is an outage: the pool waits longer than this for a
/// connection, so without a bound a restart would look like one slow answer.
pub const DB_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The kind of the incident of a node that could not reach the database.
pub const DATABASE_UNREACHABLE: &str = "database_unreachable";
/// A cycle's database reads slower than this are a slow-database incident.
pub const DB_SLOW: Duration = Duration::from_secs(1);
/// Free space of the data directory below this share is a disk incident…
pub const DISK_MIN_FREE_PERCENT: u64 = 5;
/// …and below this many bytes, whatever the share (a small volume fills in minutes).
pub const DISK_MIN_FREE_BYTES: u64 = 512 << 20;

/// The AI providers' breaker states, `(provider, "closed" | "open" | "half-open")`.
pub type ProviderStates = Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>;
/// The provider serving a model, by the price book.
pub type ModelProvider = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What the monitor watches and how.
#[derive(Clone)]
pub struct MonitorConfig {
    pub node_id: String,
    /// The directory whose free space is watched (the SQLite file and the component cache live
    /// there); `None` watches no disk.
    pub data_dir: Option<PathBuf>,
    pub cycle: Duration,
    pub lease_ttl: Duration,
    pub node_dead_after: Duration,
    pub failure_streak: u32,
    pub trap_streak: u32,
    pub shed_after: Duration,
    pub shed_hold: Duration,
    pub providers: Option<ProviderStates>,
    pub model_provider: Option<ModelProvider>,
    /// Where incidents the monitor cannot fix by itself are escalated besides the tenant's own
    /// contact: the operator's webhook (signed with the deployment's escalation key) and email
    /// address. Empty: only tenants' contacts are told, and the dashboard shows every incident.
    pub escalate_to: Vec<Destination>,
}

impl std::fmt::Debug for MonitorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorConfig")
            .field("node_id", &self.node_id)
            .field("data_dir", &self.data_dir)
            .field("cycle", &self.cycle)
            .finish_non_exhaustive()
    }
}

impl MonitorConfig {
    pub fn new(node_id: impl Into<String>) -> MonitorConfig {
        MonitorConfig {
            node_id: node_id.into(),
            data_dir: None,
            cycle: CYCLE,
            lease_ttl: LEASE_TTL,
            node_dead_after: NODE_DEAD_AFTER,
            failure_streak: FAILURE_STREAK,
            trap_streak: TRAP_STREAK,
            shed_after: SHED_AFTER,
            shed_hold: SHED_HOLD,
            providers: None,
            model_provider: None,
            escalate_to: Vec::new(),
        }
    }
}

/// What one cycle measured and did.
#[derive(Debug, Clone, Serialize)]
pub struct Cycle {
    /// What was kept as the health snapshot.
    pub snapshot: serde_json::Value,
    /// Incidents it opened (new ones only, not those it updated).
    pub opened: Vec<i64>,
    /// Incidents it resolved.
    pub resolved: Vec<i64>,
    /// Automations it switched off, `(tenant, automation)`.
    pub paused: Vec<(String, String)>,
    /// Nodes it found dead and forgot.
    pub lost_nodes: Vec<String>,
    /// Plugin versions it quarantined (`name@hash`).
    pub quarantined: Vec<String>,
    /// Agents on their fallback model, `(tenant, agent, fallback)`.
    pub on_fallback: Vec<(String, String, String)>,
    /// How many runs load shedding holds back, `None` when it is not shedding.
    pub shedding: Option<u64>,
}

/// Free and total bytes of the volume holding `dir`.
pub fn disk_space(dir: &std::path::Path) -> std::io::Result<(u64, u64)> {
    let s = rustix::fs::statvfs(dir)?;
    Ok((s.f_bavail * s.f_frsize, s.f_blocks * s.f_frsize))
}

/// Whether `free` of `total` bytes is too little (see [`DISK_MIN_FREE_PERCENT`]).
pub fn disk_low(free: u64, total: u64) -> bool {
    free < DISK_MIN_FREE_BYTES || (total > 0 && free.saturating_mul(100) < total.saturating_mul(DISK_MIN_FREE_PERCENT))
}

#[derive(Debug, Clone)]
pub struct Monitor {
    store: Store,
    config: MonitorConfig,
}

impl Monitor {
    pub fn new(store: Store, config: MonitorConfig) -> Monitor {
        Monitor { store, config }
    }

    /// Heartbeats this node and, while it holds the lease, runs a cycle every `cycle`, until
    /// `stop` completes; then gives the lease up so another node takes over at once.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let node = &self.config.node_id;
        let mut next_cycle = Instant::now();
        // When the database stopped answering this node, while it does not.
        let mut outage: Option<i64> = None;
        loop {
            let asked_at = mc_store::now_micros();
            let answered = matches!(
                tokio::time::timeout(DB_PROBE_TIMEOUT, self.store.ping()).await,
                Ok(Ok(()))
            );
            if !answered && outage.is_none() {
                tracing::error!(node = %node, "the database does not answer");
                outage = Some(asked_at);
            }
            if answered && let Some(since) = outage.take() {
                self.record_outage(since).await;
            }
            if answered && Instant::now() >= next_cycle {
                next_cycle = Instant::now() + self.config.cycle;
                self.beat().await;
            }
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(DB_PROBE_EVERY.min(self.config.cycle)) => {}
            }
        }
        let _ = self.store.release_lease(LEASE, node).await;
        let _ = self.store.forget_node(node).await;
    }

    /// The node's heartbeat, and the cycle while this node holds the lease.
    async fn beat(&self) {
        let node = &self.config.node_id;
        if let Err(e) = self.store.node_seen(node).await {
            tracing::warn!(error = %e, "recording this node's heartbeat failed");
        }
        match self.store.hold_lease(LEASE, node, self.config.lease_ttl).await {
            Ok(true) => {
                if let Err(e) = self.cycle().await {
                    tracing::warn!(error = %e, "a monitor cycle failed; the next one tries again");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "taking the monitor lease failed"),
        }
    }

    /// Records that the database did not answer this node from `since` until now: an incident
    /// opened (and escalated: a person wants to know why it went away) and resolved at once,
    /// since it can only be written once the database is back.
    async fn record_outage(&self, since: i64) {
        let node = &self.config.node_id;
        let secs = (mc_store::now_micros() - since).max(0) as f64 / 1e6;
        let from = jiff::Timestamp::from_microsecond(since)
            .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        let summary = format!("node `{node}` could not reach the database for {secs:.1} s (from {from})");
        tracing::warn!(node = %node, seconds = secs, "the database answers again");
        let incident = NewIncident {
            tenant: PLATFORM,
            kind: DATABASE_UNREACHABLE,
            subject: node,
            severity: "critical",
            summary: &summary,
            action: Some("the node retried its writes and claimed no new work until the database answered"),
            escalate: Some(self.config.escalate_to.as_slice()),
        };
        let recorded = match self.store.open_incident(&incident).await {
            Ok(_) => {
                self.store
                    .resolve_incident(PLATFORM, DATABASE_UNREACHABLE, node, "the database answered again")
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "recording the database outage failed");
        }
    }

    /// One look at everything, with the actions it calls for. Call it only while holding the
    /// lease ([`Monitor::run`] does).
    pub async fn cycle(&self) -> Result<Cycle, StoreError> {
        let now = mc_store::now_micros();
        let since = match self.store.latest_snapshot_at().await? {
            Some(at) => at,
            None => now - FIRST_LOOK_BACK.as_micros() as i64,
        };
        let mut out = Cycle {
            snapshot: serde_json::Value::Null,
            opened: Vec::new(),
            resolved: Vec::new(),
            paused: Vec::new(),
            lost_nodes: Vec::new(),
            quarantined: Vec::new(),
            on_fallback: Vec::new(),
            shedding: None,
        };
        let escalate = Some(self.config.escalate_to.as_slice());

        let read = Instant::now();
        let queues = self.store.queue_health().await?;
        let db_latency = read.elapsed();
        // Only what is open can be resolved: one read instead of a write per condition.
        let open: HashSet<(String, String, String)> = self
            .store
            .open_incidents()
            .await?
            .into_iter()
            .map(|i| (i.tenant, i.kind, i.subject))
            .collect();
        self.condition(
            &mut out,
            &open,
            db_latency > DB_SLOW,
            &NewIncident {
                tenant: PLATFORM,
                kind: "database_slow",
                subject: "database",
                severity: "warning",
                summary: &format!(
                    "the database took {} ms to answer the monitor (more than {} ms)",
                    db_latency.as_millis(),
                    DB_SLOW.as_millis()
                ),
                action: None,
                escalate,
            },
        )
        .await?;
        for q in &queues {
            let waited = Duration::from_millis(q.oldest_wait_ms.max(0) as u64);
            self.condition(
                &mut out,
                &open,
                waited > QUEUE_WAIT_ALERT,
                &NewIncident {
                    tenant: &q.tenant,
                    kind: "queue_backlog",
                    subject: "queue",
                    severity: "warning",
                    summary: &format!(
                        "the oldest of {} waiting runs has waited {} s (more than {} s)",
                        q.available,
                        waited.as_secs(),
                        QUEUE_WAIT_ALERT.as_secs()
                    ),
                    action: None,
                    escalate,
                },
            )
            .await?;
        }

        // Nodes: a dead one is forgotten; the engine's lease recovery requeues its runs.
        let mut nodes = Vec::new();
        for (id, started, seen) in self.store.nodes().await? {
            let silent = Duration::from_micros((now - seen).max(0) as u64);
            let alive = id == self.config.node_id || silent <= self.config.node_dead_after;
            if !alive {
                self.store.forget_node(&id).await?;
                let summary = format!("node `{id}` has not been seen for {} s", silent.as_secs());
                let incident = self
                    .store
                    .resolved_incident(&NewIncident {
                        tenant: PLATFORM,
                        kind: "node_lost",
                        subject: &id,
                        severity: "warning",
                        summary: &summary,
                        action: Some("forgot the node; its runs go back to the queue as their leases lapse"),
                        // Dealt with: recorded, not escalated.
                        escalate: None,
                    })
                    .await?;
                out.resolved.push(incident);
                out.lost_nodes.push(id.clone());
            }
            nodes.push(
                json!({ "id": id, "started_at": started, "seen_ms_ago": silent.as_millis() as u64, "alive": alive }),
            );
        }

        // Providers: an open breaker is an outage the gateway works around (fallback models) but
        // cannot end. Half-open counts as down until its probe succeeds: otherwise every probe
        // of a long outage would close the incident and open a new one.
        let providers = self.config.providers.as_ref().map(|p| p()).unwrap_or_default();
        for (name, state) in &providers {
            self.condition(
                &mut out,
                &open,
                provider_down(state),
                &NewIncident {
                    tenant: PLATFORM,
                    kind: "provider_down",
                    subject: name,
                    severity: "critical",
                    summary: &format!("AI provider `{name}` is failing: its circuit breaker is open"),
                    action: Some("calls go to each agent's fallback model while the breaker is open"),
                    escalate,
                },
            )
            .await?;
        }
        self.fallbacks(&mut out, &open, &providers).await?;
        self.quarantine(&mut out, &open, since).await?;
        let oldest_wait = queues.iter().map(|q| q.oldest_wait_ms).max().unwrap_or(0);
        self.shed(&mut out, &open, oldest_wait).await?;

        let disk = match &self.config.data_dir {
            Some(dir) => match disk_space(dir) {
                Ok((free, total)) => {
                    self.condition(
                        &mut out,
                        &open,
                        disk_low(free, total),
                        &NewIncident {
                            tenant: PLATFORM,
                            kind: "disk_low",
                            subject: &dir.display().to_string(),
                            severity: "critical",
                            summary: &format!(
                                "the data directory {} has {} MiB free of {} MiB",
                                dir.display(),
                                free >> 20,
                                total >> 20
                            ),
                            action: None,
                            escalate,
                        },
                    )
                    .await?;
                    json!({ "path": dir.display().to_string(), "free_bytes": free, "total_bytes": total })
                }
                Err(e) => json!({ "path": dir.display().to_string(), "error": e.to_string() }),
            },
            None => serde_json::Value::Null,
        };

        // Automations failing run after run are switched off before they cost more.
        let failing = self
            .store
            .failing_automations(since, self.config.failure_streak)
            .await?;
        for f in &failing {
            let reason = format!(
                "its last {} runs failed{}",
                f.streak,
                f.last_error
                    .as_deref()
                    .map(|e| format!(" (latest: {})", first_line(e)))
                    .unwrap_or_default()
            );
            if self.store.pause_automation(&f.tenant, &f.automation, &reason).await? {
                let summary = format!("automation `{}` was switched off: {reason}", f.automation);
                let opened = self
                    .store
                    .open_incident(&NewIncident {
                        tenant: &f.tenant,
                        kind: AUTOMATION_PAUSED,
                        subject: &f.automation,
                        severity: "warning",
                        summary: &summary,
                        action: Some("switched the automation off; switch it on again once it is fixed"),
                        escalate,
                    })
                    .await?;
                if let Opened::New(id) = opened {
                    out.opened.push(id);
                }
                out.paused.push((f.tenant.clone(), f.automation.clone()));
            }
        }

        let open = self.store.open_incidents().await?;
        out.snapshot = json!({
            "at": now,
            "node": self.config.node_id,
            "db_latency_ms": db_latency.as_secs_f64() * 1000.0,
            "queues": queues,
            "nodes": nodes,
            "providers": providers.iter().map(|(n, s)| json!({ "name": n, "state": s })).collect::<Vec<_>>(),
            "disk": disk,
            "failing": failing,
            "quarantined": out.quarantined,
            "on_fallback": out.on_fallback.len(),
            "shed_held": out.shedding,
            "open_incidents": open.len(),
        });
        self.store
            .save_snapshot(&self.config.node_id, &out.snapshot, SNAPSHOT_KEEP)
            .await?;
        Ok(out)
    }

    /// Records each agent whose model's provider is down and that has a fallback on a provider
    /// that is not: the gateway sends its calls to the fallback while the breaker is open.
    async fn fallbacks(
        &self,
        out: &mut Cycle,
        open: &HashSet<(String, String, String)>,
        providers: &[(String, String)],
    ) -> Result<(), StoreError> {
        let Some(provider_of) = &self.config.model_provider else {
            return Ok(());
        };
        let down: HashSet<&str> = providers
            .iter()
            .filter(|(_, s)| provider_down(s))
            .map(|(p, _)| p.as_str())
            .collect();
        let any_open = open.iter().any(|(_, kind, _)| kind == MODEL_FALLBACK);
        if down.is_empty() && !any_open {
            return Ok(());
        }
        for a in self.store.agents_with_fallbacks().await? {
            let provider = provider_of(&a.model);
            let is_down = provider.as_deref().is_some_and(|p| down.contains(p));
            let fallback = a
                .fallbacks
                .iter()
                .find(|m| provider_of(m).as_deref().is_some_and(|p| !down.contains(p)));
            let holds = is_down && fallback.is_some();
            let fallback = fallback.cloned().unwrap_or_default();
            self.condition(
                out,
                open,
                holds,
                &NewIncident {
                    tenant: &a.tenant,
                    kind: MODEL_FALLBACK,
                    subject: &a.agent,
                    severity: "warning",
                    summary: &format!(
                        "agent `{}` runs on its fallback model `{fallback}` while `{}` (its model `{}`) is down",
                        a.agent,
                        provider.as_deref().unwrap_or_default(),
                        a.model
                    ),
                    action: Some("switched the agent's AI calls to its fallback model until its provider recovers"),
                    escalate: None,
                },
            )
            .await?;
            if holds {
                out.on_fallback.push((a.tenant.clone(), a.agent.clone(), fallback));
            }
        }
        Ok(())
    }

    /// Quarantines plugin versions whose latest runs all trapped, and closes the incident of one
    /// whose plugin has since run successfully (a new version; the broken one stays refused).
    async fn quarantine(
        &self,
        out: &mut Cycle,
        open: &HashSet<(String, String, String)>,
        since: i64,
    ) -> Result<(), StoreError> {
        for t in self.store.trapping_plugins(since, self.config.trap_streak).await? {
            let version = plugin_version(&t.plugin, &t.hash);
            let reason = format!(
                "its last {} runs trapped{}",
                t.streak,
                t.last_error
                    .as_deref()
                    .map(|e| format!(" (latest: {})", first_line(e)))
                    .unwrap_or_default()
            );
            if self.store.quarantine_plugin(&t.plugin, &t.hash, &reason).await? {
                let summary = format!(
                    "plugin `{}` version {} was quarantined: {reason}; tenants whose runs trapped: {}",
                    t.plugin,
                    mc_store::short_hash(&t.hash),
                    t.tenants.join(", ")
                );
                let action = format!(
                    "quarantined the version: its runs fail at once and wait as dead runs to be retried, until a new \
                     version is installed or an operator lifts it (`missionctl plugin release {}`)",
                    t.plugin
                );
                let opened = self
                    .store
                    .open_incident(&NewIncident {
                        tenant: PLATFORM,
                        kind: PLUGIN_QUARANTINED,
                        subject: &version,
                        severity: "critical",
                        summary: &summary,
                        action: Some(&action),
                        escalate: Some(self.config.escalate_to.as_slice()),
                    })
                    .await?;
                tracing::warn!(plugin = %t.plugin, version = %version, "plugin version quarantined");
                if let Opened::New(id) = opened {
                    out.opened.push(id);
                }
                out.quarantined.push(version);
            }
        }
        for q in self.store.quarantined().await? {
            let version = plugin_version(&q.plugin, &q.hash);
            if open.contains(&(PLATFORM.to_string(), PLUGIN_QUARANTINED.to_string(), version.clone()))
                && self.store.plugin_succeeded_since(&q.plugin, q.since).await?
                && let Some(id) = self
                    .store
                    .resolve_incident(
                        PLATFORM,
                        PLUGIN_QUARANTINED,
                        &version,
                        "a newer version of the plugin runs successfully; the quarantined version stays refused",
                    )
                    .await?
            {
                out.resolved.push(id);
            }
        }
        Ok(())
    }

    /// Sheds load: while the oldest waiting run is older than `shed_after`, holds back the
    /// lowest priority still waiting (one level more each cycle it stays so, never the highest
    /// waiting), and once the oldest is back under half of it, lets every held run go.
    /// `oldest_ms` is the oldest wait of every tenant's queue, as the cycle measured it.
    async fn shed(
        &self,
        out: &mut Cycle,
        open: &HashSet<(String, String, String)>,
        oldest_ms: i64,
    ) -> Result<(), StoreError> {
        let oldest = Duration::from_millis(oldest_ms.max(0) as u64);
        let shedding = open.contains(&(PLATFORM.to_string(), LOAD_SHED.to_string(), "queue".to_string()));
        // The priority levels are read only when the queue is over the bound.
        let levels = if oldest > self.config.shed_after {
            self.store.waiting_priorities().await?
        } else {
            Vec::new()
        };
        if levels.len() > 1 {
            // The lowest level still waiting goes; held levels no longer wait, so each cycle that
            // is still over the bound reaches one level higher.
            let (level, _) = levels[0];
            let until = mc_store::now_micros() + self.config.shed_hold.as_micros() as i64;
            let shed = self.store.shed(level, until).await?;
            let summary = format!(
                "the oldest waiting run had waited {} s (bound {} s): {} runs of priority {level} or lower are held back",
                oldest.as_secs(),
                self.config.shed_after.as_secs(),
                shed.holding
            );
            let action = format!(
                "holding back runs of priority {level} and lower until the queue catches up; they keep their place"
            );
            let opened = self
                .store
                .open_incident(&NewIncident {
                    tenant: PLATFORM,
                    kind: LOAD_SHED,
                    subject: "queue",
                    severity: "warning",
                    summary: &summary,
                    action: Some(&action),
                    escalate: Some(self.config.escalate_to.as_slice()),
                })
                .await?;
            if let Opened::New(id) = opened {
                tracing::warn!(priority = level, held = shed.holding, "shedding load");
                out.opened.push(id);
            }
            out.shedding = Some(shed.holding);
        } else if shedding {
            if oldest * 2 < self.config.shed_after {
                let freed = self.store.end_shedding().await?;
                if let Some(id) = self
                    .store
                    .resolve_incident(
                        PLATFORM,
                        LOAD_SHED,
                        "queue",
                        &format!("the queue caught up; let {freed} held-back runs go in their old order"),
                    )
                    .await?
                {
                    out.resolved.push(id);
                }
            } else {
                // Between the bounds: keep holding what is held, hold nothing more.
                let until = mc_store::now_micros() + self.config.shed_hold.as_micros() as i64;
                let shed = self.store.shed(i32::MIN, until).await?;
                out.shedding = Some(shed.holding);
            }
        }
        Ok(())
    }

    /// Opens `incident` while `holds`, resolves it once it no longer does.
    async fn condition(
        &self,
        out: &mut Cycle,
        open: &HashSet<(String, String, String)>,
        holds: bool,
        incident: &NewIncident<'_>,
    ) -> Result<(), StoreError> {
        let key = (
            incident.tenant.to_string(),
            incident.kind.to_string(),
            incident.subject.to_string(),
        );
        if holds {
            if let Opened::New(id) = self.store.open_incident(incident).await? {
                tracing::warn!(
                    kind = incident.kind,
                    subject = incident.subject,
                    tenant = incident.tenant,
                    summary = incident.summary,
                    "incident opened"
                );
                out.opened.push(id);
            }
        } else if open.contains(&key)
            && let Some(id) = self
                .store
                .resolve_incident(incident.tenant, incident.kind, incident.subject, "the condition ended")
                .await?
        {
            tracing::info!(kind = incident.kind, subject = incident.subject, "incident resolved");
            out.resolved.push(id);
        }
        Ok(())
    }
}

/// Whether a breaker in `state` means its provider is down: not closed, so open or half-open
/// (a probe has yet to show it recovered).
fn provider_down(state: &str) -> bool {
    state != "closed"
}

/// The kind of the incident of an agent on its fallback model.
pub const MODEL_FALLBACK: &str = "model_fallback";
/// The kind of the incident of load being shed.
pub const LOAD_SHED: &str = "load_shed";

/// The first line of an error, for a one-line reason.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
