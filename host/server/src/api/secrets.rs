//! Tenant secrets: list names, set (sealed at rest), delete. A value is never returned.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_store::{Need, SecretMeta};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::time;
use crate::auth::Auth;
use crate::error::{ApiJson, ApiPath};
use crate::{ApiError, AppState};

/// A secret as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Secret {
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<SecretMeta> for Secret {
    fn from(s: SecretMeta) -> Secret {
        Secret {
            name: s.name,
            created_at: time(s.created_at),
            updated_at: time(s.updated_at),
        }
    }
}

/// A secret's value. Its `Debug` does not show it, so it cannot end up in a log.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretBody {
    #[schema(min_length = 1, max_length = 16384)]
    pub value: String,
}

impl std::fmt::Debug for SecretBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBody(..)")
    }
}

/// The names of the tenant's secrets.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/secrets", tag = "secrets",
    params(("tenant" = String, Path)), responses((status = 200, body = Vec<Secret>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Vec<Secret>>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    Ok(Json(scope.secrets().await?.into_iter().map(Secret::from).collect()))
}

/// Creates or replaces a secret. Agents read it only if their configuration grants it.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/secrets/{secret}", tag = "secrets",
    params(("tenant" = String, Path), ("secret" = String, Path)), request_body = SecretBody,
    responses((status = 200, body = Secret)))]
pub async fn put(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SecretBody>,
) -> Result<Json<Secret>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Write).await?;
    let meta = scope.put_secret(&who, state.sealer()?, &name, &body.value).await?;
    Ok(Json(meta.into()))
}

/// Deletes a secret.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/secrets/{secret}", tag = "secrets",
    params(("tenant" = String, Path), ("secret" = String, Path)), responses((status = 204)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Write).await?;
    scope.delete_secret(&who, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
