//! Parsing cron expressions into [`CronSchedule`]: the grammar, its limits, and an error for every
//! way a field can be wrong. The search for fire times is in `search.rs`.

use std::fmt;
use std::str::FromStr;

use crate::error::ScheduleError;

/// Longest expression accepted. A real one is under 100 characters (even with long lists); this
/// keeps a pasted document out of error messages and logs.
const MAX_EXPRESSION_LEN: usize = 1000;

/// How much of an over-long expression an error message quotes.
const QUOTED_PREFIX_LEN: usize = 40;

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// The macros and the expressions they stand for (Vixie cron's, minus `@reboot`).
const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// One field of a cron expression; named in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl Field {
    /// The values a number in this field may take. Day-of-week accepts 7 as a second Sunday.
    fn bounds(self) -> (u32, u32) {
        match self {
            Field::Second | Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 7),
        }
    }

    /// What `*` and the open end of `a/n` cover: the bounds, except that day-of-week's `*` is 0-6
    /// (7 would only repeat Sunday, and croniter counts `*/2` from 0-6 too).
    fn star_bounds(self) -> (u32, u32) {
        match self {
            Field::DayOfWeek => (0, 6),
            f => f.bounds(),
        }
    }

    /// The longest step that still means something: one that covers the whole field once. A
    /// longer one selects only its start, which is never what `*/90` (in minutes) was meant to say.
    fn max_step(self) -> u32 {
        let (lo, hi) = self.star_bounds();
        hi - lo + 1
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Field::Month => &MONTH_NAMES,
            Field::DayOfWeek => &DAY_NAMES,
            _ => &[],
        }
    }

    /// Value of the first name (`JAN` is 1, `SUN` is 0).
    fn first_name_value(self) -> u32 {
        match self {
            Field::Month => 1,
            _ => 0,
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        })
    }
}

/// The expanded fields: one bit per value that matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fields {
    /// Bits 0-59.
    pub seconds: u64,
    /// Bits 0-59.
    pub minutes: u64,
    /// Bits 0-23.
    pub hours: u32,
    /// Bits 1-31.
    pub days: u32,
    /// Bits 1-12.
    pub months: u32,
    /// Bits 0-6, Sunday = 0 (a 7 in the expression is folded into bit 0).
    pub weekdays: u32,
    /// Day-of-month and day-of-week combine with OR (both restricted) rather than AND.
    pub day_or: bool,
}

pub(crate) const ALL_HOURS: u32 = (1 << 24) - 1;

/// A parsed cron expression. Displays as the text it was parsed from.
///
/// ```
/// use mc_schedule::{CronSchedule, parse_timezone};
///
/// let schedule = CronSchedule::parse("30 9 * * MON-FRI")?;
/// let berlin = parse_timezone("Europe/Berlin")?;
/// let after: jiff::Timestamp = "2026-03-27T09:00:00Z".parse().unwrap();
/// let next = schedule.next_after(after, &berlin).unwrap();
/// assert_eq!(next.to_string(), "2026-03-30T07:30:00Z"); // Monday 09:30 CEST
/// # Ok::<(), mc_schedule::ScheduleError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    text: String,
    pub(crate) fields: Fields,
    has_seconds: bool,
}

