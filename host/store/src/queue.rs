//! The durable job queue: enqueue (with idempotency keys), fair batched claims with leases,
//! completion, failure with exponential backoff and jitter, dead letters, lease recovery and
//! cancellation — the same semantics on SQLite and PostgreSQL.
//!
//! Fair share: claims walk `queue_tenants` least-recently-served first and take at most an equal
//! share of the batch from each tenant that has work, then return the jobs interleaved round-robin.
//! A tenant with one job waiting is therefore in the very next batch, at the front of its round,
//! however many jobs another tenant has queued.
//!
//! Within a tenant, `rank_key` (priority with aging, see the migration) decides the order.
//!
//! Every operation changes a job's `queue` row and its `jobs` row in one transaction (migration
//! 25): the queue row while the queue has the job in hand, the jobs row always; except a claim,
//! which writes the queue row alone (migration 26). A running job's attempt, start and node are
//! on its queue row, and whatever ends the attempt copies them to the job's row. Readers of runs
//! read the `runs` view, which takes them from the queue row while the job runs.
//!
//! The node implies the state: `queue.claimed_by` is set exactly while the job runs, so a
//! statement over a batch of ids that names the node needs no condition on the state, and must
//! not have one. `state = 'running'` lets PostgreSQL's planner pick the partial index of running
//! jobs when its statistics (taken while the queue had another shape) put few rows there, and
//! test every running job against the batch, parsing the batch's id list again for each: 1,000 ×
//! 250 ids a statement. Without it the primary key is the only index that fits, looked up once
//! per id.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use sqlx::{Any, Transaction};

use crate::metering::{RunFuel, insert_fuel};
use crate::totals::{count_finished, count_runs};
use crate::{Backend, Placeholders, Store, StoreError, Tx, json_rows, now_micros};

/// One priority level is worth this much waiting: a job waiting this long ranks with a job one
/// level above it that has just arrived. Ten seconds lets urgent work jump ahead while bounding a
/// background job's wait behind a flood of urgent ones.
pub const PRIORITY_STEP: Duration = Duration::from_secs(10);
/// A job due within this long is enqueued straight into the available state, and claims take
/// it from its `run_at` on: the scheduler prepares a tick's jobs this far ahead, so at the tick
/// they only need claiming. Further out, a job waits in the scheduled state until staged.
pub const AVAILABLE_AHEAD: Duration = Duration::from_secs(1);
/// First retry delay; each further attempt doubles it.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(600);
/// Most attempts a job may be given (the first run plus retries).
pub const MAX_ATTEMPTS: u32 = 25;
/// Jobs completed per statement: bounds the size of one statement's JSON document.
const COMPLETE_CHUNK: usize = 400;
/// Jobs inserted per statement: bounds the size of one statement's JSON document.
const ENQUEUE_CHUNK: usize = 1_000;
/// Attempts a follow-up (`after`) job gets.
const FOLLOW_UP_ATTEMPTS: u32 = 3;
/// The states in which a job has a queue row.
const LIVE: &str = "'scheduled', 'available', 'running', 'awaiting_approval', 'dead'";
/// Most jobs one claim may take.
pub const MAX_CLAIM: usize = 1_000;
/// Most tenants one claim looks at; the rest wait for the next claim (they are least recently
/// served by then, so they come first).
const MAX_TENANTS_PER_CLAIM: i64 = 256;

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub tenant: String,
    pub automation: Option<String>,
    pub agent: String,
    pub plugin: String,
    /// The input JSON document.
    pub input: String,
    /// What enqueued it: `cron`, `interval`, `webhook`, `manual`, ...
    pub trigger: String,
    /// -100 to 100; higher runs first.
    pub priority: i32,
    /// 1 to [`MAX_ATTEMPTS`].
    pub max_attempts: u32,
    /// Earliest start, microseconds since the epoch; `None` is now.
    pub run_at: Option<i64>,
    /// A second enqueue with the same key (per tenant) returns the first job instead.
    pub idempotency_key: Option<String>,
}

/// A successful run's result, as [`Store::complete_many`] records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub id: i64,
    /// The output JSON document.
    pub output: String,
    /// The run's log lines (a JSON array), if it logged anything.
    pub logs: Option<String>,
    /// Fuel the run consumed: recorded in the ledger with the result.
    pub fuel: u64,
}

/// How an attempt failed, as [`Store::fail`] records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedAttempt<'a> {
    /// A short stable name of the cause (`trap`, `out_of_fuel`, ...).
    pub kind: &'a str,
    /// What a person reads on the run's page.
    pub error: &'a str,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// The attempt's log lines (a JSON array).
    pub logs: Option<&'a str>,
    /// Fuel it burnt, recorded in the ledger.
    pub fuel: u64,
    /// The version (SHA-256, hex) of the plugin it ran, when it was loaded: the monitor tells a
    /// version that traps run after run from the one before it.
    pub plugin_hash: Option<&'a str>,
}

/// What `enqueue` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Created(i64),
    /// A job with the same idempotency key exists; its id.
    Duplicate(i64),
}

impl Enqueued {
    pub fn id(self) -> i64 {
        match self {
            Enqueued::Created(id) | Enqueued::Duplicate(id) => id,
        }
    }
}

/// A claimed job, leased to the claiming node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    pub id: i64,
    pub tenant: String,
    pub automation: Option<String>,
    pub agent: String,
    pub plugin: String,
    pub input: String,
    pub trigger: String,
    pub priority: i32,
    /// 1 for the first run.
    pub attempt: u32,
    pub max_attempts: u32,
    pub lease_until: i64,
    /// The run at the top of its delegation tree (its own id when nobody delegated to it).
    pub root: i64,
}

/// A job's state and result, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobRow {
    pub id: i64,
    pub tenant: String,
    pub automation: Option<String>,
    pub agent: String,
    pub state: String,
    pub attempt: u32,
    pub max_attempts: u32,
    pub run_at: i64,
    pub output: Option<String>,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    /// The node that claimed it last.
    pub claimed_by: Option<String>,
    /// When it was created (microseconds).
    pub created_at: i64,
}

/// How a failed attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    /// Scheduled again at this time (µs).
    Retrying { run_at: i64 },
    /// Out of attempts, or not retryable: in the dead-letter state.
    Dead,
}

fn check_new(job: &NewJob) -> Result<(), StoreError> {
    if !(1..=MAX_ATTEMPTS).contains(&job.max_attempts) {
        return Err(StoreError::Invalid(format!(
            "max_attempts must be between 1 and {MAX_ATTEMPTS}, got {}",
            job.max_attempts
        )));
    }
    if !(-100..=100).contains(&job.priority) {
        return Err(StoreError::Invalid(format!(
            "priority must be between -100 and 100, got {}",
            job.priority
        )));
    }
    Ok(())
}

fn rank_key(priority: i32, run_at: i64) -> i64 {
    i64::from(priority) * PRIORITY_STEP.as_micros() as i64 - run_at
}

