//! [`OtlpLayer`]: the `tracing` layer that builds OTLP spans out of the host's spans. It gives each
//! span its ids when it opens, gathers its fields, events and error status while it lives, and
//! hands it to the exporter's queue when it closes, without ever waiting on the queue.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::export::{Counters, Stats};
use crate::otlp::{Attribute, FinishedSpan, SpanEvent, Value};

/// Attributes kept per span and per event: the OpenTelemetry SDK's default span limits
/// (`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`). More are counted in
/// `droppedAttributesCount`.
pub const MAX_ATTRIBUTES: usize = 128;

/// Events kept per span (`OTEL_SPAN_EVENT_COUNT_LIMIT`): a run that logs in a loop must not make
/// its span, held in memory until it closes, grow without bound. More are counted in
/// `droppedEventsCount`.
pub const MAX_EVENTS: usize = 128;

/// Longest string value kept, in bytes. The queue bounds the number of spans; this and the two
/// limits above bound their size, so a dead collector costs at most a known amount of memory even
/// when someone logs a whole response body with `?`.
pub const MAX_VALUE_BYTES: usize = 4096;

/// Targets whose spans and events are never exported: the exporter's own logs and the HTTP stack
/// it posts with. Exporting them would feed back, every export making spans for the next one.
const PLUMBING_TARGETS: [&str; 5] = ["mc_telemetry", "reqwest", "hyper", "h2", "rustls"];

/// The attribute every span carries with its `tracing` target (the module that opened it).
const CODE_NAMESPACE: &str = "code.namespace";

/// The attribute that keeps an event's level, since OTLP events have no level of their own.
const LEVEL: &str = "level";

/// The layer. Install it on a [`tracing_subscriber::registry()`] next to the other layers; it
/// sees whatever the subscriber's global filters let through, so give the other layers their
/// filters with `.with_filter` if it should see more than they print.
pub struct OtlpLayer {
    queue: mpsc::Sender<FinishedSpan>,
    counters: Arc<Counters>,
}

impl OtlpLayer {
    pub(crate) fn new(queue: mpsc::Sender<FinishedSpan>, counters: Arc<Counters>) -> Self {
        Self { queue, counters }
    }

    /// The same counters as [`crate::Exporter::stats`].
    pub fn stats(&self) -> Stats {
        Stats::new(self.counters.clone())
    }
}

/// The state of a span that is still open, kept in the registry's extensions for that span.
struct OpenSpan {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_span_id: Option<[u8; 8]>,
    start_unix_nano: u64,
    attributes: Vec<Attribute>,
    dropped_attributes: u32,
    events: Vec<SpanEvent>,
    dropped_events: u32,
    error: Option<String>,
}

