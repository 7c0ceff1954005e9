//! API keys: who am I, list, issue (the key is shown once), revoke.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_store::{KeyRow, NewKey, Principal, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::{time, time_opt};
use crate::auth::Auth;
use crate::error::{ApiJson, ApiPath};
use crate::{ApiError, AppState};

/// The key a request authenticated with.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    pub key_id: String,
    /// `operator`, `partner`, `admin` or `viewer`.
    pub role: String,
    pub tenant: Option<String>,
    pub partner: Option<String>,
}

impl From<Principal> for WhoAmI {
    fn from(p: Principal) -> WhoAmI {
        WhoAmI {
            key_id: p.key_id,
            role: p.role.as_str().into(),
            tenant: p.tenant,
            partner: p.partner,
        }
    }
}

/// An API key (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct Key {
    pub id: String,
    pub role: String,
    pub tenant: Option<String>,
    pub partner: Option<String>,
    pub label: String,
    pub created_by: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    pub expires_at: Option<String>,
}

impl From<KeyRow> for Key {
    fn from(k: KeyRow) -> Key {
        Key {
            id: k.id,
            role: k.role.as_str().into(),
            tenant: k.tenant,
            partner: k.partner,
            label: k.label,
            created_by: k.created_by,
            created_at: time(k.created_at),
            last_used_at: time_opt(k.last_used_at),
            revoked_at: time_opt(k.revoked_at),
            expires_at: time_opt(k.expires_at),
        }
    }
}

/// A key to issue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    #[schema(value_type = String, pattern = "^(operator|partner|admin|viewer)$")]
    pub role: Role,
    /// The tenant of an admin or viewer key.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The partner of a partner key.
    #[serde(default)]
    pub partner: Option<String>,
    /// What the key is for.
    #[serde(default)]
    #[schema(max_length = 100)]
    pub label: Option<String>,
    /// When the key stops working (RFC 3339, in the future); default: when revoked.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// An issued key: `key` is shown this once and cannot be read again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    pub key: String,
    #[serde(flatten)]
    pub info: Key,
}

/// The key this request authenticated with.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "keys", responses((status = 200, body = WhoAmI)))]
pub async fn whoami(Auth(who): Auth) -> Json<WhoAmI> {
    Json(who.into())
}

/// The keys this key manages.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", responses((status = 200, body = Vec<Key>)))]
pub async fn list(State(state): State<AppState>, Auth(who): Auth) -> Result<Json<Vec<Key>>, ApiError> {
    Ok(Json(state.store.keys(&who).await?.into_iter().map(Key::from).collect()))
}

/// Issues a key. Operators issue any key; partners and tenant admins issue admin and viewer keys
/// of the tenants they manage.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = NewKeyBody,
    responses((status = 201, body = CreatedKey)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiJson(body): ApiJson<NewKeyBody>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let expires_at = body
        .expires_at
        .as_deref()
        .map(|t| {
            t.parse::<jiff::Timestamp>()
                .map(|t| t.as_microsecond())
                .map_err(|e| ApiError::BadRequest(format!("expires_at `{t}` is not an RFC 3339 time: {e}")))
        })
        .transpose()?;
    let (row, key) = state
        .store
        .create_key(
            &who,
            NewKey {
                role: body.role,
                tenant: body.tenant,
                partner: body.partner,
                label: body.label.unwrap_or_default(),
                expires_at,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, info: row.into() })))
}

/// Revokes a key: the next request with it is refused.
#[utoipa::path(delete, path = "/api/v1/keys/{key}", tag = "keys", params(("key" = String, Path)),
    responses((status = 200, body = Key)))]
pub async fn revoke(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Key>, ApiError> {
    Ok(Json(state.store.revoke_key(&who, &id).await?.into()))
}
