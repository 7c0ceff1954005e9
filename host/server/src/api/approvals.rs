//! Approvals: the inbox of runs whose output waits for a person, or whose plugin asked a person
//! and waits for the answer, and approving (possibly after editing) or rejecting one. Who decided
//! and when is part of the answer and of the audit log.

use axum::Json;
use axum::extract::State;
use mc_store::{ApprovalError, Need};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::api::time;
use crate::auth::Auth;
use crate::error::{ApiJson, ApiPath};
use crate::{ApiError, AppState};

/// Most runs the inbox lists at once.
const INBOX_LIMIT: i64 = 500;

/// A run waiting for approval.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pending {
    pub run_id: i64,
    /// `output`: the automation holds the run's output for approval; approving delivers it.
    /// `request`: the plugin asked for approval of a text (`output`, a string) and waits; the
    /// answer (the text as approved or edited, or the reason of a rejection) goes back to it and
    /// the run goes on.
    pub kind: String,
    /// The plugin's title for its request.
    pub title: Option<String>,
    /// The automation the run belongs to (empty for a run started by hand or by delegation).
    pub automation: String,
    pub agent: String,
    /// The output to review.
    #[schema(value_type = Object)]
    pub output: Value,
    /// When the run finished (`output`) or asked (`request`).
    pub finished_at: String,
    /// The registry an approved output is added to, if any.
    pub deliver_to: Option<String>,
}

/// A decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct Decision {
    pub run_id: i64,
    /// `approved` or `rejected`.
    pub decision: String,
    /// The id of the key that decided.
    pub decided_by: String,
    pub decided_at: String,
    /// The output as the agent wrote it, when the reviewer edited it before approving.
    #[schema(value_type = Option<Object>)]
    pub original_output: Option<Value>,
    pub reason: Option<String>,
    /// The registry row the approved output became.
    pub delivered_row: Option<i64>,
    /// The webhook posts of the approved output, and how each went.
    pub deliveries: Vec<WebhookDelivery>,
}

/// One webhook post of an event.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDelivery {
    /// The `webhook-id` the receiver sees (the same on every attempt).
    pub id: String,
    pub event_type: String,
    pub url: String,
    /// `pending` (to be attempted or retried), `delivered` or `failed` (given up).
    pub state: String,
    pub attempts: u32,
    /// When the next attempt is due, while pending.
    pub next_at: Option<String>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
}

impl From<mc_store::Delivery> for WebhookDelivery {
    fn from(d: mc_store::Delivery) -> WebhookDelivery {
        WebhookDelivery {
            id: mc_outbox::message_id(&d),
            next_at: (d.state == "pending").then(|| time(d.next_at)),
            event_type: d.event_type,
            url: d.url,
            state: d.state,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            delivered_at: d.delivered_at.map(time),
        }
    }
}

/// A decision as the API shows it, with the deliveries it caused.
async fn shown(scope: &mc_store::TenantScope<'_>, d: mc_store::Decision) -> Result<Decision, ApiError> {
    let deliveries = scope.run_deliveries(d.run_id).await?;
    let mut shown = Decision::from(d);
    shown.deliveries = deliveries.into_iter().map(WebhookDelivery::from).collect();
    Ok(shown)
}

impl From<mc_store::Decision> for Decision {
    fn from(d: mc_store::Decision) -> Decision {
        Decision {
            run_id: d.run_id,
            decision: d.decision,
            decided_by: d.decided_by,
            decided_at: time(d.decided_at),
            original_output: d.original_output,
            reason: d.reason,
            delivered_row: d.delivered_row,
            deliveries: Vec::new(),
        }
    }
}

/// Approving: the output as approved, when the reviewer changed it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
}

/// Rejecting: why.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    #[serde(default)]
    pub reason: Option<String>,
}

fn api_error(e: ApprovalError) -> ApiError {
    match e {
        ApprovalError::NotFound(m) => ApiError::NotFound(m),
        ApprovalError::Conflict(m) => ApiError::Conflict(m),
        ApprovalError::Invalid(m) => ApiError::BadRequest(m),
        ApprovalError::Store(e) => e.into(),
    }
}

/// Runs waiting for approval, oldest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/approvals", tag = "approvals",
    params(("tenant" = String, Path)), responses((status = 200, body = Vec<Pending>)))]
pub async fn inbox(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Vec<Pending>>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    Ok(Json(
        scope
            .pending_approvals(INBOX_LIMIT)
            .await?
            .into_iter()
            .map(|p| Pending {
                run_id: p.run_id,
                kind: p.kind,
                title: p.title,
                automation: p.automation,
                agent: p.agent,
                output: p.output,
                finished_at: time(p.finished_at),
                deliver_to: p.deliver_to,
            })
            .collect(),
    ))
}

/// Approves a run's output (optionally edited) and carries out what the automation does with it.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/runs/{run}/approve", tag = "approvals",
    params(("tenant" = String, Path), ("run" = i64, Path)), request_body = ApproveBody,
    responses((status = 200, body = Decision)))]
pub async fn approve(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, id)): ApiPath<(String, i64)>,
    ApiJson(body): ApiJson<ApproveBody>,
) -> Result<Json<Decision>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Write).await?;
    let d = scope.approve(&who, id, body.output.as_ref()).await.map_err(api_error)?;
    Ok(Json(shown(&scope, d).await?))
}

/// Rejects a run's output: nothing is done with it.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/runs/{run}/reject", tag = "approvals",
    params(("tenant" = String, Path), ("run" = i64, Path)), request_body = RejectBody,
    responses((status = 200, body = Decision)))]
pub async fn reject(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, id)): ApiPath<(String, i64)>,
    ApiJson(body): ApiJson<RejectBody>,
) -> Result<Json<Decision>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Write).await?;
    let d = scope
        .reject(&who, id, body.reason.as_deref())
        .await
        .map_err(api_error)?;
    Ok(Json(d.into()))
}

/// The decision on a run: `null` while none was made.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/runs/{run}/decision", tag = "approvals",
    params(("tenant" = String, Path), ("run" = i64, Path)), responses((status = 200, body = Option<Decision>)))]
pub async fn decision(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, id)): ApiPath<(String, i64)>,
) -> Result<Json<Option<Decision>>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    if scope.run(id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no run {id}")));
    }
    Ok(Json(match scope.decision(id).await? {
        Some(d) => Some(shown(&scope, d).await?),
        None => None,
    }))
}
