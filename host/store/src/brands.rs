//! White-label brands: one per partner, set by an operator or by the partner itself, and shown
//! on the dashboards of the partner's tenants (a tenant belongs to the partner that created it,
//! or to the one an operator assigns it to). Values are checked by `mc_config::BrandSpec::check`
//! before they are written; every change is audited in its own transaction.

use mc_config::BrandSpec;

use crate::access::{AccessError, Principal, Role, audit};
use crate::{Store, StoreError, TenantRow, TenantScope, now_micros};

/// A partner's brand as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandRow {
    pub partner: String,
    pub brand: BrandSpec,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A tenant's branding: its partner, and that partner's brand if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantBranding {
    pub partner: Option<String>,
    pub brand: Option<BrandRow>,
}

type BrandTuple = (String, String, Option<String>, String, Option<String>, i64, i64);

const BRAND_COLUMNS: &str = "partner, name, logo, primary_color, accent_color, created_at, updated_at";

fn brand_row((partner, name, logo, primary_color, accent_color, created_at, updated_at): BrandTuple) -> BrandRow {
    BrandRow {
        partner,
        brand: BrandSpec {
            name,
            logo,
            primary_color,
            accent_color,
        },
        created_at,
        updated_at,
    }
}

/// Whether `who` manages the brand of `partner`: operators every brand, a partner key its own.
fn manages(who: &Principal, partner: &str) -> Result<(), AccessError> {
    match who.role {
        Role::Operator => Ok(()),
        Role::Partner if who.partner.as_deref() == Some(partner) => Ok(()),
        Role::Partner => Err(AccessError::NotFound(format!("no brand of partner `{partner}`"))),
        Role::Admin | Role::Viewer => Err(AccessError::Forbidden(
            "only operator and partner keys manage brands".into(),
        )),
    }
}

fn valid_partner(partner: &str) -> Result<(), AccessError> {
    mc_config::valid_name(partner).map_err(|m| AccessError::Invalid(format!("partner: {m}")))
}

impl Store {
    /// Sets (creates or replaces) the brand of `partner`. Returns it as stored and whether it
    /// is new.
    pub async fn set_brand(
        &self,
        who: &Principal,
        partner: &str,
        spec: &BrandSpec,
    ) -> Result<(BrandRow, bool), AccessError> {
        manages(who, partner)?;
        valid_partner(partner)?;
        let brand = spec.check().map_err(|e| AccessError::Invalid(e.to_string()))?;
        let now = now_micros();
        let mut tx = self.write_tx().await?;
        let old: Option<(i64,)> = sqlx::query_as("SELECT created_at FROM brands WHERE partner = $1")
            .bind(partner)
            .fetch_optional(&mut *tx)
            .await?;
        let created_at = old.map_or(now, |(c,)| c);
        sqlx::query(
            "INSERT INTO brands (partner, name, logo, primary_color, accent_color, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (partner) DO UPDATE SET name = excluded.name, \
             logo = excluded.logo, primary_color = excluded.primary_color, accent_color = excluded.accent_color, \
             updated_at = excluded.updated_at",
        )
        .bind(partner)
        .bind(&brand.name)
        .bind(&brand.logo)
        .bind(&brand.primary_color)
        .bind(&brand.accent_color)
        .bind(created_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            who,
            None,
            "brand.set",
            partner,
            // The logo can be large; the log keeps its size.
            serde_json::json!({
                "name": brand.name,
                "primary_color": brand.primary_color,
                "accent_color": brand.accent_color,
                "logo_bytes": brand.logo.as_ref().map(String::len),
            }),
        )
        .await?;
        tx.commit().await?;
        Ok((
            BrandRow {
                partner: partner.to_string(),
                brand,
                created_at,
                updated_at: now,
            },
            old.is_none(),
        ))
    }

    /// The brand of `partner`.
    pub async fn brand(&self, who: &Principal, partner: &str) -> Result<BrandRow, AccessError> {
        manages(who, partner)?;
        let row: Option<BrandTuple> = sqlx::query_as(&format!("SELECT {BRAND_COLUMNS} FROM brands WHERE partner = $1"))
            .bind(partner)
            .fetch_optional(self.pool())
            .await?;
        row.map(brand_row)
            .ok_or_else(|| AccessError::NotFound(format!("no brand of partner `{partner}`")))
    }

