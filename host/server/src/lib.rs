//! The HTTP server. `app(state)` builds the router; the CLI's `serve` binds and serves it beside
//! the engine.
//!
//! - `GET /healthz`: the process answers. `GET /readyz`: the database answers (503 while not).
//! - `GET /metrics`: Prometheus metrics, for operator keys (they name every tenant).
//! - `POST /hooks/{tenant}/{automation}`: a webhook trigger, signed per the Standard Webhooks spec
//!   ([`webhook`]).
//! - `/api/v1/...`: the REST API ([`api`]), authenticated by API keys or a dashboard session
//!   ([`auth`]), described by `/api/v1/openapi.json`.
//! - `/app/...`: the dashboard, and `/ui/session` to sign in and out of it ([`ui`]).
//!
//! Every error is a JSON body `{ "error": { "code", "message" } }` with the matching status and no
//! internal detail ([`ApiError`]). Bodies are capped at [`MAX_BODY_BYTES`], requests at
//! [`REQUEST_TIMEOUT`], and each key at its [`RateLimit`].

pub mod api;
pub mod auth;
pub mod error;
pub mod ui;
pub mod webhook;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mc_store::{Sealer, Store};

pub use auth::{RateLimit, RateLimiter};
pub use error::ApiError;

/// Largest request body accepted: configuration files and webhook payloads, not uploads (a
/// configuration file is at most `mc_config::MAX_FILE_BYTES` itself).
pub const MAX_BODY_BYTES: usize = 4 << 20;
/// Longest a request may take before it is answered 503: no API call does minutes of work, and a
/// stuck one must not hold its connection forever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `/readyz` waits for the database: a load balancer's probe gives up after a few
/// seconds, and the pool alone would wait its whole acquire timeout while the database restarts.
pub const READY_WITHIN: Duration = Duration::from_secs(2);

/// What handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    /// Seals tenant secrets; without one the secrets endpoints answer 503.
    pub sealer: Option<Sealer>,
    /// Where plugins are, so an apply can refuse agents whose plugin does not exist.
    pub plugin_dir: Option<PathBuf>,
    pub limiter: Arc<RateLimiter>,
    /// The AI gateway of this node: provider breakers, and the price book to reload after an
    /// operator publishes one. Without it the price book is still read from the store.
    pub gateway: Option<Arc<mc_gateway::Gateway>>,
    /// Where templates are (`<id>/template.yaml`, `<id>/team.yaml`); without it the template
    /// endpoints answer 503.
    pub template_dir: Option<PathBuf>,
    /// Serve the dashboard's files from this directory instead of the copy built in (for working
    /// on the dashboard: an edit shows on reload).
    pub ui_dir: Option<PathBuf>,
    /// The principal of requests without a key. Set only for [`LocalApi`] (the command line
    /// working on a local data directory, in-process); a served router never has one.
    local: Option<mc_store::Principal>,
}

impl AppState {
    /// A state over `store` with default limits and no secret key or plugin directory.
    pub fn new(store: Store) -> AppState {
        AppState {
            store,
            sealer: None,
            plugin_dir: None,
            limiter: Arc::new(RateLimiter::new(RateLimit::default())),
            gateway: None,
            template_dir: None,
            ui_dir: None,
            local: None,
        }
    }

    /// The sealer of secrets, or 503 when this server has none.
    pub fn sealer(&self) -> Result<&Sealer, ApiError> {
        self.sealer
            .as_ref()
            .ok_or_else(|| ApiError::Unavailable("this server has no secret key configured".into()))
    }

    /// What an apply may assume exists: the plugins in the plugin directory and the models of the
    /// price book in force.
    pub async fn known(&self) -> Result<mc_config::Known, ApiError> {
        let known = match &self.plugin_dir {
            Some(dir) => mc_config::Known::from_plugin_dir(dir),
            None => mc_config::Known::default(),
        };
        let row = self.price_book().await?;
        Ok(match mc_ai::prices::PriceBook::parse(&row.body) {
            Ok(book) => known.with_models(book.models.into_keys()),
            Err(_) => known,
        })
    }

