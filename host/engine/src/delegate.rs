//! Delegation, the engine's side of the `agents` import: a run hands tasks to agents of its
//! tenant's team; each becomes a child run in the queue (its own fuel, deadline and cost record),
//! and the parent waits for them without holding a worker slot.
//!
//! Who may delegate to whom is the team's shape: an agent may hand tasks to those reporting to it
//! and to the agents its configuration grants (`delegates_to`). The engine bounds every tree: its
//! depth, the tasks one run may hand out, cycles (an agent already above the run), and the
//! tenant's per-run budget, which covers the whole tree. A child's idempotency key is its parent
//! and the task's number in the parent's run, so a retried parent finds the children its earlier
//! attempt started instead of starting them twice.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mc_runtime::{Delegation, DelegationError, Delegator};
use mc_store::{AgentRow, ChildState, Enqueued, NewJob, ParentRun, TenantScope};

use crate::{DEFAULT_MAX_ATTEMPTS, Engine};

/// Deepest a run tree may grow (the top run is depth 0): a director, its specialists, and their
/// helpers two levels further. Deeper trees are almost always loops that differ in their input.
pub const MAX_DEPTH: u32 = 4;
/// Most tasks one run may hand out over its life (all its attempts together).
pub const MAX_FANOUT: u32 = 16;
/// How much a child run's priority exceeds its parent's: the parent already holds an instance and
/// a deadline while it waits, so its children go ahead of fresh work of the same priority.
pub const CHILD_PRIORITY_BOOST: i32 = 10;
/// How often a waiting parent looks at its children when no local completion woke it (children
/// that run on other nodes).
const CHILD_POLL: Duration = Duration::from_millis(250);
/// Pause after a database error while waiting for children.
const WAIT_RETRY: Duration = Duration::from_millis(200);

/// Cancels the children that have not finished when the waiting parent goes away (its deadline
/// passed, it was cancelled, its node shut down): a child nobody waits for must not run on.
struct Orphans {
    engine: Arc<Engine>,
    tenant: String,
    ids: Vec<i64>,
    armed: bool,
}

impl Drop for Orphans {
    fn drop(&mut self) {
        if !self.armed || self.ids.is_empty() {
            return;
        }
        let engine = self.engine.clone();
        let tenant = std::mem::take(&mut self.tenant);
        let ids = std::mem::take(&mut self.ids);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                for id in ids {
                    if let Err(e) = engine.store.cancel(&tenant, id).await {
                        tracing::warn!(error = %e, job = id, "cancelling an orphaned child run failed");
                    }
                }
            });
        }
    }
}

/// Gives the parent's worker slot back while it waits, and takes it again after.
struct Parked<'a>(&'a Engine);