/// The delay before attempt `attempt + 1`: exponential from [`BACKOFF_BASE`], capped at
/// [`BACKOFF_MAX`], with "equal jitter" (half fixed, half spread) so retries of jobs that failed
/// together do not return together. The spread comes from a hash of the job and attempt, so it
/// needs no random source and is reproducible in tests.
pub fn backoff(job_id: i64, attempt: u32) -> Duration {
    let exp = BACKOFF_BASE
        .as_micros()
        .saturating_mul(1u128 << attempt.saturating_sub(1).min(30));
    let capped = exp.min(BACKOFF_MAX.as_micros()) as u64;
    let mut h = (job_id as u64) ^ (u64::from(attempt) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    Duration::from_micros(capped / 2 + h % (capped / 2 + 1))
}

/// Splits `max` claims between tenants that have `available[i]` jobs each, given in round-robin
/// order (least recently served first): equal shares, earlier tenants rounding up, and what a
/// small tenant cannot use going to the others, so a batch is never cut short while work waits.
pub fn fair_shares(max: usize, available: &[i64]) -> Vec<usize> {
    let mut shares = vec![0usize; available.len()];
    let mut remaining = max;
    loop {
        let open: Vec<usize> = (0..available.len())
            .filter(|&i| (shares[i] as i64) < available[i])
            .collect();
        if remaining == 0 || open.is_empty() {
            return shares;
        }
        let mut left = open.len();
        for i in open {
            let fair = remaining.div_ceil(left);
            let take = fair.min((available[i] - shares[i] as i64) as usize);
            shares[i] += take;
            remaining -= take;
            left -= 1;
        }
    }
}

/// Keeps the candidates `(id, automation)`, in order, that fit their automation's `max_running`
/// limit given how many of its runs are running already (`limits`: name → (max, running)).
fn within_automation_limits(candidates: Vec<(i64, Option<String>)>, limits: &HashMap<String, (i64, i64)>) -> Vec<i64> {
    let mut taken: HashMap<&str, i64> = HashMap::new();
    candidates
        .into_iter()
        .filter(
            |(_, automation)| match automation.as_deref().and_then(|a| limits.get_key_value(a)) {
                Some((name, (max, running))) => {
                    let n = taken.entry(name.as_str()).or_insert(*running);
                    *n += 1;
                    *n <= *max
                }
                None => true,
            },
        )
        .map(|(id, _)| id)
        .collect()
}

/// The planner settings PostgreSQL's claims run with: no sorts and no bitmap scans, so the
/// candidates are read from the `queue_available` index in rank order, stopping at the claim's
/// size. While a flood of jobs is newer than the table's statistics (autovacuum analyses a table
/// at most once a minute), the planner believed a tenant had a couple of available jobs and chose
/// a bitmap scan of all of them and a sort: with 75,000 waiting, every claim sorted them all, on
/// disk (`auto_explain` on the queue benchmark: claims 3-6 ms → 20-65 ms). A claim's final step
/// (the few hundred claimed jobs, in rank order) still gets its sort; JIT compilation is off as
/// well, since the cost the planner then adds to that sort made it compile the statement (300 ms
/// a claim). The claims' own connections have them for the session (`Store::claims`); a claim in
/// a transaction on another connection sets them for the transaction ([`in_rank_order`]).
pub(crate) const IN_RANK_ORDER: [(&str, &str); 3] =
    [("enable_sort", "off"), ("enable_bitmapscan", "off"), ("jit", "off")];

/// How the claims' own connections commit: without waiting for the WAL to reach the disk. A claim
/// that a crash of the database takes back leaves its jobs available again, as if the claim had
/// not happened; the node's results for them are then refused (their queue rows no longer name
/// it), so they run again, as any run cut short by a crash does. A result the recorder committed
/// (it waits for the disk) comes after its claim in the WAL, so a recorded success never loses its
/// claim. The serving loop waits on its claims; each waited for a WAL flush.
pub(crate) const CLAIM_COMMIT: [(&str, &str); 1] = [("synchronous_commit", "off")];

/// [`IN_RANK_ORDER`] for the rest of a transaction, as a FROM item to join into its first
/// statement: `set_config(…, true)` is `SET LOCAL` as an expression, so it costs no round trip.
fn in_rank_order() -> String {
    let settings: Vec<String> = IN_RANK_ORDER
        .iter()
        .map(|(name, value)| format!("set_config('{name}', '{value}', true)"))
        .collect();
    format!(" CROSS JOIN (SELECT {}) AS planner", settings.join(", "))
}

/// A tenant as a claim sees it: its id, its available jobs, its running jobs, and 1 when it has
/// automations with a `max_running` limit (else 0).
type ClaimTenant = (String, i64, i64, i64);

/// The claim's tenants, least recently served first, that have jobs available and (`$2`, unless
/// negative) fewer running than the per-tenant limit; at most `$1` of them. `lock` and `joined`
/// are appended to the statement: row locks and a FROM item. Unless `counted`, a tenant's
/// running jobs are not counted (read as 0) and `$2` must be negative.
fn claim_tenants_sql(lock: &str, joined: &str, counted: bool) -> String {
    let (running, limited) = if counted {
        (
            "t.started - COALESCE(l.runs, 0)",
            "($2 < 0 OR t.started - COALESCE(l.runs, 0) < $2)",
        )
    } else {
        ("CAST(0 AS BIGINT)", "$2 < 0")
    };
    format!(
        "SELECT t.tenant_id, t.available, {running}, \
         CAST(CASE WHEN EXISTS (SELECT 1 FROM automations a WHERE a.tenant_id = t.tenant_id \
           AND a.max_running IS NOT NULL) THEN 1 ELSE 0 END AS BIGINT) FROM queue_tenants t \
         LEFT JOIN queue_left l ON l.tenant_id = t.tenant_id{joined} \
         WHERE t.available > 0 AND {limited} \
         ORDER BY t.served_at, t.tenant_id LIMIT $1{lock}"
    )
}

/// Jobs claimed from several tenants, in turns: the first job of each tenant (in `order`), then
/// the second of each, and so on. Each tenant's jobs keep their order in `jobs`.
fn in_turns(order: &[&str], jobs: Vec<ClaimedJob>) -> Vec<ClaimedJob> {
    // One queue per tenant, and one more last for a job of a tenant not in `order` (none is).
    let mut per_tenant: Vec<std::collections::VecDeque<ClaimedJob>> = vec![Default::default(); order.len() + 1];
    let place: HashMap<&str, usize> = order.iter().enumerate().map(|(i, t)| (*t, i)).collect();
    let n = jobs.len();
    for job in jobs {
        let i = place.get(job.tenant.as_str()).copied().unwrap_or(order.len());
        per_tenant[i].push_back(job);
    }
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        for jobs in &mut per_tenant {
            if let Some(j) = jobs.pop_front() {
                out.push(j);
            }
        }
    }
    out
}

/// What a claim reads of a job: its `jobs` row's id, tenant, automation, agent, plugin, input,
/// trigger, priority, most attempts and root, and the attempt it starts.
type ClaimTuple = (
    i64,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
);

