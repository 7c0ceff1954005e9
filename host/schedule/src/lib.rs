//! Schedules: when a tenant's workflow runs. Three kinds, each parsed here from the text a user
//! writes, with an error that names the text and what is wrong with it:
//!
//! - a cron expression ([`CronSchedule`]) evaluated in an IANA time zone ([`parse_timezone`]),
//!   whose next fire time is [`CronSchedule::next_after`];
//! - an interval ([`parse_interval`]: `90s`, `15m`, `1h30m`, `1d`);
//! - a one-time date ([`parse_at`]: an RFC 3339 timestamp with its offset).
//!
//! This crate only computes times. Queueing, catch-up after downtime and persistence belong to
//! the scheduler that uses it.
//!
//! # Cron expressions
//!
//! Five fields, `minute hour day-of-month month day-of-week`, or six with a seconds field first,
//! `second minute hour day-of-month month day-of-week`. Each field is a comma-separated list of
//! items; an item is `*`, a number, a range `a-b`, or one of those followed by a step `/n`
//! (`*/15`, `10-50/20`, and `a/n`, which means `a` to the end of the field). Months may be written
//! `JAN`-`DEC` and days of the week `SUN`-`SAT` (any case); day-of-week takes 0-7, where 0 and 7
//! are both Sunday. The macros `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily`
//! (`@midnight`) and `@hourly` stand for their usual five-field expressions.
//!
//! Day-of-month and day-of-week combine as in Vixie cron and croniter: when both are restricted a
//! day matches if *either* matches (`0 9 1 * MON` fires on the 1st and on every Monday), otherwise
//! both must match. A day field counts as unrestricted when it contains a bare `*`, or when it
//! lists every value and the other day field contains a `*` (croniter's rule: `1-31 * */2` is the
//! even weekdays, `1-31 * MON` is every day).
//!
//! Quartz and croniter extensions (`L`, `W`, `#`, `?`, `H`, a year field), ranges that run
//! backwards (`FRI-MON`), steps longer than their field (`*/90` in minutes, which does not mean
//! "every 90 minutes") and values out of range are refused.
//!
//! # Time zones and daylight-saving time
//!
//! Fire times are wall-clock times in the schedule's zone. When the zone's offset changes:
//!
//! - **Clocks spring forward** (Berlin skips 02:00-02:59 on the last Sunday of March): a wall time
//!   in the gap does not exist. A schedule whose hour field is every hour (`*/20 * * * *`, `30 * *
//!   * *`) skips it and goes on with its next existing time. Any other schedule runs once at the
//!   end of the gap, keeping its seconds: `30 2 * * *` fires at 03:00 that day, `30 15 2 * * *` at
//!   03:00:30, and `0,30 2 * * *` once at 03:00.
//! - **Clocks fall back** (Berlin repeats 02:00-02:59 on the last Sunday of October): a wall time
//!   in the repeated hour happens twice. A schedule whose hour field is every hour fires on both
//!   passes, since real time goes on for an hour (`30 * * * *` fires at 02:30 CEST and 02:30 CET).
//!   Any other schedule fires on the first pass only (`30 2 * * *` fires once, at 02:30 CEST).
//!   [`CronSchedule::repeats_when_clocks_fall_back`] says which of the two a schedule does.
//!
//! This is what croniter 7 does for time-zone-aware datetimes (the differential test
//! `tests/croniter.rs` checks it against croniter itself), with these deliberate differences:
//!
//! - croniter fires a schedule with fixed hours on *both* passes of a repeated hour, so a daily
//!   `30 2 * * *` runs twice that night, and `0 2 * * *` too. A daily job that runs twice (a
//!   report sent twice, a budget spent twice) is a bug, so here it runs once, on the first pass.
//! - croniter sometimes leaves out the second pass of an every-hour schedule when the repeated
//!   stretch is shorter than an hour (Lord Howe Island sets its clocks back by 30 minutes):
//!   `*/20 * * * *` goes from 01:40 (+11:00) straight to 02:00 (+10:30), 50 minutes later, while
//!   `*/10 * * * *` fires on both passes. Here every-hour schedules always fire on both passes, so
//!   `*/20` also fires at 01:40 (+10:30).
//! - croniter reads a range whose ends are equal (`5-5`, `MON-MON`) as the whole field, so `5-5 *
//!   * * *` fires every minute. Here `5-5` is 5.
//! - croniter accepts, and this crate refuses, the extensions and oddities listed above.
//!
//! [`CronSchedule::next_after`] searches at most [`MAX_SEARCH_YEARS`] years ahead and returns
//! `None` for an expression with no fire time in that window, such as `0 0 30 2 *` (30 February).

mod civil;
mod cron;
mod error;
mod parse;
mod search;

pub use cron::{CronSchedule, Field};
pub use error::ScheduleError;
pub use parse::{MAX_INTERVAL, MIN_INTERVAL, format_interval, parse_at, parse_interval, parse_timezone};
pub use search::MAX_SEARCH_YEARS;
