//! Approvals: the runs whose output waits for a person, and the decision on each. Approving
//! (possibly with an edited output) makes the run succeeded and does what the automation's
//! approval says (add the output to a registry) and what completion does (fire `after`
//! triggers), all in the decision's transaction; rejecting drops the output's effects. A run is
//! decided once: who decided and when is recorded.
//!
//! A plugin may also ask for approval itself (the `approval` import). Its request is kept by its
//! number in the run, the run is suspended in `awaiting_approval` holding no worker, and the
//! decision sends it back to the queue: it runs again and this time the request is answered.
//! Its AI calls are answered from the run's journal on the way (see `ai_replies`), so it pays for
//! none of them twice.

use serde::Serialize;
use serde_json::Value;

use crate::access::{Principal, audit};
use crate::registries::RegistryError;
use crate::{StoreError, TenantScope, now_micros};

/// A run waiting for a decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingApproval {
    pub run_id: i64,
    /// `output` (the automation holds the run's output for approval) or `request` (the plugin
    /// asked for approval of `output`, a text, and waits for the answer to go on).
    pub kind: String,
    /// The plugin's title for its request.
    pub title: Option<String>,
    pub automation: String,
    pub agent: String,
    /// The output to review.
    pub output: Value,
    /// When the run finished.
    pub finished_at: i64,
    /// The registry an approved output goes to, if any.
    pub deliver_to: Option<String>,
}

/// A decision as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub run_id: i64,
    /// `approved` or `rejected`.
    pub decision: String,
    /// The key that decided.
    pub decided_by: String,
    pub decided_at: i64,
    /// The output as the agent wrote it, when the reviewer changed it before approving.
    pub original_output: Option<Value>,
    pub reason: Option<String>,
    /// The registry row an approved output became.
    pub delivered_row: Option<i64>,
}

/// Why a decision was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("{0}")]
    NotFound(String),
    /// Decided already, or not waiting for a decision.
    #[error("{0}")]
    Conflict(String),
    /// The (edited) output cannot be delivered where the automation says.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ApprovalError {
    fn from(e: sqlx::Error) -> ApprovalError {
        ApprovalError::Store(e.into())
    }
}

type PendingTuple = (
    i64,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Where a plugin's approval request stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AskState {
    /// No decision yet: the run is to be suspended until there is one.
    Pending,
    /// Approved; the text as approved, possibly edited.
    Approved(String),
    /// Rejected; the reviewer's reason.
    Rejected(String),
}

