//! The scheduler pass: due ticks since each automation's durable mark, catch-up and overlap
//! policies, and one compare-and-set transaction per automation that records and enqueues them.

use std::time::Duration;

use jiff::Timestamp;
use mc_config::Trigger;
use mc_runtime::CancelToken;
use mc_store::{NewJob, Schedulable, TickOutcome};

use crate::{DEFAULT_MAX_ATTEMPTS, Engine, EngineError};

/// A tick this close to now counts as on time: the `skip` catch-up policy still fires it.
pub const CATCH_UP_GRACE: Duration = Duration::from_secs(60);
/// Most ticks one automation handles in one pass (a per-second schedule after a day of downtime
/// has 86,400); the rest are handled in the following passes.
pub const MAX_TICKS_PER_PASS: usize = 1_000;
/// Most missed ticks the `all` catch-up policy runs; older ones are recorded as missed.
pub const MAX_CATCH_UP_RUNS: usize = 100;

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
    fn job_for(&self, s: &Schedulable, tick: i64) -> NewJob {
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
            run_at: None,
            // The same tick can never enqueue two jobs, even if two nodes raced past the mark.
            idempotency_key: Some(format!("tick:{}:{tick}", s.automation)),
        }
    }

    /// One pass over every schedule at time `now`. Returns how many jobs were enqueued.
    pub async fn schedule_once(&self, now: Timestamp) -> Result<usize, EngineError> {
        Ok(self.schedule_pass(now).await?.0)
    }

    /// A pass: every due automation is handled in one transaction. Returns the jobs enqueued and
    /// the earliest tick still to come (when the next pass is worth running).
    async fn schedule_pass(&self, now: Timestamp) -> Result<(usize, Option<i64>), EngineError> {
        let now_us = micros(now);
        let mut next_due: Option<i64> = None;
        let mut due: Vec<(Schedulable, i64, Vec<i64>)> = Vec::new();
        let mut unseen: Vec<(String, String)> = Vec::new();
        for s in self.store.schedulable().await? {
            let Some(mark) = s.last_tick else {
                // First sight: start from now. Ticks before an automation existed are not missed.
                unseen.push((s.tenant.clone(), s.automation.clone()));
                next_due = Some(now_us);
                continue;
            };
            let ticks = due_ticks(&s, mark, now_us);
            let from = ticks.last().copied().unwrap_or(mark);
            if let Some(n) = next_tick(&s, from, now_us) {
                next_due = Some(next_due.map_or(n, |d: i64| d.min(n)));
            }
            if ticks.len() == MAX_TICKS_PER_PASS {
                // More are due than one pass handles: come back at once.
                next_due = Some(now_us);
            }
            if !ticks.is_empty() {
                due.push((s, mark, ticks));
            }
        }
        self.store.init_schedules(&unseen, now_us).await?;
        if due.is_empty() {
            return Ok((0, next_due));
        }
        let busy = if due.iter().any(|(s, _, _)| s.overlap == "skip") {
            self.store.unfinished_automations().await?
        } else {
            Default::default()
        };
        let mut batch = Vec::with_capacity(due.len());
        let mut counts = Vec::with_capacity(due.len());
        for (s, mark, ticks) in &due {
            let last = *ticks.last().unwrap_or(mark);
            let on_time = now_us - last <= CATCH_UP_GRACE.as_micros() as i64;
            let fire: Vec<i64> = match s.catch_up.as_str() {
                "skip" if on_time => vec![last],
                "skip" => vec![],
                "all" => ticks.iter().rev().take(MAX_CATCH_UP_RUNS).rev().copied().collect(),
                _ => vec![last],
            };
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
                    TickOutcome::Fired(self.job_for(s, t))
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
        for ((result, n), (s, _, _)) in results.iter().zip(counts).zip(&due) {
            match result {
                Some(_) => fired += n,
                None => {
                    tracing::debug!(tenant = %s.tenant, automation = %s.automation, "another node handled these ticks")
                }
            }
        }
        if fired > 0 {
            self.wake.notify_one();
        }
        Ok((fired, next_due))
    }

    pub(crate) async fn schedule_loop(&self, stop: CancelToken) {
        while !stop.is_cancelled() {
            let started = std::time::Instant::now();
            let next_due = match self.schedule_pass(Timestamp::now()).await {
                Ok((_, next)) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler pass failed; retrying");
                    None
                }
            };
            // Sleep until the next tick is due, but never longer than `schedule_every`: schedules
            // applied meanwhile by another process are picked up at that pace.
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
