//! The other inputs of a schedule: a time zone name, an interval (`1h30m`) and a one-time date.

use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::error::ScheduleError;

/// Shortest interval accepted. Anything more frequent is a loop, not a schedule, and each firing
/// starts a sandboxed run.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Longest interval accepted: a leap year. Anything rarer is better said with a cron expression or
/// a one-time date, and the bound keeps the arithmetic far from overflow.
pub const MAX_INTERVAL: Duration = Duration::from_secs(366 * 86_400);

/// Looks up an IANA time zone name (`Europe/Berlin`, `UTC`) in the system's time zone database.
pub fn parse_timezone(name: &str) -> Result<TimeZone, ScheduleError> {
    TimeZone::get(name).map_err(|_| {
        if jiff::tz::db().is_definitively_empty() {
            ScheduleError::NoTimeZoneDatabase { name: name.to_string() }
        } else {
            ScheduleError::UnknownTimeZone { name: name.to_string() }
        }
    })
}

/// Parses an interval: numbers each followed by a unit, `d`, `h`, `m` or `s`, largest unit first,
/// each at most once (`90s`, `15m`, `1h30m`, `2h`, `1d`). It must lie between [`MIN_INTERVAL`]
/// and [`MAX_INTERVAL`].
pub fn parse_interval(s: &str) -> Result<Duration, ScheduleError> {
    let invalid = |problem: String| ScheduleError::Interval {
        text: s.to_string(),
        problem,
    };
    if s.trim().is_empty() {
        return Err(invalid(
            "empty (expected a number and a unit, e.g. 90s, 15m, 1h30m or 1d)".into(),
        ));
    }
    if s.starts_with('-') {
        return Err(invalid("negative intervals are not allowed".into()));
    }
    let too_long = || invalid(format!("must be at most {}", format_interval(MAX_INTERVAL.as_secs())));
    const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3600), ('m', 60), ('s', 1)];
    let mut total: u64 = 0;
    // Index into UNITS of the next unit allowed: each must be smaller than the one before.
    let mut next_unit = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (number, after) = rest.split_at(digits);
        let Some(unit) = after.chars().next() else {
            return Err(invalid(format!("missing unit after `{number}` (use s, m, h or d)")));
        };
        if number.is_empty() {
            return Err(invalid(match unit {
                'd' | 'h' | 'm' | 's' => format!("missing number before `{unit}`"),
                '.' | ',' => "fractions are not supported (write 1h30m, not 1.5h)".into(),
                c if c.is_whitespace() => "spaces are not allowed (write 1h30m)".into(),
                c => format!("unknown unit `{c}` (use s, m, h or d)"),
            }));
        }
        if unit == '.' || unit == ',' {
            return Err(invalid("fractions are not supported (write 1h30m, not 1.5h)".into()));
        }
        let Some(position) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(invalid(if unit.is_whitespace() {
                "spaces are not allowed (write 1h30m)".into()
            } else {
                format!("unknown unit `{unit}` (use s, m, h or d)")
            }));
        };
        if position < next_unit {
            return Err(invalid(
                "units must go from largest to smallest (d, h, m, s), each at most once".into(),
            ));
        }
        next_unit = position + 1;
        // A number too large for u64 is certainly above the maximum.
        let n: u64 = number.parse().map_err(|_| too_long())?;
        total = n
            .checked_mul(UNITS[position].1)
            .and_then(|v| v.checked_add(total))
            .ok_or_else(too_long)?;
        rest = &after[unit.len_utf8()..];
    }
    let total = Duration::from_secs(total);
    if total < MIN_INTERVAL {
        return Err(invalid(format!(
            "must be at least {}",
            format_interval(MIN_INTERVAL.as_secs())
        )));
    }
    if total > MAX_INTERVAL {
        return Err(too_long());
    }
    Ok(total)
}

/// Writes `secs` the way [`parse_interval`] reads it (`1d2h3m4s`, leaving out zero parts).
pub fn format_interval(mut secs: u64) -> String {
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out += &format!("{}{unit}", secs / size);
            secs %= size;
        }
    }
    if out.is_empty() { "0s".into() } else { out }
}

