//! Tenants, agents and automations: applying a validated configuration file (one transaction,
//! idempotent, reporting what changed) and reading them back, always scoped to one tenant.

use std::collections::BTreeMap;

use crate::access::{AccessError, Need, Principal, Role, audit};
use crate::{Plan, Store, StoreError, now_micros};
use mc_config::{AgentSpec, AutomationSpec, TenantConfig, Trigger, TriggerSpec, Validated};
use serde::Serialize;

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantRow {
    pub id: String,
    pub name: String,
    /// The partner that onboarded it, if any.
    pub partner: Option<String>,
    /// Its plan: `starter`, `growth` or `scale`.
    pub plan: String,
    /// AI budgets in micro-dollars: per calendar month, per root run.
    pub budget_monthly: Option<u64>,
    pub budget_per_run: Option<u64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An agent as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRow {
    pub tenant: String,
    pub name: String,
    pub role: String,
    pub plugin: String,
    pub model: Option<String>,
    pub instructions: Option<String>,
    pub config: BTreeMap<String, String>,
    /// Origins its plugin may reach over HTTP.
    pub hosts: Vec<String>,
    /// Tenant secrets its plugin may read.
    pub secrets: Vec<String>,
    /// Models tried in order when `model` cannot answer.
    pub fallbacks: Vec<String>,
    /// Its own monthly AI budget, in micro-dollars.
    pub budget_monthly: Option<u64>,
    /// The agent it reports to; `None` at the top of the team.
    pub reports_to: Option<String>,
    /// Agents it may delegate to beside those that report to it.
    pub delegates_to: Vec<String>,
    /// Registries its plugin may use, and how.
    pub registries: BTreeMap<String, mc_config::RegistryAccess>,
}

impl AgentRow {
    /// The agents `self` may hand tasks to: those reporting to it, then those it is granted,
    /// each once (`team` is the tenant's agents).
    pub fn delegates(&self, team: &[AgentRow]) -> Vec<String> {
        let mut out: Vec<String> = team
            .iter()
            .filter(|a| a.reports_to.as_deref() == Some(self.name.as_str()))
            .map(|a| a.name.clone())
            .collect();
        for d in &self.delegates_to {
            if !out.contains(d) {
                out.push(d.clone());
            }
        }
        out
    }
}

/// What an agent is granted beyond its model, as stored in `agents.grants`.
#[derive(Debug, Default, Serialize, serde::Deserialize)]
pub(crate) struct StoredGrants {
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) fallbacks: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) budget_monthly: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reports_to: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    delegates_to: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    registries: BTreeMap<String, mc_config::RegistryAccess>,
}

/// An automation as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutomationRow {
    pub tenant: String,
    pub name: String,
    pub agent: String,
    pub trigger: Trigger,
    pub input: serde_json::Value,
    pub enabled: bool,
    pub priority: i32,
    pub overlap: String,
    /// Most runs at once (`overlap: queue` stores 1 here); `None` for no limit.
    pub max_running: Option<u32>,
    pub catch_up: String,
    /// Whether (and where to) its runs' output waits for a person's approval.
    pub approval: Option<mc_config::ApprovalSpec>,
}

/// What applying changed for one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
    Unchanged,
}

/// One line of an apply report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub kind: ChangeKind,
    /// `tenant`, `agent` or `automation`.
    pub object: &'static str,
    pub name: String,
    /// For updates: the fields that changed.
    pub fields: Vec<String>,
}

/// Everything an apply did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    pub tenant: String,
    /// The configuration's version after the apply (unchanged if nothing changed).
    pub version: i64,
    pub changes: Vec<Change>,
}

impl ApplyReport {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        self.changes.iter().any(|c| c.kind != ChangeKind::Unchanged)
    }
}

type AgentTuple = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
);
type AutomationTuple = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    String,
    Option<i64>,
    Option<String>,
);

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn agent_row(t: AgentTuple) -> Result<AgentRow, StoreError> {
    let grants: StoredGrants = serde_json::from_str(&t.7).map_err(|e| corrupt("agent grants", e))?;
    Ok(AgentRow {
        hosts: grants.hosts,
        secrets: grants.secrets,
        fallbacks: grants.fallbacks,
        budget_monthly: grants.budget_monthly,
        reports_to: grants.reports_to,
        delegates_to: grants.delegates_to,
        registries: grants.registries,
        tenant: t.0,
        name: t.1,
        role: t.2,
        plugin: t.3,
        model: t.4,
        instructions: t.5,
        config: serde_json::from_str(&t.6).map_err(|e| corrupt("agent config", e))?,
    })
}

