//! Agents: list, read, create or update (validated like a configuration file), delete.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_config::AgentSpec;
use mc_store::{AgentRow, Need};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::runs::Run;
use crate::api::tenants::{edit_config, upsert_status};
use crate::auth::Auth;
use crate::error::{ApiJson, ApiPath};
use crate::{ApiError, AppState};

/// An agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct Agent {
    pub name: String,
    pub role: String,
    pub plugin: String,
    pub model: Option<String>,
    pub instructions: Option<String>,
    /// Parameters its plugin reads through `wasi:config`.
    pub config: BTreeMap<String, String>,
    /// Origins its plugin may reach over HTTP.
    pub hosts: Vec<String>,
    /// Names of the tenant secrets its plugin may read.
    pub secrets: Vec<String>,
    /// Models tried in order when `model` cannot answer.
    pub fallbacks: Vec<String>,
    /// Its own monthly AI budget in USD (e.g. `"50.00"`), if any.
    pub monthly_budget: Option<String>,
    /// Its manager; `null` at the top of the team.
    pub reports_to: Option<String>,
    /// Agents it may delegate to beside those reporting to it.
    pub delegates_to: Vec<String>,
    /// Registries its plugin may use: `read` or `write`.
    #[schema(value_type = BTreeMap<String, String>)]
    pub registries: BTreeMap<String, mc_config::RegistryAccess>,
}

impl From<AgentRow> for Agent {
    fn from(a: AgentRow) -> Agent {
        Agent {
            name: a.name,
            role: a.role,
            plugin: a.plugin,
            model: a.model,
            instructions: a.instructions,
            config: a.config,
            hosts: a.hosts,
            secrets: a.secrets,
            fallbacks: a.fallbacks,
            monthly_budget: a.budget_monthly.map(mc_config::format_decimal),
            reports_to: a.reports_to,
            delegates_to: a.delegates_to,
            registries: a.registries,
        }
    }
}

/// An agent to create or replace (its name is in the path).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentBody {
    #[schema(min_length = 1)]
    pub role: String,
    pub plugin: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// Its own monthly AI budget in USD, as a number or a string (`50`, `"12.50"`).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub monthly_budget: Option<mc_config::Usd>,
    #[serde(default)]
    pub reports_to: Option<String>,
    #[serde(default)]
    pub delegates_to: Vec<String>,
    /// Registries its plugin may use: `read` or `write`.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub registries: BTreeMap<String, mc_config::RegistryAccess>,
}

/// One agent in the team tree, with what it is doing and those reporting to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamMember {
    pub name: String,
    pub role: String,
    pub model: Option<String>,
    pub plugin: String,
    /// Whom it may hand tasks to (its reports, then its granted delegates).
    pub delegates: Vec<String>,
    /// From its latest run: `never_run`, `working` (running), `queued` (waiting for its time or
    /// a worker), `awaiting_approval`, `failing` (its latest run failed for good) or `idle`.
    #[schema(pattern = "^(never_run|working|queued|awaiting_approval|failing|idle)$")]
    pub status: String,
    /// Its newest run.
    pub last_run: Option<Run>,
    /// What its AI calls and fuel cost this month (UTC), in USD.
    pub cost_this_month_usd: String,
    #[schema(no_recursion)]
    pub reports: Vec<TeamMember>,
}

/// An agent's status from its latest run's state (see [`TeamMember::status`]).
fn status(last: Option<&mc_store::RunSummary>) -> &'static str {
    match last.map(|r| r.state.as_str()) {
        None => "never_run",
        Some("running") => "working",
        Some("scheduled" | "available") => "queued",
        Some("awaiting_approval") => "awaiting_approval",
        Some("dead") => "failing",
        Some(_) => "idle",
    }
}

