//! The OpenAI Chat Completions adapter, for OpenAI and the servers that copy its API (Ollama,
//! vLLM, llama.cpp): builds `POST /v1/chat/completions`, reads the answer whole or as
//! server-sent events, and normalises usage and finish reasons to the gateway's vocabulary.
//!
//! OpenAI's `prompt_tokens` *includes* the cached tokens (Anthropic's `input_tokens` does not):
//! the uncached input is `prompt_tokens − prompt_tokens_details.cached_tokens`, and counting
//! `prompt_tokens` as input as well as the cached tokens would bill the cache twice.

use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{Endpoint, is_event_stream, malformed, quote, redact, secret_header};
use crate::provider::{ProviderError, ProviderErrorKind, complete, emit};
use crate::{ChatRequest, ChatResponse, Deltas, Provider, Role, Usage};

/// The marker OpenAI-compatible streams end with.
const DONE: &str = "[DONE]";

/// Talks to an OpenAI-compatible server at a base URL such as `https://api.openai.com` or
/// `http://localhost:11434` (Ollama).
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    endpoint: Endpoint,
}

impl OpenAiProvider {
    /// A provider reported as `name` ("openai", "ollama", ...) posting to
    /// `{base_url}/v1/chat/completions`.
    pub fn new(name: &str, base_url: &str) -> OpenAiProvider {
        OpenAiProvider {
            endpoint: Endpoint::new(name, base_url, "/v1/chat/completions"),
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
            headers.insert(AUTHORIZATION, secret_header(&format!("Bearer {key}"))?);
        }
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
            let answer = self.parse_completion(request, status, &body)?;
            emit(deltas, &answer.text);
            Ok(answer)
        }
    }

    fn parse_completion(&self, request: &ChatRequest, status: u16, body: &[u8]) -> Result<ChatResponse, ProviderError> {
        let completion: WireCompletion =
            serde_json::from_slice(body).map_err(|e| malformed(self.name(), status, "a chat completion", &e))?;
        let Some(choice) = completion.choices.into_iter().next() else {
            let mut e = ProviderError::new(
                ProviderErrorKind::Malformed,
                format!(
                    "{} answered {status} with a chat completion that has no choices",
                    self.name()
                ),
            );
            e.status = Some(status);
            return Err(e);
        };
        Ok(complete(
            self.name(),
            request,
            choice.message.content.unwrap_or_default(),
            completion.model,
            finish_reason(choice.finish_reason.as_deref()),
            completion.usage.map(WireUsage::normalise),
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
        let mut finish = None;
        let mut usage = None;
        let mut done = false;
        self.endpoint
            .read_events(response, |event| {
                if event.data.trim() == DONE {
                    done = true;
                    return Ok(true);
                }
                let chunk: Value = serde_json::from_str(&event.data).map_err(|_| {
                    ProviderError::new(
                        ProviderErrorKind::Malformed,
                        format!("{name} sent a stream chunk that is not JSON: {}", quote(&event.data)),
                    )
                })?;
                if let Some(error) = chunk.get("error") {
                    return Err(stream_error(&name, error));
                }
                let chunk: WireChunk = serde_json::from_value(chunk).map_err(|e| {
                    ProviderError::new(
                        ProviderErrorKind::Malformed,
                        format!(
                            "{name} sent a stream chunk that is not a chat completion chunk: {}",
                            quote(&e.to_string())
                        ),
                    )
                })?;
                if chunk.model.is_some() {
                    model = chunk.model;
                }
                for choice in chunk.choices.iter().filter(|c| c.index == 0) {
                    if let Some(piece) = choice.delta.content.as_deref() {
                        text.push_str(piece);
                        emit(deltas, piece);
                    }
                    if choice.finish_reason.is_some() {
                        finish = choice.finish_reason.clone();
                    }
                }
                // Only the last chunk (with empty `choices`) carries usage; the others say null.
                if let Some(u) = chunk.usage {
                    usage = Some(u.normalise());
                }
                Ok(false)
            })
            .await?;
        // A server that closes after the finish reason without `[DONE]` still gave a complete
        // answer; one that closes before it did not.
        if !done && finish.is_none() {
            return Err(ProviderError::new(
                ProviderErrorKind::Connect,
                format!(
                    "the connection to {name} broke before its answer was complete (the stream ended without [DONE])"
                ),
            ));
        }
        Ok(complete(
            &name,
            request,
            text,
            model,
            finish_reason(finish.as_deref()),
            usage,
        ))
    }
}

#[async_trait::async_trait]
impl Provider for OpenAiProvider {
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

/// The request body. `max_tokens` is the legacy name, but it is the one every compatible server
/// understands (OpenAI still accepts it for chat models).
fn request_body(request: &ChatRequest, stream: bool) -> Value {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({"role": role, "content": m.content})
        })
        .collect();
    let mut body = json!({
        "model": request.model,
        "messages": messages,
        "max_tokens": request.max_tokens,
    });
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if stream {
        body["stream"] = json!(true);
        // Without it a stream reports no usage at all.
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// OpenAI's finish reasons in the gateway's words.
fn finish_reason(reason: Option<&str>) -> String {
    match reason {
        Some("stop") => "end-turn".into(),
        Some("length") => "max-tokens".into(),
        Some(other) => other.to_string(),
        None => "unknown".into(),
    }
}

/// An error object sent inside a stream that had started with 200.
fn stream_error(name: &str, error: &Value) -> ProviderError {
    let kind_name = ["type", "code"]
        .iter()
        .find_map(|k| error[k].as_str())
        .unwrap_or("error");
    let message = error["message"].as_str().or(error.as_str()).unwrap_or("");
    let kind = if kind_name.contains("rate_limit") {
        ProviderErrorKind::RateLimited
    } else {
        ProviderErrorKind::Server
    };
    ProviderError::new(
        kind,
        format!("{name} failed mid-answer with {}: {}", quote(kind_name), quote(message)),
    )
}

#[derive(Deserialize)]
struct WireCompletion {
    #[serde(default)]
    model: Option<String>,
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChunkChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChunkChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: WireDelta,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<WirePromptDetails>,
}

#[derive(Deserialize)]
struct WirePromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl WireUsage {
    fn normalise(self) -> Usage {
        let cached = self.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0);
        Usage {
            // Saturating: a server reporting more cached than prompt tokens is wrong, and a
            // wrapped u64 would bill the tenant for 18 quintillion tokens.
            input_tokens: self.prompt_tokens.saturating_sub(cached),
            output_tokens: self.completion_tokens,
            cache_read_tokens: cached,
            cache_write_tokens: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    #[test]
    fn body_asks_for_usage_when_streaming() {
        let request = ChatRequest {
            model: "gpt-4o-mini".into(),
            messages: vec![
                Message {
                    role: Role::System,
                    content: "Be brief.".into(),
                },
                Message {
                    role: Role::User,
                    content: "Hi".into(),
                },
            ],
            max_tokens: 64,
            temperature: None,
            fallbacks: Vec::new(),
        };
        assert_eq!(
            request_body(&request, true),
            json!({
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Hi"},
                ],
                "max_tokens": 64,
                "stream": true,
                "stream_options": {"include_usage": true},
            })
        );
        assert!(request_body(&request, false).get("stream").is_none());
    }

    #[test]
    fn cached_tokens_are_taken_out_of_the_prompt() {
        let usage: WireUsage = serde_json::from_value(json!({
            "prompt_tokens": 1200, "completion_tokens": 50, "total_tokens": 1250,
            "prompt_tokens_details": {"cached_tokens": 1000}
        }))
        .unwrap();
        assert_eq!(
            usage.normalise(),
            Usage {
                input_tokens: 200,
                output_tokens: 50,
                cache_read_tokens: 1000,
                cache_write_tokens: 0
            }
        );
        let ollama: WireUsage = serde_json::from_value(json!({"prompt_tokens": 12, "completion_tokens": 3})).unwrap();
        assert_eq!(ollama.normalise().input_tokens, 12);
    }

    #[test]
    fn finish_reasons_in_our_words() {
        assert_eq!(finish_reason(Some("stop")), "end-turn");
        assert_eq!(finish_reason(Some("length")), "max-tokens");
        assert_eq!(finish_reason(Some("content_filter")), "content_filter");
    }
}