impl CronSchedule {
    /// Parses a five-field expression (`minute hour day-of-month month day-of-week`), a six-field
    /// one with seconds first, or a macro such as `@daily`. The grammar is in the crate docs; any
    /// other syntax is refused with an error naming the field and the problem.
    pub fn parse(expr: &str) -> Result<CronSchedule, ScheduleError> {
        if expr.len() > MAX_EXPRESSION_LEN {
            let mut end = QUOTED_PREFIX_LEN;
            while !expr.is_char_boundary(end) {
                end -= 1;
            }
            return Err(ScheduleError::Cron {
                expr: format!("{}...", &expr[..end]),
                problem: format!("{} characters is too long (at most {MAX_EXPRESSION_LEN})", expr.len()),
            });
        }
        let whole = |problem: String| ScheduleError::Cron {
            expr: expr.to_string(),
            problem,
        };
        let trimmed = expr.trim();
        let body = if trimmed.starts_with('@') {
            MACROS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(trimmed))
                .map(|(_, body)| *body)
                .ok_or_else(|| {
                    whole(format!(
                        "unknown macro `{trimmed}` (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)"
                    ))
                })?
        } else {
            trimmed
        };
        let parts: Vec<&str> = body.split_ascii_whitespace().collect();
        let (has_seconds, texts) = match parts.len() {
            0 => return Err(whole("the expression is empty".into())),
            5 => (false, ["0", parts[0], parts[1], parts[2], parts[3], parts[4]]),
            6 => (true, [parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]]),
            n => {
                return Err(whole(format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (a second field first), found {n}"
                )));
            }
        };
        let order = [
            Field::Second,
            Field::Minute,
            Field::Hour,
            Field::DayOfMonth,
            Field::Month,
            Field::DayOfWeek,
        ];
        let mut sets = [0u64; 6];
        let mut bare_star = [false; 6];
        for (i, (field, text)) in order.iter().zip(texts).enumerate() {
            let parsed = parse_field(*field, text).map_err(|problem| ScheduleError::CronField {
                expr: expr.to_string(),
                field: *field,
                problem,
            })?;
            sets[i] = parsed.bits;
            bare_star[i] = parsed.bare_star;
        }
        // Day-of-week 7 is Sunday again.
        let weekdays = (sets[5] | (sets[5] >> 7)) & 0x7f;
        let (dom_text, dow_text) = (texts[3], texts[5]);
        // croniter's rule for "unrestricted": a bare `*`, or every value while the other day field
        // contains a `*` (see the crate docs).
        let dom_unrestricted = bare_star[3] || (sets[3] == ALL_DAYS && dow_text.contains('*'));
        let dow_unrestricted = bare_star[5] || (weekdays == ALL_WEEKDAYS && dom_text.contains('*'));
        let fields = Fields {
            seconds: sets[0],
            minutes: sets[1],
            hours: sets[2] as u32,
            days: sets[3] as u32,
            months: sets[4] as u32,
            weekdays: weekdays as u32,
            day_or: !dom_unrestricted && !dow_unrestricted,
        };
        Ok(CronSchedule {
            text: expr.to_string(),
            fields,
            has_seconds,
        })
    }

    /// The text this schedule was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the expression has a seconds field (six fields). Five-field expressions fire at
    /// second 0.
    pub fn has_seconds(&self) -> bool {
        self.has_seconds
    }

    /// Whether a wall-clock time that happens twice, when clocks fall back, fires on both passes.
    /// True when the hour field matches every hour (`*`, `*/1`, `0-23`): such a schedule follows
    /// real time through the repeated hour. A schedule with fixed hours fires on the first pass
    /// only. The same test decides what happens in a spring-forward gap (see the crate docs).
    pub fn repeats_when_clocks_fall_back(&self) -> bool {
        self.fields.hours == ALL_HOURS
    }
}

const ALL_DAYS: u64 = ((1 << 32) - 1) & !1;
const ALL_WEEKDAYS: u64 = 0x7f;

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for CronSchedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CronSchedule::parse(s)
    }
}

/// Stored and sent as its expression text.
impl serde::Serialize for CronSchedule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for CronSchedule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        CronSchedule::parse(&text).map_err(serde::de::Error::custom)
    }
}

struct ParsedField {
    bits: u64,
    /// The field has an item that is exactly `*`.
    bare_star: bool,
}

fn parse_field(field: Field, text: &str) -> Result<ParsedField, String> {
    let mut bits = 0u64;
    let mut bare_star = false;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("empty item in the list `{text}`"));
        }
        if let Some(problem) = unsupported(field, item) {
            return Err(problem);
        }
        bare_star |= item == "*";
        bits |= parse_item(field, item)?;
    }
    Ok(ParsedField { bits, bare_star })
}

