//! The monitor's records: node heartbeats, the lease that lets one node at a time run the monitor
//! cycle, health snapshots, incidents, and the facts a cycle reads (queue depth and age per tenant,
//! runs held by nodes that stopped renewing them, automations failing run after run). What to do
//! about them is `mc-monitor`'s decision; this module reads and writes.

use std::time::Duration;

use serde::Serialize;

use crate::{Store, StoreError, TenantScope, now_micros};

/// The tenant of incidents about the platform as a whole (a node, the database, the disk).
pub const PLATFORM: &str = "";
/// The kind of the incident of an automation the monitor switched off; switching it back on
/// resolves it.
pub const AUTOMATION_PAUSED: &str = "automation_paused";
/// The kind of the (resolved) incident of runs requeued from a node that stopped renewing their
/// leases.
pub const RUNS_REQUEUED: &str = "runs_requeued";

/// A tenant's queue as the monitor sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueHealth {
    pub tenant: String,
    /// Jobs waiting for a worker.
    pub available: i64,
    /// Jobs running (not counting parents waiting for their children).
    pub running: i64,
    /// How long the oldest waiting job has waited, in milliseconds (0 when none waits).
    pub oldest_wait_ms: i64,
}

/// An automation whose latest runs all failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailingAutomation {
    pub tenant: String,
    pub automation: String,
    /// Its latest finished runs that failed, in a row.
    pub streak: u32,
    /// The latest failure's error.
    pub last_error: Option<String>,
}

/// An incident as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    pub id: i64,
    /// The tenant it concerns; [`PLATFORM`] (empty) for the platform as a whole.
    pub tenant: String,
    /// What kind of thing happened (`automation_paused`, `node_lost`, `provider_down`, …).
    pub kind: String,
    /// What it happened to (an automation, a node, a provider).
    pub subject: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// `open` or `resolved`.
    pub state: String,
    pub summary: String,
    /// What the monitor did about it.
    pub action: Option<String>,
    pub opened_at: i64,
    pub updated_at: i64,
    pub resolved_at: Option<i64>,
}

/// An incident to record.
#[derive(Debug, Clone, Copy)]
pub struct NewIncident<'a> {
    pub tenant: &'a str,
    pub kind: &'a str,
    pub subject: &'a str,
    pub severity: &'a str,
    pub summary: &'a str,
    pub action: Option<&'a str>,
    /// Whether it needs a person, and which of the operator's destinations to tell: `None` for
    /// incidents the monitor fixed by itself. A new incident that needs a person is posted to
    /// each destination and to its tenant's own contact (`contact` in its configuration) as an
    /// `incident.opened` event, by the outbox, written with the incident.
    pub escalate: Option<&'a [Destination]>,
}

/// Where an incident is escalated: a webhook URL (`https://…`, signed per Standard Webhooks) or
/// an address (`mailto:ops@example.com`, sent by email).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Destination {
    pub url: String,
    /// The tenant secret that signs a webhook, or [`crate::OPERATOR_SIGNED`] for the
    /// deployment's escalation key (and for email).
    pub secret: String,
}

impl Destination {
    /// The operator's webhook, signed with the deployment's escalation key.
    pub fn operator_webhook(url: &str) -> Destination {
        Destination {
            url: url.to_string(),
            secret: crate::OPERATOR_SIGNED.to_string(),
        }
    }

    /// An email address.
    pub fn email(address: &str) -> Destination {
        Destination {
            url: format!("mailto:{address}"),
            secret: crate::OPERATOR_SIGNED.to_string(),
        }
    }
}

/// The destinations an incident was escalated to, as kept in `incidents.escalated_to`: a JSON
/// list (an older release kept the operator's webhook URL alone).
fn escalated(kept: Option<&str>) -> Vec<Destination> {
    match kept {
        None | Some("") => Vec::new(),
        Some(text) if text.starts_with('[') => serde_json::from_str(text).unwrap_or_default(),
        Some(url) => vec![Destination::operator_webhook(url)],
    }
}

