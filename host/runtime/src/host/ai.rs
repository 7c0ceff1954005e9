//! `mission:control/ai`: checks the model grant and the request's shape, then calls the run's
//! [`AiGateway`](mc_ai::AiGateway) and adds the usage to the run's record.

use crate::bindings::mission::control::ai::{AiError, ChatRequest, ChatResponse, Host, Role, Usage};
use crate::state::RunState;

/// Output tokens asked for when a plugin names no `max-tokens`.
pub const DEFAULT_MAX_TOKENS: u32 = 1_024;
/// Largest `max-tokens` accepted; it also bounds the budget reserved for one call.
pub const MAX_TOKENS: u32 = 32_768;
/// Most AI calls in one run: a plugin that calls AI in a loop is stopped before it costs much.
pub const MAX_AI_CALLS_PER_RUN: u32 = 100;
/// Largest conversation accepted, in bytes of message text.
pub const MAX_PROMPT_BYTES: usize = 1 << 20;

fn clamp_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Host for RunState {
    async fn chat(&mut self, request: ChatRequest) -> Result<ChatResponse, AiError> {
        let model = match request.model.or_else(|| self.grants.models.first().cloned()) {
            Some(m) => m,
            None => {
                return Err(AiError::NotGranted(
                    self.deny("ai", "AI is not granted to this run (no models)".into()),
                ));
            }
        };
        if !self.grants.models.contains(&model) {
            let detail = format!(
                "model `{model}` is not granted to this run (granted: {})",
                if self.grants.models.is_empty() {
                    "none".to_string()
                } else {
                    self.grants.models.join(", ")
                }
            );
            return Err(AiError::NotGranted(self.deny("ai", detail)));
        }
        if request.messages.is_empty() {
            return Err(AiError::InvalidRequest(
                "a chat request needs at least one message".into(),
            ));
        }
        let prompt_bytes: usize = request.messages.iter().map(|m| m.content.len()).sum();
        if prompt_bytes > MAX_PROMPT_BYTES {
            return Err(AiError::InvalidRequest(format!(
                "the conversation is {prompt_bytes} bytes; the limit is {MAX_PROMPT_BYTES}"
            )));
        }
        if let Some(t) = request.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(AiError::InvalidRequest(format!(
                "temperature must be between 0 and 2, got {t}"
            )));
        }
        let max_tokens = request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
        if max_tokens == 0 || max_tokens > MAX_TOKENS {
            return Err(AiError::InvalidRequest(format!(
                "max-tokens must be between 1 and {MAX_TOKENS}, got {max_tokens}"
            )));
        }
        if self.usage.ai_calls >= MAX_AI_CALLS_PER_RUN {
            return Err(AiError::InvalidRequest(format!(
                "a run may make at most {MAX_AI_CALLS_PER_RUN} AI calls"
            )));
        }
        let seq = self.usage.ai_calls;
        self.usage.ai_calls += 1;
        let fallbacks = self
            .grants
            .models
            .iter()
            .skip_while(|m| **m != model)
            .skip(1)
            .cloned()
            .collect();
        let req = mc_ai::ChatRequest {
            model,
            messages: request
                .messages
                .into_iter()
                .map(|m| mc_ai::Message {
                    role: match m.role {
                        Role::System => mc_ai::Role::System,
                        Role::User => mc_ai::Role::User,
                        Role::Assistant => mc_ai::Role::Assistant,
                    },
                    content: m.content,
                })
                .collect(),
            max_tokens,
            temperature: request.temperature,
            fallbacks,
        };
        let gateway = self.services.ai.clone();
        let call = mc_ai::CallContext {
            call_seq: Some(seq),
            ..self.call.clone()
        };
        match gateway.chat(&call, req).await {
            Ok(r) => {
                self.usage.tokens.add(&r.usage);
                Ok(ChatResponse {
                    text: r.text,
                    model: r.model,
                    provider: r.provider,
                    stop_reason: r.stop_reason,
                    usage: Usage {
                        input_tokens: clamp_u32(r.usage.input_tokens),
                        output_tokens: clamp_u32(r.usage.output_tokens),
                        cache_read_tokens: clamp_u32(r.usage.cache_read_tokens),
                        cache_write_tokens: clamp_u32(r.usage.cache_write_tokens),
                    },
                })
            }
            Err(e) => Err(match e {
                mc_ai::AiError::NotGranted(m) => AiError::NotGranted(self.deny("ai", m)),
                mc_ai::AiError::InvalidRequest(m) => AiError::InvalidRequest(m),
                mc_ai::AiError::BudgetExceeded(m) => {
                    // The run's page says why it stopped even if the plugin swallows the error.
                    self.host_log(crate::outcome::LogLevel::Warn, format!("AI call refused: {m}"));
                    AiError::BudgetExceeded(m)
                }
                mc_ai::AiError::Unavailable(m) => AiError::Unavailable(m),
                mc_ai::AiError::Other(m) => AiError::Other(m),
            }),
        }
    }
}
