//! Approvals: the runs whose output waits for a person, and the decision on each. Approving
//! (possibly with an edited output) makes the run succeeded and does what the automation's
//! approval says (add the output to a registry) and what completion does (fire `after`
//! triggers), all in the decision's transaction; rejecting drops the output's effects. A run is
//! decided once: who decided and when is recorded.

use serde::Serialize;
use serde_json::Value;

use crate::access::{Principal, audit};
use crate::registries::RegistryError;
use crate::{StoreError, TenantScope, now_micros};

/// A run waiting for a decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingApproval {
    pub run_id: i64,
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

type PendingTuple = (i64, String, String, Option<String>, Option<i64>, Option<String>);

impl TenantScope<'_> {
    /// Runs waiting for approval, oldest first.
    pub async fn pending_approvals(&self, limit: i64) -> Result<Vec<PendingApproval>, StoreError> {
        let rows: Vec<PendingTuple> = sqlx::query_as(
            "SELECT j.id, j.automation, j.agent, j.output, j.finished_at, a.approval FROM jobs j \
             LEFT JOIN automations a ON a.tenant_id = j.tenant_id AND a.name = j.automation \
             WHERE j.tenant_id = $1 AND j.state = 'awaiting_approval' ORDER BY j.id LIMIT $2",
        )
        .bind(self.id())
        .bind(limit)
        .fetch_all(self.store().pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, automation, agent, output, finished, approval)| PendingApproval {
                run_id: id,
                automation,
                agent,
                output: output
                    .and_then(|o| serde_json::from_str(&o).ok())
                    .unwrap_or(Value::Null),
                finished_at: finished.unwrap_or(0),
                deliver_to: approval
                    .and_then(|a| serde_json::from_str::<mc_config::ApprovalSpec>(&a).ok())
                    .and_then(|a| a.deliver_to),
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

    async fn decide(&self, who: &Principal, id: i64, verdict: Verdict<'_>) -> Result<Decision, ApprovalError> {
        let mut tx = self.store().write_tx().await?;
        let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(&format!(
            "SELECT state, automation, output FROM jobs WHERE tenant_id = $1 AND id = $2{}",
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
                sqlx::query("UPDATE jobs SET state = 'succeeded', output = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(self.id())
                    .bind(id)
                    .bind(&final_output)
                    .execute(&mut *tx)
                    .await?;
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
                sqlx::query("UPDATE jobs SET state = 'rejected' WHERE tenant_id = $1 AND id = $2")
                    .bind(self.id())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
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

enum Verdict<'a> {
    Approve(Option<&'a Value>),
    Reject(Option<&'a str>),
}
