//! Finding the next fire time: a calendar search on wall-clock times (skipping whole months, days,
//! hours and minutes that cannot match), and a walk over the time zone's offset changes that turns
//! wall-clock times into instants with the daylight-saving rules of the crate docs.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::civil::{self, Civil};
use crate::cron::{CronSchedule, Fields};

/// How far past the start [`CronSchedule::next_after`] searches before it gives up. The longest
/// wait between two fire times of an expression that fires at all is 8 years: 29 February around
/// a century year that is not a leap year (2096 to 2104). So a search of 9 years finds every fire
/// time that exists, and stops quickly for expressions that never fire (30 February).
pub const MAX_SEARCH_YEARS: i64 = 9;

impl CronSchedule {
    /// The first fire time strictly after `after`, evaluated on the wall clock of `tz`, or `None`
    /// if there is none within [`MAX_SEARCH_YEARS`] (the expression never fires, like `0 0 30 2
    /// *`, or the search would leave the range of [`Timestamp`]).
    ///
    /// Fire times are whole seconds; a fractional `after` is treated as its whole second, which
    /// changes nothing since no fire time lies between the two. Spring-forward gaps and repeated
    /// fall-back hours are handled as the crate docs describe.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let mut floor = after.as_second();
        if after.subsec_nanosecond() < 0 {
            floor -= 1;
        }
        let mut off = offset_at(tz, floor)?;
        let limit_year = Civil::from_seconds(floor + off).year + MAX_SEARCH_YEARS;
        let every_hour = self.repeats_when_clocks_fall_back();
        let f = &self.fields;
        // The search goes through stretches of constant offset ("segments"). In the current one,
        // with offset `off` and containing instant `seg_at`, no fire time shows on the clock
        // before wall time `from_wall`.
        let mut seg_at = floor;
        let mut from_wall = floor + off + 1;
        if !every_hour && let Some(end) = second_pass_end(tz, floor, off) {
            // `after` lies in the second pass of a repeated hour: its times fired on the first.
            from_wall = from_wall.max(end);
        }
        loop {
            let wall = f.next_match(from_wall, limit_year)?;
            let instant = wall - off;
            let Some((change_at, new_off)) = next_transition(tz, seg_at).filter(|(at, _)| instant >= *at) else {
                return Timestamp::from_second(instant).ok();
            };
            // The next match lies beyond this segment. If it falls in a spring-forward gap it
            // never shows on the clock: a fixed-hour schedule runs at the end of the gap instead
            // (moved by whole minutes, so it keeps its seconds, as croniter does); an every-hour
            // schedule just goes on with its next time.
            let gap_end = change_at + new_off;
            if !every_hour && new_off > off && wall < gap_end {
                let moved = wall + (gap_end - wall + 59) / 60 * 60;
                // A regular fire time just after the gap can precede the moved one only with
                // uneven seconds fields; take whichever comes first.
                let fire_wall = match f.next_match(gap_end, limit_year) {
                    Some(regular) if regular < moved => regular,
                    _ => moved,
                };
                return Timestamp::from_second(fire_wall - new_off).ok();
            }
            // Into the next segment. After clocks fall back, a fixed-hour schedule skips the
            // repeated wall times: they fired on the first pass.
            from_wall = if !every_hour && new_off < off {
                change_at + off
            } else {
                gap_end
            };
            (seg_at, off) = (change_at, new_off);
        }
    }
}

/// The zone's offset at instant `second`, in seconds.
fn offset_at(tz: &TimeZone, second: i64) -> Option<i64> {
    let ts = Timestamp::from_second(second).ok()?;
    Some(i64::from(tz.to_offset(ts).seconds()))
}

/// The first offset change strictly after `second`: its instant and the offset from then on.
fn next_transition(tz: &TimeZone, second: i64) -> Option<(i64, i64)> {
    let ts = Timestamp::from_second(second).ok()?;
    let t = tz.following(ts).next()?;
    Some((t.timestamp().as_second(), i64::from(t.offset().seconds())))
}

