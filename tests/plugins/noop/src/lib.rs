//! The trivial plugin: returns its input. The runtime benchmark measures per-run overhead with it.

use mission_control_sdk::{Context, Result, Value, plugin};

fn run(input: Value, _ctx: &Context) -> Result<Value> {
    Ok(input)
}

plugin!(run);