impl Store {
    /// `FOR UPDATE` on PostgreSQL (row locks for read-then-write); nothing on SQLite, whose
    /// write transactions are already exclusive.
    pub(crate) fn for_update(&self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// `FOR UPDATE SKIP LOCKED` on PostgreSQL (claims by several nodes pass each other's rows);
    /// nothing on SQLite.
    pub(crate) fn skip_locked(&self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// Starts a transaction that will write, on the writers' pool. On SQLite it takes the write
    /// lock at once (`BEGIN IMMEDIATE`): a deferred transaction that reads first can fail to
    /// upgrade its lock without waiting.
    pub(crate) async fn write_tx(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(match self.backend() {
            Backend::Sqlite => self.writer().begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer().begin().await?,
        })
    }

    /// Adds jobs in one transaction. Jobs whose idempotency key exists already are not added;
    /// their existing id is returned as a duplicate.
    pub async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<Enqueued>, StoreError> {
        let mut tx = self.write_tx().await?;
        let out = enqueue_in(&mut tx, jobs).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Moves scheduled jobs whose time has come to available. Returns how many moved.
    pub async fn stage_due(&self, now: i64) -> Result<u64, StoreError> {
        // Called four times a second by every node: a read first, so nothing takes the write
        // lock while nothing is due.
        let due: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM queue WHERE state = 'scheduled' AND run_at <= $1 LIMIT 1")
                .bind(now)
                .fetch_optional(self.pool())
                .await?;
        if due.is_none() {
            return Ok(0);
        }
        let mut tx = self.write_tx().await?;
        // Count what this statement moved, not what a prior read saw: on PostgreSQL another node
        // may stage the same rows concurrently, and its rows must not be counted twice.
        let moved: Vec<(i64, String)> = sqlx::query_as(
            "UPDATE queue SET state = 'available' WHERE state = 'scheduled' AND run_at <= $1 RETURNING id, tenant_id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        set_jobs(&mut tx, moved.iter().map(|(id, _)| *id), "state = 'available'").await?;
        bump_available_each(&mut tx, moved.iter().map(|(_, tenant)| tenant.as_str()), 1).await?;
        tx.commit().await?;
        Ok(moved.len() as u64)
    }

    /// Claims up to `max` available jobs for `node`, leased for `lease`, fairly across tenants.
    pub async fn claim(&self, node: &str, max: usize, lease: Duration) -> Result<Vec<ClaimedJob>, StoreError> {
        self.claim_limited(node, max, lease, None).await
    }

    /// [`Store::claim`], taking no tenant past `per_tenant` jobs running at once (across nodes).
    pub async fn claim_limited(
        &self,
        node: &str,
        max: usize,
        lease: Duration,
        per_tenant: Option<usize>,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let max = max.clamp(1, MAX_CLAIM);
        let now = now_micros();
        let lease_until = now + lease.as_micros() as i64;
        let claim = Claim {
            node,
            max,
            lease_until,
            now,
        };
        if self.backend() == Backend::Postgres
            && per_tenant.is_none()
            && let Some(jobs) = self.claim_unlimited(&claim).await?
        {
            return Ok(jobs);
        }
        self.claim_counted(&claim, per_tenant).await
    }

    /// PostgreSQL's claim when no limit on running jobs applies to the tenants it looks at (no
    /// per-tenant limit, no automation with `max_running`): two statements on a claims connection
    /// (`Store::claims`), outside a transaction. The tenants are read without locking them, and
    /// one statement chooses, takes and counts every tenant's share (its own transaction). No
    /// count needs to be exact here, so no tenant's row is held across the claim; a claim in a
    /// transaction cost two more round trips (its BEGIN and COMMIT), and the serving loop, which
    /// waits on its claims, waited on each for longer the busier the machine was. `None` when a
    /// limit applies after all: the caller claims in a transaction ([`Store::claim_counted`]).
    async fn claim_unlimited(&self, claim: &Claim<'_>) -> Result<Option<Vec<ClaimedJob>>, StoreError> {
        let mut conn = self.claims().acquire().await?;
        let tenants: Vec<ClaimTenant> = sqlx::query_as(&claim_tenants_sql("", "", false))
            .bind(MAX_TENANTS_PER_CLAIM)
            .bind(-1i64)
            .fetch_all(&mut *conn)
            .await?;
        if tenants.iter().any(|(_, _, _, limited)| *limited != 0) {
            return Ok(None);
        }
        let available: Vec<i64> = tenants.iter().map(|(_, available, ..)| *available).collect();
        let shares: Vec<(&str, usize)> = tenants
            .iter()
            .zip(fair_shares(claim.max, &available))
            .filter(|(_, share)| *share > 0)
            .map(|((tenant, ..), share)| (tenant.as_str(), share))
            .collect();
        let jobs = take_postgres(&mut conn, &shares, claim).await?;
        let order: Vec<&str> = shares.iter().map(|(tenant, _)| *tenant).collect();
        Ok(Some(in_turns(&order, jobs)))
    }

    /// A claim in one transaction that holds the rows of the tenants it claims for, so that their
    /// counts of running jobs are exact across nodes: what a per-tenant limit (`per_tenant`) and
    /// the automations' `max_running` need, and every claim on SQLite.
    async fn claim_counted(&self, claim: &Claim<'_>, per_tenant: Option<usize>) -> Result<Vec<ClaimedJob>, StoreError> {
        let Claim {
            node,
            max,
            lease_until,
            now,
        } = *claim;
        let mut tx = self.write_tx().await?;
        let skip_locked = self.skip_locked();
        // The runs that stopped counting are read without a lock: one that stops meanwhile is
        // still counted as running, which only errs on the side of the limit.
        let (lock, ordered) = match self.backend() {
            Backend::Sqlite => ("", String::new()),
            Backend::Postgres => (" FOR UPDATE OF t SKIP LOCKED", in_rank_order()),
        };
        // Whether a tenant has automations with a `max_running` limit decides how its jobs are
        // claimed (below).
        let tenants: Vec<ClaimTenant> = sqlx::query_as(&claim_tenants_sql(lock, &ordered, true))
            .bind(MAX_TENANTS_PER_CLAIM)
            .bind(per_tenant.map_or(-1, |n| n as i64))
            .fetch_all(&mut *tx)
            .await?;
        if tenants.is_empty() {
            return Ok(Vec::new());
        }
        let claimable: Vec<i64> = tenants
            .iter()
            .map(|(_, available, running, _)| match per_tenant {
                Some(limit) => (*available).min(limit as i64 - running),
                None => *available,
            })
            .collect();
        let shares = fair_shares(max, &claimable);
        let mut claimed: Vec<ClaimedJob> = Vec::new();
        // On PostgreSQL, the shares of tenants without automation limits, taken together below.
        let mut unlimited: Vec<(&str, usize)> = Vec::new();
        for ((tenant, _, _, limited), limit) in tenants.iter().zip(shares) {
            if limit == 0 {
                continue;
            }
            if *limited == 0 && self.backend() == Backend::Postgres {
                unlimited.push((tenant, limit));
                continue;
            }
            // Jobs of automations at their `max_running` limit are passed over, so they never
            // block the tenant's other work. The counts are exact across nodes: claims of one
            // tenant are serialised by its locked `queue_tenants` row (one writer at a time on
            // SQLite). The limits are read first and the candidates by a plain scan of the
            // `queue_available` index in rank order, a plan that does not depend on statistics.
            let limits: Vec<(String, i64, i64)> = if *limited == 0 {
                Vec::new()
            } else {
                sqlx::query_as(
                    "SELECT a.name, a.max_running, (SELECT COUNT(*) FROM queue r \
                   WHERE r.tenant_id = a.tenant_id AND r.automation = a.name AND r.state = 'running') \
                 FROM automations a WHERE a.tenant_id = $1 AND a.max_running IS NOT NULL",
                )
                .bind(tenant)
                .fetch_all(&mut *tx)
                .await?
            };
            let full: Vec<&str> = limits
                .iter()
                .filter(|(_, max, running)| running >= max)
                .map(|(name, _, _)| name.as_str())
                .collect();
            // Placeholders in the order they appear in the text (SQLite's `?` are positional).
            let mut p = Placeholders::for_conn(&tx);
            let (t, at) = (p.next(), p.next());
            let passed_over = if full.is_empty() {
                String::new()
            } else {
                format!(
                    " AND (automation IS NULL OR automation NOT IN (SELECT r.value ->> 0 FROM {}))",
                    p.json_rows()
                )
            };
            let n = p.next();
            let sql = rows_sql(
                p.is_sqlite(),
                &["id", "automation", "rank_key"],
                &format!(
                    "FROM queue WHERE tenant_id = {t} AND state = 'available' AND run_at <= {at}{passed_over} \
                     ORDER BY rank_key DESC, id LIMIT {n}{skip_locked}"
                ),
            );
            let mut q = sqlx::query(&sql).bind(tenant).bind(now);
            if !full.is_empty() {
                q = q.bind(json_rows(full.iter().map(|name| serde_json::json!([name])).collect()));
            }
            q = q.bind(limit as i64);
            let mut candidates: Vec<(i64, Option<String>, i64)> = fetch_rows(&mut tx, p.is_sqlite(), q).await?;
            // The rank order, which SQLite's JSON array does not promise to keep.
            candidates.sort_by_key(|&(id, _, rank)| (std::cmp::Reverse(rank), id));
            let candidates: Vec<(i64, Option<String>)> = candidates.into_iter().map(|(id, a, _)| (id, a)).collect();
            let limits: HashMap<String, (i64, i64)> = limits
                .into_iter()
                .map(|(name, max, running)| (name, (max, running)))
                .collect();
            let ids = within_automation_limits(candidates, &limits);
            if ids.is_empty() {
                continue;
            }
            let mut jobs = take_from_queue(
                &mut tx,
                &Take {
                    node,
                    ids: &ids,
                    lease_until,
                    now,
                },
            )
            .await?;
            let n = jobs.len() as i64;
            sqlx::query("UPDATE queue_tenants SET available = available - $2, started = started + $2, served_at = $3 WHERE tenant_id = $1")
                .bind(tenant)
                .bind(n)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            // RETURNING does not promise an order: restore the claim order.
            let order: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
            jobs.sort_by_key(|j| order.get(&j.id).copied());
            claimed.extend(jobs);
        }
        if !unlimited.is_empty() {
            claimed.extend(take_postgres(&mut tx, &unlimited, claim).await?);
        }
        tx.commit().await?;
        let order: Vec<&str> = tenants.iter().map(|(tenant, ..)| tenant.as_str()).collect();
        Ok(in_turns(&order, claimed))
    }

    /// Extends the leases of `ids` held by `node`; returns the ids whose lease it still holds
    /// (a job missing from the answer was recovered by another node or cancelled: stop it).
    pub async fn heartbeat(&self, node: &str, ids: &[i64], lease: Duration) -> Result<Vec<i64>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut p = Placeholders::new(self.backend() == Backend::Sqlite);
        let (until, list, n) = (p.next(), p.id_in("id"), p.next());
        // The lease is in no index, so on PostgreSQL this is a HOT update. (No condition on the
        // state: see "The node implies the state" in the module doc.)
        let held: Vec<(i64,)> = sqlx::query_as(&format!(
            "UPDATE queue SET lease_until = {until} WHERE {list} AND claimed_by = {n} RETURNING id"
        ))
        .bind(now_micros() + lease.as_micros() as i64)
        .bind(p.ids(ids.iter().copied()))
        .bind(node)
        .fetch_all(self.pool())
        .await?;
        Ok(held.into_iter().map(|(id,)| id).collect())
    }

    /// Records success of a job `node` holds, and in the same transaction enqueues the
    /// automations that run after it (`trigger: { after: ... }`) with its output as their input,
    /// so a completed job never loses or doubles its follow-ups. Returns false if the node no
    /// longer held the job (its lease expired and the job was recovered, or it was cancelled): the
    /// result is then discarded, never recorded twice.
    pub async fn complete(&self, node: &str, id: i64, output: &str) -> Result<bool, StoreError> {
        let finished = Finished {
            id,
            output: output.to_string(),
            logs: None,
            fuel: 0,
        };
        Ok(self.complete_many(node, &[finished]).await?[0])
    }

    /// [`Store::complete`] for many jobs in one transaction (a worker's batch): one commit instead
    /// of one per job. Returns, per job, whether its result was recorded.
    pub async fn complete_many(&self, node: &str, results: &[Finished]) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.write_tx().await?;
        let now = now_micros();
        let mut recorded = vec![false; results.len()];
        // Runs that stopped counting as running, per tenant (SQLite's path; PostgreSQL's
        // statement counts its own).
        let mut finished: BTreeMap<String, i64> = Default::default();
        // A few statements per chunk, so a batch costs a few round trips instead of one per job.
        for (chunk_no, chunk) in results.chunks(COMPLETE_CHUNK).enumerate() {
            let position: HashMap<i64, usize> = chunk.iter().enumerate().map(|(pos, f)| (f.id, pos)).collect();
            let done = match self.backend() {
                Backend::Sqlite => record_chunk_sqlite(&mut tx, chunk, &position, node, now, &mut finished).await?,
                Backend::Postgres => record_chunk_postgres(&mut tx, chunk, node, now).await?,
            };
            let mut succeeded = Vec::new();
            let mut held_for_approval = Vec::new();
            for (id, tenant, automation, state, ..) in &done {
                let Some(&pos) = position.get(id) else { continue };
                recorded[chunk_no * COMPLETE_CHUNK + pos] = true;
                match (automation.as_deref(), state.as_str()) {
                    // Output awaiting approval triggers nothing until a person approves it.
                    (_, "awaiting_approval") => held_for_approval.push(*id),
                    (Some(automation), _) => succeeded.push(Succeeded {
                        tenant,
                        automation,
                        id: *id,
                        output: &chunk[pos].output,
                    }),
                    (None, _) => {}
                }
            }
            queue_rows_from_jobs(&mut tx, &held_for_approval).await?;
            enqueue_followers_of(&mut tx, &succeeded).await?;
        }
        for (tenant, n) in &finished {
            bump_running(&mut tx, tenant, -n).await?;
        }
        tx.commit().await?;
        Ok(recorded)
    }

    /// Puts a dead or cancelled job of `tenant` back in the queue with a fresh set of attempts
    /// (the dashboard's one-click retry). Returns false if there is no such job.
    pub async fn retry_dead(&self, tenant: &str, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let revived = retry_in(&mut tx, tenant, id).await?;
        tx.commit().await?;
        Ok(revived)
    }

    /// Records a failed attempt of a job `node` holds: retried with backoff while attempts remain
    /// and `retryable`, else dead. `None` if the node no longer held the job.
    pub async fn fail(&self, node: &str, id: i64, attempt: &FailedAttempt<'_>) -> Result<Option<Failed>, StoreError> {
        let FailedAttempt {
            kind,
            error,
            retryable,
            logs,
            fuel,
            plugin_hash,
        } = *attempt;
        let now = now_micros();
        let mut tx = self.write_tx().await?;
        type Row = (String, i64, Option<i64>, i64, i64, i64, String, Option<String>);
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT q.tenant_id, q.attempt, q.started_at, j.max_attempts, j.priority, q.parked, j.agent, j.automation \
             FROM queue q JOIN jobs j ON j.id = q.id WHERE q.id = $1 AND q.claimed_by = $2 AND q.state = 'running'{}",
            self.for_update()
        ))
        .bind(id)
        .bind(node)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((tenant, attempt, started_at, max_attempts, priority, parked, agent, automation)) = row else {
            return Ok(None);
        };
        let outcome = if retryable && attempt < max_attempts {
            let run_at = now + backoff(id, attempt as u32).as_micros() as i64;
            sqlx::query(
                "UPDATE queue SET state = 'scheduled', run_at = $2, rank_key = $3, lease_until = NULL, claimed_by = NULL \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(run_at)
            .bind(rank_key(priority as i32, run_at))
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE jobs SET state = 'scheduled', run_at = $2, error_kind = $3, error = $4, logs = $5, claimed_by = NULL, \
                 plugin_hash = $6, attempt = $7, started_at = $8 WHERE id = $1",
            )
            .bind(id)
            .bind(run_at)
            .bind(kind)
            .bind(error)
            .bind(logs)
            .bind(plugin_hash)
            .bind(attempt)
            .bind(started_at)
            .execute(&mut *tx)
            .await?;
            Failed::Retrying { run_at }
        } else {
            sqlx::query("UPDATE queue SET state = 'dead', finished_at = $2, lease_until = NULL, claimed_by = NULL WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE jobs SET state = 'dead', error_kind = $2, error = $3, finished_at = $4, logs = $5, plugin_hash = $6, \
                 attempt = $7, started_at = $8, claimed_by = $9 WHERE id = $1",
            )
            .bind(id)
            .bind(kind)
            .bind(error)
            .bind(now)
            .bind(logs)
            .bind(plugin_hash)
            .bind(attempt)
            .bind(started_at)
            .bind(node)
            .execute(&mut *tx)
            .await?;
            count_finished(&mut tx, &[id], 1).await?;
            Failed::Dead
        };
        // The fuel of a failed attempt was burnt all the same (an endless loop burns the most).
        let spent = RunFuel {
            id,
            tenant: &tenant,
            agent: &agent,
            automation: automation.as_deref(),
            attempt,
            fuel,
        };
        end_attempt(&mut tx, parked, spent, now).await?;
        tx.commit().await?;
        Ok(Some(outcome))
    }