/// The `data` of an `incident.opened` or `incident.updated` event.
fn event_data(id: i64, new: &NewIncident<'_>, action: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "incident": id,
        "tenant": new.tenant,
        "kind": new.kind,
        "subject": new.subject,
        "severity": new.severity,
        "summary": new.summary,
        "action": action,
    })
}

/// Writes an `incident.*` event for each destination inside `tx`.
async fn escalate_in(
    tx: &mut crate::Tx,
    tenant: &str,
    event_type: &str,
    to: &[Destination],
    data: &serde_json::Value,
) -> Result<(), StoreError> {
    for d in to {
        crate::outbox::add_delivery(
            tx,
            tenant,
            &crate::NewDelivery {
                event_type,
                run_id: None,
                url: &d.url,
                secret: &d.secret,
                data,
            },
        )
        .await?;
    }
    Ok(())
}

/// What recording an open incident did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// A new incident, with its id: the one to tell people about.
    New(i64),
    /// The same incident was open already; its summary was updated.
    Updated(i64),
}

type IncidentTuple = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    i64,
    Option<i64>,
);

const INCIDENT_COLUMNS: &str =
    "id, tenant_id, kind, subject, severity, state, summary, action, opened_at, updated_at, resolved_at";

fn incident(t: IncidentTuple) -> Incident {
    Incident {
        id: t.0,
        tenant: t.1,
        kind: t.2,
        subject: t.3,
        severity: t.4,
        state: t.5,
        summary: t.6,
        action: t.7,
        opened_at: t.8,
        updated_at: t.9,
        resolved_at: t.10,
    }
}

impl Store {
    /// Records that `node` is alive now.
    pub async fn node_seen(&self, node: &str) -> Result<(), StoreError> {
        let now = now_micros();
        sqlx::query(
            "INSERT INTO nodes (id, started_at, seen_at) VALUES ($1, $2, $2) \
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
        )
        .bind(node)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every node that said it was alive, with when it started and when it was last seen.
    pub async fn nodes(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
        Ok(sqlx::query_as("SELECT id, started_at, seen_at FROM nodes ORDER BY id")
            .fetch_all(self.pool())
            .await?)
    }

    /// Forgets a node that was found dead (its runs were requeued), or that stopped cleanly.
    pub async fn forget_node(&self, node: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(node)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Takes or renews the lease `name` for `holder` for `ttl`: true while `holder` holds it. A
    /// lease another holder let lapse is taken over.
    pub async fn hold_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = now_micros();
        let held: Option<(String,)> = sqlx::query_as(
            "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE leases.holder = excluded.holder OR leases.until < $4 RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl.as_micros() as i64)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(held.is_some())
    }

    /// Gives the lease `name` up if `holder` has it (a node stopping), so another takes over at once.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Each tenant's queue: waiting and running jobs and how long the oldest has waited.
    pub async fn queue_health(&self) -> Result<Vec<QueueHealth>, StoreError> {
        let now = now_micros();
        let counts: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT t.tenant_id, t.available, t.started - COALESCE(l.runs, 0) FROM queue_tenants t \
                 LEFT JOIN queue_left l ON l.tenant_id = t.tenant_id ORDER BY t.tenant_id",
        )
        .fetch_all(self.pool())
        .await?;
        let oldest: std::collections::HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
            "SELECT tenant_id, MIN(run_at) FROM queue WHERE state = 'available' GROUP BY tenant_id",
        )
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .collect();
        Ok(counts
            .into_iter()
            .map(|(tenant, available, running)| QueueHealth {
                oldest_wait_ms: oldest.get(&tenant).map_or(0, |at| ((now - at) / 1000).max(0)),
                tenant,
                available,
                running,
            })
            .collect())
    }

