//! End-to-end tests of the OTLP export: spans made through a real `tracing` subscriber, posted by
//! the exporter to a minimal HTTP receiver on loopback, checked field by field and against the
//! official protobuf schema (`otlp_check.py`); and the failure paths: a collector that is down,
//! one that refuses, a full queue, a bad configuration.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use mc_telemetry::{OtlpConfig, Stats};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tracing_subscriber::layer::SubscriberExt;

/// Ticks short enough that a test sees a retry within a few hundred milliseconds.
const FAST_TICK: Duration = Duration::from_millis(20);

/// Longest a test waits for the exporter to stop before calling it hung.
const HANG: Duration = Duration::from_secs(10);

/// One request as the receiver saw it.
#[derive(Debug)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// A collector stand-in: answers every request with `status` and passes it on. HTTP/1.1 with
/// keep-alive and `Content-Length` bodies only, which is what reqwest sends here.
async fn receiver(status: u16) -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, status, tx.clone()));
        }
    });
    (format!("http://{addr}"), rx)
}

async fn serve(mut stream: TcpStream, status: u16, tx: mpsc::UnboundedSender<Received>) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap();
        let path = request_line.split(' ').nth(1).unwrap().to_string();
        assert!(request_line.starts_with("POST "), "{request_line}");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .expect("the exporter sends a Content-Length");
        buf.drain(..head_end + 4);
        while buf.len() < length {
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..length).collect();
        let _ = tx.send(Received { path, headers, body });
        let answer = if status == 200 {
            "{}"
        } else {
            r#"{"code":3,"message":"no"}"#
        };
        let response = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Runs `exporter` on this runtime until `stop` fires, bounded by [`HANG`].
async fn run_until(exporter: mc_telemetry::Exporter, stop: oneshot::Receiver<()>) {
    let task = tokio::spawn(exporter.run(async {
        let _ = stop.await;
    }));
    tokio::time::timeout(HANG, task)
        .await
        .expect("the exporter stops in time")
        .unwrap();
}

fn fast_config(endpoint: &str) -> OtlpConfig {
    let mut config = OtlpConfig::new(endpoint, "mission-control-test");
    config.export_every = FAST_TICK;
    config.timeout = Duration::from_secs(2);
    config
}

/// The scenario of a worker: a `run` span with the run's fields, an `ai_call` inside it, an info
/// event in each and an error in the call; plus an HTTP client span that must not be exported.
/// Returns every request the receiver got and the exporter's stats.
async fn export_a_run() -> (Vec<Received>, Stats) {
    let (endpoint, mut requests) = receiver(200).await;
    let mut config = fast_config(&endpoint);
    config.headers.push(("x-api-key".into(), "test-key".into()));
    let (layer, exporter) = mc_telemetry::layer(config).unwrap();
    let stats = exporter.stats();
    // Only this thread, which also runs the exporter (a current-thread runtime): the exporter's
    // own logs and reqwest's spans reach the layer too, and must be left out.
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let (stop, stopped) = oneshot::channel();
    let exporting = tokio::spawn(run_until(exporter, stopped));
    {
        let run = tracing::info_span!(
            "run",
            tenant = "acme",
            automation = "weekly-report",
            run = 42i64,
            attempt = 2,
            succeeded = tracing::field::Empty,
        );
        let _run = run.enter();
        tracing::info!(queue = "default", "run started");
        {
            let call = tracing::info_span!("ai_call", model = "claude-sonnet", temperature = 0.25, big = u64::MAX);
            let _call = call.enter();
            tracing::info!(tokens = 1200u64, cached = true, "asked the model");
            tracing::error!(status = 503, "provider unavailable");
        }
        tracing::info_span!(target: "hyper_util::client::legacy", "connect").in_scope(|| {
            tracing::info!(target: "reqwest::connect", "connected");
        });
        run.record("succeeded", false);
    }
    // A few ticks, so that the spans go out on the schedule rather than in the shutdown flush.
    tokio::time::sleep(FAST_TICK * 5).await;
    stop.send(()).unwrap();
    exporting.await.unwrap();
    let mut received = Vec::new();
    while let Ok(r) = requests.try_recv() {
        received.push(r);
    }
    (received, stats)
}

fn spans_of(received: &[Received]) -> Vec<Value> {
    received
        .iter()
        .flat_map(|r| {
            r.json()["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .unwrap()
                .clone()
        })
        .collect()
}

fn attribute<'a>(attributes: &'a Value, key: &str) -> &'a Value {
    let found = attributes.as_array().unwrap().iter().find(|a| a["key"] == key);
    &found.unwrap_or_else(|| panic!("no attribute {key} in {attributes}"))["value"]
}

