//! Templates: the gallery (what each vertical's team does, the capabilities it asks for, the
//! parameters its form needs) and installing one into a tenant, validated like a configuration
//! file and applied in one transaction; installing again upgrades in place.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use mc_config::{Template, TemplateError, TemplateParam};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::tenants::{ApplyResult, edit_config};
use crate::auth::Auth;
use crate::error::{ApiJson, ApiPath};
use crate::{ApiError, AppState};

/// One agent a template brings.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateAgent {
    pub name: String,
    pub role: String,
    pub plugin: String,
    pub reports_to: Option<String>,
}

/// A template as the gallery shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateCard {
    pub id: String,
    pub name: String,
    pub summary: String,
    pub description: String,
    /// The form: each parameter's name, prompt, default and pattern.
    #[schema(value_type = Vec<Object>)]
    pub parameters: Vec<TemplateParam>,
    pub agents: Vec<TemplateAgent>,
    /// Automation names with their trigger in words.
    pub automations: Vec<String>,
    pub registries: Vec<String>,
    /// Capabilities asked for: the models its agents use and the hosts they may reach.
    pub models: Vec<String>,
    pub hosts: Vec<String>,
}

/// Installing: the parameters' values.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallRequest {
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

fn api_error(e: TemplateError) -> ApiError {
    match e {
        TemplateError::NotFound(m) => ApiError::NotFound(m),
        TemplateError::Invalid(m) => ApiError::BadRequest(m),
        TemplateError::Broken(m) => ApiError::Internal(m),
    }
}

fn dir(state: &AppState) -> Result<&std::path::Path, ApiError> {
    state
        .template_dir
        .as_deref()
        .ok_or_else(|| ApiError::Unavailable("this server has no templates directory".into()))
}

fn card(t: &Template) -> Result<TemplateCard, ApiError> {
    let team = t.outline().map_err(api_error)?;
    let mut models: Vec<String> = team
        .agents
        .iter()
        .flat_map(|a| a.model.iter().chain(a.fallbacks.iter()).cloned())
        .collect();
    if team.agents.iter().any(|a| a.model.is_none()) {
        models.push(mc_ai::OFFLINE_MODEL.into());
    }
    models.sort();
    models.dedup();
    let mut hosts: Vec<String> = team.agents.iter().flat_map(|a| a.hosts.iter().cloned()).collect();
    hosts.sort();
    hosts.dedup();
    Ok(TemplateCard {
        id: t.meta.id.clone(),
        name: t.meta.name.clone(),
        summary: t.meta.summary.clone(),
        description: t.meta.description.trim().to_string(),
        parameters: t.meta.parameters.clone(),
        agents: team
            .agents
            .iter()
            .map(|a| TemplateAgent {
                name: a.name.clone(),
                role: a.role.clone(),
                plugin: a.plugin.clone(),
                reports_to: a.reports_to.clone(),
            })
            .collect(),
        automations: team
            .automations
            .iter()
            .map(|a| match mc_config::resolve_trigger_words(&a.trigger) {
                Some(words) => format!("{}: {words}", a.name),
                None => a.name.clone(),
            })
            .collect(),
        registries: team.registries.iter().map(|r| r.name.clone()).collect(),
        models,
        hosts,
    })
}

/// Every template.
#[utoipa::path(get, path = "/api/v1/templates", tag = "templates", responses((status = 200, body = Vec<TemplateCard>)))]
pub async fn list(State(state): State<AppState>, Auth(_who): Auth) -> Result<Json<Vec<TemplateCard>>, ApiError> {
    let all = Template::list(dir(&state)?).map_err(api_error)?;
    Ok(Json(all.iter().map(card).collect::<Result<_, _>>()?))
}

/// One template.
#[utoipa::path(get, path = "/api/v1/templates/{template}", tag = "templates",
    params(("template" = String, Path)), responses((status = 200, body = TemplateCard)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(_who): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TemplateCard>, ApiError> {
    let t = Template::load(dir(&state)?, &id).map_err(api_error)?;
    Ok(Json(card(&t)?))
}

/// Installs a template into a tenant (or upgrades it in place): parameters checked, the plan's
/// limits checked, everything applied in one transaction.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/templates/{template}/install", tag = "templates",
    params(("tenant" = String, Path), ("template" = String, Path)), request_body = InstallRequest,
    responses((status = 200, body = ApplyResult)))]
pub async fn install(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<InstallRequest>,
) -> Result<Json<ApplyResult>, ApiError> {
    // The tenant first: a key that may not change it learns nothing about the parameters.
    state.store.authorize(&who, &tenant, mc_store::Need::Write).await?;
    let t = Template::load(dir(&state)?, &id).map_err(api_error)?;
    let team = t.render(&body.parameters).map_err(api_error)?;
    let report = edit_config(&state, &who, &tenant, |c| {
        team.clone().merge_into(c);
        Ok(())
    })
    .await?;
    Ok(Json(report.into()))
}
