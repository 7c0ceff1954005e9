//! Calendar dates for workflows that schedule or compare by day: `YYYY-MM-DD` text to a day number
//! and back (days since 1970-01-01, proleptic Gregorian; Howard Hinnant's civil-date algorithms),
//! and today's date from the clock the host gives plugins (UTC).

/// Days since 1970-01-01 of a `YYYY-MM-DD` date; `None` when it is not one.
pub fn days(date: &str) -> Option<i64> {
    let mut it = date.splitn(3, '-');
    let (y, m, d): (i64, i64, i64) = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    if date.len() != 10 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The year, month and day of a day number.
pub fn ymd(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The `YYYY-MM-DD` of a day number.
pub fn date(days: i64) -> String {
    let (y, m, d) = ymd(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Today's day number, UTC.
pub fn today() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
        .div_euclid(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_across_months_and_leap_years() {
        for d in ["1970-01-01", "2024-02-29", "2026-12-31", "2027-03-01"] {
            assert_eq!(date(days(d).unwrap()), d);
        }
        assert_eq!(date(days("2026-02-27").unwrap() + 3), "2026-03-02");
        assert_eq!(date(20_788), "2026-12-01");
        assert!(days("2026-13-01").is_none() && days("yesterday").is_none());
    }
}
