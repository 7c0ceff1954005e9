//! What the monitor records, as the API shows it: a tenant's incidents and its availability
//! against the SLA, the operator's fleet health (the latest snapshot, open incidents, nodes), and
//! Prometheus metrics for operators.

use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use mc_store::{Need, Role};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::api::billing::{MonthQuery, month_or_now};
use crate::api::{time, time_opt};
use crate::auth::Auth;
use crate::error::{ApiPath, ApiQuery};
use crate::{ApiError, AppState};

/// Most incidents one answer lists.
const INCIDENT_LIMIT: i64 = 200;
/// The availability the platform promises each tenant, in percent of its scheduled runs.
pub const SLA_TARGET_PERCENT: f64 = 99.5;

/// A tenant's availability for a month against the SLA.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlaDto {
    pub month: String,
    /// The promise, in percent.
    pub target: f64,
    /// Scheduled runs counted: fired (and due to have started) plus missed while no node ran.
    /// Ticks an automation's own overlap policy skipped are not counted.
    pub scheduled: i64,
    /// Of those, runs that started within a minute of their time and did not fail for a
    /// platform reason (a lost node, the host unable to run them).
    pub available: i64,
    pub missed: i64,
    pub late: i64,
    pub platform_failures: i64,
    /// `available / scheduled` in percent; `null` while nothing was scheduled this month.
    pub availability: Option<f64>,
    /// Whether the availability meets the target; `null` while nothing was scheduled.
    pub met: Option<bool>,
}

/// The tenant's availability for a month (default: this month) against the 99.5% SLA.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/sla", tag = "health",
    params(("tenant" = String, Path), MonthQuery), responses((status = 200, body = SlaDto)))]
pub async fn sla(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<MonthQuery>,
) -> Result<Json<SlaDto>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    let month = month_or_now(q.month)?;
    let s = scope.sla(&month).await?;
    Ok(Json(SlaDto {
        month: s.month,
        target: SLA_TARGET_PERCENT,
        scheduled: s.scheduled,
        available: s.available,
        missed: s.missed,
        late: s.late,
        platform_failures: s.platform_failures,
        met: s.availability.map(|a| a >= SLA_TARGET_PERCENT),
        availability: s.availability,
    }))
}

/// Something the monitor noticed, what it did, and whether it is over.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentDto {
    pub id: i64,
    /// The tenant it concerns; empty for the platform as a whole.
    pub tenant: String,
    /// `automation_paused`, `runs_requeued`, `node_lost`, `provider_down`, `queue_backlog`,
    /// `disk_low` or `database_slow`.
    pub kind: String,
    /// What it concerns: an automation, a node, a provider, `queue`, a path, `database`.
    pub subject: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// `open` or `resolved`.
    pub state: String,
    pub summary: String,
    /// What the monitor (or a person) did about it.
    pub action: Option<String>,
    pub opened_at: String,
    pub updated_at: String,
    pub resolved_at: Option<String>,
}

impl From<mc_store::Incident> for IncidentDto {
    fn from(i: mc_store::Incident) -> IncidentDto {
        IncidentDto {
            id: i.id,
            tenant: i.tenant,
            kind: i.kind,
            subject: i.subject,
            severity: i.severity,
            state: i.state,
            summary: i.summary,
            action: i.action,
            opened_at: time(i.opened_at),
            updated_at: time(i.updated_at),
            resolved_at: time_opt(i.resolved_at),
        }
    }
}

/// The fleet as the monitor last saw it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FleetHealth {
    /// When the latest health snapshot was taken, and by which node (the monitor's leader).
    pub snapshot_at: Option<String>,
    pub snapshot_node: Option<String>,
    /// The snapshot: queues per tenant, nodes, providers, disk, database latency; `null` before
    /// the monitor's first cycle.
    #[schema(value_type = Option<Object>)]
    pub snapshot: Option<Value>,
    pub open_incidents: Vec<IncidentDto>,
    /// The latest incidents, open or resolved.
    pub recent_incidents: Vec<IncidentDto>,
}

