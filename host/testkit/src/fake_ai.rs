//! Fake AI providers for tests: local HTTP servers that stand in for the Anthropic Messages API
//! and the OpenAI Chat Completions API, speaking their exact wire formats (request validation,
//! answers, server-sent event streams, error bodies and headers), so that the real adapters are
//! tested against the shapes the real services send.
//!
//! A test scripts what the next requests get ([`Reply`], one per request, in order; when the
//! script runs out every request gets a deterministic answer computed from the request, so load
//! tests can fire hundreds of calls), or an outage by the clock ([`FakeProvider::outage`]: every
//! request gets the same failure until a deadline, however many arrive), then checks what the fake received
//! ([`FakeProvider::requests`]) and the usage it reported, in the provider's own raw terms
//! ([`FakeProvider::usage_log`]), against what the gateway recorded.
//!
//! This module knows nothing of `mc-ai`: it is the provider's side of the wire, so that `mc-ai`'s
//! own tests can use it without a dependency cycle.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

/// No pause before an event.
const ZERO: Duration = Duration::ZERO;

/// The key a fake expects unless told otherwise ([`FakeProvider::with_key`]).
pub const DEFAULT_KEY: &str = "sk-fake-test-key";

/// The `created` timestamp of every OpenAI answer: fixed, so that answers are reproducible.
const CREATED: u64 = 1_700_000_000;

/// Output tokens of the default answer at most: small, so load tests stay cheap.
const DEFAULT_OUTPUT_TOKENS: u64 = 20;

/// Text pieces a streamed answer is cut into (fewer for very short texts).
const STREAM_PIECES: usize = 4;

/// Headers recorded with each request: the ones the adapters must get right.
const RECORDED_HEADERS: [&str; 4] = ["x-api-key", "authorization", "anthropic-version", "content-type"];

/// Which provider a fake imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `POST /v1/messages`, `x-api-key`, `anthropic-version`.
    Anthropic,
    /// `POST /v1/chat/completions`, `Authorization: Bearer`.
    OpenAi,
}

/// Token counts for a scripted answer, in the gateway's terms: `input` excludes cached tokens.
/// The fake reports them the provider's way: Anthropic field for field; OpenAI with
/// `prompt_tokens = input + cache_read` and `cached_tokens = cache_read` (OpenAI has no cache
/// writes, so `cache_write` is not reported there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FakeUsage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

/// What the fake does with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A successful answer, streamed when the request asked for a stream.
    Ok { text: String, usage: FakeUsage },
    /// An error status with the provider's real error body and, when given, the
    /// `retry-after` / `retry-after-ms` headers.
    Status {
        status: u16,
        error_type: String,
        message: String,
        retry_after: Option<String>,
        retry_after_ms: Option<String>,
    },
    /// Status 200 with this raw body (content type JSON), streamed request or not.
    Malformed(String),
    /// A successful answer with `gap` between its streamed text pieces (the first one comes at
    /// once; a whole answer waits for all the gaps, then comes at once): a slow model.
    Paced {
        text: String,
        usage: FakeUsage,
        gap: Duration,
    },
    /// A successful answer that reports no usage at all.
    NoUsage { text: String },
    /// Waits, then does the inner reply.
    Delay(Duration, Box<Reply>),
    /// An answer cut off: streamed, the text's pieces and then the connection closes without the
    /// stream's end (Anthropic's `message_stop`, OpenAI's finish reason and `[DONE]`); whole,
    /// the first half of the JSON body.
    Truncated { text: String },
    /// A stream that starts with 200 and then sends the provider's in-stream error event before
    /// any text. A request that did not ask for a stream gets the error as a status instead
    /// (529 for `overloaded_error`, else 500).
    StreamError { error_type: String, message: String },
}

impl Reply {
    /// A successful answer.
    pub fn ok(text: &str, usage: FakeUsage) -> Reply {
        Reply::Ok {
            text: text.to_string(),
            usage,
        }
    }

