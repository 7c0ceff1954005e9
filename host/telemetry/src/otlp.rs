//! A finished span as the exporter holds it, and its encoding as an OTLP/HTTP JSON
//! `ExportTraceServiceRequest` (opentelemetry-proto's `trace.proto` under the OTLP JSON mapping:
//! lowerCamelCase field names, trace and span ids as lowercase hex rather than protobuf JSON's
//! base64, 64-bit integers as decimal strings, enums as numbers).

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

/// `Span.SpanKind.SPAN_KIND_INTERNAL`: a tracing span is work inside this process; the host has no
/// way to tell a client or server span apart.
const SPAN_KIND_INTERNAL: u8 = 1;

/// `Status.StatusCode.STATUS_CODE_ERROR`.
const STATUS_CODE_ERROR: u8 = 2;

/// The instrumentation scope every span is reported under: one name for the whole host, since the
/// span's own target already says which crate it came from (`code.namespace`).
const SCOPE_NAME: &str = "mission-control";

/// An attribute value: the `AnyValue` variants tracing fields can produce.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    String(String),
    Int(i64),
    Double(f64),
    Bool(bool),
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::String(v) => s.serialize_newtype_variant("AnyValue", 0, "stringValue", v),
            // int64 is a decimal string in the JSON mapping: JavaScript numbers lose precision
            // past 2^53.
            Value::Int(v) => s.serialize_newtype_variant("AnyValue", 1, "intValue", &v.to_string()),
            // serde_json writes non-finite floats as `null`, which a collector rejects or reads as
            // "no value"; the protobuf JSON mapping spells them as these strings.
            Value::Double(v) if v.is_nan() => s.serialize_newtype_variant("AnyValue", 2, "doubleValue", "NaN"),
            Value::Double(v) if v.is_infinite() => {
                let spelled = if *v > 0.0 { "Infinity" } else { "-Infinity" };
                s.serialize_newtype_variant("AnyValue", 2, "doubleValue", spelled)
            }
            Value::Double(v) => s.serialize_newtype_variant("AnyValue", 2, "doubleValue", v),
            Value::Bool(v) => s.serialize_newtype_variant("AnyValue", 3, "boolValue", v),
        }
    }
}

/// A `KeyValue`. Keys are field names, which tracing makes `'static`, or fixed names of ours.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Attribute {
    pub key: &'static str,
    pub value: Value,
}

#[derive(Debug, Clone)]
pub(crate) struct SpanEvent {
    pub time_unix_nano: u64,
    pub name: String,
    pub attributes: Vec<Attribute>,
    pub dropped_attributes: u32,
}

/// A closed span, ready to export.
#[derive(Debug, Clone)]
pub(crate) struct FinishedSpan {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    pub name: &'static str,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub attributes: Vec<Attribute>,
    pub dropped_attributes: u32,
    pub events: Vec<SpanEvent>,
    pub dropped_events: u32,
    /// Set by an error event: the span's status is then ERROR with this message.
    pub error: Option<String>,
}

/// Lowercase hex, as OTLP/JSON spells trace and span ids.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// A fixed64 as the JSON mapping wants it: a decimal string.
struct Nanos(u64);

impl Serialize for Nanos {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl Serialize for SpanEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut e = s.serialize_struct("Event", 4)?;
        e.serialize_field("timeUnixNano", &Nanos(self.time_unix_nano))?;
        e.serialize_field("name", &self.name)?;
        e.serialize_field("attributes", &self.attributes)?;
        if self.dropped_attributes > 0 {
            e.serialize_field("droppedAttributesCount", &self.dropped_attributes)?;
        } else {
            e.skip_field("droppedAttributesCount")?;
        }
        e.end()
    }
}

#[derive(Serialize)]
struct Status<'a> {
    code: u8,
    message: &'a str,
}

