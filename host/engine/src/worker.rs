//! Workers: claim fair batches, run each job in the plugin runtime under the agent's grants, record
//! the outcome against the lease; and the lease keeper that heartbeats running jobs, stops the ones
//! cancelled elsewhere, and recovers the jobs of dead nodes.

use std::collections::BTreeMap;
use std::sync::Arc;

use mc_egress::AllowList;
use mc_runtime::{CancelToken, Grants, Limits, RunContext, RunRequest, Services};
use mc_store::ClaimedJob;
use tokio::task::JoinSet;

use crate::{Engine, EngineError, lock};

/// The bucket name of a tenant's key-value state.
fn bucket(tenant: &str) -> String {
    format!("tenant:{tenant}")
}

impl Engine {
    fn plugin(&self, name: &str) -> Result<Arc<mc_runtime::Plugin>, String> {
        if let Some(p) = lock(&self.plugins).get(name) {
            return Ok(p.clone());
        }
        let path = self.config.plugin_dir.join(format!("{}.wasm", name.replace('-', "_")));
        let plugin = self.runtime.load_file(&path).map_err(|e| e.to_string())?;
        lock(&self.plugins).insert(name.to_string(), plugin.clone());
        Ok(plugin)
    }

    /// Runs one claimed job and records its outcome.
    async fn run_job(&self, job: ClaimedJob) -> Result<(), EngineError> {
        let node = &self.config.node_id;
        let plugin = match self.plugin(&job.plugin) {
            Ok(p) => p,
            Err(e) => {
                self.store.fail(node, job.id, "load", &e, false).await?;
                return Ok(());
            }
        };
        let agent = self.store.tenant(&job.tenant).agent(&job.agent).await?;
        let Some(agent) = agent else {
            let msg = format!("agent `{}` no longer exists in tenant `{}`", job.agent, job.tenant);
            self.store.fail(node, job.id, "config", &msg, false).await?;
            return Ok(());
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
                attempt: job.attempt,
                trigger: job.trigger.clone(),
            },
            grants: Arc::new(Grants {
                http: AllowList::deny_all(),
                models: vec![agent.model.clone().unwrap_or_else(|| mc_ai::OFFLINE_MODEL.into())],
                kv_bucket: Some(bucket(&job.tenant)),
                config: agent.config.clone().into_iter().collect::<BTreeMap<_, _>>(),
            }),
            limits: Limits::default(),
            services: Services {
                ai: self.ai.clone(),
                kv: self.kv.clone(),
            },
            cancel: Some(cancel),
        };
        let outcome = self.runtime.run(&plugin, request).await;
        lock(&self.running).remove(&job.id);
        match outcome {
            Ok(o) => match o.result {
                Ok(output) => {
                    if !self.store.complete(node, job.id, &output).await? {
                        tracing::info!(
                            job = job.id,
                            "result discarded: the job was cancelled or recovered meanwhile"
                        );
                    }
                }
                Err(f) => {
                    self.store
                        .fail(node, job.id, f.kind(), &f.to_string(), f.retryable())
                        .await?;
                }
            },
            Err(limit) => {
                self.store
                    .fail(node, job.id, "limits", &limit.to_string(), false)
                    .await?;
            }
        }
        Ok(())
    }

    /// Stages due retries, claims up to `max` jobs and runs them to completion. Returns how many
    /// ran.
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
        let mut set = JoinSet::new();
        for job in jobs {
            let engine = self.clone();
            set.spawn(async move { engine.run_job(job).await });
        }
        while let Some(r) = set.join_next().await {
            if let Ok(Err(e)) = r {
                tracing::warn!(error = %e, "recording a job's outcome failed");
            }
        }
        Ok(n)
    }

    pub(crate) async fn work_loop(self: Arc<Self>, stop: CancelToken) {
        let mut set: JoinSet<Result<(), EngineError>> = JoinSet::new();
        while !stop.is_cancelled() {
            while let Some(r) = set.try_join_next() {
                if let Ok(Err(e)) = r {
                    tracing::warn!(error = %e, "recording a job's outcome failed");
                }
            }
            let free = self.config.workers.saturating_sub(set.len());
            let claimed = if free > 0 {
                let _ = self.store.stage_due(mc_store::now_micros()).await;
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
                    Ok(jobs) => jobs,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming failed; retrying");
                        Vec::new()
                    }
                }
            } else {
                Vec::new()
            };
            let idle = claimed.is_empty();
            for job in claimed {
                let engine = self.clone();
                set.spawn(async move { engine.run_job(job).await });
            }
            if idle {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.poll) => {}
                    _ = set.join_next(), if !set.is_empty() => {}
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
    }

    /// Heartbeats this node's running jobs every third of a lease, stops those it no longer holds
    /// (cancelled, or recovered after a stall), and recovers jobs whose leases expired anywhere.
    pub(crate) async fn lease_loop(self: Arc<Self>, stop: CancelToken) {
        let every = self.config.lease / 3;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.cancelled() => {}
            }
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
            if let Err(e) = self.store.recover_expired(mc_store::now_micros()).await {
                tracing::warn!(error = %e, "lease recovery failed");
            }
        }
    }
}
