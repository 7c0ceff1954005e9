//! The overview at a glance, in one call: the tenant's runs since a time (today, by default)
//! counted by state, its latest runs, spend this month against its budget, its next scheduled
//! runs, approvals waiting, open incidents and the AI providers' state. Every number is an
//! aggregate in the database (`mc_store`'s dashboard statements), never a listing counted here.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use mc_store::{Need, RunFilter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::automations::{Automation, automation};
use crate::api::billing::{BudgetDto, budget_of, this_month};
use crate::api::runs::Run;
use crate::api::time;
use crate::auth::Auth;
use crate::error::{ApiPath, ApiQuery};
use crate::{ApiError, AppState};

/// Latest runs the overview lists: enough to see what just happened, few enough for a card.
pub const LATEST_RUNS: i64 = 6;
/// Next scheduled runs the overview lists, soonest first: a card's worth.
pub const NEXT_RUNS: usize = 5;
/// Furthest back `since` may reach. The overview counts a day (from the viewer's local midnight,
/// at most 25 hours back across a DST change); a month bounds the index range it reads.
pub const MAX_SINCE_AGE: std::time::Duration = std::time::Duration::from_secs(31 * 24 * 3600);

/// Where the count starts.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OverviewQuery {
    /// Count runs created at or after this RFC 3339 time (default: today's midnight, UTC), at
    /// most 31 days back.
    #[param(format = DateTime)]
    pub since: Option<String>,
}

/// Runs created since a time, counted.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunCountsDto {
    /// Where the count starts.
    pub since: String,
    /// Every run created since then.
    pub started: u64,
    pub succeeded: u64,
    /// Failed for good (`dead`) or an attempt failed (`failed`).
    pub failed: u64,
    /// Waiting for their time or a worker, or running.
    pub in_progress: u64,
    /// Per state, the states that occur.
    pub by_state: BTreeMap<String, u64>,
}

/// How things stand.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewHealth {
    /// The tenant's incidents not resolved yet.
    pub open_incidents: u64,
    /// AI providers this node knows.
    pub providers: u64,
    /// Those whose circuit breaker is not closed.
    pub providers_degraded: Vec<String>,
}

/// The overview page's numbers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    pub runs: RunCountsDto,
    /// The newest runs, newest first.
    pub latest_runs: Vec<Run>,
    /// Spend this month against the budget.
    pub budget: BudgetDto,
    /// Enabled automations with a time trigger, soonest first.
    pub next_runs: Vec<Automation>,
    /// Automations switched off.
    pub automations_off: u64,
    /// Runs whose output or request waits for a person.
    pub approvals_waiting: u64,
    pub health: OverviewHealth,
}

fn since_micros(since: Option<&str>, now: jiff::Timestamp) -> Result<i64, ApiError> {
    /// A day in microseconds: UTC has no daylight saving time, so midnight is a multiple of it.
    const DAY_MICROS: i64 = 86_400_000_000;
    let Some(text) = since else {
        let micros = now.as_microsecond();
        return Ok(micros - micros.rem_euclid(DAY_MICROS));
    };
    let t: jiff::Timestamp = text
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("since `{text}` is not an RFC 3339 time: {e}")))?;
    let oldest = now.as_microsecond() - MAX_SINCE_AGE.as_micros() as i64;
    // A time ahead of this node's clock (the viewer's clock runs fast) counts nothing yet.
    if t.as_microsecond() < oldest {
        return Err(ApiError::BadRequest(format!(
            "since `{text}` must lie within the last {} days",
            MAX_SINCE_AGE.as_secs() / 86_400
        )));
    }
    Ok(t.as_microsecond())
}

/// The overview: today's runs by outcome, the latest runs, spend against budget, next runs,
/// approvals waiting and health, from aggregates (index lookups however many runs there are).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/overview", tag = "runs",
    params(("tenant" = String, Path), OverviewQuery), responses((status = 200, body = Overview)))]
pub async fn overview(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<OverviewQuery>,
) -> Result<Json<Overview>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    let now = jiff::Timestamp::now();
    let since = since_micros(q.since.as_deref(), now)?;
    let month = this_month();
    let latest = RunFilter {
        limit: LATEST_RUNS,
        ..Default::default()
    };
    let (counts, page, budget, automations, marks, waiting, incidents) = tokio::try_join!(
        async { Ok::<_, ApiError>(scope.run_counts_since(since).await?) },
        async { Ok::<_, ApiError>(scope.runs(&latest).await?) },
        budget_of(&scope, &month),
        async { Ok::<_, ApiError>(scope.automations().await?) },
        async { Ok::<_, ApiError>(scope.schedule_marks().await?) },
        async { Ok::<_, ApiError>(scope.awaiting_approval_count().await?) },
        async { Ok::<_, ApiError>(scope.open_incident_count().await?) },
    )?;
    let automations_off = automations.iter().filter(|a| !a.enabled).count() as u64;
    let mut next_runs: Vec<Automation> = automations
        .into_iter()
        .filter(|a| a.enabled)
        .map(|a| {
            let mark = marks.get(&a.name).copied();
            automation(a, mark, now)
        })
        .filter(|a| a.next_run.is_some())
        .collect();
    // RFC 3339 in UTC with the same precision sorts as text in time order; parse to be sure.
    next_runs.sort_by_key(|a| a.next_run.as_deref().and_then(|t| t.parse::<jiff::Timestamp>().ok()));
    next_runs.truncate(NEXT_RUNS);
    let breakers = state.gateway.as_ref().map(|g| g.breakers()).unwrap_or_default();
    Ok(Json(Overview {
        runs: RunCountsDto {
            since: time(since),
            started: counts.total(),
            succeeded: counts.of(&["succeeded"]),
            failed: counts.of(&["dead", "failed"]),
            in_progress: counts.of(&["scheduled", "available", "running"]),
            by_state: counts.by_state,
        },
        latest_runs: page.runs.into_iter().map(Run::from).collect(),
        budget,
        next_runs,
        automations_off,
        approvals_waiting: waiting,
        health: OverviewHealth {
            open_incidents: incidents,
            providers: breakers.len() as u64,
            providers_degraded: breakers
                .into_iter()
                .filter(|b| b.state != "closed")
                .map(|b| b.provider)
                .collect(),
        },
    }))
}
