//! The run tree: the child runs that delegated tasks become, what the engine needs to bound a
//! delegation (depth, the agents above, the root), the children's results, and the tree with each
//! run's cost as the API shows it. The bounds themselves are the engine's policy.

use serde::Serialize;

use crate::queue::{Enqueued, NewJob, enqueue_in};
use crate::{StoreError, TenantScope};

/// A run that delegates, as a delegation needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentRun {
    pub id: i64,
    pub agent: String,
    /// The top of its tree (its own id at the top).
    pub root: i64,
    /// 0 at the top.
    pub depth: u32,
    /// The agents above it, the top first.
    pub lineage: Vec<String>,
    pub priority: i32,
}

impl ParentRun {
    /// The agents from the top of the tree down to this run's, inclusive: a task for any of them
    /// would be a cycle.
    pub fn chain(&self) -> Vec<String> {
        let mut c = self.lineage.clone();
        c.push(self.agent.clone());
        c
    }
}

/// Where a child run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildState {
    /// Not finished yet (queued, running, or waiting to be retried).
    Pending,
    Succeeded(String),
    /// Failed for good, or cancelled: the error a person reads.
    Failed(String),
}

/// One run of a tree, with those it delegated to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunNode {
    pub id: i64,
    pub agent: String,
    pub state: String,
    /// What it was asked (its input, a JSON document).
    pub input: String,
    pub output: Option<String>,
    pub error: Option<String>,
    /// AI and fuel cost of this run alone, micro-dollars.
    pub cost: u64,
    /// Fuel this run alone burnt (all its attempts).
    pub fuel: u64,
    /// This run and everything below it.
    pub tree_cost: u64,
    pub children: Vec<RunNode>,
}

/// agent, root_id, depth, lineage, priority.
type ParentTuple = (String, Option<i64>, i64, Option<String>, i64);

