//! Differential test against croniter, the reference implementation whose semantics this crate
//! follows (time-zone-aware `get_next`, six-field expressions with seconds first).
//!
//! A fixed-seed generator makes a few hundred cases (expression, zone, start), many of them
//! starting just before a daylight-saving change; `croniter_oracle.py` computes croniter's next
//! fire times for all of them in one `python3` run, and every case where ours differ is reported.
//! The test fails (never skips) when python3 or croniter is missing: `make test` installs
//! croniter first. `MC_PYTHON` names another interpreter than `python3`.
//!
//! The two deliberate differences are left out of the comparison, see [`croniter_only`] and
//! [`ours_only`].
//! The generator also writes no `a-a` range (croniter reads `5-5` as the whole field; here it is
//! 5) and no backwards range (croniter wraps `FRI-MON` around; here it is refused).

use std::io::Write;
use std::process::{Command, Stdio};

use jiff::Timestamp;
use jiff::tz::{AmbiguousOffset, TimeZone};
use mc_schedule::CronSchedule;

const ORACLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/croniter_oracle.py");
const INSTALL: &str = "install croniter with `python3 -m pip install croniter==7.0.0` (`make test` does this)";

/// The croniter major version whose behaviour the crate docs describe.
const CRONITER_MAJOR: &str = "7.";

const ZONES: [&str; 5] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
];

/// Fire times compared per case: enough to cross a transition and come out on the other side.
const FIRES_PER_CASE: usize = 8;

/// Generated cases (on top of the hand-written ones).
const GENERATED_CASES: usize = 400;

const SEED: u64 = 0x6d63_2d73_6368_6564;

/// Knuth's MMIX linear congruential generator: deterministic, no dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next() % u64::from(hi - lo + 1)) as u32
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

#[derive(Clone, Copy)]
struct Spec {
    lo: u32,
    hi: u32,
    /// Largest value `*` and `a/n` cover (day-of-week: 6, though 7 is accepted).
    star_hi: u32,
    names: &'static [&'static str],
    name_base: u32,
}

const SECOND: Spec = Spec {
    lo: 0,
    hi: 59,
    star_hi: 59,
    names: &[],
    name_base: 0,
};
const MINUTE: Spec = SECOND;
const HOUR: Spec = Spec {
    lo: 0,
    hi: 23,
    star_hi: 23,
    names: &[],
    name_base: 0,
};
const DOM: Spec = Spec {
    lo: 1,
    hi: 31,
    star_hi: 31,
    names: &[],
    name_base: 0,
};
const MONTH: Spec = Spec {
    lo: 1,
    hi: 12,
    star_hi: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    name_base: 1,
};
const DOW: Spec = Spec {
    lo: 0,
    hi: 7,
    star_hi: 6,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    name_base: 0,
};

/// A value, sometimes written as a name in random case.
fn value(rng: &mut Lcg, spec: Spec, v: u32) -> String {
    let i = v.wrapping_sub(spec.name_base) as usize;
    if i < spec.names.len() && rng.chance(40) {
        let name = spec.names[i];
        return match rng.range(0, 2) {
            0 => name.to_string(),
            1 => name.to_lowercase(),
            _ => format!("{}{}", &name[..1], name[1..].to_lowercase()),
        };
    }
    v.to_string()
}

/// One list item: a number, a range, or either with a step. Ranges have distinct ends.
fn item(rng: &mut Lcg, spec: Spec) -> String {
    let span = spec.star_hi - spec.lo + 1;
    match rng.range(0, 5) {
        0 | 1 => {
            let v = rng.range(spec.lo, spec.hi);
            value(rng, spec, v)
        }
        2 => {
            let a = rng.range(spec.lo, spec.hi - 1);
            let b = rng.range(a + 1, spec.hi);
            format!("{}-{}", value(rng, spec, a), value(rng, spec, b))
        }
        3 => {
            let a = rng.range(spec.lo, spec.hi - 1);
            let b = rng.range(a + 1, spec.hi);
            let step = rng.range(1, span);
            format!("{}-{}/{step}", value(rng, spec, a), value(rng, spec, b))
        }
        4 => {
            let a = rng.range(spec.lo, spec.star_hi);
            let step = rng.range(1, span);
            format!("{}/{step}", value(rng, spec, a))
        }
        _ => format!("*/{}", rng.range(1, span)),
    }
}

