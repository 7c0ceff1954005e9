//! The one error type of this crate: every refusal names the text it refuses and why.

use crate::cron::Field;

/// Why a schedule, time zone, interval or time does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// One field of a cron expression is wrong.
    #[error("invalid cron expression `{expr}`: {field}: {problem}")]
    CronField {
        expr: String,
        field: Field,
        problem: String,
    },
    /// A cron expression is wrong as a whole (field count, unknown macro, length).
    #[error("invalid cron expression `{expr}`: {problem}")]
    Cron { expr: String, problem: String },
    /// The name is not in the time zone database.
    #[error("unknown time zone `{name}` (expected an IANA name such as Europe/Berlin or UTC)")]
    UnknownTimeZone { name: String },
    /// This machine has no time zone database, so no name can be looked up.
    #[error(
        "cannot look up time zone `{name}`: no time zone database found (install the tzdata package, which provides /usr/share/zoneinfo)"
    )]
    NoTimeZoneDatabase { name: String },
    /// An interval such as `1h30m` does not parse or is out of range.
    #[error("invalid interval `{text}`: {problem}")]
    Interval { text: String, problem: String },
    /// A one-time date is not an RFC 3339 timestamp with an offset.
    #[error("invalid time `{text}`: {problem}")]
    Time { text: String, problem: String },
}
