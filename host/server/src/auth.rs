//! Authentication and per-key rate limits: the [`Auth`] extractor turns `Authorization: Bearer
//! <key>` — or the dashboard's session cookie ([`SESSION_COOKIE`]) — into the [`Principal`] the
//! store checks every tenant access against, after charging the key's token bucket.
//!
//! A cookie is sent by the browser on its own, so a request authenticated by one must also prove
//! it came from the dashboard: every method but GET and HEAD carries the session's CSRF token in
//! [`CSRF_HEADER`] (a page on another site can make the browser send the cookie, but cannot read
//! the token). Bearer keys need no such proof: no browser attaches them by itself.

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

/// The dashboard's session cookie.
pub const SESSION_COOKIE: &str = "mc_session";
/// The header a cookie-authenticated change carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The session `token` stands for, or 401 saying to sign in again.
pub async fn session(state: &AppState, token: &str) -> Result<mc_store::Session, ApiError> {
    match state.store.session(token).await? {
        Ok(s) => Ok(s),
        Err(mc_store::KeyRefusal::Unknown) => Err(ApiError::Unauthorized(
            "your session has ended (signed out, or its key was revoked): sign in again".into(),
        )),
        Err(mc_store::KeyRefusal::Expired(_)) => Err(ApiError::Unauthorized(
            "your session or its key has expired: sign in again".into(),
        )),
    }
}

/// Whether the request carries `session`'s CSRF token (compared in constant time).
pub fn csrf_echoed(headers: &axum::http::HeaderMap, session: &mc_store::Session) -> bool {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| mc_store::same(t, &session.csrf))
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
            if let Some(token) = cookie(&parts.headers, SESSION_COOKIE) {
                let session = session(state, token).await?;
                let safe = parts.method == axum::http::Method::GET || parts.method == axum::http::Method::HEAD;
                if !safe && !csrf_echoed(&parts.headers, &session) {
                    return Err(ApiError::Forbidden(format!(
                        "missing or wrong CSRF token: a change made with the dashboard's session sends its token in `{CSRF_HEADER}`"
                    )));
                }
                if let Err(wait) = state.limiter.check(&session.principal.key_id) {
                    return Err(ApiError::RateLimited(wait.as_secs().max(1)));
                }
                return Ok(Auth(session.principal));
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
