//! The OpenAPI 3 document served at `/api/v1/openapi.json`, generated from the handlers'
//! `#[utoipa::path]` annotations and the DTOs, then completed here with what every operation
//! shares: the bearer-key security scheme and the error responses (each a JSON [`ErrorBody`]).

use std::sync::OnceLock;

use axum::Json;
use serde_json::{Value, json};
use utoipa::OpenApi;

use crate::api::{
    agents, approvals, audit, automations, billing, brands, chat, health, keys, overview, registries, runs, secrets,
    templates, tenants,
};
use crate::error::{ErrorBody, ErrorDetail};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Mission Control API",
        version = "1",
        description = "Tenants, keys, white-label brands, agents, automations, runs, secrets, the audit log, usage, budgets, plans and prices. \
            Authenticate with `Authorization: Bearer <key>`. Errors are `{ \"error\": { \"code\", \"message\" } }`."
    ),
    paths(
        keys::whoami,
        keys::list,
        keys::create,
        keys::revoke,
        tenants::list,
        tenants::create,
        tenants::get,
        tenants::config,
        tenants::apply,
        brands::list,
        brands::get,
        brands::put,
        brands::delete,
        brands::branding,
        brands::set_partner,
        agents::list,
        agents::get,
        agents::put,
        agents::delete,
        agents::team,
        templates::list,
        templates::get,
        templates::install,
        chat::open,
        chat::list,
        chat::messages,
        chat::say,
        registries::list,
        registries::rows,
        registries::insert,
        registries::get,
        registries::update,
        registries::delete,
        automations::list,
        automations::get,
        automations::put,
        automations::delete,
        automations::enable,
        automations::disable,
        automations::run_now,
        automations::ticks,
        automations::rotate_webhook_secret,
        overview::overview,
        runs::list,
        runs::events,
        runs::get,
        runs::logs,
        runs::output,
        runs::tree,
        runs::charges,
        approvals::inbox,
        approvals::approve,
        approvals::reject,
        approvals::decision,
        runs::cancel,
        runs::retry,
        secrets::list,
        secrets::put,
        secrets::delete,
        audit::list,
        billing::usage,
        billing::budget,
        billing::set_plan,
        billing::report,
        billing::prices,
        billing::publish_prices,
        billing::providers,
        health::incidents,
        health::sla,
        health::fleet,
        health::quarantined,
        health::release,
    ),
    components(schemas(ErrorBody, ErrorDetail))
)]
struct ApiDoc;

/// Error statuses every authenticated operation may answer, with what they mean.
const COMMON_ERRORS: [(&str, &str); 6] = [
    ("401", "Missing, unknown or revoked API key."),
    ("403", "The key may see this but not change it."),
    ("404", "No such object visible to this key."),
    ("429", "Too many requests for this key: see `Retry-After`."),
    ("500", "Internal error (reported without detail)."),
    ("503", "The database is unavailable or the request timed out."),
];
/// Further statuses of operations that take a body or parameters.
const INPUT_ERRORS: [(&str, &str); 4] = [
    (
        "400",
        "Malformed JSON, wrong types, unknown fields, an invalid value or paging cursor.",
    ),
    (
        "409",
        "Conflicts with the current state (exists already, in use, changed meanwhile).",
    ),
    ("413", "The request body is too large."),
    ("415", "The body is not JSON."),
];

/// The finished document.
pub fn document_value() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
        complete(&mut doc);
        doc
    })
}

fn complete(doc: &mut Value) {
    doc["components"]["securitySchemes"]["bearer"] = json!({
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `mc_<id>_<secret>`."
    });
    doc["security"] = json!([{ "bearer": [] }]);
    let error = |description: &str| {
        json!({
            "description": description,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } }
        })
    };
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for op in item.values_mut() {
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            let errors = COMMON_ERRORS.iter().chain(INPUT_ERRORS.iter());
            for (status, description) in errors {
                responses
                    .entry(status.to_string())
                    .or_insert_with(|| error(description));
            }
            if responses.contains_key("429") {
                responses["429"]["headers"] = json!({
                    "Retry-After": { "description": "Seconds to wait.", "schema": { "type": "integer" } }
                });
            }
        }
    }
}

/// `GET /api/v1/openapi.json` (no key needed).
pub async fn document() -> Json<Value> {
    Json(document_value().clone())
}
