//! `mission:control/log`: lines go to the run's log (capped) and to the host's tracing output
//! with the run id attached.

use crate::bindings::mission::control::log::{Host, Level};
use crate::outcome::{LogLevel, LogLine};
use crate::state::{MAX_LOG_LINE_BYTES, MAX_LOG_LINES, RunState};

impl Host for RunState {
    async fn write(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        tracing::debug!(run_id = %self.call.run_id, tenant = %self.call.tenant, %level, %message, "plugin log");
        self.host_log(level, message);
    }
}

impl RunState {
    /// Adds a line to the run's log (capped in count and length); the host's own notes about a
    /// run go here too, so the run's page shows them beside the plugin's.
    pub(crate) fn host_log(&mut self, level: LogLevel, mut message: String) {
        if self.logs.len() >= MAX_LOG_LINES {
            self.logs_dropped += 1;
            return;
        }
        if message.len() > MAX_LOG_LINE_BYTES {
            let mut cut = MAX_LOG_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        self.logs.push(LogLine {
            at_ms: self.started.elapsed().as_millis() as u64,
            level,
            message,
        });
    }
}
