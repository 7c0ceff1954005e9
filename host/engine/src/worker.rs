//! Workers: claim fair batches, run each job in the plugin runtime under the agent's grants, record
//! the outcome against the lease; and the lease keeper that heartbeats running jobs, stops the ones
//! cancelled elsewhere, and recovers the jobs of dead nodes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use mc_egress::AllowList;
use mc_runtime::{CancelToken, Grants, Limits, RunContext, RunFailure, RunRequest, Services};
use mc_store::{AgentRow, ClaimedJob, Finished};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::{Engine, EngineError, lock};

/// How often a node looks for jobs whose lease lapsed (their node died): a dead node's jobs wait
/// for their lease plus at most this. The look is one indexed read while nothing lapsed.
pub const RECOVER_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// How often a node folds the store's running totals (PostgreSQL appends one delta per statement
/// that changes them; see `mc_store::Store::fold_totals`): often enough that a dashboard read
/// sums a few hundred rows, seldom enough to cost nothing beside the queue.
pub const FOLD_TOTALS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Most results one commit records.
const RECORD_BATCH: usize = 400;
/// Jobs a node holds per worker slot, counting those whose run has ended and whose result waits
/// for the recorder: a slot is free again when its run ends, so the runs go on while results are
/// committed, and up to this many times the slots' jobs are claimed and unrecorded at once. When
/// recording falls behind, claiming stops at this bound instead of piling up finished runs (each
/// holds its output and its lease until committed).
const HELD_PER_SLOT: usize = 3;
/// Recorders committing results side by side on PostgreSQL, each its own batch in its own
/// transaction: with one, the serving loop waited on its commits (busy 97% of a drain) while a
/// core sat idle. On SQLite one: it has one writer.
const RECORDERS_POSTGRES: usize = 2;
/// While the queue is deep, the serving loop claims once this fraction (1/n) of its slots is free.
const SATURATED_CLAIM_SHARE: usize = 4;
/// First pause after a claim came back empty; it doubles with each further empty claim, up to the
/// configured poll interval.
const EMPTY_CLAIM_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);
/// How often the serving loop moves due retries to the queue.
const STAGE_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// First pause before recording a result again after a database error; doubles up to
/// [`RECORD_RETRY_MAX`]. Recording is retried for up to a lease: a database that is away for a few
/// seconds must not turn finished runs into reruns.
const RECORD_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(50);
const RECORD_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs `op` until it succeeds or `within` has passed, pausing with exponential backoff between
/// attempts. Returns the last error.
async fn retrying<T, F, Fut>(within: std::time::Duration, what: &str, mut op: F) -> Result<T, EngineError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, mc_store::StoreError>>,
{
    let started = std::time::Instant::now();
    let mut pause = RECORD_RETRY_FIRST;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if started.elapsed() + pause < within => {
                tracing::warn!(error = %e, "{what} failed; retrying in {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RECORD_RETRY_MAX);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// What every run of one agent in a batch shares, worked out once for the batch: its grants
/// (parsed host patterns, opened secrets), or why its runs cannot run.
enum Prepared {
    Ready(Arc<Grants>),
    /// The agent's grants cannot be honoured: its runs fail with this.
    Refused(String),
    /// The agent no longer exists.
    Gone,
}

/// A batch's agents by (tenant, agent).
type Batch = HashMap<(String, String), Arc<Prepared>>;

/// A success on its way to the recorder, and who to tell once it is recorded.
type Recorded = (Finished, tokio::sync::oneshot::Sender<()>);

/// How one run ended, before it is recorded.
enum Execution {
    Succeeded {
        output: String,
        logs: Option<String>,
        fuel: u64,
    },
    Failed {
        kind: String,
        error: String,
        retryable: bool,
        logs: Option<String>,
        fuel: u64,
        /// The version of the plugin that ran (or was refused), when it was loaded.
        plugin_hash: Option<String>,
    },
}

impl Execution {
    /// A failure before the plugin ran (nothing logged).
    fn refused(kind: &str, error: String) -> Execution {
        Execution::Failed {
            kind: kind.into(),
            error,
            retryable: false,
            logs: None,
            fuel: 0,
            plugin_hash: None,
        }
    }
}

/// A run's log lines as the store keeps them: a JSON array, or nothing when there are none.
fn logs_json(logs: &[mc_runtime::LogLine]) -> Option<String> {
    (!logs.is_empty()).then(|| serde_json::to_string(logs).unwrap_or_default())
}

/// The bucket name of a tenant's key-value state.
fn bucket(tenant: &str) -> String {
    format!("tenant:{tenant}")
}

impl Engine {
    fn plugin(&self, name: &str) -> Result<Arc<mc_runtime::Plugin>, String> {
        self.plugins.get(&self.runtime, name)
    }

    /// Runs one claimed job with what its agent's runs share (worked out here when `None`) and
    /// returns how it ended, without recording it. Everything logged meanwhile carries the run's
    /// tenant, automation, agent, id and attempt (a `run` span), and the end of the run is logged
    /// at `info`.
    async fn execute(
        self: &Arc<Self>,
        job: &ClaimedJob,
        prepared: Option<Arc<Prepared>>,
    ) -> Result<Execution, EngineError> {
        let span = tracing::info_span!(
            "run",
            tenant = %job.tenant,
            automation = job.automation.as_deref().unwrap_or(""),
            agent = %job.agent,
            run = job.id,
            attempt = job.attempt,
        );
        async move {
            let started = std::time::Instant::now();
            let ended = self.run_job(job, prepared).await;
            let ms = started.elapsed().as_millis() as u64;
            match &ended {
                Ok(Execution::Succeeded { fuel, .. }) => tracing::info!(ms, fuel, "run succeeded"),
                Ok(Execution::Failed { kind, error, .. }) => {
                    tracing::info!(ms, kind = %kind, error = %error, "run failed")
                }
                Err(e) => tracing::warn!(ms, error = %e, "run could not be executed"),
            }
            ended
        }
        .instrument(span)
        .await
    }

    async fn run_job(
        self: &Arc<Self>,
        job: &ClaimedJob,
        prepared: Option<Arc<Prepared>>,
    ) -> Result<Execution, EngineError> {
        let plugin = match self.plugin(&job.plugin) {
            Ok(p) => p,
            Err(e) => return Ok(Execution::refused("load", e)),
        };
        if let Some(reason) = self
            .plugins
            .quarantined(&self.store, &job.plugin, plugin.hash())
            .await?
        {
            let error = format!(
                "plugin `{}` version {} is quarantined: {reason}. Its runs fail at once until a new version is \
                 installed or an operator lifts the quarantine (`missionctl plugin release {}`); retry this run then",
                job.plugin,
                mc_store::short_hash(plugin.hash()),
                job.plugin
            );
            return Ok(Execution::Failed {
                kind: mc_store::QUARANTINED.into(),
                error,
                retryable: false,
                logs: None,
                fuel: 0,
                plugin_hash: Some(plugin.hash().to_string()),
            });
        }
        let prepared = match prepared {
            Some(p) => p,
            None => self.prepare(&job.tenant, &job.agent).await?,
        };
        let grants = match &*prepared {
            Prepared::Ready(grants) => grants.clone(),
            Prepared::Refused(error) => return Ok(Execution::refused("config", error.clone())),
            Prepared::Gone => {
                let error = format!("agent `{}` no longer exists in tenant `{}`", job.agent, job.tenant);
                return Ok(Execution::refused("config", error));
            }
        };
        let cancel = CancelToken::new();
        lock(&self.running).insert(job.id, cancel.clone());
        let request = RunRequest {
            input: job.input.clone(),
            context: RunContext {
                tenant: job.tenant.clone(),
                agent: job.agent.clone(),
                automation: job.automation.clone(),
                run_id: job.id.to_string(),
                root_run_id: (job.root != job.id).then(|| job.root.to_string()),
                attempt: job.attempt,
                trigger: job.trigger.clone(),
            },
            grants,
            limits: Limits::default(),
            services: Services {
                ai: self.ai.clone(),
                kv: self.kv.clone(),
                delegator: Some(Arc::new(crate::delegate::EngineHandle(self.clone()))),
                registries: Some(self.registries.clone()),
                approvals: Some(self.approvals.clone()),
            },
            cancel: Some(cancel),
        };
        // The job stays in `running` (heartbeated) until its outcome is recorded: the caller
        // removes it.
        // Boxed: the run's future is most of a job task's size, and tokio copies a task's future
        // when it is spawned and its output when it is read.
        let outcome = Box::pin(self.runtime.run(&plugin, request)).await;
        Ok(match outcome {
            Ok(o) => {
                let logs = logs_json(&o.logs);
                let fuel = o.usage.fuel_consumed;
                match o.result {
                    Ok(output) => Execution::Succeeded { output, logs, fuel },
                    Err(f) => Execution::Failed {
                        kind: f.kind().into(),
                        error: f.to_string(),
                        retryable: f.retryable(),
                        logs,
                        fuel,
                        plugin_hash: Some(plugin.hash().to_string()),
                    },
                }
            }
            Err(limit) => Execution::refused("limits", limit.to_string()),
        })
    }

    /// What a run of `agent` is granted: its model, its tenant's key-value bucket, its
    /// parameters, the hosts it names (an IP literal of a private, loopback or metadata address
    /// only if this deployment configured it as a test host) and the secrets it names, opened.
    /// `Err` explains a grant that cannot be honoured (the run fails with it).
    async fn grants(&self, tenant: &str, agent: &AgentRow) -> Result<Result<Grants, String>, EngineError> {
        let mut patterns = Vec::with_capacity(agent.hosts.len());
        for h in &agent.hosts {
            let pattern = match mc_egress::HostPattern::parse(h) {
                Ok(p) => p,
                Err(e) => return Ok(Err(format!("agent `{}`: {e}", agent.name))),
            };
            if let Some((ip, class)) = pattern.forbidden_literal()
                && !self.config.test_hosts.iter().any(|t| t == h)
            {
                return Ok(Err(format!(
                    "agent `{}` is granted {h}, but {ip} is a {class} address and this deployment does not allow it as a test host",
                    agent.name
                )));
            }
            patterns.push(h.as_str());
        }
        let http = match AllowList::parse(&patterns) {
            Ok(list) => list,
            Err(e) => return Ok(Err(format!("agent `{}`: {e}", agent.name))),
        };
        let mut config: BTreeMap<String, String> = agent.config.clone().into_iter().collect();
        if !agent.secrets.is_empty() {
            let Some(sealer) = &self.config.sealer else {
                return Ok(Err(format!(
                    "agent `{}` is granted secrets, but this node has no secret key",
                    agent.name
                )));
            };
            let values = self.store.tenant(tenant).secret_values(sealer, &agent.secrets).await?;
            for name in &agent.secrets {
                let Some(value) = values.get(name) else {
                    return Ok(Err(format!(
                        "agent `{}` is granted the secret `{name}`, which tenant `{tenant}` does not have",
                        agent.name
                    )));
                };
                config.insert(format!("{}{name}", mc_config::SECRET_CONFIG_PREFIX), value.clone());
            }
        }
        Ok(Ok(Grants {
            http,
            // The agent's model first (the default), then its fallbacks in order.
            models: std::iter::once(agent.model.clone().unwrap_or_else(|| mc_ai::OFFLINE_MODEL.into()))
                .chain(agent.fallbacks.iter().cloned())
                .collect(),
            kv_bucket: Some(bucket(tenant)),
            config,
            registries: agent
                .registries
                .iter()
                .map(|(name, access)| (name.clone(), *access == mc_config::RegistryAccess::Write))
                .collect(),
        }))
    }

    /// What the runs of `agent` need, read and worked out once.
    async fn prepare(&self, tenant: &str, agent: &str) -> Result<Arc<Prepared>, EngineError> {
        let Some(row) = self.store.tenant(tenant).agent(agent).await? else {
            return Ok(Arc::new(Prepared::Gone));
        };
        Ok(Arc::new(match self.grants(tenant, &row).await? {
            Ok(grants) => Prepared::Ready(Arc::new(grants)),
            Err(error) => Prepared::Refused(error),
        }))
    }

    /// Each agent a batch of jobs runs as, prepared once for all its runs.
    async fn batch(&self, jobs: &[ClaimedJob]) -> Result<Batch, EngineError> {
        let mut batch: Batch = HashMap::new();
        for j in jobs {
            if let std::collections::hash_map::Entry::Vacant(slot) = batch.entry((j.tenant.clone(), j.agent.clone())) {
                slot.insert(self.prepare(&j.tenant, &j.agent).await?);
            }
        }
        Ok(batch)
    }

    /// Records a failed execution against the job's lease.
    async fn record_failure(&self, id: i64, failure: Execution) -> Result<(), EngineError> {
        let Execution::Failed {
            kind,
            error,
            retryable,
            logs,
            fuel,
            plugin_hash,
        } = failure
        else {
            return Ok(());
        };
        let node = &self.config.node_id;
        if kind == RunFailure::AWAITING_APPROVAL {
            // Not a failure: the run waits for a person, holding nothing, and runs again after.
            retrying(self.config.lease, "suspending a run", || {
                self.store.suspend(node, id, logs.as_deref(), fuel)
            })
            .await?;
            return Ok(());
        }
        let attempt = mc_store::FailedAttempt {
            kind: &kind,
            error: &error,
            retryable,
            logs: logs.as_deref(),
            fuel,
            plugin_hash: plugin_hash.as_deref(),
        };
        let failed = retrying(self.config.lease, "recording a failure", || {
            self.store.fail(node, id, &attempt)
        })
        .await?;
        if failed.is_none() {
            tracing::info!(
                job = id,
                "failure discarded: the job was cancelled or recovered meanwhile"
            );
        }
        self.finished.notify_waiters();
        Ok(())
    }

    /// Stages due retries, claims up to `max` jobs, runs them concurrently and records their
    /// results together: the batch's agents are read once and its successes committed in one
    /// transaction. Returns how many ran.
    pub async fn work_once(self: &Arc<Self>, max: usize) -> Result<usize, EngineError> {
        self.store.stage_due(mc_store::now_micros()).await?;
        let jobs = self
            .store
            .claim_limited(
                &self.config.node_id,
                max,
                self.config.lease,
                self.config.tenant_max_running,
            )
            .await?;
        let n = jobs.len();
        let batch = self.batch(&jobs).await?;
        let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
        let mut set = JoinSet::new();
        for job in jobs {
            let engine = self.clone();
            let prepared = batch.get(&(job.tenant.clone(), job.agent.clone())).cloned();
            set.spawn(async move {
                let ended = engine.execute(&job, prepared).await;
                (job.id, ended)
            });
        }
        let mut succeeded = Vec::with_capacity(n);
        while let Some(r) = set.join_next().await {
            let Ok((id, ended)) = r else { continue };
            match ended {
                Ok(Execution::Succeeded { output, logs, fuel }) => succeeded.push(Finished { id, output, logs, fuel }),
                Ok(failed) => self.record_failure(id, failed).await?,
                Err(e) => tracing::warn!(error = %e, job = id, "running a job failed; its lease will return it"),
            }
        }
        let recorded = self.store.complete_many(&self.config.node_id, &succeeded).await;
        self.finished.notify_waiters();
        let mut running = lock(&self.running);
        for id in ids {
            running.remove(&id);
        }
        drop(running);
        recorded?;
        Ok(n)
    }

    pub(crate) async fn work_loop(self: Arc<Self>, stop: CancelToken) {
        let mut set: JoinSet<Result<(), EngineError>> = JoinSet::new();
        // Successes go to the recorders, each committing whatever has accumulated in one
        // transaction: under load a commit covers many jobs, when idle each is recorded at once.
        let (done, results) = tokio::sync::mpsc::unbounded_channel::<Recorded>();
        let results = Arc::new(tokio::sync::Mutex::new(results));
        let recorders = match self.store.backend() {
            mc_store::Backend::Postgres => RECORDERS_POSTGRES,
            mc_store::Backend::Sqlite => 1,
        };
        let recorders: Vec<_> = (0..recorders)
            .map(|_| tokio::spawn(self.clone().record_loop(results.clone())))
            .collect();
        // Runs under way (a slot each); the job tasks in `set` also include the runs that ended
        // and wait for their outcome to be recorded.
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let run_ended = Arc::new(tokio::sync::Notify::new());
        let mut staged_at: Option<std::time::Instant> = None;
        let mut saturated = false;
        let mut empty_claims: u32 = 0;
        while !stop.is_cancelled() {
            while let Some(r) = set.try_join_next() {
                if let Ok(Err(e)) = r {
                    tracing::warn!(error = %e, "recording a job's outcome failed");
                }
            }
            // Runs waiting for their children hold no slot: the children may need it.
            let parked = self.parked.load(std::sync::atomic::Ordering::SeqCst);
            let busy = running.load(std::sync::atomic::Ordering::SeqCst).saturating_sub(parked);
            let held = set.len().saturating_sub(parked);
            let free = self
                .config
                .workers
                .saturating_sub(busy)
                .min((self.config.workers * HELD_PER_SLOT).saturating_sub(held));
            // While the queue is deep (the last claim got all it asked for), wait until a share of
            // the slots is free and claim them together: one claim per job costs a transaction
            // per job. Otherwise every free slot is filled at once.
            let threshold = if saturated {
                (self.config.workers / SATURATED_CLAIM_SHARE).max(1)
            } else {
                1
            };
            let claimed = if free >= threshold {
                // Retries become due on their own clock; staging them is a write, so not on every
                // turn of this loop.
                if staged_at.is_none_or(|t| t.elapsed() >= STAGE_EVERY) {
                    let _ = self.store.stage_due(mc_store::now_micros()).await;
                    staged_at = Some(std::time::Instant::now());
                }
                match self
                    .store
                    .claim_limited(
                        &self.config.node_id,
                        free,
                        self.config.lease,
                        self.config.tenant_max_running,
                    )
                    .await
                {
                    Ok(jobs) => {
                        saturated = jobs.len() == free;
                        jobs
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming failed; retrying");
                        Vec::new()
                    }
                }
            } else {
                Vec::new()
            };
            let idle = claimed.is_empty();
            // An empty claim while slots were free: look again soon, then less and less often up
            // to `poll`. (On PostgreSQL a claim skips a tenant whose counters another
            // transaction holds for a moment, so an empty answer does not mean an empty queue.)
            let pause = if free < threshold {
                self.config.poll
            } else if idle {
                empty_claims = (empty_claims + 1).min(16);
                (EMPTY_CLAIM_PAUSE * (1 << empty_claims)).min(self.config.poll)
            } else {
                empty_claims = 0;
                self.config.poll
            };
            let batch = match self.batch(&claimed).await {
                Ok(batch) => batch,
                Err(e) => {
                    // The jobs stay claimed; each looks its agent up itself.
                    tracing::warn!(error = %e, "reading the batch's agents failed");
                    HashMap::new()
                }
            };
            for job in claimed {
                let engine = self.clone();
                let done = done.clone();
                let prepared = batch.get(&(job.tenant.clone(), job.agent.clone())).cloned();
                let (running, run_ended) = (running.clone(), run_ended.clone());
                running.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let task = async move {
                    let execution = engine.execute(&job, prepared).await;
                    // The slot is free for the next run; the job stays held (its lease, its
                    // task) until its outcome is recorded (see `HELD_PER_SLOT`).
                    running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    run_ended.notify_one();
                    let ended = match execution {
                        Ok(Execution::Succeeded { output, logs, fuel }) => {
                            let (ack, recorded) = tokio::sync::oneshot::channel();
                            // The recorder outlives every job task (it ends when all senders are gone).
                            let _ = done.send((
                                Finished {
                                    id: job.id,
                                    output,
                                    logs,
                                    fuel,
                                },
                                ack,
                            ));
                            let _ = recorded.await;
                            Ok(())
                        }
                        Ok(failed) => engine.record_failure(job.id, failed).await,
                        Err(e) => Err(e),
                    };
                    lock(&engine.running).remove(&job.id);
                    ended
                };
                // Boxed: the task's future is a few KiB (the store's futures within it), and tokio
                // copies a task's future when it is spawned and the task's stage when its output
                // is read (`perf`: 2.8 KiB, copied three times a run, a thirtieth of this process's CPU).
                set.spawn(Box::pin(task));
            }
            if idle {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = self.wake.notified() => {}
                    _ = set.join_next(), if !set.is_empty() => {}
                    _ = run_ended.notified() => {}
                    _ = stop.cancelled() => {}
                }
            }
        }
        // Shutdown: let running jobs finish within the grace period, then stop them and hand
        // their jobs back to the queue for another node.
        let drained = tokio::time::timeout(self.config.grace, async { while set.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            let ids: Vec<i64> = lock(&self.running).keys().copied().collect();
            for token in lock(&self.running).values() {
                token.cancel();
            }
            set.abort_all();
            match self.store.release(&self.config.node_id, &ids).await {
                Ok(n) => tracing::info!(released = n, "released unfinished jobs to other nodes"),
                Err(e) => tracing::warn!(error = %e, "releasing jobs failed; their leases will expire"),
            }
        }
        drop(done);
        for recorder in recorders {
            let _ = recorder.await;
        }
    }

    /// Records successes as they arrive, each commit covering everything that has accumulated.
    /// Recorders share `results`: one takes a batch while another commits its own.
    async fn record_loop(
        self: Arc<Self>,
        results: Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Recorded>>>,
    ) {
        loop {
            let mut receiver = results.lock().await;
            let Some(first) = receiver.recv().await else { break };
            let mut pending = vec![first];
            while pending.len() < RECORD_BATCH {
                match receiver.try_recv() {
                    Ok(r) => pending.push(r),
                    Err(_) => break,
                }
            }
            drop(receiver);
            let (batch, acks): (Vec<Finished>, Vec<_>) = pending.into_iter().unzip();
            let node = &self.config.node_id;
            let recorded = retrying(self.config.lease, "recording results", || {
                self.store.complete_many(node, &batch)
            })
            .await;
            if let Err(e) = recorded {
                // The jobs stay running; their leases expire and they run again elsewhere.
                tracing::warn!(error = %e, jobs = batch.len(), "recording results failed");
            }
            self.finished.notify_waiters();
            for ack in acks {
                let _ = ack.send(());
            }
        }
    }

    /// Heartbeats this node's running jobs every third of a lease, stops those it no longer holds
    /// (cancelled, or recovered after a stall), and every [`RECOVER_EVERY`] recovers jobs whose
    /// leases expired anywhere, until `stop`.
    pub(crate) async fn lease_loop(self: Arc<Self>, stop: CancelToken) {
        let beat_every = self.config.lease / 3;
        let mut last_beat = std::time::Instant::now();
        let mut last_fold = std::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(beat_every.min(RECOVER_EVERY)) => {}
                _ = stop.cancelled() => return,
            }
            if let Err(e) = self.store.recover_expired(mc_store::now_micros()).await {
                tracing::warn!(error = %e, "lease recovery failed");
            }
            if last_beat.elapsed() < beat_every {
                continue;
            }
            last_beat = std::time::Instant::now();
            let ids: Vec<i64> = lock(&self.running).keys().copied().collect();
            match self
                .store
                .heartbeat(&self.config.node_id, &ids, self.config.lease)
                .await
            {
                Ok(held) => {
                    for id in ids.iter().filter(|id| !held.contains(id)) {
                        if let Some(token) = lock(&self.running).get(id) {
                            tracing::info!(job = id, "job no longer held by this node: stopping it");
                            token.cancel();
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
            }
            // Budget held by AI calls of a node that died mid-call goes back to its tenant.
            match self.store.release_expired_reservations(mc_store::now_micros()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(released = n, "released abandoned budget reservations"),
                Err(e) => tracing::warn!(error = %e, "releasing abandoned reservations failed"),
            }
            if last_fold.elapsed() >= FOLD_TOTALS_EVERY {
                last_fold = std::time::Instant::now();
                if let Err(e) = self.store.fold_totals().await {
                    tracing::warn!(error = %e, "folding the running totals failed");
                }
            }
        }
    }
}