    /// Suspends a running job `node` holds whose plugin asked for approval: it waits in
    /// `awaiting_approval`, holding no worker and no lease, until the answer sends it back to the
    /// queue. The attempt's fuel is billed now. `false` if the node no longer held the job.
    pub async fn suspend(&self, node: &str, id: i64, logs: Option<&str>, fuel: u64) -> Result<bool, StoreError> {
        let now = now_micros();
        let mut tx = self.write_tx().await?;
        let row: Option<(String, i64, i64, Option<i64>)> = sqlx::query_as(
            "UPDATE queue SET state = 'awaiting_approval', lease_until = NULL, claimed_by = NULL \
             WHERE id = $1 AND claimed_by = $2 AND state = 'running' RETURNING tenant_id, parked, attempt, started_at",
        )
        .bind(id)
        .bind(node)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((tenant, parked, attempt, started_at)) = row else {
            return Ok(false);
        };
        let (agent, automation): (String, Option<String>) = sqlx::query_as(
            "UPDATE jobs SET state = 'awaiting_approval', logs = $2, claimed_by = NULL, attempt = $3, started_at = $4 \
             WHERE id = $1 RETURNING agent, automation",
        )
        .bind(id)
        .bind(logs)
        .bind(attempt)
        .bind(started_at)
        .fetch_one(&mut *tx)
        .await?;
        let spent = RunFuel {
            id,
            tenant: &tenant,
            agent: &agent,
            automation: automation.as_deref(),
            attempt,
            fuel,
        };
        end_attempt(&mut tx, parked, spent, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Returns running jobs whose lease expired (their node died or hung) to the queue, as an
    /// attempt that failed for a platform reason, and records what it did as a resolved incident
    /// per node in the same transaction. Returns how many were recovered.
    pub async fn recover_expired(&self, now: i64) -> Result<u64, StoreError> {
        // Called every second on every node: a read first, so nothing takes the write lock while
        // every lease is alive.
        let lapsed: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM queue WHERE state = 'running' AND lease_until < $1 LIMIT 1")
                .bind(now)
                .fetch_optional(self.pool())
                .await?;
        if lapsed.is_none() {
            return Ok(0);
        }
        let mut tx = self.write_tx().await?;
        // id, tenant, attempt, max attempts, priority, parked, the node that held it, its start.
        type Expired = (i64, String, i64, i64, i64, i64, Option<String>, Option<i64>);
        let expired: Vec<Expired> = sqlx::query_as(
            "SELECT q.id, q.tenant_id, q.attempt, j.max_attempts, j.priority, q.parked, q.claimed_by, q.started_at \
             FROM queue q JOIN jobs j ON j.id = q.id WHERE q.state = 'running' AND q.lease_until < $1",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut recovered = 0;
        // Per node: runs requeued, runs that had no attempt left. Per tenant: the change of its
        // running and available jobs.
        let mut per_node: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let mut per_tenant: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        let mut died = Vec::new();
        for (id, tenant, attempt, max_attempts, priority, parked, node, started_at) in &expired {
            // A lost node is the platform's fault, not the plugin's: the job always gets its run,
            // but a job that keeps killing nodes still ends dead after its attempts.
            let requeue = attempt < max_attempts;
            let (state, finished_at) = if requeue {
                ("available", None)
            } else {
                ("dead", Some(now))
            };
            let changed = sqlx::query(
                "UPDATE queue SET state = $2, rank_key = $3, lease_until = NULL, claimed_by = NULL, finished_at = $5 \
                 WHERE id = $1 AND state = 'running' AND lease_until < $4",
            )
            .bind(id)
            .bind(state)
            .bind(rank_key(*priority as i32, now))
            .bind(now)
            .bind(finished_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                // Recovered by another node, or its lease was renewed meanwhile.
                continue;
            }
            sqlx::query(
                "UPDATE jobs SET state = $2, claimed_by = NULL, finished_at = $3, error_kind = 'lease_expired', \
                 error = 'the node running this job stopped responding', attempt = $4, started_at = $5 WHERE id = $1",
            )
            .bind(id)
            .bind(state)
            .bind(finished_at)
            .bind(attempt)
            .bind(started_at)
            .execute(&mut *tx)
            .await?;
            recovered += 1;
            let counts = per_node.entry(node.as_deref().unwrap_or("?")).or_default();
            let moved = per_tenant.entry(tenant.as_str()).or_default();
            moved.0 -= unparked(*parked);
            if requeue {
                counts.0 += 1;
                moved.1 += 1;
            } else {
                counts.1 += 1;
                died.push(*id);
            }
        }
        count_finished(&mut tx, &died, 1).await?;
        // Counters in the order of their tenants, as every writer takes them, so two
        // transactions never wait for each other's rows crosswise.
        for (tenant, (running, available)) in per_tenant {
            bump_running(&mut tx, tenant, running).await?;
            if available > 0 {
                bump_available(&mut tx, tenant, available).await?;
            }
        }
        for (node, (requeued, dead)) in per_node {
            let summary = format!(
                "node `{node}` stopped renewing the leases of {} running job(s)",
                requeued + dead
            );
            let mut action = format!("requeued {requeued} to run again on a live node");
            if dead > 0 {
                action.push_str(&format!("; {dead} had used all their attempts and ended dead"));
            }
            crate::monitor::record_resolved(
                &mut *tx,
                &crate::NewIncident {
                    tenant: crate::PLATFORM,
                    kind: crate::monitor::RUNS_REQUEUED,
                    subject: node,
                    severity: "warning",
                    summary: &summary,
                    action: Some(&action),
                    escalate: None,
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(recovered)
    }

    /// Hands jobs `node` holds back to the queue without counting an attempt (a node shutting
    /// down). Returns how many it released.
    pub async fn release(&self, node: &str, ids: &[i64]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut tx = self.write_tx().await?;
        let mut p = Placeholders::for_conn(&tx);
        let (list, n) = (p.id_in("id"), p.next());
        // The attempt does not count. The jobs' rows show them as they were before the claim
        // (see the module doc), which is what they are again.
        let released: Vec<(i64, String, i64)> = sqlx::query_as(&format!(
            "UPDATE queue SET state = 'available', claimed_by = NULL, lease_until = NULL, attempt = attempt - 1, \
             started_at = NULL WHERE {list} AND claimed_by = {n} RETURNING id, tenant_id, parked"
        ))
        .bind(p.ids(ids.iter().copied()))
        .bind(node)
        .fetch_all(&mut *tx)
        .await?;
        for (_, tenant, parked) in &released {
            bump_running(&mut tx, tenant, -unparked(*parked)).await?;
            bump_available(&mut tx, tenant, 1).await?;
        }
        tx.commit().await?;
        Ok(released.len() as u64)
    }

    /// Marks a running job `node` holds as parked (waiting for its child runs) or no longer
    /// parked. A parked job keeps its lease but leaves the tenant's count of running jobs, so the
    /// children it waits for are not held back by the tenant's limit; taking it back may briefly
    /// exceed the limit, which is better than a tree that can never finish. Returns false when the
    /// node no longer holds the job or it was already in that state.
    pub async fn park(&self, node: &str, id: i64, parked: bool) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let flag = i64::from(parked);
        let row: Option<(String,)> = sqlx::query_as(
            "UPDATE queue SET parked = $3 WHERE id = $1 AND claimed_by = $2 AND state = 'running' AND parked <> $3 \
             RETURNING tenant_id",
        )
        .bind(id)
        .bind(node)
        .bind(flag)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((tenant,)) = row else { return Ok(false) };
        bump_running(&mut tx, &tenant, if parked { -1 } else { 1 }).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Jobs whose queue row disagrees with their state, as (job, its state, its queue row's
    /// state): a job has a queue row, in its own state, exactly while it waits, runs, waits for a
    /// person or is dead-lettered, except that a running job's row shows it available (see the
    /// module doc). Reads every job: for tests and checks by hand, not for a serving path.
    pub async fn queue_mismatches(&self) -> Result<Vec<(i64, Option<String>, Option<String>)>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT j.id, j.state, q.state FROM jobs j LEFT JOIN queue q ON q.id = j.id \
             WHERE (q.id IS NULL AND j.state IN ({LIVE})) OR j.state = 'running' \
             OR (q.id IS NOT NULL AND q.state <> j.state AND NOT (q.state = 'running' AND j.state = 'available')) \
             UNION ALL SELECT q.id, NULL, q.state FROM queue q LEFT JOIN jobs j ON j.id = q.id WHERE j.id IS NULL \
             ORDER BY 1"
        ))
        .fetch_all(self.pool())
        .await?)
    }

    /// The tenant's queue counters: jobs available, and running but not parked.
    pub async fn queue_counts(&self, tenant: &str) -> Result<(i64, i64), StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT t.available, t.started - COALESCE(l.runs, 0) FROM queue_tenants t \
             LEFT JOIN queue_left l ON l.tenant_id = t.tenant_id WHERE t.tenant_id = $1",
        )
        .bind(tenant)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.unwrap_or((0, 0)))
    }