fn automation_row(t: AutomationTuple) -> Result<AutomationRow, StoreError> {
    Ok(AutomationRow {
        tenant: t.0,
        name: t.1,
        agent: t.2,
        trigger: serde_json::from_str(&t.3).map_err(|e| corrupt("automation trigger", e))?,
        input: serde_json::from_str(&t.4).map_err(|e| corrupt("automation input", e))?,
        enabled: t.5 != 0,
        priority: t.6 as i32,
        overlap: t.7,
        catch_up: t.8,
        max_running: t.9.map(|n| n as u32),
        approval: t
            .10
            .map(|a| serde_json::from_str(&a).map_err(|e| corrupt("automation approval", e)))
            .transpose()?,
    })
}

/// Name, configuration version, plan and budgets of a tenant being applied.
type ExistingTenant = (String, i64, String, Option<i64>, Option<i64>, Option<String>);
/// Name, configuration version, budgets and contact of a tenant being read back as a file.
type ConfigTenant = (String, i64, Option<i64>, Option<i64>, Option<String>);
type TenantTuple = (
    String,
    String,
    Option<String>,
    String,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
);
const TENANT_COLUMNS: &str = "id, name, partner, plan, budget_monthly, budget_per_run, created_at, updated_at";

fn tenant_row(t: TenantTuple) -> TenantRow {
    TenantRow {
        id: t.0,
        name: t.1,
        partner: t.2,
        plan: t.3,
        budget_monthly: t.4.map(|m| m as u64),
        budget_per_run: t.5.map(|m| m as u64),
        created_at: t.6,
        updated_at: t.7,
    }
}

const AGENT_COLUMNS: &str = "tenant_id, name, role, plugin, model, instructions, config, grants";
const AUTOMATION_COLUMNS: &str =
    "tenant_id, name, agent, trigger_spec, input, enabled, priority, overlap, catch_up, max_running, approval";