/// A precise refusal for the extensions other cron dialects accept.
fn unsupported(field: Field, item: &str) -> Option<String> {
    let upper = item.to_ascii_uppercase();
    let is_number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let problem = if upper.contains('#') {
        "`#` (nth weekday of the month) is not supported"
    } else if upper.contains('?') {
        "`?` is not supported; use `*`"
    } else if upper == "H" || upper.starts_with("H(") || upper.starts_with("H/") {
        "`H` (hashed values) is not supported"
    } else if field == Field::DayOfMonth && (upper == "L" || upper == "LW" || upper.starts_with("L-")) {
        "`L` (last day of the month) is not supported"
    } else if field == Field::DayOfMonth && upper.ends_with('W') && is_number(&upper[..upper.len() - 1]) {
        "`W` (nearest weekday) is not supported"
    } else if field == Field::DayOfWeek
        && upper.len() > 1
        && upper.ends_with('L')
        && (is_number(&upper[..upper.len() - 1]) || DAY_NAMES.contains(&&upper[..upper.len() - 1]))
    {
        "`L` (last weekday of the month) is not supported"
    } else {
        return None;
    };
    Some(format!("{problem} (in `{item}`)"))
}

/// One list item: `*`, `v`, `a-b`, each optionally followed by `/step`.
fn parse_item(field: Field, item: &str) -> Result<u64, String> {
    let (base, step) = match item.split_once('/') {
        Some((_, "")) => return Err(format!("`{item}` has no step after `/`")),
        Some((base, step)) => (base, Some(parse_step(field, step)?)),
        None => (item, None),
    };
    let (lo, hi) = if base == "*" {
        field.star_bounds()
    } else if let Some((a, b)) = base.split_once('-') {
        if a.is_empty() || b.is_empty() || b.contains('-') {
            return Err(format!("`{base}` is not a valid range"));
        }
        let (lo, hi) = (parse_value(field, a)?, parse_value(field, b)?);
        if lo > hi {
            return Err(format!(
                "range `{base}` runs backwards (write it as a list of two ranges)"
            ));
        }
        (lo, hi)
    } else {
        let v = parse_value(field, base)?;
        match step {
            // `a/n`: from `a` to the end of the field. Day-of-week 7 is Sunday, the start of the week.
            Some(_) if field == Field::DayOfWeek && v == 7 => (0, field.star_bounds().1),
            Some(_) => (v, field.star_bounds().1.max(v)),
            None => (v, v),
        }
    };
    let step = step.unwrap_or(1);
    let mut bits = 0u64;
    let mut v = lo;
    while v <= hi {
        bits |= 1 << v;
        v += step;
    }
    Ok(bits)
}

fn parse_step(field: Field, text: &str) -> Result<u32, String> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("step `{text}` is not a number"));
    }
    let max = field.max_step();
    match text.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("step {text} is out of range 1-{max}")),
    }
}