    /// Switched-on automations with a run that failed for good since `since`, whose latest
    /// `streak` finished runs all failed.
    pub async fn failing_automations(&self, since: i64, streak: u32) -> Result<Vec<FailingAutomation>, StoreError> {
        let candidates: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT d.tenant_id, d.automation FROM queue d \
             JOIN automations a ON a.tenant_id = d.tenant_id AND a.name = d.automation \
             WHERE d.state = 'dead' AND d.finished_at > $1 AND a.enabled = 1 ORDER BY 1, 2",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        let mut failing = Vec::new();
        for (tenant, automation) in candidates {
            let latest: Vec<(String, Option<String>)> = sqlx::query_as(
                "SELECT state, error FROM jobs WHERE tenant_id = $1 AND automation = $2 \
                 AND state IN ('succeeded', 'dead', 'awaiting_approval', 'rejected') \
                 AND COALESCE(error_kind, '') <> $4 ORDER BY id DESC LIMIT $3",
            )
            .bind(&tenant)
            .bind(&automation)
            .bind(i64::from(streak))
            .bind(crate::QUARANTINED)
            .fetch_all(self.pool())
            .await?;
            let in_a_row = latest.iter().take_while(|(state, _)| state == "dead").count() as u32;
            if in_a_row >= streak {
                failing.push(FailingAutomation {
                    tenant,
                    automation,
                    streak: in_a_row,
                    last_error: latest.into_iter().next().and_then(|(_, e)| e),
                });
            }
        }
        Ok(failing)
    }

    /// Switches an automation off for `reason` (the monitor pausing it). False if it was off.
    pub async fn pause_automation(&self, tenant: &str, automation: &str, reason: &str) -> Result<bool, StoreError> {
        let changed = sqlx::query(
            "UPDATE automations SET enabled = 0, paused_reason = $3, updated_at = $4 \
             WHERE tenant_id = $1 AND name = $2 AND enabled = 1",
        )
        .bind(tenant)
        .bind(automation)
        .bind(reason)
        .bind(now_micros())
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(changed > 0)
    }

