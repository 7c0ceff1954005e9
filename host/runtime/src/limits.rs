//! What one run may consume, how those limits are validated, and the store limiter that enforces
//! the memory cap and records the peak.

use std::time::Duration;

/// Default fuel per run. One unit is roughly one simple wasm instruction; two billion is about
/// 0.2 s of pure computation on a 2-core machine. Plugins spend most of their time waiting on AI
/// and HTTP, which costs no fuel, so this bounds runaway loops without bothering real work.
pub const DEFAULT_FUEL: u64 = 2_000_000_000;
/// Largest fuel budget accepted (about 100 s of pure computation): beyond it the deadline, not
/// fuel, would be what stops a loop, so a bigger number is a mistake.
pub const MAX_FUEL: u64 = 1_000_000_000_000;
/// Default memory cap per run. Text-processing plugins need a few MiB; this leaves room for
/// large AI responses and JSON documents.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;
/// Smallest memory cap accepted: a Rust guest's stack and data segments alone need about 1 MiB.
pub const MIN_MEMORY_BYTES: u64 = 2 << 20;
/// Default wall-clock deadline per run: long enough for a few AI calls, short enough that a stuck
/// run is noticed within a minute.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);
/// Longest deadline accepted. Longer work should be split into delegated runs, which each get
/// their own deadline, rather than one run holding a worker for hours.
pub const MAX_DEADLINE: Duration = Duration::from_secs(3600);
/// Default cap on a run's output: a JSON document shown on a web page and stored per run.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1 << 20;
/// Largest output cap accepted (outputs are stored in the database, one row per run).
pub const MAX_OUTPUT_BYTES: usize = 16 << 20;

/// The limits of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fuel budget (wasm instructions, roughly).
    pub fuel: u64,
    /// Cap on linear memory, in bytes, across the component's memories.
    pub memory_bytes: u64,
    /// Wall-clock time from the start of instantiation to the end of `run`.
    pub deadline: Duration,
    /// Largest output accepted, in bytes.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: DEFAULT_FUEL,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            deadline: DEFAULT_DEADLINE,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

/// A limit outside the range this host accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} must be between {min} and {max}, got {got}")]
pub struct LimitError {
    pub name: &'static str,
    pub min: String,
    pub max: String,
    pub got: String,
}

impl Limits {
    /// Checks every limit against its range; `host_max_memory` is the runtime's per-instance
    /// memory ceiling (the pooling allocator's slot size).
    pub fn validate(&self, host_max_memory: u64) -> Result<(), LimitError> {
        fn check<T: PartialOrd + ToString>(
            name: &'static str,
            got: T,
            min: T,
            max: T,
            unit: &str,
        ) -> Result<(), LimitError> {
            if got < min || got > max {
                return Err(LimitError {
                    name,
                    min: format!("{}{unit}", min.to_string()),
                    max: format!("{}{unit}", max.to_string()),
                    got: format!("{}{unit}", got.to_string()),
                });
            }
            Ok(())
        }
        check("fuel", self.fuel, 1, MAX_FUEL, "")?;
        check(
            "memory",
            self.memory_bytes >> 20,
            MIN_MEMORY_BYTES >> 20,
            host_max_memory >> 20,
            " MiB",
        )?;
        check("timeout", self.deadline.as_millis(), 1, MAX_DEADLINE.as_millis(), " ms")?;
        check("max output", self.max_output_bytes, 1, MAX_OUTPUT_BYTES, " bytes")?;
        Ok(())
    }
}

/// Most instances one component may create (a Rust guest has one main module and a few shims).
const MAX_INSTANCES_PER_RUN: usize = 16;
/// Most tables one component may create.
const MAX_TABLES_PER_RUN: usize = 16;
/// Most memories one component may create.
const MAX_MEMORIES_PER_RUN: usize = 4;
/// Most table elements (function references) per table.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// The store's resource limiter: enforces the memory cap over all memories of the run, and
/// remembers the peak and whether the cap was what stopped the run. The record matters because a
/// failed `memory.grow` reaches the host as a generic error, not as a distinct trap.
#[derive(Debug)]
pub struct RunLimiter {
    limit: u64,
    /// Bytes of linear memory in use now, summed over memories.
    current: u64,
    peak: u64,
    hit: bool,
}

impl RunLimiter {
    pub fn new(limit: u64) -> RunLimiter {
        RunLimiter {
            limit,
            current: 0,
            peak: 0,
            hit: false,
        }
    }

    /// Highest total linear memory the run reached, in bytes.
    pub fn peak(&self) -> u64 {
        self.peak
    }

    /// Whether a growth was refused because of the cap.
    pub fn hit_memory_limit(&self) -> bool {
        self.hit
    }
}

impl wasmtime::ResourceLimiter for RunLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let next = self.current - current as u64 + desired as u64;
        if next > self.limit {
            self.hit = true;
            return Err(wasmtime::format_err!(
                "memory limit of {} MiB reached (the plugin asked for {} MiB)",
                self.limit >> 20,
                next.div_ceil(1 << 20)
            ));
        }
        self.current = next;
        self.peak = self.peak.max(next);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES_PER_RUN
    }

    fn tables(&self) -> usize {
        MAX_TABLES_PER_RUN
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES_PER_RUN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_ranges() {
        let max = 1 << 30;
        assert!(Limits::default().validate(max).is_ok());
        let e = Limits {
            fuel: 0,
            ..Limits::default()
        }
        .validate(max)
        .unwrap_err();
        assert_eq!(e.to_string(), "fuel must be between 1 and 1000000000000, got 0");
        let e = Limits {
            memory_bytes: 100_000 << 20,
            ..Limits::default()
        }
        .validate(max)
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "memory must be between 2 MiB and 1024 MiB, got 100000 MiB"
        );
        let e = Limits {
            deadline: Duration::ZERO,
            ..Limits::default()
        }
        .validate(max)
        .unwrap_err();
        assert_eq!(e.to_string(), "timeout must be between 1 ms and 3600000 ms, got 0 ms");
    }

    #[test]
    fn limiter_tracks_peak_and_refuses_past_the_cap() {
        use wasmtime::ResourceLimiter;
        let mut l = RunLimiter::new(4 << 20);
        assert!(l.memory_growing(0, 1 << 20, None).unwrap());
        assert!(l.memory_growing(1 << 20, 3 << 20, None).unwrap());
        assert_eq!(l.peak(), 3 << 20);
        assert!(l.memory_growing(3 << 20, 5 << 20, None).is_err());
        assert!(l.hit_memory_limit());
        assert_eq!(l.peak(), 3 << 20);
    }
}
