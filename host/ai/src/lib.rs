//! The AI gateway's vocabulary: what a plugin asks for ([`ChatRequest`]), what it gets back
//! ([`ChatResponse`], [`Usage`]), how it can fail ([`AiError`]), and the [`AiGateway`] trait the
//! plugin runtime calls through. Providers implement the trait; the runtime knows none of them.
//!
//! Usage is normalised here once for every provider: `input_tokens` never includes cached tokens,
//! which are counted in `cache_read_tokens` / `cache_write_tokens`. (Anthropic reports it that way;
//! OpenAI's `prompt_tokens` includes the cached ones, and its adapter subtracts them.)

mod anthropic;
mod http;
mod offline;
mod openai;
pub mod prices;
mod provider;
mod resilience;
mod sse;

pub use anthropic::{ANTHROPIC_VERSION, AnthropicProvider};
pub use offline::{OFFLINE_MODEL, OfflineProvider, count_tokens};
pub use openai::OpenAiProvider;
pub use provider::{Provider, ProviderError, ProviderErrorKind, estimate_usage};
pub use resilience::{BreakerConfig, BreakerStatus, CallFailure, Resilient, RetryPolicy};

use serde::{Deserialize, Serialize};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// A chat request after the runtime has resolved the model and applied its limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub max_tokens: u32,
    pub temperature: Option<f32>,
    /// Models to try, in order, when `model` cannot answer (its provider's breaker is open, or it
    /// failed in a way waiting does not fix): the agent's granted models after `model`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
}

/// Tokens one call consumed, normalised (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
}

impl Usage {
    /// Adds another call's usage to this one.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
    }
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub text: String,
    pub model: String,
    pub provider: String,
    pub stop_reason: String,
    pub usage: Usage,
    /// The provider reported no usage: `usage` is the host's estimate (recorded and flagged as
    /// such in the ledger).
    #[serde(default)]
    pub usage_estimated: bool,
}

/// Where a streamed answer's text goes as it arrives, piece by piece. The complete answer (with its
/// usage) is still returned at the end.
pub type Deltas = tokio::sync::mpsc::UnboundedSender<String>;

/// Who is calling: what the gateway needs to meter, budget and attribute a call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    pub tenant: String,
    pub agent: String,
    pub automation: Option<String>,
    pub run_id: String,
    /// The run at the top of this run's delegation tree (the run itself when nobody delegated
    /// to it): its per-run budget covers the whole tree.
    pub root_run_id: String,
    pub attempt: u32,
    /// The call's number in the run (0, 1, …) when the run keeps a journal of its calls (a
    /// plugin run): the answer is kept, and a run that runs again gets it back for the same
    /// request instead of paying for it twice. `None` for calls outside a run (chat).
    pub call_seq: Option<u32>,
}

/// Why a call failed. The text of each variant is shown to the plugin and on the run's page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AiError {
    #[error("{0}")]
    NotGranted(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    BudgetExceeded(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Other(String),
}

/// Something that answers chat requests: a provider, or a gateway that routes, retries, meters and
/// budgets across providers.
#[async_trait::async_trait]
pub trait AiGateway: Send + Sync {
    /// Answers one request on behalf of `ctx`.
    async fn chat(&self, ctx: &CallContext, request: ChatRequest) -> Result<ChatResponse, AiError>;
}
