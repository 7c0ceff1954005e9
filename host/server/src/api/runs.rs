//! Runs: list with filters and keyset paging, a live stream of changes (server-sent events),
//! detail, logs, output, the delegation tree, cancel, retry.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use mc_store::{MAX_RUNS_PAGE, Need, RUN_STATES, RunFilter, RunSummary};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::{cursor, page_limit, time, time_opt};
use crate::auth::Auth;
use crate::error::{ApiPath, ApiQuery};
use crate::{ApiError, AppState};

/// A run.
#[derive(Debug, Serialize, ToSchema)]
pub struct Run {
    pub id: i64,
    pub automation: Option<String>,
    pub agent: String,
    /// What started it: `cron`, `interval`, `at`, `webhook`, `after`, `manual`.
    pub trigger: String,
    /// `scheduled` (waits for its time or its retry), `available` (waits for a worker),
    /// `running`, `succeeded`, `failed` (an attempt failed; retried), `dead` (failed for good;
    /// retry by hand), `cancelled`, `awaiting_approval` (its output, or its plugin's request,
    /// waits for a person) or `rejected` (a person rejected its output).
    pub state: String,
    pub attempt: u32,
    pub max_attempts: u32,
    pub priority: i32,
    pub run_at: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Why the last attempt failed.
    pub error_kind: Option<String>,
    pub error: Option<String>,
}

impl From<RunSummary> for Run {
    fn from(r: RunSummary) -> Run {
        Run {
            id: r.id,
            automation: r.automation,
            agent: r.agent,
            trigger: r.trigger,
            state: r.state,
            attempt: r.attempt,
            max_attempts: r.max_attempts,
            priority: r.priority,
            run_at: time(r.run_at),
            created_at: time(r.created_at),
            started_at: time_opt(r.started_at),
            finished_at: time_opt(r.finished_at),
            error_kind: r.error_kind,
            error: r.error,
        }
    }
}

/// A page of runs, newest first. A filtered page looks through at most 5,000 runs, so it may
/// hold fewer than `limit` and still have a next page.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    pub items: Vec<Run>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A run with its input and output.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: Run,
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    pub output: Option<serde_json::Value>,
}

/// A run's output.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunOutput {
    pub state: String,
    /// The plugin's output once the run succeeded.
    #[schema(value_type = Option<Object>)]
    pub output: Option<serde_json::Value>,
}

/// One log line of a run.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogLine {
    /// Milliseconds since the run started.
    pub at_ms: u64,
    /// `debug`, `info`, `warn` or `error`.
    pub level: String,
    pub message: String,
}

/// A run's log.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunLogs {
    pub lines: Vec<LogLine>,
}

/// Filters and paging of the run list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// Only runs in this state.
    #[param(pattern = "^(scheduled|available|running|succeeded|dead|cancelled|failed|awaiting_approval|rejected)$")]
    pub state: Option<String>,
    /// Only runs of this automation.
    pub automation: Option<String>,
    /// Only runs of this agent.
    pub agent: Option<String>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[1-9][0-9]{0,18}$")]
    pub cursor: Option<String>,
}

/// The tenant's runs, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/runs", tag = "runs",
    params(("tenant" = String, Path), RunQuery), responses((status = 200, body = RunPage)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<RunQuery>,
) -> Result<Json<RunPage>, ApiError> {
    let limit = page_limit(q.limit, MAX_RUNS_PAGE)?;
    if let Some(s) = &q.state
        && !RUN_STATES.contains(&s.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "unknown state `{s}` (one of {})",
            RUN_STATES.join(", ")
        )));
    }
    let before = cursor(q.cursor.as_deref())?;
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    let page = scope
        .runs(&RunFilter {
            state: q.state,
            automation: q.automation,
            agent: q.agent,
            before,
            limit,
        })
        .await?;
    Ok(Json(RunPage {
        items: page.runs.into_iter().map(Run::from).collect(),
        next_cursor: page.next.map(|id| id.to_string()),
    }))
}

/// One billed item of a run, as the ledger holds it: an AI call, or an attempt's fuel.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunCharge {
    pub at: String,
    /// `ai` (one call) or `fuel` (one attempt's computation).
    pub kind: String,
    pub attempt: u32,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// The provider reported no usage; the tokens are the host's estimate.
    pub usage_estimated: bool,
    pub fuel: u64,
    /// The price book version that priced it.
    pub price_version: i64,
    /// Micro-dollars, and the same in dollars.
    pub cost_micros: u64,
    pub cost_usd: String,
}

