//! Who may touch which tenant: API keys (issued, hashed, revoked, last used), the principal a key
//! authenticates as, the access rule that turns a principal and a tenant into a [`TenantScope`],
//! and the audit log every change writes in its own transaction.
//!
//! The rule lives here, beside the queries, rather than in the server's handlers: a handler gets a
//! `TenantScope` only from [`Store::authorize`], so it cannot reach a tenant's rows without having
//! been checked. A tenant a principal may not see answers exactly like a tenant that does not
//! exist (`NotFound`), so keys cannot probe for other tenants' names; a tenant it may see but not
//! change answers `Forbidden`.

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::Tx as Transaction;
use crate::{Store, StoreError, TenantScope, now_micros};

/// Longest key label accepted (shown in listings and the audit log).
pub const MAX_LABEL_LEN: usize = 100;
/// Random bytes in a key's secret part: 256 bits, so a stored SHA-256 needs no salt or slow hash
/// (guessing the key is as hard as inverting the hash).
const KEY_SECRET_BYTES: usize = 32;
/// Random bytes in a key's public id (12 hex digits): unique enough to find the row.
const KEY_ID_BYTES: usize = 6;
/// Prefix of every key, so a leaked one is recognisable (secret scanners, logs).
pub const KEY_PREFIX: &str = "mc_";
/// How stale a key's `last_used_at` may be: writing it on every request would make every read a
/// write.
pub const LAST_USED_RESOLUTION_MICROS: i64 = 60_000_000;
/// Most audit rows returned per page.
pub const MAX_AUDIT_PAGE: i64 = 500;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs the platform: every tenant, every key.
    Operator,
    /// Onboards tenants and manages the tenants it onboarded.
    Partner,
    /// Changes its tenant's configuration.
    Admin,
    /// Reads its tenant.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Partner => "partner",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "operator" => Role::Operator,
            "partner" => Role::Partner,
            "admin" => Role::Admin,
            "viewer" => Role::Viewer,
            _ => return None,
        })
    }
}

/// Who is asking: the key a request authenticated with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub key_id: String,
    pub role: Role,
    /// The tenant of an `admin` or `viewer` key.
    pub tenant: Option<String>,
    /// The partner of a `partner` key.
    pub partner: Option<String>,
}

impl Principal {
    /// The local command line acting directly on the database (no key involved).
    pub fn local() -> Principal {
        Principal {
            key_id: "local".into(),
            role: Role::Operator,
            tenant: None,
            partner: None,
        }
    }

    /// How the audit log names this principal.
    pub fn actor(&self) -> String {
        if self.key_id == "local" {
            "local command line".into()
        } else {
            format!("key {} ({})", self.key_id, self.role.as_str())
        }
    }
}

/// What a request needs of a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Write,
}

/// Why a request on behalf of a principal was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Nothing by that name that this principal may see.
    #[error("{0}")]
    NotFound(String),
    /// Visible, but this principal's role may not do it.
    #[error("{0}")]
    Forbidden(String),
    /// It exists already, or changed meanwhile.
    #[error("{0}")]
    Conflict(String),
    /// The request itself is wrong.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AccessError {
    fn from(e: sqlx::Error) -> AccessError {
        AccessError::Store(e.into())
    }
}

fn no_tenant(tenant: &str) -> AccessError {
    AccessError::NotFound(format!("no tenant `{tenant}`"))
}

/// Why a key authenticates no one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// Not a key, not one of ours, or revoked (told apart to no one: a guesser learns nothing).
    Unknown,
    /// It expired at this time (µs): its holder should get a new one.
    Expired(i64),
}

/// A key to issue.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub role: Role,
    pub tenant: Option<String>,
    pub partner: Option<String>,
    pub label: String,
    /// When it stops working (µs since the epoch); `None`: when revoked.
    pub expires_at: Option<i64>,
}

/// A key as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRow {
    pub id: String,
    pub role: Role,
    pub tenant: Option<String>,
    pub partner: Option<String>,
    pub label: String,
    pub created_by: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub expires_at: Option<i64>,
}

/// One audit log row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub tenant: Option<String>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}

/// Which audit rows to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this tenant's rows (required for partners; implied for tenant keys).
    pub tenant: Option<String>,
    /// Only rows older than this id (paging).
    pub before: Option<i64>,
    pub limit: i64,
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| StoreError::Invalid(format!("no randomness available: {e}")))?;
    Ok(b)
}

