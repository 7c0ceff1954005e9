//! Authentication and per-key rate limits: the [`Auth`] extractor turns `Authorization: Bearer
//! <key>` into the [`Principal`] the store checks every tenant access against, after charging the
//! key's token bucket.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use mc_store::Principal;

use crate::{ApiError, AppState};

/// Keys whose buckets are remembered before idle ones are forgotten (a forgotten bucket starts
/// full again, which only ever favours a key that was idle anyway).
const MAX_TRACKED_KEYS: usize = 100_000;

/// Requests per second and burst allowed per key.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

impl Default for RateLimit {
    /// Enough for a dashboard and a busy script; a runaway loop is stopped within a second.
    fn default() -> RateLimit {
        RateLimit {
            per_second: 50.0,
            burst: 100.0,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key id.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket, or says how long until one is available.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED_KEYS && !buckets.contains_key(key) {
            let idle = Duration::from_secs_f64(self.limit.burst / self.limit.per_second);
            buckets.retain(|_, b| now.duration_since(b.at) < idle);
        }
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.limit.burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * self.limit.per_second).min(self.limit.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.limit.per_second))
        }
    }
}

/// The authenticated principal of a request.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            if let Some(local) = &state.local {
                return Ok(Auth(local.clone()));
            }
            return Err(ApiError::Unauthorized(
                "missing API key: send `Authorization: Bearer <key>`".into(),
            ));
        };
        let key = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be `Bearer <key>`".into()))?;
        let principal = match state.store.authenticate(key).await? {
            Ok(p) => p,
            Err(mc_store::KeyRefusal::Unknown) => {
                return Err(ApiError::Unauthorized("unknown or revoked API key".into()));
            }
            Err(mc_store::KeyRefusal::Expired(at)) => {
                return Err(ApiError::Unauthorized(format!(
                    "this API key expired at {}",
                    crate::api::time(at)
                )));
            }
        };
        if let Err(wait) = state.limiter.check(&principal.key_id) {
            return Err(ApiError::RateLimited(wait.as_secs().max(1)));
        }
        Ok(Auth(principal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_asks_to_wait() {
        let l = RateLimiter::new(RateLimit {
            per_second: 1.0,
            burst: 3.0,
        });
        for _ in 0..3 {
            assert!(l.check("k").is_ok());
        }
        let wait = l.check("k").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(l.check("other").is_ok(), "buckets are per key");
    }
}
