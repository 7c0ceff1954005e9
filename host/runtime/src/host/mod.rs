//! The host side of every import in the `workflow` world, and the linker that wires them.
//!
//! Each import checks the run's [`Grants`](crate::Grants) first and answers a refusal with an error
//! the guest can show, recording it as a [`Denial`](crate::Denial) too.

pub(crate) mod agents;
pub(crate) mod ai;
pub(crate) mod approval;
pub(crate) mod config;
pub(crate) mod http;
pub(crate) mod kv;
pub(crate) mod log;
pub(crate) mod registry;

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::mission::control as mc;
use crate::bindings::wasi as wasi_ext;
use crate::state::RunState;

/// Adds WASI (in its empty, grant-nothing form), `wasi:http`, and the Mission Control imports.
pub(crate) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    mc::ai::add_to_linker::<RunState, HasSelf<RunState>>(linker, |s| s)?;
    mc::agents::add_to_linker::<RunState, HasSelf<RunState>>(linker, |s| s)?;
    mc::registry::add_to_linker::<RunState, HasSelf<RunState>>(linker, |s| s)?;
    mc::approval::add_to_linker::<RunState, HasSelf<RunState>>(linker, |s| s)?;
    mc::log::add_to_linker::<RunState, HasSelf<RunState>>(linker, |s| s)?;
    wasi_ext::keyvalue::store::add_to_linker::<RunState, HasSelf<RunState>>(linker, |s| s)?;
    wasi_ext::config::store::add_to_linker::<RunState, HasSelf<RunState>>(linker, |s| s)?;
    Ok(())
}
