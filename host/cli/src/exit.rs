//! Exit codes: one per kind of failure, so scripts can tell them apart. Documented in README.md.

/// The plugin ran and succeeded.
pub const OK: u8 = 0;
/// The plugin returned its own error.
pub const PLUGIN_ERROR: u8 = 1;
/// Bad command-line input (clap uses 2 for usage errors too).
pub const USAGE: u8 = 2;
/// The plugin could not be loaded: not found, not a component, wrong world, incompatible contract.
pub const LOAD: u8 = 3;
pub const OUT_OF_FUEL: u8 = 4;
pub const MEMORY_LIMIT: u8 = 5;
pub const DEADLINE: u8 = 6;
pub const TRAP: u8 = 7;
pub const STACK_OVERFLOW: u8 = 8;
pub const CAPABILITY_DENIED: u8 = 9;
/// The output was too large or not JSON.
pub const BAD_OUTPUT: u8 = 10;
pub const CANCELLED: u8 = 11;
/// The host itself failed (EX_SOFTWARE).
pub const HOST: u8 = 70;

/// The exit code for a run's failure.
pub fn for_failure(f: &mc_runtime::RunFailure) -> u8 {
    use mc_runtime::RunFailure as F;
    match f {
        F::Plugin { .. } => PLUGIN_ERROR,
        F::OutOfFuel { .. } => OUT_OF_FUEL,
        F::MemoryLimit { .. } => MEMORY_LIMIT,
        F::Deadline { .. } => DEADLINE,
        F::Trap { .. } => TRAP,
        F::StackOverflow { .. } => STACK_OVERFLOW,
        // `missionctl run` has nobody to ask for approval: the import is refused before a run
        // could wait, so this arm is the refusal's.
        F::CapabilityDenied { .. } | F::AwaitingApproval { .. } => CAPABILITY_DENIED,
        F::OutputTooLarge { .. } | F::InvalidOutput { .. } => BAD_OUTPUT,
        F::Cancelled => CANCELLED,
        F::Host { .. } => HOST,
    }
}