/// A field: `*` with probability `star`%, else a list of one to three items.
fn field(rng: &mut Lcg, spec: Spec, star: u64) -> String {
    if rng.chance(star) {
        return "*".into();
    }
    let n = match rng.range(0, 9) {
        0..=5 => 1,
        6..=8 => 2,
        _ => 3,
    };
    (0..n).map(|_| item(rng, spec)).collect::<Vec<_>>().join(",")
}

/// An hour field that often names the hours clocks skip or repeat (1-3 local time).
fn hour_field(rng: &mut Lcg) -> String {
    match rng.range(0, 9) {
        0..=3 => "*".into(),
        4 => "*/1".into(),
        5 | 6 => rng
            .pick(&["1", "2", "3", "1-3", "2,3", "0-2", "1,2", "2/1", "*/2", "1-3/2"])
            .to_string(),
        _ => field(rng, HOUR, 0),
    }
}

fn expression(rng: &mut Lcg) -> String {
    let minute = if rng.chance(20) {
        "*".to_string()
    } else {
        field(rng, MINUTE, 0)
    };
    let hour = hour_field(rng);
    let dom = field(rng, DOM, 65);
    let month = field(rng, MONTH, 85);
    let dow = field(rng, DOW, 65);
    let five = format!("{minute} {hour} {dom} {month} {dow}");
    if rng.chance(20) {
        let second = if rng.chance(15) {
            "*".to_string()
        } else {
            field(rng, SECOND, 0)
        };
        format!("{second} {five}")
    } else {
        five
    }
}

/// Offset changes of `zone` from 2025 to 2027, in Unix seconds.
fn transitions(zone: &str) -> Vec<i64> {
    let tz = TimeZone::get(zone).unwrap();
    let from: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
    let until: Timestamp = "2028-01-01T00:00:00Z".parse().unwrap();
    tz.following(from)
        .take_while(|t| t.timestamp() < until)
        .map(|t| t.timestamp().as_second())
        .collect()
}

struct Case {
    expr: String,
    zone: &'static str,
    start: i64,
}

fn at(text: &str) -> i64 {
    text.parse::<Timestamp>().unwrap().as_second()
}