    /// The jobs of one tenant, newest first, at most `limit`.
    pub async fn jobs(&self, tenant: &str, limit: i64) -> Result<Vec<JobRow>, StoreError> {
        type Row = (
            i64,
            String,
            Option<String>,
            String,
            String,
            i64,
            i64,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            i64,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, tenant_id, automation, agent, state, attempt, max_attempts, run_at, output, error_kind, error, claimed_by, \
             created_at FROM runs WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(tenant)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| JobRow {
                id: r.0,
                tenant: r.1,
                automation: r.2,
                agent: r.3,
                state: r.4,
                attempt: r.5 as u32,
                max_attempts: r.6 as u32,
                run_at: r.7,
                output: r.8,
                error_kind: r.9,
                error: r.10,
                claimed_by: r.11,
                created_at: r.12,
            })
            .collect())
    }

    /// Cancels a job of `tenant` that has not finished. Returns false if there is no such job or
    /// it already finished. A running job's node learns of it at its next heartbeat.
    pub async fn cancel(&self, tenant: &str, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let cancelled = cancel_in(&mut tx, tenant, id).await?;
        tx.commit().await?;
        Ok(cancelled)
    }
}

pub(crate) async fn bump_available(tx: &mut Tx, tenant: &str, n: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO queue_tenants (tenant_id, available, started, served_at) VALUES ($1, $2, 0, 0) \
         ON CONFLICT (tenant_id) DO UPDATE SET available = queue_tenants.available + $2",
    )
    .bind(tenant)
    .bind(n)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves each tenant's available count by `sign` per time `tenants` names it (the tenants of the
/// jobs a statement moved): one write per tenant, not per job.
pub(crate) async fn bump_available_each<'a>(
    tx: &mut Tx,
    tenants: impl IntoIterator<Item = &'a str>,
    sign: i64,
) -> Result<(), StoreError> {
    let mut per_tenant: BTreeMap<&str, i64> = BTreeMap::new();
    for tenant in tenants {
        *per_tenant.entry(tenant).or_default() += sign;
    }
    for (tenant, n) in per_tenant {
        bump_available(tx, tenant, n).await?;
    }
    Ok(())
}

/// How much a running job that ends counts against its tenant's running jobs: a parked one (waiting
/// for its children) was taken off the count when it parked.
pub(crate) fn unparked(parked: i64) -> i64 {
    if parked == 0 { 1 } else { 0 }
}

/// An attempt that ended without a result (it failed, or waits for a person): it no longer counts
/// as running (unless it was parked already) and its fuel is billed.
async fn end_attempt(tx: &mut Tx, parked: i64, spent: RunFuel<'_>, now: i64) -> Result<(), StoreError> {
    bump_running(tx, spent.tenant, -unparked(parked)).await?;
    insert_fuel(tx, &[spent], now).await
}

pub(crate) async fn bump_running(tx: &mut Tx, tenant: &str, n: i64) -> Result<(), StoreError> {
    // Counted as runs that stopped counting (see migration 25), never on the claims' row.
    sqlx::query(
        "INSERT INTO queue_left (tenant_id, runs) VALUES ($1, $2) \
         ON CONFLICT (tenant_id) DO UPDATE SET runs = queue_left.runs + $2",
    )
    .bind(tenant)
    .bind(-n)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether `job`, enqueued at `now`, goes straight to the available state (see
/// [`AVAILABLE_AHEAD`]) rather than waiting scheduled.
fn starts_available(job: &NewJob, now: i64) -> bool {
    job.run_at.unwrap_or(now) <= now + AVAILABLE_AHEAD.as_micros() as i64
}

/// Adds jobs inside `tx` (see [`Store::enqueue`]); the scheduler uses it to enqueue a tick's job
/// in the same transaction that records the tick.
///
/// One `INSERT … SELECT` over a JSON array per [`ENQUEUE_CHUNK`] jobs: a job whose
/// idempotency key exists is skipped by the database itself (on PostgreSQL a concurrent insert of
/// the same key waits for the other transaction instead of failing), and its existing id is then
/// read back. Ids are assigned in the order of the array's elements on both backends, so the created
/// rows, sorted by id, line up with the jobs that were not skipped.
pub(crate) async fn enqueue_in(tx: &mut Tx, jobs: &[NewJob]) -> Result<Vec<Enqueued>, StoreError> {
    for j in jobs {
        check_new(j)?;
    }
    let now = now_micros();
    let mut out: Vec<Option<Enqueued>> = vec![None; jobs.len()];
    // A key repeated within the batch refers to its first occurrence.
    let mut first_of_key: HashMap<(&str, &str), usize> = HashMap::new();
    let mut repeats: Vec<(usize, usize)> = Vec::new();
    let mut fresh: Vec<usize> = Vec::with_capacity(jobs.len());
    for (i, j) in jobs.iter().enumerate() {
        match &j.idempotency_key {
            Some(key) => match first_of_key.entry((j.tenant.as_str(), key.as_str())) {
                Entry::Occupied(first) => repeats.push((i, *first.get())),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                    fresh.push(i);
                }
            },
            None => fresh.push(i),
        }
    }
    let mut added: BTreeMap<&str, i64> = BTreeMap::new();
    let mut skipped: Vec<usize> = Vec::new();
    for chunk in fresh.chunks(ENQUEUE_CHUNK) {
        let mut p = Placeholders::for_conn(tx);
        // (`WHERE true` keeps SQLite from reading `ON CONFLICT` as a join constraint of the
        // SELECT.)
        let (at, rows) = (p.next(), p.json_rows());
        let sql = format!(
            "INSERT INTO jobs (created_at, attempt, tenant_id, automation, agent, plugin, input, trigger_kind, priority, \
             state, max_attempts, run_at, idempotency_key) \
             SELECT {at}, 0, r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4, r.value ->> 5, \
             CAST(r.value ->> 6 AS BIGINT), r.value ->> 7, CAST(r.value ->> 8 AS BIGINT), \
             CAST(r.value ->> 9 AS BIGINT), r.value ->> 10 FROM {rows} WHERE true \
             ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
        );
        // On PostgreSQL the same statement adds the queue rows; SQLite, which has no writing
        // CTEs, adds them from the new rows by rowid next.
        let sql = if p.is_sqlite() {
            format!("{sql} RETURNING id, tenant_id, idempotency_key")
        } else {
            let step = p.next();
            format!(
                "WITH j AS ({sql} RETURNING id, tenant_id, automation, priority, state, run_at, created_at, idempotency_key), \
                 q AS (INSERT INTO queue (id, tenant_id, automation, priority, state, rank_key, run_at, created_at) \
                   SELECT id, tenant_id, automation, priority, state, priority * {step} - run_at, run_at, created_at FROM j) \
                 SELECT id, tenant_id, idempotency_key FROM j"
            )
        };
        let rows = chunk
            .iter()
            .map(|&i| {
                let j = &jobs[i];
                let run_at = j.run_at.unwrap_or(now);
                let state = if starts_available(j, now) {
                    "available"
                } else {
                    "scheduled"
                };
                serde_json::json!([
                    j.tenant,
                    j.automation,
                    j.agent,
                    j.plugin,
                    j.input,
                    j.trigger,
                    j.priority,
                    state,
                    j.max_attempts,
                    run_at,
                    j.idempotency_key
                ])
            })
            .collect();
        let mut q = sqlx::query_as::<_, (i64, String, Option<String>)>(&sql)
            .bind(now)
            .bind(json_rows(rows));
        if !p.is_sqlite() {
            q = q.bind(PRIORITY_STEP.as_micros() as i64);
        }
        let mut created = q.fetch_all(&mut **tx).await?;
        created.sort_unstable_by_key(|(id, _, _)| *id);
        if p.is_sqlite() {
            queue_rows_from_jobs(tx, &created.iter().map(|(id, _, _)| *id).collect::<Vec<_>>()).await?;
        }
        let created_keys: HashSet<(&str, &str)> = created
            .iter()
            .filter_map(|(_, tenant, key)| key.as_deref().map(|k| (tenant.as_str(), k)))
            .collect();
        let mut ids = created.iter().map(|(id, _, _)| *id);
        for &i in chunk {
            let j = &jobs[i];
            let was_created = match &j.idempotency_key {
                Some(key) => created_keys.contains(&(j.tenant.as_str(), key.as_str())),
                None => true,
            };
            if !was_created {
                skipped.push(i);
                continue;
            }
            let id = ids
                .next()
                .ok_or_else(|| StoreError::Corrupt("an enqueued job returned no id".into()))?;
            out[i] = Some(Enqueued::Created(id));
            if starts_available(j, now) {
                *added.entry(j.tenant.as_str()).or_default() += 1;
            }
        }
    }
    for i in skipped {
        let j = &jobs[i];
        let (id,): (i64,) = sqlx::query_as("SELECT id FROM jobs WHERE tenant_id = $1 AND idempotency_key = $2")
            .bind(&j.tenant)
            .bind(&j.idempotency_key)
            .fetch_one(&mut **tx)
            .await?;
        out[i] = Some(Enqueued::Duplicate(id));
    }
    for (i, first) in repeats {
        out[i] = out[first].map(|e| Enqueued::Duplicate(e.id()));
    }
    for (tenant, n) in added {
        bump_available(tx, tenant, n).await?;
    }
    out.into_iter()
        .map(|e| e.ok_or_else(|| StoreError::Corrupt("a job was neither created nor found".into())))
        .collect()
}

/// Enqueues, inside `tx`, the automations of `tenant` that run after `automation`, with `output`
/// (of job `id`) as their input.
pub(crate) async fn enqueue_followers(
    tx: &mut Tx,
    tenant: &str,
    automation: &str,
    id: i64,
    output: &str,
) -> Result<(), StoreError> {
    let done = Succeeded {
        tenant,
        automation,
        id,
        output,
    };
    enqueue_followers_of(tx, std::slice::from_ref(&done)).await
}

/// A run that succeeded, whose automation's followers run next.
pub(crate) struct Succeeded<'a> {
    pub tenant: &'a str,
    pub automation: &'a str,
    pub id: i64,
    pub output: &'a str,
}