/// If instant `at` (whose offset is `off`) lies in the second pass of a repeated stretch of wall
/// time (clocks fell back before it), the wall time at which the repetition ends.
fn second_pass_end(tz: &TimeZone, at: i64, off: i64) -> Option<i64> {
    // The change that started the current offset: the last one at or before `at`.
    let ts = Timestamp::from_second(at.checked_add(1)?).ok()?;
    let change_at = tz.preceding(ts).next()?.timestamp().as_second();
    let before = offset_at(tz, change_at - 1)?;
    // Wall times [change_at + off, change_at + before) were shown before the change too.
    (before > off).then_some(change_at + before)
}

impl Fields {
    /// The first wall-clock time at or after `from` (civil seconds) that matches, or `None` once
    /// the search passes the end of `limit_year`.
    pub(crate) fn next_match(&self, from: i64, limit_year: i64) -> Option<i64> {
        let mut c = Civil::from_seconds(from);
        loop {
            // Carry overflows from the steps below, smallest unit first.
            if c.hour > 23 {
                c.hour = 0;
                c.day += 1;
            }
            if c.day > civil::days_in_month(c.year, c.month) {
                c.day = 1;
                c.month += 1;
            }
            if c.month > 12 {
                c.month = 1;
                c.year += 1;
            }
            if c.year > limit_year {
                return None;
            }
            let Some(month) = next_bit(u64::from(self.months), c.month) else {
                c = start_of(c.year + 1, 1, 1);
                continue;
            };
            if month != c.month {
                c = start_of(c.year, month, 1);
            }
            let Some(day) = self.next_day(c.year, c.month, c.day) else {
                c = start_of(c.year, c.month + 1, 1);
                continue;
            };
            if day != c.day {
                c = start_of(c.year, c.month, day);
            }
            let Some(hour) = next_bit(u64::from(self.hours), c.hour) else {
                c = start_of(c.year, c.month, c.day + 1);
                continue;
            };
            if hour != c.hour {
                (c.hour, c.minute, c.second) = (hour, 0, 0);
            }
            let Some(minute) = next_bit(self.minutes, c.minute) else {
                (c.hour, c.minute, c.second) = (c.hour + 1, 0, 0);
                continue;
            };
            if minute != c.minute {
                (c.minute, c.second) = (minute, 0);
            }
            let Some(second) = next_bit(self.seconds, c.second) else {
                (c.minute, c.second) = (c.minute + 1, 0);
                if c.minute > 59 {
                    (c.hour, c.minute) = (c.hour + 1, 0);
                }
                continue;
            };
            c.second = second;
            return Some(c.to_seconds());
        }
    }

    /// The first day of this month, at or after `from_day`, that the day fields accept.
    fn next_day(&self, year: i64, month: u32, from_day: u32) -> Option<u32> {
        let first = civil::days_from_civil(year, month, from_day);
        (from_day..=civil::days_in_month(year, month)).find(|&day| {
            let dom = self.days & (1 << day) != 0;
            let dow = self.weekdays & (1 << civil::weekday(first + i64::from(day - from_day))) != 0;
            if self.day_or { dom || dow } else { dom && dow }
        })
    }
}

/// Midnight starting the given day; day and month may be one past the end (carried by the caller).
fn start_of(year: i64, month: u32, day: u32) -> Civil {
    Civil {
        year,
        month,
        day,
        hour: 0,
        minute: 0,
        second: 0,
    }
}