impl<'a> Parked<'a> {
    fn new(engine: &'a Engine) -> Parked<'a> {
        engine.parked.fetch_add(1, Ordering::SeqCst);
        // The freed slot may be what a child needs: let the workers claim now.
        engine.wake.notify_one();
        Parked(engine)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.parked.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The delegating run as every task of one delegation is checked against it.
struct Asker<'a> {
    tenant: &'a str,
    parent: &'a ParentRun,
    team: &'a [AgentRow],
    /// Whom it may delegate to.
    allowed: Vec<String>,
    /// The agents from the top of its tree down to its own.
    chain: Vec<String>,
    /// What its tree spent and holds, and the per-run budget, if the tenant has one.
    tree_spend: Option<(u64, u64)>,
}

/// What one task became before waiting: refused, or a child run.
enum Planned {
    Refused(DelegationError),
    Child(usize),
}

impl Engine {
    /// Checks a task against the team and the tree's bounds; `Ok` is the child job to enqueue.
    fn plan_task(&self, at: &Asker<'_>, task: &mc_runtime::DelegatedTask) -> Result<NewJob, DelegationError> {
        let Asker {
            tenant,
            parent,
            team,
            allowed,
            chain,
            tree_spend,
        } = at;
        let Some(target) = team.iter().find(|a| a.name == task.agent) else {
            let names: Vec<&str> = team.iter().map(|a| a.name.as_str()).collect();
            return Err(DelegationError::UnknownAgent(format!(
                "tenant `{tenant}` has no agent `{}` (its agents: {})",
                task.agent,
                names.join(", ")
            )));
        };
        if chain.contains(&task.agent) {
            return Err(DelegationError::LimitReached(format!(
                "delegating to `{}` would form a cycle: {} → {}",
                task.agent,
                chain.join(" → "),
                task.agent
            )));
        }
        if !allowed.contains(&task.agent) {
            return Err(DelegationError::NotGranted(format!(
                "agent `{}` may not delegate to `{}`: it may delegate to {}",
                parent.agent,
                task.agent,
                if allowed.is_empty() {
                    "no one (no agent reports to it and `delegates_to` is empty)".to_string()
                } else {
                    allowed.join(", ")
                }
            )));
        }
        if parent.depth + 1 > MAX_DEPTH {
            return Err(DelegationError::LimitReached(format!(
                "run {} is {} levels below the top of its tree, and a tree may be at most {MAX_DEPTH} deep",
                parent.id, parent.depth
            )));
        }
        if task.seq >= MAX_FANOUT {
            return Err(DelegationError::LimitReached(format!(
                "run {} has handed out {MAX_FANOUT} tasks, the most one run may",
                parent.id
            )));
        }
        if let Some((spent, budget)) = *tree_spend
            && spent >= budget
        {
            return Err(DelegationError::LimitReached(format!(
                "run tree {} has used {} of its per-run budget of {}",
                parent.root,
                mc_config::format_usd(spent),
                mc_config::format_usd(budget)
            )));
        }
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&task.input) {
            return Err(DelegationError::Failed(format!(
                "the task for `{}` is not a JSON document: {e}",
                task.agent
            )));
        }
        Ok(NewJob {
            tenant: tenant.to_string(),
            automation: None,
            agent: target.name.clone(),
            plugin: target.plugin.clone(),
            input: task.input.clone(),
            trigger: "delegation".into(),
            priority: (parent.priority + CHILD_PRIORITY_BOOST).min(100),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            run_at: None,
            idempotency_key: Some(format!("delegation:{}:{}", parent.id, task.seq)),
        })
    }

    /// Marks the waiting run parked in the store (see [`mc_store::Store::park`]). A failure is
    /// logged, not returned: the run goes on either way, and every path that ends it corrects the
    /// tenant's count from the flag the store holds.
    async fn set_parked(&self, id: i64, parked: bool) {
        if let Err(e) = self.store.park(&self.config.node_id, id, parked).await {
            tracing::warn!(error = %e, job = id, parked, "marking a waiting run failed");
        }
    }

    /// Waits until every child in `ids` has finished (or `deadline` passed), with their results.
    async fn wait_for(
        &self,
        scope: &TenantScope<'_>,
        ids: &[i64],
        deadline: std::time::Instant,
    ) -> Result<Vec<ChildState>, DelegationError> {
        loop {
            // Registered before looking, so a completion between the look and the wait still
            // wakes this parent.
            let finished = self.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            match scope.child_states(ids).await {
                Ok(states) if states.iter().all(|s| !matches!(s, ChildState::Pending)) => return Ok(states),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "reading child runs failed; retrying");
                    tokio::time::sleep(WAIT_RETRY).await;
                    continue;
                }
            }
            tokio::select! {
                _ = &mut finished => {}
                _ = tokio::time::sleep(CHILD_POLL) => {}
                _ = tokio::time::sleep_until(deadline.into()) => {
                    return Err(DelegationError::Failed(
                        "the delegating run's deadline passed before this task finished; the task was cancelled".into(),
                    ));
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Delegator for EngineHandle {
    async fn delegate(&self, d: Delegation) -> Vec<Result<String, DelegationError>> {
        let engine = &self.0;
        let n = d.tasks.len();
        let fail_all = |text: String| (0..n).map(|_| Err(DelegationError::Failed(text.clone()))).collect();
        let Ok(parent_id) = d.from.run_id.parse::<i64>() else {
            return fail_all(format!("run `{}` is not a run of this engine", d.from.run_id));
        };
        let scope = engine.store.tenant(&d.from.tenant);
        let looked_up = tokio::try_join!(
            scope.parent_run(parent_id),
            scope.agents(),
            engine.store.run_tree_spend(&d.from.tenant, &d.from.root_run_id),
        );
        let (parent, team, tree_spend) = match looked_up {
            Ok((Some(p), team, spend)) => (p, team, spend),
            Ok((None, _, _)) => return fail_all(format!("run {parent_id} no longer exists")),
            Err(e) => return fail_all(format!("the run tree could not be read: {e}")),
        };
        let asker = Asker {
            tenant: &d.from.tenant,
            parent: &parent,
            team: &team,
            allowed: team
                .iter()
                .find(|a| a.name == parent.agent)
                .map(|me| me.delegates(&team))
                .unwrap_or_default(),
            chain: parent.chain(),
            tree_spend,
        };
        let mut plan = Vec::with_capacity(n);
        let mut jobs = Vec::new();
        for task in &d.tasks {
            match engine.plan_task(&asker, task) {
                Ok(job) => {
                    plan.push(Planned::Child(jobs.len()));
                    jobs.push(job);
                }
                Err(e) => plan.push(Planned::Refused(e)),
            }
        }
        let mut states = Vec::new();
        if !jobs.is_empty() {
            let ids: Vec<i64> = match scope.enqueue_children(&parent, &jobs).await {
                Ok(out) => out
                    .into_iter()
                    .map(|e| match e {
                        Enqueued::Created(id) | Enqueued::Duplicate(id) => id,
                    })
                    .collect(),
                Err(e) => return fail_all(format!("the tasks could not be queued: {e}")),
            };
            engine.wake.notify_one();
            let mut orphans = Orphans {
                engine: engine.clone(),
                tenant: d.from.tenant.clone(),
                ids: ids.clone(),
                armed: true,
            };
            let parked = Parked::new(engine);
            // Out of the tenant's running count too, so that a limit of one running job per
            // tenant cannot hold back the children their parent waits for.
            engine.set_parked(parent_id, true).await;
            let waited = engine.wait_for(&scope, &ids, d.deadline).await;
            engine.set_parked(parent_id, false).await;
            drop(parked);
            match waited {
                Ok(s) => {
                    orphans.armed = false;
                    states = s;
                }
                // The guard cancels the children still going.
                Err(e) => return plan.iter().map(|_| Err(e.clone())).collect(),
            }
        }
        plan.into_iter()
            .map(|p| match p {
                Planned::Refused(e) => Err(e),
                Planned::Child(i) => match states.get(i) {
                    Some(ChildState::Succeeded(out)) => Ok(out.clone()),
                    Some(ChildState::Failed(e)) => Err(DelegationError::Failed(e.clone())),
                    _ => Err(DelegationError::Failed("the child run has no result".into())),
                },
            })
            .collect()
    }
}

/// The engine as the runtime's [`Delegator`] (a run's services hold it for the run's length).
pub(crate) struct EngineHandle(pub(crate) Arc<Engine>);
