//! Durable schedule state (the last tick each time-triggered automation handled), the record of
//! every tick (fired, skipped, missed), and the tenant key-value buckets.

use std::collections::HashSet;

use mc_config::Trigger;

use crate::queue::{NewJob, enqueue_in};
use crate::{Placeholders, Sealer, Store, StoreError, json_rows, now_micros};

/// Schedule marks compared and set per statement: bounds one statement's JSON document.
const ADVANCE_CHUNK: usize = 1_000;
/// Tick records inserted per statement: bounds one statement's JSON document.
const TICK_CHUNK: usize = 1_000;

/// An automation the scheduler evaluates: enabled and time-triggered (cron, interval, at).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedulable {
    pub tenant: String,
    pub automation: String,
    pub agent: String,
    pub plugin: String,
    pub trigger: Trigger,
    pub input: String,
    pub priority: i32,
    pub overlap: String,
    pub catch_up: String,
    /// The last tick handled, if the scheduler has seen this automation before.
    pub last_tick: Option<i64>,
}

/// What happened at one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickOutcome {
    /// A job was enqueued for it.
    Fired(NewJob),
    /// The overlap policy skipped it (a run was still going).
    Skipped(String),
    /// It passed while no node ran and the catch-up policy did not run it.
    Missed(String),
}

/// One automation's part of a scheduler pass: move its mark from `from` to `to`, recording `ticks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advance {
    pub tenant: String,
    pub automation: String,
    pub from: i64,
    pub to: i64,
    pub ticks: Vec<(i64, TickOutcome)>,
}

/// A recorded tick.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TickEvent {
    pub tick: i64,
    pub outcome: String,
    pub job_id: Option<i64>,
    pub reason: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, StoreError> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .map_err(|_| StoreError::Corrupt("a key-value entry is not hex".into()))
}

