//! Chat with a model through the host's AI gateway. Every call is metered (tokens and cost are
//! recorded against the run, agent and tenant) and checked against budgets before it is made.
//!
//! ```no_run
//! # fn f() -> mission_control_sdk::Result<()> {
//! use mission_control_sdk::ai;
//! let reply = ai::chat()
//!     .system("You are a concise copywriter.")
//!     .user("A tagline for a bakery.")
//!     .max_tokens(60)
//!     .send()?;
//! println!("{} ({} output tokens)", reply.text, reply.usage.output_tokens);
//! # Ok(()) }
//! ```

use crate::bindings::mission::control::ai::{self as wit, AiError};
use crate::{Error, ErrorKind, Result};

/// Tokens one call consumed. `input_tokens` excludes cached tokens, which are counted apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Uncached input tokens.
    pub input_tokens: u32,
    /// Generated tokens.
    pub output_tokens: u32,
    /// Input tokens read from the provider's prompt cache.
    pub cache_read_tokens: u32,
    /// Input tokens written to the provider's prompt cache.
    pub cache_write_tokens: u32,
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The generated text.
    pub text: String,
    /// The model that answered (after any fallback).
    pub model: String,
    /// The provider that served the call.
    pub provider: String,
    /// Why generation stopped (`end-turn`, `max-tokens`, ...).
    pub stop_reason: String,
    /// What the call consumed.
    pub usage: Usage,
}

/// A chat request under construction; see [`chat`].
#[derive(Debug, Clone, Default)]
pub struct Chat {
    model: Option<String>,
    messages: Vec<wit::Message>,
    max_tokens: Option<u32>,
    temperature: Option<f32>,
}

/// Starts a chat request.
pub fn chat() -> Chat {
    Chat::default()
}

/// One system prompt and one user message; the common case.
pub fn complete(system: &str, prompt: &str) -> Result<Reply> {
    chat().system(system).user(prompt).send()
}

impl Chat {
    fn push(mut self, role: wit::Role, content: impl Into<String>) -> Chat {
        self.messages.push(wit::Message {
            role,
            content: content.into(),
        });
        self
    }

    /// Adds a system message (instructions).
    pub fn system(self, content: impl Into<String>) -> Chat {
        self.push(wit::Role::System, content)
    }

    /// Adds a user message.
    pub fn user(self, content: impl Into<String>) -> Chat {
        self.push(wit::Role::User, content)
    }

    /// Adds an earlier answer of the model, for multi-turn conversations.
    pub fn assistant(self, content: impl Into<String>) -> Chat {
        self.push(wit::Role::Assistant, content)
    }

    /// Picks a model; without it the agent's default model answers.
    pub fn model(mut self, model: impl Into<String>) -> Chat {
        self.model = Some(model.into());
        self
    }

    /// Caps the answer's length in tokens.
    pub fn max_tokens(mut self, n: u32) -> Chat {
        self.max_tokens = Some(n);
        self
    }

    /// Sets the sampling temperature (0 to 2).
    pub fn temperature(mut self, t: f32) -> Chat {
        self.temperature = Some(t);
        self
    }

    /// Sends the request and waits for the whole answer.
    pub fn send(self) -> Result<Reply> {
        let req = wit::ChatRequest {
            model: self.model,
            messages: self.messages,
            max_tokens: self.max_tokens,
            temperature: self.temperature,
        };
        match wit::chat(&req) {
            Ok(r) => Ok(Reply {
                text: r.text,
                model: r.model,
                provider: r.provider,
                stop_reason: r.stop_reason,
                usage: Usage {
                    input_tokens: r.usage.input_tokens,
                    output_tokens: r.usage.output_tokens,
                    cache_read_tokens: r.usage.cache_read_tokens,
                    cache_write_tokens: r.usage.cache_write_tokens,
                },
            }),
            Err(AiError::NotGranted(m)) => Err(Error::not_granted(m)),
            Err(AiError::InvalidRequest(m)) => Err(Error::internal(format!("invalid AI request: {m}"))),
            Err(AiError::BudgetExceeded(m)) => Err(Error::new(ErrorKind::BudgetExceeded, m)),
            Err(AiError::Unavailable(m)) => Err(Error::upstream(m)),
            Err(AiError::Other(m)) => Err(Error::upstream(m).with_retryable(false)),
        }
    }
}
