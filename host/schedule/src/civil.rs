//! Proleptic Gregorian calendar arithmetic on plain integers, for the cron search.
//!
//! A wall-clock time is kept as "civil seconds": seconds since 1970-01-01T00:00:00 on the wall
//! clock, with no zone. The search steps through those with integer arithmetic (no fallible
//! calls, no allocation); the time zone turns them into instants only at the edges (`search.rs`).

pub const SECONDS_PER_DAY: i64 = 86_400;

/// Days from 1970-01-01 to the given date (negative before). Howard Hinnant's `days_from_civil`.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` after 1970-01-01, as (year, month 1-12, day 1-31). Inverse of
/// [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both in range by construction: day 1-31, month 1-12.
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400;
    (if month <= 2 { year + 1 } else { year }, month, day)
}

/// Day of the week, 0 = Sunday ... 6 = Saturday, as cron counts. 1970-01-01 was a Thursday.
pub fn weekday(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

pub fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A wall-clock time broken into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Civil {
    pub fn from_seconds(s: i64) -> Civil {
        let (year, month, day) = civil_from_days(s.div_euclid(SECONDS_PER_DAY));
        let sod = s.rem_euclid(SECONDS_PER_DAY) as u32;
        Civil {
            year,
            month,
            day,
            hour: sod / 3600,
            minute: sod / 60 % 60,
            second: sod % 60,
        }
    }

    pub fn to_seconds(self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * SECONDS_PER_DAY
            + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_and_agree_with_jiff() {
        // Every day from 1600 to 2500 (covers the 1700/1800/1900/2100 non-leap centuries and 2000).
        let start = days_from_civil(1600, 1, 1);
        let end = days_from_civil(2500, 12, 31);
        let mut date = jiff::civil::date(1600, 1, 1);
        for days in start..=end {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(
                (y, m, d),
                (i64::from(date.year()), date.month() as u32, date.day() as u32)
            );
            assert_eq!(days_from_civil(y, m, d), days);
            assert_eq!(weekday(days), date.weekday().to_sunday_zero_offset() as u32);
            assert_eq!(days_in_month(y, m), date.days_in_month() as u32);
            date = date.tomorrow().unwrap();
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(weekday(days_from_civil(2026, 3, 29)), 0);
        let c = Civil::from_seconds(-1);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (1969, 12, 31, 23, 59, 59)
        );
        assert_eq!(c.to_seconds(), -1);
    }
}
