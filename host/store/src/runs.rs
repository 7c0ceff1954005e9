//! A tenant's runs as people see them (a run is a job of the queue): listing with filters and
//! keyset paging, a run's detail and logs, and the changes people make — run now, cancel, retry,
//! switch an automation on or off — each audited in the transaction that makes it.

use serde::Serialize;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::access::{AccessError, Principal, audit};
use crate::queue::{MAX_ATTEMPTS, NewJob, enqueue_in};
use crate::{StoreError, TenantScope, now_micros};

/// Most runs one page lists.
pub const MAX_RUNS_PAGE: i64 = 200;

/// The states a run can be in.
pub const RUN_STATES: [&str; 9] = [
    "scheduled",
    "available",
    "running",
    "succeeded",
    "dead",
    "cancelled",
    "failed",
    "awaiting_approval",
    "rejected",
];

/// Most runs one filtered page looks through (see [`TenantScope::runs`]).
pub const FILTER_WINDOW: i64 = 5_000;

/// A page of runs and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPage {
    pub runs: Vec<RunSummary>,
    /// Pass as `before` for the next page; `None` on the last.
    pub next: Option<i64>,
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub state: Option<String>,
    pub automation: Option<String>,
    pub agent: Option<String>,
    /// Only runs with a smaller id (the previous page's last id).
    pub before: Option<i64>,
    pub limit: i64,
}

/// A run in a listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub id: i64,
    pub automation: Option<String>,
    pub agent: String,
    pub trigger: String,
    pub state: String,
    pub attempt: u32,
    pub max_attempts: u32,
    pub priority: i32,
    pub run_at: i64,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub error_kind: Option<String>,
    pub error: Option<String>,
}

/// A run with its input and output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub summary: RunSummary,
    pub input: serde_json::Value,
    /// The plugin's output (JSON), once it succeeded.
    pub output: Option<serde_json::Value>,
}

pub(crate) const SUMMARY_COLUMNS: &str = "id, automation, agent, trigger_kind, state, attempt, max_attempts, priority, run_at, \
     created_at, started_at, finished_at, error_kind, error";

/// A run summary from the first columns of a row selecting [`SUMMARY_COLUMNS`] first.
pub(crate) fn summary(row: &AnyRow) -> Result<RunSummary, sqlx::Error> {
    Ok(RunSummary {
        id: row.try_get(0)?,
        automation: row.try_get(1)?,
        agent: row.try_get(2)?,
        trigger: row.try_get(3)?,
        state: row.try_get(4)?,
        attempt: row.try_get::<i64, _>(5)? as u32,
        max_attempts: row.try_get::<i64, _>(6)? as u32,
        priority: row.try_get::<i64, _>(7)? as i32,
        run_at: row.try_get(8)?,
        created_at: row.try_get(9)?,
        started_at: row.try_get(10)?,
        finished_at: row.try_get(11)?,
        error_kind: row.try_get(12)?,
        error: row.try_get(13)?,
    })
}

fn json_or_text(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_string()))
}

fn no_run(id: i64) -> AccessError {
    AccessError::NotFound(format!("no run {id}"))
}

/// The oldest id of the [`FILTER_WINDOW`] newest runs of `tenant` below `before`, if there are
/// that many.
async fn window_floor(tx: &mut crate::Tx, tenant: &str, before: i64) -> Result<Option<i64>, StoreError> {
    let floor: Option<(i64,)> = sqlx::query_as(&format!(
        "SELECT id FROM jobs WHERE tenant_id = $1 AND id < $2 ORDER BY id DESC LIMIT 1 OFFSET {}",
        FILTER_WINDOW - 1
    ))
    .bind(tenant)
    .bind(before)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(floor.map(|(id,)| id))
}