/// An automation that runs after another: tenant, the automation it follows, its name, agent,
/// plugin, priority.
type Follower = (String, String, String, String, String, i64);

/// [`enqueue_followers`] for many runs at once (a batch of results): one read of the followers
/// of all their automations, one enqueue. A burst of scheduled runs records a thousand results
/// at a time, and reading each run's followers by itself cost the recorder a round trip and a
/// scan of the tenant's automations per run.
pub(crate) async fn enqueue_followers_of(tx: &mut Tx, done: &[Succeeded<'_>]) -> Result<(), StoreError> {
    if done.is_empty() {
        return Ok(());
    }
    let followed: BTreeSet<(&str, &str)> = done.iter().map(|d| (d.tenant, d.automation)).collect();
    let mut rows = Vec::with_capacity(followed.len());
    for (tenant, automation) in &followed {
        let spec = serde_json::to_string(&mc_config::Trigger::After {
            automation: automation.to_string(),
        })
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        rows.push(serde_json::json!([tenant, spec, automation]));
    }
    let mut p = Placeholders::for_conn(tx);
    let sql = format!(
        "SELECT a.tenant_id, k.followed, a.name, a.agent, g.plugin, a.priority FROM automations a \
         JOIN agents g ON g.tenant_id = a.tenant_id AND g.name = a.agent \
         JOIN (SELECT r.value ->> 0 AS tenant_id, r.value ->> 1 AS spec, r.value ->> 2 AS followed FROM {}) k \
           ON a.tenant_id = k.tenant_id AND a.trigger_spec = k.spec \
         WHERE a.enabled = 1 ORDER BY a.tenant_id, a.name",
        p.json_rows()
    );
    let followers: Vec<Follower> = sqlx::query_as(&sql).bind(json_rows(rows)).fetch_all(&mut **tx).await?;
    if followers.is_empty() {
        return Ok(());
    }
    let mut by_followed: HashMap<(&str, &str), Vec<&Follower>> = HashMap::new();
    for f in &followers {
        by_followed.entry((f.0.as_str(), f.1.as_str())).or_default().push(f);
    }
    let mut jobs: Vec<NewJob> = Vec::new();
    for d in done {
        let Some(list) = by_followed.get(&(d.tenant, d.automation)) else {
            continue;
        };
        jobs.extend(list.iter().map(|(_, _, name, agent, plugin, priority)| NewJob {
            idempotency_key: Some(format!("after:{}:{name}", d.id)),
            tenant: d.tenant.to_string(),
            automation: Some(name.clone()),
            agent: agent.clone(),
            plugin: plugin.clone(),
            input: d.output.to_string(),
            trigger: "after".into(),
            priority: *priority as i32,
            max_attempts: FOLLOW_UP_ATTEMPTS,
            run_at: None,
        }));
    }
    enqueue_in(tx, &jobs).await?;
    Ok(())
}

/// [`Store::for_update`] for a statement run in `tx`.
fn for_update_in(tx: &Tx) -> &'static str {
    if Placeholders::for_conn(tx).is_sqlite() {
        ""
    } else {
        " FOR UPDATE"
    }
}

/// [`Store::retry_dead`] inside a transaction.
pub(crate) async fn retry_in(tx: &mut Tx, tenant: &str, id: i64) -> Result<bool, StoreError> {
    let lock = for_update_in(tx);
    let row: Option<(String,)> = sqlx::query_as(&format!(
        "SELECT state FROM jobs WHERE id = $1 AND tenant_id = $2{lock}"
    ))
    .bind(id)
    .bind(tenant)
    .fetch_optional(&mut **tx)
    .await?;
    if !row.is_some_and(|(state,)| matches!(state.as_str(), "dead" | "cancelled")) {
        return Ok(false);
    }
    // Out of the finished runs' totals while it is still counted there.
    count_finished(tx, &[id], -1).await?;
    sqlx::query("UPDATE jobs SET state = 'available', attempt = 0, run_at = $2, finished_at = NULL, claimed_by = NULL WHERE id = $1")
        .bind(id)
        .bind(now_micros())
        .execute(&mut **tx)
        .await?;
    // A dead job is still in the queue (dead-lettered), a cancelled one is not.
    sqlx::query("DELETE FROM queue WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    queue_rows_from_jobs(tx, &[id]).await?;
    bump_available(tx, tenant, 1).await?;
    Ok(true)
}

/// [`Store::cancel`] inside a transaction.
pub(crate) async fn cancel_in(tx: &mut Tx, tenant: &str, id: i64) -> Result<bool, StoreError> {
    let lock = for_update_in(tx);
    type Row = (String, i64, i64, Option<i64>, Option<String>);
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT state, parked, attempt, started_at, claimed_by FROM queue WHERE id = $1 AND tenant_id = $2{lock}"
    ))
    .bind(id)
    .bind(tenant)
    .fetch_optional(&mut **tx)
    .await?;
    // A job out of the queue has finished; one held for a person or dead-lettered is not
    // waiting for a worker, and has its own ways out (a decision, a retry).
    let Some((state, parked, attempt, started_at, node)) = row else {
        return Ok(false);
    };
    if !matches!(state.as_str(), "scheduled" | "available" | "running") {
        return Ok(false);
    }
    sqlx::query("DELETE FROM queue WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    // A running job's attempt, start and node are on its queue row (see the module doc); a job
    // that waits has neither a start nor a node there, and keeps those of its last attempt.
    sqlx::query(
        "UPDATE jobs SET state = 'cancelled', finished_at = $2, attempt = $3, started_at = COALESCE($4, started_at), \
         claimed_by = COALESCE($5, claimed_by) WHERE id = $1",
    )
    .bind(id)
    .bind(now_micros())
    .bind(attempt)
    .bind(started_at.filter(|_| state == "running"))
    .bind(node)
    .execute(&mut **tx)
    .await?;
    count_finished(tx, &[id], 1).await?;
    match state.as_str() {
        "available" => bump_available(tx, tenant, -1).await?,
        "running" => bump_running(tx, tenant, -unparked(parked)).await?,
        _ => {}
    }
    Ok(true)
}