/// The team as a tree: the agents nobody manages at the top (the director), each with those
/// reporting to it, in name order, each with its activity (agents missing from `activity` have
/// none).
pub fn team_tree(agents: &[AgentRow], activity: &[mc_store::AgentActivity]) -> Vec<TeamMember> {
    fn under(
        agents: &[AgentRow],
        activity: &BTreeMap<&str, &mc_store::AgentActivity>,
        manager: Option<&str>,
    ) -> Vec<TeamMember> {
        agents
            .iter()
            .filter(|a| a.reports_to.as_deref() == manager)
            .map(|a| {
                let act = activity.get(a.name.as_str());
                let last = act.and_then(|x| x.last_run.as_ref());
                TeamMember {
                    name: a.name.clone(),
                    role: a.role.clone(),
                    model: a.model.clone(),
                    plugin: a.plugin.clone(),
                    delegates: a.delegates(agents),
                    status: status(last).into(),
                    last_run: last.cloned().map(Run::from),
                    cost_this_month_usd: mc_config::format_decimal(act.map_or(0, |x| x.month_cost)),
                    reports: under(agents, activity, Some(&a.name)),
                }
            })
            .collect()
    }
    let activity: BTreeMap<&str, &mc_store::AgentActivity> = activity.iter().map(|a| (a.agent.as_str(), a)).collect();
    under(agents, &activity, None)
}

/// The tenant's team as a tree, each agent with its status, latest run and cost this month
/// (one aggregate statement for the whole team, whatever its size).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/team", tag = "agents",
    params(("tenant" = String, Path)), responses((status = 200, body = Vec<TeamMember>)))]
pub async fn team(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Vec<TeamMember>>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    let month = mc_store::month_and_day(mc_store::now_micros()).0;
    let (agents, activity) = tokio::try_join!(scope.agents(), scope.team_activity(&month))?;
    Ok(Json(team_tree(&agents, &activity)))
}

/// The tenant's agents.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/agents", tag = "agents",
    params(("tenant" = String, Path)), responses((status = 200, body = Vec<Agent>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Vec<Agent>>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    Ok(Json(scope.agents().await?.into_iter().map(Agent::from).collect()))
}

async fn read(state: &AppState, who: &mc_store::Principal, tenant: &str, name: &str) -> Result<Agent, ApiError> {
    let scope = state.store.authorize(who, tenant, Need::Read).await?;
    scope
        .agent(name)
        .await?
        .map(Agent::from)
        .ok_or_else(|| ApiError::NotFound(format!("no agent `{name}`")))
}

/// One agent.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/agents/{agent}", tag = "agents",
    params(("tenant" = String, Path), ("agent" = String, Path)), responses((status = 200, body = Agent)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(read(&state, &who, &tenant, &name).await?))
}

/// Creates (201) or replaces (200) an agent.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/agents/{agent}", tag = "agents",
    params(("tenant" = String, Path), ("agent" = String, Path)), request_body = AgentBody,
    responses((status = 200, body = Agent), (status = 201, body = Agent)))]
pub async fn put(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<AgentBody>,
) -> Result<(StatusCode, Json<Agent>), ApiError> {
    let spec = AgentSpec {
        name: name.clone(),
        role: body.role,
        plugin: body.plugin,
        model: body.model,
        instructions: body.instructions,
        config: body.config,
        hosts: body.hosts,
        secrets: body.secrets,
        fallbacks: body.fallbacks,
        budget: body.monthly_budget.map(|m| mc_config::AgentBudget { monthly: Some(m) }),
        reports_to: body.reports_to,
        delegates_to: body.delegates_to,
        registries: body.registries,
    };
    let report = edit_config(&state, &who, &tenant, |c| {
        match c.agents.iter_mut().find(|a| a.name == name) {
            Some(a) => *a = spec.clone(),
            None => c.agents.push(spec.clone()),
        }
        Ok(())
    })
    .await?;
    let status = upsert_status(&report, "agent", &name);
    Ok((status, Json(read(&state, &who, &tenant, &name).await?)))
}

/// Deletes an agent no automation uses.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/agents/{agent}", tag = "agents",
    params(("tenant" = String, Path), ("agent" = String, Path)), responses((status = 204)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    edit_config(&state, &who, &tenant, |c| {
        if !c.agents.iter().any(|a| a.name == name) {
            return Err(ApiError::NotFound(format!("no agent `{name}`")));
        }
        let users: Vec<&str> = c
            .automations
            .iter()
            .filter(|a| a.agent == name)
            .map(|a| a.name.as_str())
            .collect();
        if !users.is_empty() {
            return Err(ApiError::Conflict(format!(
                "agent `{name}` is used by automations {}: delete or reassign them first",
                users.join(", ")
            )));
        }
        c.agents.retain(|a| a.name != name);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