impl TenantScope<'_> {
    /// Its runs, newest first, filtered: a page of at most `filter.limit` (1 to
    /// [`MAX_RUNS_PAGE`]) and where the next page starts (`None`: no more runs).
    ///
    /// Every page walks the (tenant_id, id) index backwards from the cursor, and a filtered page
    /// looks at no more than [`FILTER_WINDOW`] of the runs there: its cost is bounded however
    /// rare the match. A filtered page may then hold fewer than `limit` runs and still have a next
    /// page.
    pub async fn runs(&self, filter: &RunFilter) -> Result<RunPage, StoreError> {
        // On PostgreSQL the walk is pinned: with statistics from before a tenant's runs arrived,
        // the planner estimated a few hundred rows and chose a bitmap scan of all 100,000 and a
        // sort (186 ms instead of 0.14 ms a page). Switching those plans off for this transaction
        // leaves the ordered index scan.
        let mut tx = self.store().pool().begin().await?;
        if self.store().backend() == crate::Backend::Postgres {
            sqlx::query(
                "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true)",
            )
            .execute(&mut *tx)
            .await?;
        }
        let page = self.runs_in(&mut tx, filter).await?;
        tx.commit().await?;
        Ok(page)
    }

    async fn runs_in(&self, tx: &mut crate::Tx, filter: &RunFilter) -> Result<RunPage, StoreError> {
        let limit = filter.limit.clamp(1, MAX_RUNS_PAGE);
        let before = filter.before.unwrap_or(i64::MAX);
        let filtered = filter.state.is_some() || filter.automation.is_some() || filter.agent.is_some();
        if !filtered {
            let rows = sqlx::query(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM runs WHERE tenant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
            ))
            .bind(self.id())
            .bind(before)
            .bind(limit)
            .fetch_all(&mut **tx)
            .await?;
            let runs: Vec<RunSummary> = rows.iter().map(summary).collect::<Result<_, _>>()?;
            let next = (runs.len() as i64 == limit)
                .then(|| runs.last().map(|r| r.id))
                .flatten();
            return Ok(RunPage { runs, next });
        }
        // Conditions on unset filters are written so the statement text stays the same.
        let filters = "($3 IS NULL OR state = $3) AND ($4 IS NULL OR automation = $4) AND ($5 IS NULL OR agent = $5)";
        // The window is the newest FILTER_WINDOW runs after the cursor, walked in index order by
        // each backend's cheapest form: PostgreSQL streams a LIMITed subquery and stops at the
        // `limit`th match; SQLite sorts such a subquery whole, so it gets the window's oldest id
        // first (an index-only walk) and scans that id range instead.
        let (rows, floor) = match self.store().backend() {
            crate::Backend::Postgres => {
                let rows = sqlx::query(&format!(
                    "SELECT * FROM (SELECT {SUMMARY_COLUMNS} FROM runs WHERE tenant_id = $1 AND id < $2 \
                     ORDER BY id DESC LIMIT {FILTER_WINDOW}) AS w WHERE {filters} ORDER BY id DESC LIMIT $6"
                ))
                .bind(self.id())
                .bind(before)
                .bind(&filter.state)
                .bind(&filter.automation)
                .bind(&filter.agent)
                .bind(limit)
                .fetch_all(&mut **tx)
                .await?;
                (rows, None)
            }
            crate::Backend::Sqlite => {
                let floor = window_floor(tx, self.id(), before).await?;
                let rows = sqlx::query(&format!(
                    "SELECT {SUMMARY_COLUMNS} FROM runs WHERE tenant_id = $1 AND id < $2 AND {filters} \
                     AND id >= $7 ORDER BY id DESC LIMIT $6"
                ))
                .bind(self.id())
                .bind(before)
                .bind(&filter.state)
                .bind(&filter.automation)
                .bind(&filter.agent)
                .bind(limit)
                .bind(floor.unwrap_or(0))
                .fetch_all(&mut **tx)
                .await?;
                (rows, Some(floor))
            }
        };
        let runs: Vec<RunSummary> = rows.iter().map(summary).collect::<Result<_, _>>()?;
        if runs.len() as i64 == limit {
            let next = runs.last().map(|r| r.id);
            return Ok(RunPage { runs, next });
        }
        // Fewer matches than asked: the next page starts below the window, if it was full.
        let next = match floor {
            Some(floor) => floor,
            None => window_floor(tx, self.id(), before).await?,
        };
        Ok(RunPage { runs, next })
    }

    /// What a live view needs each tick: the runs newer than `after` (oldest first, at most
    /// [`MAX_RUNS_PAGE`]) and the current state of the runs in `watching` (at most
    /// [`MAX_RUNS_PAGE`] of them are looked up). Both are index lookups however many runs the
    /// tenant has.
    pub async fn runs_update(&self, after: i64, watching: &[i64]) -> Result<Vec<RunSummary>, StoreError> {
        let mut runs: Vec<RunSummary> = sqlx::query(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM runs WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(self.id())
        .bind(after)
        .bind(MAX_RUNS_PAGE)
        .fetch_all(self.store().pool())
        .await?
        .iter()
        .map(summary)
        .collect::<Result<_, _>>()?;
        let watching = &watching[..watching.len().min(MAX_RUNS_PAGE as usize)];
        if !watching.is_empty() {
            let ids = (0..watching.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("SELECT {SUMMARY_COLUMNS} FROM runs WHERE tenant_id = $1 AND id IN ({ids})");
            let mut q = sqlx::query(&sql).bind(self.id());
            for id in watching {
                q = q.bind(*id);
            }
            for row in q.fetch_all(self.store().pool()).await? {
                let run = summary(&row)?;
                if run.id <= after {
                    runs.push(run);
                }
            }
        }
        Ok(runs)
    }

    /// One of its runs.
    pub async fn run(&self, id: i64) -> Result<Option<RunDetail>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SUMMARY_COLUMNS}, input, output FROM runs WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(self.id())
        .bind(id)
        .fetch_optional(self.store().pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let input: String = row.try_get(14)?;
        let output: Option<String> = row.try_get(15)?;
        Ok(Some(RunDetail {
            summary: summary(&row)?,
            input: json_or_text(&input),
            output: output.as_deref().map(json_or_text),
        }))
    }

    /// A run's log lines (JSON array as the runtime recorded them; empty until it finished).
    pub async fn run_logs(&self, id: i64) -> Result<Option<serde_json::Value>, StoreError> {
        let row: Option<(Option<String>,)> = sqlx::query_as("SELECT logs FROM jobs WHERE tenant_id = $1 AND id = $2")
            .bind(self.id())
            .bind(id)
            .fetch_optional(self.store().pool())
            .await?;
        Ok(row.map(|(logs,)| {
            logs.as_deref()
                .map(json_or_text)
                .unwrap_or_else(|| serde_json::Value::Array(vec![]))
        }))
    }

    /// Enqueues a run of the automation `name` now, with `input` or the automation's own.
    pub async fn run_now(
        &self,
        who: &Principal,
        name: &str,
        input: Option<serde_json::Value>,
        max_attempts: u32,
    ) -> Result<i64, AccessError> {
        let automations = self.automations().await?;
        let Some(a) = automations.into_iter().find(|a| a.name == name) else {
            return Err(AccessError::NotFound(format!("no automation `{name}`")));
        };
        let Some(agent) = self.agent(&a.agent).await? else {
            return Err(AccessError::Conflict(format!(
                "automation `{name}` names a missing agent `{}`",
                a.agent
            )));
        };
        let input = input.unwrap_or(a.input.clone());
        let job = NewJob {
            tenant: self.id().to_string(),
            automation: Some(a.name.clone()),
            agent: a.agent.clone(),
            plugin: agent.plugin,
            input: input.to_string(),
            trigger: "manual".into(),
            priority: a.priority,
            max_attempts: max_attempts.clamp(1, MAX_ATTEMPTS),
            run_at: None,
            idempotency_key: None,
        };
        let mut tx = self.store().write_tx().await?;
        let id = enqueue_in(&mut tx, &[job]).await?[0].id();
        audit(
            &mut tx,
            who,
            Some(self.id()),
            "automation.run",
            name,
            serde_json::json!({ "run": id }),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Switches the automation `name` on or off (a switched-off automation's triggers do not
    /// fire). Returns false if it already was.
    pub async fn set_enabled(&self, who: &Principal, name: &str, enabled: bool) -> Result<bool, AccessError> {
        let mut tx = self.store().write_tx().await?;
        let row: Option<(i64,)> = sqlx::query_as("SELECT enabled FROM automations WHERE tenant_id = $1 AND name = $2")
            .bind(self.id())
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((was,)) = row else {
            return Err(AccessError::NotFound(format!("no automation `{name}`")));
        };
        if (was != 0) == enabled {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE automations SET enabled = $3, updated_at = $4, paused_reason = NULL WHERE tenant_id = $1 AND name = $2",
        )
        .bind(self.id())
        .bind(name)
        .bind(i64::from(enabled))
        .bind(now_micros())
        .execute(&mut *tx)
        .await?;
        if enabled {
            // A person switching a paused automation back on ends the monitor's incident.
            crate::monitor::resolve_in(
                &mut tx,
                self.id(),
                crate::monitor::AUTOMATION_PAUSED,
                name,
                &format!("switched back on by key `{}`", who.key_id),
            )
            .await?;
        }
        audit(
            &mut tx,
            who,
            Some(self.id()),
            if enabled {
                "automation.enable"
            } else {
                "automation.disable"
            },
            name,
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Cancels a run that has not finished; a running plugin is interrupted at its node's next
    /// heartbeat.
    pub async fn cancel_run(&self, who: &Principal, id: i64) -> Result<(), AccessError> {
        let mut tx = self.store().write_tx().await?;
        if !crate::queue::cancel_in(&mut tx, self.id(), id).await? {
            return Err(match self.run_state(id).await? {
                None => no_run(id),
                Some(state) => {
                    AccessError::Conflict(format!("run {id} is {state}: only unfinished runs can be cancelled"))
                }
            });
        }
        audit(
            &mut tx,
            who,
            Some(self.id()),
            "run.cancel",
            &id.to_string(),
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Puts a dead or cancelled run back in the queue with a fresh set of attempts.
    pub async fn retry_run(&self, who: &Principal, id: i64) -> Result<(), AccessError> {
        let mut tx = self.store().write_tx().await?;
        if !crate::queue::retry_in(&mut tx, self.id(), id).await? {
            return Err(match self.run_state(id).await? {
                None => no_run(id),
                Some(state) => AccessError::Conflict(format!(
                    "run {id} is {state}: only dead or cancelled runs can be retried"
                )),
            });
        }
        audit(
            &mut tx,
            who,
            Some(self.id()),
            "run.retry",
            &id.to_string(),
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn run_state(&self, id: i64) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT state FROM runs WHERE tenant_id = $1 AND id = $2")
            .bind(self.id())
            .bind(id)
            .fetch_optional(self.store().pool())
            .await?;
        Ok(row.map(|(s,)| s))
    }
}

impl TenantScope<'_> {
    /// The recorded ticks (fired, skipped, missed) of its automation `name`, newest first.
    pub async fn ticks(&self, name: &str, limit: i64) -> Result<Vec<crate::TickEvent>, StoreError> {
        self.store().tick_events(self.id(), name, limit).await
    }
}
