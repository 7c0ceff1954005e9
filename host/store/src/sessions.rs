//! Dashboard sessions: signing in with an API key opens a session whose random token the browser
//! keeps in an HttpOnly cookie. The store keeps only the token's hash; every use re-reads the key
//! it was opened with, so revoking or expiring the key ends its sessions at once.

use base64::Engine as _;

use crate::access::{hash_key, random_bytes};
use crate::{KeyRefusal, Principal, Store, StoreError, now_micros};

/// How long a session lasts without signing in again: a working day and then some, so a
/// forgotten tab on a shared machine does not stay signed in for a week.
pub const SESSION_LIFETIME_MICROS: i64 = 12 * 3_600 * 1_000_000;
/// Random bytes in a session token and in its CSRF token: unguessable, like a key's secret.
const TOKEN_BYTES: usize = 32;
/// Prefix of session tokens, so one found in a log is recognisable (and never taken for a key).
const SESSION_PREFIX: &str = "mcs_";

/// An open session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The cookie's value; shown only when the session opens.
    pub token: String,
    /// What the dashboard sends back in `X-CSRF-Token` on every change.
    pub csrf: String,
    pub principal: Principal,
    /// When it ends (µs since the epoch).
    pub expires_at: i64,
}

fn random_token() -> Result<String, StoreError> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<TOKEN_BYTES>()?))
}

impl Store {
    /// Opens a session for `key`, or says why the key opens none.
    pub async fn sign_in(&self, key: &str) -> Result<Result<Session, KeyRefusal>, StoreError> {
        let principal = match self.authenticate(key).await? {
            Ok(p) => p,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let token = format!("{SESSION_PREFIX}{}", random_token()?);
        let csrf = random_token()?;
        let now = now_micros();
        let expires_at = now + SESSION_LIFETIME_MICROS;
        // Sessions past their end are removed by whoever signs in next: cheap, and it needs no
        // sweeper of its own.
        sqlx::query("DELETE FROM ui_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        sqlx::query("INSERT INTO ui_sessions (hash, key_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(hash_key(&token))
            .bind(&principal.key_id)
            .bind(&csrf)
            .bind(now)
            .bind(expires_at)
            .execute(self.pool())
            .await?;
        Ok(Ok(Session {
            token,
            csrf,
            principal,
            expires_at,
        }))
    }

    /// The session `token` stands for, or why none (unknown, ended, or its key revoked or
    /// expired). The returned session's `token` is the one given.
    pub async fn session(&self, token: &str) -> Result<Result<Session, KeyRefusal>, StoreError> {
        if !token.starts_with(SESSION_PREFIX) {
            return Ok(Err(KeyRefusal::Unknown));
        }
        let row: Option<(String, String, i64)> =
            sqlx::query_as("SELECT key_id, csrf, expires_at FROM ui_sessions WHERE hash = $1")
                .bind(hash_key(token))
                .fetch_optional(self.pool())
                .await?;
        let Some((key_id, csrf, expires_at)) = row else {
            return Ok(Err(KeyRefusal::Unknown));
        };
        if expires_at <= now_micros() {
            return Ok(Err(KeyRefusal::Expired(expires_at)));
        }
        Ok(self.key_principal(&key_id, None).await?.map(|principal| Session {
            token: token.to_string(),
            csrf,
            principal,
            expires_at,
        }))
    }

    /// Ends the session `token` stands for (nothing happens for an unknown one).
    pub async fn sign_out(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM ui_sessions WHERE hash = $1")
            .bind(hash_key(token))
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
