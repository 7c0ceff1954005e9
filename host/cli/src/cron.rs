//! `missionctl cron next`: check a cron expression by printing its next fire times, in a time zone,
//! with the daylight-saving rules the scheduler uses (`mc-schedule`).

use clap::{Args, Subcommand};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use mc_schedule::{CronSchedule, MAX_SEARCH_YEARS};

use crate::exit;

/// Fire times printed when `--count` is not given.
const DEFAULT_COUNT: usize = 5;
/// Most fire times one call prints: enough to see a year of a daily job (or every transition of a
/// zone over a few years); more is a script that should use the library.
const MAX_COUNT: usize = 1000;

#[derive(Debug, Args)]
pub struct CronArgs {
    #[command(subcommand)]
    command: CronCommand,
}

#[derive(Debug, Subcommand)]
enum CronCommand {
    /// Print the next fire times of a cron expression.
    Next(NextArgs),
}

#[derive(Debug, Args)]
struct NextArgs {
    /// The expression: 5 fields (minute hour day-of-month month day-of-week), 6 with a seconds
    /// field first, or a macro such as @daily. Quote it.
    expr: String,
    /// The IANA time zone the expression is read in (e.g. Europe/Berlin); times print with its
    /// offset. Without it: UTC.
    #[arg(long, value_name = "ZONE")]
    tz: Option<String>,
    /// Start after this time (RFC 3339 with an offset, e.g. 2026-12-01T09:00:00Z) instead of now.
    #[arg(long, value_name = "TIME")]
    after: Option<String>,
    /// How many fire times to print (at most 1000).
    #[arg(long, default_value_t = DEFAULT_COUNT)]
    count: usize,
    /// Print a JSON array of RFC 3339 strings instead of one time per line.
    #[arg(long)]
    json: bool,
}

fn usage_error(message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    exit::USAGE
}

pub fn run(args: CronArgs) -> u8 {
    match args.command {
        CronCommand::Next(args) => next(args),
    }
}

fn next(args: NextArgs) -> u8 {
    let schedule = match CronSchedule::parse(&args.expr) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let tz = match args.tz.as_deref().map(mc_schedule::parse_timezone).transpose() {
        Ok(tz) => tz,
        Err(e) => return usage_error(format_args!("--tz: {e}")),
    };
    let after = match args.after.as_deref().map(mc_schedule::parse_at).transpose() {
        Ok(Some(after)) => after,
        // Now, to the second: the error below may quote it, and fire times are whole seconds.
        Ok(None) => Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_default(),
        Err(e) => return usage_error(format_args!("--after: {e}")),
    };
    if !(1..=MAX_COUNT).contains(&args.count) {
        return usage_error(format_args!(
            "--count must be between 1 and {MAX_COUNT}, got {}",
            args.count
        ));
    }
    let zone = tz.clone().unwrap_or(TimeZone::UTC);
    let mut times = Vec::with_capacity(args.count);
    let mut cursor = after;
    while times.len() < args.count {
        let Some(t) = schedule.next_after(cursor, &zone) else {
            break;
        };
        times.push(t);
        cursor = t;
    }
    if times.is_empty() {
        return usage_error(format_args!(
            "`{schedule}` does not fire within {MAX_SEARCH_YEARS} years after {after} (does the date exist?)"
        ));
    }
    // With a zone, the local time and its offset; without one, UTC written with `Z`.
    let text: Vec<String> = times
        .iter()
        .map(|t| match &tz {
            Some(tz) => t.display_with_offset(tz.to_offset(*t)).to_string(),
            None => t.to_string(),
        })
        .collect();
    if args.json {
        println!("{}", serde_json::Value::from(text));
    } else {
        for line in text {
            println!("{line}");
        }
    }
    exit::OK
}