impl Store {
    /// Every enabled, time-triggered automation of every tenant, with its schedule mark. This is
    /// the engine's own cross-tenant read; nothing tenant-facing calls it.
    pub async fn schedulable(&self) -> Result<Vec<Schedulable>, StoreError> {
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            i64,
            String,
            String,
            Option<i64>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT a.tenant_id, a.name, a.agent, g.plugin, a.trigger_spec, a.input, a.priority, a.overlap, a.catch_up, s.last_tick \
             FROM automations a \
             JOIN agents g ON g.tenant_id = a.tenant_id AND g.name = a.agent \
             LEFT JOIN schedule_state s ON s.tenant_id = a.tenant_id AND s.automation = a.name \
             WHERE a.enabled = 1 ORDER BY a.tenant_id, a.name",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let trigger: Trigger =
                serde_json::from_str(&r.4).map_err(|e| StoreError::Corrupt(format!("automation trigger: {e}")))?;
            if matches!(
                trigger,
                Trigger::Cron { .. } | Trigger::Interval { .. } | Trigger::At { .. }
            ) {
                out.push(Schedulable {
                    tenant: r.0,
                    automation: r.1,
                    agent: r.2,
                    plugin: r.3,
                    trigger,
                    input: r.5,
                    priority: r.6 as i32,
                    overlap: r.7,
                    catch_up: r.8,
                    last_tick: r.9,
                });
            }
        }
        Ok(out)
    }

    /// A fingerprint of every automation and agent definition: it changes whenever one is
    /// created, updated or deleted, so the scheduler can keep its list of schedules between passes
    /// and re-read it only then. (Counts and a sum of the update times rather than the latest
    /// update time: another node's clock may lag, so a change can carry an older time.)
    pub async fn schedule_fingerprint(&self) -> Result<(i64, i64, i64, i64), StoreError> {
        let row: (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM automations), \
                    (SELECT CAST(COALESCE(SUM(updated_at % 1000003), 0) AS BIGINT) FROM automations), \
                    (SELECT COUNT(*) FROM agents), \
                    (SELECT CAST(COALESCE(SUM(updated_at % 1000003), 0) AS BIGINT) FROM agents)",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(row)
    }

    /// Sets the first mark of automations the scheduler has not seen; a mark that exists wins.
    pub async fn init_schedules(&self, automations: &[(String, String)], tick: i64) -> Result<(), StoreError> {
        for chunk in automations.chunks(ADVANCE_CHUNK) {
            let mut conn = self.pool().acquire().await?;
            let mut p = Placeholders::for_conn(&conn);
            // `tick` is an integer of ours, safe to write into the statement.
            let sql = format!(
                "INSERT INTO schedule_state (tenant_id, automation, last_tick) \
                 SELECT r.value ->> 0, r.value ->> 1, {tick} FROM {} WHERE true \
                 ON CONFLICT (tenant_id, automation) DO NOTHING",
                p.json_rows()
            );
            let rows = chunk.iter().map(|(t, a)| serde_json::json!([t, a])).collect();
            let q = sqlx::query(&sql).bind(json_rows(rows));
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Advances each automation's mark from `from` to `to` and records its `ticks` (enqueueing
    /// the fired ones), all in one transaction (a scheduler pass). Each item's mark is compared
    /// and set on its own: an item another node handled yields
    /// `None` and writes nothing, the others proceed.
    ///
    /// A pass over a thousand due automations is a handful of statements, each over a JSON array
    /// of rows: one `UPDATE … FROM` per [`ADVANCE_CHUNK`] marks, one insert for the fired jobs and
    /// one per [`TICK_CHUNK`] tick records. (One statement per automation took most of a
    /// one-second interval on PostgreSQL.)
    pub async fn advance_schedules(&self, batch: Vec<Advance>) -> Result<Vec<Option<Vec<TickEvent>>>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write_tx().await?;
        let now = now_micros();
        let mut moved: HashSet<(String, String)> = HashSet::new();
        for chunk in batch.chunks(ADVANCE_CHUNK) {
            let mut p = Placeholders::for_conn(&tx);
            let sql = format!(
                "UPDATE schedule_state SET last_tick = CAST(r.value ->> 3 AS BIGINT) FROM {} \
                 WHERE schedule_state.tenant_id = r.value ->> 0 AND schedule_state.automation = r.value ->> 1 \
                 AND schedule_state.last_tick = CAST(r.value ->> 2 AS BIGINT) \
                 RETURNING schedule_state.tenant_id, schedule_state.automation",
                p.json_rows()
            );
            let rows = chunk
                .iter()
                .map(|a| serde_json::json!([a.tenant, a.automation, a.from, a.to]))
                .collect();
            let q = sqlx::query_as::<_, (String, String)>(&sql).bind(json_rows(rows));
            moved.extend(q.fetch_all(&mut *tx).await?);
        }
        // The fired ticks' jobs, in one insert.
        let mut jobs = Vec::new();
        for a in &batch {
            if moved.contains(&(a.tenant.clone(), a.automation.clone())) {
                for (_, outcome) in &a.ticks {
                    if let TickOutcome::Fired(job) = outcome {
                        jobs.push(job.clone());
                    }
                }
            }
        }
        let mut job_ids = enqueue_in(&mut tx, &jobs).await?.into_iter().map(|e| e.id());
        let mut out = Vec::with_capacity(batch.len());
        let mut records: Vec<(String, String, TickEvent)> = Vec::new();
        for a in batch {
            if !moved.contains(&(a.tenant.clone(), a.automation.clone())) {
                out.push(None);
                continue;
            }
            let mut events = Vec::with_capacity(a.ticks.len());
            for (tick, outcome) in a.ticks {
                let (name, job_id, reason) = match outcome {
                    TickOutcome::Fired(_) => ("fired", job_ids.next(), None),
                    TickOutcome::Skipped(why) => ("skipped", None, Some(why)),
                    TickOutcome::Missed(why) => ("missed", None, Some(why)),
                };
                let event = TickEvent {
                    tick,
                    outcome: name.to_string(),
                    job_id,
                    reason,
                };
                records.push((a.tenant.clone(), a.automation.clone(), event.clone()));
                events.push(event);
            }
            out.push(Some(events));
        }
        for chunk in records.chunks(TICK_CHUNK) {
            let mut p = Placeholders::for_conn(&tx);
            // `now` is an integer of ours, safe to write into the statement.
            let sql = format!(
                "INSERT INTO tick_events (tenant_id, automation, tick, outcome, job_id, reason, created_at) \
                 SELECT r.value ->> 0, r.value ->> 1, CAST(r.value ->> 2 AS BIGINT), r.value ->> 3, \
                 CAST(r.value ->> 4 AS BIGINT), r.value ->> 5, {now} FROM {} WHERE true \
                 ON CONFLICT (tenant_id, automation, tick) DO NOTHING",
                p.json_rows()
            );
            let rows = chunk
                .iter()
                .map(|(tenant, automation, e)| {
                    serde_json::json!([tenant, automation, e.tick, e.outcome, e.job_id, e.reason])
                })
                .collect();
            let q = sqlx::query(&sql).bind(json_rows(rows));
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// The automations (tenant, name) that have a job not yet finished, for the overlap policy of
    /// a whole scheduler pass in one query.
    pub async fn unfinished_automations(&self) -> Result<std::collections::HashSet<(String, String)>, StoreError> {
        // One branch per state so each uses its partial index.
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT tenant_id, automation FROM queue WHERE state = 'running' AND automation IS NOT NULL \
             UNION SELECT tenant_id, automation FROM queue WHERE state = 'available' AND automation IS NOT NULL \
             UNION SELECT tenant_id, automation FROM queue WHERE state = 'scheduled' AND automation IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// For each tick of `tenant` recorded as fired: the tick and when its job started (µs), for
    /// on-time measurements; and how many ticks were recorded missed or skipped.
    pub async fn tick_start_delays(&self, tenant: &str) -> Result<(Vec<(i64, Option<i64>)>, i64), StoreError> {
        let fired: Vec<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT e.tick, j.started_at FROM tick_events e LEFT JOIN runs j ON j.id = e.job_id \
             WHERE e.tenant_id = $1 AND e.outcome = 'fired' ORDER BY e.tick",
        )
        .bind(tenant)
        .fetch_all(self.pool())
        .await?;
        let (other,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM tick_events WHERE tenant_id = $1 AND outcome <> 'fired'")
                .bind(tenant)
                .fetch_one(self.pool())
                .await?;
        Ok((fired, other))
    }

    /// The recorded ticks of one automation, newest first.
    pub async fn tick_events(&self, tenant: &str, automation: &str, limit: i64) -> Result<Vec<TickEvent>, StoreError> {
        let rows: Vec<(i64, String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT tick, outcome, job_id, reason FROM tick_events WHERE tenant_id = $1 AND automation = $2 ORDER BY tick DESC LIMIT $3",
        )
        .bind(tenant)
        .bind(automation)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(tick, outcome, job_id, reason)| TickEvent {
                tick,
                outcome,
                job_id,
                reason,
            })
            .collect())
    }

    /// The value under `key` in `bucket`.
    pub async fn kv_get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM kv WHERE bucket = $1 AND key = $2")
            .bind(bucket)
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        row.map(|(v,)| unhex(&v)).transpose()
    }

    /// Stores `value` under `key` in `bucket`.
    pub async fn kv_set(&self, bucket: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kv (bucket, key, value, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(bucket)
        .bind(key)
        .bind(hex(value))
        .bind(now_micros())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Removes `key` from `bucket`.
    pub async fn kv_delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM kv WHERE bucket = $1 AND key = $2")
            .bind(bucket)
            .bind(key)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Up to `limit` keys of `bucket` in order, starting at offset `offset`.
    pub async fn kv_keys(&self, bucket: &str, offset: i64, limit: i64) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT key FROM kv WHERE bucket = $1 ORDER BY key LIMIT $2 OFFSET $3")
                .bind(bucket)
                .bind(limit)
                .bind(offset)
                .fetch_all(self.pool())
                .await?;
        Ok(rows.into_iter().map(|(k,)| k).collect())
    }
}

/// How the Standard Webhooks spec writes a secret; stored values never start with it once sealed.
const WEBHOOK_SECRET_PREFIX: &str = "whsec_";

/// The associated-data name a webhook secret is sealed under (tenant secrets' names never
/// contain `:`, so the two cannot be confused).
fn webhook_secret_name(automation: &str) -> String {
    format!("webhook:{automation}")
}

impl Store {
    /// The signing secret of a webhook automation, created with `generate` the first time and
    /// kept sealed like tenant secrets.
    pub async fn webhook_secret(
        &self,
        tenant: &str,
        automation: &str,
        sealer: &Sealer,
        generate: impl FnOnce() -> String,
    ) -> Result<String, StoreError> {
        let sealed = sealer.seal(tenant, &webhook_secret_name(automation), generate().as_bytes())?;
        sqlx::query(
            "INSERT INTO webhook_secrets (tenant_id, automation, secret, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, automation) DO NOTHING",
        )
        .bind(tenant)
        .bind(automation)
        .bind(sealed)
        .bind(now_micros())
        .execute(self.pool())
        .await?;
        self.existing_webhook_secret(tenant, automation, sealer)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a webhook secret vanished as it was created".into()))
    }

    /// Replaces the signing secret of a webhook automation of `who`'s tenant with a new one from
    /// `generate` (deliveries signed with the old one are refused from now on) and returns it: the
    /// API shows a webhook secret only at this moment.
    pub async fn rotate_webhook_secret(
        &self,
        who: &crate::Principal,
        tenant: &str,
        automation: &str,
        sealer: &Sealer,
        generate: impl FnOnce() -> String,
    ) -> Result<String, StoreError> {
        let secret = generate();
        let sealed = sealer.seal(tenant, &webhook_secret_name(automation), secret.as_bytes())?;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO webhook_secrets (tenant_id, automation, secret, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, automation) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at",
        )
        .bind(tenant)
        .bind(automation)
        .bind(sealed)
        .bind(now_micros())
        .execute(&mut *tx)
        .await?;
        crate::access::audit(
            &mut tx,
            who,
            Some(tenant),
            "webhook.rotate_secret",
            automation,
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(secret)
    }

    /// The signing secret, if one was created.
    pub async fn existing_webhook_secret(
        &self,
        tenant: &str,
        automation: &str,
        sealer: &Sealer,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT secret FROM webhook_secrets WHERE tenant_id = $1 AND automation = $2")
                .bind(tenant)
                .bind(automation)
                .fetch_optional(self.pool())
                .await?;
        let Some((stored,)) = row else { return Ok(None) };
        // Rows written before secrets were sealed hold the secret itself.
        if stored.starts_with(WEBHOOK_SECRET_PREFIX) {
            return Ok(Some(stored));
        }
        let opened = sealer.open(tenant, &webhook_secret_name(automation), &stored)?;
        String::from_utf8(opened)
            .map(Some)
            .map_err(|_| StoreError::Corrupt("a webhook secret is not text".into()))
    }

    /// Records a verified delivery and enqueues its job in one transaction. `None` when a delivery
    /// with this message id was accepted before (a replay): nothing is enqueued.
    pub async fn accept_webhook(&self, message_id: &str, job: NewJob) -> Result<Option<i64>, StoreError> {
        let mut tx = self.write_tx().await?;
        let automation = job.automation.clone().unwrap_or_default();
        let seen: Option<(i64,)> = sqlx::query_as(
            "SELECT job_id FROM webhook_deliveries WHERE tenant_id = $1 AND automation = $2 AND message_id = $3",
        )
        .bind(&job.tenant)
        .bind(&automation)
        .bind(message_id)
        .fetch_optional(&mut *tx)
        .await?;
        if seen.is_some() {
            return Ok(None);
        }
        let tenant = job.tenant.clone();
        let id = enqueue_in(&mut tx, std::slice::from_ref(&job)).await?[0].id();
        sqlx::query(
            "INSERT INTO webhook_deliveries (tenant_id, automation, message_id, job_id, received_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&tenant)
        .bind(&automation)
        .bind(message_id)
        .bind(id)
        .bind(now_micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }
}
