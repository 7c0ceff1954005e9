//! The REST API under `/api/v1`: one module per resource, each with its DTOs (what the JSON looks
//! like) and handlers. Handlers authenticate with [`Auth`](crate::auth::Auth), get a tenant's data
//! only through `Store::authorize`, and answer errors as [`ApiError`](crate::ApiError). The
//! OpenAPI document (`openapi.rs`) is generated from the same handlers and DTOs.

pub mod agents;
pub mod approvals;
pub mod audit;
pub mod automations;
pub mod billing;
pub mod brands;
pub mod chat;
pub mod health;
pub mod keys;
pub mod openapi;
pub mod overview;
pub mod registries;
pub mod runs;
pub mod secrets;
pub mod templates;
pub mod tenants;

use axum::Router;
use axum::routing::{get, post, put};

use crate::AppState;

/// Default page size of listings.
pub const DEFAULT_PAGE: i64 = 50;

/// A time as the API shows it: RFC 3339 in UTC (the store keeps microseconds since the epoch).
pub fn time(micros: i64) -> String {
    jiff::Timestamp::from_microsecond(micros)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// [`time`] for optional times.
pub fn time_opt(micros: Option<i64>) -> Option<String> {
    micros.map(time)
}

/// Parses a paging cursor (the decimal id of the previous page's last item).
pub fn cursor(c: Option<&str>) -> Result<Option<i64>, crate::ApiError> {
    c.map(|c| {
        c.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            crate::ApiError::BadRequest(format!(
                "invalid cursor `{c}`: pass the `next_cursor` of the previous page"
            ))
        })
    })
    .transpose()
}

/// Checks a page size.
pub fn page_limit(limit: Option<i64>, max: i64) -> Result<i64, crate::ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE.min(max)),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(crate::ApiError::BadRequest(format!(
            "limit must be between 1 and {max}, got {n}"
        ))),
    }
}

/// Every `/api/v1` route.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/whoami", get(keys::whoami))
        .route("/api/v1/keys", get(keys::list).post(keys::create))
        .route("/api/v1/keys/{key}", axum::routing::delete(keys::revoke))
        .route("/api/v1/apply", post(tenants::apply))
        .route("/api/v1/tenants", get(tenants::list).post(tenants::create))
        .route("/api/v1/tenants/{tenant}", get(tenants::get))
        .route("/api/v1/tenants/{tenant}/config", get(tenants::config))
        .route("/api/v1/tenants/{tenant}/branding", get(brands::branding))
        .route("/api/v1/tenants/{tenant}/partner", put(brands::set_partner))
        .route("/api/v1/brands", get(brands::list))
        .route(
            "/api/v1/brands/{partner}",
            get(brands::get).put(brands::put).delete(brands::delete),
        )
        .route("/api/v1/tenants/{tenant}/agents", get(agents::list))
        .route("/api/v1/tenants/{tenant}/team", get(agents::team))
        .route("/api/v1/templates", get(templates::list))
        .route("/api/v1/templates/{template}", get(templates::get))
        .route(
            "/api/v1/tenants/{tenant}/templates/{template}/install",
            post(templates::install),
        )
        .route(
            "/api/v1/tenants/{tenant}/agents/{agent}/chats",
            get(chat::list).post(chat::open),
        )
        .route("/api/v1/tenants/{tenant}/chats/{chat}", get(chat::messages))
        .route("/api/v1/tenants/{tenant}/chats/{chat}/messages", post(chat::say))
        .route("/api/v1/tenants/{tenant}/registries", get(registries::list))
        .route(
            "/api/v1/tenants/{tenant}/registries/{registry}/rows",
            get(registries::rows).post(registries::insert),
        )
        .route(
            "/api/v1/tenants/{tenant}/registries/{registry}/rows/{row}",
            get(registries::get)
                .patch(registries::update)
                .delete(registries::delete),
        )
        .route(
            "/api/v1/tenants/{tenant}/agents/{agent}",
            get(agents::get).put(agents::put).delete(agents::delete),
        )
        .route("/api/v1/tenants/{tenant}/automations", get(automations::list))
        .route(
            "/api/v1/tenants/{tenant}/automations/{automation}",
            get(automations::get).put(automations::put).delete(automations::delete),
        )
        .route(
            "/api/v1/tenants/{tenant}/automations/{automation}/enable",
            post(automations::enable),
        )
        .route(
            "/api/v1/tenants/{tenant}/automations/{automation}/disable",
            post(automations::disable),
        )
        .route(
            "/api/v1/tenants/{tenant}/automations/{automation}/run",
            post(automations::run_now),
        )
        .route(
            "/api/v1/tenants/{tenant}/automations/{automation}/ticks",
            get(automations::ticks),
        )
        .route(
            "/api/v1/tenants/{tenant}/automations/{automation}/webhook-secret",
            post(automations::rotate_webhook_secret),
        )
        .route("/api/v1/tenants/{tenant}/overview", get(overview::overview))
        .route("/api/v1/tenants/{tenant}/runs", get(runs::list))
        .route("/api/v1/tenants/{tenant}/runs/events", get(runs::events))
        .route("/api/v1/tenants/{tenant}/runs/{run}", get(runs::get))
        .route("/api/v1/tenants/{tenant}/runs/{run}/logs", get(runs::logs))
        .route("/api/v1/tenants/{tenant}/runs/{run}/output", get(runs::output))
        .route("/api/v1/tenants/{tenant}/runs/{run}/tree", get(runs::tree))
        .route("/api/v1/tenants/{tenant}/runs/{run}/charges", get(runs::charges))
        .route("/api/v1/tenants/{tenant}/approvals", get(approvals::inbox))
        .route("/api/v1/tenants/{tenant}/runs/{run}/approve", post(approvals::approve))
        .route("/api/v1/tenants/{tenant}/runs/{run}/reject", post(approvals::reject))
        .route("/api/v1/tenants/{tenant}/runs/{run}/decision", get(approvals::decision))
        .route("/api/v1/tenants/{tenant}/runs/{run}/cancel", post(runs::cancel))
        .route("/api/v1/tenants/{tenant}/runs/{run}/retry", post(runs::retry))
        .route("/api/v1/tenants/{tenant}/secrets", get(secrets::list))
        .route(
            "/api/v1/tenants/{tenant}/secrets/{secret}",
            put(secrets::put).delete(secrets::delete),
        )
        .route("/api/v1/audit", get(audit::list))
        .route("/api/v1/tenants/{tenant}/usage", get(billing::usage))
        .route("/api/v1/tenants/{tenant}/budget", get(billing::budget))
        .route("/api/v1/tenants/{tenant}/plan", put(billing::set_plan))
        .route("/api/v1/report", get(billing::report))
        .route("/api/v1/prices", get(billing::prices).post(billing::publish_prices))
        .route("/api/v1/providers", get(billing::providers))
        .route("/api/v1/tenants/{tenant}/incidents", get(health::incidents))
        .route("/api/v1/tenants/{tenant}/sla", get(health::sla))
        .route("/api/v1/health", get(health::fleet))
        .route("/api/v1/quarantine", get(health::quarantined))
        .route("/api/v1/quarantine/{plugin}", axum::routing::delete(health::release))
}
