//! Tenants: list, create, read, read the whole configuration, and apply a configuration file
//! (the API form of `missionctl apply`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_store::{ApplyReport, Need, TenantRow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::time;
use crate::auth::Auth;
use crate::error::{ApiJson, ApiPath};
use crate::{ApiError, AppState};

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    /// The partner that onboarded it.
    pub partner: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<TenantRow> for Tenant {
    fn from(t: TenantRow) -> Tenant {
        Tenant {
            id: t.id,
            name: t.name,
            partner: t.partner,
            created_at: time(t.created_at),
            updated_at: time(t.updated_at),
        }
    }
}

/// A tenant to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Lower-case letters, digits and dashes.
    #[schema(pattern = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub id: String,
    /// Display name.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// For operators: the partner the tenant belongs to (partners always create their own).
    #[serde(default)]
    pub partner: Option<String>,
}

/// A configuration to apply: the text of a tenant file (YAML, or JSON).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    pub config: String,
    /// Refuse with 409 if the tenant's configuration version is no longer this one.
    #[serde(default)]
    pub expected_version: Option<i64>,
}

/// One change an apply made.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeDto {
    /// `created`, `updated`, `deleted` or `unchanged`.
    pub kind: String,
    /// `tenant`, `agent` or `automation`.
    pub object: String,
    pub name: String,
    /// For updates: the fields that changed.
    pub fields: Vec<String>,
}

/// What an apply did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplyResult {
    pub tenant: String,
    /// The configuration's version afterwards.
    pub version: i64,
    pub changed: bool,
    pub changes: Vec<ChangeDto>,
}

impl From<ApplyReport> for ApplyResult {
    fn from(r: ApplyReport) -> ApplyResult {
        ApplyResult {
            changed: r.changed(),
            tenant: r.tenant,
            version: r.version,
            changes: r
                .changes
                .into_iter()
                .map(|c| ChangeDto {
                    kind: serde_json::to_value(c.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    object: c.object.into(),
                    name: c.name,
                    fields: c.fields,
                })
                .collect(),
        }
    }
}

/// A tenant's whole configuration, as a file would state it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantConfigDto {
    /// Pass as `expected_version` when applying an edited copy.
    pub version: i64,
    /// The configuration (the tenant file's fields).
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
}

/// The tenants this key may see.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", responses((status = 200, body = Vec<Tenant>)))]
pub async fn list(State(state): State<AppState>, Auth(who): Auth) -> Result<Json<Vec<Tenant>>, ApiError> {
    let tenants = state.store.visible_tenants(&who).await?;
    Ok(Json(tenants.into_iter().map(Tenant::from).collect()))
}

/// Creates an empty tenant (operator and partner keys).
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = NewTenant,
    responses((status = 201, body = Tenant)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiJson(body): ApiJson<NewTenant>,
) -> Result<(StatusCode, Json<Tenant>), ApiError> {
    let row = state
        .store
        .create_tenant(&who, &body.id, &body.name, body.partner.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// One tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path)), responses((status = 200, body = Tenant)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Tenant>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    let row = scope
        .get()
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no tenant `{tenant}`")))?;
    Ok(Json(row.into()))
}

/// The tenant's whole configuration and its version.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/config", tag = "tenants",
    params(("tenant" = String, Path)), responses((status = 200, body = TenantConfigDto)))]
pub async fn config(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<TenantConfigDto>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    let (config, version) = scope
        .config()
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no tenant `{tenant}`")))?;
    Ok(Json(TenantConfigDto {
        version,
        config: serde_json::to_value(config).map_err(|e| ApiError::Internal(e.to_string()))?,
    }))
}

/// Applies a tenant configuration file: the tenant's agents and automations become exactly
/// those of the file, in one transaction. Mistakes are answered with their line and column and
/// nothing is applied. A new tenant is created for operator and partner keys.
#[utoipa::path(post, path = "/api/v1/apply", tag = "tenants", request_body = ApplyRequest,
    responses((status = 200, body = ApplyResult)))]
pub async fn apply(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiJson(body): ApiJson<ApplyRequest>,
) -> Result<Json<ApplyResult>, ApiError> {
    let validated = mc_config::parse(&body.config, &state.known().await?)
        .map_err(|e| ApiError::BadRequest(format!("configuration: {e}")))?;
    let report = state.store.apply_as(&who, &validated, body.expected_version).await?;
    Ok(Json(report.into()))
}

/// 201 if `report` created the `object` (`agent` or `automation`) `name`, else 200: what a PUT
/// that creates or replaces one object answers.
pub fn upsert_status(report: &ApplyReport, object: &str, name: &str) -> StatusCode {
    let created = report
        .changes
        .iter()
        .any(|c| c.object == object && c.name == name && c.kind == mc_store::ChangeKind::Created);
    if created { StatusCode::CREATED } else { StatusCode::OK }
}

/// Edits a tenant's configuration through `edit` (read, change, validate, apply against the
/// version read), retrying when another edit landed in between. Used by the per-object
/// endpoints, so an agent or automation edited through the API is validated exactly like a file.
pub async fn edit_config(
    state: &AppState,
    who: &mc_store::Principal,
    tenant: &str,
    mut edit: impl FnMut(&mut mc_config::TenantConfig) -> Result<(), ApiError>,
) -> Result<ApplyReport, ApiError> {
    /// Each collision means another edit landed, so n concurrent edits need at most n attempts;
    /// after this many the client is told to retry.
    const EDIT_ATTEMPTS: usize = 16;
    let scope = state.store.authorize(who, tenant, Need::Write).await?;
    let known = state.known().await?;
    for _ in 0..EDIT_ATTEMPTS {
        let (mut config, version) = scope
            .config()
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no tenant `{tenant}`")))?;
        edit(&mut config)?;
        let positions = mc_config::Positions::default();
        let validated = mc_config::validate(config, &known, &positions).map_err(|e| ApiError::BadRequest(e.message))?;
        match state.store.apply_as(who, &validated, Some(version)).await {
            Err(mc_store::AccessError::Conflict(_)) => {
                // Let the edit that won finish before reading again.
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                continue;
            }
            other => return Ok(other?),
        }
    }
    Err(ApiError::Conflict(format!(
        "tenant `{tenant}` is being changed by someone else; try again"
    )))
}
