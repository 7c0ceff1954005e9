//! The scheduler pass: due ticks since each automation's durable mark, catch-up and overlap
//! policies, and one compare-and-set transaction per automation that records and enqueues them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use mc_config::Trigger;
use mc_runtime::CancelToken;
use mc_store::{NewJob, Schedulable, TickOutcome};

use crate::{DEFAULT_MAX_ATTEMPTS, Engine, EngineError, lock};

/// A tick this close to now counts as on time: the `skip` catch-up policy still fires it.
pub const CATCH_UP_GRACE: Duration = Duration::from_secs(60);
/// Most ticks one automation handles in one pass (a per-second schedule after a day of downtime
/// has 86,400); the rest are handled in the following passes.
pub const MAX_TICKS_PER_PASS: usize = 1_000;
/// How far ahead the scheduler prepares ticks: their jobs are enqueued before the tick and become
/// claimable at it, so a tick's start does not wait for the pass that records it. Within
/// [`mc_store::AVAILABLE_AHEAD`], so prepared jobs are enqueued as available.
pub const PREPARE_AHEAD: Duration = Duration::from_millis(500);
/// Longest the scheduler keeps its list of schedules without reading it again, even when no
/// definition seems to have changed (a safety net under the fingerprint).
pub const SCHEDULES_REREAD: Duration = Duration::from_secs(30);
/// Most missed ticks the `all` catch-up policy runs; older ones are recorded as missed.
pub const MAX_CATCH_UP_RUNS: usize = 100;

/// What a pass did and when the next is due (µs).
struct Pass {
    fired: usize,
    /// When the next pass has work: the next tick minus [`PREPARE_AHEAD`].
    next_due: Option<i64>,
    /// The earliest tick whose job this pass prepared ahead of time.
    first_start: Option<i64>,
}

/// The schedules the last pass read, with their marks as this node last set them.
pub(crate) struct ScheduleCache {
    fingerprint: (i64, i64, i64, i64),
    read_at: std::time::Instant,
    list: Vec<Schedulable>,
}

fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

/// The first tick of `s` after `mark` that is still to come after `now`.
fn next_tick(s: &Schedulable, mark: i64, now: i64) -> Option<i64> {
    match &s.trigger {
        Trigger::Cron { expr, timezone } => {
            let cron = mc_schedule::CronSchedule::parse(expr).ok()?;
            let tz = mc_schedule::parse_timezone(timezone).ok()?;
            cron.next_after(Timestamp::from_microsecond(mark.max(now)).ok()?, &tz)
                .map(micros)
        }
        Trigger::Interval { seconds } => {
            let step = (*seconds as i64).max(1) * 1_000_000;
            let behind = (now - mark).max(0) / step;
            Some(mark + (behind + 1) * step)
        }
        Trigger::At { time } => time
            .parse::<Timestamp>()
            .ok()
            .map(micros)
            .filter(|at| *at > mark && *at > now),
        _ => None,
    }
}

/// The ticks of `s` in (`after`, `now`], at most [`MAX_TICKS_PER_PASS`].
fn due_ticks(s: &Schedulable, after: i64, now: i64) -> Vec<i64> {
    let mut ticks = Vec::new();
    match &s.trigger {
        Trigger::Cron { expr, timezone } => {
            let (Ok(cron), Ok(tz)) = (
                mc_schedule::CronSchedule::parse(expr),
                mc_schedule::parse_timezone(timezone),
            ) else {
                // Validated when applied; a stored expression that no longer parses fires nothing.
                return ticks;
            };
            let Ok(mut t) = Timestamp::from_microsecond(after) else {
                return ticks;
            };
            while ticks.len() < MAX_TICKS_PER_PASS {
                match cron.next_after(t, &tz) {
                    Some(next) if micros(next) <= now => {
                        ticks.push(micros(next));
                        t = next;
                    }
                    _ => break,
                }
            }
        }
        Trigger::Interval { seconds } => {
            let step = (*seconds as i64).max(1) * 1_000_000;
            let mut t = after + step;
            while t <= now && ticks.len() < MAX_TICKS_PER_PASS {
                ticks.push(t);
                t += step;
            }
        }
        Trigger::At { time } => {
            if let Ok(at) = time.parse::<Timestamp>() {
                let at = micros(at);
                if at > after && at <= now {
                    ticks.push(at);
                }
            }
        }
        _ => {}
    }
    ticks
}

