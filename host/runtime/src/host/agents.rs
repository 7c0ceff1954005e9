//! The `agents` import: delegation to other agents of the tenant's team, through the caller's
//! [`Delegator`](crate::Delegator). A run without one (outside the engine) is refused here; every
//! other check (who may delegate to whom, depth, fan-out, cycles, cost) belongs to the delegator,
//! which knows the team and the run tree.

use crate::bindings::mission::control::agents::{self, DelegateError, Task};
use crate::delegate::{DelegatedTask, Delegation, DelegationError, MAX_TASKS_PER_CALL};
use crate::state::RunState;

impl agents::Host for RunState {
    async fn delegate(&mut self, agent: String, task: String) -> Result<String, DelegateError> {
        let mut results = self.delegate_tasks(vec![Task { agent, input: task }]).await;
        results
            .pop()
            .unwrap_or_else(|| Err(DelegateError::Failed("the host gave no answer".into())))
    }

    async fn delegate_all(&mut self, tasks: Vec<Task>) -> Vec<Result<String, DelegateError>> {
        self.delegate_tasks(tasks).await
    }
}

impl RunState {
    async fn delegate_tasks(&mut self, tasks: Vec<Task>) -> Vec<Result<String, DelegateError>> {
        if tasks.len() > MAX_TASKS_PER_CALL {
            let text = format!(
                "{} tasks in one call; at most {MAX_TASKS_PER_CALL} may be handed out at once",
                tasks.len()
            );
            return tasks
                .iter()
                .map(|_| Err(DelegateError::LimitReached(text.clone())))
                .collect();
        }
        let delegator = match &self.services.delegator {
            Some(d) => d.clone(),
            None => {
                return tasks
                    .iter()
                    .map(|t| {
                        let text = format!(
                            "agent `{}` may not delegate to `{}`: this run has no team to delegate to",
                            self.call.agent, t.agent
                        );
                        Err(DelegateError::NotGranted(self.deny("agents", text)))
                    })
                    .collect();
            }
        };
        let first = self.delegated;
        self.delegated += tasks.len() as u32;
        let delegation = Delegation {
            from: self.call.clone(),
            tasks: tasks
                .into_iter()
                .zip(first..)
                .map(|(t, seq)| DelegatedTask {
                    agent: t.agent,
                    input: t.input,
                    seq,
                })
                .collect(),
            deadline: self.deadline_at,
        };
        let n = delegation.tasks.len();
        let mut results = delegator.delegate(delegation).await;
        results.resize_with(n, || {
            Err(DelegationError::Failed("the host gave no answer for this task".into()))
        });
        results
            .into_iter()
            .map(|r| {
                r.map_err(|e| match e {
                    DelegationError::NotGranted(m) => DelegateError::NotGranted(self.deny("agents", m)),
                    DelegationError::UnknownAgent(m) => DelegateError::UnknownAgent(m),
                    DelegationError::LimitReached(m) => DelegateError::LimitReached(m),
                    DelegationError::Failed(m) => DelegateError::Failed(m),
                })
            })
            .collect()
    }
}
