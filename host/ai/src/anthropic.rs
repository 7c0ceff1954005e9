//! The Anthropic Messages API adapter: builds `POST /v1/messages`, reads the answer whole or as
//! server-sent events, and normalises usage and stop reasons to the gateway's vocabulary.
//!
//! Anthropic's `input_tokens` already excludes cached tokens, so usage maps field for field:
//! `cache_read_input_tokens` → `cache_read_tokens`, `cache_creation_input_tokens` →
//! `cache_write_tokens`.

use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{Endpoint, is_event_stream, malformed, quote, redact, secret_header};
use crate::provider::{ProviderError, ProviderErrorKind, complete, emit};
use crate::{ChatRequest, ChatResponse, Deltas, Provider, Role, Usage};

/// The API version this adapter speaks; Anthropic keeps a version's shapes stable.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Anthropic's temperature scale ends at 1 (OpenAI's at 2, which is what plugins are allowed):
/// higher values are sent as 1 rather than refused.
const MAX_TEMPERATURE: f32 = 1.0;

/// Talks to Anthropic's API (or anything that speaks it) at a base URL such as
/// `https://api.anthropic.com`.
#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    endpoint: Endpoint,
}

impl AnthropicProvider {
    /// A provider named "anthropic" posting to `{base_url}/v1/messages`.
    pub fn new(base_url: &str) -> AnthropicProvider {
        AnthropicProvider {
            endpoint: Endpoint::new("anthropic", base_url, "/v1/messages"),
        }
    }

    fn name(&self) -> &str {
        &self.endpoint.name
    }

    async fn call(
        &self,
        request: &ChatRequest,
        key: Option<&str>,
        deltas: Option<&Deltas>,
    ) -> Result<ChatResponse, ProviderError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = key {
            headers.insert("x-api-key", secret_header(key)?);
        }
        headers.insert("anthropic-version", HeaderValue::from_static(ANTHROPIC_VERSION));
        let response = self
            .endpoint
            .post(&request_body(request, deltas.is_some()), headers)
            .await?;
        let status = response.status().as_u16();
        if deltas.is_some() && is_event_stream(response.headers()) {
            self.read_stream(request, response, deltas).await
        } else {
            // Also where a server that ignored `stream: true` ends up: its whole answer is then
            // sent as one piece.
            let body = self.endpoint.read_body(response).await?;
            let answer = self.parse_message(request, status, &body)?;
            emit(deltas, &answer.text);
            Ok(answer)
        }
    }

    fn parse_message(&self, request: &ChatRequest, status: u16, body: &[u8]) -> Result<ChatResponse, ProviderError> {
        let message: WireMessage =
            serde_json::from_slice(body).map_err(|e| malformed(self.name(), status, "a message", &e))?;
        let text = message
            .content
            .iter()
            .filter(|b| b.kind == "text")
            .filter_map(|b| b.text.as_deref())
            .collect::<String>();
        Ok(complete(
            self.name(),
            request,
            text,
            message.model,
            stop_reason(message.stop_reason.as_deref()),
            message.usage.map(|u| u.normalise()),
        ))
    }

    async fn read_stream(
        &self,
        request: &ChatRequest,
        response: reqwest::Response,
        deltas: Option<&Deltas>,
    ) -> Result<ChatResponse, ProviderError> {
        let name = self.name().to_string();
        let mut text = String::new();
        let mut model = None;
        let mut stop = None;
        let mut usage: Option<WireUsage> = None;
        let mut finished = false;
        self.endpoint
            .read_events(response, |event| {
                let data: Value = serde_json::from_str(&event.data).map_err(|_| {
                    ProviderError::new(
                        ProviderErrorKind::Malformed,
                        format!("{name} sent a stream event that is not JSON: {}", quote(&event.data)),
                    )
                })?;
                // The data's `type` repeats the event name; it is what the SDKs dispatch on.
                match data.get("type").and_then(Value::as_str).unwrap_or(&event.event) {
                    "message_start" => {
                        let message = &data["message"];
                        model = message["model"].as_str().map(str::to_string);
                        merge_usage(&mut usage, &message["usage"]);
                    }
                    "content_block_delta" => {
                        if data["delta"]["type"] == "text_delta"
                            && let Some(piece) = data["delta"]["text"].as_str()
                        {
                            text.push_str(piece);
                            emit(deltas, piece);
                        }
                    }
                    "message_delta" => {
                        if let Some(reason) = data["delta"]["stop_reason"].as_str() {
                            stop = Some(reason.to_string());
                        }
                        // Cumulative counts: each one replaces the last.
                        merge_usage(&mut usage, &data["usage"]);
                    }
                    "message_stop" => {
                        finished = true;
                        return Ok(true);
                    }
                    "error" => return Err(stream_error(&name, &data["error"])),
                    // ping, content_block_start/stop, and event types added after this adapter.
                    _ => {}
                }
                Ok(false)
            })
            .await?;
        if !finished {
            return Err(ProviderError::new(
                ProviderErrorKind::Connect,
                format!(
                    "the connection to {name} broke before its answer was complete (the stream ended without message_stop)"
                ),
            ));
        }
        Ok(complete(
            &name,
            request,
            text,
            model,
            stop_reason(stop.as_deref()),
            usage.map(|u| u.normalise()),
        ))
    }
}

#[async_trait::async_trait]
impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        self.name()
    }

    async fn send(
        &self,
        request: &ChatRequest,
        key: Option<&str>,
        deltas: Option<&Deltas>,
    ) -> Result<ChatResponse, ProviderError> {
        self.call(request, key, deltas).await.map_err(|e| redact(e, key))
    }
}