    /// The price book in force; a store that has none gets the shipped one (as the gateway
    /// would store it when this node's engine starts).
    pub async fn price_book(&self) -> Result<mc_store::PriceBookRow, ApiError> {
        if let Some(row) = self.store.price_book().await? {
            return Ok(row);
        }
        let shipped = mc_ai::prices::PriceBook::shipped();
        self.store
            .ensure_price_book(mc_ai::prices::SHIPPED, shipped.fuel_per_billion)
            .await?;
        self.store
            .price_book()
            .await?
            .ok_or_else(|| ApiError::Internal("the price book vanished".into()))
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    match tokio::time::timeout(READY_WITHIN, state.store.ping()).await {
        Ok(Ok(())) => Ok("ready"),
        Ok(Err(e)) => Err(ApiError::Unavailable(e.to_string())),
        Err(_) => Err(ApiError::Unavailable(format!(
            "the database did not answer within {} s",
            READY_WITHIN.as_secs()
        ))),
    }
}

/// Answers 503 when a request takes longer than `limit`.
async fn timeout(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::Timeout(limit.as_secs_f64()).into_response(),
    }
}

/// The layers every route shares: body limit, JSON errors for axum's own refusals, the
/// request deadline.
fn shared_layers(router: Router<AppState>, deadline: Duration) -> Router<AppState> {
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(json_errors))
        .layer(axum::middleware::from_fn(traced))
        .layer(axum::middleware::from_fn(move |req, next| timeout(deadline, req, next)))
}

/// Runs each request in a `request` span (method, path, and the status once answered), so a
/// trace shows what the server did for it.
async fn traced(req: Request, next: Next) -> Response {
    use tracing::Instrument as _;
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        status = tracing::field::Empty
    );
    let response = next.run(req).instrument(span.clone()).await;
    span.record("status", response.status().as_u16());
    response
}

/// Turns axum's own bodiless answers (no route, wrong method, body over the limit) into the JSON
/// error body.
async fn json_errors(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !status.is_client_error() || is_json {
        return response;
    }
    let error = match status.as_u16() {
        404 => ApiError::NotFound(format!("no route {path}")),
        405 => ApiError::MethodNotAllowed(format!("{method} is not allowed on {path}")),
        413 => ApiError::TooLarge(MAX_BODY_BYTES),
        _ => return response,
    };
    let (parts, _) = response.into_parts();
    let mut fresh = error.into_response();
    if let Some(allow) = parts.headers.get(axum::http::header::ALLOW) {
        fresh.headers_mut().insert(axum::http::header::ALLOW, allow.clone());
    }
    fresh
}

/// The router.
pub fn app(state: AppState) -> Router {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::api::health::metrics))
        .route("/hooks/{tenant}/{automation}", post(webhook::deliver))
        .merge(api::routes())
        .merge(ui::routes());
    shared_layers(router, REQUEST_TIMEOUT).with_state(state)
}

/// The API called in-process, without a socket or a key, as the local operator: how the command
/// line manages a local data directory through exactly the code a server runs.
#[derive(Debug, Clone)]
pub struct LocalApi {
    router: Router,
}

impl LocalApi {
    pub fn new(mut state: AppState) -> LocalApi {
        state.local = Some(mc_store::Principal::local());
        // No rate limit for the local operator: it is the machine's owner.
        state.limiter = Arc::new(RateLimiter::new(RateLimit {
            per_second: f64::MAX,
            burst: f64::MAX,
        }));
        LocalApi { router: app(state) }
    }

    /// Calls `method path` with an optional JSON body; returns the status and the body.
    pub async fn call(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> (u16, Vec<u8>) {
        use tower::ServiceExt as _;
        let mut req = axum::http::Request::builder().method(method).uri(path);
        if body.is_some() {
            req = req.header(axum::http::header::CONTENT_TYPE, "application/json");
        }
        let req = match req.body(axum::body::Body::from(body.unwrap_or_default())) {
            Ok(r) => r,
            Err(e) => return (400, ApiError::BadRequest(e.to_string()).to_string().into_bytes()),
        };
        let response = match self.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_BODY_BYTES * 4)
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default();
        (status, bytes)
    }
}

/// Serves `app(state)` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    #[tokio::test]
    async fn a_request_over_the_deadline_is_answered_503_with_a_json_error() {
        let slow = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
        let store = Store::open("sqlite::memory:").await.unwrap();
        let router = shared_layers(slow, Duration::from_millis(50)).with_state(AppState::new(store));
        let req = axum::http::Request::get("/slow")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = router.oneshot(req).await.unwrap();
        assert_eq!(response.status(), 503);
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"error":{"code":"timeout","message":"the request took longer than 0.05 s"}}"#
        );
    }
}
