//! Registries: their declarations, and their rows for people: list with filters and keyset
//! paging, read, add, change, delete — each row checked against the registry's fields.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_store::{FilterOp, MAX_ROWS_PAGE, Need, RegistryError, RegistryRow, RowFilter};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::api::{cursor, page_limit, time};
use crate::auth::Auth;
use crate::error::{ApiJson, ApiPath, ApiQuery};
use crate::{ApiError, AppState};

/// A registry: its name and fields (`name`, `type`, `required`, `unique`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Registry {
    pub name: String,
    #[schema(value_type = Vec<Object>)]
    pub fields: Vec<mc_config::FieldSpec>,
}

/// A row.
#[derive(Debug, Serialize, ToSchema)]
pub struct Row {
    pub id: i64,
    /// Its fields.
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<RegistryRow> for Row {
    fn from(r: RegistryRow) -> Row {
        Row {
            id: r.id,
            data: r.data,
            created_at: time(r.created_at),
            updated_at: time(r.updated_at),
        }
    }
}

/// A page of rows, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowPage {
    pub items: Vec<Row>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Which rows: `where` is `field:op:value` conditions separated by `;` (op `eq`, `ne`, `lt`,
/// `le`, `gt`, `ge`, `contains`; the value is JSON, or plain text for text fields), e.g.
/// `mrr:gt:100;active:eq:true`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RowQuery {
    #[serde(rename = "where")]
    pub filter: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

fn api_error(e: RegistryError) -> ApiError {
    match e {
        RegistryError::UnknownRegistry(m) | RegistryError::NotFound(m) => ApiError::NotFound(m),
        RegistryError::Invalid(m) => ApiError::BadRequest(m),
        RegistryError::Store(e) => e.into(),
    }
}

/// Parses `field:op:value;…`.
fn filters(text: &str) -> Result<Vec<RowFilter>, ApiError> {
    text.split(';')
        .filter(|s| !s.trim().is_empty())
        .map(|part| {
            let mut it = part.splitn(3, ':');
            let (Some(field), Some(op), Some(value)) = (it.next(), it.next(), it.next()) else {
                return Err(ApiError::BadRequest(format!(
                    "`{part}` is not a condition: write field:op:value, like mrr:gt:100"
                )));
            };
            let op = FilterOp::parse(op).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "unknown operator `{op}`: use eq, ne, lt, le, gt, ge or contains"
                ))
            })?;
            let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
            Ok(RowFilter {
                field: field.to_string(),
                op,
                value,
            })
        })
        .collect()
}

/// The tenant's registries.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/registries", tag = "registries",
    params(("tenant" = String, Path)), responses((status = 200, body = Vec<Registry>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Vec<Registry>>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    Ok(Json(
        scope
            .registries()
            .await?
            .into_iter()
            .map(|r| Registry {
                name: r.name,
                fields: r.fields,
            })
            .collect(),
    ))
}

/// Rows of a registry, oldest first, filtered and paged.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/registries/{registry}/rows", tag = "registries",
    params(("tenant" = String, Path), ("registry" = String, Path), RowQuery), responses((status = 200, body = RowPage)))]
pub async fn rows(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, registry)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<RowQuery>,
) -> Result<Json<RowPage>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    let limit = page_limit(q.limit, i64::from(MAX_ROWS_PAGE))?;
    let filters = filters(q.filter.as_deref().unwrap_or_default())?;
    let after = cursor(q.cursor.as_deref())?;
    let mut rows = scope
        .registry_rows(&registry, &filters, after, (limit + 1) as u32)
        .await
        .map_err(api_error)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|r| r.id.to_string())).flatten();
    Ok(Json(RowPage {
        items: rows.into_iter().map(Row::from).collect(),
        next_cursor,
    }))
}

/// Adds a row (its fields, a JSON object).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/registries/{registry}/rows", tag = "registries",
    params(("tenant" = String, Path), ("registry" = String, Path)), request_body = Object,
    responses((status = 201, body = Row)))]
pub async fn insert(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, registry)): ApiPath<(String, String)>,
    ApiJson(data): ApiJson<Value>,
) -> Result<(StatusCode, Json<Row>), ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Write).await?;
    let row = scope.registry_insert(&registry, &data).await.map_err(api_error)?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// One row.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/registries/{registry}/rows/{row}", tag = "registries",
    params(("tenant" = String, Path), ("registry" = String, Path), ("row" = i64, Path)),
    responses((status = 200, body = Row)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, registry, id)): ApiPath<(String, String, i64)>,
) -> Result<Json<Row>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    Ok(Json(scope.registry_row(&registry, id).await.map_err(api_error)?.into()))
}

/// Changes the fields the body names (`null` clears one).
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/registries/{registry}/rows/{row}", tag = "registries",
    params(("tenant" = String, Path), ("registry" = String, Path), ("row" = i64, Path)), request_body = Object,
    responses((status = 200, body = Row)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, registry, id)): ApiPath<(String, String, i64)>,
    ApiJson(data): ApiJson<Value>,
) -> Result<Json<Row>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Write).await?;
    Ok(Json(
        scope
            .registry_update(&registry, id, &data)
            .await
            .map_err(api_error)?
            .into(),
    ))
}

/// Deletes a row.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/registries/{registry}/rows/{row}", tag = "registries",
    params(("tenant" = String, Path), ("registry" = String, Path), ("row" = i64, Path)),
    responses((status = 204)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, registry, id)): ApiPath<(String, String, i64)>,
) -> Result<StatusCode, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Write).await?;
    scope.registry_delete(&registry, id).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}
