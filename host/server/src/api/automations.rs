//! Automations: list and read (with the trigger in words and the next fire time), create or
//! update (validated like a configuration file), delete, switch on and off, run now, and the tick
//! history (fired, skipped, missed, with reasons).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_config::{AutomationSpec, CatchUp, Overlap, TriggerSpec, WebhookSpec};
use mc_store::{AutomationRow, Need, Principal};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::tenants::{edit_config, upsert_status};
use crate::api::time;
use crate::auth::Auth;
use crate::error::{ApiJson, ApiPath, ApiQuery};
use crate::{ApiError, AppState};

/// Most tick records one request lists.
const MAX_TICKS_PAGE: i64 = 500;

/// A trigger: exactly one of `cron` (with an optional `timezone`), `interval`, `at`, `webhook`,
/// `after`, `manual`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    /// Crontab expression (5 fields, or 6 with seconds first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// IANA time zone of a cron trigger (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// `90s`, `15m`, `1h30m`, `1d` ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// RFC 3339 time with offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// `{}`: deliveries to `POST /hooks/{tenant}/{automation}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub webhook: Option<serde_json::Map<String, serde_json::Value>>,
    /// Runs when this automation succeeds, with its output as input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// `true`: runs only when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<bool>,
}

impl TriggerBody {
    fn into_spec(self) -> Result<TriggerSpec, ApiError> {
        if self.webhook.as_ref().is_some_and(|w| !w.is_empty()) {
            return Err(ApiError::BadRequest("trigger.webhook takes no options: pass {}".into()));
        }
        Ok(TriggerSpec {
            cron: self.cron,
            timezone: self.timezone,
            interval: self.interval,
            at: self.at,
            webhook: self.webhook.map(|_| WebhookSpec {}),
            after: self.after,
            manual: self.manual,
        })
    }

    fn from_spec(s: TriggerSpec) -> TriggerBody {
        TriggerBody {
            cron: s.cron,
            timezone: s.timezone,
            interval: s.interval,
            at: s.at,
            webhook: s.webhook.map(|_| serde_json::Map::new()),
            after: s.after,
            manual: s.manual,
        }
    }
}

/// An automation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Automation {
    pub name: String,
    pub agent: String,
    pub trigger: TriggerBody,
    /// The trigger in a few words.
    pub schedule: String,
    /// When its trigger fires next (time triggers of enabled automations).
    pub next_run: Option<String>,
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
    pub enabled: bool,
    pub priority: i32,
    /// `skip`, `queue` or `allow`.
    pub overlap: String,
    pub max_running: Option<u32>,
    /// `skip`, `once` or `all`.
    pub catch_up: String,
    /// Set when each run's output waits for a person's approval; `deliver_to` names the registry
    /// an approved output is added to.
    #[schema(value_type = Option<Object>)]
    pub approval: Option<mc_config::ApprovalSpec>,
}

pub(crate) fn automation(a: AutomationRow, mark: Option<i64>, now: jiff::Timestamp) -> Automation {
    let next_run = if a.enabled {
        a.trigger.next_fire(mark, now).map(|t| t.to_string())
    } else {
        None
    };
    Automation {
        schedule: a.trigger.describe(),
        trigger: TriggerBody::from_spec(TriggerSpec::from_trigger(&a.trigger)),
        next_run,
        name: a.name,
        agent: a.agent,
        input: a.input,
        enabled: a.enabled,
        priority: a.priority,
        overlap: a.overlap,
        max_running: a.max_running,
        catch_up: a.catch_up,
        approval: a.approval,
    }
}

/// An automation to create or replace (its name is in the path).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutomationBody {
    pub agent: String,
    pub trigger: TriggerBody,
    /// The run's input (default `{}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub input: Option<serde_json::Value>,
    #[serde(default)]
    pub enabled: Option<bool>,
    /// -100 to 100.
    #[serde(default)]
    #[schema(minimum = -100, maximum = 100)]
    pub priority: Option<i32>,
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^(skip|queue|allow)$")]
    pub overlap: Option<Overlap>,
    /// 1 to 1000.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_running: Option<u32>,
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^(skip|once|all)$")]
    pub catch_up: Option<CatchUp>,
    /// Hold each run's output for approval (`{}`), optionally delivering it to a registry once
    /// approved (`{"deliver_to": "calendar"}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub approval: Option<mc_config::ApprovalSpec>,
}