    /// Records an open incident, or updates the open one of the same tenant, kind and subject.
    /// A new one that needs a person is escalated (see [`NewIncident::escalate`]) in the same
    /// transaction: once, however often it is noticed again. An update that changes its severity
    /// or what was done about it is posted where it was escalated as `incident.updated`; one that
    /// only restates it (a queue a little older) is not sent.
    pub async fn open_incident(&self, new: &NewIncident<'_>) -> Result<Opened, StoreError> {
        let now = now_micros();
        let mut tx = self.write_tx().await?;
        let existing: Option<(i64, String, Option<String>, Option<String>)> = sqlx::query_as(&format!(
            "SELECT id, severity, action, escalated_to FROM incidents \
             WHERE tenant_id = $1 AND kind = $2 AND subject = $3 AND state = 'open'{}",
            self.for_update()
        ))
        .bind(new.tenant)
        .bind(new.kind)
        .bind(new.subject)
        .fetch_optional(&mut *tx)
        .await?;
        let opened = match existing {
            Some((id, severity, action, escalated_to)) => {
                let action_now = new.action.map(str::to_string).or(action.clone());
                sqlx::query(
                    "UPDATE incidents SET summary = $2, severity = $3, action = $4, updated_at = $5 WHERE id = $1",
                )
                .bind(id)
                .bind(new.summary)
                .bind(new.severity)
                .bind(&action_now)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let to = escalated(escalated_to.as_deref());
                if !to.is_empty() && (severity != new.severity || action != action_now) {
                    let data = event_data(id, new, action_now.as_deref());
                    escalate_in(&mut tx, new.tenant, "incident.updated", &to, &data).await?;
                }
                Opened::Updated(id)
            }
            None => {
                let to = match new.escalate {
                    Some(ops) => {
                        let mut to = ops.to_vec();
                        if new.tenant != PLATFORM {
                            to.extend(contact_in(&mut tx, new.tenant).await?);
                        }
                        to
                    }
                    None => Vec::new(),
                };
                let kept = (!to.is_empty()).then(|| serde_json::to_string(&to).unwrap_or_default());
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO incidents (tenant_id, kind, subject, severity, state, summary, action, opened_at, \
                     updated_at, escalated_to) VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $7, $8) RETURNING id",
                )
                .bind(new.tenant)
                .bind(new.kind)
                .bind(new.subject)
                .bind(new.severity)
                .bind(new.summary)
                .bind(new.action)
                .bind(now)
                .bind(kept)
                .fetch_one(&mut *tx)
                .await?;
                let data = event_data(id, new, new.action);
                escalate_in(&mut tx, new.tenant, "incident.opened", &to, &data).await?;
                Opened::New(id)
            }
        };
        tx.commit().await?;
        Ok(opened)
    }

    /// The escalations of incidents (deliveries of `incident.*` events), newest first.
    pub async fn escalations(&self, limit: i64) -> Result<Vec<crate::Delivery>, StoreError> {
        crate::outbox::deliveries_like(self, "incident.%", limit).await
    }

    /// Records an incident the monitor dealt with at once (opened and resolved together).
    pub async fn resolved_incident(&self, new: &NewIncident<'_>) -> Result<i64, StoreError> {
        record_resolved(self.pool(), new).await
    }

    /// Resolves the open incident of `tenant`, `kind` and `subject`, if there is one, noting
    /// `action`. Returns its id.
    pub async fn resolve_incident(
        &self,
        tenant: &str,
        kind: &str,
        subject: &str,
        action: &str,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.write_tx().await?;
        let id = resolve_in(&mut tx, tenant, kind, subject, action).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Open incidents of every tenant and of the platform, newest first.
    pub async fn open_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let rows: Vec<IncidentTuple> = sqlx::query_as(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE state = 'open' ORDER BY id DESC"
        ))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(incident).collect())
    }

    /// The latest incidents of every tenant and of the platform, newest first.
    pub async fn incidents(&self, limit: i64) -> Result<Vec<Incident>, StoreError> {
        let rows: Vec<IncidentTuple> = sqlx::query_as(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents ORDER BY id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(incident).collect())
    }

    /// Keeps a cycle's measurements and drops those older than `keep`.
    pub async fn save_snapshot(&self, node: &str, data: &serde_json::Value, keep: Duration) -> Result<(), StoreError> {
        let now = now_micros();
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO health_snapshots (at, node, data) VALUES ($1, $2, $3)")
            .bind(now)
            .bind(node)
            .bind(data.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM health_snapshots WHERE at < $1")
            .bind(now - keep.as_micros() as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The latest snapshot: when, which node took it, and what it measured.
    pub async fn latest_snapshot(&self) -> Result<Option<(i64, String, serde_json::Value)>, StoreError> {
        let row: Option<(i64, String, String)> =
            sqlx::query_as("SELECT at, node, data FROM health_snapshots ORDER BY at DESC, id DESC LIMIT 1")
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(at, node, data)| (at, node, serde_json::from_str(&data).unwrap_or_default())))
    }

    /// When the latest snapshot was taken, without reading what it holds.
    pub async fn latest_snapshot_at(&self) -> Result<Option<i64>, StoreError> {
        let (at,): (Option<i64>,) = sqlx::query_as("SELECT MAX(at) FROM health_snapshots")
            .fetch_one(self.pool())
            .await?;
        Ok(at)
    }

    /// How many snapshots are kept.
    pub async fn snapshot_count(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM health_snapshots")
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }
}

impl TenantScope<'_> {
    /// The tenant's incidents, newest first.
    pub async fn incidents(&self, limit: i64) -> Result<Vec<Incident>, StoreError> {
        let rows: Vec<IncidentTuple> = sqlx::query_as(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(self.id())
        .bind(limit)
        .fetch_all(self.store().pool())
        .await?;
        Ok(rows.into_iter().map(incident).collect())
    }

    /// Why the monitor paused automation `name`, if it did and it is still off.
    pub async fn paused_reason(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT paused_reason FROM automations WHERE tenant_id = $1 AND name = $2")
                .bind(self.id())
                .bind(name)
                .fetch_optional(self.store().pool())
                .await?;
        Ok(row.and_then(|(r,)| r))
    }
}

/// A tenant's own contact for incidents that concern it (kept as JSON in `tenants.contact`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Contact {
    /// Where incident emails go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Where incident events are posted, and the tenant secret (`whsec_…`) that signs them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<ContactWebhook>,
}