/// Sets `assignments` (our own SQL, never input) on the jobs rows `ids`: a change of queue rows
/// mirrored on their jobs, in the same transaction.
pub(crate) async fn set_jobs(
    tx: &mut Tx,
    ids: impl IntoIterator<Item = i64>,
    assignments: &str,
) -> Result<(), StoreError> {
    let ids: Vec<i64> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut p = Placeholders::for_conn(tx);
    let list = p.id_in("id");
    sqlx::query(&format!("UPDATE jobs SET {assignments} WHERE {list}"))
        .bind(p.ids(ids))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Adds the queue rows of the jobs `ids` from their rows in `jobs` (state, due time, and the rank
/// key of their priority and due time): for jobs just created, and jobs that come back to the
/// queue (a retry of a dead-lettered or cancelled run, output held for approval).
pub(crate) async fn queue_rows_from_jobs(tx: &mut Tx, ids: &[i64]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut p = Placeholders::for_conn(tx);
    let step = p.next();
    let list = p.id_in("id");
    sqlx::query(&format!(
        "INSERT INTO queue (id, tenant_id, automation, priority, state, rank_key, run_at, created_at, attempt, started_at) \
         SELECT id, tenant_id, automation, priority, state, priority * {step} - run_at, run_at, created_at, attempt, started_at \
         FROM jobs WHERE {list}"
    ))
    .bind(PRIORITY_STEP.as_micros() as i64)
    .bind(p.ids(ids.iter().copied()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What [`take_from_queue`] claims.
struct Take<'a> {
    node: &'a str,
    /// Available jobs, chosen (and on PostgreSQL locked) by the claim.
    ids: &'a [i64],
    lease_until: i64,
    now: i64,
}

/// A claim: for which node, how many jobs at most, until when they are leased, and when.
#[derive(Clone, Copy)]
struct Claim<'a> {
    node: &'a str,
    max: usize,
    lease_until: i64,
    now: i64,
}

/// Takes each tenant's share (`shares`: tenant, most jobs) of its available jobs on PostgreSQL
/// (tenants without `max_running` limits) in one statement: chooses and locks each tenant's jobs
/// in rank order, moves their queue rows to running, counts them on the tenants' rows and returns
/// them with what the run needs of their `jobs` rows, in rank order (sorted by the statement: its
/// RETURNING and join promise none). One round trip, where the claim's general path takes five
/// per tenant.
///
/// - The steps after the choice find their rows by primary key from an array of the chosen ids:
///   a join with the chosen rows let the planner, which guesses a `LIMIT $n` at thousands of rows,
///   hash the whole queue.
/// - The tenants' rows are locked in the order of their ids before they are counted: two nodes
///   claiming for the same tenants then never wait on each other in a circle.
/// - `conn` may be in a transaction or not; without one the statement is its own.
async fn take_postgres(
    conn: &mut sqlx::AnyConnection,
    shares: &[(&str, usize)],
    claim: &Claim<'_>,
) -> Result<Vec<ClaimedJob>, StoreError> {
    if shares.is_empty() {
        return Ok(Vec::new());
    }
    let shares = json_rows(
        shares
            .iter()
            .map(|(tenant, n)| serde_json::json!([tenant, n]))
            .collect(),
    );
    // Placeholders in the order they are bound.
    let mut p = Placeholders::new(false);
    let (share_rows, now, node, until) = (p.json_rows(), p.next(), p.next(), p.next());
    let sql = format!(
        "WITH s AS (SELECT r.value ->> 0 AS tenant_id, CAST(r.value ->> 1 AS BIGINT) AS share FROM {share_rows}), \
         c AS (SELECT q.id FROM s CROSS JOIN LATERAL (SELECT id FROM queue WHERE tenant_id = s.tenant_id \
           AND state = 'available' AND run_at <= {now} ORDER BY rank_key DESC, id LIMIT s.share FOR UPDATE SKIP LOCKED) AS q), \
         u AS (UPDATE queue SET state = 'running', parked = 0, claimed_by = {node}, lease_until = {until}, \
           attempt = attempt + 1, started_at = {now} WHERE id = ANY(ARRAY(SELECT id FROM c)) \
           RETURNING id, tenant_id, attempt, rank_key), \
         n AS (SELECT tenant_id, COUNT(*) AS n FROM u GROUP BY tenant_id), \
         k AS (SELECT tenant_id FROM queue_tenants WHERE tenant_id = ANY(ARRAY(SELECT tenant_id FROM n)) \
           ORDER BY tenant_id FOR UPDATE), \
         t AS (UPDATE queue_tenants SET available = available - n.n, started = started + n.n, served_at = {now} \
           FROM n JOIN k ON k.tenant_id = n.tenant_id WHERE queue_tenants.tenant_id = n.tenant_id) \
         SELECT j.id, j.tenant_id, j.automation, j.agent, j.plugin, j.input, j.trigger_kind, j.priority, \
           j.max_attempts, COALESCE(j.root_id, j.id), u.attempt \
         FROM jobs j JOIN u ON u.id = j.id WHERE j.id = ANY(ARRAY(SELECT id FROM u)) ORDER BY u.rank_key DESC, j.id"
    );
    let rows: Vec<ClaimTuple> = sqlx::query_as(&sql)
        .bind(shares)
        .bind(claim.now)
        .bind(claim.node)
        .bind(claim.lease_until)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|r| claimed(r, claim.lease_until)).collect())
}

/// A claimed job from what the claim read of it.
fn claimed(r: ClaimTuple, lease_until: i64) -> ClaimedJob {
    ClaimedJob {
        id: r.0,
        tenant: r.1,
        automation: r.2,
        agent: r.3,
        plugin: r.4,
        input: r.5,
        trigger: r.6,
        priority: r.7 as i32,
        attempt: r.10 as u32,
        max_attempts: r.8 as u32,
        lease_until,
        root: r.9,
    }
}

/// Moves available jobs to running for a node and returns them as claimed, in no particular
/// order. Only their queue rows change: each holds the node, its lease, the attempt it starts and
/// when (the job's row learns them when the attempt ends; see the module doc).
async fn take_from_queue(tx: &mut Tx, take: &Take<'_>) -> Result<Vec<ClaimedJob>, StoreError> {
    // The candidates are the claim's own: locked by it on PostgreSQL, inside its exclusive
    // transaction on SQLite. So every one of them is taken, and no condition on their state,
    // which would let PostgreSQL's planner scan a partial index instead of looking them up (see
    // "The node implies the state" in the module doc).
    let mut p = Placeholders::for_conn(tx);
    let (n, until, at, list) = (p.next(), p.next(), p.next(), p.id_in("id"));
    let ids = p.ids(take.ids.iter().copied());
    let update = format!(
        "UPDATE queue SET state = 'running', parked = 0, claimed_by = {n}, lease_until = {until}, \
         attempt = attempt + 1, started_at = {at} WHERE {list}"
    );
    let returned = ["id", "attempt"];
    let sql = returning_sql(p.is_sqlite(), &update, &returned);
    let query = sqlx::query(&sql)
        .bind(take.node)
        .bind(take.lease_until)
        .bind(take.now)
        .bind(&ids);
    let attempts: Vec<(i64, i64)> = updated_rows(tx, query, "queue", &returned, take.ids).await?;
    let attempts: HashMap<i64, i64> = attempts.into_iter().collect();
    // What the run needs of the job, read (not written: see the module doc). A join with the
    // queue rows instead of the attempts above took PostgreSQL three times as long.
    let mut p = Placeholders::for_conn(tx);
    let list = p.id_in("id");
    let columns = [
        "id",
        "tenant_id",
        "automation",
        "agent",
        "plugin",
        "input",
        "trigger_kind",
        "priority",
        "max_attempts",
        "COALESCE(root_id, id) AS root",
        // The attempt comes from the queue rows' update above.
        "CAST(0 AS BIGINT) AS attempt",
    ];
    let sql = rows_sql(p.is_sqlite(), &columns, &format!("FROM jobs WHERE {list}"));
    let rows: Vec<ClaimTuple> = fetch_rows(tx, p.is_sqlite(), sqlx::query(&sql).bind(&ids)).await?;
    rows.into_iter()
        .map(|mut r| {
            r.10 = *attempts
                .get(&r.0)
                .ok_or_else(|| StoreError::Corrupt(format!("claimed job {} has no queue row", r.0)))?;
            Ok(claimed(r, take.lease_until))
        })
        .collect()
}

/// Records a chunk of results on SQLite, one step a statement (in process, a statement costs no
/// round trip): takes the jobs `node` holds out of the queue, writes their results, counts them
/// and bills their fuel (`position`: each result's place in `chunk` by its job's id). Adds to
/// `finished` the runs that stopped counting as running.
async fn record_chunk_sqlite(
    tx: &mut Tx,
    chunk: &[Finished],
    position: &HashMap<i64, usize>,
    node: &str,
    now: i64,
    finished: &mut BTreeMap<String, i64>,
) -> Result<Vec<Recorded>, StoreError> {
    let mut p = Placeholders::for_conn(tx);
    let (list, n) = (p.id_in("id"), p.next());
    let ids = p.ids(chunk.iter().map(|f| f.id));
    let held_by_node = format!("FROM queue WHERE {list} AND claimed_by = {n}");
    // Read, then delete: nothing comes between in SQLite's exclusive transaction. The attempt
    // and its start leave with the queue row, for the job's row.
    let read = rows_sql(
        true,
        &["id", "tenant_id", "parked", "attempt", "started_at"],
        &held_by_node,
    );
    let held: Vec<(i64, String, i64, i64, Option<i64>)> =
        fetch_rows(tx, true, sqlx::query(&read).bind(&ids).bind(node)).await?;
    if held.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query(&format!("DELETE {held_by_node}"))
        .bind(&ids)
        .bind(node)
        .execute(&mut **tx)
        .await?;
    let mut kept: Vec<Ended> = Vec::with_capacity(held.len());
    for (id, tenant, parked, attempt, started_at) in &held {
        if let Some(&pos) = position.get(id) {
            kept.push(Ended {
                result: &chunk[pos],
                attempt: *attempt,
                started_at: *started_at,
            });
        }
        *finished.entry(tenant.clone()).or_default() += unparked(*parked);
    }
    let done = record_results(tx, &kept, node, now).await?;
    count_runs(tx, done.iter().map(|d| (d.1.as_str(), d.6, d.3.as_str())), 1).await?;
    let fuel: Vec<RunFuel> = done
        .iter()
        .filter_map(|(id, tenant, automation, _, agent, attempt, _)| {
            let &pos = position.get(id)?;
            Some(RunFuel {
                id: *id,
                tenant,
                agent,
                automation: automation.as_deref(),
                attempt: *attempt,
                fuel: chunk[pos].fuel,
            })
        })
        .collect();
    insert_fuel(tx, &fuel, now).await?;
    Ok(done)
}

/// Records a chunk of results on PostgreSQL in one statement of writing CTEs: out of the queue
/// (what `node` still holds is what gets recorded), onto the jobs' rows with the attempts that
/// left the queue, the run totals, the fuel rows with their running totals, and the tenants'
/// counts of runs that stopped. The same steps as SQLite's, one round trip instead of six: the
/// recorder is the stage the serving loop waits on, and between its statements the database's
/// backend sat idle in the transaction while this process got round to sending the next.
/// Parameters are bound (never written into the text), so the statement is prepared once and its
/// plan kept: every step finds its rows by primary key or from the step before it.
async fn record_chunk_postgres(
    tx: &mut Tx,
    chunk: &[Finished],
    node: &str,
    now: i64,
) -> Result<Vec<Recorded>, StoreError> {
    let (month, day) = crate::metering::month_and_day(now);
    // Each result by its job's id in one JSON object, parsed once (a materialised one-row CTE)
    // and looked up by key: a join of the jobs with the rows of a JSON array let the planner,
    // when statistics put few rows in `running`, rescan the whole array for every job (250 × 250
    // comparisons and 40-95 ms a batch).
    let doc: serde_json::Map<String, serde_json::Value> = chunk
        .iter()
        .map(|f| (f.id.to_string(), serde_json::json!([f.output, f.logs, f.fuel])))
        .collect();
    let field = |i: usize| format!("d.doc -> CAST(jobs.id AS TEXT) ->> {i}");
    let sql = format!(
        "WITH d AS MATERIALIZED (SELECT CAST($1 AS jsonb) AS doc), \
         q AS (DELETE FROM queue WHERE id = ANY(CAST($2 AS BIGINT[])) AND claimed_by = $3 \
               RETURNING id, tenant_id, parked, attempt, started_at), \
         j AS (UPDATE jobs SET state = {RESULT_STATE}, output = {output}, logs = {logs}, attempt = q.attempt, \
               started_at = q.started_at, claimed_by = $3, finished_at = $4 FROM q, d WHERE jobs.id = q.id \
               RETURNING jobs.id, jobs.tenant_id, jobs.automation, jobs.state, jobs.agent, jobs.attempt, \
               jobs.created_at, CAST({fuel} AS BIGINT) AS fuel), \
         {fuel_rows}, \
         rt AS (INSERT INTO run_totals (tenant_id, hour, state, runs) \
                SELECT tenant_id, created_at - created_at % {bucket}, state, COUNT(*) FROM j \
                WHERE state IN ({finished}) GROUP BY tenant_id, created_at - created_at % {bucket}, state), \
         ql AS (INSERT INTO queue_left (tenant_id, runs) \
                SELECT tenant_id, SUM(CASE WHEN parked = 0 THEN 1 ELSE 0 END) FROM q GROUP BY tenant_id \
                ORDER BY tenant_id ON CONFLICT (tenant_id) DO UPDATE SET runs = queue_left.runs + EXCLUDED.runs) \
         SELECT id, tenant_id, automation, state, agent, attempt, created_at FROM j",
        output = field(0),
        logs = field(1),
        fuel = field(2),
        fuel_rows = crate::metering::fuel_ctes(
            "(SELECT tenant_id, agent, automation, CAST(id AS TEXT) AS run_id, attempt, fuel FROM j) AS s",
            "$4",
            "$5",
            "$6"
        ),
        bucket = crate::totals::RUN_TOTALS_BUCKET_MICROS,
        finished = crate::totals::FINISHED_STATES,
    );
    let ids = Placeholders::for_conn(tx).ids(chunk.iter().map(|f| f.id));
    Ok(sqlx::query_as(&sql)
        .bind(serde_json::Value::Object(doc).to_string())
        .bind(ids)
        .bind(node)
        .bind(now)
        .bind(day)
        .bind(month)
        .fetch_all(&mut **tx)
        .await?)
}

/// A successful result's state: awaiting approval when its automation asks for one.
const RESULT_STATE: &str = "CASE WHEN jobs.automation IS NOT NULL AND EXISTS (SELECT 1 FROM automations a \
     WHERE a.tenant_id = jobs.tenant_id AND a.name = jobs.automation AND a.approval IS NOT NULL) \
     THEN 'awaiting_approval' ELSE 'succeeded' END";

/// A recorded result: the job, its tenant, its automation, the state it is in now, its agent, its
/// attempt and when it was created.
type Recorded = (i64, String, Option<String>, String, String, i64, i64);

/// A successful attempt on its way to its job's row, with what its queue row held of it.
struct Ended<'a> {
    result: &'a Finished,
    attempt: i64,
    started_at: Option<i64>,
}