fn lower<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The inverse of [`lower`]: a stored lower-case enum name back to its value (the default if the
/// column holds something unknown).
fn parse_lower<T: serde::de::DeserializeOwned + Default>(s: &str) -> T {
    serde_json::from_value(serde_json::Value::String(s.to_string())).unwrap_or_default()
}

fn agent_from_spec(tenant: &str, a: &AgentSpec) -> AgentRow {
    AgentRow {
        tenant: tenant.to_string(),
        name: a.name.clone(),
        role: a.role.clone(),
        plugin: a.plugin.clone(),
        model: a.model.clone(),
        instructions: a.instructions.clone(),
        config: a.config.clone(),
        hosts: a.hosts.clone(),
        secrets: a.secrets.clone(),
        fallbacks: a.fallbacks.clone(),
        budget_monthly: a.budget.and_then(|b| b.monthly).map(|m| m.micros()),
        reports_to: a.reports_to.clone(),
        delegates_to: a.delegates_to.clone(),
        registries: a.registries.clone(),
    }
}

fn automation_from_spec(tenant: &str, a: &AutomationSpec, trigger: &Trigger) -> AutomationRow {
    AutomationRow {
        tenant: tenant.to_string(),
        name: a.name.clone(),
        agent: a.agent.clone(),
        trigger: trigger.clone(),
        input: a.input.clone(),
        enabled: a.enabled,
        priority: a.priority,
        overlap: lower(&a.overlap),
        catch_up: lower(&a.catch_up),
        // `queue` is a limit of one run at a time; the claim enforces both the same way.
        max_running: match a.overlap {
            mc_config::Overlap::Queue => Some(a.max_running.unwrap_or(1).min(1)),
            _ => a.max_running,
        },
        approval: a.approval.clone(),
    }
}

fn agent_diff(old: &AgentRow, new: &AgentRow) -> Vec<String> {
    let mut f = Vec::new();
    if old.role != new.role {
        f.push("role".into());
    }
    if old.plugin != new.plugin {
        f.push("plugin".into());
    }
    if old.model != new.model {
        f.push("model".into());
    }
    if old.instructions != new.instructions {
        f.push("instructions".into());
    }
    if old.config != new.config {
        f.push("config".into());
    }
    if old.hosts != new.hosts {
        f.push("hosts".into());
    }
    if old.secrets != new.secrets {
        f.push("secrets".into());
    }
    if old.fallbacks != new.fallbacks {
        f.push("fallbacks".into());
    }
    if old.budget_monthly != new.budget_monthly {
        f.push("budget".into());
    }
    if old.reports_to != new.reports_to {
        f.push("reports_to".into());
    }
    if old.delegates_to != new.delegates_to {
        f.push("delegates_to".into());
    }
    if old.registries != new.registries {
        f.push("registries".into());
    }
    f
}

fn automation_diff(old: &AutomationRow, new: &AutomationRow) -> Vec<String> {
    let mut f = Vec::new();
    let pairs: [(&str, bool); 9] = [
        ("agent", old.agent != new.agent),
        ("trigger", old.trigger != new.trigger),
        ("input", old.input != new.input),
        ("enabled", old.enabled != new.enabled),
        ("priority", old.priority != new.priority),
        ("overlap", old.overlap != new.overlap),
        ("max_running", old.max_running != new.max_running),
        ("catch_up", old.catch_up != new.catch_up),
        ("approval", old.approval != new.approval),
    ];
    for (name, changed) in pairs {
        if changed {
            f.push(name.to_string());
        }
    }
    f
}

impl Store {
    /// All tenants (an operator's view).
    pub async fn tenants(&self) -> Result<Vec<TenantRow>, StoreError> {
        let rows: Vec<TenantTuple> = sqlx::query_as(&format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY id"))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.into_iter().map(tenant_row).collect())
    }

    /// The data of one tenant.
    pub fn tenant<'a>(&'a self, tenant: &'a str) -> TenantScope<'a> {
        TenantScope { store: self, tenant }
    }

    /// Makes the tenant's agents and automations exactly those of `config`, in one transaction:
    /// either everything is applied or nothing is. Applying the same file twice changes nothing.
    /// (The local command line's apply; the API's goes through [`Store::apply_as`].)
    pub async fn apply(&self, config: &Validated) -> Result<ApplyReport, StoreError> {
        match self.apply_as(&Principal::local(), config, None).await {
            Ok(r) => Ok(r),
            Err(AccessError::Store(e)) => Err(e),
            Err(e) => Err(StoreError::Invalid(e.to_string())),
        }
    }

    /// [`Store::apply`] on behalf of `who`: an existing tenant needs write access; a new one is
    /// created by operators and partners only (a partner's for that partner). With
    /// `expected_version`, the apply is refused as a conflict if the configuration changed since
    /// that version was read. A change is recorded in the audit log.
    pub async fn apply_as(
        &self,
        who: &Principal,
        config: &Validated,
        expected_version: Option<i64>,
    ) -> Result<ApplyReport, AccessError> {
        let c = &config.config;
        let tenant = c.tenant.as_str();
        let now = now_micros();
        match self.authorize(who, tenant, Need::Write).await {
            Ok(_) => {}
            Err(AccessError::NotFound(m)) => {
                // Only operators and partners create tenants; to others the tenant stays unknown.
                if !matches!(who.role, Role::Operator | Role::Partner) || self.tenant(tenant).get().await?.is_some() {
                    return Err(AccessError::NotFound(m));
                }
            }
            Err(e) => return Err(e),
        }
        let mut tx = self.write_tx().await?;
        let mut changes = Vec::new();

        let existing: Option<ExistingTenant> = sqlx::query_as(&format!(
            "SELECT name, config_version, plan, budget_monthly, budget_per_run, contact FROM tenants WHERE id = $1{}",
            self.for_update()
        ))
        .bind(tenant)
        .fetch_optional(&mut *tx)
        .await?;
        let version = existing.as_ref().map_or(0, |e| e.1);
        let plan = existing
            .as_ref()
            .map_or(Plan::default(), |e| Plan::parse(&e.2).unwrap_or_default());
        let budget = c.budget.unwrap_or_default();
        let budget = (
            budget.monthly.map(|m| m.micros() as i64),
            budget.per_run.map(|m| m.micros() as i64),
        );
        let contact = c.contact.as_ref().map(|c| {
            let stored = crate::Contact {
                email: c.email.clone(),
                webhook: c.webhook.as_ref().map(|w| crate::ContactWebhook {
                    url: w.url.clone(),
                    secret: w.secret.clone(),
                }),
            };
            serde_json::to_string(&stored).unwrap_or_default()
        });
        if let Some(expected) = expected_version
            && expected != version
        {
            return Err(AccessError::Conflict(format!(
                "tenant `{tenant}` changed meanwhile (version {version}, expected {expected}); read it again"
            )));
        }
        // A file without a name keeps the tenant's name (it may have been set when it was created).
        let name = c
            .name
            .clone()
            .or_else(|| existing.as_ref().map(|e| e.0.clone()))
            .unwrap_or_else(|| tenant.to_string());
        let change = match &existing {
            None => Some((ChangeKind::Created, vec![])),
            Some((old, _, _, monthly, per_run, old_contact)) => {
                let mut fields = Vec::new();
                if *old != name {
                    fields.push("name".to_string());
                }
                if (*monthly, *per_run) != budget {
                    fields.push("budget".to_string());
                }
                if *old_contact != contact {
                    fields.push("contact".to_string());
                }
                (!fields.is_empty()).then_some((ChangeKind::Updated, fields))
            }
        };
        if let Some((kind, fields)) = change {
            // One upsert for both cases: `created_at` and `partner` are written only by the insert.
            sqlx::query(
                "INSERT INTO tenants (id, name, partner, created_at, updated_at, budget_monthly, budget_per_run, contact) \
                 VALUES ($1, $2, $3, $4, $4, $5, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at, \
                 budget_monthly = excluded.budget_monthly, budget_per_run = excluded.budget_per_run, contact = excluded.contact",
            )
            .bind(tenant)
            .bind(&name)
            .bind(if who.role == Role::Partner {
                who.partner.clone()
            } else {
                None
            })
            .bind(now)
            .bind(budget.0)
            .bind(budget.1)
            .bind(&contact)
            .execute(&mut *tx)
            .await?;
            changes.push(Change {
                kind,
                object: "tenant",
                name: tenant.into(),
                fields,
            });
        }

        let old_agents: BTreeMap<String, AgentRow> =
            sqlx::query_as::<_, AgentTuple>(&format!("SELECT {AGENT_COLUMNS} FROM agents WHERE tenant_id = $1"))
                .bind(tenant)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|t| agent_row(t).map(|a| (a.name.clone(), a)))
                .collect::<Result<_, _>>()?;
        plan.check(tenant, "agents", old_agents.len(), c.agents.len())?;
        let old_automations: BTreeMap<String, AutomationRow> = sqlx::query_as::<_, AutomationTuple>(&format!(
            "SELECT {AUTOMATION_COLUMNS} FROM automations WHERE tenant_id = $1"
        ))
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|t| automation_row(t).map(|a| (a.name.clone(), a)))
        .collect::<Result<_, _>>()?;

        plan.check(tenant, "automations", old_automations.len(), c.automations.len())?;
        // Automations that go away first: they reference agents that may go away too.
        let kept: Vec<&str> = c.automations.iter().map(|a| a.name.as_str()).collect();
        delete_missing(
            &mut tx,
            tenant,
            "automation",
            old_automations.keys(),
            &kept,
            &mut changes,
        )
        .await?;

        crate::registries::apply_registries(&mut tx, tenant, &c.registries, &mut changes).await?;

        for spec in &c.agents {
            let new = agent_from_spec(tenant, spec);
            let config = serde_json::to_string(&new.config).map_err(|e| corrupt("agent config", e))?;
            let grants = serde_json::to_string(&StoredGrants {
                hosts: new.hosts.clone(),
                secrets: new.secrets.clone(),
                fallbacks: new.fallbacks.clone(),
                budget_monthly: new.budget_monthly,
                reports_to: new.reports_to.clone(),
                delegates_to: new.delegates_to.clone(),
                registries: new.registries.clone(),
            })
            .map_err(|e| corrupt("agent grants", e))?;
            let (kind, fields) = match old_agents.get(&spec.name) {
                None => (ChangeKind::Created, vec![]),
                Some(old) => {
                    let f = agent_diff(old, &new);
                    (
                        if f.is_empty() {
                            ChangeKind::Unchanged
                        } else {
                            ChangeKind::Updated
                        },
                        f,
                    )
                }
            };
            if kind != ChangeKind::Unchanged {
                // One upsert for both cases: `created_at` is written only by the insert.
                sqlx::query(&format!(
                    "INSERT INTO agents ({AGENT_COLUMNS}, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
                     ON CONFLICT (tenant_id, name) DO UPDATE SET role = excluded.role, plugin = excluded.plugin, \
                     model = excluded.model, instructions = excluded.instructions, config = excluded.config, \
                     grants = excluded.grants, updated_at = excluded.updated_at"
                ))
                .bind(tenant)
                .bind(&new.name)
                .bind(&new.role)
                .bind(&new.plugin)
                .bind(&new.model)
                .bind(&new.instructions)
                .bind(&config)
                .bind(&grants)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            changes.push(Change {
                kind,
                object: "agent",
                name: spec.name.clone(),
                fields,
            });
        }

        for spec in &c.automations {
            let trigger = config
                .triggers
                .get(&spec.name)
                .ok_or_else(|| corrupt("apply", "automation without a resolved trigger"))?;
            let new = automation_from_spec(tenant, spec, trigger);
            let trigger_json = serde_json::to_string(&new.trigger).map_err(|e| corrupt("trigger", e))?;
            let input_json = serde_json::to_string(&new.input).map_err(|e| corrupt("input", e))?;
            let (kind, fields) = match old_automations.get(&spec.name) {
                None => (ChangeKind::Created, vec![]),
                Some(old) => {
                    let f = automation_diff(old, &new);
                    (
                        if f.is_empty() {
                            ChangeKind::Unchanged
                        } else {
                            ChangeKind::Updated
                        },
                        f,
                    )
                }
            };
            let sql = format!(
                "INSERT INTO automations ({AUTOMATION_COLUMNS}, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $11, $12, $10, $10) \
                 ON CONFLICT (tenant_id, name) DO UPDATE SET agent = excluded.agent, trigger_spec = excluded.trigger_spec, \
                 input = excluded.input, enabled = excluded.enabled, priority = excluded.priority, \
                 overlap = excluded.overlap, catch_up = excluded.catch_up, max_running = excluded.max_running, \
                 approval = excluded.approval, updated_at = excluded.updated_at"
            );
            if kind != ChangeKind::Unchanged {
                sqlx::query(&sql)
                    .bind(tenant)
                    .bind(&new.name)
                    .bind(&new.agent)
                    .bind(&trigger_json)
                    .bind(&input_json)
                    .bind(i64::from(new.enabled))
                    .bind(i64::from(new.priority))
                    .bind(&new.overlap)
                    .bind(&new.catch_up)
                    .bind(now)
                    .bind(new.max_running.map(i64::from))
                    .bind(
                        new.approval
                            .as_ref()
                            .map(|a| serde_json::to_string(a).map_err(|e| corrupt("approval", e)))
                            .transpose()?,
                    )
                    .execute(&mut *tx)
                    .await?;
            }
            changes.push(Change {
                kind,
                object: "automation",
                name: spec.name.clone(),
                fields,
            });
        }

        let kept: Vec<&str> = c.agents.iter().map(|a| a.name.as_str()).collect();
        delete_missing(&mut tx, tenant, "agent", old_agents.keys(), &kept, &mut changes).await?;
        let mut report = ApplyReport {
            tenant: tenant.to_string(),
            version,
            changes,
        };
        if report.changed() {
            report.version = version + 1;
            sqlx::query("UPDATE tenants SET config_version = $2 WHERE id = $1")
                .bind(tenant)
                .bind(report.version)
                .execute(&mut *tx)
                .await?;
            let changed: Vec<&Change> = report
                .changes
                .iter()
                .filter(|c| c.kind != ChangeKind::Unchanged)
                .collect();
            audit(
                &mut tx,
                who,
                Some(tenant),
                "config.apply",
                tenant,
                serde_json::json!({ "version": report.version, "changes": changed }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(report)
    }
}

/// Deletes the tenant's `object`s (`agent` or `automation`) that exist but are not in `kept`,
/// reporting each.
async fn delete_missing<'a>(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    tenant: &str,
    object: &'static str,
    existing: impl Iterator<Item = &'a String>,
    kept: &[&str],
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let table = match object {
        "agent" => "agents",
        _ => "automations",
    };
    for name in existing.filter(|n| !kept.contains(&n.as_str())) {
        sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1 AND name = $2"))
            .bind(tenant)
            .bind(name)
            .execute(&mut **tx)
            .await?;
        changes.push(Change {
            kind: ChangeKind::Deleted,
            object,
            name: name.clone(),
            fields: vec![],
        });
    }
    Ok(())
}

/// One tenant's data. Every query here is filtered by the tenant id.
#[derive(Debug, Clone, Copy)]
pub struct TenantScope<'a> {
    store: &'a Store,
    tenant: &'a str,
}

impl<'a> TenantScope<'a> {
    /// The tenant's id.
    pub fn id(&self) -> &'a str {
        self.tenant
    }

    pub(crate) fn store(&self) -> &'a Store {
        self.store
    }

    /// Its whole configuration as a file would state it, and the configuration's version (for
    /// [`Store::apply_as`]'s `expected_version`).
    pub async fn config(&self) -> Result<Option<(TenantConfig, i64)>, StoreError> {
        let row: Option<ConfigTenant> = sqlx::query_as(
            "SELECT name, config_version, budget_monthly, budget_per_run, contact FROM tenants WHERE id = $1",
        )
        .bind(self.tenant)
        .fetch_optional(self.store.pool())
        .await?;
        let Some((name, version, monthly, per_run, contact)) = row else {
            return Ok(None);
        };
        let contact = match contact {
            Some(text) => {
                let c: crate::Contact = serde_json::from_str(&text).map_err(|e| corrupt("tenant contact", e))?;
                Some(mc_config::ContactSpec {
                    email: c.email,
                    webhook: c.webhook.map(|w| mc_config::WebhookTarget {
                        url: w.url,
                        secret: w.secret,
                    }),
                })
            }
            None => None,
        };
        let budget = (monthly.is_some() || per_run.is_some()).then(|| mc_config::TenantBudget {
            monthly: monthly.map(|m| mc_config::Usd(m as u64)),
            per_run: per_run.map(|m| mc_config::Usd(m as u64)),
        });
        let agents = self
            .agents()
            .await?
            .into_iter()
            .map(|a| AgentSpec {
                name: a.name,
                role: a.role,
                plugin: a.plugin,
                model: a.model,
                instructions: a.instructions,
                config: a.config,
                hosts: a.hosts,
                secrets: a.secrets,
                fallbacks: a.fallbacks,
                budget: a.budget_monthly.map(|m| mc_config::AgentBudget {
                    monthly: Some(mc_config::Usd(m)),
                }),
                reports_to: a.reports_to,
                delegates_to: a.delegates_to,
                registries: a.registries,
            })
            .collect();
        let automations = self
            .automations()
            .await?
            .into_iter()
            .map(|a| AutomationSpec {
                trigger: TriggerSpec::from_trigger(&a.trigger),
                name: a.name,
                agent: a.agent,
                input: a.input,
                enabled: a.enabled,
                priority: a.priority,
                overlap: parse_lower(&a.overlap),
                // `queue` stores its implied limit of one; the file states only the overlap.
                max_running: if a.overlap == "queue" { None } else { a.max_running },
                catch_up: parse_lower(&a.catch_up),
                approval: a.approval,
            })
            .collect();
        Ok(Some((
            TenantConfig {
                tenant: self.tenant.to_string(),
                name: (name != self.tenant).then_some(name),
                agents,
                automations,
                budget,
                contact,
                registries: self.registries().await?,
            },
            version,
        )))
    }

    /// The tenant, if it exists.
    pub async fn get(&self) -> Result<Option<TenantRow>, StoreError> {
        let row: Option<TenantTuple> = sqlx::query_as(&format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1"))
            .bind(self.tenant)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(row.map(tenant_row))
    }

    /// Its agents, by name.
    pub async fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        sqlx::query_as::<_, AgentTuple>(&format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE tenant_id = $1 ORDER BY name"
        ))
        .bind(self.tenant)
        .fetch_all(self.store.pool())
        .await?
        .into_iter()
        .map(agent_row)
        .collect()
    }

    /// One of its agents.
    pub async fn agent(&self, name: &str) -> Result<Option<AgentRow>, StoreError> {
        sqlx::query_as::<_, AgentTuple>(&format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE tenant_id = $1 AND name = $2"
        ))
        .bind(self.tenant)
        .bind(name)
        .fetch_optional(self.store.pool())
        .await?
        .map(agent_row)
        .transpose()
    }

    /// The schedule marks (last tick handled, µs) of its time-triggered automations, by name.
    pub async fn schedule_marks(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT automation, last_tick FROM schedule_state WHERE tenant_id = $1")
                .bind(self.tenant)
                .fetch_all(self.store.pool())
                .await?;
        Ok(rows.into_iter().collect())
    }

    /// Its automations, by name.
    pub async fn automations(&self) -> Result<Vec<AutomationRow>, StoreError> {
        sqlx::query_as::<_, AutomationTuple>(&format!(
            "SELECT {AUTOMATION_COLUMNS} FROM automations WHERE tenant_id = $1 ORDER BY name"
        ))
        .bind(self.tenant)
        .fetch_all(self.store.pool())
        .await?
        .into_iter()
        .map(automation_row)
        .collect()
    }
}
