//! What the dashboard's overview and team pages show at a glance, each as a few aggregate
//! statements over a tenant's rows rather than a listing counted by the client: runs since a
//! time counted by state, runs waiting for approval, open incidents, and per agent its latest run
//! and its cost this month. Every statement filters by the tenant and is a range or point lookup
//! on the indexes of migration 19 or a read of the running totals of migration 21, so its cost
//! does not grow with the tenant's history.

use std::collections::BTreeMap;

use sqlx::Row as _;

use crate::runs::{SUMMARY_COLUMNS, summary};
use crate::totals::{ACTIVE_STATES, FINISHED_STATES, RUN_TOTALS_BUCKET_MICROS};
use crate::{RunSummary, StoreError, TenantScope};

/// A tenant's runs created since a time, by state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Runs per state (only states that occur).
    pub by_state: BTreeMap<String, u64>,
}

impl RunCounts {
    /// All runs counted.
    pub fn total(&self) -> u64 {
        self.by_state.values().sum()
    }

    /// Runs in any of `states`.
    pub fn of(&self, states: &[&str]) -> u64 {
        states.iter().filter_map(|s| self.by_state.get(*s)).sum()
    }
}

/// An agent's recent activity: its latest run and what it cost this month.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentActivity {
    pub agent: String,
    /// Its newest run (by id), if it ever ran.
    pub last_run: Option<RunSummary>,
    /// AI calls and fuel of the month, in micro-dollars.
    pub month_cost: u64,
}

impl TenantScope<'_> {
    /// Its runs created at or after `since` (microseconds), counted by state, without reading its
    /// finished history: finished runs from `run_totals` for the whole hours after `since`, plus
    /// those of the partial hour before the first (a range of `jobs_created`); runs under way
    /// state by state from the queue's partial indexes (`queue_available`, `queue_scheduled`, ...).
    pub async fn run_counts_since(&self, since: i64) -> Result<RunCounts, StoreError> {
        let bucket = RUN_TOTALS_BUCKET_MICROS;
        // The first bucket that starts at or after `since`.
        let whole_from = (since + bucket - 1).div_euclid(bucket) * bucket;
        // One branch per state, so each can take that state's partial index of the queue.
        let under_way = ACTIVE_STATES
            .split(", ")
            .map(|state| {
                format!(
                    "UNION ALL SELECT state, 1 FROM queue WHERE tenant_id = $1 AND created_at >= $2 AND state = {state}"
                )
            })
            .collect::<Vec<_>>()
            .join(" ");
        let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT state, CAST(SUM(n) AS BIGINT) FROM ( \
               SELECT state, runs AS n FROM run_totals WHERE tenant_id = $1 AND hour >= $3 \
               UNION ALL SELECT state, 1 FROM jobs WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3 \
                 AND state IN ({FINISHED_STATES}) \
               {under_way} \
             ) AS c GROUP BY state"
        ))
        .bind(self.id())
        .bind(since)
        .bind(whole_from)
        .fetch_all(self.store().pool())
        .await?;
        Ok(RunCounts {
            by_state: rows
                .into_iter()
                .filter(|&(_, n)| n > 0)
                .map(|(s, n)| (s, n as u64))
                .collect(),
        })
    }

    /// How many of its runs wait for a person's decision (the partial index `queue_awaiting`).
    pub async fn awaiting_approval_count(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM queue WHERE tenant_id = $1 AND state = 'awaiting_approval'")
                .bind(self.id())
                .fetch_one(self.store().pool())
                .await?;
        Ok(n.max(0) as u64)
    }

    /// How many of its incidents are open.
    pub async fn open_incident_count(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM incidents WHERE tenant_id = $1 AND resolved_at IS NULL")
                .bind(self.id())
                .fetch_one(self.store().pool())
                .await?;
        Ok(n.max(0) as u64)
    }

    /// Each of its agents with its latest run and its cost in `month` (`YYYY-MM`), in name
    /// order, from one statement: the latest run is a point lookup per agent on
    /// `jobs_by_agent` (the largest id), the costs one grouped range of the month's
    /// `ledger_totals`.
    pub async fn team_activity(&self, month: &str) -> Result<Vec<AgentActivity>, StoreError> {
        crate::metering::valid_month(month).map_err(StoreError::Invalid)?;
        let run_columns = SUMMARY_COLUMNS
            .split(',')
            .map(|c| format!("j.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {run_columns}, a.name, COALESCE(c.cost, 0) FROM agents a \
             LEFT JOIN runs j ON j.tenant_id = a.tenant_id AND j.id = \
                 (SELECT MAX(k.id) FROM jobs k WHERE k.tenant_id = a.tenant_id AND k.agent = a.name) \
             LEFT JOIN (SELECT agent, CAST(SUM(cost) AS BIGINT) AS cost FROM ledger_totals \
                 WHERE tenant_id = $1 AND month = $2 GROUP BY agent) c ON c.agent = a.name \
             WHERE a.tenant_id = $1 ORDER BY a.name"
        ))
        .bind(self.id())
        .bind(month)
        .fetch_all(self.store().pool())
        .await?;
        let columns = SUMMARY_COLUMNS.split(',').count();
        rows.iter()
            .map(|row| {
                let ran: Option<i64> = row.try_get(0)?;
                Ok(AgentActivity {
                    last_run: ran.map(|_| summary(row)).transpose()?,
                    agent: row.try_get(columns)?,
                    month_cost: row.try_get::<i64, _>(columns + 1)?.max(0) as u64,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