fn is_hex(text: &Value, digits: usize) -> bool {
    let text = text.as_str().unwrap();
    text.len() == digits && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn nanos(value: &Value) -> u64 {
    value.as_str().expect("times are decimal strings").parse().unwrap()
}

#[tokio::test]
async fn a_run_is_exported_as_otlp_json() {
    let (received, stats) = export_a_run().await;
    assert!(!received.is_empty(), "nothing was exported");
    for r in &received {
        assert_eq!(r.path, "/v1/traces");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-api-key"), Some("test-key"));
        let body = r.json();
        let resource = &body["resourceSpans"][0]["resource"]["attributes"];
        assert_eq!(
            attribute(resource, "service.name"),
            &serde_json::json!({"stringValue": "mission-control-test"})
        );
        let scope = &body["resourceSpans"][0]["scopeSpans"][0]["scope"];
        assert_eq!(
            scope,
            &serde_json::json!({"name": "mission-control", "version": env!("CARGO_PKG_VERSION")})
        );
    }
    let spans = spans_of(&received);
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names.len(),
        2,
        "only the run and the call, not the HTTP client's span: {names:?}"
    );
    let run = spans.iter().find(|s| s["name"] == "run").unwrap();
    let call = spans.iter().find(|s| s["name"] == "ai_call").unwrap();

    assert!(is_hex(&run["traceId"], 32) && is_hex(&run["spanId"], 16), "{run}");
    assert!(
        is_hex(&call["spanId"], 16) && is_hex(&call["parentSpanId"], 16),
        "{call}"
    );
    assert!(run.get("parentSpanId").is_none(), "a root has no parent: {run}");
    assert_eq!(call["traceId"], run["traceId"]);
    assert_eq!(call["parentSpanId"], run["spanId"]);
    assert_ne!(call["spanId"], run["spanId"]);
    assert_eq!(run["kind"], 1);

    let (run_start, run_end) = (nanos(&run["startTimeUnixNano"]), nanos(&run["endTimeUnixNano"]));
    let (call_start, call_end) = (nanos(&call["startTimeUnixNano"]), nanos(&call["endTimeUnixNano"]));
    assert!(run_start <= call_start && call_start <= call_end && call_end <= run_end);
    assert!(run_start > 1_600_000_000_000_000_000, "Unix nanoseconds: {run_start}");

    let attrs = &run["attributes"];
    assert_eq!(attribute(attrs, "tenant"), &serde_json::json!({"stringValue": "acme"}));
    assert_eq!(
        attribute(attrs, "automation"),
        &serde_json::json!({"stringValue": "weekly-report"})
    );
    assert_eq!(attribute(attrs, "run"), &serde_json::json!({"intValue": "42"}));
    assert_eq!(attribute(attrs, "attempt"), &serde_json::json!({"intValue": "2"}));
    assert_eq!(
        attribute(attrs, "succeeded"),
        &serde_json::json!({"boolValue": false}),
        "recorded later"
    );
    assert_eq!(
        attribute(attrs, "code.namespace"),
        &serde_json::json!({"stringValue": "otlp"})
    );
    let attrs = &call["attributes"];
    assert_eq!(
        attribute(attrs, "temperature"),
        &serde_json::json!({"doubleValue": 0.25})
    );
    assert_eq!(
        attribute(attrs, "big"),
        &serde_json::json!({"stringValue": u64::MAX.to_string()})
    );

    let events = run["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "the client's event is not exported: {events:?}");
    assert_eq!(events[0]["name"], "run started");
    assert_eq!(
        attribute(&events[0]["attributes"], "queue"),
        &serde_json::json!({"stringValue": "default"})
    );
    assert_eq!(
        attribute(&events[0]["attributes"], "level"),
        &serde_json::json!({"stringValue": "INFO"})
    );
    let at = nanos(&events[0]["timeUnixNano"]);
    assert!(run_start <= at && at <= run_end);
    assert!(run.get("status").is_none(), "no error in the run itself: {run}");

    let events = call["events"].as_array().unwrap();
    let names: Vec<&str> = events.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["asked the model", "provider unavailable"]);
    assert_eq!(
        attribute(&events[0]["attributes"], "tokens"),
        &serde_json::json!({"intValue": "1200"})
    );
    assert_eq!(
        attribute(&events[0]["attributes"], "cached"),
        &serde_json::json!({"boolValue": true})
    );
    assert_eq!(
        attribute(&events[1]["attributes"], "status"),
        &serde_json::json!({"intValue": "503"})
    );
    assert_eq!(
        call["status"],
        serde_json::json!({"code": 2, "message": "provider unavailable"})
    );

    assert_eq!((stats.exported(), stats.dropped()), (2, 0));
}

