//! White-label brands: operators (any partner) and partners (their own) set a partner's name,
//! logo and colours; operators assign a tenant to a partner; any key that reads a tenant reads
//! its branding, which the dashboard applies after sign-in.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_config::BrandSpec;
use mc_store::{BrandRow, Need};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::tenants::Tenant;
use crate::api::time;
use crate::auth::Auth;
use crate::error::{ApiJson, ApiPath};
use crate::{ApiError, AppState};

/// A partner's brand.
#[derive(Debug, Serialize, ToSchema)]
pub struct Brand {
    /// The partner (as named on its keys and tenants).
    pub partner: String,
    /// Shown instead of "Mission Control".
    pub name: String,
    /// A `data:image/...;base64,` or `https://` URL; `null` keeps Mission Control's logo.
    pub logo: Option<String>,
    /// `#rrggbb`.
    #[schema(pattern = "^#[0-9a-f]{6}$")]
    pub primary_color: String,
    /// `#rrggbb`; `null`: the primary colour.
    #[schema(pattern = "^#[0-9a-f]{6}$")]
    pub accent_color: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<BrandRow> for Brand {
    fn from(b: BrandRow) -> Brand {
        Brand {
            partner: b.partner,
            name: b.brand.name,
            logo: b.brand.logo,
            primary_color: b.brand.primary_color,
            accent_color: b.brand.accent_color,
            created_at: time(b.created_at),
            updated_at: time(b.updated_at),
        }
    }
}

/// A brand to set. Colours must read well on white: the primary colour at least 4.5:1 (text and
/// white button labels), the accent at least 3:1.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandBody {
    #[schema(min_length = 1, max_length = 60)]
    pub name: String,
    /// A `data:image/(png|jpeg|gif|webp|svg+xml);base64,` URL of at most 64 KiB, or an `https://`
    /// URL.
    #[serde(default)]
    pub logo: Option<String>,
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    pub primary_color: String,
    #[serde(default)]
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    pub accent_color: Option<String>,
}

/// A tenant's branding as the dashboard applies it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantBrandingDto {
    /// The partner the tenant belongs to.
    pub partner: Option<String>,
    /// That partner's brand; `null`: Mission Control's own look.
    pub brand: Option<Brand>,
}

/// Which partner a tenant belongs to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerBody {
    /// A partner with a brand or a key; `null` for none.
    pub partner: Option<String>,
}

/// The brands this key manages (operators: all; a partner: its own).
#[utoipa::path(get, path = "/api/v1/brands", tag = "brands", responses((status = 200, body = Vec<Brand>)))]
pub async fn list(State(state): State<AppState>, Auth(who): Auth) -> Result<Json<Vec<Brand>>, ApiError> {
    Ok(Json(
        state.store.brands(&who).await?.into_iter().map(Brand::from).collect(),
    ))
}

/// A partner's brand.
#[utoipa::path(get, path = "/api/v1/brands/{partner}", tag = "brands",
    params(("partner" = String, Path)), responses((status = 200, body = Brand)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(partner): ApiPath<String>,
) -> Result<Json<Brand>, ApiError> {
    Ok(Json(state.store.brand(&who, &partner).await?.into()))
}

/// Creates (201) or replaces (200) a partner's brand. A bad value is answered 400 naming its
/// field (`name`, `logo`, `primary_color`, `accent_color`).
#[utoipa::path(put, path = "/api/v1/brands/{partner}", tag = "brands", request_body = BrandBody,
    params(("partner" = String, Path)), responses((status = 200, body = Brand), (status = 201, body = Brand)))]
pub async fn put(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(partner): ApiPath<String>,
    ApiJson(body): ApiJson<BrandBody>,
) -> Result<(StatusCode, Json<Brand>), ApiError> {
    let spec = BrandSpec {
        name: body.name,
        logo: body.logo,
        primary_color: body.primary_color,
        accent_color: body.accent_color,
    };
    let (row, created) = state.store.set_brand(&who, &partner, &spec).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(row.into())))
}

/// Removes a partner's brand: its tenants see Mission Control's look again.
#[utoipa::path(delete, path = "/api/v1/brands/{partner}", tag = "brands",
    params(("partner" = String, Path)), responses((status = 204)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(partner): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_brand(&who, &partner).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's branding: its partner and that partner's brand.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/branding", tag = "brands",
    params(("tenant" = String, Path)), responses((status = 200, body = TenantBrandingDto)))]
pub async fn branding(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<TenantBrandingDto>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    let b = scope
        .branding()
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no tenant `{tenant}`")))?;
    Ok(Json(TenantBrandingDto {
        partner: b.partner,
        brand: b.brand.map(Brand::from),
    }))
}

/// Assigns the tenant to a partner, whose keys then see it and whose brand it shows (operators).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/partner", tag = "brands", request_body = PartnerBody,
    params(("tenant" = String, Path)), responses((status = 200, body = Tenant)))]
pub async fn set_partner(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(body): ApiJson<PartnerBody>,
) -> Result<Json<Tenant>, ApiError> {
    let row = state
        .store
        .set_tenant_partner(&who, &tenant, body.partner.as_deref())
        .await?;
    Ok(Json(row.into()))
}
