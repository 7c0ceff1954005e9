//! OpenTelemetry trace export for the host, without the OpenTelemetry SDK: [`layer`] returns an
//! [`OtlpLayer`], a `tracing` layer that turns the host's spans (a run, an AI call) with their
//! fields and events into OTLP spans, and an [`Exporter`] that posts them in batches to a
//! collector over OTLP/HTTP with the JSON encoding. Doing it by hand keeps the build lean (no
//! opentelemetry, prost or tonic); the whole wire format is in `otlp.rs`.
//!
//! Exporting is best effort by design: the queue between the two is bounded and never waited on,
//! a failed batch is retried once, and everything lost is counted in [`Stats`].

mod collect;
mod config;
mod export;
mod otlp;

pub use collect::{MAX_ATTRIBUTES, MAX_EVENTS, MAX_VALUE_BYTES, OtlpLayer};
pub use config::{
    DEFAULT_EXPORT_EVERY, DEFAULT_MAX_BATCH, DEFAULT_MAX_QUEUE, DEFAULT_TIMEOUT, OtlpConfig, TRACES_PATH,
};
pub use export::{Exporter, Stats, WARN_EVERY, layer};