impl Engine {
    /// The job of tick `tick`, available from the tick on (or now, for a tick caught up late).
    fn job_for(&self, s: &Schedulable, tick: i64, now: i64) -> NewJob {
        let kind = match s.trigger {
            Trigger::Cron { .. } => "cron",
            Trigger::Interval { .. } => "interval",
            _ => "at",
        };
        NewJob {
            tenant: s.tenant.clone(),
            automation: Some(s.automation.clone()),
            agent: s.agent.clone(),
            plugin: s.plugin.clone(),
            input: s.input.clone(),
            trigger: kind.into(),
            priority: s.priority,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            run_at: Some(tick.max(now)),
            // The same tick can never enqueue two jobs, even if two nodes raced past the mark.
            idempotency_key: Some(format!("tick:{}:{tick}", s.automation)),
        }
    }

    /// One pass over every schedule at time `now`. Returns how many jobs were enqueued.
    pub async fn schedule_once(&self, now: Timestamp) -> Result<usize, EngineError> {
        Ok(self.schedule_pass(now).await?.fired)
    }

    /// A pass: every automation with ticks due by `now` + [`PREPARE_AHEAD`] is handled in one
    /// transaction; the jobs of ticks still to come are available from their tick on.
    async fn schedule_pass(&self, now: Timestamp) -> Result<Pass, EngineError> {
        let now_us = micros(now);
        let lead = self.config.prepare_ahead.as_micros() as i64;
        let horizon = now_us + lead;
        let mut next_due: Option<i64> = None;
        let mut first_start: Option<i64> = None;
        let mut due: Vec<(Schedulable, i64, Vec<i64>)> = Vec::new();
        let mut unseen: Vec<(String, String)> = Vec::new();
        // The schedules as of the last pass, unless a definition changed since or the cache is
        // older than SCHEDULES_REREAD; marks are kept current below. A mark another node moved
        // makes its compare-and-set fail, which drops the cache.
        let fingerprint = self.store.schedule_fingerprint().await?;
        let cached = lock(&self.schedules)
            .take()
            .filter(|c| c.fingerprint == fingerprint && c.read_at.elapsed() < SCHEDULES_REREAD);
        let mut cache = match cached {
            Some(c) => c,
            None => ScheduleCache {
                fingerprint,
                read_at: std::time::Instant::now(),
                list: self.store.schedulable().await?,
            },
        };
        for s in &cache.list {
            let Some(mark) = s.last_tick else {
                // First sight: start from now. Ticks before an automation existed are not missed.
                unseen.push((s.tenant.clone(), s.automation.clone()));
                next_due = Some(now_us);
                continue;
            };
            let ticks = due_ticks(s, mark, horizon);
            let from = ticks.last().copied().unwrap_or(mark);
            if let Some(n) = next_tick(s, from, horizon) {
                next_due = Some(next_due.map_or(n - lead, |d: i64| d.min(n - lead)));
            }
            if ticks.len() == MAX_TICKS_PER_PASS {
                // More are due than one pass handles: come back at once.
                next_due = Some(now_us);
            }
            if !ticks.is_empty() {
                due.push((s.clone(), mark, ticks));
            }
        }
        let idle = |next_due| Pass {
            fired: 0,
            next_due,
            first_start: None,
        };
        if !unseen.is_empty() {
            // Re-read next pass for the marks just set.
            self.store.init_schedules(&unseen, now_us).await?;
            return Ok(idle(next_due));
        }
        if due.is_empty() {
            *lock(&self.schedules) = Some(cache);
            return Ok(idle(next_due));
        }
        let busy = if due.iter().any(|(s, _, _)| s.overlap == "skip") {
            self.store.unfinished_automations().await?
        } else {
            Default::default()
        };
        // Whether a tick is skipped for overlap is decided at the tick, not ahead of it: the
        // ticks still to come of a `skip` automation that is busy, or fires a past tick in this
        // pass, wait for the pass at their time.
        for (s, _, ticks) in &mut due {
            let past = ticks.iter().any(|t| *t <= now_us);
            if s.overlap == "skip" && (past || busy.contains(&(s.tenant.clone(), s.automation.clone()))) {
                if let Some(&t) = ticks.iter().find(|t| **t > now_us) {
                    next_due = Some(next_due.map_or(t, |d: i64| d.min(t)));
                }
                ticks.retain(|t| *t <= now_us);
            }
        }
        due.retain(|(_, _, ticks)| !ticks.is_empty());
        let mut batch = Vec::with_capacity(due.len());
        let mut counts = Vec::with_capacity(due.len());
        for (s, mark, ticks) in &due {
            let last = *ticks.last().unwrap_or(mark);
            // Ticks still to come always fire (prepared ahead); the catch-up policy decides
            // which of the past ones run.
            let (past, coming): (Vec<i64>, Vec<i64>) = ticks.iter().partition(|t| **t <= now_us);
            if let Some(&first) = coming.first() {
                first_start = Some(first_start.map_or(first, |f: i64| f.min(first)));
            }
            let mut fire: Vec<i64> = match (past.last(), s.catch_up.as_str()) {
                (None, _) => vec![],
                (Some(&latest), "skip") if now_us - latest <= CATCH_UP_GRACE.as_micros() as i64 => vec![latest],
                (Some(_), "skip") => vec![],
                (Some(_), "all") => past.iter().rev().take(MAX_CATCH_UP_RUNS).rev().copied().collect(),
                (Some(&latest), _) => vec![latest],
            };
            fire.extend(&coming);
            let running = s.overlap == "skip" && busy.contains(&(s.tenant.clone(), s.automation.clone()));
            let mut records: Vec<(i64, TickOutcome)> = Vec::with_capacity(ticks.len());
            for &t in ticks {
                let fired_before = records.iter().any(|(_, o)| matches!(o, TickOutcome::Fired(_)));
                let outcome = if !fire.contains(&t) {
                    TickOutcome::Missed(match s.catch_up.as_str() {
                        "skip" => "missed while no node was running (catch-up policy: skip)".into(),
                        "all" => format!("more than {MAX_CATCH_UP_RUNS} ticks were missed; only the latest run"),
                        _ => "missed while no node was running; the latest missed tick ran instead (catch-up policy: once)".into(),
                    })
                } else if running || (s.overlap == "skip" && fired_before) {
                    TickOutcome::Skipped(
                        "the previous run of this automation had not finished (overlap policy: skip)".into(),
                    )
                } else {
                    TickOutcome::Fired(self.job_for(s, t, now_us))
                };
                records.push((t, outcome));
            }
            counts.push(
                records
                    .iter()
                    .filter(|(_, o)| matches!(o, TickOutcome::Fired(_)))
                    .count(),
            );
            batch.push(mc_store::Advance {
                tenant: s.tenant.clone(),
                automation: s.automation.clone(),
                from: *mark,
                to: last,
                ticks: records,
            });
        }
        let results = self.store.advance_schedules(batch).await?;
        let mut fired = 0;
        let mut all_moved = true;
        let mut marks: HashMap<(&str, &str), i64> = HashMap::new();
        // `batch` was built from `due` in order, so the results line up with it.
        for ((result, n), (s, mark, ticks)) in results.iter().zip(counts).zip(&due) {
            match result {
                Some(_) => {
                    fired += n;
                    marks.insert((&s.tenant, &s.automation), *ticks.last().unwrap_or(mark));
                }
                None => {
                    all_moved = false;
                    tracing::debug!(tenant = %s.tenant, automation = %s.automation, "another node handled these ticks")
                }
            }
        }
        if all_moved {
            for s in &mut cache.list {
                if let Some(to) = marks.get(&(s.tenant.as_str(), s.automation.as_str())) {
                    s.last_tick = Some(*to);
                }
            }
            *lock(&self.schedules) = Some(cache);
        }
        if fired > 0 {
            self.wake.notify_one();
        }
        Ok(Pass {
            fired,
            next_due,
            first_start,
        })
    }