fn parse_value(field: Field, text: &str) -> Result<u32, String> {
    let (lo, hi) = field.bounds();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(n),
            _ => Err(format!("{text} is out of range {lo}-{hi}")),
        };
    }
    let names = field.names();
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(field.first_name_value() + i as u32);
    }
    Err(match field {
        Field::Month => format!("`{text}` is not a month (1-12 or JAN-DEC)"),
        Field::DayOfWeek => format!("`{text}` is not a day of the week (0-7 or SUN-SAT)"),
        _ => format!("`{text}` is not a number"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(expr: &str) -> Fields {
        CronSchedule::parse(expr).unwrap().fields
    }

    fn bits(values: &[u32]) -> u64 {
        values.iter().fold(0, |b, v| b | 1 << v)
    }

    fn err(expr: &str) -> String {
        CronSchedule::parse(expr).unwrap_err().to_string()
    }

    #[test]
    fn five_fields_expand() {
        let f = fields("*/15 9-17 1,15 JAN-mar/2 mon-FRI");
        assert_eq!(f.seconds, 1);
        assert_eq!(f.minutes, bits(&[0, 15, 30, 45]));
        assert_eq!(u64::from(f.hours), bits(&[9, 10, 11, 12, 13, 14, 15, 16, 17]));
        assert_eq!(u64::from(f.days), bits(&[1, 15]));
        assert_eq!(u64::from(f.months), bits(&[1, 3]));
        assert_eq!(u64::from(f.weekdays), bits(&[1, 2, 3, 4, 5]));
        assert!(f.day_or);
    }

    #[test]
    fn six_fields_have_seconds_first() {
        let s = CronSchedule::parse("5,10 0 12 * * *").unwrap();
        assert!(s.has_seconds());
        assert_eq!(s.fields.seconds, bits(&[5, 10]));
        assert_eq!(s.fields.minutes, 1);
        assert_eq!(s.fields.hours, 1 << 12);
        assert!(!CronSchedule::parse("0 12 * * *").unwrap().has_seconds());
    }

    #[test]
    fn steps_ranges_and_open_ended_steps() {
        assert_eq!(fields("5/20 * * * *").minutes, bits(&[5, 25, 45]));
        assert_eq!(fields("10-50/20 * * * *").minutes, bits(&[10, 30, 50]));
        assert_eq!(fields("59/15 * * * *").minutes, bits(&[59]));
        assert_eq!(fields("*/60 * * * *").minutes, bits(&[0]));
        assert_eq!(fields("5-5 * * * *").minutes, bits(&[5]));
        assert_eq!(fields("1-5/2,10,3 * * * *").minutes, bits(&[1, 3, 5, 10]));
        assert_eq!(u64::from(fields("0 0 * */5 *").months), bits(&[1, 6, 11]));
        assert_eq!(u64::from(fields("0 0 */10 * *").days), bits(&[1, 11, 21, 31]));
    }

    #[test]
    fn day_of_week_seven_is_sunday() {
        assert_eq!(fields("0 0 * * 7").weekdays, 1);
        assert_eq!(fields("0 0 * * 0,7").weekdays, 1);
        assert_eq!(u64::from(fields("0 0 * * 5-7").weekdays), bits(&[0, 5, 6]));
        assert_eq!(u64::from(fields("0 0 * * 1-7/2").weekdays), bits(&[0, 1, 3, 5]));
        assert_eq!(u64::from(fields("0 0 * * */2").weekdays), bits(&[0, 2, 4, 6]));
        assert_eq!(u64::from(fields("0 0 * * 7/2").weekdays), bits(&[0, 2, 4, 6]));
        assert_eq!(u64::from(fields("0 0 * * 1/2").weekdays), bits(&[1, 3, 5]));
        assert_eq!(u64::from(fields("0 0 * * sun,SAT").weekdays), bits(&[0, 6]));
    }

    #[test]
    fn macros() {
        for (m, body) in MACROS {
            assert_eq!(fields(m), fields(body), "{m}");
            assert_eq!(fields(&m.to_uppercase()), fields(body), "{m}");
        }
        assert_eq!(CronSchedule::parse(" @Daily ").unwrap().to_string(), " @Daily ");
    }

    #[test]
    fn day_fields_combine_like_croniter() {
        // Both restricted: OR.
        assert!(fields("0 0 1 * MON").day_or);
        assert!(fields("0 0 */2 * 1").day_or);
        // One of them a bare `*`: AND.
        assert!(!fields("0 0 1 * *").day_or);
        assert!(!fields("0 0 * * MON").day_or);
        assert!(!fields("0 0 *,5 * MON").day_or);
        // Every value while the other field contains `*`: unrestricted.
        assert!(!fields("0 0 1-31 * */2").day_or);
        assert!(!fields("0 0 */2 * 0-7").day_or);
        // Every value, the other without `*`: still OR, so every day.
        assert!(fields("0 0 1-31 * MON").day_or);
        assert!(fields("0 0 15 * */1").day_or);
    }

    #[test]
    fn hour_every_hour() {
        for e in [
            "0 * * * *",
            "0 */1 * * *",
            "0 0-23 * * *",
            "0 0-11,12-23 * * *",
            "@hourly",
        ] {
            assert!(CronSchedule::parse(e).unwrap().repeats_when_clocks_fall_back(), "{e}");
        }
        for e in ["0 */2 * * *", "0 2 * * *", "0 1-23 * * *", "@daily"] {
            assert!(!CronSchedule::parse(e).unwrap().repeats_when_clocks_fall_back(), "{e}");
        }
    }

    #[test]
    fn display_from_str_and_serde_keep_the_text() {
        let s: CronSchedule = "0  9 * * MON".parse().unwrap();
        assert_eq!(s.to_string(), "0  9 * * MON");
        assert_eq!(s.as_str(), "0  9 * * MON");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#""0  9 * * MON""#);
        assert_eq!(serde_json::from_str::<CronSchedule>(&json).unwrap(), s);
        let bad = serde_json::from_str::<CronSchedule>(r#""61 * * * *""#).unwrap_err();
        assert!(bad.to_string().contains("minute: 61 is out of range 0-59"), "{bad}");
    }

    #[test]
    fn every_error_has_its_message() {
        let cases: &[(&str, &str)] = &[
            (
                "61 * * * *",
                "invalid cron expression `61 * * * *`: minute: 61 is out of range 0-59",
            ),
            (
                "60 * * * * *",
                "invalid cron expression `60 * * * * *`: second: 60 is out of range 0-59",
            ),
            (
                "0 24 * * *",
                "invalid cron expression `0 24 * * *`: hour: 24 is out of range 0-23",
            ),
            (
                "0 0 0 * *",
                "invalid cron expression `0 0 0 * *`: day-of-month: 0 is out of range 1-31",
            ),
            (
                "0 0 32 * *",
                "invalid cron expression `0 0 32 * *`: day-of-month: 32 is out of range 1-31",
            ),
            (
                "0 0 * 13 *",
                "invalid cron expression `0 0 * 13 *`: month: 13 is out of range 1-12",
            ),
            (
                "0 0 * 0 *",
                "invalid cron expression `0 0 * 0 *`: month: 0 is out of range 1-12",
            ),
            (
                "0 0 * * 8",
                "invalid cron expression `0 0 * * 8`: day-of-week: 8 is out of range 0-7",
            ),
            (
                "99999999999 * * * *",
                "invalid cron expression `99999999999 * * * *`: minute: 99999999999 is out of range 0-59",
            ),
            ("", "invalid cron expression ``: the expression is empty"),
            ("   ", "invalid cron expression `   `: the expression is empty"),
            (
                "* * * *",
                "invalid cron expression `* * * *`: expected 5 fields (minute hour day-of-month month day-of-week) or 6 (a second field first), found 4",
            ),
            (
                "0 0 1 1 * 2026 *",
                "invalid cron expression `0 0 1 1 * 2026 *`: expected 5 fields (minute hour day-of-month month day-of-week) or 6 (a second field first), found 7",
            ),
            (
                "@reboot",
                "invalid cron expression `@reboot`: unknown macro `@reboot` (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)",
            ),
            (
                "1,,2 * * * *",
                "invalid cron expression `1,,2 * * * *`: minute: empty item in the list `1,,2`",
            ),
            (
                "1, * * * *",
                "invalid cron expression `1, * * * *`: minute: empty item in the list `1,`",
            ),
            (
                "x * * * *",
                "invalid cron expression `x * * * *`: minute: `x` is not a number",
            ),
            (
                "0 0 * JANUARY *",
                "invalid cron expression `0 0 * JANUARY *`: month: `JANUARY` is not a month (1-12 or JAN-DEC)",
            ),
            (
                "0 0 * * SUNDAY",
                "invalid cron expression `0 0 * * SUNDAY`: day-of-week: `SUNDAY` is not a day of the week (0-7 or SUN-SAT)",
            ),
            (
                "0 0 * * JAN",
                "invalid cron expression `0 0 * * JAN`: day-of-week: `JAN` is not a day of the week (0-7 or SUN-SAT)",
            ),
            (
                "0 MON * * *",
                "invalid cron expression `0 MON * * *`: hour: `MON` is not a number",
            ),
            (
                "*/0 * * * *",
                "invalid cron expression `*/0 * * * *`: minute: step 0 is out of range 1-60",
            ),
            (
                "*/90 * * * *",
                "invalid cron expression `*/90 * * * *`: minute: step 90 is out of range 1-60",
            ),
            (
                "0 */25 * * *",
                "invalid cron expression `0 */25 * * *`: hour: step 25 is out of range 1-24",
            ),
            (
                "0 0 * * */8",
                "invalid cron expression `0 0 * * */8`: day-of-week: step 8 is out of range 1-7",
            ),
            (
                "*/x * * * *",
                "invalid cron expression `*/x * * * *`: minute: step `x` is not a number",
            ),
            (
                "1/2/3 * * * *",
                "invalid cron expression `1/2/3 * * * *`: minute: step `2/3` is not a number",
            ),
            (
                "*/ * * * *",
                "invalid cron expression `*/ * * * *`: minute: `*/` has no step after `/`",
            ),
            (
                "/5 * * * *",
                "invalid cron expression `/5 * * * *`: minute: `` is not a number",
            ),
            (
                "5-1 * * * *",
                "invalid cron expression `5-1 * * * *`: minute: range `5-1` runs backwards (write it as a list of two ranges)",
            ),
            (
                "0 0 * * FRI-MON",
                "invalid cron expression `0 0 * * FRI-MON`: day-of-week: range `FRI-MON` runs backwards (write it as a list of two ranges)",
            ),
            (
                "1-2-3 * * * *",
                "invalid cron expression `1-2-3 * * * *`: minute: `1-2-3` is not a valid range",
            ),
            (
                "-5 * * * *",
                "invalid cron expression `-5 * * * *`: minute: `-5` is not a valid range",
            ),
            (
                "5- * * * *",
                "invalid cron expression `5- * * * *`: minute: `5-` is not a valid range",
            ),
            (
                "*-5 * * * *",
                "invalid cron expression `*-5 * * * *`: minute: `*` is not a number",
            ),
            (
                "1-60 * * * *",
                "invalid cron expression `1-60 * * * *`: minute: 60 is out of range 0-59",
            ),
            (
                "0 0 L * *",
                "invalid cron expression `0 0 L * *`: day-of-month: `L` (last day of the month) is not supported (in `L`)",
            ),
            (
                "0 0 LW * *",
                "invalid cron expression `0 0 LW * *`: day-of-month: `L` (last day of the month) is not supported (in `LW`)",
            ),
            (
                "0 0 15W * *",
                "invalid cron expression `0 0 15W * *`: day-of-month: `W` (nearest weekday) is not supported (in `15W`)",
            ),
            (
                "0 0 * * 5L",
                "invalid cron expression `0 0 * * 5L`: day-of-week: `L` (last weekday of the month) is not supported (in `5L`)",
            ),
            (
                "0 0 * * FRIL",
                "invalid cron expression `0 0 * * FRIL`: day-of-week: `L` (last weekday of the month) is not supported (in `FRIL`)",
            ),
            (
                "0 0 * * 5#2",
                "invalid cron expression `0 0 * * 5#2`: day-of-week: `#` (nth weekday of the month) is not supported (in `5#2`)",
            ),
            (
                "0 0 ? * MON",
                "invalid cron expression `0 0 ? * MON`: day-of-month: `?` is not supported; use `*` (in `?`)",
            ),
            (
                "H * * * *",
                "invalid cron expression `H * * * *`: minute: `H` (hashed values) is not supported (in `H`)",
            ),
            (
                "H(0-29)/10 * * * *",
                "invalid cron expression `H(0-29)/10 * * * *`: minute: `H` (hashed values) is not supported (in `H(0-29)/10`)",
            ),
        ];
        for (expr, message) in cases {
            assert_eq!(err(expr), *message, "{expr:?}");
        }
    }

    #[test]
    fn too_long_is_refused_and_quoted_short() {
        let long = format!("0 0 * * {}", vec!["MON"; 400].join(","));
        assert_eq!(
            err(&long),
            "invalid cron expression `0 0 * * MON,MON,MON,MON,MON,MON,MON,MON,...`: 1607 characters is too long (at most 1000)"
        );
    }

    #[test]
    fn errors_name_the_field() {
        match CronSchedule::parse("0 0 * * 9").unwrap_err() {
            ScheduleError::CronField { field, .. } => assert_eq!(field, Field::DayOfWeek),
            e => panic!("{e:?}"),
        }
    }
}