/// Parses a one-time date: an RFC 3339 timestamp with its offset, such as `2026-12-01T09:00:00Z`
/// or `2026-12-01T10:00:00+01:00`. A time without an offset is refused: it would mean a
/// different instant in every zone.
pub fn parse_at(s: &str) -> Result<Timestamp, ScheduleError> {
    s.parse::<Timestamp>().map_err(|e| ScheduleError::Time {
        text: s.to_string(),
        problem: format!(
            "expected an RFC 3339 timestamp with an offset, such as 2026-12-01T09:00:00Z or 2026-12-01T10:00:00+01:00 ({e})"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones() {
        assert_eq!(
            parse_timezone("Europe/Berlin").unwrap().iana_name(),
            Some("Europe/Berlin")
        );
        assert_eq!(parse_timezone("UTC").unwrap().iana_name(), Some("UTC"));
        assert_eq!(
            parse_timezone("Mars/Base").unwrap_err().to_string(),
            "unknown time zone `Mars/Base` (expected an IANA name such as Europe/Berlin or UTC)"
        );
        assert_eq!(
            parse_timezone("").unwrap_err().to_string(),
            "unknown time zone `` (expected an IANA name such as Europe/Berlin or UTC)"
        );
    }

    #[test]
    fn intervals() {
        let cases = [
            ("90s", 90),
            ("15m", 900),
            ("1h30m", 5400),
            ("2h", 7200),
            ("1d", 86_400),
            ("1d2h3m4s", 93_784),
            ("1s", 1),
            ("366d", 366 * 86_400),
            ("0h1s", 1),
            ("0090m", 5400),
        ];
        for (text, secs) in cases {
            assert_eq!(parse_interval(text).unwrap(), Duration::from_secs(secs), "{text}");
        }
    }

    #[test]
    fn interval_errors() {
        let cases = [
            (
                "",
                "invalid interval ``: empty (expected a number and a unit, e.g. 90s, 15m, 1h30m or 1d)",
            ),
            (
                " ",
                "invalid interval ` `: empty (expected a number and a unit, e.g. 90s, 15m, 1h30m or 1d)",
            ),
            ("0s", "invalid interval `0s`: must be at least 1s"),
            ("0h0m", "invalid interval `0h0m`: must be at least 1s"),
            ("-5m", "invalid interval `-5m`: negative intervals are not allowed"),
            (
                "90",
                "invalid interval `90`: missing unit after `90` (use s, m, h or d)",
            ),
            (
                "1h30",
                "invalid interval `1h30`: missing unit after `30` (use s, m, h or d)",
            ),
            ("5w", "invalid interval `5w`: unknown unit `w` (use s, m, h or d)"),
            ("5M", "invalid interval `5M`: unknown unit `M` (use s, m, h or d)"),
            ("+5m", "invalid interval `+5m`: unknown unit `+` (use s, m, h or d)"),
            ("h", "invalid interval `h`: missing number before `h`"),
            ("1hm", "invalid interval `1hm`: missing number before `m`"),
            (
                "1.5h",
                "invalid interval `1.5h`: fractions are not supported (write 1h30m, not 1.5h)",
            ),
            (
                "1h 30m",
                "invalid interval `1h 30m`: spaces are not allowed (write 1h30m)",
            ),
            (
                "30m1h",
                "invalid interval `30m1h`: units must go from largest to smallest (d, h, m, s), each at most once",
            ),
            (
                "1h1h",
                "invalid interval `1h1h`: units must go from largest to smallest (d, h, m, s), each at most once",
            ),
            ("367d", "invalid interval `367d`: must be at most 366d"),
            ("366d1s", "invalid interval `366d1s`: must be at most 366d"),
            (
                "99999999999999999999s",
                "invalid interval `99999999999999999999s`: must be at most 366d",
            ),
            (
                "9999999999999999d",
                "invalid interval `9999999999999999d`: must be at most 366d",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(parse_interval(text).unwrap_err().to_string(), message, "{text:?}");
        }
    }

    #[test]
    fn one_time_dates() {
        assert_eq!(parse_at("2026-12-01T09:00:00Z").unwrap().as_second(), 1_796_115_600);
        assert_eq!(
            parse_at("2026-12-01T10:00:00+01:00").unwrap(),
            parse_at("2026-12-01T09:00:00Z").unwrap()
        );
        assert_eq!(
            parse_at("2026-12-01T09:00Z").unwrap().to_string(),
            "2026-12-01T09:00:00Z"
        );
    }

    #[test]
    fn one_time_date_errors() {
        const EXPECTED: &str =
            "expected an RFC 3339 timestamp with an offset, such as 2026-12-01T09:00:00Z or 2026-12-01T10:00:00+01:00";
        let cases = [
            (
                "2026-12-01T09:00:00",
                "failed to find offset component, which is required for parsing a timestamp",
            ),
            (
                "2026-12-01",
                "failed to find time component, which is required for parsing a timestamp",
            ),
            (
                "tomorrow",
                "failed to parse four digit integer as year: invalid digit, expected 0-9 but got t",
            ),
            (
                "",
                "expected four digit year (or leading sign for six digit year), but found end of input",
            ),
            (
                "2026-02-30T09:00:00Z",
                "parsed date is not valid: parameter 'day' for `2026-02` is invalid, must be in range `1..=28`",
            ),
        ];
        for (text, reason) in cases {
            assert_eq!(
                parse_at(text).unwrap_err().to_string(),
                format!("invalid time `{text}`: {EXPECTED} ({reason})"),
                "{text:?}"
            );
        }
    }
}
