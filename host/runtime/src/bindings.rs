//! Host-side bindings of the `mission:control/workflow` world, generated from `wit/`.
//!
//! `wasi:http` and `wasi:io` are mapped onto wasmtime-wasi's own bindings so that one resource
//! table and one implementation serve both; `wasi:keyvalue`'s bucket is mapped onto our own type
//! so that the bucket a plugin opened carries the name the grant allowed.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "mission:control/workflow",
    // A request for approval that has no answer yet stops the run: a trap from the host.
    imports: { default: async, "mission:control/approval.request": async | trappable },
    exports: { default: async },
    require_store_data_send: true,
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:keyvalue/store.bucket": crate::host::kv::OpenBucket,
    },
});