/// Cases written out by hand: each DST rule of the crate docs, at each kind of transition.
fn hand_written() -> Vec<Case> {
    let berlin_spring = at("2026-03-28T12:00:00Z");
    let berlin_fall = at("2026-10-24T12:00:00Z");
    let ny_spring = at("2026-03-07T12:00:00Z");
    let ny_fall = at("2026-10-31T12:00:00Z");
    let lh_spring = at("2026-10-03T00:00:00Z");
    let lh_fall = at("2026-04-04T00:00:00Z");
    let mut cases = Vec::new();
    let exprs = [
        "30 2 * * *",
        "0 2 * * *",
        "0,30 2 * * *",
        "*/20 2 * * *",
        "15 1-3 * * *",
        "30 * * * *",
        "*/20 * * * *",
        "* 2 * * *",
        "30 15 2 * * *",
        "10,20 30 2 * * *",
        "*/10 * * * * *",
        "0 */2 * * *",
        "45 1 * * *",
        "15 2 * * *",
        "@hourly",
        "@daily",
    ];
    for (zone, starts) in [
        ("Europe/Berlin", [berlin_spring, berlin_fall]),
        ("America/New_York", [ny_spring, ny_fall]),
        ("Australia/Lord_Howe", [lh_spring, lh_fall]),
    ] {
        for expr in exprs {
            for start in starts {
                cases.push(Case {
                    expr: expr.into(),
                    zone,
                    start,
                });
                // Starting close to the change, and within the repeated hour.
                for delta in [11 * 3600, 13 * 3600 + 1800, 14 * 3600 + 1800] {
                    cases.push(Case {
                        expr: expr.into(),
                        zone,
                        start: start + delta,
                    });
                }
            }
        }
    }
    for (expr, zone, start) in [
        ("0 0 13 * FRI", "UTC", "2026-01-01T00:00:00Z"),
        ("0 0 1-31 * MON", "UTC", "2026-01-01T00:00:00Z"),
        ("0 0 1-31 * */2", "UTC", "2026-01-01T00:00:00Z"),
        ("0 0 15 * */1", "UTC", "2026-01-01T00:00:00Z"),
        ("0 0 */2 * 0-7", "UTC", "2026-01-01T00:00:00Z"),
        ("0 0 *,5 * MON", "UTC", "2026-01-01T00:00:00Z"),
        ("0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z"),
        ("0 0 30 2 *", "UTC", "2026-01-01T00:00:00Z"),
        ("0 9 * * MON-FRI", "Asia/Kolkata", "2026-05-01T00:00:00Z"),
        ("@yearly", "Europe/Berlin", "2026-05-01T00:00:00Z"),
        ("@annually", "UTC", "2026-05-01T00:00:00Z"),
        ("@monthly", "America/New_York", "2026-05-01T00:00:00Z"),
        ("@weekly", "Australia/Lord_Howe", "2026-05-01T00:00:00Z"),
        ("@midnight", "Europe/Berlin", "2026-10-24T00:00:00Z"),
        ("0 0 * * 7", "UTC", "2026-05-01T00:00:00Z"),
        ("0 0 * * 5-7", "UTC", "2026-05-01T00:00:00Z"),
        ("0 0 * * 1-7/2", "UTC", "2026-05-01T00:00:00Z"),
        ("0 0 * * 7/2", "UTC", "2026-05-01T00:00:00Z"),
        ("59/15 * * * *", "UTC", "2026-05-01T00:00:00Z"),
        ("0 0 * jan/5 *", "UTC", "2026-05-01T00:00:00Z"),
    ] {
        cases.push(Case {
            expr: expr.into(),
            zone,
            start: at(start),
        });
    }
    cases
}

fn generated() -> Vec<Case> {
    let mut rng = Lcg(SEED);
    let changes: Vec<Vec<i64>> = ZONES.iter().map(|z| transitions(z)).collect();
    let deltas = [-3 * 3600, -3601, -1800, -61, -1, 0, 1, 1800, 3600];
    (0..GENERATED_CASES)
        .map(|_| {
            let expr = expression(&mut rng);
            let z = rng.range(0, ZONES.len() as u32 - 1) as usize;
            // Two in three start near an offset change of the zone (when it has any).
            let start = if !changes[z].is_empty() && rng.chance(67) {
                rng.pick(&changes[z]) + rng.pick(&deltas)
            } else {
                at("2024-01-01T00:00:00Z")
                    + i64::from(rng.range(0, 8 * 365 * 24)) * 3600
                    + i64::from(rng.range(0, 3599))
            };
            Case {
                expr,
                zone: ZONES[z],
                start,
            }
        })
        .collect()
}

/// If `t` lies in the second pass of a repeated (fall-back) stretch of wall time: the instant of
/// the change, and the offsets before and after it.
fn second_pass(tz: &TimeZone, t: Timestamp) -> Option<(i64, i64, i64)> {
    let AmbiguousOffset::Fold { before, after } = tz.to_ambiguous_timestamp(tz.to_datetime(t)).offset() else {
        return None;
    };
    if tz.to_offset(t) != after {
        return None;
    }
    let change = tz
        .preceding(Timestamp::from_second(t.as_second() + 1).unwrap())
        .next()?;
    Some((
        change.timestamp().as_second(),
        i64::from(before.seconds()),
        i64::from(after.seconds()),
    ))
}

