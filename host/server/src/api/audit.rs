//! The audit log: every change, who made it and when; operators read all of it, a tenant's keys
//! and its partner read the tenant's own rows.

use axum::Json;
use axum::extract::State;
use mc_store::{AuditFilter, MAX_AUDIT_PAGE};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::{cursor, page_limit, time};
use crate::auth::Auth;
use crate::error::ApiQuery;
use crate::{ApiError, AppState};

/// One change.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub tenant: Option<String>,
    /// The key that made the change.
    pub actor: String,
    /// e.g. `config.apply`, `automation.run`, `key.create`, `secret.put`, `run.cancel`.
    pub action: String,
    pub target: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

/// Filters and paging.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this tenant's rows (tenant keys always see only their own).
    pub tenant: Option<String>,
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[1-9][0-9]{0,18}$")]
    pub cursor: Option<String>,
}

/// The audit log.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = page_limit(q.limit, MAX_AUDIT_PAGE)?;
    let filter = AuditFilter {
        tenant: q.tenant,
        before: cursor(q.cursor.as_deref())?,
        limit,
    };
    let rows = state.store.audit_log(&who, &filter).await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(Json(AuditPage {
        items: rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id,
                at: time(r.at),
                tenant: r.tenant,
                actor: r.actor,
                action: r.action,
                target: r.target,
                detail: r.detail,
            })
            .collect(),
        next_cursor,
    }))
}