    /// An error status with no retry headers.
    pub fn status(status: u16, error_type: &str, message: &str) -> Reply {
        Reply::Status {
            status,
            error_type: error_type.to_string(),
            message: message.to_string(),
            retry_after: None,
            retry_after_ms: None,
        }
    }

    /// A 429 with `retry-after-ms` (and a `retry-after` in whole seconds, as the real APIs send
    /// both).
    pub fn rate_limited(retry_after_ms: u64) -> Reply {
        Reply::Status {
            status: 429,
            error_type: "rate_limit_error".to_string(),
            message: "Number of request tokens has exceeded your per-minute rate limit".to_string(),
            retry_after: Some(retry_after_ms.div_ceil(1000).to_string()),
            retry_after_ms: Some(retry_after_ms.to_string()),
        }
    }

    /// Anthropic's 529.
    pub fn overloaded() -> Reply {
        Reply::status(529, "overloaded_error", "Overloaded")
    }

    /// Waits `delay`, then does `reply`.
    pub fn delayed(delay: Duration, reply: Reply) -> Reply {
        Reply::Delay(delay, Box::new(reply))
    }
}

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedRequest {
    pub method: String,
    pub path: String,
    /// The headers in [`RECORDED_HEADERS`] that were sent, by lower-case name.
    pub headers: BTreeMap<String, String>,
    /// The JSON body (a JSON string holding the raw text when it was not JSON).
    pub body: Value,
}

/// The usage a fake reported for one call, in the provider's own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportedUsage {
    Anthropic {
        input_tokens: u64,
        output_tokens: u64,
        cache_creation_input_tokens: u64,
        cache_read_input_tokens: u64,
    },
    OpenAi {
        /// Includes `cached_tokens`.
        prompt_tokens: u64,
        completion_tokens: u64,
        cached_tokens: u64,
    },
}