/// Deliberate difference 1 (see the crate docs): croniter fires a schedule with fixed hours on both
/// passes of a repeated hour; we fire it on the first pass only. Such croniter fire times are left
/// out of the comparison.
fn croniter_only(schedule: &CronSchedule, tz: &TimeZone, t: i64) -> bool {
    !schedule.repeats_when_clocks_fall_back() && second_pass(tz, Timestamp::from_second(t).unwrap()).is_some()
}

/// Deliberate difference 2 (see the crate docs): for an every-hour schedule croniter finds the
/// second pass of a repeated stretch by searching again from the wall time it was at, moved back
/// by the length of the stretch (`now + offset_delta` in `croniter._calc`). When the stretch is
/// shorter than an hour (Lord Howe's 30 minutes) that search can land on a match *before* the
/// stretch, which croniter then discards together with the whole second pass: `*/20 * * * *` goes
/// from 01:40 (+11:00) to 02:00 (+10:30), while `*/10 * * * *` fires on both passes. We always
/// fire on both. This decides, with croniter's own rule, whether our second-pass fire time `t` is
/// one croniter skips. `now` is where croniter stood when it crossed the change: the start of the
/// case or the last fire time before the change.
fn ours_only(schedule: &CronSchedule, tz: &TimeZone, t: i64, start: i64, earlier: &[i64]) -> bool {
    if !schedule.repeats_when_clocks_fall_back() {
        return false;
    }
    let Some((change, before, after)) = second_pass(tz, Timestamp::from_second(t).unwrap()) else {
        return false;
    };
    if start >= change {
        return false;
    }
    let now = earlier.iter().copied().filter(|e| *e < change).fold(start, i64::max);
    let length = before - after;
    let first_repeated_wall = change + after;
    // Wall times as if they were UTC instants, so the schedule's UTC search finds wall matches.
    let probe = Timestamp::from_second(now + before - length).unwrap();
    schedule
        .next_after(probe, &TimeZone::UTC)
        .is_some_and(|m| m.as_second() < first_repeated_wall)
}

#[derive(serde::Deserialize)]
struct OracleReply {
    croniter: String,
    results: Vec<OracleResult>,
}

#[derive(serde::Deserialize)]
struct OracleResult {
    times: Vec<i64>,
    error: Option<String>,
}

fn run_oracle(cases: &[Case]) -> OracleReply {
    let request = serde_json::json!({
        "cases": cases
            .iter()
            .map(|c| serde_json::json!({"expr": c.expr, "tz": c.zone, "start": c.start, "count": FIRES_PER_CASE}))
            .collect::<Vec<_>>(),
    });
    let python = std::env::var("MC_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = match Command::new(&python)
        .arg(ORACLE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot run `{python}` ({e}): the croniter differential test needs Python 3 with croniter; \
             install Python 3 (e.g. `apt-get install python3 python3-pip`), then {INSTALL}"
        ),
    };
    let mut stdin = child.stdin.take().unwrap();
    let body = request.to_string();
    // Written from a thread so a full stdout pipe cannot deadlock us.
    let writer = std::thread::spawn(move || stdin.write_all(body.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => {}
        Some(3) => panic!("croniter is missing for `{python}`: {INSTALL}\n{stderr}"),
        _ => panic!(
            "the croniter oracle failed ({}): {stderr}\nIf croniter is missing, {INSTALL}",
            output.status
        ),
    }
    let reply: OracleReply = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("the croniter oracle printed something that is not its JSON reply ({e}): {stderr}"));
    assert!(
        reply.croniter.starts_with(CRONITER_MAJOR),
        "croniter {} is installed, but this test checks against croniter {CRONITER_MAJOR}x; {INSTALL}",
        reply.croniter
    );
    assert_eq!(
        reply.results.len(),
        cases.len(),
        "the oracle answered a different number of cases"
    );
    reply
}

