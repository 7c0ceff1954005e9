//! Cost metering: plans, price books, budgets (reserve before a call, settle or release after it),
//! the append-only ledger, budget alerts, and the usage and margin reports.
//!
//! Budgets are counters per scope and period (`budget_counters`): the tenant per month, an agent
//! per month, a root run. A reservation adds a call's worst case to `reserved` in every scope that
//! applies with one upsert whose `WHERE` refuses a counter that would pass its budget; the rows are
//! locked tenant first (PostgreSQL: the upsert's row locks; SQLite: the single writer), so
//! concurrent calls are decided one at a time and spend can never pass a budget. Settling moves the
//! reservation to `spent` at the real cost, records crossed alert thresholds and writes the ledger
//! row atomically: a call is billed once or not at all. Both sit on the path of every AI call and
//! are written for few round trips (see BENCHMARKS.md, AI gateway overhead).

use serde::Serialize;

use crate::access::{AccessError, Principal, Role, audit};
use crate::{Store, StoreError, TenantScope, Tx, now_micros};

/// Budget alert thresholds, in percent of the budget.
pub const ALERT_THRESHOLDS: [u64; 3] = [50, 80, 100];

/// A tenant's plan: what it may create and what it pays each month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    #[default]
    Starter,
    Growth,
    Scale,
}

impl Plan {
    pub const ALL: [Plan; 3] = [Plan::Starter, Plan::Growth, Plan::Scale];

    /// The plan named `name` (`starter`, `growth`, `scale`).
    pub fn parse(name: &str) -> Option<Plan> {
        Plan::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Plan::Starter => "starter",
            Plan::Growth => "growth",
            Plan::Scale => "scale",
        }
    }

    /// The name as the price list prints it.
    pub fn title(self) -> &'static str {
        match self {
            Plan::Starter => "Starter",
            Plan::Growth => "Growth",
            Plan::Scale => "Scale",
        }
    }

    /// Most agents (`None`: unlimited).
    pub fn max_agents(self) -> Option<usize> {
        match self {
            Plan::Starter => Some(3),
            Plan::Growth => Some(8),
            Plan::Scale => None,
        }
    }

    /// Most automations (`None`: unlimited).
    pub fn max_automations(self) -> Option<usize> {
        match self {
            Plan::Starter => Some(10),
            Plan::Growth => Some(30),
            Plan::Scale => None,
        }
    }

    /// The monthly price in micro-dollars (the business plan's tiers).
    pub fn monthly_price(self) -> u64 {
        match self {
            Plan::Starter => 1_500_000_000,
            Plan::Growth => 3_500_000_000,
            Plan::Scale => 7_500_000_000,
        }
    }

    fn next(self) -> Option<Plan> {
        match self {
            Plan::Starter => Some(Plan::Growth),
            Plan::Growth => Some(Plan::Scale),
            Plan::Scale => None,
        }
    }

    fn limit(self, what: &str) -> Option<usize> {
        if what == "agents" {
            self.max_agents()
        } else {
            self.max_automations()
        }
    }

    /// Refuses a configuration that would take the tenant from `old` to `new` `what` (`agents`,
    /// `automations`) past the plan. A tenant already over its limit (its plan was lowered) keeps
    /// what it has but cannot add more.
    pub(crate) fn check(self, tenant: &str, what: &str, old: usize, new: usize) -> Result<(), AccessError> {
        let Some(limit) = self.limit(what) else { return Ok(()) };
        if new <= limit || new <= old {
            return Ok(());
        }
        let upgrade = match self.next() {
            Some(next) => match next.limit(what) {
                Some(l) => format!("; the {} plan allows {l}", next.title()),
                None => format!("; the {} plan has no limit", next.title()),
            },
            None => String::new(),
        };
        Err(AccessError::Invalid(format!(
            "tenant `{tenant}` is on the {} plan, which allows {limit} {what}; this configuration has {new}{upgrade}",
            self.title()
        )))
    }
}

/// One stored price book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PriceBookRow {
    pub version: i64,
    /// The book as the operator wrote it (YAML).
    pub body: String,
    /// Micro-dollars per billion fuel units.
    pub fuel_per_billion: u64,
    pub created_at: i64,
    pub created_by: String,
}

/// A budget a call is checked against: which counter, and its limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BudgetScope {
    /// `tenant`, `agent:<name>` or `run:<root run id>`.
    pub scope: String,
    /// `YYYY-MM` for monthly budgets, `all` for a run's.
    pub period: String,
    /// Micro-dollars; `None` counts spend without limiting it.
    pub limit: Option<u64>,
}

impl BudgetScope {
    fn describe(&self, tenant: &str) -> String {
        if self.scope == "tenant" {
            format!("tenant `{tenant}`'s budget for {}", self.period)
        } else if let Some(agent) = self.scope.strip_prefix("agent:") {
            format!("agent `{agent}`'s budget for {}", self.period)
        } else {
            format!("the budget per run of tenant `{tenant}` (run {})", &self.scope[4..])
        }
    }
}

/// What a call about to be made asks the budgets for.
#[derive(Debug, Clone)]
pub struct ReserveRequest<'a> {
    pub tenant: &'a str,
    pub agent: &'a str,
    /// The root run whose per-run budget applies.
    pub root_run: &'a str,
    /// The call's worst case, in micro-dollars.
    pub amount: u64,
    /// When a reservation its caller never settled (the node died) is released.
    pub expires_at: i64,
    /// The time that decides the month (normally now).
    pub at: i64,
    /// A secret of the tenant to read with the reservation (the gateway's: the tenant's own key
    /// for the provider it is about to call), so that a call costs one round trip before it is
    /// sent instead of two; its sealed value comes back in [`Reservation::sealed_secret`].
    pub secret: Option<&'a str>,
}

/// Money held for one call in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: String,
    pub tenant: String,
    pub amount: u64,
    pub scopes: Vec<BudgetScope>,
    /// The sealed value of [`ReserveRequest::secret`], when the tenant has that secret (open it
    /// with [`crate::Sealer::open`]).
    pub sealed_secret: Option<String>,
}

/// Why a call was refused: the budget it would break.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error(
    "{what} is {budget}: {spent} is spent and {reserved} is held by calls in flight, and this call could cost up to {needed}",
    budget = mc_config::format_usd(*budget),
    spent = mc_config::format_usd(*spent),
    reserved = mc_config::format_usd(*reserved),
    needed = mc_config::format_usd(*needed)
)]
pub struct BudgetRefusal {
    /// The budget, in words (`tenant `acme`'s budget for 2026-11`).
    pub what: String,
    pub budget: u64,
    pub spent: u64,
    pub reserved: u64,
    pub needed: u64,
}