/// Input for one run now (default: the automation's own).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunNowBody {
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub input: Option<serde_json::Value>,
}

/// The run a request enqueued.
#[derive(Debug, Serialize, ToSchema)]
pub struct Enqueued {
    pub run: i64,
}

/// A webhook automation's new signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSecret {
    /// `whsec_…`: sign deliveries with it per the Standard Webhooks spec.
    pub secret: String,
    /// Where deliveries go.
    pub path: String,
}

/// A recorded tick.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tick {
    pub tick: String,
    /// `fired`, `skipped` or `missed`.
    pub outcome: String,
    pub run: Option<i64>,
    pub reason: Option<String>,
}

/// Paging of tick records.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TickQuery {
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// The automation `name` of the scope's tenant, or 404.
async fn find(scope: &mc_store::TenantScope<'_>, name: &str) -> Result<AutomationRow, ApiError> {
    scope
        .automations()
        .await?
        .into_iter()
        .find(|a| a.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no automation `{name}`")))
}

async fn read(state: &AppState, who: &Principal, tenant: &str, name: &str) -> Result<Automation, ApiError> {
    let scope = state.store.authorize(who, tenant, Need::Read).await?;
    let a = find(&scope, name).await?;
    let marks = scope.schedule_marks().await?;
    Ok(automation(a, marks.get(name).copied(), jiff::Timestamp::now()))
}

/// The tenant's automations.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/automations", tag = "automations",
    params(("tenant" = String, Path)), responses((status = 200, body = Vec<Automation>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Vec<Automation>>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    let marks = scope.schedule_marks().await?;
    let now = jiff::Timestamp::now();
    Ok(Json(
        scope
            .automations()
            .await?
            .into_iter()
            .map(|a| {
                let mark = marks.get(&a.name).copied();
                automation(a, mark, now)
            })
            .collect(),
    ))
}

/// One automation.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/automations/{automation}", tag = "automations",
    params(("tenant" = String, Path), ("automation" = String, Path)), responses((status = 200, body = Automation)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> Result<Json<Automation>, ApiError> {
    Ok(Json(read(&state, &who, &tenant, &name).await?))
}

/// Creates (201) or replaces (200) an automation.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/automations/{automation}", tag = "automations",
    params(("tenant" = String, Path), ("automation" = String, Path)), request_body = AutomationBody,
    responses((status = 200, body = Automation), (status = 201, body = Automation)))]
pub async fn put(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<AutomationBody>,
) -> Result<(StatusCode, Json<Automation>), ApiError> {
    let spec = AutomationSpec {
        name: name.clone(),
        agent: body.agent,
        trigger: body.trigger.into_spec()?,
        input: body.input.unwrap_or_else(|| serde_json::json!({})),
        enabled: body.enabled.unwrap_or(true),
        priority: body.priority.unwrap_or(0),
        overlap: body.overlap.unwrap_or_default(),
        max_running: body.max_running,
        catch_up: body.catch_up.unwrap_or_default(),
        approval: body.approval,
    };
    let report = edit_config(&state, &who, &tenant, |c| {
        match c.automations.iter_mut().find(|a| a.name == name) {
            Some(a) => *a = spec.clone(),
            None => c.automations.push(spec.clone()),
        }
        Ok(())
    })
    .await?;
    let status = upsert_status(&report, "automation", &name);
    Ok((status, Json(read(&state, &who, &tenant, &name).await?)))
}

/// Deletes an automation no other automation runs after.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/automations/{automation}", tag = "automations",
    params(("tenant" = String, Path), ("automation" = String, Path)), responses((status = 204)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    edit_config(&state, &who, &tenant, |c| {
        if !c.automations.iter().any(|a| a.name == name) {
            return Err(ApiError::NotFound(format!("no automation `{name}`")));
        }
        let followers: Vec<&str> = c
            .automations
            .iter()
            .filter(|a| a.trigger.after.as_deref() == Some(name.as_str()))
            .map(|a| a.name.as_str())
            .collect();
        if !followers.is_empty() {
            return Err(ApiError::Conflict(format!(
                "automations {} run after `{name}`: delete or change them first",
                followers.join(", ")
            )));
        }
        c.automations.retain(|a| a.name != name);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn switch(
    state: AppState,
    who: Principal,
    tenant: String,
    name: String,
    on: bool,
) -> Result<Json<Automation>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Write).await?;
    scope.set_enabled(&who, &name, on).await?;
    Ok(Json(read(&state, &who, &tenant, &name).await?))
}

/// Switches an automation on: its trigger fires again.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/automations/{automation}/enable", tag = "automations",
    params(("tenant" = String, Path), ("automation" = String, Path)), responses((status = 200, body = Automation)))]