#[derive(Debug)]
struct Shared {
    flavor: Flavor,
    /// The key requests must carry; None accepts any key or none (like Ollama).
    key: Mutex<Option<String>>,
    script: Mutex<VecDeque<Reply>>,
    /// Until when every valid request gets this reply instead of the script's.
    outage: Mutex<Option<(std::time::Instant, Reply)>>,
    requests: Mutex<Vec<ReceivedRequest>>,
    usage: Mutex<Vec<ReportedUsage>>,
    served: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked mid-request has failed already; keep serving the others.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running fake provider on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct FakeProvider {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeProvider {
    /// Starts a fake on a free port, expecting [`DEFAULT_KEY`].
    pub async fn start(flavor: Flavor) -> FakeProvider {
        let shared = Arc::new(Shared {
            flavor,
            key: Mutex::new(Some(DEFAULT_KEY.to_string())),
            script: Mutex::new(VecDeque::new()),
            outage: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
            usage: Mutex::new(Vec::new()),
            served: AtomicU64::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake provider");
        let addr = listener.local_addr().expect("the fake provider's address");
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeProvider { addr, shared, server }
    }

    /// Expects `key` from now on.
    pub fn with_key(self, key: &str) -> FakeProvider {
        *lock(&self.shared.key) = Some(key.to_string());
        self
    }

    /// Accepts any key or none, like a local Ollama.
    pub fn accepting_any_key(self) -> FakeProvider {
        *lock(&self.shared.key) = None;
        self
    }

    /// The key it expects, if any.
    pub fn key(&self) -> Option<String> {
        lock(&self.shared.key).clone()
    }

    pub fn flavor(&self) -> Flavor {
        self.shared.flavor
    }

    /// `http://127.0.0.1:PORT`, the base URL to give an adapter.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a reply for the next request that passes authentication and validation.
    pub fn push(&self, reply: Reply) {
        lock(&self.shared.script).push_back(reply);
    }

    /// Queues several replies, in order.
    pub fn push_all(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.shared.script).extend(replies);
    }

    /// An outage by the clock: for the next `length`, every request that passes authentication
    /// and validation gets `reply` (say [`Reply::overloaded`]); after it, the script and the
    /// default answers again. A real outage lasts a time, not a number of calls, and how many
    /// calls reach a provider while it is down is what the test is about.
    pub fn outage(&self, length: Duration, reply: Reply) {
        *lock(&self.shared.outage) = Some((std::time::Instant::now() + length, reply));
    }

    /// Replies still queued.
    pub fn pending(&self) -> usize {
        lock(&self.shared.script).len()
    }

    /// Every request received, in order of arrival (rejected ones included).
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests arrived.
    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// The usage reported, call by call (calls that reported none are absent).
    pub fn usage_log(&self) -> Vec<ReportedUsage> {
        lock(&self.shared.usage).clone()
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body_json = serde_json::from_slice::<Value>(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    lock(&shared.requests).push(ReceivedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        headers: RECORDED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = headers.get(*name)?.to_str().ok()?;
                Some((name.to_string(), value.to_string()))
            })
            .collect(),
        body: body_json.clone(),
    });
    let n = shared.served.fetch_add(1, Ordering::Relaxed) + 1;
    let wire = Wire {
        flavor: shared.flavor,
        n,
    };
    let expected_path = match shared.flavor {
        Flavor::Anthropic => "/v1/messages",
        Flavor::OpenAi => "/v1/chat/completions",
    };
    if method != Method::POST || uri.path() != expected_path {
        return wire.not_found(&method, uri.path());
    }
    let expected_key = lock(&shared.key).clone();
    if let Some(expected) = expected_key
        && let Some(rejection) = wire.check_key(&headers, &expected)
    {
        return rejection;
    }
    let request = match wire.validate(&headers, &body_json) {
        Ok(request) => request,
        Err(rejection) => return *rejection,
    };
    let down = lock(&shared.outage)
        .as_ref()
        .filter(|(until, _)| std::time::Instant::now() < *until)
        .map(|(_, reply)| reply.clone());
    let reply = down.unwrap_or_else(|| {
        lock(&shared.script)
            .pop_front()
            .unwrap_or_else(|| default_reply(&request))
    });
    wire.reply(&shared, &request, reply).await
}

/// What the fake needs from a valid request.
struct Request {
    model: String,
    max_tokens: u64,
    stream: bool,
    include_usage: bool,
    /// Every message's text (system included), for the default answer.
    texts: Vec<String>,
}

/// The deterministic answer for an unscripted request.
fn default_reply(request: &Request) -> Reply {
    let chars: usize = request.texts.iter().map(|t| t.chars().count()).sum();
    let last: String = request
        .texts
        .last()
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
        .chars()
        .take(60)
        .collect();
    Reply::Ok {
        text: format!("Fake answer from {} to: {last}", request.model),
        usage: FakeUsage {
            input: chars as u64 / 4 + 1,
            output: request.max_tokens.min(DEFAULT_OUTPUT_TOKENS),
            cache_read: 0,
            cache_write: 0,
        },
    }
}

/// The flavor's wire shapes for one response.
struct Wire {
    flavor: Flavor,
    /// The request's number, for ids.
    n: u64,
}

impl Wire {
    fn request_id_header(&self) -> (&'static str, String) {
        match self.flavor {
            Flavor::Anthropic => ("request-id", format!("req_fake_{:06}", self.n)),
            Flavor::OpenAi => ("x-request-id", format!("req_fake{:06}", self.n)),
        }
    }

    fn json_raw(&self, status: u16, body: String) -> Response {
        let (id_name, id) = self.request_id_header();
        Response::builder()
            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header("content-type", "application/json")
            .header(id_name, id)
            .body(Body::from(body))
            .expect("a valid response")
    }

    fn json(&self, status: u16, body: &Value, extra: &[(&str, String)]) -> Response {
        let (id_name, id) = self.request_id_header();
        let mut builder = Response::builder()
            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header("content-type", "application/json")
            .header(id_name, id);
        for (name, value) in extra {
            builder = builder.header(*name, value.as_str());
        }
        builder.body(Body::from(body.to_string())).expect("a valid response")
    }

    /// The provider's error body.
    fn error_body(&self, error_type: &str, message: &str, code: Option<&str>) -> Value {
        match self.flavor {
            Flavor::Anthropic => json!({
                "type": "error",
                "error": {"type": error_type, "message": message},
            }),
            Flavor::OpenAi => json!({
                "error": {"message": message, "type": error_type, "param": null, "code": code},
            }),
        }
    }

    fn error(&self, status: u16, error_type: &str, message: &str) -> Response {
        self.json(status, &self.error_body(error_type, message, None), &[])
    }

    fn not_found(&self, method: &Method, path: &str) -> Response {
        match self.flavor {
            Flavor::Anthropic => self.error(404, "not_found_error", "Not Found"),
            Flavor::OpenAi => self.error(404, "invalid_request_error", &format!("Invalid URL ({method} {path})")),
        }
    }

    /// The real services' answers to a missing or wrong key.
    fn check_key(&self, headers: &HeaderMap, expected: &str) -> Option<Response> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        match self.flavor {
            Flavor::Anthropic => match header("x-api-key") {
                None => Some(self.error(401, "authentication_error", "x-api-key header is required")),
                Some(k) if k != expected => {
                    Some(self.error(401, "authentication_error", "invalid x-api-key"))
                }
                Some(_) => None,
            },
            Flavor::OpenAi => match header("authorization").map(|v| v.strip_prefix("Bearer ")) {
                None | Some(None) => Some(self.error(
                    401,
                    "invalid_request_error",
                    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                )),
                Some(Some(k)) if k != expected => Some(self.json(
                    401,
                    &self.error_body(
                        "invalid_request_error",
                        &format!(
                            "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                            mask(k)
                        ),
                        Some("invalid_api_key"),
                    ),
                    &[],
                )),
                Some(Some(_)) => None,
            },
        }
    }

    /// The real services' validation of the fields the adapters send (the rejection boxed: a
    /// response is large next to a request).
    fn validate(&self, headers: &HeaderMap, body: &Value) -> Result<Request, Box<Response>> {
        let bad = |message: &str| Box::new(self.error(400, "invalid_request_error", message));
        if !body.is_object() {
            return Err(match self.flavor {
                Flavor::Anthropic => {
                    bad("There was an error parsing the body of your request: it is not a JSON object")
                }
                Flavor::OpenAi => bad(
                    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
                ),
            });
        }
        let model = body["model"].as_str().unwrap_or_default().to_string();
        let stream = body["stream"].as_bool().unwrap_or(false);
        let mut texts = Vec::new();
        match self.flavor {
            Flavor::Anthropic => {
                if headers.get("anthropic-version").is_none() {
                    return Err(bad("anthropic-version: header is required"));
                }
                if model.is_empty() {
                    return Err(bad("model: Field required"));
                }
                if body["max_tokens"].as_u64().is_none() {
                    return Err(bad("max_tokens: Field required"));
                }
                let Some(messages) = body["messages"].as_array() else {
                    return Err(bad("messages: Field required"));
                };
                if let Some(system) = body["system"].as_str() {
                    texts.push(system.to_string());
                }
                for (i, m) in messages.iter().enumerate() {
                    match m["role"].as_str() {
                        Some("user" | "assistant") => {}
                        Some("system") => {
                            return Err(bad(
                                "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role.",
                            ));
                        }
                        _ => {
                            return Err(bad(&format!(
                                "messages.{i}.role: Input should be 'user' or 'assistant'"
                            )));
                        }
                    }
                    texts.push(content_text(&m["content"]));
                }
            }
            Flavor::OpenAi => {
                if model.is_empty() {
                    return Err(bad("you must provide a model parameter"));
                }
                let Some(messages) = body["messages"].as_array() else {
                    return Err(Box::new(self.json(
                        400,
                        &self.error_body(
                            "invalid_request_error",
                            "Missing required parameter: 'messages'.",
                            Some("missing_required_parameter"),
                        ),
                        &[],
                    )));
                };
                texts.extend(messages.iter().map(|m| content_text(&m["content"])));
            }
        }
        let max_tokens = body["max_tokens"]
            .as_u64()
            .or(body["max_completion_tokens"].as_u64())
            .unwrap_or(DEFAULT_OUTPUT_TOKENS);
        Ok(Request {
            model,
            max_tokens,
            stream,
            include_usage: body["stream_options"]["include_usage"].as_bool() == Some(true),
            texts,
        })
    }

    async fn reply(&self, shared: &Shared, request: &Request, mut reply: Reply) -> Response {
        while let Reply::Delay(delay, inner) = reply {
            tokio::time::sleep(delay).await;
            reply = *inner;
        }
        match reply {
            Reply::Delay(..) => unreachable!("unwrapped above"),
            Reply::Ok { text, usage } => self.answer(shared, request, &text, Some(usage), ZERO).await,
            Reply::NoUsage { text } => self.answer(shared, request, &text, None, ZERO).await,
            Reply::Paced { text, usage, gap } => self.answer(shared, request, &text, Some(usage), gap).await,
            Reply::Malformed(raw) => self.json_raw(200, raw),
            Reply::Status {
                status,
                error_type,
                message,
                retry_after,
                retry_after_ms,
            } => {
                let mut extra = Vec::new();
                if let Some(v) = retry_after {
                    extra.push(("retry-after", v));
                }
                if let Some(v) = retry_after_ms {
                    extra.push(("retry-after-ms", v));
                }
                self.json(status, &self.error_body(&error_type, &message, None), &extra)
            }
            Reply::Truncated { text } => {
                if !request.stream {
                    let whole = self.answer_body(request, &text, None, false).to_string();
                    let mut cut = whole.len() / 2;
                    while !whole.is_char_boundary(cut) {
                        cut += 1;
                    }
                    return self.json_raw(200, whole[..cut].to_string());
                }
                let mut events = match self.flavor {
                    Flavor::Anthropic => vec![sse(Some("message_start"), &self.anthropic_start(request, None))],
                    Flavor::OpenAi => Vec::new(),
                };
                for piece in pieces(&text) {
                    events.push(match self.flavor {
                        Flavor::Anthropic => sse(
                            Some("content_block_delta"),
                            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
                        ),
                        Flavor::OpenAi => sse(None, &self.openai_chunk(request, json!({"content": piece}), None)),
                    });
                }
                self.event_stream(events)
            }
            Reply::StreamError { error_type, message } => {
                if !request.stream {
                    let status = if error_type == "overloaded_error" { 529 } else { 500 };
                    return self.error(status, &error_type, &message);
                }
                let error = self.error_body(&error_type, &message, None);
                let events = match self.flavor {
                    Flavor::Anthropic => vec![
                        sse(Some("message_start"), &self.anthropic_start(request, None)),
                        sse(Some("ping"), &json!({"type": "ping"})),
                        sse(Some("error"), &error),
                    ],
                    Flavor::OpenAi => vec![
                        sse(
                            None,
                            &self.openai_chunk(request, json!({"role": "assistant", "content": ""}), None),
                        ),
                        sse(None, &error),
                    ],
                };
                self.event_stream(events)
            }
        }
    }

    /// A successful answer, whole or streamed; records the usage reported.
    /// `gap` is waited between pieces of text (streamed) or, in total, before a whole answer.
    async fn answer(
        &self,
        shared: &Shared,
        request: &Request,
        text: &str,
        usage: Option<FakeUsage>,
        gap: Duration,
    ) -> Response {
        let stop_max = usage.is_some_and(|u| u.output >= request.max_tokens);
        let reported = usage.map(|u| self.reported(u));
        let reports_usage = match self.flavor {
            Flavor::Anthropic => true,
            Flavor::OpenAi => !request.stream || request.include_usage,
        };
        if let Some(r) = reported
            && reports_usage
        {
            lock(&shared.usage).push(r);
        }
        match (self.flavor, request.stream) {
            (_, false) => {
                // A paced whole answer waits for all its gaps; an unpaced one must not touch the
                // timer at all (tokio rounds even a zero sleep up to its next 1 ms tick).
                let wait = gap * pieces(text).len().saturating_sub(1) as u32;
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                self.json(200, &self.answer_body(request, text, usage, stop_max), &[])
            }
            (Flavor::Anthropic, true) => {
                let mut events = vec![(ZERO, sse(Some("message_start"), &self.anthropic_start(request, usage)))];
                events.push((
                    ZERO,
                    sse(
                        Some("content_block_start"),
                        &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                    ),
                ));
                events.push((ZERO, sse(Some("ping"), &json!({"type": "ping"}))));
                for (i, piece) in pieces(text).into_iter().enumerate() {
                    events.push((
                        if i == 0 { ZERO } else { gap },
                        sse(
                            Some("content_block_delta"),
                            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
                        ),
                    ));
                }
                events.push((
                    ZERO,
                    sse(
                        Some("content_block_stop"),
                        &json!({"type": "content_block_stop", "index": 0}),
                    ),
                ));
                let mut delta = json!({
                    "type": "message_delta",
                    "delta": {"stop_reason": if stop_max { "max_tokens" } else { "end_turn" }, "stop_sequence": null},
                });
                if let Some(u) = usage {
                    delta["usage"] = json!({"output_tokens": u.output});
                }
                events.push((ZERO, sse(Some("message_delta"), &delta)));
                events.push((ZERO, sse(Some("message_stop"), &json!({"type": "message_stop"}))));
                self.paced_stream(events)
            }
            (Flavor::OpenAi, true) => {
                let usage_field = request.include_usage.then_some(Value::Null);
                let mut events = vec![(
                    ZERO,
                    sse(
                        None,
                        &self.openai_chunk(
                            request,
                            json!({"role": "assistant", "content": "", "refusal": null}),
                            usage_field.clone(),
                        ),
                    ),
                )];
                for (i, piece) in pieces(text).into_iter().enumerate() {
                    events.push((
                        if i == 0 { ZERO } else { gap },
                        sse(
                            None,
                            &self.openai_chunk(request, json!({"content": piece}), usage_field.clone()),
                        ),
                    ));
                }
                let mut last = self.openai_chunk(request, json!({}), usage_field);
                last["choices"][0]["finish_reason"] = json!(if stop_max { "length" } else { "stop" });
                events.push((ZERO, sse(None, &last)));
                if let Some(u) = usage
                    && request.include_usage
                {
                    let mut chunk = self.openai_chunk(request, json!({}), Some(openai_usage(u)));
                    chunk["choices"] = json!([]);
                    events.push((ZERO, sse(None, &chunk)));
                }
                events.push((ZERO, "data: [DONE]\n\n".to_string()));
                self.paced_stream(events)
            }
        }
    }

    /// A whole (not streamed) answer's body.
    fn answer_body(&self, request: &Request, text: &str, usage: Option<FakeUsage>, stop_max: bool) -> Value {
        match self.flavor {
            Flavor::Anthropic => {
                let mut body = json!({
                    "id": format!("msg_fake_{:06}", self.n),
                    "type": "message",
                    "role": "assistant",
                    "model": request.model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": if stop_max { "max_tokens" } else { "end_turn" },
                    "stop_sequence": null,
                });
                if let Some(u) = usage {
                    body["usage"] = anthropic_usage(u, u.output);
                }
                body
            }
            Flavor::OpenAi => {
                let mut body = json!({
                    "id": format!("chatcmpl-fake{:06}", self.n),
                    "object": "chat.completion",
                    "created": CREATED,
                    "model": request.model,
                    "choices": [{
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": null},
                        "logprobs": null,
                        "finish_reason": if stop_max { "length" } else { "stop" },
                    }],
                    "system_fingerprint": "fp_fake",
                });
                if let Some(u) = usage {
                    body["usage"] = openai_usage(u);
                }
                body
            }
        }
    }

    fn reported(&self, u: FakeUsage) -> ReportedUsage {
        match self.flavor {
            Flavor::Anthropic => ReportedUsage::Anthropic {
                input_tokens: u.input,
                output_tokens: u.output,
                cache_creation_input_tokens: u.cache_write,
                cache_read_input_tokens: u.cache_read,
            },
            Flavor::OpenAi => ReportedUsage::OpenAi {
                prompt_tokens: u.input + u.cache_read,
                completion_tokens: u.output,
                cached_tokens: u.cache_read,
            },
        }
    }

    /// Anthropic's `message_start`: the input side of the usage, and one output token so far
    /// (as the real service reports).
    fn anthropic_start(&self, request: &Request, usage: Option<FakeUsage>) -> Value {
        let mut message = json!({
            "id": format!("msg_fake_{:06}", self.n),
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
        });
        if let Some(u) = usage {
            message["usage"] = anthropic_usage(u, 1);
        }
        json!({"type": "message_start", "message": message})
    }

    fn openai_chunk(&self, request: &Request, delta: Value, usage: Option<Value>) -> Value {
        let mut chunk = json!({
            "id": format!("chatcmpl-fake{:06}", self.n),
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": request.model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}],
        });
        if let Some(usage) = usage {
            chunk["usage"] = usage;
        }
        chunk
    }

    /// A `text/event-stream` response, every event sent at once.
    fn event_stream(&self, events: Vec<String>) -> Response {
        self.paced_stream(events.into_iter().map(|e| (ZERO, e)).collect())
    }

    /// A `text/event-stream` response, each event after its pause. Each event is sent as two body
    /// frames split mid-event, so that clients are exercised on events that arrive in pieces.
    fn paced_stream(&self, events: Vec<(Duration, String)>) -> Response {
        let mut frames: Vec<(Duration, String)> = Vec::new();
        for (pause, event) in events {
            let mut mid = event.len() / 2;
            while !event.is_char_boundary(mid) {
                mid += 1;
            }
            let (a, b) = event.split_at(mid);
            frames.push((pause, a.to_string()));
            frames.push((ZERO, b.to_string()));
        }
        let stream = futures_util::stream::unfold(frames.into_iter(), |mut frames| async move {
            let (pause, frame) = frames.next()?;
            if pause.is_zero() {
                // A yield between frames gives the server a chance to write them separately.
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(pause).await;
            }
            Some((Ok::<_, Infallible>(Bytes::from(frame)), frames))
        });
        let (id_name, id) = self.request_id_header();
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/event-stream; charset=utf-8")
            .header("cache-control", "no-cache")
            .header(id_name, id)
            .body(Body::from_stream(stream))
            .expect("a valid response")
    }
}

fn anthropic_usage(u: FakeUsage, output: u64) -> Value {
    json!({
        "input_tokens": u.input,
        "cache_creation_input_tokens": u.cache_write,
        "cache_read_input_tokens": u.cache_read,
        "output_tokens": output,
    })
}

fn openai_usage(u: FakeUsage) -> Value {
    let prompt = u.input + u.cache_read;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": u.output,
        "total_tokens": prompt + u.output,
        "prompt_tokens_details": {"cached_tokens": u.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    })
}

/// One server-sent event: `event:` (Anthropic names its events; OpenAI does not) and `data:`.
fn sse(event: Option<&str>, data: &Value) -> String {
    match event {
        Some(name) => format!("event: {name}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

/// A message's content as text: a string, or the text of its blocks.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// The text cut into up to [`STREAM_PIECES`] pieces at word boundaries; joined, they are the text.
fn pieces(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    let per_piece = words.len().div_ceil(STREAM_PIECES).max(1);
    words.chunks(per_piece).map(|c| c.concat()).collect()
}

/// A rejected key as OpenAI quotes it: the start and the last four characters.
fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_rebuild_the_text() {
        for text in [
            "",
            "one",
            "one two",
            "a b c d e f g h i j",
            "Fake answer to: héllo wörld",
        ] {
            let p = pieces(text);
            assert_eq!(p.concat(), text);
            assert!(p.len() <= STREAM_PIECES);
        }
        assert_eq!(pieces("a b c d e f g h").len(), 4);
    }

    #[test]
    fn masks_keys_like_openai() {
        assert_eq!(mask("sk-wrong-key-1234"), "sk-**********1234");
        assert_eq!(mask("short"), "*****");
    }
}