    pub(crate) async fn schedule_loop(self: Arc<Self>, stop: CancelToken) {
        while !stop.is_cancelled() {
            let started = std::time::Instant::now();
            let next_due = match self.schedule_pass(Timestamp::now()).await {
                Ok(pass) => {
                    if let Some(start) = pass.first_start {
                        // Prepared jobs become claimable at their tick: wake the workers then,
                        // on a timer of its own, so a slow pass cannot delay it.
                        let engine = self.clone();
                        tokio::spawn(async move {
                            let wait = start.saturating_sub(micros(Timestamp::now())).max(0) as u64;
                            tokio::time::sleep(Duration::from_micros(wait)).await;
                            engine.wake.notify_one();
                        });
                    }
                    pass.next_due
                }
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler pass failed; retrying");
                    None
                }
            };
            // Sleep until the next pass is due, but never longer than `schedule_every`:
            // schedules applied meanwhile by another process are picked up at that pace.
            let now = micros(Timestamp::now());
            let wait = next_due
                .map(|d| Duration::from_micros(d.saturating_sub(now).max(0) as u64))
                .unwrap_or(self.config.schedule_every)
                .min(self.config.schedule_every);
            tracing::trace!(pass = ?started.elapsed(), ?wait, "scheduler pass");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => {}
            }
        }
    }
}