/// Writes each successful result on its job's row with the attempt it ended (run by `node`):
/// succeeded, or awaiting approval when its automation asks for one. (The caller has taken the
/// jobs out of the queue, which proves `node` held them.) SQLite's step of
/// [`record_chunk_sqlite`]: it walks the JSON rows and finds each job by its rowid.
async fn record_results(tx: &mut Tx, results: &[Ended<'_>], node: &str, now: i64) -> Result<Vec<Recorded>, StoreError> {
    if results.is_empty() {
        return Ok(Vec::new());
    }
    let columns = [
        "id",
        "tenant_id",
        "automation",
        "state",
        "agent",
        "attempt",
        "created_at",
    ];
    let ids: Vec<i64> = results.iter().map(|e| e.result.id).collect();
    let mut p = Placeholders::for_conn(tx);
    let (n, at, rows) = (p.next(), p.next(), p.json_rows());
    // One array per result: fields 0-3 are written, 4 finds the job.
    let update = format!(
        "UPDATE jobs SET state = {RESULT_STATE}, output = r.value ->> 0, logs = r.value ->> 1, \
         attempt = CAST(r.value ->> 2 AS BIGINT), started_at = CAST(r.value ->> 3 AS BIGINT), claimed_by = {n}, \
         finished_at = {at} FROM {rows} WHERE jobs.id = CAST(r.value ->> 4 AS BIGINT)"
    );
    let sql = returning_sql(true, &update, &columns);
    let rows = results
        .iter()
        .map(|e| serde_json::json!([e.result.output, e.result.logs, e.attempt, e.started_at, e.result.id]))
        .collect();
    let query = sqlx::query(&sql).bind(node).bind(now).bind(json_rows(rows));
    updated_rows(tx, query, "jobs", &columns, &ids).await
}

/// An UPDATE for [`updated_rows`]: on PostgreSQL with `RETURNING` the `columns`; on SQLite as it
/// is, the rows read back after it as one row (see [`rows_sql`]).
fn returning_sql(sqlite: bool, update: &str, columns: &[&str]) -> String {
    if sqlite {
        update.to_string()
    } else {
        format!("{update} RETURNING {}", columns.join(", "))
    }
}

/// Runs an UPDATE of `table` made by [`returning_sql`] and returns the `columns` of the rows `ids`
/// it wrote.
async fn updated_rows<'q, T>(
    tx: &mut Tx,
    update: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    table: &str,
    columns: &[&str],
    ids: &[i64],
) -> Result<Vec<T>, StoreError>
where
    T: serde::de::DeserializeOwned + for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
{
    let mut p = Placeholders::for_conn(tx);
    if !p.is_sqlite() {
        return fetch_rows(tx, false, update).await;
    }
    update.execute(&mut **tx).await?;
    let read = rows_sql(true, columns, &format!("FROM {table} WHERE {}", p.id_in("id")));
    fetch_rows(tx, true, sqlx::query(&read).bind(p.ids(ids.iter().copied()))).await
}

/// `SELECT {columns} {tail}`, for [`fetch_rows`]. On SQLite it is wrapped to give one row, the
/// JSON array of the rows, built by SQLite itself: sqlx hands SQLite's rows over one at a time
/// from its worker thread to the task, each copied and converted, a few microseconds a row, which
/// on the queue's path (hundreds of rows a statement) was a third of the writer's time.
/// Each of `columns` is a column's name or `expression AS name`.
fn rows_sql(sqlite: bool, columns: &[&str], tail: &str) -> String {
    let select = columns.join(", ");
    if sqlite {
        let names: Vec<&str> = columns
            .iter()
            .map(|c| c.rsplit_once(" AS ").map_or(*c, |(_, name)| name))
            .collect();
        format!(
            "SELECT json_group_array(json_array({})) FROM (SELECT {select} {tail})",
            names.join(", ")
        )
    } else {
        format!("SELECT {select} {tail}")
    }
}

/// The rows of a statement made by [`rows_sql`], as tuples in the order of its columns.
async fn fetch_rows<'q, T>(
    tx: &mut Tx,
    sqlite: bool,
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
) -> Result<Vec<T>, StoreError>
where
    T: serde::de::DeserializeOwned + for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
{
    use sqlx::Row;
    if sqlite {
        let doc: String = query.fetch_one(&mut **tx).await?.try_get(0)?;
        serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt(format!("rows read as JSON: {e}")))
    } else {
        let rows = query.fetch_all(&mut **tx).await?;
        Ok(rows.iter().map(T::from_row).collect::<Result<_, _>>()?)
    }
}