/// The tenant's incidents, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/incidents", tag = "health",
    params(("tenant" = String, Path)), responses((status = 200, body = Vec<IncidentDto>)))]
pub async fn incidents(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Json<Vec<IncidentDto>>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    Ok(Json(
        scope
            .incidents(INCIDENT_LIMIT)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// The fleet's health (operators only).
#[utoipa::path(get, path = "/api/v1/health", tag = "health", responses((status = 200, body = FleetHealth)))]
pub async fn fleet(State(state): State<AppState>, Auth(who): Auth) -> Result<Json<FleetHealth>, ApiError> {
    operator_only(&who, "the fleet's health")?;
    let latest = state.store.latest_snapshot().await?;
    let open = state.store.open_incidents().await?;
    let recent = state.store.incidents(INCIDENT_LIMIT).await?;
    let (at, node, snapshot) = match latest {
        Some((at, node, data)) => (Some(time(at)), Some(node), Some(data)),
        None => (None, None, None),
    };
    Ok(Json(FleetHealth {
        snapshot_at: at,
        snapshot_node: node,
        snapshot,
        open_incidents: open.into_iter().map(Into::into).collect(),
        recent_incidents: recent.into_iter().map(Into::into).collect(),
    }))
}

/// A plugin version the monitor quarantined.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantineDto {
    pub plugin: String,
    /// SHA-256 of the version, hex.
    pub hash: String,
    pub reason: String,
    pub since: String,
}

/// Plugin versions the monitor quarantined (operators only).
#[utoipa::path(get, path = "/api/v1/quarantine", tag = "health", responses((status = 200, body = Vec<QuarantineDto>)))]
pub async fn quarantined(State(state): State<AppState>, Auth(who): Auth) -> Result<Json<Vec<QuarantineDto>>, ApiError> {
    operator_only(&who, "quarantined plugins")?;
    Ok(Json(
        state
            .store
            .quarantined()
            .await?
            .into_iter()
            .map(|q| QuarantineDto {
                since: time(q.since),
                plugin: q.plugin,
                hash: q.hash,
                reason: q.reason,
            })
            .collect(),
    ))
}

/// What lifting a quarantine did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Released {
    pub plugin: String,
    /// The versions no longer quarantined.
    pub released: Vec<String>,
}

/// Lifts every quarantine of a plugin (operators only) and resolves its incidents.
#[utoipa::path(delete, path = "/api/v1/quarantine/{plugin}", tag = "health",
    params(("plugin" = String, Path)), responses((status = 200, body = Released), (status = 404)))]
pub async fn release(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath(plugin): ApiPath<String>,
) -> Result<Json<Released>, ApiError> {
    operator_only(&who, "quarantined plugins")?;
    let who_name = format!("operator key {}", who.key_id);
    let released = state.store.release_plugin(&plugin, &who_name).await?;
    if released.is_empty() {
        return Err(ApiError::NotFound(format!(
            "plugin `{plugin}` has no quarantined version"
        )));
    }
    Ok(Json(Released { plugin, released }))
}

fn operator_only(who: &mc_store::Principal, what: &str) -> Result<(), ApiError> {
    if who.role != Role::Operator {
        return Err(ApiError::Forbidden(format!("only operators see {what}")));
    }
    Ok(())
}

