//! Write Mission Control workflow plugins in Rust.
//!
//! A plugin is a function from a JSON input to a JSON output, registered with [`plugin!`] and built
//! for the `wasm32-wasip2` target. Inside it, the modules of this crate are the plugin's only way to
//! reach the world, and each reaches only what the host granted the run:
//!
//! | module | what it does |
//! |---|---|
//! | [`ai`] | chat with a model (metered and budgeted by the host) |
//! | [`agents`] | delegate a task to another agent of the team |
//! | [`kv`] | the tenant's key-value state |
//! | [`http`] | outbound HTTP to allow-listed hosts |
//! | [`registry`] | the tenant's structured data (clients, content calendar, ...) |
//! | [`approval`] | ask a person to approve |
//! | [`log`] | the run's log |
//! | [`config`] | the agent's parameters |
//!
//! ```no_run
//! use mission_control_sdk::{ai, log, plugin, Context, Result};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Input { topic: String }
//!
//! #[derive(Serialize)]
//! struct Output { headline: String }
//!
//! fn run(input: Input, ctx: &Context) -> Result<Output> {
//!     log::info(format!("writing a headline for {}", ctx.tenant));
//!     let reply = ai::complete("You write short headlines.", &input.topic)?;
//!     Ok(Output { headline: reply.text })
//! }
//!
//! plugin!(run);
//! # fn main() {}
//! ```
//!
//! A capability the run was not granted answers an [`Error`] of kind [`ErrorKind::NotGranted`];
//! returning it with `?` ends the run with that error, which the host reports as a refused
//! capability.
#![deny(missing_docs)]

pub mod agents;
pub mod ai;
pub mod approval;
pub mod config;
mod error;
pub mod http;
pub mod kv;
pub mod log;
pub mod registry;
pub mod time;

pub use error::{Error, ErrorKind, Result};
pub use serde_json::{self, Value, json};

/// Generated bindings of the `mission:control/workflow` world; the modules above wrap them.
#[doc(hidden)]
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "mission:control/workflow",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_workflow",
        default_bindings_module: "mission_control_sdk::bindings",
        generate_all,
    });
}

/// What the host tells a plugin about the run it is executing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The tenant (client business) this run belongs to.
    pub tenant: String,
    /// The agent whose workflow this is.
    pub agent: String,
    /// The automation that fired the run, if any.
    pub automation: Option<String>,
    /// The run's id, stable across retries.
    pub run_id: String,
    /// 1 for the first attempt, 2 for the first retry, ...
    pub attempt: u32,
    /// What started the run (`manual`, `cron`, `webhook`, `delegation`, `cli`, ...).
    pub trigger: String,
    /// Milliseconds of wall-clock time the run had when it started.
    pub deadline_ms: u64,
}

/// Registers `fn(Input, &Context) -> Result<Output>` as the plugin's entry point, where `Input`
/// implements `serde::Deserialize` and `Output` implements `serde::Serialize`. Input that does not
/// parse ends the run with an [`ErrorKind::InvalidInput`] error naming the problem.
///
/// ```no_run
/// use mission_control_sdk::{plugin, Context, Result, Value};
///
/// fn echo(input: Value, _ctx: &Context) -> Result<Value> {
///     Ok(input)
/// }
///
/// plugin!(echo);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! plugin {
    ($run:path) => {
        #[doc(hidden)]
        pub struct __MissionControlPlugin;

        impl $crate::bindings::exports::mission::control::handler::Guest for __MissionControlPlugin {
            fn run(
                input: ::std::string::String,
                context: $crate::bindings::mission::control::types::RunContext,
            ) -> ::std::result::Result<::std::string::String, $crate::bindings::mission::control::types::Failure> {
                $crate::__private::run(input, context, $run)
            }
        }

        // The generated export glue is `unsafe` FFI; keep it out of the plugin's own lint scope.
        #[allow(unsafe_code)]
        mod __mission_control_export {
            use super::__MissionControlPlugin;
            $crate::bindings::export_workflow!(__MissionControlPlugin with_types_in $crate::bindings);
        }
    };
}

#[doc(hidden)]
pub mod __private {
    use crate::bindings::mission::control::types::{Failure, RunContext};
    use crate::{Context, Error, Result};

    /// Parses the input, calls the plugin, serialises the output.
    pub fn run<I, O>(
        input: String,
        context: RunContext,
        f: fn(I, &Context) -> Result<O>,
    ) -> std::result::Result<String, Failure>
    where
        I: serde::de::DeserializeOwned,
        O: serde::Serialize,
    {
        let ctx = Context {
            tenant: context.tenant,
            agent: context.agent,
            automation: context.automation,
            run_id: context.run_id,
            attempt: context.attempt,
            trigger: context.trigger,
            deadline_ms: context.deadline_ms,
        };
        let result = serde_json::from_str::<I>(&input)
            .map_err(|e| Error::invalid_input(format!("the input does not match what this plugin expects: {e}")))
            .and_then(|input| f(input, &ctx))
            .and_then(|out| {
                serde_json::to_string(&out)
                    .map_err(|e| Error::internal(format!("cannot encode the output as JSON: {e}")))
            });
        result.map_err(Error::into_failure)
    }
}