/// A tenant's incident webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ContactWebhook {
    pub url: String,
    /// The name of the tenant secret holding the signing key.
    pub secret: String,
}

impl Contact {
    /// Where this contact is told about an incident.
    pub fn destinations(&self) -> Vec<Destination> {
        let mut to = Vec::new();
        if let Some(w) = &self.webhook {
            to.push(Destination {
                url: w.url.clone(),
                secret: w.secret.clone(),
            });
        }
        if let Some(e) = &self.email {
            to.push(Destination::email(e));
        }
        to
    }
}

/// The destinations of `tenant`'s own contact, read inside `tx`.
async fn contact_in(tx: &mut crate::Tx, tenant: &str) -> Result<Vec<Destination>, StoreError> {
    let row: Option<(Option<String>,)> = sqlx::query_as("SELECT contact FROM tenants WHERE id = $1")
        .bind(tenant)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row.and_then(|(c,)| c) {
        Some(text) => serde_json::from_str::<Contact>(&text)
            .map_err(|e| StoreError::Corrupt(format!("tenant contact: {e}")))?
            .destinations(),
        None => Vec::new(),
    })
}

/// [`Store::resolved_incident`] on any executor (lease recovery records what it did in its own
/// transaction).
pub(crate) async fn record_resolved<'e, E>(executor: E, new: &NewIncident<'_>) -> Result<i64, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let now = now_micros();
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO incidents (tenant_id, kind, subject, severity, state, summary, action, opened_at, updated_at, resolved_at) \
         VALUES ($1, $2, $3, $4, 'resolved', $5, $6, $7, $7, $7) RETURNING id",
    )
    .bind(new.tenant)
    .bind(new.kind)
    .bind(new.subject)
    .bind(new.severity)
    .bind(new.summary)
    .bind(new.action)
    .bind(now)
    .fetch_one(executor)
    .await?;
    Ok(id)
}

/// [`Store::resolve_incident`] inside `tx` (a switch-on resolves its pause in its own
/// transaction). An escalated incident's resolution is posted where it was escalated, in the
/// same transaction.
pub(crate) async fn resolve_in(
    tx: &mut crate::Tx,
    tenant: &str,
    kind: &str,
    subject: &str,
    action: &str,
) -> Result<Option<i64>, StoreError> {
    let now = now_micros();
    let row: Option<(i64, Option<String>, Option<String>)> = sqlx::query_as(
        "UPDATE incidents SET state = 'resolved', resolved_at = $4, updated_at = $4, \
         action = CASE WHEN action IS NULL THEN $5 ELSE action || '; ' || $5 END \
         WHERE tenant_id = $1 AND kind = $2 AND subject = $3 AND state = 'open' RETURNING id, escalated_to, action",
    )
    .bind(tenant)
    .bind(kind)
    .bind(subject)
    .bind(now)
    .bind(action)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((id, escalated_to, action)) = row else {
        return Ok(None);
    };
    let to = escalated(escalated_to.as_deref());
    let data = serde_json::json!({
        "incident": id,
        "tenant": tenant,
        "kind": kind,
        "subject": subject,
        "action": action,
    });
    escalate_in(tx, tenant, "incident.resolved", &to, &data).await?;
    Ok(Some(id))
}

/// Totals the metrics endpoint exposes, read in one pass per scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// Runs by state, across tenants.
    pub runs_by_state: Vec<(String, i64)>,
    /// Per tenant: AI calls, input and output tokens, and cost in micro-dollars, since the start.
    pub ai_by_tenant: Vec<(String, i64, i64, i64, i64)>,
    /// Per tenant: fuel consumed and its cost in micro-dollars, since the start.
    pub fuel_by_tenant: Vec<(String, i64, i64)>,
    /// How long finished runs took (seconds), from claim to end of their last attempt.
    pub run_seconds: Histogram,
    /// Fuel per finished run attempt (the ledger's fuel rows).
    pub run_fuel: Histogram,
}

