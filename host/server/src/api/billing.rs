//! Money: a tenant's usage report (JSON or CSV) and budget status, its plan (operators change
//! it), the operator's margin report, the price book (read by anyone, published by operators)
//! and the AI providers' circuit breakers.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use mc_store::{Need, Plan, UsageBy, UsageLine};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::time;
use crate::auth::Auth;
use crate::error::{ApiJson, ApiPath, ApiQuery};
use crate::{ApiError, AppState};

// Dollars as the API shows them: a decimal string, exact (`"12.345678"`).
use mc_config::format_decimal as usd;

/// The current month, `YYYY-MM` (UTC).
pub(crate) fn this_month() -> String {
    mc_store::month_and_day(mc_store::now_micros()).0
}

pub(crate) fn month_or_now(month: Option<String>) -> Result<String, ApiError> {
    let month = month.unwrap_or_else(this_month);
    mc_store::valid_month(&month).map_err(ApiError::BadRequest)?;
    Ok(month)
}

/// One line of a usage report. Money in micro-dollars (integers) and in dollars (strings).
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageLineDto {
    /// The agent, automation, model or day.
    pub key: String,
    pub ai_calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// Calls whose usage the provider did not report (estimated by the host).
    pub estimated_calls: u64,
    pub fuel: u64,
    pub ai_cost_micros: u64,
    pub fuel_cost_micros: u64,
    pub cost_micros: u64,
    pub cost_usd: String,
}

impl From<UsageLine> for UsageLineDto {
    fn from(l: UsageLine) -> UsageLineDto {
        UsageLineDto {
            cost_usd: usd(l.cost),
            key: l.key,
            ai_calls: l.ai_calls,
            input_tokens: l.input_tokens,
            output_tokens: l.output_tokens,
            cache_read_tokens: l.cache_read_tokens,
            cache_write_tokens: l.cache_write_tokens,
            estimated_calls: l.estimated_calls,
            fuel: l.fuel,
            ai_cost_micros: l.ai_cost,
            fuel_cost_micros: l.fuel_cost,
            cost_micros: l.cost,
        }
    }
}

/// A tenant's usage for a month.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageReport {
    pub tenant: String,
    pub month: String,
    /// `agent`, `automation`, `model` or `day`.
    pub by: String,
    pub lines: Vec<UsageLineDto>,
    pub total: UsageLineDto,
}

/// Which month, grouped how, in which format.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// `YYYY-MM` (default: this month, UTC).
    #[param(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    pub month: Option<String>,
    /// `agent` (default), `automation`, `model` or `day`.
    #[param(pattern = "^(agent|automation|model|day)$")]
    pub by: Option<String>,
    /// `json` (default) or `csv`.
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

/// The CSV form of a report: a header, one row per line, then the total.
pub fn usage_csv(lines: &[UsageLine], total: &UsageLine) -> String {
    let mut out = String::from(
        "key,ai_calls,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,estimated_calls,fuel,ai_cost_usd,fuel_cost_usd,cost_usd\n",
    );
    for l in lines.iter().chain(std::iter::once(total)) {
        // Keys are names, days or model ids; quote anyway in case a model id has a comma.
        let key = format!("\"{}\"", l.key.replace('"', "\"\""));
        out.push_str(&format!(
            "{key},{},{},{},{},{},{},{},{},{},{}\n",
            l.ai_calls,
            l.input_tokens,
            l.output_tokens,
            l.cache_read_tokens,
            l.cache_write_tokens,
            l.estimated_calls,
            l.fuel,
            usd(l.ai_cost),
            usd(l.fuel_cost),
            usd(l.cost)
        ));
    }
    out
}

/// The tenant's AI and fuel usage for a month, with cost.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/usage", tag = "billing",
    params(("tenant" = String, Path), UsageQuery),
    responses((status = 200, content((UsageReport = "application/json"), (String = "text/csv")))))]
pub async fn usage(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<Response, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    let month = month_or_now(q.month)?;
    let by_name = q.by.unwrap_or_else(|| "agent".into());
    let by = UsageBy::parse(&by_name)
        .ok_or_else(|| ApiError::BadRequest(format!("by must be agent, automation, model or day, not `{by_name}`")))?;
    let (lines, total) = scope.usage(&month, by).await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(UsageReport {
            tenant,
            month,
            by: by_name,
            lines: lines.into_iter().map(UsageLineDto::from).collect(),
            total: total.into(),
        })
        .into_response()),
        Some("csv") => {
            let disposition = format!("attachment; filename=\"usage-{tenant}-{month}-by-{by_name}.csv\"");
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                usage_csv(&lines, &total),
            )
                .into_response())
        }
        Some(other) => Err(ApiError::BadRequest(format!(
            "format must be json or csv, not `{other}`"
        ))),
    }
}