impl Serialize for FinishedSpan {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut sp = s.serialize_struct("Span", 13)?;
        sp.serialize_field("traceId", &hex(&self.trace_id))?;
        sp.serialize_field("spanId", &hex(&self.span_id))?;
        match &self.parent_span_id {
            Some(parent) => sp.serialize_field("parentSpanId", &hex(parent))?,
            None => sp.skip_field("parentSpanId")?,
        }
        sp.serialize_field("name", self.name)?;
        sp.serialize_field("kind", &SPAN_KIND_INTERNAL)?;
        sp.serialize_field("startTimeUnixNano", &Nanos(self.start_unix_nano))?;
        sp.serialize_field("endTimeUnixNano", &Nanos(self.end_unix_nano))?;
        sp.serialize_field("attributes", &self.attributes)?;
        if self.dropped_attributes > 0 {
            sp.serialize_field("droppedAttributesCount", &self.dropped_attributes)?;
        } else {
            sp.skip_field("droppedAttributesCount")?;
        }
        if !self.events.is_empty() {
            sp.serialize_field("events", &self.events)?;
        } else {
            sp.skip_field("events")?;
        }
        if self.dropped_events > 0 {
            sp.serialize_field("droppedEventsCount", &self.dropped_events)?;
        } else {
            sp.skip_field("droppedEventsCount")?;
        }
        // An unset status is left out rather than sent as `{"code":0}`: it means the same and a
        // batch of thousands of spans is smaller without it.
        match &self.error {
            Some(message) => sp.serialize_field(
                "status",
                &Status {
                    code: STATUS_CODE_ERROR,
                    message,
                },
            )?,
            None => sp.skip_field("status")?,
        }
        sp.end()
    }
}

/// The resource: who produced the spans. `telemetry.sdk.*` are the attributes every OpenTelemetry
/// SDK sets, so a backend can tell where the data came from.
fn resource_attributes(service_name: &str) -> [Attribute; 4] {
    let s = |v: &str| Value::String(v.to_string());
    [
        Attribute {
            key: "service.name",
            value: s(service_name),
        },
        Attribute {
            key: "telemetry.sdk.name",
            value: s("mc-telemetry"),
        },
        Attribute {
            key: "telemetry.sdk.language",
            value: s("rust"),
        },
        Attribute {
            key: "telemetry.sdk.version",
            value: s(env!("CARGO_PKG_VERSION")),
        },
    ]
}

/// The body of one export request.
pub(crate) fn encode_request(service_name: &str, spans: &[FinishedSpan]) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Request<'a> {
        resource_spans: [ResourceSpans<'a>; 1],
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ResourceSpans<'a> {
        resource: Resource,
        scope_spans: [ScopeSpans<'a>; 1],
    }
    #[derive(Serialize)]
    struct Resource {
        attributes: [Attribute; 4],
    }
    #[derive(Serialize)]
    struct ScopeSpans<'a> {
        scope: Scope,
        spans: &'a [FinishedSpan],
    }
    #[derive(Serialize)]
    struct Scope {
        name: &'static str,
        version: &'static str,
    }
    let request = Request {
        resource_spans: [ResourceSpans {
            resource: Resource {
                attributes: resource_attributes(service_name),
            },
            scope_spans: [ScopeSpans {
                scope: Scope {
                    name: SCOPE_NAME,
                    version: env!("CARGO_PKG_VERSION"),
                },
                spans,
            }],
        }],
    };
    serde_json::to_vec(&request).expect("OTLP JSON has string keys and no fallible values")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_the_json_mapping() {
        let j = |v: Value| serde_json::to_string(&v).unwrap();
        assert_eq!(j(Value::String("a".into())), r#"{"stringValue":"a"}"#);
        assert_eq!(
            j(Value::Int(-9_007_199_254_740_993)),
            r#"{"intValue":"-9007199254740993"}"#
        );
        assert_eq!(j(Value::Double(1.5)), r#"{"doubleValue":1.5}"#);
        assert_eq!(j(Value::Double(f64::NAN)), r#"{"doubleValue":"NaN"}"#);
        assert_eq!(j(Value::Double(f64::NEG_INFINITY)), r#"{"doubleValue":"-Infinity"}"#);
        assert_eq!(j(Value::Bool(true)), r#"{"boolValue":true}"#);
    }

    #[test]
    fn ids_are_lowercase_hex() {
        assert_eq!(hex(&[0x00, 0xab, 0x0f, 0xf0]), "00ab0ff0");
    }

    #[test]
    fn a_root_span_has_no_parent_and_no_status() {
        let span = FinishedSpan {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: None,
            name: "run",
            start_unix_nano: 5,
            end_unix_nano: 7,
            attributes: vec![],
            dropped_attributes: 0,
            events: vec![],
            dropped_events: 0,
            error: None,
        };
        let v: serde_json::Value = serde_json::from_slice(&encode_request("svc", &[span])).unwrap();
        let s = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert!(s.get("parentSpanId").is_none() && s.get("status").is_none() && s.get("events").is_none());
        assert_eq!(s["startTimeUnixNano"], "5");
        assert_eq!(s["kind"], 1);
    }
}