/// A histogram as Prometheus exposes it: cumulative counts at each upper bound, then the total
/// count and sum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub bounds: Vec<f64>,
    /// Observations at or below each bound, in the order of `bounds`.
    pub cumulative: Vec<i64>,
    pub count: i64,
    pub sum: f64,
}

/// Upper bounds of the run duration histogram, in seconds: from a trivial plugin to the longest
/// deadline.
pub const RUN_SECONDS_BOUNDS: [f64; 9] = [0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0];
/// Upper bounds of the fuel histogram: from a no-op run to the largest budget.
pub const RUN_FUEL_BOUNDS: [f64; 6] = [1e5, 1e6, 1e7, 1e8, 1e9, 1e10];

/// Counts `value` (an integer expression of the rows `rest` selects) into `bounds`, each bound
/// multiplied by `scale` to the value's unit.
async fn histogram(
    store: &Store,
    value: &str,
    rest: &str,
    bounds: &[f64],
    scale: f64,
) -> Result<Histogram, StoreError> {
    use sqlx::Row as _;
    let mut columns: Vec<String> = bounds
        .iter()
        .map(|b| {
            format!(
                "CAST(COALESCE(SUM(CASE WHEN {value} <= {} THEN 1 ELSE 0 END), 0) AS BIGINT)",
                (b * scale) as i64
            )
        })
        .collect();
    columns.push("COUNT(*)".into());
    columns.push(format!("CAST(COALESCE(SUM({value}), 0) AS BIGINT)"));
    let row = sqlx::query(&format!("SELECT {} {rest}", columns.join(", ")))
        .fetch_one(store.pool())
        .await?;
    let n = bounds.len();
    let mut cumulative = Vec::with_capacity(n);
    for i in 0..n {
        cumulative.push(row.try_get::<i64, _>(i)?);
    }
    Ok(Histogram {
        bounds: bounds.to_vec(),
        cumulative,
        count: row.try_get::<i64, _>(n)?,
        sum: row.try_get::<i64, _>(n + 1)? as f64 / scale,
    })
}

impl Store {
    /// What `/metrics` reports beside the latest snapshot.
    pub async fn totals(&self) -> Result<Totals, StoreError> {
        let runs_by_state = sqlx::query_as("SELECT state, COUNT(*) FROM runs GROUP BY state ORDER BY state")
            .fetch_all(self.pool())
            .await?;
        let ai_by_tenant = sqlx::query_as(
            "SELECT tenant_id, CAST(SUM(entries) AS BIGINT), CAST(SUM(input_tokens) AS BIGINT), \
             CAST(SUM(output_tokens) AS BIGINT), CAST(SUM(cost) AS BIGINT) FROM ledger_totals WHERE kind = 'ai' \
             GROUP BY tenant_id ORDER BY tenant_id",
        )
        .fetch_all(self.pool())
        .await?;
        let fuel_by_tenant = sqlx::query_as(
            "SELECT tenant_id, CAST(SUM(fuel) AS BIGINT), CAST(SUM(cost) AS BIGINT) FROM ledger_totals \
             WHERE kind = 'fuel' GROUP BY tenant_id ORDER BY tenant_id",
        )
        .fetch_all(self.pool())
        .await?;
        let run_seconds = histogram(
            self,
            "(finished_at - started_at)",
            "FROM jobs WHERE state IN ('succeeded', 'dead') AND started_at IS NOT NULL AND finished_at IS NOT NULL",
            &RUN_SECONDS_BOUNDS,
            1e6,
        )
        .await?;
        let run_fuel = histogram(self, "fuel", "FROM ledger WHERE kind = 'fuel'", &RUN_FUEL_BOUNDS, 1.0).await?;
        Ok(Totals {
            runs_by_state,
            ai_by_tenant,
            fuel_by_tenant,
            run_seconds,
            run_fuel,
        })
    }
}

/// How late a scheduled run may start and still count as on time for the SLA: a minute covers
/// a busy queue's normal wait, not an outage.
pub const SLA_START_GRACE: Duration = Duration::from_secs(60);
/// Kinds of run failures that are the platform's fault, not the plugin's: a node lost under the
/// run, or the host unable to run it.
pub const PLATFORM_FAILURES: [&str; 2] = ["lease_expired", "host"];