/// What a run was billed: each AI call (model, tokens, cost) and each attempt's fuel, oldest first.
/// An AI answer a retried or resumed run got back from its journal is not billed again, so it is
/// not listed again.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/runs/{run}/charges", tag = "runs",
    params(("tenant" = String, Path), ("run" = i64, Path)), responses((status = 200, body = Vec<RunCharge>)))]
pub async fn charges(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, id)): ApiPath<(String, i64)>,
) -> Result<Json<Vec<RunCharge>>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    if scope.run(id).await?.is_none() {
        return Err(no_run(id));
    }
    let rows = scope.ledger_of_run(&id.to_string()).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| RunCharge {
                at: time(r.at),
                kind: r.kind,
                attempt: r.attempt,
                provider: r.provider,
                model: r.model,
                input_tokens: r.input_tokens,
                output_tokens: r.output_tokens,
                cache_read_tokens: r.cache_read_tokens,
                cache_write_tokens: r.cache_write_tokens,
                usage_estimated: r.usage_estimated,
                fuel: r.fuel,
                price_version: r.price_version,
                cost_micros: r.cost,
                cost_usd: mc_config::format_decimal(r.cost),
            })
            .collect(),
    ))
}

fn no_run(id: i64) -> ApiError {
    ApiError::NotFound(format!("no run {id}"))
}

async fn detail(state: &AppState, who: &mc_store::Principal, tenant: &str, id: i64) -> Result<RunDetail, ApiError> {
    let scope = state.store.authorize(who, tenant, Need::Read).await?;
    let d = scope.run(id).await?.ok_or_else(|| no_run(id))?;
    Ok(RunDetail {
        run: d.summary.into(),
        input: d.input,
        output: d.output,
    })
}

/// One run with its input and output.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/runs/{run}", tag = "runs",
    params(("tenant" = String, Path), ("run" = i64, Path)), responses((status = 200, body = RunDetail)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, id)): ApiPath<(String, i64)>,
) -> Result<Json<RunDetail>, ApiError> {
    Ok(Json(detail(&state, &who, &tenant, id).await?))
}

/// A run's log lines (recorded when an attempt ends).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/runs/{run}/logs", tag = "runs",
    params(("tenant" = String, Path), ("run" = i64, Path)), responses((status = 200, body = RunLogs)))]
pub async fn logs(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, id)): ApiPath<(String, i64)>,
) -> Result<Json<RunLogs>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    let logs = scope.run_logs(id).await?.ok_or_else(|| no_run(id))?;
    let lines: Vec<LogLine> =
        serde_json::from_value(logs).map_err(|e| ApiError::Internal(format!("run {id}'s log: {e}")))?;
    Ok(Json(RunLogs { lines }))
}

/// One run of a delegation tree: who was asked, what, how it ended, what it cost, and whom it
/// asked in turn.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunTreeNode {
    pub id: i64,
    pub agent: String,
    pub state: String,
    /// The task it was given (its input).
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    pub output: Option<serde_json::Value>,
    pub error: Option<String>,
    /// AI and fuel cost of this run alone, in USD (`"0.004200"`).
    pub cost: String,
    /// Fuel this run burnt.
    pub fuel: u64,
    /// This run and everything it delegated, in USD.
    pub tree_cost: String,
    #[schema(no_recursion)]
    pub children: Vec<RunTreeNode>,
}

impl From<mc_store::RunNode> for RunTreeNode {
    fn from(n: mc_store::RunNode) -> RunTreeNode {
        let json = |s: &str| serde_json::from_str(s).unwrap_or_else(|_| serde_json::Value::String(s.to_string()));
        RunTreeNode {
            id: n.id,
            agent: n.agent,
            state: n.state,
            input: json(&n.input),
            output: n.output.as_deref().map(json),
            error: n.error,
            cost: mc_config::format_decimal(n.cost),
            fuel: n.fuel,
            tree_cost: mc_config::format_decimal(n.tree_cost),
            children: n.children.into_iter().map(RunTreeNode::from).collect(),
        }
    }
}

/// The delegation tree a run belongs to, from its top.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/runs/{run}/tree", tag = "runs",
    params(("tenant" = String, Path), ("run" = i64, Path)), responses((status = 200, body = RunTreeNode)))]