/// The smallest set bit at position `from` or above.
fn next_bit(set: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = set & (u64::MAX << from);
    (rest != 0).then(|| rest.trailing_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The next `n` fire times after `start`, formatted with their offset in `zone`.
    fn next_n(expr: &str, zone: &str, start: &str, n: usize) -> Vec<String> {
        let schedule = CronSchedule::parse(expr).unwrap();
        let tz = TimeZone::get(zone).unwrap();
        let mut at: Timestamp = start.parse().unwrap();
        let mut out = Vec::new();
        for _ in 0..n {
            let Some(next) = schedule.next_after(at, &tz) else {
                break;
            };
            assert!(next > at, "{expr}: {next} is not after {at}");
            out.push(next.display_with_offset(tz.to_offset(next)).to_string());
            at = next;
        }
        out
    }

    #[test]
    fn utc_basics() {
        assert_eq!(
            next_n("*/15 * * * *", "UTC", "2026-05-04T10:07:30Z", 3),
            [
                "2026-05-04T10:15:00+00:00",
                "2026-05-04T10:30:00+00:00",
                "2026-05-04T10:45:00+00:00"
            ]
        );
        // Strictly after: a start on a fire time is not returned.
        assert_eq!(
            next_n("0 * * * *", "UTC", "2026-05-04T10:00:00Z", 1),
            ["2026-05-04T11:00:00+00:00"]
        );
        // A fractional start counts as its whole second.
        assert_eq!(
            next_n("* * * * * *", "UTC", "2026-05-04T10:00:00.5Z", 1),
            ["2026-05-04T10:00:01+00:00"]
        );
        assert_eq!(
            next_n("* * * * * *", "UTC", "1969-12-31T23:59:59.5Z", 1),
            ["1970-01-01T00:00:00+00:00"]
        );
        // Carries across the end of a year.
        assert_eq!(
            next_n("0 0 1 1 *", "UTC", "2026-12-31T23:59:59Z", 1),
            ["2027-01-01T00:00:00+00:00"]
        );
        assert_eq!(
            next_n("59 59 23 31 12 *", "UTC", "2026-06-01T00:00:00Z", 2),
            ["2026-12-31T23:59:59+00:00", "2027-12-31T23:59:59+00:00"]
        );
        assert_eq!(
            next_n("*/20 * * * * *", "UTC", "2026-05-04T10:59:45Z", 3),
            [
                "2026-05-04T11:00:00+00:00",
                "2026-05-04T11:00:20+00:00",
                "2026-05-04T11:00:40+00:00"
            ]
        );
        assert_eq!(
            next_n("@weekly", "UTC", "2026-01-01T00:00:00Z", 2),
            ["2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"]
        );
    }

    #[test]
    fn day_of_month_and_day_of_week() {
        // Both restricted: the 13th or any Friday.
        assert_eq!(
            next_n("0 0 13 * FRI", "UTC", "2026-01-01T00:00:00Z", 4),
            [
                "2026-01-02T00:00:00+00:00",
                "2026-01-09T00:00:00+00:00",
                "2026-01-13T00:00:00+00:00",
                "2026-01-16T00:00:00+00:00"
            ]
        );
        // Day-of-month `*`: Fridays only.
        assert_eq!(
            next_n("0 0 * * 5", "UTC", "2026-01-01T00:00:00Z", 2),
            ["2026-01-02T00:00:00+00:00", "2026-01-09T00:00:00+00:00"]
        );
        // Day-of-week `*`: the 31st, skipping months without one.
        assert_eq!(
            next_n("0 0 31 * *", "UTC", "2026-01-31T00:00:00Z", 2),
            ["2026-03-31T00:00:00+00:00", "2026-05-31T00:00:00+00:00"]
        );
    }

    #[test]
    fn rare_and_impossible_dates() {
        assert_eq!(
            next_n("0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", 2),
            ["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"]
        );
        // The longest wait there is: 2100 is not a leap year.
        assert_eq!(
            next_n("0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", 1),
            ["2104-02-29T00:00:00+00:00"]
        );
        let utc = TimeZone::UTC;
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        for never in ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "* * * 31 2 *"] {
            let began = std::time::Instant::now();
            assert_eq!(
                CronSchedule::parse(never).unwrap().next_after(start, &utc),
                None,
                "{never}"
            );
            assert!(
                began.elapsed() < std::time::Duration::from_millis(100),
                "{never}: {:?}",
                began.elapsed()
            );
        }
        // Past the end of what a Timestamp can hold.
        let end: Timestamp = "9999-12-30T12:00:00Z".parse().unwrap();
        assert_eq!(CronSchedule::parse("0 0 * * *").unwrap().next_after(end, &utc), None);
    }

    #[test]
    fn dense_schedules_do_not_step_second_by_second() {
        // Every second of one minute a year: the search must jump over months, not seconds.
        let s = CronSchedule::parse("* 30 12 1 JUN *").unwrap();
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let mut at: Timestamp = "2026-06-02T00:00:00Z".parse().unwrap();
        let began = std::time::Instant::now();
        for _ in 0..120 {
            at = s.next_after(at, &tz).unwrap();
        }
        assert_eq!(at.to_string(), "2028-06-01T10:30:59Z");
        assert!(
            began.elapsed() < std::time::Duration::from_millis(100),
            "{:?}",
            began.elapsed()
        );
    }

    #[test]
    fn fixed_offset_zone() {
        assert_eq!(
            next_n("0 9 * * *", "Asia/Kolkata", "2026-05-04T00:00:00Z", 2),
            ["2026-05-04T09:00:00+05:30", "2026-05-05T09:00:00+05:30"]
        );
    }

    #[test]
    fn berlin_spring_forward() {
        // 2026-03-29: 02:00 CET becomes 03:00 CEST.
        // A fixed-hour job in the gap runs at its end, once.
        assert_eq!(
            next_n("30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z", 3),
            [
                "2026-03-28T02:30:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-30T02:30:00+02:00"
            ]
        );
        assert_eq!(
            next_n("*/20 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 2),
            ["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"]
        );
        // Its seconds are kept.
        assert_eq!(
            next_n("30 15 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 2),
            ["2026-03-29T03:00:30+02:00", "2026-03-30T02:15:30+02:00"]
        );
        // A gap time moved to 03:00 and the regular 03:15 both run.
        assert_eq!(
            next_n("15 1-3 * * *", "Europe/Berlin", "2026-03-28T23:00:00Z", 4),
            [
                "2026-03-29T01:15:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-29T03:15:00+02:00",
                "2026-03-30T01:15:00+02:00"
            ]
        );
        // Starting one second before the change, the gap is still ahead; starting at it, passed.
        assert_eq!(
            next_n("4/21 2-23 * * *", "Europe/Berlin", "2026-03-29T00:59:59Z", 2),
            ["2026-03-29T03:00:00+02:00", "2026-03-29T03:04:00+02:00"]
        );
        assert_eq!(
            next_n("4/21 2-23 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", 1),
            ["2026-03-29T03:04:00+02:00"]
        );
        // An every-hour job skips the hour that does not exist.
        assert_eq!(
            next_n("30 * * * *", "Europe/Berlin", "2026-03-28T23:00:00Z", 4),
            [
                "2026-03-29T00:30:00+01:00",
                "2026-03-29T01:30:00+01:00",
                "2026-03-29T03:30:00+02:00",
                "2026-03-29T04:30:00+02:00"
            ]
        );
        assert_eq!(
            next_n("*/20 * * * *", "Europe/Berlin", "2026-03-29T00:30:00Z", 3),
            [
                "2026-03-29T01:40:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-29T03:20:00+02:00"
            ]
        );
    }

    #[test]
    fn berlin_fall_back() {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:00-02:59 happens twice.
        // A fixed-hour job runs once, on the first pass (croniter runs it twice).
        assert_eq!(
            next_n("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 3),
            [
                "2026-10-25T02:30:00+02:00",
                "2026-10-26T02:30:00+01:00",
                "2026-10-27T02:30:00+01:00"
            ]
        );
        assert_eq!(
            next_n("0,30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 3),
            [
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:30:00+02:00",
                "2026-10-26T02:00:00+01:00"
            ]
        );
        // Started during the second pass, it waits for the next day.
        assert_eq!(
            next_n("* 2 * * *", "Europe/Berlin", "2026-10-25T01:57:00Z", 1),
            ["2026-10-26T02:00:00+01:00"]
        );
        // An every-hour job runs on both passes.
        assert_eq!(
            next_n("30 * * * *", "Europe/Berlin", "2026-10-24T22:00:00Z", 5),
            [
                "2026-10-25T00:30:00+02:00",
                "2026-10-25T01:30:00+02:00",
                "2026-10-25T02:30:00+02:00",
                "2026-10-25T02:30:00+01:00",
                "2026-10-25T03:30:00+01:00"
            ]
        );
        assert_eq!(
            next_n("*/20 * * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", 5),
            [
                "2026-10-25T02:40:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T02:20:00+01:00",
                "2026-10-25T02:40:00+01:00",
                "2026-10-25T03:00:00+01:00"
            ]
        );
    }

    #[test]
    fn new_york_transitions() {
        // 2026-03-08: 02:00 EST becomes 03:00 EDT.
        assert_eq!(
            next_n("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 2),
            ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]
        );
        // 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:00-01:59 happens twice.
        assert_eq!(
            next_n("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
        );
        assert_eq!(
            next_n("0 * * * *", "America/New_York", "2026-11-01T04:30:00Z", 3),
            [
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:00:00-05:00",
                "2026-11-01T02:00:00-05:00"
            ]
        );
    }

    #[test]
    fn lord_howe_half_hour_shift() {
        // 2026-10-04: 02:00 +10:30 becomes 02:30 +11:00 (a 30-minute gap).
        assert_eq!(
            next_n("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00:00Z", 2),
            ["2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"]
        );
        assert_eq!(
            next_n("*/10 * * * *", "Australia/Lord_Howe", "2026-10-03T15:15:00Z", 3),
            [
                "2026-10-04T01:50:00+10:30",
                "2026-10-04T02:30:00+11:00",
                "2026-10-04T02:40:00+11:00"
            ]
        );
        // 2026-04-05: 02:00 +11:00 becomes 01:30 +10:30; 01:30-01:59 happens twice.
        assert_eq!(
            next_n("45 1 * * *", "Australia/Lord_Howe", "2026-04-04T00:00:00Z", 2),
            ["2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"]
        );
        assert_eq!(
            next_n("*/10 * * * *", "Australia/Lord_Howe", "2026-04-04T14:25:00Z", 7),
            [
                "2026-04-05T01:30:00+11:00",
                "2026-04-05T01:40:00+11:00",
                "2026-04-05T01:50:00+11:00",
                "2026-04-05T01:30:00+10:30",
                "2026-04-05T01:40:00+10:30",
                "2026-04-05T01:50:00+10:30",
                "2026-04-05T02:00:00+10:30"
            ]
        );
        // Both passes whatever the schedule's phase (croniter skips the second 01:40 here).
        assert_eq!(
            next_n("*/20 * * * *", "Australia/Lord_Howe", "2026-04-04T14:30:00Z", 3),
            [
                "2026-04-05T01:40:00+11:00",
                "2026-04-05T01:40:00+10:30",
                "2026-04-05T02:00:00+10:30"
            ]
        );
    }

    #[test]
    fn next_bit_edges() {
        assert_eq!(next_bit(0b1010, 0), Some(1));
        assert_eq!(next_bit(0b1010, 2), Some(3));
        assert_eq!(next_bit(0b1010, 4), None);
        assert_eq!(next_bit(1 << 63, 63), Some(63));
        assert_eq!(next_bit(u64::MAX, 64), None);
    }
}
