//! Webhook triggers, verified per the Standard Webhooks spec (standardwebhooks.com):
//!
//! - headers `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature` (space
//!   separated `v1,<base64>` entries, any one of which may match);
//! - the signature is HMAC-SHA256 over `<id>.<timestamp>.<body>` keyed with the base64 secret
//!   after its `whsec_` prefix, compared in constant time;
//! - a timestamp more than [`TOLERANCE`] away from now is refused (stale or from the future), and a
//!   message id already accepted is refused (a replay), so a captured delivery cannot run twice.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use mc_config::Trigger;
use mc_store::NewJob;
use sha2::Sha256;

use crate::{ApiError, AppState};

/// How far a delivery's timestamp may be from the server's clock (the spec's recommendation).
pub const TOLERANCE: std::time::Duration = std::time::Duration::from_secs(5 * 60);
/// Bytes of randomness in a new secret (the spec asks for 24 to 64).
const SECRET_BYTES: usize = 32;
const SECRET_PREFIX: &str = "whsec_";
/// Longest message id accepted.
const MAX_ID_LEN: usize = 256;

/// A new signing secret, `whsec_` followed by base64 of random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source");
    format!("{SECRET_PREFIX}{}", B64.encode(bytes))
}

/// The signature header value for a delivery (used by clients and tests): the outbox's own.
pub use mc_outbox::sign;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized(format!(
                "missing `{name}` header (deliveries must be signed per the Standard Webhooks spec)"
            ))
        })
}

/// Checks a delivery's signature and age.
pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8], now: i64) -> Result<String, ApiError> {
    let id = header(headers, "webhook-id")?;
    if id.len() > MAX_ID_LEN {
        return Err(ApiError::BadRequest(format!(
            "webhook-id is longer than {MAX_ID_LEN} characters"
        )));
    }
    let ts = header(headers, "webhook-timestamp")?;
    let ts: i64 = ts
        .parse()
        .map_err(|_| ApiError::Unauthorized("webhook-timestamp is not a Unix time in seconds".into()))?;
    if (now - ts).unsigned_abs() > TOLERANCE.as_secs() {
        return Err(ApiError::Unauthorized(format!(
            "webhook-timestamp is more than {} minutes away from the server's clock: the delivery is stale or replayed",
            TOLERANCE.as_secs() / 60
        )));
    }
    let key = B64
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .map_err(|_| ApiError::Internal("stored webhook secret is not base64".into()))?;
    let signatures = header(headers, "webhook-signature")?;
    let valid = signatures.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|sig| {
        let Ok(sig) = B64.decode(sig) else { return false };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
            return false;
        };
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(body);
        mac.verify_slice(&sig).is_ok()
    });
    if !valid {
        return Err(ApiError::Unauthorized("the webhook signature does not match".into()));
    }
    Ok(id.to_string())
}

/// `POST /hooks/{tenant}/{automation}`.
pub async fn deliver(
    State(state): State<AppState>,
    Path((tenant, automation)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    // Unknown tenants, automations and automations without a webhook trigger look alike: a caller
    // learns nothing about what exists.
    let not_found = || ApiError::NotFound(format!("no webhook automation `{automation}` for tenant `{tenant}`"));
    let scope = state.store.tenant(&tenant);
    let a = scope
        .automations()
        .await?
        .into_iter()
        .find(|a| a.name == automation)
        .ok_or_else(not_found)?;
    if a.trigger != Trigger::Webhook || !a.enabled {
        return Err(not_found());
    }
    let sealer = state.sealer()?;
    let secret = state
        .store
        .existing_webhook_secret(&tenant, &automation, sealer)
        .await?
        .ok_or_else(not_found)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let message_id = verify(&secret, &headers, &body, now)?;
    let input: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let plugin = scope.agent(&a.agent).await?.map(|g| g.plugin).ok_or_else(not_found)?;
    let job = NewJob {
        tenant: tenant.clone(),
        automation: Some(automation.clone()),
        agent: a.agent.clone(),
        plugin,
        input: input.to_string(),
        trigger: "webhook".into(),
        priority: a.priority,
        max_attempts: mc_engine::DEFAULT_MAX_ATTEMPTS,
        run_at: None,
        idempotency_key: Some(format!("webhook:{automation}:{message_id}")),
    };
    match state.store.accept_webhook(&message_id, job).await? {
        Some(id) => Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "run_id": id })))),
        None => Err(ApiError::Conflict(format!(
            "delivery `{message_id}` was already accepted; replays are refused"
        ))),
    }
}