pub async fn tree(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, id)): ApiPath<(String, i64)>,
) -> Result<Json<RunTreeNode>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    let tree = scope.run_tree(id).await?.ok_or_else(|| no_run(id))?;
    Ok(Json(tree.into()))
}

/// A run's output.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/runs/{run}/output", tag = "runs",
    params(("tenant" = String, Path), ("run" = i64, Path)), responses((status = 200, body = RunOutput)))]
pub async fn output(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, id)): ApiPath<(String, i64)>,
) -> Result<Json<RunOutput>, ApiError> {
    let d = detail(&state, &who, &tenant, id).await?;
    Ok(Json(RunOutput {
        state: d.run.state,
        output: d.output,
    }))
}

/// Cancels a run that has not finished (a running plugin is interrupted).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/runs/{run}/cancel", tag = "runs",
    params(("tenant" = String, Path), ("run" = i64, Path)), responses((status = 200, body = RunDetail)))]
pub async fn cancel(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, id)): ApiPath<(String, i64)>,
) -> Result<Json<RunDetail>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Write).await?;
    scope.cancel_run(&who, id).await?;
    Ok(Json(detail(&state, &who, &tenant, id).await?))
}

/// Runs a dead or cancelled run again, with a fresh set of attempts.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/runs/{run}/retry", tag = "runs",
    params(("tenant" = String, Path), ("run" = i64, Path)), responses((status = 200, body = RunDetail)))]
pub async fn retry(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, id)): ApiPath<(String, i64)>,
) -> Result<Json<RunDetail>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Write).await?;
    scope.retry_run(&who, id).await?;
    Ok(Json(detail(&state, &who, &tenant, id).await?))
}

/// How often a live stream looks for changes: a change reaches the browser within this plus the
/// time of one lookup, well inside the dashboard's half-second promise.
const LIVE_POLL: Duration = Duration::from_millis(200);
/// Runs a live stream follows until they finish; the oldest are dropped beyond it (a view shows
/// one page of runs, at most 200).
const LIVE_WATCH_MAX: usize = MAX_RUNS_PAGE as usize;
/// Runs that will not change any more by themselves.
const FINAL_STATES: [&str; 4] = ["succeeded", "dead", "cancelled", "rejected"];

/// The tenant's runs as they change: an event `run` (a [`Run`]) for every run created after the
/// stream opened and for every change of state or attempt of the tenant's newest runs that had
/// not finished when it opened, or started since. Open it, then load the list: nothing is missed.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/runs/events", tag = "runs",
    params(("tenant" = String, Path)),
    responses((status = 200, description = "server-sent events: `run` {Run}", content_type = "text/event-stream")))]
pub async fn events(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    let newest = scope
        .runs(&RunFilter {
            state: None,
            automation: None,
            agent: None,
            before: None,
            limit: MAX_RUNS_PAGE,
        })
        .await?;
    let after = newest.runs.first().map_or(0, |r| r.id);
    // What each followed run looked like when last sent (or when the stream opened).
    let seen: HashMap<i64, (String, u32)> = newest
        .runs
        .into_iter()
        .filter(|r| !FINAL_STATES.contains(&r.state.as_str()))
        .map(|r| (r.id, (r.state, r.attempt)))
        .collect();
    let store = state.store.clone();
    let stream = futures_util::stream::unfold(
        (store, tenant, after, seen, VecDeque::<Event>::new()),
        |(store, tenant, mut after, mut seen, mut pending)| async move {
            loop {
                if let Some(event) = pending.pop_front() {
                    return Some((Ok(event), (store, tenant, after, seen, pending)));
                }
                tokio::time::sleep(LIVE_POLL).await;
                let scope = store.tenant(&tenant);
                let watching: Vec<i64> = seen.keys().copied().collect();
                let Ok(runs) = scope.runs_update(after, &watching).await else {
                    continue;
                };
                for run in runs {
                    after = after.max(run.id);
                    let now = (run.state.clone(), run.attempt);
                    if seen.get(&run.id) == Some(&now) {
                        continue;
                    }
                    if FINAL_STATES.contains(&run.state.as_str()) {
                        seen.remove(&run.id);
                    } else {
                        seen.insert(run.id, now);
                    }
                    if let Ok(event) = Event::default().event("run").json_data(Run::from(run)) {
                        pending.push_back(event);
                    }
                }
                while seen.len() > LIVE_WATCH_MAX {
                    let oldest = seen.keys().copied().min().unwrap_or_default();
                    seen.remove(&oldest);
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