/// One ledger row to write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerEntry {
    pub tenant: String,
    pub agent: String,
    pub automation: Option<String>,
    pub run_id: String,
    pub attempt: u32,
    pub provider: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// The provider reported no usage; the tokens are the host's estimate.
    pub usage_estimated: bool,
    pub price_version: i64,
    /// Micro-dollars.
    pub cost: u64,
    pub at: i64,
    /// The answer, kept for the run to be given again if it runs again (see [`ReplyRecord`]).
    pub reply: Option<ReplyRecord>,
}

/// An AI call's answer as the run's journal keeps it: a run that runs again (a retry, a resume
/// after an approval) asks the same things in the same order, and gets the same answers without
/// paying twice. A request that differs from the recorded one (`request_hash`) is a new call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyRecord {
    /// The call's number in the run (0, 1, …).
    pub seq: u32,
    pub request_hash: String,
    /// The answer, as the gateway serialises it.
    pub reply: String,
}

/// A ledger row as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerRow {
    pub id: i64,
    pub at: i64,
    /// `ai` or `fuel`.
    pub kind: String,
    pub agent: String,
    pub automation: Option<String>,
    pub run_id: String,
    pub attempt: u32,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub usage_estimated: bool,
    pub fuel: u64,
    pub price_version: i64,
    pub cost: u64,
}

/// A budget alert: spend crossed a threshold of a budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetAlert {
    pub scope: String,
    pub period: String,
    /// Percent of the budget.
    pub threshold: u64,
    pub spent: u64,
    pub budget: u64,
    pub at: i64,
}

/// How a usage report groups the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageBy {
    Agent,
    Automation,
    Model,
    Day,
}

impl UsageBy {
    pub fn parse(s: &str) -> Option<UsageBy> {
        match s {
            "agent" => Some(UsageBy::Agent),
            "automation" => Some(UsageBy::Automation),
            "model" => Some(UsageBy::Model),
            "day" => Some(UsageBy::Day),
            _ => None,
        }
    }

    fn column(self) -> &'static str {
        match self {
            UsageBy::Agent => "agent",
            // `ledger_totals` keeps '' for a missing automation or model (a key column).
            UsageBy::Automation => "CASE WHEN automation = '' THEN '(manual)' ELSE automation END",
            UsageBy::Model => "CASE WHEN model = '' THEN '(plugin fuel)' ELSE model END",
            UsageBy::Day => "day",
        }
    }
}

/// One line of a usage report: sums over the ledger rows of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageLine {
    /// The agent, automation, model or day.
    pub key: String,
    pub ai_calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// Calls whose usage the provider did not report (estimated).
    pub estimated_calls: u64,
    pub fuel: u64,
    /// Micro-dollars.
    pub ai_cost: u64,
    pub fuel_cost: u64,
    pub cost: u64,
}

/// The operator's view of one tenant's month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarginLine {
    pub tenant: String,
    pub name: String,
    pub plan: String,
    /// The plan's monthly price, micro-dollars.
    pub revenue: u64,
    pub ai_cost: u64,
    pub fuel_cost: u64,
    /// Revenue minus costs (negative when the tenant costs more than it pays).
    pub margin: i64,
}

/// A tenant's budgets and spend for a month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetStatus {
    pub month: String,
    pub monthly: Option<u64>,
    pub per_run: Option<u64>,
    pub spent: u64,
    pub reserved: u64,
    pub agents: Vec<AgentSpend>,
    pub alerts: Vec<BudgetAlert>,
}

/// One agent's spend against its own budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentSpend {
    pub agent: String,
    pub budget: Option<u64>,
    pub spent: u64,
    pub reserved: u64,
}

/// `YYYY-MM` and `YYYY-MM-DD` of a time, UTC.
pub fn month_and_day(at_micros: i64) -> (String, String) {
    let ts = jiff::Timestamp::from_microsecond(at_micros).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let day = ts.strftime("%Y-%m-%d").to_string();
    (day[..7].to_string(), day)
}

/// The first microsecond of a month (`YYYY-MM`, valid) and of the month after it, UTC.
fn month_bounds(month: &str) -> Result<(i64, i64), StoreError> {
    let start = |month: &str| -> Result<i64, StoreError> {
        let at: jiff::Timestamp = format!("{month}-01T00:00:00Z")
            .parse()
            .map_err(|e| StoreError::Invalid(format!("not a month: {month}: {e}")))?;
        Ok(at.as_microsecond())
    };
    let invalid = |_| StoreError::Invalid(format!("not a month: {month}"));
    let year: i32 = month[..4].parse().map_err(invalid)?;
    let number: i32 = month[5..].parse().map_err(invalid)?;
    let next = if number == 12 {
        format!("{:04}-01", year + 1)
    } else {
        format!("{year:04}-{:02}", number + 1)
    };
    Ok((start(month)?, start(&next)?))
}

/// Checks a month written `YYYY-MM`.
pub fn valid_month(month: &str) -> Result<(), String> {
    let ok = month.len() == 7
        && month.as_bytes()[4] == b'-'
        && month[..4].chars().all(|c| c.is_ascii_digit())
        && matches!(month[5..].parse::<u8>(), Ok(1..=12));
    if ok {
        Ok(())
    } else {
        Err(format!("`{month}` is not a month: write it as YYYY-MM, like 2026-11"))
    }
}