impl<S> Layer<S> for OtlpLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let metadata = attrs.metadata();
        if is_plumbing(metadata.target()) {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        // The nearest ancestor that is exported, so that a skipped span in between (an HTTP
        // client's, say) does not cut the trace in two.
        let parent = span
            .scope()
            .skip(1)
            .find_map(|s| s.extensions().get::<OpenSpan>().map(|p| (p.trace_id, p.span_id)));
        let mut fields = Fields::new();
        fields.set(CODE_NAMESPACE, Value::String(metadata.target().to_string()));
        // Recorded before taking the extensions' lock: a field's `Debug` may itself log.
        attrs.record(&mut fields);
        let open = OpenSpan {
            trace_id: parent.map_or_else(random_id, |(trace, _)| trace),
            span_id: random_id(),
            parent_span_id: parent.map(|(_, span)| span),
            start_unix_nano: now_unix_nano(),
            attributes: fields.attributes,
            dropped_attributes: fields.dropped,
            events: Vec::new(),
            dropped_events: 0,
            error: None,
        };
        span.extensions_mut().insert(open);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if span.extensions().get::<OpenSpan>().is_none() {
            return;
        }
        let mut fields = Fields::new();
        values.record(&mut fields);
        let mut extensions = span.extensions_mut();
        let Some(open) = extensions.get_mut::<OpenSpan>() else {
            return;
        };
        for Attribute { key, value } in fields.attributes {
            if !set_attribute(&mut open.attributes, key, value) {
                open.dropped_attributes += 1;
            }
        }
        open.dropped_attributes += fields.dropped;
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        if is_plumbing(metadata.target()) {
            return;
        }
        // An event outside any exported span has no trace to belong to: it is left to the other
        // layers (the log).
        let Some(scope) = ctx.event_scope(event) else { return };
        let Some(span) = scope.into_iter().find(|s| s.extensions().get::<OpenSpan>().is_some()) else {
            return;
        };
        let mut fields = Fields::new();
        fields.set(LEVEL, Value::String(metadata.level().to_string()));
        fields.message = Some(None);
        event.record(&mut fields);
        let name = fields.message.flatten().unwrap_or_else(|| metadata.name().to_string());
        let error = (*metadata.level() == Level::ERROR).then(|| name.clone());
        let span_event = SpanEvent {
            time_unix_nano: now_unix_nano(),
            name,
            attributes: fields.attributes,
            dropped_attributes: fields.dropped,
        };
        let mut extensions = span.extensions_mut();
        let Some(open) = extensions.get_mut::<OpenSpan>() else {
            return;
        };
        if error.is_some() {
            // The latest error wins, like `Span::set_status` in the OpenTelemetry API: the last
            // thing said about a failing span is usually the summary.
            open.error = error;
        }
        if open.events.len() < MAX_EVENTS {
            open.events.push(span_event);
        } else {
            open.dropped_events += 1;
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let end_unix_nano = now_unix_nano();
        let Some(span) = ctx.span(&id) else { return };
        let Some(open) = span.extensions_mut().remove::<OpenSpan>() else {
            return;
        };
        let finished = FinishedSpan {
            trace_id: open.trace_id,
            span_id: open.span_id,
            parent_span_id: open.parent_span_id,
            name: span.name(),
            start_unix_nano: open.start_unix_nano,
            end_unix_nano: end_unix_nano.max(open.start_unix_nano),
            attributes: open.attributes,
            dropped_attributes: open.dropped_attributes,
            events: open.events,
            dropped_events: open.dropped_events,
            error: open.error,
        };
        // Never wait: a full queue means the collector is behind, and the run being traced matters
        // more than its trace.
        if self.queue.try_send(finished).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Whether `target` is one of [`PLUMBING_TARGETS`] or a module of it (`hyper::client`, and
/// `hyper_util` too: the crates an HTTP stack splits into share the prefix).
fn is_plumbing(target: &str) -> bool {
    PLUMBING_TARGETS.iter().any(|prefix| {
        target
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::") || rest.starts_with('_'))
    })
}

/// Replaces `key`'s value if present (a field declared `Empty` and recorded later, or recorded
/// twice), else appends it within [`MAX_ATTRIBUTES`]. False when it had to be dropped.
fn set_attribute(attributes: &mut Vec<Attribute>, key: &'static str, value: Value) -> bool {
    if let Some(existing) = attributes.iter_mut().find(|a| a.key == key) {
        existing.value = value;
        true
    } else if attributes.len() < MAX_ATTRIBUTES {
        attributes.push(Attribute { key, value });
        true
    } else {
        false
    }
}

/// Collects a span's or an event's fields as typed attributes.
struct Fields {
    attributes: Vec<Attribute>,
    dropped: u32,
    /// `Some` for an event, whose `message` field is its name rather than an attribute.
    message: Option<Option<String>>,
}

impl Fields {
    fn new() -> Self {
        Self {
            attributes: Vec::new(),
            dropped: 0,
            message: None,
        }
    }

    fn set(&mut self, key: &'static str, value: Value) {
        if let (Some(message), "message", Value::String(text)) = (&mut self.message, key, &value) {
            *message = Some(text.clone());
            return;
        }
        if !set_attribute(&mut self.attributes, key, value) {
            self.dropped += 1;
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name(), Value::String(truncate(value.to_string())));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), Value::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        // OTLP integers are signed 64-bit; the rare larger value keeps its digits as a string
        // rather than wrapping to a negative number.
        let value = i64::try_from(value).map_or_else(|_| Value::String(value.to_string()), Value::Int);
        self.set(field.name(), value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), Value::Bool(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name(), Value::Double(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.set(field.name(), Value::String(truncate(format!("{value:?}"))));
    }
}

/// Cuts `text` to [`MAX_VALUE_BYTES`] on a character boundary, marking the cut.
fn truncate(mut text: String) -> String {
    if text.len() > MAX_VALUE_BYTES {
        let mut end = MAX_VALUE_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

fn now_unix_nano() -> u64 {
    // A clock set before 1970 reads as 0 and a time past 2554 saturates: both are nonsense a
    // backend shows as such, neither is worth failing a span over.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A random trace or span id. All zeros is the spec's "invalid id", so it is drawn again.
fn random_id<const N: usize>() -> [u8; N] {
    let mut id = [0u8; N];
    while id == [0u8; N] {
        if getrandom::getrandom(&mut id).is_err() {
            fallback_random(&mut id);
        }
    }
    id
}

/// For a machine whose random source fails (it should not): ids only need to be unique, and
/// the standard library's randomly keyed hasher over a counter gives that.
fn fallback_random(id: &mut [u8]) {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::AtomicU64;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for chunk in id.chunks_mut(8) {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        chunk.copy_from_slice(&hasher.finish().to_le_bytes()[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plumbing_is_matched_on_module_boundaries() {
        for t in [
            "mc_telemetry",
            "mc_telemetry::export",
            "reqwest::connect",
            "hyper",
            "hyper_util::client",
            "h2::proto",
        ] {
            assert!(is_plumbing(t), "{t}");
        }
        for t in ["mc_engine::worker", "hyperion", "h2o", "rustlsx", "mc_telemetry2"] {
            assert!(!is_plumbing(t), "{t}");
        }
    }

    #[test]
    fn long_values_are_cut_on_a_char_boundary() {
        let cut = truncate("é".repeat(MAX_VALUE_BYTES));
        assert!(cut.len() <= MAX_VALUE_BYTES + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn ids_are_random_and_never_zero() {
        let a: [u8; 16] = random_id();
        let b: [u8; 16] = random_id();
        assert_ne!(a, [0; 16]);
        assert_ne!(a, b);
        let mut f = [0u8; 16];
        fallback_random(&mut f);
        assert_ne!(f, [0; 16]);
    }
}
