//! The run's log, shown on the run's page. The host keeps at most a thousand lines per run.
//!
//! ```no_run
//! mission_control_sdk::log::info(format!("processed {} messages", 12));
//! ```

use crate::bindings::mission::control::log::{Level, write};

/// Very detailed tracing.
pub fn trace(message: impl AsRef<str>) {
    write(Level::Trace, message.as_ref());
}

/// Debugging detail.
pub fn debug(message: impl AsRef<str>) {
    write(Level::Debug, message.as_ref());
}

/// Normal progress.
pub fn info(message: impl AsRef<str>) {
    write(Level::Info, message.as_ref());
}

/// Something odd that did not stop the run.
pub fn warn(message: impl AsRef<str>) {
    write(Level::Warn, message.as_ref());
}

/// Something failed.
pub fn error(message: impl AsRef<str>) {
    write(Level::Error, message.as_ref());
}