/// A budget threshold crossed.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetAlertDto {
    /// `tenant`, `agent:<name>` or `run:<id>`.
    pub scope: String,
    pub period: String,
    /// Percent of the budget: 50, 80 or 100.
    pub threshold: u64,
    pub spent_usd: String,
    pub budget_usd: String,
    pub at: String,
}

/// An agent's spend against its own budget.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentBudgetDto {
    pub agent: String,
    pub budget_usd: Option<String>,
    pub spent_usd: String,
    pub reserved_usd: String,
}

/// A tenant's budgets and spend for a month.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetDto {
    pub month: String,
    pub plan: String,
    pub monthly_budget_usd: Option<String>,
    pub per_run_budget_usd: Option<String>,
    pub spent_usd: String,
    /// Held by AI calls in flight.
    pub reserved_usd: String,
    pub spent_micros: u64,
    pub agents: Vec<AgentBudgetDto>,
    pub alerts: Vec<BudgetAlertDto>,
}

/// Which month.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MonthQuery {
    /// `YYYY-MM` (default: this month, UTC).
    #[param(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    pub month: Option<String>,
}

/// The tenant's budgets, what it spent against them this month, and the alerts raised.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/budget", tag = "billing",
    params(("tenant" = String, Path), MonthQuery), responses((status = 200, body = BudgetDto)))]
pub async fn budget(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<MonthQuery>,
) -> Result<Json<BudgetDto>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    let month = month_or_now(q.month)?;
    Ok(Json(budget_of(&scope, &month).await?))
}

/// The budget status of the tenant of `scope` for `month` (checked `YYYY-MM`), as the API shows it.
pub(crate) async fn budget_of(scope: &mc_store::TenantScope<'_>, month: &str) -> Result<BudgetDto, ApiError> {
    let tenant = scope.id();
    let plan = scope
        .get()
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no tenant `{tenant}`")))?
        .plan;
    let s = scope
        .budget_status(month)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no tenant `{tenant}`")))?;
    Ok(BudgetDto {
        month: s.month,
        plan,
        monthly_budget_usd: s.monthly.map(usd),
        per_run_budget_usd: s.per_run.map(usd),
        spent_usd: usd(s.spent),
        reserved_usd: usd(s.reserved),
        spent_micros: s.spent,
        agents: s
            .agents
            .into_iter()
            .map(|a| AgentBudgetDto {
                agent: a.agent,
                budget_usd: a.budget.map(usd),
                spent_usd: usd(a.spent),
                reserved_usd: usd(a.reserved),
            })
            .collect(),
        alerts: s
            .alerts
            .into_iter()
            .map(|a| BudgetAlertDto {
                scope: a.scope,
                period: a.period,
                threshold: a.threshold,
                spent_usd: usd(a.spent),
                budget_usd: usd(a.budget),
                at: time(a.at),
            })
            .collect(),
    })
}

/// A plan to move a tenant to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    /// `starter` (3 agents, 10 automations), `growth` (8, 30) or `scale` (unlimited).
    #[schema(pattern = "^(starter|growth|scale)$")]
    pub plan: String,
}

/// A tenant's plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanDto {
    pub tenant: String,
    pub plan: String,
    pub previous: String,
    pub monthly_price_usd: String,
    /// `null`: unlimited.
    pub max_agents: Option<usize>,
    pub max_automations: Option<usize>,
}

/// Moves a tenant to another plan (operators only).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/plan", tag = "billing",
    params(("tenant" = String, Path)), request_body = PlanBody, responses((status = 200, body = PlanDto)))]
pub async fn set_plan(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(body): ApiJson<PlanBody>,
) -> Result<Json<PlanDto>, ApiError> {
    // Seeing the tenant comes first: to others it does not exist.
    state.store.authorize(&who, &tenant, Need::Read).await?;
    let plan = Plan::parse(&body.plan)
        .ok_or_else(|| ApiError::BadRequest(format!("plan must be starter, growth or scale, not `{}`", body.plan)))?;
    let previous = state.store.set_plan(&who, &tenant, plan).await?;
    Ok(Json(PlanDto {
        tenant,
        plan: plan.name().into(),
        previous: previous.name().into(),
        monthly_price_usd: usd(plan.monthly_price()),
        max_agents: plan.max_agents(),
        max_automations: plan.max_automations(),
    }))
}

/// One tenant's month for the operator.
#[derive(Debug, Serialize, ToSchema)]
pub struct MarginDto {
    pub tenant: String,
    pub name: String,
    pub plan: String,
    pub revenue_usd: String,
    pub ai_cost_usd: String,
    pub fuel_cost_usd: String,
    /// Negative when the tenant costs more than it pays.
    pub margin_usd: String,
    pub margin_micros: i64,
}

/// The operator's report.
#[derive(Debug, Serialize, ToSchema)]
pub struct MarginReport {
    pub month: String,
    pub tenants: Vec<MarginDto>,
}

/// Revenue, AI and fuel cost, and margin per tenant for a month (operators only).
#[utoipa::path(get, path = "/api/v1/report", tag = "billing", params(MonthQuery),
    responses((status = 200, body = MarginReport)))]