impl TenantScope<'_> {
    /// Runs waiting for approval, oldest first.
    pub async fn pending_approvals(&self, limit: i64) -> Result<Vec<PendingApproval>, StoreError> {
        let rows: Vec<PendingTuple> = sqlx::query_as(
            "SELECT j.id, j.automation, j.agent, j.output, COALESCE(q.asked_at, j.finished_at), a.approval, q.title, q.body \
             FROM queue w JOIN jobs j ON j.id = w.id \
             LEFT JOIN automations a ON a.tenant_id = j.tenant_id AND a.name = j.automation \
             LEFT JOIN approval_asks q ON q.tenant_id = j.tenant_id AND q.run_id = j.id AND q.decision IS NULL \
             WHERE w.tenant_id = $1 AND w.state = 'awaiting_approval' ORDER BY w.id LIMIT $2",
        )
        .bind(self.id())
        .bind(limit)
        .fetch_all(self.store().pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, automation, agent, output, finished, approval, title, body)| {
                let spec = approval.and_then(|a| serde_json::from_str::<mc_config::ApprovalSpec>(&a).ok());
                let (kind, output) = match body {
                    Some(body) => ("request", Value::String(body)),
                    None => (
                        "output",
                        output
                            .and_then(|o| serde_json::from_str(&o).ok())
                            .unwrap_or(Value::Null),
                    ),
                };
                PendingApproval {
                    run_id: id,
                    kind: kind.into(),
                    title,
                    automation: automation.unwrap_or_default(),
                    agent,
                    output,
                    finished_at: finished.unwrap_or(0),
                    // A request's text goes back to the plugin, not to a registry.
                    deliver_to: spec.and_then(|a| a.deliver_to).filter(|_| kind == "output"),
                }
            })
            .collect())
    }

    /// The decision on run `id`, if one was made.
    pub async fn decision(&self, id: i64) -> Result<Option<Decision>, StoreError> {
        type Row = (String, String, i64, Option<String>, Option<String>, Option<i64>);
        let row: Option<Row> = sqlx::query_as(
            "SELECT decision, decided_by, decided_at, original_output, reason, delivered_row FROM approvals \
             WHERE tenant_id = $1 AND run_id = $2",
        )
        .bind(self.id())
        .bind(id)
        .fetch_optional(self.store().pool())
        .await?;
        if row.is_none() {
            return self.last_answer(id).await;
        }
        Ok(row.map(
            |(decision, decided_by, decided_at, original, reason, delivered_row)| Decision {
                run_id: id,
                decision,
                decided_by,
                decided_at,
                original_output: original.and_then(|o| serde_json::from_str(&o).ok()),
                reason,
                delivered_row,
            },
        ))
    }

    /// Approves run `id`'s output, `edited` replacing it when given, and carries out its effects.
    pub async fn approve(&self, who: &Principal, id: i64, edited: Option<&Value>) -> Result<Decision, ApprovalError> {
        self.decide(who, id, Verdict::Approve(edited)).await
    }

    /// Rejects run `id`'s output: nothing is done with it.
    pub async fn reject(&self, who: &Principal, id: i64, reason: Option<&str>) -> Result<Decision, ApprovalError> {
        self.decide(who, id, Verdict::Reject(reason)).await
    }

    /// The latest decision on one of run `id`'s own requests.
    async fn last_answer(&self, id: i64) -> Result<Option<Decision>, StoreError> {
        type Row = (String, Option<String>, Option<String>, Option<i64>, String);
        let row: Option<Row> = sqlx::query_as(
            "SELECT decision, text, decided_by, decided_at, body FROM approval_asks \
             WHERE tenant_id = $1 AND run_id = $2 AND decision IS NOT NULL ORDER BY seq DESC LIMIT 1",
        )
        .bind(self.id())
        .bind(id)
        .fetch_optional(self.store().pool())
        .await?;
        Ok(row.map(|(decision, text, decided_by, decided_at, body)| {
            answered(
                id,
                decision,
                text.unwrap_or_default(),
                body,
                decided_by.unwrap_or_default(),
                decided_at.unwrap_or(0),
            )
        }))
    }

    /// Records the plugin's approval request number `seq` of run `id` the first time it is
    /// asked, and answers where it stands.
    pub async fn ask_approval(&self, id: i64, seq: u32, title: &str, body: &str) -> Result<AskState, StoreError> {
        let mut tx = self.store().write_tx().await?;
        sqlx::query(
            "INSERT INTO approval_asks (tenant_id, run_id, seq, title, body, asked_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, run_id, seq) DO NOTHING",
        )
        .bind(self.id())
        .bind(id)
        .bind(i64::from(seq))
        .bind(title)
        .bind(body)
        .bind(now_micros())
        .execute(&mut *tx)
        .await?;
        let (decision, text): (Option<String>, Option<String>) = sqlx::query_as(
            "SELECT decision, text FROM approval_asks WHERE tenant_id = $1 AND run_id = $2 AND seq = $3",
        )
        .bind(self.id())
        .bind(id)
        .bind(i64::from(seq))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(match decision.as_deref() {
            Some("approved") => AskState::Approved(text.unwrap_or_default()),
            Some(_) => AskState::Rejected(text.unwrap_or_default()),
            None => AskState::Pending,
        })
    }

    /// Answers run `id`'s open request (number `seq`, text `body`) and sends the run back to the
    /// queue to go on with the answer. Waiting for a person costs the run none of its attempts:
    /// the run that comes back is one more attempt, and it is given one more.
    async fn answer(
        &self,
        tx: &mut crate::Tx,
        who: &Principal,
        id: i64,
        (seq, body): (i64, String),
        verdict: &Verdict<'_>,
    ) -> Result<Decision, ApprovalError> {
        let now = now_micros();
        let (decision, text) = match verdict {
            Verdict::Approve(Some(Value::String(edited))) => ("approved", edited.clone()),
            Verdict::Approve(Some(edited)) => ("approved", edited.to_string()),
            Verdict::Approve(None) => ("approved", body.clone()),
            Verdict::Reject(reason) => ("rejected", reason.unwrap_or_default().to_string()),
        };
        sqlx::query(
            "UPDATE approval_asks SET decision = $4, text = $5, decided_by = $6, decided_at = $7 \
             WHERE tenant_id = $1 AND run_id = $2 AND seq = $3",
        )
        .bind(self.id())
        .bind(id)
        .bind(seq)
        .bind(decision)
        .bind(&text)
        .bind(&who.key_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "UPDATE jobs SET state = 'available', run_at = $3, max_attempts = max_attempts + 1, claimed_by = NULL \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(self.id())
        .bind(id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        // The rank key as a new job's: priority in steps, minus the time it is due.
        sqlx::query(
            "UPDATE queue SET state = 'available', run_at = $3, rank_key = priority * $4 - $3, claimed_by = NULL, \
             lease_until = NULL WHERE tenant_id = $1 AND id = $2",
        )
        .bind(self.id())
        .bind(id)
        .bind(now)
        .bind(crate::queue::PRIORITY_STEP.as_micros() as i64)
        .execute(&mut **tx)
        .await?;
        crate::queue::bump_available(tx, self.id(), 1).await?;
        Ok(answered(id, decision.into(), text, body, who.key_id.clone(), now))
    }

    async fn decide(&self, who: &Principal, id: i64, verdict: Verdict<'_>) -> Result<Decision, ApprovalError> {
        let mut tx = self.store().write_tx().await?;
        let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(&format!(
            // The state as it is now (a running job's is on its queue row; see `runs`), of the
            // job's own row, which is what the lock is for.
            "SELECT COALESCE((SELECT q.state FROM queue q WHERE q.id = jobs.id AND q.state = 'running'), state), \
             automation, output FROM jobs WHERE tenant_id = $1 AND id = $2{}",
            self.store().for_update()
        ))
        .bind(self.id())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((state, automation, output)) = row else {
            return Err(ApprovalError::NotFound(format!("no run {id}")));
        };
        if state != "awaiting_approval" {
            drop(tx);
            return Err(ApprovalError::Conflict(match self.decision(id).await? {
                Some(d) => format!(
                    "run {id} was {} already, by key `{}` at {}",
                    d.decision,
                    d.decided_by,
                    jiff::Timestamp::from_microsecond(d.decided_at)
                        .map(|t| t.to_string())
                        .unwrap_or_default()
                ),
                None => format!("run {id} is not waiting for approval (it is {state})"),
            }));
        }
        let open: Option<(i64, String)> = sqlx::query_as(
            "SELECT seq, body FROM approval_asks WHERE tenant_id = $1 AND run_id = $2 AND decision IS NULL ORDER BY seq LIMIT 1",
        )
        .bind(self.id())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(open) = open {
            let decision = self.answer(&mut tx, who, id, open, &verdict).await?;
            audit(
                &mut tx,
                who,
                Some(self.id()),
                &format!("run.request.{}", decision.decision),
                &id.to_string(),
                serde_json::json!({ "edited": decision.original_output.is_some(), "reason": decision.reason }),
            )
            .await?;
            tx.commit().await?;
            return Ok(decision);
        }
        let automation = automation.unwrap_or_default();
        let output = output.unwrap_or_else(|| "null".into());
        let now = now_micros();
        let decision = match verdict {
            Verdict::Approve(edited) => {
                let final_output = match edited {
                    Some(v) => v.to_string(),
                    None => output.clone(),
                };
                let approval: Option<(Option<String>,)> =
                    sqlx::query_as("SELECT approval FROM automations WHERE tenant_id = $1 AND name = $2")
                        .bind(self.id())
                        .bind(&automation)
                        .fetch_optional(&mut *tx)
                        .await?;
                let spec = approval
                    .and_then(|(a,)| a)
                    .and_then(|a| serde_json::from_str::<mc_config::ApprovalSpec>(&a).ok())
                    .unwrap_or_default();
                let value: Value = serde_json::from_str(&final_output).unwrap_or(Value::Null);
                let mut delivered_row = None;
                if let Some(registry) = &spec.deliver_to {
                    let row = self.insert_row(&mut tx, registry, &value).await.map_err(|e| match e {
                        RegistryError::Store(e) => ApprovalError::Store(e),
                        other => ApprovalError::Invalid(format!(
                            "the output cannot be added to registry `{registry}`, so nothing was approved: {other}"
                        )),
                    })?;
                    delivered_row = Some(row.id);
                }
                if let Some(hook) = &spec.webhook {
                    // Written with the decision, posted after it commits (by the outbox sender):
                    // a crash in between delays the post, never loses or repeats the decision.
                    let data = serde_json::json!({
                        "tenant": self.id(),
                        "automation": automation,
                        "run": id,
                        "output": value,
                        "edited": edited.is_some(),
                        "decided_by": who.key_id,
                    });
                    crate::outbox::add_delivery(
                        &mut tx,
                        self.id(),
                        &crate::NewDelivery {
                            event_type: "approval.approved",
                            run_id: Some(id),
                            url: &hook.url,
                            secret: &hook.secret,
                            data: &data,
                        },
                    )
                    .await?;
                }
                leave_queue(&mut tx, id).await?;
                sqlx::query("UPDATE jobs SET state = 'succeeded', output = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(self.id())
                    .bind(id)
                    .bind(&final_output)
                    .execute(&mut *tx)
                    .await?;
                crate::totals::count_finished(&mut tx, &[id], 1).await?;
                crate::queue::enqueue_followers(&mut tx, self.id(), &automation, id, &final_output).await?;
                Decision {
                    run_id: id,
                    decision: "approved".into(),
                    decided_by: who.key_id.clone(),
                    decided_at: now,
                    original_output: edited.map(|_| serde_json::from_str(&output).unwrap_or(Value::Null)),
                    reason: None,
                    delivered_row,
                }
            }
            Verdict::Reject(reason) => {
                leave_queue(&mut tx, id).await?;
                sqlx::query("UPDATE jobs SET state = 'rejected' WHERE tenant_id = $1 AND id = $2")
                    .bind(self.id())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                crate::totals::count_finished(&mut tx, &[id], 1).await?;
                Decision {
                    run_id: id,
                    decision: "rejected".into(),
                    decided_by: who.key_id.clone(),
                    decided_at: now,
                    original_output: None,
                    reason: reason.map(str::to_string),
                    delivered_row: None,
                }
            }
        };
        sqlx::query(
            "INSERT INTO approvals (tenant_id, run_id, decision, decided_by, decided_at, original_output, reason, delivered_row) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(self.id())
        .bind(id)
        .bind(&decision.decision)
        .bind(&decision.decided_by)
        .bind(now)
        .bind(decision.original_output.as_ref().map(Value::to_string))
        .bind(&decision.reason)
        .bind(decision.delivered_row)
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            who,
            Some(self.id()),
            &format!("run.{}", decision.decision),
            &id.to_string(),
            serde_json::json!({ "edited": decision.original_output.is_some(), "reason": decision.reason }),
        )
        .await?;
        tx.commit().await?;
        Ok(decision)
    }
}

/// The decision on one of a run's own requests: an approval keeps the asked text on record when
/// the reviewer changed it; a rejection carries its reason.
fn answered(
    run_id: i64,
    decision: String,
    text: String,
    body: String,
    decided_by: String,
    decided_at: i64,
) -> Decision {
    let approved = decision == "approved";
    Decision {
        run_id,
        original_output: (approved && text != body).then_some(Value::String(body)),
        reason: (!approved).then_some(text),
        decision,
        decided_by,
        decided_at,
        delivered_row: None,
    }
}

enum Verdict<'a> {
    Approve(Option<&'a Value>),
    Reject(Option<&'a str>),
}

/// Takes a run that was held for a person out of the queue: decided, it is finished.
async fn leave_queue(tx: &mut crate::Tx, id: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM queue WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