pub(crate) fn hash_key(key: &str) -> String {
    sha256_hex(key.as_bytes())
}

/// Hex SHA-256 of `bytes`: how keys and session tokens are stored, and how the AI gateway names
/// a request in a run's journal.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits `mc_<id>_<secret>` into its id, or `None` if it is not shaped like a key.
fn key_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == KEY_ID_BYTES * 2 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty()).then_some(id)
}

/// Constant-time comparison, so response timing tells nothing about how much of a hash or token
/// matched.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

type KeyTuple = (
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);
const KEY_COLUMNS: &str =
    "id, role, tenant_id, partner, label, created_by, created_at, last_used_at, revoked_at, expires_at";

fn key_row(t: KeyTuple) -> Result<KeyRow, StoreError> {
    Ok(KeyRow {
        role: Role::parse(&t.1).ok_or_else(|| StoreError::Corrupt(format!("key {} has role `{}`", t.0, t.1)))?,
        id: t.0,
        tenant: t.2,
        partner: t.3,
        label: t.4,
        created_by: t.5,
        created_at: t.6,
        last_used_at: t.7,
        revoked_at: t.8,
        expires_at: t.9,
    })
}

type AuditTuple = (i64, i64, Option<String>, String, String, String, String);

fn audit_row((id, at, tenant, actor, action, target, detail): AuditTuple) -> AuditRow {
    AuditRow {
        id,
        at,
        tenant,
        actor,
        action,
        target,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
    }
}