pub async fn report(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(q): ApiQuery<MonthQuery>,
) -> Result<Json<MarginReport>, ApiError> {
    if who.role != mc_store::Role::Operator {
        return Err(ApiError::Forbidden("only operators see the margin report".into()));
    }
    let month = month_or_now(q.month)?;
    let lines = state.store.margin_report(&month).await?;
    Ok(Json(MarginReport {
        month,
        tenants: lines
            .into_iter()
            .map(|l| MarginDto {
                margin_usd: if l.margin < 0 {
                    format!("-{}", usd(l.margin.unsigned_abs()))
                } else {
                    usd(l.margin as u64)
                },
                margin_micros: l.margin,
                tenant: l.tenant,
                name: l.name,
                plan: l.plan,
                revenue_usd: usd(l.revenue),
                ai_cost_usd: usd(l.ai_cost),
                fuel_cost_usd: usd(l.fuel_cost),
            })
            .collect(),
    }))
}

/// One model's prices, in USD per million tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelPriceDto {
    pub model: String,
    pub provider: String,
    pub input: String,
    pub output: String,
    pub cache_read: String,
    pub cache_write: String,
}

/// The price book in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct PriceBookDto {
    pub version: i64,
    pub published_at: String,
    pub published_by: String,
    pub source: String,
    /// USD per billion fuel units.
    pub fuel_per_billion: String,
    pub models: Vec<ModelPriceDto>,
    /// The book as published (YAML).
    pub body: String,
}

/// The price book in force.
#[utoipa::path(get, path = "/api/v1/prices", tag = "billing", responses((status = 200, body = PriceBookDto)))]
pub async fn prices(State(state): State<AppState>, Auth(_who): Auth) -> Result<Json<PriceBookDto>, ApiError> {
    let row = state.price_book().await?;
    let book = mc_ai::prices::PriceBook::parse(&row.body).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(PriceBookDto {
        version: row.version,
        published_at: time(row.created_at),
        published_by: row.created_by,
        source: book.source,
        fuel_per_billion: usd(book.fuel_per_billion),
        models: book
            .models
            .into_iter()
            .map(|(model, p)| ModelPriceDto {
                model,
                provider: p.provider,
                input: usd(p.input),
                output: usd(p.output),
                cache_read: usd(p.cache_read),
                cache_write: usd(p.cache_write),
            })
            .collect(),
        body: row.body,
    }))
}

/// A price book to publish.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPriceBook {
    /// The book (YAML, the format of `host/ai/prices.yaml`).
    pub book: String,
}

/// What publishing did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    pub version: i64,
    /// False when the book equals the one in force (no new version).
    pub created: bool,
    pub models: usize,
}

/// Publishes a new price book (operators only); new calls are priced with it.
#[utoipa::path(post, path = "/api/v1/prices", tag = "billing", request_body = NewPriceBook,
    responses((status = 200, body = Published)))]
pub async fn publish_prices(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiJson(body): ApiJson<NewPriceBook>,
) -> Result<Json<Published>, ApiError> {
    if who.role != mc_store::Role::Operator {
        return Err(ApiError::Forbidden("only operators change the price book".into()));
    }
    let book = mc_ai::prices::PriceBook::parse(&body.book).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let (version, created) = state
        .store
        .add_price_book(&who, &body.book, book.fuel_per_billion)
        .await?;
    if let Some(g) = &state.gateway
        && let Err(e) = g.reload_prices().await
    {
        tracing::warn!(error = %e, "reloading the price book failed; it is read again within a second");
    }
    Ok(Json(Published {
        version,
        created,
        models: book.models.len(),
    }))
}

/// One provider's circuit breaker.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderStatus {
    pub provider: String,
    /// `closed`, `open` or `half-open`.
    pub state: String,
    pub consecutive_failures: u32,
    pub opened_at: Option<String>,
    /// While open: milliseconds until a probe call is let through.
    pub retry_in_ms: Option<u64>,
    pub total_failures: u64,
    pub total_successes: u64,
}

/// The AI providers of this node and their circuit breakers.
#[utoipa::path(get, path = "/api/v1/providers", tag = "billing",
    responses((status = 200, body = Vec<ProviderStatus>)))]
pub async fn providers(State(state): State<AppState>, Auth(_who): Auth) -> Json<Vec<ProviderStatus>> {
    let breakers = state.gateway.as_ref().map(|g| g.breakers()).unwrap_or_default();
    Json(
        breakers
            .into_iter()
            .map(|b| ProviderStatus {
                provider: b.provider,
                state: b.state,
                consecutive_failures: b.consecutive_failures,
                opened_at: b.opened_at_unix_ms.map(|ms| time(ms * 1000)),
                retry_in_ms: b.retry_in_ms,
                total_failures: b.total_failures,
                total_successes: b.total_successes,
            })
            .collect(),
    )
}
