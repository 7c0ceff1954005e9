//! A plugin built against mission:control@0.2.0, which this host does not speak.
#![allow(unsafe_code)] // generated export glue

mod bindings {
    wit_bindgen::generate!({ world: "workflow", path: "wit" });
}

use bindings::exports::mission::control::handler::{Failure, Guest, RunContext};

struct Future;

impl Guest for Future {
    fn run(input: String, _context: RunContext) -> Result<String, Failure> {
        bindings::mission::control::log::write(bindings::mission::control::log::Level::Info, "from the future");
        Ok(input)
    }
}

bindings::export!(Future with_types_in bindings);