/// A tenant's availability for a month: of its scheduled ticks, those that became a run that
/// started on time and did not fail for a platform reason. Ticks skipped by the automation's own
/// overlap policy, and runs not yet due to have started, are left out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sla {
    pub month: String,
    /// Ticks counted: fired (and due to have started) plus missed.
    pub scheduled: i64,
    /// Of those, runs that started on time and did not fail for a platform reason.
    pub available: i64,
    /// Ticks missed while no node was running.
    pub missed: i64,
    /// Runs that started more than [`SLA_START_GRACE`] after their tick (or not at all).
    pub late: i64,
    /// Runs that failed for a platform reason.
    pub platform_failures: i64,
    /// `available / scheduled` in percent; `None` while nothing was scheduled.
    pub availability: Option<f64>,
}

/// The first microsecond of `month` (`YYYY-MM`) and of the month after, in UTC.
pub fn month_bounds(month: &str) -> Result<(i64, i64), String> {
    crate::valid_month(month)?;
    let start: jiff::civil::Date = format!("{month}-01").parse().map_err(|e| format!("{e}"))?;
    let next = start
        .checked_add(jiff::Span::new().months(1))
        .map_err(|e| format!("{e}"))?;
    let micros = |d: jiff::civil::Date| {
        jiff::tz::TimeZone::UTC
            .to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
            .map(|t| t.as_microsecond())
            .map_err(|e| format!("{e}"))
    };
    Ok((micros(start)?, micros(next)?))
}

impl TenantScope<'_> {
    /// The tenant's availability for `month` (see [`Sla`]).
    pub async fn sla(&self, month: &str) -> Result<Sla, StoreError> {
        let (from, to) = month_bounds(month).map_err(StoreError::Invalid)?;
        let now = now_micros();
        let grace = SLA_START_GRACE.as_micros() as i64;
        let platform = PLATFORM_FAILURES
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ");
        // Our own constants and integers are written into the text; the tenant and month bind.
        let (missed, fired, on_time, late, failed): (i64, i64, i64, i64, i64) = sqlx::query_as(&format!(
            "SELECT \
               CAST(COALESCE(SUM(CASE WHEN e.outcome = 'missed' THEN 1 ELSE 0 END), 0) AS BIGINT), \
               CAST(COALESCE(SUM(CASE WHEN e.outcome = 'fired' AND (j.started_at IS NOT NULL OR e.tick + {grace} < {now}) \
                 THEN 1 ELSE 0 END), 0) AS BIGINT), \
               CAST(COALESCE(SUM(CASE WHEN e.outcome = 'fired' AND j.started_at IS NOT NULL AND j.started_at - e.tick <= {grace} \
                 AND NOT (j.state = 'dead' AND j.error_kind IN ({platform})) THEN 1 ELSE 0 END), 0) AS BIGINT), \
               CAST(COALESCE(SUM(CASE WHEN e.outcome = 'fired' AND ((j.started_at IS NULL AND e.tick + {grace} < {now}) \
                 OR j.started_at - e.tick > {grace}) THEN 1 ELSE 0 END), 0) AS BIGINT), \
               CAST(COALESCE(SUM(CASE WHEN e.outcome = 'fired' AND j.state = 'dead' AND j.error_kind IN ({platform}) \
                 THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM tick_events e LEFT JOIN runs j ON j.tenant_id = e.tenant_id AND j.id = e.job_id \
             WHERE e.tenant_id = $1 AND e.tick >= $2 AND e.tick < $3"
        ))
        .bind(self.id())
        .bind(from)
        .bind(to)
        .fetch_one(self.store().pool())
        .await?;
        let scheduled = fired + missed;
        Ok(Sla {
            month: month.to_string(),
            scheduled,
            available: on_time,
            missed,
            late,
            platform_failures: failed,
            availability: (scheduled > 0).then(|| on_time as f64 * 100.0 / scheduled as f64),
        })
    }
}