fn show(t: i64, tz: &TimeZone) -> String {
    let ts = Timestamp::from_second(t).unwrap();
    ts.display_with_offset(tz.to_offset(ts)).to_string()
}

fn show_all(times: &[i64], tz: &TimeZone) -> String {
    times.iter().map(|t| show(*t, tz)).collect::<Vec<_>>().join(", ")
}

#[test]
fn next_fire_times_agree_with_croniter() {
    let mut cases = hand_written();
    let hand_written_count = cases.len();
    cases.extend(generated());
    let reply = run_oracle(&cases);

    let mut mismatches = Vec::new();
    let (mut compared_fires, mut excluded_theirs, mut excluded_ours, mut across_a_change) = (0, 0, 0, 0);
    for (case, oracle) in cases.iter().zip(&reply.results) {
        let schedule = CronSchedule::parse(&case.expr)
            .unwrap_or_else(|e| panic!("the generator wrote an expression we refuse: {e}"));
        let tz = TimeZone::get(case.zone).unwrap();
        let mut ours = Vec::new();
        let mut ours_exhausted = false;
        let mut cursor = Timestamp::from_second(case.start).unwrap();
        while ours.len() < FIRES_PER_CASE {
            let Some(next) = schedule.next_after(cursor, &tz) else {
                ours_exhausted = true;
                break;
            };
            ours.push(next.as_second());
            cursor = next;
        }
        let ours_compared: Vec<i64> = (0..ours.len())
            .filter(|&i| !ours_only(&schedule, &tz, ours[i], case.start, &ours[..i]))
            .map(|i| ours[i])
            .collect();
        let theirs: Vec<i64> = oracle
            .times
            .iter()
            .copied()
            .filter(|t| !croniter_only(&schedule, &tz, *t))
            .collect();
        excluded_theirs += oracle.times.len() - theirs.len();
        excluded_ours += ours.len() - ours_compared.len();
        // Both lists are the same sorted sequence, each cut off after its own 8 fire times.
        let n = ours_compared.len().min(theirs.len());
        // Where either side ran out of fire times, both must have.
        let agree = ours_compared[..n] == theirs[..n]
            && (!(ours_exhausted || oracle.error.is_some()) || ours_compared.len() == theirs.len());
        let window_end = theirs.last().copied().unwrap_or(case.start);
        if tz
            .following(Timestamp::from_second(case.start).unwrap())
            .next()
            .is_some_and(|t| t.timestamp().as_second() <= window_end)
        {
            across_a_change += 1;
        }
        compared_fires += n;
        if !agree {
            mismatches.push(format!(
                "`{}` in {} after {} ({}):\n    ours:     [{}]\n    croniter: [{}]{}",
                case.expr,
                case.zone,
                show(case.start, &tz),
                Timestamp::from_second(case.start).unwrap(),
                show_all(&ours, &tz),
                show_all(&theirs, &tz),
                oracle.error.as_ref().map(|e| format!(" then {e}")).unwrap_or_default(),
            ));
        }
    }
    eprintln!(
        "croniter {}: {} cases ({hand_written_count} written, {GENERATED_CASES} generated), {compared_fires} fire times compared, \
         {across_a_change} cases across an offset change; left out: {excluded_theirs} croniter second-pass firings of \
         fixed-hour schedules, {excluded_ours} of ours in short repeated stretches",
        reply.croniter,
        cases.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ from croniter:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
    // Guard the generator: the comparison must keep exercising daylight-saving changes and the
    // excluded case.
    assert!(
        across_a_change >= 150,
        "only {across_a_change} cases cross an offset change"
    );
    assert!(
        excluded_theirs > 0,
        "no croniter fire time was left out: the fall-back rule is not exercised"
    );
    assert!(
        excluded_ours > 0,
        "none of our fire times was left out: the short repeated stretch is not exercised"
    );
}