/// Writes one audit row inside the transaction making the change it describes.
pub(crate) async fn audit(
    tx: &mut Transaction,
    who: &Principal,
    tenant: Option<&str>,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit_log (at, tenant_id, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(now_micros())
        .bind(tenant)
        .bind(who.actor())
        .bind(action)
        .bind(target)
        .bind(detail.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A valid partner or label text.
fn check_label(label: &str) -> Result<(), AccessError> {
    if label.chars().count() > MAX_LABEL_LEN || label.chars().any(char::is_control) {
        return Err(AccessError::Invalid(format!(
            "label must be at most {MAX_LABEL_LEN} characters without control characters"
        )));
    }
    Ok(())
}

impl Store {
    /// The partner that onboarded `tenant`, if the tenant exists (`Some(None)`: no partner).
    async fn tenant_partner(&self, tenant: &str) -> Result<Option<Option<String>>, StoreError> {
        let row: Option<(Option<String>,)> = sqlx::query_as("SELECT partner FROM tenants WHERE id = $1")
            .bind(tenant)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|(p,)| p))
    }

    /// The one door to a tenant's data for a principal: the scope if `who` may do `need` on
    /// `tenant`, else `NotFound` (may not see it, or it does not exist) or `Forbidden` (may see
    /// it, may not change it).
    pub async fn authorize<'a>(
        &'a self,
        who: &Principal,
        tenant: &'a str,
        need: Need,
    ) -> Result<TenantScope<'a>, AccessError> {
        let Some(partner) = self.tenant_partner(tenant).await? else {
            return Err(no_tenant(tenant));
        };
        let visible = match who.role {
            Role::Operator => true,
            Role::Partner => partner.is_some() && partner == who.partner,
            Role::Admin | Role::Viewer => who.tenant.as_deref() == Some(tenant),
        };
        if !visible {
            return Err(no_tenant(tenant));
        }
        if need == Need::Write && who.role == Role::Viewer {
            return Err(AccessError::Forbidden(
                "a viewer key can read this tenant but not change it".into(),
            ));
        }
        Ok(self.tenant(tenant))
    }

    /// The tenants `who` may see.
    pub async fn visible_tenants(&self, who: &Principal) -> Result<Vec<crate::TenantRow>, StoreError> {
        let all = self.tenants().await?;
        Ok(match who.role {
            Role::Operator => all,
            Role::Partner => all
                .into_iter()
                .filter(|t| t.partner.is_some() && t.partner == who.partner)
                .collect(),
            Role::Admin | Role::Viewer => all
                .into_iter()
                .filter(|t| who.tenant.as_deref() == Some(t.id.as_str()))
                .collect(),
        })
    }

    /// Creates an empty tenant on behalf of `who`: operators (optionally for a partner) and
    /// partners (for themselves) may.
    pub async fn create_tenant(
        &self,
        who: &Principal,
        id: &str,
        name: &str,
        partner: Option<&str>,
    ) -> Result<crate::TenantRow, AccessError> {
        let partner = match who.role {
            Role::Operator => partner.map(str::to_string),
            Role::Partner if partner.is_none() || partner == who.partner.as_deref() => who.partner.clone(),
            Role::Partner => {
                return Err(AccessError::Forbidden(
                    "a partner key creates tenants for its own partner only".into(),
                ));
            }
            Role::Admin | Role::Viewer => {
                return Err(AccessError::Forbidden(
                    "only operator and partner keys create tenants".into(),
                ));
            }
        };
        mc_config::valid_name(id).map_err(|m| AccessError::Invalid(format!("id: {m}")))?;
        if name.trim().is_empty() {
            return Err(AccessError::Invalid("name must not be empty".into()));
        }
        check_label(name)?;
        if let Some(p) = &partner {
            mc_config::valid_name(p).map_err(|m| AccessError::Invalid(format!("partner: {m}")))?;
        }
        let now = now_micros();
        let mut tx = self.write_tx().await?;
        let created = sqlx::query(
            "INSERT INTO tenants (id, name, partner, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(&partner)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if created == 0 {
            return Err(AccessError::Conflict(format!("tenant `{id}` exists already")));
        }
        audit(
            &mut tx,
            who,
            Some(id),
            "tenant.create",
            id,
            serde_json::json!({ "name": name, "partner": partner }),
        )
        .await?;
        tx.commit().await?;
        Ok(crate::TenantRow {
            id: id.to_string(),
            name: name.to_string(),
            partner,
            plan: crate::Plan::default().name().to_string(),
            budget_monthly: None,
            budget_per_run: None,
            created_at: now,
            updated_at: now,
        })
    }

    /// Whether an operator key that is not revoked exists (the first start creates one).
    pub async fn has_operator_key(&self) -> Result<bool, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM api_keys WHERE role = 'operator' AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $1) LIMIT 1",
        )
        .bind(now_micros())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// Issues a key on behalf of `who`, returning it with its secret, which is shown this once:
    /// only its hash is kept. Operators issue any key; partners and tenant admins issue admin and
    /// viewer keys for tenants they manage.
    pub async fn create_key(&self, who: &Principal, new: NewKey) -> Result<(KeyRow, String), AccessError> {
        check_label(&new.label)?;
        match new.role {
            Role::Operator | Role::Partner => {
                if who.role != Role::Operator {
                    return Err(AccessError::Forbidden(format!(
                        "only operator keys issue {} keys",
                        new.role.as_str()
                    )));
                }
                if new.tenant.is_some() {
                    return Err(AccessError::Invalid(format!(
                        "{} keys belong to no tenant",
                        new.role.as_str()
                    )));
                }
                match (&new.partner, new.role) {
                    (Some(p), Role::Partner) => {
                        mc_config::valid_name(p).map_err(|m| AccessError::Invalid(format!("partner: {m}")))?
                    }
                    (None, Role::Partner) => {
                        return Err(AccessError::Invalid("a partner key needs a partner name".into()));
                    }
                    (Some(_), _) => {
                        return Err(AccessError::Invalid("only partner keys name a partner".into()));
                    }
                    (None, _) => {}
                }
            }
            Role::Admin | Role::Viewer => {
                if new.partner.is_some() {
                    return Err(AccessError::Invalid("only partner keys name a partner".into()));
                }
                let Some(tenant) = &new.tenant else {
                    return Err(AccessError::Invalid(format!(
                        "{} keys belong to a tenant: name it",
                        new.role.as_str()
                    )));
                };
                self.authorize(who, tenant, Need::Write).await?;
            }
        }
        let id: String = random_bytes::<KEY_ID_BYTES>()?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<KEY_SECRET_BYTES>()?);
        let key = format!("{KEY_PREFIX}{id}_{secret}");
        let now = now_micros();
        if new.expires_at.is_some_and(|t| t <= now) {
            return Err(AccessError::Invalid("expires_at must be in the future".into()));
        }
        let row = KeyRow {
            id: id.clone(),
            role: new.role,
            tenant: new.tenant.clone(),
            partner: new.partner.clone(),
            label: new.label.clone(),
            created_by: who.actor(),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
            expires_at: new.expires_at,
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, hash, role, tenant_id, partner, label, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(hash_key(&key))
        .bind(new.role.as_str())
        .bind(&new.tenant)
        .bind(&new.partner)
        .bind(&new.label)
        .bind(&row.created_by)
        .bind(now)
        .bind(new.expires_at)
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            who,
            new.tenant.as_deref(),
            "key.create",
            &id,
            serde_json::json!({ "role": new.role, "partner": new.partner, "label": new.label }),
        )
        .await?;
        tx.commit().await?;
        Ok((row, key))
    }

    /// The principal a key stands for, or why it stands for none (unknown, malformed, revoked or
    /// expired). Marks the key used (at most once per [`LAST_USED_RESOLUTION_MICROS`]).
    pub async fn authenticate(&self, key: &str) -> Result<Result<Principal, KeyRefusal>, StoreError> {
        let Some(id) = key_id(key) else {
            return Ok(Err(KeyRefusal::Unknown));
        };
        self.key_principal(id, Some(key)).await
    }

    /// The principal of key `id`, checking `key` against its hash when given (a session already
    /// proved the key when it was opened). Marks the key used (at most once per
    /// [`LAST_USED_RESOLUTION_MICROS`]).
    pub(crate) async fn key_principal(
        &self,
        id: &str,
        key: Option<&str>,
    ) -> Result<Result<Principal, KeyRefusal>, StoreError> {
        /// hash, role, tenant, partner, last used, revoked, expires.
        type Row = (
            String,
            String,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT hash, role, tenant_id, partner, last_used_at, revoked_at, expires_at FROM api_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some((hash, role, tenant, partner, last_used, revoked, expires)) = row else {
            return Ok(Err(KeyRefusal::Unknown));
        };
        if revoked.is_some() || key.is_some_and(|key| !same(&hash, &hash_key(key))) {
            return Ok(Err(KeyRefusal::Unknown));
        }
        let now = now_micros();
        if let Some(at) = expires.filter(|at| *at <= now) {
            return Ok(Err(KeyRefusal::Expired(at)));
        }
        if last_used.is_none_or(|t| now - t > LAST_USED_RESOLUTION_MICROS) {
            sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(self.pool())
                .await?;
        }
        let role = Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("key {id} has role `{role}`")))?;
        Ok(Ok(Principal {
            key_id: id.to_string(),
            role,
            tenant,
            partner,
        }))
    }

    /// The keys `who` manages: every key for operators; the keys of their tenants for partners;
    /// their tenant's keys for admins. Viewers manage none.
    pub async fn keys(&self, who: &Principal) -> Result<Vec<KeyRow>, AccessError> {
        let rows: Vec<KeyTuple> =
            match who.role {
                Role::Operator => {
                    sqlx::query_as(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"))
                        .fetch_all(self.pool())
                        .await?
                }
                Role::Partner => sqlx::query_as(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id IN (SELECT id FROM tenants WHERE partner = $1) \
                     OR id = $2 ORDER BY created_at, id"
                ))
                .bind(&who.partner)
                .bind(&who.key_id)
                .fetch_all(self.pool())
                .await?,
                Role::Admin => {
                    sqlx::query_as(&format!(
                        "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id"
                    ))
                    .bind(&who.tenant)
                    .fetch_all(self.pool())
                    .await?
                }
                Role::Viewer => {
                    return Err(AccessError::Forbidden("a viewer key cannot manage keys".into()));
                }
            };
        Ok(rows.into_iter().map(key_row).collect::<Result<_, _>>()?)
    }

    /// Revokes a key `who` manages (see [`Store::keys`]). Revoking is immediate: the next request
    /// with it is refused. Revoking twice is not an error.
    pub async fn revoke_key(&self, who: &Principal, id: &str) -> Result<KeyRow, AccessError> {
        let not_found = || AccessError::NotFound(format!("no key `{id}`"));
        let visible = self.keys(who).await?;
        let Some(mut key) = visible.into_iter().find(|k| k.id == id) else {
            return Err(not_found());
        };
        if key.id != who.key_id && who.role == Role::Partner && key.role == Role::Partner {
            return Err(not_found());
        }
        if key.id == who.key_id {
            // Revoking the key in hand would lock its holder out mid-session; another key of the
            // same standing can do it.
            return Err(AccessError::Conflict(
                "a key cannot revoke itself: use another key".into(),
            ));
        }
        if key.revoked_at.is_some() {
            return Ok(key);
        }
        let now = now_micros();
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            who,
            key.tenant.as_deref(),
            "key.revoke",
            id,
            serde_json::json!({ "role": key.role }),
        )
        .await?;
        tx.commit().await?;
        key.revoked_at = Some(now);
        Ok(key)
    }

    /// The audit rows of every tenant a partner manages.
    async fn partner_audit_log(&self, who: &Principal, filter: &AuditFilter) -> Result<Vec<AuditRow>, AccessError> {
        let rows: Vec<AuditTuple> = sqlx::query_as(
            "SELECT id, at, tenant_id, actor, action, target, detail FROM audit_log \
             WHERE tenant_id IN (SELECT id FROM tenants WHERE partner = $1) AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(&who.partner)
        .bind(filter.before.unwrap_or(i64::MAX))
        .bind(filter.limit.clamp(1, MAX_AUDIT_PAGE))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(audit_row).collect())
    }

    /// Audit rows `who` may read, newest first: any for operators; a tenant's own for its keys
    /// and for the partner that manages it.
    pub async fn audit_log(&self, who: &Principal, filter: &AuditFilter) -> Result<Vec<AuditRow>, AccessError> {
        let tenant = match who.role {
            Role::Operator => filter.tenant.clone(),
            Role::Partner => match &filter.tenant {
                Some(t) => {
                    self.authorize(who, t, Need::Read).await?;
                    Some(t.clone())
                }
                None => return self.partner_audit_log(who, filter).await,
            },
            Role::Admin | Role::Viewer => {
                let own = who.tenant.clone();
                if filter.tenant.is_some() && filter.tenant != own {
                    return Err(no_tenant(filter.tenant.as_deref().unwrap_or_default()));
                }
                own
            }
        };
        let limit = filter.limit.clamp(1, MAX_AUDIT_PAGE);
        let before = filter.before.unwrap_or(i64::MAX);
        let rows: Vec<AuditTuple> = match &tenant {
            Some(t) => {
                sqlx::query_as(
                    "SELECT id, at, tenant_id, actor, action, target, detail FROM audit_log \
                     WHERE tenant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
                )
                .bind(t)
                .bind(before)
                .bind(limit)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query_as(
                    "SELECT id, at, tenant_id, actor, action, target, detail FROM audit_log \
                     WHERE id < $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(before)
                .bind(limit)
                .fetch_all(self.pool())
                .await?
            }
        };
        Ok(rows.into_iter().map(audit_row).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_found_only_in_well_formed_keys() {
        assert_eq!(key_id("mc_0123456789ab_secret"), Some("0123456789ab"));
        assert_eq!(key_id("mc_0123456789ab_"), None);
        assert_eq!(key_id("mc_0123456789a_secret"), None);
        assert_eq!(key_id("xx_0123456789ab_secret"), None);
        assert_eq!(key_id("mc_zz23456789ab_secret"), None);
    }

    #[tokio::test]
    async fn keys_and_secrets_are_stored_only_hashed_and_sealed() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let who = Principal::local();
        let (_, key) = store
            .create_key(
                &who,
                NewKey {
                    role: Role::Operator,
                    tenant: None,
                    partner: None,
                    label: "x".into(),
                    expires_at: None,
                },
            )
            .await
            .unwrap();
        store.create_tenant(&who, "acme", "Acme", None).await.unwrap();
        let sealer = crate::Sealer::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
        store
            .tenant("acme")
            .put_secret(&who, &sealer, "crm", "very-secret-value")
            .await
            .unwrap();
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT hash || ' ' || id || ' ' || label FROM api_keys UNION ALL SELECT sealed FROM secrets \
             UNION ALL SELECT detail || actor || target FROM audit_log",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        let all: String = rows.into_iter().map(|(t,)| t).collect();
        let secret_part = key.rsplit('_').next().unwrap();
        assert!(!all.contains(secret_part), "the key's secret is not stored");
        assert!(!all.contains("very-secret-value"), "the secret is sealed");
        assert_eq!(
            store
                .tenant("acme")
                .secret_values(&sealer, &["crm".into()])
                .await
                .unwrap()["crm"],
            "very-secret-value"
        );
        assert!(store.authenticate(&key).await.unwrap().is_ok());
    }

    #[test]
    fn comparison_needs_equal_text() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