    /// The brands `who` manages: every brand for operators, its own for a partner.
    pub async fn brands(&self, who: &Principal) -> Result<Vec<BrandRow>, AccessError> {
        let rows: Vec<BrandTuple> = match who.role {
            Role::Operator => {
                sqlx::query_as(&format!("SELECT {BRAND_COLUMNS} FROM brands ORDER BY partner"))
                    .fetch_all(self.pool())
                    .await?
            }
            Role::Partner => {
                sqlx::query_as(&format!("SELECT {BRAND_COLUMNS} FROM brands WHERE partner = $1"))
                    .bind(&who.partner)
                    .fetch_all(self.pool())
                    .await?
            }
            Role::Admin | Role::Viewer => {
                return Err(AccessError::Forbidden(
                    "only operator and partner keys manage brands".into(),
                ));
            }
        };
        Ok(rows.into_iter().map(brand_row).collect())
    }

    /// Removes the brand of `partner`: its tenants see Mission Control's again.
    pub async fn delete_brand(&self, who: &Principal, partner: &str) -> Result<(), AccessError> {
        manages(who, partner)?;
        let mut tx = self.write_tx().await?;
        let gone = sqlx::query("DELETE FROM brands WHERE partner = $1")
            .bind(partner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone == 0 {
            return Err(AccessError::NotFound(format!("no brand of partner `{partner}`")));
        }
        audit(&mut tx, who, None, "brand.delete", partner, serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Assigns `tenant` to `partner` (or to none), operators only. The partner must be known:
    /// it has a brand or a key. Its keys then see the tenant, and its brand is shown on it.
    pub async fn set_tenant_partner(
        &self,
        who: &Principal,
        tenant: &str,
        partner: Option<&str>,
    ) -> Result<TenantRow, AccessError> {
        let scope = self.authorize(who, tenant, crate::Need::Write).await?;
        if who.role != Role::Operator {
            return Err(AccessError::Forbidden(
                "only operators assign a tenant to a partner".into(),
            ));
        }
        let mut tx = self.write_tx().await?;
        if let Some(p) = partner {
            valid_partner(p)?;
            let (known,): (i64,) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM brands WHERE partner = $1) + \
                 (SELECT COUNT(*) FROM api_keys WHERE partner = $1)",
            )
            .bind(p)
            .fetch_one(&mut *tx)
            .await?;
            if known == 0 {
                return Err(AccessError::Invalid(format!(
                    "partner: unknown partner `{p}`: set its brand (PUT /api/v1/brands/{p}) or issue it a key first"
                )));
            }
        }
        sqlx::query("UPDATE tenants SET partner = $1, updated_at = $2 WHERE id = $3")
            .bind(partner)
            .bind(now_micros())
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            who,
            Some(tenant),
            "tenant.partner",
            tenant,
            serde_json::json!({ "partner": partner }),
        )
        .await?;
        tx.commit().await?;
        scope
            .get()
            .await?
            .ok_or_else(|| AccessError::NotFound(format!("no tenant `{tenant}`")))
    }
}

impl TenantScope<'_> {
    /// The tenant's partner and that partner's brand (one statement); `None` if there is no
    /// such tenant.
    pub async fn branding(&self) -> Result<Option<TenantBranding>, StoreError> {
        let columns = BRAND_COLUMNS
            .split(',')
            .map(|c| format!("b.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        type Row = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<i64>,
        );
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT t.partner, {columns} FROM tenants t LEFT JOIN brands b ON b.partner = t.partner WHERE t.id = $1"
        ))
        .bind(self.id())
        .fetch_optional(self.store().pool())
        .await?;
        Ok(
            row.map(|(partner, b_partner, name, logo, primary, accent, created, updated)| {
                let brand = match (b_partner, name, primary, created, updated) {
                    (Some(p), Some(name), Some(primary), Some(created), Some(updated)) => {
                        Some(brand_row((p, name, logo, primary, accent, created, updated)))
                    }
                    _ => None,
                };
                TenantBranding { partner, brand }
            }),
        )
    }
}