/// The body parsed by the official protobuf definitions, so that a field the hand-written encoder
/// misspells or mistypes fails here rather than in a collector.
#[tokio::test]
async fn the_body_matches_the_official_schema() {
    let python_ready = Command::new("python3")
        .args(["-c", "import opentelemetry.proto, google.protobuf"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        python_ready,
        "the OTLP schema check needs python3 with the opentelemetry-proto package: run `pip install opentelemetry-proto`"
    );
    let (received, _) = export_a_run().await;
    assert!(!received.is_empty());
    for r in &received {
        let (ok, report) = otlp_check(&r.body);
        assert!(
            ok,
            "the body does not match the OTLP schema: {report}\n{}",
            String::from_utf8_lossy(&r.body)
        );
    }
    // The check itself catches a stray field, so that it cannot pass vacuously.
    let mut body = received[0].json();
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["durationNanos"] = "5".into();
    let (ok, report) = otlp_check(&serde_json::to_vec(&body).unwrap());
    assert!(!ok && report.contains("durationNanos"), "{report}");
}

/// Runs `otlp_check.py` on `body`: whether it passed, and what it said.
fn otlp_check(body: &[u8]) -> (bool, String) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(body).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/otlp_check.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(file.path())
        .output()
        .expect("python3 runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

#[tokio::test]
async fn a_dead_collector_costs_counted_drops_and_no_waiting() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (layer, exporter) = mc_telemetry::layer(fast_config(&format!("http://127.0.0.1:{closed_port}"))).unwrap();
    let stats = exporter.stats();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let (stop, stopped) = oneshot::channel();
    let exporting = tokio::spawn(run_until(exporter, stopped));
    let started = Instant::now();
    for i in 0..3 {
        tracing::info_span!("run", run = i).in_scope(|| tracing::error!("failed"));
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "closing spans never waits on the exporter"
    );
    // Long enough for the first attempt and its one retry.
    tokio::time::sleep(FAST_TICK * 10).await;
    stop.send(()).unwrap();
    exporting.await.unwrap();
    assert_eq!((stats.exported(), stats.dropped()), (0, 3));
}

#[tokio::test]
async fn a_refusal_is_dropped_at_once_and_an_outage_retried_once() {
    for (status, attempts) in [(400, 1), (503, 2), (429, 2)] {
        let (endpoint, mut requests) = receiver(status).await;
        let (layer, exporter) = mc_telemetry::layer(fast_config(&endpoint)).unwrap();
        let stats = exporter.stats();
        let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
        let (stop, stopped) = oneshot::channel();
        let exporting = tokio::spawn(run_until(exporter, stopped));
        tracing::info_span!("run").in_scope(|| {});
        // Waits for the attempts on the schedule rather than for a fixed time, so that a slow
        // machine cannot turn the retry into the shutdown flush's single try.
        for attempt in 1..=attempts {
            let waited = tokio::time::timeout(HANG, requests.recv()).await;
            assert!(matches!(waited, Ok(Some(_))), "attempt {attempt} for a {status}");
        }
        tokio::time::sleep(FAST_TICK * 5).await;
        stop.send(()).unwrap();
        exporting.await.unwrap();
        assert!(requests.try_recv().is_err(), "no attempt after the last for a {status}");
        assert_eq!((stats.exported(), stats.dropped()), (0, 1), "stats for a {status}");
    }
}

#[tokio::test]
async fn a_full_queue_drops_and_the_rest_is_flushed_on_stop() {
    let (endpoint, mut requests) = receiver(200).await;
    let mut config = fast_config(&endpoint);
    config.max_queue = 4;
    // No tick before the stop: what arrives is the shutdown flush's doing.
    config.export_every = Duration::from_secs(3600);
    let (layer, exporter) = mc_telemetry::layer(config).unwrap();
    let stats = exporter.stats();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    for i in 0..10 {
        tracing::info_span!("run", run = i).in_scope(|| {});
    }
    assert_eq!(
        stats.dropped(),
        6,
        "the queue holds 4, the rest is dropped without waiting"
    );
    tokio::time::timeout(HANG, exporter.run(std::future::ready(())))
        .await
        .unwrap();
    assert_eq!((stats.exported(), stats.dropped()), (4, 6));
    let runs: Vec<i64> = spans_of(&[requests.try_recv().unwrap()])
        .iter()
        .map(|s| {
            attribute(&s["attributes"], "run")["intValue"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(runs, [0, 1, 2, 3]);
    // A span that closes after the exporter stopped is counted, not queued for nobody.
    tracing::info_span!("late").in_scope(|| {});
    assert_eq!(stats.dropped(), 7);
}

#[test]
fn a_bad_endpoint_is_refused_with_a_clear_message() {
    let refused = |endpoint: &str| OtlpConfig::new(endpoint, "svc").validate().unwrap_err();
    assert_eq!(
        refused("ftp://x"),
        r#"OTLP endpoint "ftp://x" must be an http or https URL, not ftp"#
    );
    assert_eq!(
        refused("not a url"),
        r#"OTLP endpoint "not a url" is not a URL: relative URL without a base"#
    );
    assert_eq!(
        refused("http://"),
        r#"OTLP endpoint "http://" is not a URL: empty host"#
    );
    assert_eq!(
        refused("unix:/run/otel.sock"),
        r#"OTLP endpoint "unix:/run/otel.sock" must be an http or https URL, not unix"#
    );
    assert!(OtlpConfig::new("https://otel.example:4318", "svc").validate().is_ok());
    let err = mc_telemetry::layer(OtlpConfig::new("ftp://x", "svc"))
        .err()
        .expect("layer validates too");
    assert_eq!(err, r#"OTLP endpoint "ftp://x" must be an http or https URL, not ftp"#);
}