pub async fn enable(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> Result<Json<Automation>, ApiError> {
    switch(state, who, tenant, name, true).await
}

/// Switches an automation off: its trigger no longer fires (runs already queued still run).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/automations/{automation}/disable", tag = "automations",
    params(("tenant" = String, Path), ("automation" = String, Path)), responses((status = 200, body = Automation)))]
pub async fn disable(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> Result<Json<Automation>, ApiError> {
    switch(state, who, tenant, name, false).await
}

/// Enqueues a run of the automation now.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/automations/{automation}/run", tag = "automations",
    params(("tenant" = String, Path), ("automation" = String, Path)), request_body(content = Option<RunNowBody>),
    responses((status = 202, body = Enqueued)))]
pub async fn run_now(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Enqueued>), ApiError> {
    // The body is optional: empty means the automation's own input.
    let body: RunNowBody = if body.iter().all(u8::is_ascii_whitespace) {
        RunNowBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?
    };
    let scope = state.store.authorize(&who, &tenant, Need::Write).await?;
    let input = body.input;
    let run = scope
        .run_now(&who, &name, input, mc_engine::DEFAULT_MAX_ATTEMPTS)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Enqueued { run })))
}

/// Issues a new signing secret for a webhook automation and shows it this once; deliveries
/// signed with the previous one are refused from now on.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/automations/{automation}/webhook-secret", tag = "automations",
    params(("tenant" = String, Path), ("automation" = String, Path)), responses((status = 200, body = WebhookSecret)))]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> Result<Json<WebhookSecret>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Write).await?;
    let a = find(&scope, &name).await?;
    if a.trigger != mc_config::Trigger::Webhook {
        return Err(ApiError::Conflict(format!(
            "automation `{name}` is not triggered by a webhook"
        )));
    }
    let secret = state
        .store
        .rotate_webhook_secret(&who, scope.id(), &name, state.sealer()?, crate::webhook::new_secret)
        .await?;
    Ok(Json(WebhookSecret {
        secret,
        path: format!("/hooks/{tenant}/{name}"),
    }))
}

/// The automation's recorded ticks, newest first: fired (with the run), skipped or missed (with
/// the reason).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/automations/{automation}/ticks", tag = "automations",
    params(("tenant" = String, Path), ("automation" = String, Path), TickQuery),
    responses((status = 200, body = Vec<Tick>)))]
pub async fn ticks(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<TickQuery>,
) -> Result<Json<Vec<Tick>>, ApiError> {
    let limit = crate::api::page_limit(q.limit, MAX_TICKS_PAGE)?;
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    find(&scope, &name).await?;
    let ticks = scope.ticks(&name, limit).await?;
    Ok(Json(
        ticks
            .into_iter()
            .map(|t| Tick {
                tick: time(t.tick),
                outcome: t.outcome,
                run: t.job_id,
                reason: t.reason,
            })
            .collect(),
    ))
}
