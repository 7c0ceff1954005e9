//! Outbound webhook deliveries: written in the transaction of the event they announce
//! ([`add_delivery`]), claimed by a sender when due, and finished as delivered, to be retried, or
//! failed. A claim pushes the delivery's due time out by a lease, so two senders (nodes) never
//! post the same attempt, and one that dies mid-post leaves it to be retried after the lease.

use std::time::Duration;

use serde_json::Value;

use crate::{Store, StoreError, TenantScope, now_micros};

/// The `secret` of a delivery signed with the deployment's own escalation key (an incident's
/// escalation) rather than a tenant secret.
pub const OPERATOR_SIGNED: &str = "";

/// A delivery to write.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    /// The event's type as the receiver sees it (`approval.approved`).
    pub event_type: &'a str,
    pub run_id: Option<i64>,
    pub url: &'a str,
    /// The tenant secret holding the `whsec_…` signing key, or [`OPERATOR_SIGNED`].
    pub secret: &'a str,
    /// The event's `data`.
    pub data: &'a Value,
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub tenant: String,
    pub event_type: String,
    pub run_id: Option<i64>,
    pub url: String,
    pub secret: String,
    /// The exact body sent (the same bytes on every attempt, so the signature is reproducible).
    pub payload: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts made (a claimed delivery counts the attempt under way).
    pub attempts: u32,
    pub next_at: i64,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered { status: u16 },
    /// It did not; try again at `at` (µs).
    Retry {
        status: Option<u16>,
        error: String,
        at: i64,
    },
    /// It did not, and no further attempt will be made.
    Failed { status: Option<u16>, error: String },
}

const COLUMNS: &str = "id, tenant_id, event_type, run_id, url, secret, payload, state, attempts, next_at, last_status, \
     last_error, created_at, delivered_at";

type Row = (
    i64,
    String,
    String,
    Option<i64>,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    i64,
    Option<i64>,
);

fn delivery(r: Row) -> Delivery {
    Delivery {
        id: r.0,
        tenant: r.1,
        event_type: r.2,
        run_id: r.3,
        url: r.4,
        secret: r.5,
        payload: r.6,
        state: r.7,
        attempts: r.8.try_into().unwrap_or(u32::MAX),
        next_at: r.9,
        last_status: r.10.and_then(|s| u16::try_from(s).ok()),
        last_error: r.11,
        created_at: r.12,
        delivered_at: r.13,
    }
}

/// Writes a delivery inside `tx`, due at once. The body follows the Standard Webhooks payload
/// shape: `{ "type", "timestamp", "data" }`.
pub(crate) async fn add_delivery(tx: &mut crate::Tx, tenant: &str, new: &NewDelivery<'_>) -> Result<(), StoreError> {
    let now = now_micros();
    let timestamp = jiff::Timestamp::from_microsecond(now)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let payload = serde_json::json!({ "type": new.event_type, "timestamp": timestamp, "data": new.data });
    sqlx::query(
        "INSERT INTO outbound_webhooks (tenant_id, event_type, run_id, url, secret, payload, state, attempts, next_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7)",
    )
    .bind(tenant)
    .bind(new.event_type)
    .bind(new.run_id)
    .bind(new.url)
    .bind(new.secret)
    .bind(payload.to_string())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Claims up to `limit` deliveries due by now for one attempt each: their attempt count goes
    /// up and they are not due again before `lease` has passed (if the claimer never reports).
    pub async fn claim_deliveries(&self, limit: i64, lease: Duration) -> Result<Vec<Delivery>, StoreError> {
        let now = now_micros();
        let mut tx = self.write_tx().await?;
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM outbound_webhooks WHERE state = 'pending' AND next_at <= $1 \
             ORDER BY next_at LIMIT $2{}",
            self.skip_locked()
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let until = now + lease.as_micros() as i64;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut d = delivery(row);
            sqlx::query("UPDATE outbound_webhooks SET attempts = attempts + 1, next_at = $2 WHERE id = $1")
                .bind(d.id)
                .bind(until)
                .execute(&mut *tx)
                .await?;
            d.attempts += 1;
            d.next_at = until;
            out.push(d);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Records how attempt `attempt` of delivery `id` ended. A report for an attempt that is no
    /// longer the latest (its lease ran out and another sender took it) changes nothing.
    pub async fn finish_delivery(&self, id: i64, attempt: u32, outcome: &DeliveryOutcome) -> Result<(), StoreError> {
        let now = now_micros();
        let (state, status, error, next_at, delivered_at) = match outcome {
            DeliveryOutcome::Delivered { status } => ("delivered", Some(*status), None, now, Some(now)),
            DeliveryOutcome::Retry { status, error, at } => ("pending", *status, Some(error.as_str()), *at, None),
            DeliveryOutcome::Failed { status, error } => ("failed", *status, Some(error.as_str()), now, None),
        };
        sqlx::query(
            "UPDATE outbound_webhooks SET state = $3, last_status = $4, last_error = $5, next_at = $6, delivered_at = $7 \
             WHERE id = $1 AND attempts = $2 AND state = 'pending'",
        )
        .bind(id)
        .bind(i64::from(attempt))
        .bind(state)
        .bind(status.map(i64::from))
        .bind(error)
        .bind(next_at)
        .bind(delivered_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

impl TenantScope<'_> {
    /// The webhook deliveries announcing events of run `run`, oldest first.
    pub async fn run_deliveries(&self, run: i64) -> Result<Vec<Delivery>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM outbound_webhooks WHERE tenant_id = $1 AND run_id = $2 ORDER BY id"
        ))
        .bind(self.id())
        .bind(run)
        .fetch_all(self.store().pool())
        .await?;
        Ok(rows.into_iter().map(delivery).collect())
    }
}

/// Deliveries whose event type is `LIKE pattern`, across tenants, newest first.
pub(crate) async fn deliveries_like(store: &Store, pattern: &str, limit: i64) -> Result<Vec<Delivery>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM outbound_webhooks WHERE event_type LIKE $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(pattern)
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    Ok(rows.into_iter().map(delivery).collect())
}
