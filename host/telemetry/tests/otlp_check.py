"""Checks an OTLP/HTTP JSON trace export body against the official protobuf schema.

Usage: python3 otlp_check.py BODY.json

OTLP/JSON is the protobuf JSON mapping of ExportTraceServiceRequest with one difference: trace and
span ids are hex, where the mapping has base64 for bytes. The ids are converted (after checking
their length), then the body is parsed with json_format, which fails on any unknown field, wrong
type or bad enum. Exits non-zero with the reason on any mismatch.
"""

import base64
import json
import sys

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

ID_BYTES = {"traceId": 16, "spanId": 8, "parentSpanId": 8}


def hex_to_base64(where, key, value):
    if len(value) != ID_BYTES[key] * 2 or value != value.lower():
        raise ValueError(f"{where}.{key} = {value!r} is not {ID_BYTES[key] * 2} lowercase hex digits")
    return base64.b64encode(bytes.fromhex(value)).decode()


def convert_ids(body):
    for r, resource_spans in enumerate(body.get("resourceSpans", [])):
        for s, scope_spans in enumerate(resource_spans.get("scopeSpans", [])):
            for i, span in enumerate(scope_spans.get("spans", [])):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"
                for key in ID_BYTES:
                    if key in span:
                        span[key] = hex_to_base64(where, key, span[key])
                for j, link in enumerate(span.get("links", [])):
                    for key in ("traceId", "spanId"):
                        if key in link:
                            link[key] = hex_to_base64(f"{where}.links[{j}]", key, link[key])


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        body = json.load(f)
    convert_ids(body)
    request = json_format.Parse(json.dumps(body), ExportTraceServiceRequest(), ignore_unknown_fields=False)
    spans = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    if spans == 0:
        raise ValueError("the request holds no span")
    print(f"valid ExportTraceServiceRequest with {spans} spans")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - every failure is a schema mismatch to report
        print(f"otlp_check: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