type NodeRow = (
    i64,
    Option<i64>,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

impl TenantScope<'_> {
    /// The run `id` of this tenant as a parent of new tasks.
    pub async fn parent_run(&self, id: i64) -> Result<Option<ParentRun>, StoreError> {
        let row: Option<ParentTuple> = sqlx::query_as(
            "SELECT agent, root_id, depth, lineage, priority FROM jobs WHERE tenant_id = $1 AND id = $2",
        )
        .bind(self.id())
        .bind(id)
        .fetch_optional(self.store().pool())
        .await?;
        let Some((agent, root, depth, lineage, priority)) = row else {
            return Ok(None);
        };
        let lineage = match lineage {
            Some(l) => serde_json::from_str(&l).map_err(|e| StoreError::Corrupt(format!("run {id} lineage: {e}")))?,
            None => Vec::new(),
        };
        Ok(Some(ParentRun {
            id,
            agent,
            root: root.unwrap_or(id),
            depth: u32::try_from(depth).unwrap_or(0),
            lineage,
            priority: priority as i32,
        }))
    }

    /// Enqueues `jobs` as children of `parent`, in one transaction. A job whose idempotency key
    /// exists already (the parent's earlier attempt started it) is not added again: its id comes
    /// back as a duplicate.
    pub async fn enqueue_children(&self, parent: &ParentRun, jobs: &[NewJob]) -> Result<Vec<Enqueued>, StoreError> {
        if jobs.iter().any(|j| j.tenant != self.id()) {
            return Err(StoreError::Invalid("a child run belongs to its parent's tenant".into()));
        }
        let mut tx = self.store().write_tx().await?;
        let out = enqueue_in(&mut tx, jobs).await?;
        let created: Vec<String> = out
            .iter()
            .filter_map(|e| match e {
                Enqueued::Created(id) => Some(id.to_string()),
                Enqueued::Duplicate(_) => None,
            })
            .collect();
        if !created.is_empty() {
            let lineage = serde_json::to_string(&parent.chain()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            // Ids are integers from the database, safe to write into the statement.
            sqlx::query(&format!(
                "UPDATE jobs SET parent_id = $2, root_id = $3, depth = $4, lineage = $5 \
                 WHERE tenant_id = $1 AND id IN ({})",
                created.join(",")
            ))
            .bind(self.id())
            .bind(parent.id)
            .bind(parent.root)
            .bind(i64::from(parent.depth) + 1)
            .bind(lineage)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Where each of the runs `ids` of this tenant is; a run that does not exist is reported
    /// failed.
    pub async fn child_states(&self, ids: &[i64]) -> Result<Vec<ChildState>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let rows: Vec<(i64, String, Option<String>, Option<String>)> = sqlx::query_as(&format!(
            "SELECT id, state, output, error FROM runs WHERE tenant_id = $1 AND id IN ({list})"
        ))
        .bind(self.id())
        .fetch_all(self.store().pool())
        .await?;
        Ok(ids
            .iter()
            .map(|id| match rows.iter().find(|r| r.0 == *id) {
                None => ChildState::Failed(format!("run {id} no longer exists")),
                Some((_, state, output, error)) => match state.as_str() {
                    "succeeded" => ChildState::Succeeded(output.clone().unwrap_or_else(|| "null".into())),
                    "dead" => ChildState::Failed(error.clone().unwrap_or_else(|| "it failed".into())),
                    "cancelled" => ChildState::Failed(format!("run {id} was cancelled")),
                    _ => ChildState::Pending,
                },
            })
            .collect())
    }

    /// The whole tree the run `id` belongs to, from its top, each run with its cost; `None` if
    /// the tenant has no run `id`.
    pub async fn run_tree(&self, id: i64) -> Result<Option<RunNode>, StoreError> {
        let root: Option<(Option<i64>,)> = sqlx::query_as("SELECT root_id FROM jobs WHERE tenant_id = $1 AND id = $2")
            .bind(self.id())
            .bind(id)
            .fetch_optional(self.store().pool())
            .await?;
        let Some((root,)) = root else { return Ok(None) };
        let root = root.unwrap_or(id);
        // The root and the runs under it, as two index lookups: an `OR` of the two columns made
        // SQLite scan all the tenant's runs (90 ms a tree with 100,000 runs).
        let rows: Vec<NodeRow> = sqlx::query_as(
            "SELECT j.id, j.parent_id, j.agent, j.state, j.input, j.output, j.error, \
             CAST(COALESCE((SELECT SUM(l.cost) FROM ledger l WHERE l.tenant_id = j.tenant_id \
               AND l.run_id = CAST(j.id AS TEXT)), 0) AS BIGINT), \
             CAST(COALESCE((SELECT SUM(l.fuel) FROM ledger l WHERE l.tenant_id = j.tenant_id \
               AND l.run_id = CAST(j.id AS TEXT)), 0) AS BIGINT) \
             FROM runs j WHERE j.tenant_id = $1 \
               AND j.id IN (SELECT CAST($2 AS BIGINT) UNION ALL SELECT r.id FROM jobs r WHERE r.tenant_id = $1 AND r.root_id = $2) \
             ORDER BY j.id",
        )
        .bind(self.id())
        .bind(root)
        .fetch_all(self.store().pool())
        .await?;
        Ok(build(&rows, root))
    }
}

/// The node `id` of `rows` with everything below it.
fn build(rows: &[NodeRow], id: i64) -> Option<RunNode> {
    let r = rows.iter().find(|r| r.0 == id)?;
    let children: Vec<RunNode> = rows
        .iter()
        .filter(|c| c.1 == Some(id))
        .filter_map(|c| build(rows, c.0))
        .collect();
    let cost = u64::try_from(r.7).unwrap_or(0);
    Some(RunNode {
        id: r.0,
        agent: r.2.clone(),
        state: r.3.clone(),
        input: r.4.clone(),
        output: r.5.clone(),
        error: r.6.clone(),
        cost,
        fuel: u64::try_from(r.8).unwrap_or(0),
        tree_cost: cost + children.iter().map(|c| c.tree_cost).sum::<u64>(),
        children,
    })
}
