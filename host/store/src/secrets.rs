//! Tenant secrets (provider API keys, HTTP credentials for plugins): sealed at rest with the
//! deployment's key, listed by name only, opened only for a run whose agent was granted them.
//!
//! Sealing is XChaCha20-Poly1305 with a random 192-bit nonce per value (random nonces that long
//! never collide in practice, so no counter has to be kept across nodes) and the tenant and secret
//! name as associated data: a sealed value copied into another tenant's row, or renamed, fails to
//! open instead of leaking into the wrong place.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::Serialize;

use crate::access::{AccessError, Principal, audit};
use crate::{StoreError, TenantScope, now_micros};

/// Bytes of a sealing key.
pub const SECRET_KEY_BYTES: usize = 32;
/// Bytes of a nonce (XChaCha20).
const NONCE_BYTES: usize = 24;
/// Largest secret value accepted: keys and credentials, not documents.
pub const MAX_SECRET_BYTES: usize = 16 * 1024;
/// Most secrets one tenant keeps.
pub const MAX_SECRETS_PER_TENANT: i64 = 200;

/// The deployment's sealing key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

/// Why a sealing key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the secret key must be {SECRET_KEY_BYTES} bytes in base64 (e.g. `openssl rand -base64 32`): {0}")]
    Malformed(String),
    #[error("cannot read or create the secret key file {path}: {source}")]
    File { path: String, source: std::io::Error },
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl Sealer {
    /// A sealer from a base64 key (as in `MISSIONCTL_SECRET_KEY`).
    pub fn from_base64(text: &str) -> Result<Sealer, KeyError> {
        let bytes = b64()
            .decode(text.trim())
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        if bytes.len() != SECRET_KEY_BYTES {
            return Err(KeyError::Malformed(format!("got {} bytes", bytes.len())));
        }
        Ok(Sealer {
            cipher: XChaCha20Poly1305::new_from_slice(&bytes).map_err(|e| KeyError::Malformed(e.to_string()))?,
        })
    }

    /// The sealer of the key file at `path`, creating the file (readable by its owner only) with
    /// a fresh random key when it does not exist. Nodes sharing a database must share the file.
    pub fn from_file(path: &Path) -> Result<Sealer, KeyError> {
        let file_err = |source| KeyError::File {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Sealer::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; SECRET_KEY_BYTES];
                getrandom::getrandom(&mut key).map_err(|e| file_err(std::io::Error::other(e.to_string())))?;
                let text = b64().encode(key);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(file_err)?;
                }
                write_private(path, &text).map_err(file_err)?;
                Sealer::from_base64(&text)
            }
            Err(e) => Err(file_err(e)),
        }
    }

    fn aad(tenant: &str, name: &str) -> Vec<u8> {
        format!("{tenant}\0{name}").into_bytes()
    }

    /// Seals `value` for the secret `name` of `tenant`.
    pub fn seal(&self, tenant: &str, name: &str, value: &[u8]) -> Result<String, StoreError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::getrandom(&mut nonce).map_err(|e| StoreError::Invalid(format!("no randomness available: {e}")))?;
        let aad = Sealer::aad(tenant, name);
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: value, aad: &aad })
            .map_err(|_| StoreError::Invalid("sealing failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(b64().encode(out))
    }

    /// Opens what [`Sealer::seal`] sealed for the same tenant and name.
    pub fn open(&self, tenant: &str, name: &str, sealed: &str) -> Result<Vec<u8>, StoreError> {
        let bad = || {
            StoreError::Corrupt(format!(
                "secret `{name}` of tenant `{tenant}` does not open with this key"
            ))
        };
        let bytes = b64().decode(sealed).map_err(|_| bad())?;
        if bytes.len() < NONCE_BYTES {
            return Err(bad());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let aad = Sealer::aad(tenant, name);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: &aad })
            .map_err(|_| bad())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// A secret as listed: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretMeta {
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TenantScope<'_> {
    /// The names of its secrets.
    pub async fn secrets(&self) -> Result<Vec<SecretMeta>, StoreError> {
        let rows: Vec<(String, i64, i64)> =
            sqlx::query_as("SELECT name, created_at, updated_at FROM secrets WHERE tenant_id = $1 ORDER BY name")
                .bind(self.id())
                .fetch_all(self.store().pool())
                .await?;
        Ok(rows
            .into_iter()
            .map(|(name, created_at, updated_at)| SecretMeta {
                name,
                created_at,
                updated_at,
            })
            .collect())
    }

    /// Creates or replaces the secret `name`. Returns its listing entry.
    pub async fn put_secret(
        &self,
        who: &Principal,
        sealer: &Sealer,
        name: &str,
        value: &str,
    ) -> Result<SecretMeta, AccessError> {
        mc_config::valid_name(name).map_err(|m| AccessError::Invalid(format!("secret name: {m}")))?;
        if value.is_empty() || value.len() > MAX_SECRET_BYTES {
            return Err(AccessError::Invalid(format!(
                "a secret's value must be 1 to {MAX_SECRET_BYTES} bytes"
            )));
        }
        let sealed = sealer.seal(self.id(), name, value.as_bytes())?;
        let now = now_micros();
        let mut tx = self.store().write_tx().await?;
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM secrets WHERE tenant_id = $1 AND name <> $2")
            .bind(self.id())
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        if count >= MAX_SECRETS_PER_TENANT {
            return Err(AccessError::Invalid(format!(
                "a tenant keeps at most {MAX_SECRETS_PER_TENANT} secrets"
            )));
        }
        let (created_at,): (i64,) = sqlx::query_as(
            "INSERT INTO secrets (tenant_id, name, sealed, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at \
             RETURNING created_at",
        )
        .bind(self.id())
        .bind(name)
        .bind(&sealed)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        // The audit row names the secret, never its value.
        audit(&mut tx, who, Some(self.id()), "secret.put", name, serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(SecretMeta {
            name: name.to_string(),
            created_at,
            updated_at: now,
        })
    }

    /// Deletes the secret `name`.
    pub async fn delete_secret(&self, who: &Principal, name: &str) -> Result<(), AccessError> {
        let mut tx = self.store().write_tx().await?;
        let deleted = sqlx::query("DELETE FROM secrets WHERE tenant_id = $1 AND name = $2")
            .bind(self.id())
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(AccessError::NotFound(format!("no secret `{name}`")));
        }
        audit(
            &mut tx,
            who,
            Some(self.id()),
            "secret.delete",
            name,
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The values of the secrets `names` (those that exist), opened for a run whose agent was
    /// granted them.
    pub async fn secret_values(
        &self,
        sealer: &Sealer,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let mut out = BTreeMap::new();
        if names.is_empty() {
            return Ok(out);
        }
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT name, sealed FROM secrets WHERE tenant_id = $1")
            .bind(self.id())
            .fetch_all(self.store().pool())
            .await?;
        for (name, sealed) in rows {
            if names.contains(&name) {
                let value = sealer.open(self.id(), &name, &sealed)?;
                let value = String::from_utf8(value)
                    .map_err(|_| StoreError::Corrupt(format!("secret `{name}` is not text")))?;
                out.insert(name, value);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_tenant_and_name() {
        let s = Sealer::from_base64(&b64().encode([7u8; 32])).unwrap();
        let sealed = s.seal("acme", "openai", b"sk-123").unwrap();
        assert!(!sealed.contains("sk-123"));
        assert_eq!(s.open("acme", "openai", &sealed).unwrap(), b"sk-123");
        assert!(s.open("globex", "openai", &sealed).is_err());
        assert!(s.open("acme", "anthropic", &sealed).is_err());
        let other = Sealer::from_base64(&b64().encode([8u8; 32])).unwrap();
        assert!(other.open("acme", "openai", &sealed).is_err());
        assert_ne!(
            s.seal("acme", "openai", b"sk-123").unwrap(),
            sealed,
            "fresh nonce per seal"
        );
    }

    #[test]
    fn keys_of_the_wrong_size_are_refused_and_debug_hides_the_key() {
        assert!(
            Sealer::from_base64("c2hvcnQ=")
                .unwrap_err()
                .to_string()
                .contains("got 5 bytes")
        );
        let s = Sealer::from_base64(&b64().encode([7u8; 32])).unwrap();
        assert_eq!(format!("{s:?}"), "Sealer(..)");
    }

    #[test]
    fn a_key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("secret.key");
        let a = Sealer::from_file(&path).unwrap();
        let sealed = a.seal("t", "n", b"v").unwrap();
        let b = Sealer::from_file(&path).unwrap();
        assert_eq!(b.open("t", "n", &sealed).unwrap(), b"v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