/// Prometheus metrics (text exposition format 0.0.4), for operators: they name every tenant.
pub async fn metrics(State(state): State<AppState>, Auth(who): Auth) -> Result<Response, ApiError> {
    operator_only(&who, "the metrics")?;
    let totals = state.store.totals().await?;
    let queues = state.store.queue_health().await?;
    let open = state.store.open_incidents().await?;
    let nodes = state.store.nodes().await?;
    let breakers = state.gateway.as_ref().map(|g| g.breakers()).unwrap_or_default();
    let mut m = Metrics::default();

    m.family("mc_runs", "gauge", "Runs by state, across tenants.");
    for (s, n) in &totals.runs_by_state {
        m.sample("mc_runs", &[("state", s)], *n as f64);
    }
    m.family("mc_queue_available", "gauge", "Jobs waiting for a worker, per tenant.");
    for q in &queues {
        m.sample("mc_queue_available", &[("tenant", &q.tenant)], q.available as f64);
    }
    m.family("mc_queue_running", "gauge", "Jobs running, per tenant.");
    for q in &queues {
        m.sample("mc_queue_running", &[("tenant", &q.tenant)], q.running as f64);
    }
    m.family(
        "mc_queue_oldest_wait_seconds",
        "gauge",
        "How long the oldest waiting job has waited, per tenant.",
    );
    for q in &queues {
        m.sample(
            "mc_queue_oldest_wait_seconds",
            &[("tenant", &q.tenant)],
            q.oldest_wait_ms as f64 / 1000.0,
        );
    }
    m.family("mc_ai_calls_total", "counter", "AI calls billed, per tenant.");
    for (t, calls, _, _, _) in &totals.ai_by_tenant {
        m.sample("mc_ai_calls_total", &[("tenant", t)], *calls as f64);
    }
    m.family(
        "mc_ai_tokens_total",
        "counter",
        "AI tokens billed, per tenant and direction.",
    );
    for (t, _, input, output, _) in &totals.ai_by_tenant {
        m.sample(
            "mc_ai_tokens_total",
            &[("tenant", t), ("direction", "input")],
            *input as f64,
        );
        m.sample(
            "mc_ai_tokens_total",
            &[("tenant", t), ("direction", "output")],
            *output as f64,
        );
    }
    m.family(
        "mc_ai_cost_usd_total",
        "counter",
        "AI cost billed, in dollars, per tenant.",
    );
    for (t, _, _, _, cost) in &totals.ai_by_tenant {
        m.sample("mc_ai_cost_usd_total", &[("tenant", t)], *cost as f64 / 1e6);
    }
    m.family("mc_fuel_total", "counter", "Fuel consumed by plugin runs, per tenant.");
    for (t, fuel, _) in &totals.fuel_by_tenant {
        m.sample("mc_fuel_total", &[("tenant", t)], *fuel as f64);
    }
    m.histogram(
        "mc_run_duration_seconds",
        "How long finished runs took, from claim to end.",
        &totals.run_seconds,
    );
    m.histogram("mc_run_fuel", "Fuel per finished run attempt.", &totals.run_fuel);
    m.family(
        "mc_provider_breaker_open",
        "gauge",
        "1 while the AI provider's circuit breaker is open.",
    );
    for b in &breakers {
        let open = if b.state == "open" { 1.0 } else { 0.0 };
        m.sample("mc_provider_breaker_open", &[("provider", &b.provider)], open);
    }
    m.family("mc_incidents_open", "gauge", "Open incidents, per kind.");
    let mut kinds: std::collections::BTreeMap<&str, u64> = Default::default();
    for i in &open {
        *kinds.entry(i.kind.as_str()).or_default() += 1;
    }
    for (kind, n) in kinds {
        m.sample("mc_incidents_open", &[("kind", kind)], n as f64);
    }
    m.family("mc_nodes", "gauge", "Nodes that said they are alive.");
    m.sample("mc_nodes", &[], nodes.len() as f64);
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        m.text,
    )
        .into_response())
}

/// The text exposition format, written family by family.
#[derive(Default)]
struct Metrics {
    text: String,
}

impl Metrics {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn histogram(&mut self, name: &str, help: &str, h: &mc_store::Histogram) {
        self.family(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        for (bound, n) in h.bounds.iter().zip(&h.cumulative) {
            self.sample(&bucket, &[("le", &bound.to_string())], *n as f64);
        }
        self.sample(&bucket, &[("le", "+Inf")], h.count as f64);
        self.sample(&format!("{name}_sum"), &[], h.sum);
        self.sample(&format!("{name}_count"), &[], h.count as f64);
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = write!(self.text, "{k}=\"{v}\"");
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}