/// The request body. System messages go to the top-level `system` field: the Messages API
/// refuses a `system` role inside `messages`.
fn request_body(request: &ChatRequest, stream: bool) -> Value {
    let system: Vec<&str> = request
        .messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.content.as_str())
        .collect();
    let messages: Vec<Value> = request
        .messages
        .iter()
        .filter(|m| m.role != Role::System)
        .map(|m| {
            json!({
                "role": if m.role == Role::Assistant { "assistant" } else { "user" },
                "content": m.content,
            })
        })
        .collect();
    let mut body = json!({
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": messages,
    });
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t.clamp(0.0, MAX_TEMPERATURE));
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

/// Anthropic's stop reasons in the gateway's words.
fn stop_reason(reason: Option<&str>) -> String {
    match reason {
        Some("end_turn") => "end-turn".into(),
        Some("max_tokens") => "max-tokens".into(),
        Some("stop_sequence") => "stop-sequence".into(),
        Some(other) => other.replace('_', "-"),
        None => "unknown".into(),
    }
}

/// An `error` event inside a stream that had started with 200.
fn stream_error(name: &str, error: &Value) -> ProviderError {
    let kind_name = error["type"].as_str().unwrap_or("error");
    let kind = match kind_name {
        "overloaded_error" => ProviderErrorKind::Overloaded,
        "rate_limit_error" => ProviderErrorKind::RateLimited,
        "authentication_error" | "permission_error" => ProviderErrorKind::Auth,
        "not_found_error" => ProviderErrorKind::NotFound,
        "invalid_request_error" | "request_too_large" => ProviderErrorKind::BadRequest,
        "timeout_error" => ProviderErrorKind::Timeout,
        _ => ProviderErrorKind::Server,
    };
    ProviderError::new(
        kind,
        format!(
            "{name} failed mid-answer with {}: {}",
            quote(kind_name),
            quote(error["message"].as_str().unwrap_or(""))
        ),
    )
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    model: Option<String>,
    content: Vec<WireBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

/// Anthropic's usage object; every field may be absent or null (the cache ones are null on
/// models without caching).
#[derive(Deserialize, Default, Clone, Copy)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    fn normalise(self) -> Usage {
        Usage {
            input_tokens: self.input_tokens.unwrap_or(0),
            output_tokens: self.output_tokens.unwrap_or(0),
            cache_read_tokens: self.cache_read_input_tokens.unwrap_or(0),
            cache_write_tokens: self.cache_creation_input_tokens.unwrap_or(0),
        }
    }
}

/// Folds a stream event's usage into what is known so far: present fields replace earlier ones
/// (the counts are cumulative), absent ones keep them.
fn merge_usage(usage: &mut Option<WireUsage>, value: &Value) {
    let Ok(update) = serde_json::from_value::<WireUsage>(value.clone()) else {
        return;
    };
    if !value.is_object() {
        return;
    }
    let current = usage.get_or_insert_with(WireUsage::default);
    let pick = |new: Option<u64>, old: Option<u64>| new.or(old);
    current.input_tokens = pick(update.input_tokens, current.input_tokens);
    current.output_tokens = pick(update.output_tokens, current.output_tokens);
    current.cache_creation_input_tokens = pick(update.cache_creation_input_tokens, current.cache_creation_input_tokens);
    current.cache_read_input_tokens = pick(update.cache_read_input_tokens, current.cache_read_input_tokens);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    #[test]
    fn system_messages_go_to_the_system_field() {
        let request = ChatRequest {
            model: "claude-haiku-4-5".into(),
            messages: vec![
                Message {
                    role: Role::System,
                    content: "Be brief.".into(),
                },
                Message {
                    role: Role::User,
                    content: "Hi".into(),
                },
                Message {
                    role: Role::Assistant,
                    content: "Hello".into(),
                },
            ],
            max_tokens: 100,
            temperature: Some(1.5),
            fallbacks: Vec::new(),
        };
        assert_eq!(
            request_body(&request, true),
            json!({
                "model": "claude-haiku-4-5",
                "max_tokens": 100,
                "system": "Be brief.",
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello"},
                ],
                "temperature": 1.0,
                "stream": true,
            })
        );
    }

    #[test]
    fn stop_reasons_in_our_words() {
        assert_eq!(stop_reason(Some("end_turn")), "end-turn");
        assert_eq!(stop_reason(Some("max_tokens")), "max-tokens");
        assert_eq!(stop_reason(Some("stop_sequence")), "stop-sequence");
        assert_eq!(stop_reason(Some("tool_use")), "tool-use");
        assert_eq!(
            stop_reason(Some("model_context_window_exceeded")),
            "model-context-window-exceeded"
        );
        assert_eq!(stop_reason(None), "unknown");
    }

    #[test]
    fn stream_usage_is_cumulative() {
        let mut usage = None;
        merge_usage(
            &mut usage,
            &json!({"input_tokens": 10, "cache_read_input_tokens": 50, "cache_creation_input_tokens": null, "output_tokens": 1}),
        );
        merge_usage(&mut usage, &json!({"output_tokens": 30}));
        merge_usage(&mut usage, &Value::Null);
        assert_eq!(
            usage.unwrap().normalise(),
            Usage {
                input_tokens: 10,
                output_tokens: 30,
                cache_read_tokens: 50,
                cache_write_tokens: 0
            }
        );
    }
}