fn random_id() -> String {
    let mut bytes = [0u8; 12];
    // A reservation id only needs to be unique; if the system RNG fails, time and a counter do.
    if getrandom::getrandom(&mut bytes).is_err() {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bytes[..8].copy_from_slice(&now_micros().to_le_bytes());
        bytes[8..].copy_from_slice(&(n as u32).to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn as_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store {
    /// The price book in force (the newest), if any was stored.
    pub async fn price_book(&self) -> Result<Option<PriceBookRow>, StoreError> {
        let row: Option<(i64, String, i64, i64, String)> = sqlx::query_as(
            "SELECT version, body, fuel_per_billion, created_at, created_by FROM price_books ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| PriceBookRow {
            version: r.0,
            body: r.1,
            fuel_per_billion: as_u64(r.2),
            created_at: r.3,
            created_by: r.4,
        }))
    }

    /// The newest price book's version (0 when there is none): cheap enough to ask before every
    /// call.
    pub async fn price_book_version(&self) -> Result<i64, StoreError> {
        let (v,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(version), 0) FROM price_books")
            .fetch_one(self.pool())
            .await?;
        Ok(v)
    }

    /// Stores the shipped price book as version 1 if the store has none; returns the version in force.
    pub async fn ensure_price_book(&self, body: &str, fuel_per_billion: u64) -> Result<i64, StoreError> {
        let mut tx = self.write_tx().await?;
        let current: Option<(i64,)> = sqlx::query_as("SELECT version FROM price_books ORDER BY version DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        if let Some((v,)) = current {
            return Ok(v);
        }
        sqlx::query(
            "INSERT INTO price_books (version, body, fuel_per_billion, created_at, created_by) VALUES (1, $1, $2, $3, 'shipped') \
             ON CONFLICT (version) DO NOTHING",
        )
        .bind(body)
        .bind(fuel_per_billion as i64)
        .bind(now_micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(1)
    }

    /// Publishes a new price book (operators only; the caller has parsed and checked `body`).
    /// Returns its version and whether it is new: a book identical to the one in force is not
    /// stored again.
    pub async fn add_price_book(
        &self,
        who: &Principal,
        body: &str,
        fuel_per_billion: u64,
    ) -> Result<(i64, bool), AccessError> {
        if who.role != Role::Operator {
            return Err(AccessError::Forbidden("only operators change the price book".into()));
        }
        let mut tx = self.write_tx().await?;
        let current: Option<(i64, String)> = sqlx::query_as(&format!(
            "SELECT version, body FROM price_books ORDER BY version DESC LIMIT 1{}",
            self.for_update()
        ))
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((v, old)) = &current
            && old == body
        {
            return Ok((*v, false));
        }
        let version = current.map_or(1, |c| c.0 + 1);
        sqlx::query(
            "INSERT INTO price_books (version, body, fuel_per_billion, created_at, created_by) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(version)
        .bind(body)
        .bind(fuel_per_billion as i64)
        .bind(now_micros())
        .bind(who.actor())
        .execute(&mut *tx)
        .await
        .map_err(|e| match e.as_database_error() {
            Some(d) if d.is_unique_violation() => {
                AccessError::Conflict("another price book was published at the same moment; apply again".into())
            }
            _ => AccessError::Store(e.into()),
        })?;
        audit(
            &mut tx,
            who,
            None,
            "prices.apply",
            &format!("price book v{version}"),
            serde_json::json!({ "version": version }),
        )
        .await?;
        tx.commit().await?;
        Ok((version, true))
    }

    /// Moves `tenant` to `plan` (operators only), audited. Returns the previous plan.
    pub async fn set_plan(&self, who: &Principal, tenant: &str, plan: Plan) -> Result<Plan, AccessError> {
        if who.role != Role::Operator {
            return Err(AccessError::Forbidden("only operators change a tenant's plan".into()));
        }
        let mut tx = self.write_tx().await?;
        let old: Option<(String,)> =
            sqlx::query_as(&format!("SELECT plan FROM tenants WHERE id = $1{}", self.for_update()))
                .bind(tenant)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((old,)) = old else {
            return Err(AccessError::NotFound(format!("no tenant `{tenant}`")));
        };
        let old = Plan::parse(&old).unwrap_or_default();
        if old != plan {
            sqlx::query("UPDATE tenants SET plan = $2, updated_at = $3 WHERE id = $1")
                .bind(tenant)
                .bind(plan.name())
                .bind(now_micros())
                .execute(&mut *tx)
                .await?;
            audit(
                &mut tx,
                who,
                Some(tenant),
                "tenant.plan",
                tenant,
                serde_json::json!({ "from": old.name(), "to": plan.name() }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(old)
    }

    /// Holds `req.amount` against every budget that applies to the call, or says which budget
    /// refuses it. Nothing is held when any budget refuses.
    ///
    /// This is on the path of every AI call, so on PostgreSQL it is one statement (the budgets
    /// read, every counter checked and raised, the reservation written) and on SQLite one read
    /// and a transaction of two: every counter is checked and raised by a single upsert whose
    /// `WHERE` refuses a counter that would pass its budget. Only a refusal costs more reads, to
    /// say which budget refused.
    pub async fn reserve(&self, req: &ReserveRequest<'_>) -> Result<Result<Reservation, BudgetRefusal>, StoreError> {
        let mut scopes = Vec::new();
        for _ in 0..RESERVE_ATTEMPTS {
            let id = random_id();
            let held = match self.backend() {
                crate::Backend::Postgres => self.hold_pg(req, &id).await?,
                crate::Backend::Sqlite => self.hold_sqlite(req, &id).await?,
            };
            if let Some((scopes, sealed_secret)) = held {
                return Ok(Ok(Reservation {
                    id,
                    tenant: req.tenant.to_string(),
                    amount: req.amount,
                    scopes,
                    sealed_secret,
                }));
            }
            // Say which budget refused, from the counters as they are now. Should every budget
            // have room again (calls settled meanwhile), try again.
            scopes = self.budget_scopes(req).await?;
            for s in &scopes {
                let (spent, reserved) = counter(self.pool(), req.tenant, s).await?;
                if s.limit
                    .is_some_and(|l| spent.saturating_add(reserved).saturating_add(req.amount) > l)
                {
                    return Ok(Err(refusal(req, s, spent, reserved)));
                }
            }
        }
        let s = &scopes[0];
        let (spent, reserved) = counter(self.pool(), req.tenant, s).await?;
        Ok(Err(refusal(req, s, spent, reserved)))
    }

    /// PostgreSQL: the budgets that apply (as [`Self::budget_scopes`] reads them), the counters
    /// and the reservation in one statement, committed by itself; returns the scopes held and the
    /// requested secret, or `None` when a budget refuses (`mc_budget_refused()` raises and the
    /// statement changes nothing). A budget smaller than the call refuses it whatever was spent:
    /// its counter is not even created.
    ///
    /// The statement runs on the holds pool, whose commits do not wait for the disk. Should the
    /// database crash and lose a reservation, the call's settlement finds none and bills the call
    /// without releasing anything: the counters stay exact, only the hold during the crash is
    /// gone. The settling statement (the ledger) waits for the disk, and with it for every earlier
    /// commit.
    async fn hold_pg(&self, req: &ReserveRequest<'_>, id: &str) -> Result<Option<Held>, StoreError> {
        let (month, _) = month_and_day(req.at);
        let now = now_micros();
        let q = sqlx::query_as::<_, (String, Option<String>)>(HOLD_PG)
            .bind(req.tenant)
            .bind(req.agent)
            .bind(req.root_run)
            .bind(month)
            .bind(req.amount as i64)
            .bind(id)
            .bind(now)
            .bind(req.expires_at)
            .bind(req.secret);
        match q.fetch_one(self.holds()).await {
            Ok((scopes, sealed)) => Ok(Some((
                serde_json::from_str(&scopes).map_err(|e| StoreError::Corrupt(format!("reservation scopes: {e}")))?,
                sealed,
            ))),
            Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some(BUDGET_REFUSED_CODE) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// SQLite: the budgets (and the secret) read, then the counters and the reservation in one
    /// transaction (the single writer serialises them). `None` when a budget refuses.
    async fn hold_sqlite(&self, req: &ReserveRequest<'_>, id: &str) -> Result<Option<Held>, StoreError> {
        // The secret is read on another connection meanwhile: SQLite's reads do not wait for
        // its writer.
        let secret = async {
            match req.secret {
                Some(name) => {
                    sqlx::query_as::<_, (String,)>("SELECT sealed FROM secrets WHERE tenant_id = $1 AND name = $2")
                        .bind(req.tenant)
                        .bind(name)
                        .fetch_optional(self.pool())
                        .await
                }
                None => Ok(None),
            }
        };
        let (held, sealed) = tokio::join!(self.hold_counters_sqlite(req, id), secret);
        let sealed = sealed?.map(|(s,)| s);
        Ok(held?.map(|scopes| (scopes, sealed)))
    }

    async fn hold_counters_sqlite(
        &self,
        req: &ReserveRequest<'_>,
        id: &str,
    ) -> Result<Option<Vec<BudgetScope>>, StoreError> {
        let scopes = self.budget_scopes(req).await?;
        // A budget smaller than the call refuses it whatever was spent; the upsert only checks
        // counters that exist already.
        if scopes.iter().any(|s| s.limit.is_some_and(|l| req.amount > l)) {
            return Ok(None);
        }
        let stored_scopes = serde_json::to_string(&scopes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.write_tx().await?;
        let mut p = crate::Placeholders::for_conn(&tx);
        let sql = counters_upsert(&mut p, scopes.len());
        let held = bind_counters(sqlx::query(&sql), req, &scopes)
            .fetch_all(&mut *tx)
            .await?;
        if held.len() < scopes.len() {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO reservations (id, tenant_id, scopes, amount, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(req.tenant)
        .bind(&stored_scopes)
        .bind(req.amount as i64)
        .bind(now_micros())
        .bind(req.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(scopes))
    }

    /// The budgets a call is checked against, the tenant's first: its month, the agent's month
    /// when the agent has a budget, the root run when the tenant has a per-run budget.
    async fn budget_scopes(&self, req: &ReserveRequest<'_>) -> Result<Vec<BudgetScope>, StoreError> {
        use sqlx::Row;
        let (month, _) = month_and_day(req.at);
        let row = sqlx::query(
            "SELECT t.budget_monthly, t.budget_per_run, a.grants FROM tenants t \
             LEFT JOIN agents a ON a.tenant_id = t.id AND a.name = $2 WHERE t.id = $1",
        )
        .bind(req.tenant)
        .bind(req.agent)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::Invalid(format!("no tenant `{}`", req.tenant)))?;
        let monthly: Option<i64> = row.try_get(0)?;
        let per_run: Option<i64> = row.try_get(1)?;
        let grants: Option<String> = row.try_get(2)?;
        let agent_budget = match grants {
            Some(g) => {
                serde_json::from_str::<crate::tenants::StoredGrants>(&g)
                    .map_err(|e| StoreError::Corrupt(format!("agent grants: {e}")))?
                    .budget_monthly
            }
            None => None,
        };
        let mut scopes = vec![BudgetScope {
            scope: "tenant".into(),
            period: month.clone(),
            limit: monthly.map(as_u64),
        }];
        if let Some(b) = agent_budget {
            scopes.push(BudgetScope {
                scope: format!("agent:{}", req.agent),
                period: month,
                limit: Some(b),
            });
        }
        if let Some(b) = per_run {
            scopes.push(BudgetScope {
                scope: format!("run:{}", req.root_run),
                period: "all".into(),
                limit: Some(as_u64(b)),
            });
        }
        Ok(scopes)
    }

    /// What the run tree under `root` has spent and holds, and the tenant's per-run budget;
    /// `None` when the tenant has no per-run budget.
    pub async fn run_tree_spend(&self, tenant: &str, root: &str) -> Result<Option<(u64, u64)>, StoreError> {
        let row: Option<(Option<i64>, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT t.budget_per_run, c.spent, c.reserved FROM tenants t LEFT JOIN budget_counters c \
             ON c.tenant_id = t.id AND c.scope = $2 AND c.period = 'all' WHERE t.id = $1",
        )
        .bind(tenant)
        .bind(format!("run:{root}"))
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some((Some(budget), spent, reserved)) => Some((
                as_u64(spent.unwrap_or(0)).saturating_add(as_u64(reserved.unwrap_or(0))),
                as_u64(budget),
            )),
            _ => None,
        })
    }

    /// Records a made call: writes its ledger row, moves its reservation to spent at the real cost
    /// and records any budget threshold the spend crossed, atomically (on PostgreSQL in one
    /// statement, on SQLite in one transaction). Returns the ledger row's id.
    ///
    /// A reservation that is gone already (it expired and was released) is billed without
    /// releasing anything twice.
    pub async fn settle(&self, reservation: &Reservation, entry: &LedgerEntry) -> Result<i64, StoreError> {
        let scopes = serde_json::Value::Array(
            reservation
                .scopes
                .iter()
                .map(|s| serde_json::json!([s.scope, s.period]))
                .collect(),
        )
        .to_string();
        let cost = entry.cost as i64;
        match self.backend() {
            crate::Backend::Postgres => {
                // The ledger insert's parameters are $1…$17 (see `LEDGER_INSERT`): $1 is the
                // time, $4 the tenant, $17 the cost. The row's running-totals delta is written
                // here, not by a trigger (migration 22).
                let sql = format!(
                    "WITH d AS (DELETE FROM reservations WHERE id = $18 RETURNING amount), \
                     t AS ({LEDGER_TOTALS_DELTA}), \
                     u AS (UPDATE budget_counters AS c \
                       SET reserved = c.reserved - COALESCE((SELECT amount FROM d), 0), spent = c.spent + $17 \
                       FROM jsonb_array_elements(CAST($19 AS jsonb)) AS r(value) \
                       WHERE c.tenant_id = $4 AND c.scope = r.value ->> 0 AND c.period = r.value ->> 1 \
                       RETURNING c.tenant_id, c.scope, c.period, c.spent, c.budget), \
                     a AS ({}){} {LEDGER_INSERT}",
                    alerts_insert("u", "$17", "$1"),
                    if entry.reply.is_some() {
                        format!(", j AS ({})", reply_upsert("$4", "$7", "$20", "$21", "$22", "$1"))
                    } else {
                        String::new()
                    }
                );
                let mut q = bind_ledger(sqlx::query_as(&sql), entry)
                    .bind(&reservation.id)
                    .bind(&scopes);
                if let Some(r) = &entry.reply {
                    q = q.bind(i64::from(r.seq)).bind(&r.request_hash).bind(&r.reply);
                }
                let (id,): (i64,) = q.fetch_one(self.pool()).await?;
                Ok(id)
            }
            crate::Backend::Sqlite => {
                let mut tx = self.write_tx().await?;
                let held = drop_reservation(&mut tx, &reservation.id).await?;
                let release = if held { reservation.amount as i64 } else { 0 };
                // Our own integers are written into the text: SQLite's `?` binds by position.
                let after: Vec<(i64, Option<i64>)> = sqlx::query_as(&format!(
                    "UPDATE budget_counters SET reserved = reserved - {release}, spent = spent + {cost} \
                     WHERE tenant_id = ? AND (scope, period) IN (SELECT r.value ->> 0, r.value ->> 1 FROM json_each(?) AS r) \
                     RETURNING spent, budget"
                ))
                .bind(&reservation.tenant)
                .bind(&scopes)
                .fetch_all(&mut *tx)
                .await?;
                // Most calls cross no threshold: only then is the alert statement worth running.
                let crossed = after.iter().any(|&(spent, budget)| {
                    budget.is_some_and(|b| {
                        ALERT_THRESHOLDS.iter().any(|&t| {
                            let line = i128::from(b) * i128::from(t);
                            i128::from(spent - cost) * 100 < line && i128::from(spent) * 100 >= line
                        })
                    })
                });
                if crossed {
                    let counters = "(SELECT c.tenant_id, c.scope, c.period, c.spent, c.budget FROM budget_counters c \
                     WHERE c.tenant_id = ? AND (c.scope, c.period) IN (SELECT r.value ->> 0, r.value ->> 1 FROM json_each(?) AS r)) AS u";
                    sqlx::query(&alerts_insert(counters, &cost.to_string(), &entry.at.to_string()))
                        .bind(&reservation.tenant)
                        .bind(&scopes)
                        .execute(&mut *tx)
                        .await?;
                }
                let (id,): (i64,) = bind_ledger(sqlx::query_as(LEDGER_INSERT), entry)
                    .fetch_one(&mut *tx)
                    .await?;
                if let Some(r) = &entry.reply {
                    sqlx::query(&reply_upsert("?", "?", "?", "?", "?", "?"))
                        .bind(&entry.tenant)
                        .bind(&entry.run_id)
                        .bind(i64::from(r.seq))
                        .bind(&r.request_hash)
                        .bind(&r.reply)
                        .bind(entry.at)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(id)
            }
        }
    }

    /// The answer run `run_id` of `tenant` got to its AI call number `seq`, with the hash of the
    /// request it answered, if the run made that call before.
    pub async fn ai_reply(&self, tenant: &str, run_id: &str, seq: u32) -> Result<Option<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT request_hash, reply FROM ai_replies WHERE tenant_id = $1 AND run_id = $2 AND seq = $3",
        )
        .bind(tenant)
        .bind(run_id)
        .bind(i64::from(seq))
        .fetch_optional(self.pool())
        .await?)
    }

    /// Gives back the money held for a call that was not made or failed.
    pub async fn release_reservation(&self, reservation: &Reservation) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        if drop_reservation(&mut tx, &reservation.id).await? {
            for s in &reservation.scopes {
                unreserve(&mut tx, &reservation.tenant, s, reservation.amount).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Releases reservations whose calls never came back (their node died). Returns how many.
    pub async fn release_expired_reservations(&self, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let expired: Vec<(String, String, String, i64)> =
            sqlx::query_as("DELETE FROM reservations WHERE expires_at < $1 RETURNING id, tenant_id, scopes, amount")
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
        for (id, tenant, scopes, amount) in &expired {
            let scopes: Vec<BudgetScope> =
                serde_json::from_str(scopes).map_err(|e| StoreError::Corrupt(format!("reservation {id}: {e}")))?;
            for s in &scopes {
                unreserve(&mut tx, tenant, s, as_u64(*amount)).await?;
            }
        }
        tx.commit().await?;
        Ok(expired.len() as u64)
    }

    /// Reservations held right now, across tenants (tests and the monitor check none is left).
    pub async fn open_reservations(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM reservations")
            .fetch_one(self.pool())
            .await?;
        Ok(as_u64(n))
    }

    /// Every tenant's month: plan price, AI and fuel cost, margin (the operator's report), from the
    /// month's `ledger_totals`.
    pub async fn margin_report(&self, month: &str) -> Result<Vec<MarginLine>, StoreError> {
        valid_month(month).map_err(StoreError::Invalid)?;
        let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT t.id, t.name, t.plan, \
             CAST(COALESCE(l.ai, 0) AS BIGINT), CAST(COALESCE(l.fuel, 0) AS BIGINT) FROM tenants t \
             LEFT JOIN (SELECT tenant_id, SUM(CASE WHEN kind = 'ai' THEN cost ELSE 0 END) AS ai, \
               SUM(CASE WHEN kind = 'fuel' THEN cost ELSE 0 END) AS fuel \
               FROM ledger_totals WHERE month = $1 GROUP BY tenant_id) l ON l.tenant_id = t.id \
             ORDER BY t.id",
        )
        .bind(month)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(tenant, name, plan, ai, fuel)| {
                let revenue = Plan::parse(&plan).unwrap_or_default().monthly_price();
                MarginLine {
                    tenant,
                    name,
                    plan,
                    revenue,
                    ai_cost: as_u64(ai),
                    fuel_cost: as_u64(fuel),
                    margin: revenue as i64 - ai - fuel,
                }
            })
            .collect())
    }
}

/// How often a reservation is tried when a budget refused it but has room by the time the refusal
/// is explained (calls settled in between).
const RESERVE_ATTEMPTS: usize = 3;

/// What a reservation holds: its scopes, and the sealed secret it was asked to read.
type Held = (Vec<BudgetScope>, Option<String>);

/// PostgreSQL's reservation in one statement ([`Store::hold_pg`]): `$1` tenant, `$2` agent, `$3`
/// root run, `$4` month, `$5` amount, `$6` reservation id, `$7` now, `$8` expiry, `$9` the
/// secret to read (or NULL). `s` is what [`Store::budget_scopes`] reads (the tenant's month, the agent's when it has a budget, the root
/// run's when the tenant has a per-run budget), written into the reservation in the shape
/// `BudgetScope` serialises to; counters are raised in that order (see [`counters_upsert`]).
/// A missing tenant has no scopes and is refused, and the refusal's explanation names it.
const HOLD_PG: &str = "WITH s AS (\
       SELECT t.id AS tenant_id, x.ord, x.scope, x.period, x.budget FROM tenants t \
       LEFT JOIN agents a ON a.tenant_id = t.id AND a.name = $2 \
       CROSS JOIN LATERAL (VALUES \
         (1, 'tenant', $4, t.budget_monthly, true), \
         (2, 'agent:' || $2, $4, CAST(CAST(a.grants AS jsonb) ->> 'budget_monthly' AS BIGINT), \
            (CAST(a.grants AS jsonb) ->> 'budget_monthly') IS NOT NULL), \
         (3, 'run:' || $3, 'all', t.budget_per_run, t.budget_per_run IS NOT NULL)) \
         AS x(ord, scope, period, budget, applies) \
       WHERE t.id = $1 AND x.applies), \
     c AS (INSERT INTO budget_counters (tenant_id, scope, period, spent, reserved, budget) \
       SELECT tenant_id, scope, period, 0, $5, budget FROM s WHERE budget IS NULL OR $5 <= budget ORDER BY ord \
       ON CONFLICT (tenant_id, scope, period) DO UPDATE \
       SET reserved = budget_counters.reserved + excluded.reserved, budget = excluded.budget \
       WHERE excluded.budget IS NULL \
       OR budget_counters.spent + budget_counters.reserved + excluded.reserved <= excluded.budget \
       RETURNING scope), \
     r AS (INSERT INTO reservations (id, tenant_id, scopes, amount, created_at, expires_at) \
       SELECT $6, $1, (SELECT CAST(json_agg(json_build_object('scope', scope, 'period', period, 'limit', budget) \
         ORDER BY ord) AS TEXT) FROM s), $5, $7, $8 \
       WHERE CASE WHEN (SELECT COUNT(*) FROM s) > 0 AND (SELECT COUNT(*) FROM c) = (SELECT COUNT(*) FROM s) \
         THEN true ELSE mc_budget_refused() END \
       RETURNING scopes) \
     SELECT scopes, (SELECT sealed FROM secrets WHERE tenant_id = $1 AND name = $9) FROM r";

/// The SQLSTATE `mc_budget_refused()` raises (PL/pgSQL's `raise_exception`).
const BUDGET_REFUSED_CODE: &str = "P0001";

/// The upsert that holds an amount on `n` counters: each row's `WHERE` refuses a counter that would
/// pass its budget, so the statement returns fewer rows than it was given when a budget refuses.
/// Rows are written, and locked, in the order given: the tenant's counter first, so a tenant's
/// reservations queue on one lock and never wait on each other crosswise.
fn counters_upsert(p: &mut crate::Placeholders, n: usize) -> String {
    let values: Vec<String> = (0..n)
        .map(|_| {
            let (t, s, per, amount, limit) = (p.next(), p.next(), p.next(), p.next(), p.next());
            format!("({t}, {s}, {per}, 0, {amount}, {limit})")
        })
        .collect();
    format!(
        "INSERT INTO budget_counters (tenant_id, scope, period, spent, reserved, budget) VALUES {} \
         ON CONFLICT (tenant_id, scope, period) DO UPDATE \
         SET reserved = budget_counters.reserved + excluded.reserved, budget = excluded.budget \
         WHERE excluded.budget IS NULL \
         OR budget_counters.spent + budget_counters.reserved + excluded.reserved <= excluded.budget \
         RETURNING scope",
        values.join(", ")
    )
}

fn bind_counters<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    req: &ReserveRequest<'q>,
    scopes: &'q [BudgetScope],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for s in scopes {
        q = q
            .bind(req.tenant)
            .bind(&s.scope)
            .bind(&s.period)
            .bind(req.amount as i64)
            .bind(s.limit.map(|l| l as i64));
    }
    q
}

/// The spent and reserved amounts of a counter (zero when it does not exist yet).
async fn counter<'c, E>(conn: E, tenant: &str, s: &BudgetScope) -> Result<(u64, u64), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT spent, reserved FROM budget_counters WHERE tenant_id = $1 AND scope = $2 AND period = $3",
    )
    .bind(tenant)
    .bind(&s.scope)
    .bind(&s.period)
    .fetch_optional(conn)
    .await?;
    let (spent, reserved) = row.unwrap_or((0, 0));
    Ok((as_u64(spent), as_u64(reserved)))
}

fn refusal(req: &ReserveRequest<'_>, s: &BudgetScope, spent: u64, reserved: u64) -> BudgetRefusal {
    BudgetRefusal {
        what: s.describe(req.tenant),
        budget: s.limit.unwrap_or(0),
        spent,
        reserved,
        needed: req.amount,
    }
}

/// Deletes a reservation; false if it was gone already (released when it expired).
async fn drop_reservation(tx: &mut Tx, id: &str) -> Result<bool, StoreError> {
    let n = sqlx::query("DELETE FROM reservations WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(n > 0)
}

async fn unreserve(tx: &mut Tx, tenant: &str, s: &BudgetScope, amount: u64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE budget_counters SET reserved = reserved - $4 WHERE tenant_id = $1 AND scope = $2 AND period = $3",
    )
    .bind(tenant)
    .bind(&s.scope)
    .bind(&s.period)
    .bind(amount as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An `INSERT INTO budget_alerts` of each threshold the counters of `counters` (a FROM item
/// named `u` with the columns `tenant_id, scope, period, spent, budget`, read after `cost` was
/// added to `spent`) crossed with that cost; `cost` and `at` are SQL expressions. An alert is
/// recorded once per threshold, however many calls cross it together.
fn alerts_insert(counters: &str, cost: &str, at: &str) -> String {
    let thresholds = ALERT_THRESHOLDS
        .iter()
        .map(|t| format!("SELECT {t} AS threshold"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    format!(
        "INSERT INTO budget_alerts (tenant_id, scope, period, threshold, spent, budget, at) \
         SELECT u.tenant_id, u.scope, u.period, t.threshold, u.spent, u.budget, {at} \
         FROM {counters} CROSS JOIN ({thresholds}) AS t \
         WHERE u.budget IS NOT NULL AND (u.spent - {cost}) * 100 < u.budget * t.threshold \
         AND u.spent * 100 >= u.budget * t.threshold \
         ON CONFLICT (tenant_id, scope, period, threshold) DO NOTHING"
    )
}

/// PostgreSQL: the running-totals delta of the ledger row [`LEDGER_INSERT`] writes, from the same
/// parameters.
const LEDGER_TOTALS_DELTA: &str = "INSERT INTO ledger_totals (tenant_id, month, day, agent, automation, model, kind, \
     entries, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, usage_estimated, fuel, cost) \
     VALUES ($4, $3, $2, $5, COALESCE($6, ''), COALESCE($10, ''), 'ai', 1, $11, $12, $13, $14, $15, 0, $17)";

/// Writes one AI call's ledger row, returning its id; parameters as bound by [`bind_ledger`]
/// ($1 the time, $4 the tenant, $17 the cost).
const LEDGER_INSERT: &str = "INSERT INTO ledger (at, day, month, tenant_id, kind, agent, automation, run_id, attempt, \
     provider, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, usage_estimated, fuel, \
     price_version, cost) \
     VALUES ($1, $2, $3, $4, 'ai', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 0, $16, $17) RETURNING id";

fn bind_ledger<'q, O>(
    q: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>,
    e: &'q LedgerEntry,
) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>> {
    let (month, day) = month_and_day(e.at);
    q.bind(e.at)
        .bind(day)
        .bind(month)
        .bind(&e.tenant)
        .bind(&e.agent)
        .bind(&e.automation)
        .bind(&e.run_id)
        .bind(i64::from(e.attempt))
        .bind(&e.provider)
        .bind(&e.model)
        .bind(e.input_tokens as i64)
        .bind(e.output_tokens as i64)
        .bind(e.cache_read_tokens as i64)
        .bind(e.cache_write_tokens as i64)
        .bind(i64::from(e.usage_estimated))
        .bind(e.price_version)
        .bind(e.cost as i64)
}

/// The statement that keeps a call's answer in the run's journal, over an earlier answer to a
/// different request of the same number (a run whose input changed between its attempts).
fn reply_upsert(tenant: &str, run: &str, seq: &str, hash: &str, reply: &str, at: &str) -> String {
    format!(
        "INSERT INTO ai_replies (tenant_id, run_id, seq, request_hash, reply, at) VALUES ({tenant}, {run}, {seq}, {hash}, {reply}, {at}) \
         ON CONFLICT (tenant_id, run_id, seq) DO UPDATE SET request_hash = excluded.request_hash, reply = excluded.reply, at = excluded.at"
    )
}

/// A run attempt's fuel, as its ledger row records it.
pub(crate) struct RunFuel<'a> {
    pub id: i64,
    pub tenant: &'a str,
    pub agent: &'a str,
    pub automation: Option<&'a str>,
    pub attempt: i64,
    pub fuel: u64,
}

/// The INSERT of fuel rows into the ledger, priced with the price book in force (none written
/// without one), from `source`: a FROM item `s` with the columns `tenant_id`, `agent`,
/// `automation`, `run_id` (text), `attempt` and `fuel`. `at`, `day` and `month` are placeholders:
/// bound, not written into the text, since a statement whose text changes with the time is parsed
/// and planned again at every call (a millisecond on PostgreSQL). Half up: + 500,000,000 before
/// dividing by a billion. The price book is read by subqueries that name no row of `source`, so
/// each runs once per statement; joined with the rows, PostgreSQL looked it up again for every row
/// (`auto_explain`: a fifth of the fuel rows' insert).
fn fuel_insert(source: &str, at: &str, day: &str, month: &str) -> String {
    const IN_FORCE: &str = "FROM price_books ORDER BY version DESC LIMIT 1";
    format!(
        "INSERT INTO ledger (at, day, month, tenant_id, kind, agent, automation, run_id, attempt, fuel, price_version, cost) \
         SELECT {at}, {day}, {month}, s.tenant_id, 'fuel', s.agent, s.automation, s.run_id, s.attempt, s.fuel, \
         (SELECT version {IN_FORCE}), (s.fuel * (SELECT fuel_per_billion {IN_FORCE}) + 500000000) / 1000000000 \
         FROM {source} WHERE s.fuel > 0 AND EXISTS (SELECT 1 FROM price_books)"
    )
}

/// [`fuel_insert`] on PostgreSQL, with the rows' running-totals deltas, one per key (migration
/// 22; SQLite's trigger writes its totals): two writing CTEs, `l` and `lt`, for [`insert_fuel`]'s
/// statement or a recording's (`record_chunk_postgres` in the queue).
pub(crate) fn fuel_ctes(source: &str, at: &str, day: &str, month: &str) -> String {
    format!(
        "l AS ({} RETURNING tenant_id, month, day, agent, automation, fuel, cost), \
         lt AS (INSERT INTO ledger_totals (tenant_id, month, day, agent, automation, model, kind, entries, input_tokens, \
         output_tokens, cache_read_tokens, cache_write_tokens, usage_estimated, fuel, cost) \
         SELECT tenant_id, month, day, agent, COALESCE(automation, ''), '', 'fuel', COUNT(*), 0, 0, 0, 0, 0, \
         SUM(fuel), SUM(cost) FROM l GROUP BY tenant_id, month, day, agent, COALESCE(automation, ''))",
        fuel_insert(source, at, day, month)
    )
}

/// Writes the fuel rows of run attempts being recorded in `tx`, priced with the price book in
/// force. Without a price book nothing is written. The callers have each run's tenant, agent,
/// automation and attempt at hand already: reading them again from the runs cost PostgreSQL an
/// index scan per row.
pub(crate) async fn insert_fuel(tx: &mut Tx, runs: &[RunFuel<'_>], now: i64) -> Result<(), StoreError> {
    let runs: Vec<_> = runs.iter().filter(|r| r.fuel > 0).collect();
    if runs.is_empty() {
        return Ok(());
    }
    let (month, day) = month_and_day(now);
    let mut p = crate::Placeholders::for_conn(tx);
    let (pn, pd, pm, rows) = (p.next(), p.next(), p.next(), p.json_rows());
    let source = format!(
        "(SELECT r.value ->> 1 AS tenant_id, r.value ->> 2 AS agent, r.value ->> 3 AS automation, \
         r.value ->> 0 AS run_id, CAST(r.value ->> 4 AS BIGINT) AS attempt, CAST(r.value ->> 5 AS BIGINT) AS fuel \
         FROM {rows}) AS s"
    );
    let sql = if p.is_sqlite() {
        fuel_insert(&source, &pn, &pd, &pm)
    } else {
        format!("WITH {} SELECT COUNT(*) FROM l", fuel_ctes(&source, &pn, &pd, &pm))
    };
    let json = crate::json_rows(
        runs.iter()
            .map(|r| serde_json::json!([r.id.to_string(), r.tenant, r.agent, r.automation, r.attempt, r.fuel]))
            .collect(),
    );
    sqlx::query(&sql)
        .bind(now)
        .bind(day)
        .bind(month)
        .bind(json)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

const LEDGER_COLUMNS: &str = "id, at, kind, agent, automation, run_id, attempt, provider, model, input_tokens, \
     output_tokens, cache_read_tokens, cache_write_tokens, usage_estimated, fuel, price_version, cost";

impl TenantScope<'_> {
    /// The ledger rows of one run, in order.
    pub async fn ledger_of_run(&self, run_id: &str) -> Result<Vec<LedgerRow>, StoreError> {
        self.ledger_where("run_id = $2", run_id).await
    }

    /// The ledger rows of a month (`YYYY-MM`), in order. The month's bounds in time let
    /// PostgreSQL find its rows by the ledger's range index over `at` (migration 27).
    pub async fn ledger_of_month(&self, month: &str) -> Result<Vec<LedgerRow>, StoreError> {
        valid_month(month).map_err(StoreError::Invalid)?;
        let (from, until) = month_bounds(month)?;
        self.ledger_where(&format!("month = $2 AND at >= {from} AND at < {until}"), month)
            .await
    }

    async fn ledger_where(&self, condition: &str, value: &str) -> Result<Vec<LedgerRow>, StoreError> {
        use sqlx::Row;
        let rows = sqlx::query(&format!(
            "SELECT {LEDGER_COLUMNS} FROM ledger WHERE tenant_id = $1 AND {condition} ORDER BY id"
        ))
        .bind(self.id())
        .bind(value)
        .fetch_all(self.store().pool())
        .await?;
        let n = |r: &sqlx::any::AnyRow, i: usize| -> Result<u64, sqlx::Error> { Ok(as_u64(r.try_get::<i64, _>(i)?)) };
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(LedgerRow {
                id: r.try_get(0)?,
                at: r.try_get(1)?,
                kind: r.try_get(2)?,
                agent: r.try_get(3)?,
                automation: r.try_get(4)?,
                run_id: r.try_get(5)?,
                attempt: u32::try_from(r.try_get::<i64, _>(6)?).unwrap_or(0),
                provider: r.try_get(7)?,
                model: r.try_get(8)?,
                input_tokens: n(r, 9)?,
                output_tokens: n(r, 10)?,
                cache_read_tokens: n(r, 11)?,
                cache_write_tokens: n(r, 12)?,
                usage_estimated: n(r, 13)? != 0,
                fuel: n(r, 14)?,
                price_version: r.try_get(15)?,
                cost: n(r, 16)?,
            });
        }
        Ok(out)
    }

    /// The month's usage grouped `by` agent, automation, model or day, and the totals: sums of the
    /// month's `ledger_totals` (the ledger summed per day, agent, automation and model), a few
    /// hundred rows however many calls and runs the month had.
    pub async fn usage(&self, month: &str, by: UsageBy) -> Result<(Vec<UsageLine>, UsageLine), StoreError> {
        valid_month(month).map_err(StoreError::Invalid)?;
        let sums = "CAST(COALESCE(SUM(CASE WHEN kind = 'ai' THEN entries ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT), \
             CAST(COALESCE(SUM(cache_read_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(cache_write_tokens), 0) AS BIGINT), \
             CAST(COALESCE(SUM(usage_estimated), 0) AS BIGINT), CAST(COALESCE(SUM(fuel), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN kind = 'ai' THEN cost ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN kind = 'fuel' THEN cost ELSE 0 END), 0) AS BIGINT)";
        let key = by.column();
        type Sums = (String, i64, i64, i64, i64, i64, i64, i64, i64, i64);
        let rows: Vec<Sums> = sqlx::query_as(&format!(
            "SELECT {key}, {sums} FROM ledger_totals WHERE tenant_id = $1 AND month = $2 GROUP BY {key} ORDER BY {key}"
        ))
        .bind(self.id())
        .bind(month)
        .fetch_all(self.store().pool())
        .await?;
        let line = |r: Sums| UsageLine {
            key: r.0,
            ai_calls: as_u64(r.1),
            input_tokens: as_u64(r.2),
            output_tokens: as_u64(r.3),
            cache_read_tokens: as_u64(r.4),
            cache_write_tokens: as_u64(r.5),
            estimated_calls: as_u64(r.6),
            fuel: as_u64(r.7),
            ai_cost: as_u64(r.8),
            fuel_cost: as_u64(r.9),
            cost: as_u64(r.8) + as_u64(r.9),
        };
        let lines: Vec<UsageLine> = rows.into_iter().map(line).collect();
        let mut total = UsageLine {
            key: "total".into(),
            ..Default::default()
        };
        for l in &lines {
            total.ai_calls += l.ai_calls;
            total.input_tokens += l.input_tokens;
            total.output_tokens += l.output_tokens;
            total.cache_read_tokens += l.cache_read_tokens;
            total.cache_write_tokens += l.cache_write_tokens;
            total.estimated_calls += l.estimated_calls;
            total.fuel += l.fuel;
            total.ai_cost += l.ai_cost;
            total.fuel_cost += l.fuel_cost;
            total.cost += l.cost;
        }
        Ok((lines, total))
    }

    /// The tenant's budgets, spend and alerts for `month`.
    pub async fn budget_status(&self, month: &str) -> Result<Option<BudgetStatus>, StoreError> {
        valid_month(month).map_err(StoreError::Invalid)?;
        let Some(t) = self.get().await? else { return Ok(None) };
        let counters: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT scope, spent, reserved FROM budget_counters WHERE tenant_id = $1 AND period = $2 ORDER BY scope",
        )
        .bind(self.id())
        .bind(month)
        .fetch_all(self.store().pool())
        .await?;
        let agents = self.agents().await?;
        let counter = |scope: &str| {
            counters
                .iter()
                .find(|c| c.0 == scope)
                .map_or((0, 0), |c| (as_u64(c.1), as_u64(c.2)))
        };
        let (spent, reserved) = counter("tenant");
        let alerts: Vec<(String, String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT scope, period, threshold, spent, budget, at FROM budget_alerts WHERE tenant_id = $1 AND period IN ($2, 'all') \
             ORDER BY scope, period, threshold",
        )
        .bind(self.id())
        .bind(month)
        .fetch_all(self.store().pool())
        .await?;
        Ok(Some(BudgetStatus {
            month: month.to_string(),
            monthly: t.budget_monthly,
            per_run: t.budget_per_run,
            spent,
            reserved,
            agents: agents
                .into_iter()
                .map(|a| {
                    let (spent, reserved) = counter(&format!("agent:{}", a.name));
                    AgentSpend {
                        agent: a.name,
                        budget: a.budget_monthly,
                        spent,
                        reserved,
                    }
                })
                .collect(),
            alerts: alerts
                .into_iter()
                .map(|a| BudgetAlert {
                    scope: a.0,
                    period: a.1,
                    threshold: as_u64(a.2),
                    spent: as_u64(a.3),
                    budget: as_u64(a.4),
                    at: a.5,
                })
                .collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::month_bounds;

    #[test]
    fn a_month_is_bounded_by_its_first_microsecond_and_the_next_month_s() {
        // 2026-12-01T00:00:00Z and 2027-01-01T00:00:00Z; February of a leap year has 29 days.
        assert_eq!(
            month_bounds("2026-12").unwrap(),
            (1_796_083_200_000_000, 1_798_761_600_000_000)
        );
        let (from, until) = month_bounds("2028-02").unwrap();
        assert_eq!(until - from, 29 * 86_400_000_000);
        assert!(month_bounds("2026-13").is_err());
    }
}
