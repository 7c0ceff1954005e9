//! The [`Provider`] trait every model backend implements (one HTTP attempt, no retries: those
//! belong to [`Resilient`](crate::Resilient)), the [`ProviderError`] it fails with, the usage
//! estimate used when a provider reports none, and the offline provider's implementation.

use std::fmt;
use std::time::Duration;

use crate::{AiError, ChatRequest, ChatResponse, Deltas, Message, OfflineProvider, Usage, count_tokens};

/// A model backend: Anthropic, an OpenAI-compatible server, or the offline provider.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// The provider's name as recorded in the ledger: "anthropic", "openai", "offline", ...
    fn name(&self) -> &str;

    /// One HTTP attempt (no retries here). `key` is the API key to use (None: send none, e.g.
    /// Ollama). With `deltas`, the call streams and sends each text piece to `deltas` as it
    /// arrives; the complete [`ChatResponse`] (text joined, usage from the stream) is returned at
    /// the end either way.
    async fn send(
        &self,
        request: &ChatRequest,
        key: Option<&str>,
        deltas: Option<&Deltas>,
    ) -> Result<ChatResponse, ProviderError>;
}

/// What kind of failure a provider call met; decides whether waiting and retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderErrorKind {
    /// 429: too many requests or tokens for the key's rate limits.
    RateLimited,
    /// 529 (Anthropic): the provider as a whole is overloaded.
    Overloaded,
    /// 5xx other than 529, 408 and 409: the provider failed this request.
    Server,
    /// No answer within the call timeout, or the connection stalled mid-answer.
    Timeout,
    /// The provider could not be reached, or the connection broke mid-answer.
    Connect,
    /// 401 or 403: the key is missing, wrong, or lacks permission.
    Auth,
    /// 400 and other 4xx not listed here: the request itself is wrong.
    BadRequest,
    /// 404: unknown model or endpoint.
    NotFound,
    /// The provider answered something that is not its wire format.
    Malformed,
    /// Refused here without calling the provider: its circuit breaker is open.
    Unavailable,
}

impl ProviderErrorKind {
    /// The failures that say the provider is struggling (not that the request is wrong): these
    /// are retried, and they are what opens a circuit breaker.
    pub fn is_outage(self) -> bool {
        matches!(
            self,
            ProviderErrorKind::RateLimited
                | ProviderErrorKind::Overloaded
                | ProviderErrorKind::Server
                | ProviderErrorKind::Timeout
                | ProviderErrorKind::Connect
        )
    }

    /// The kind an HTTP error status means.
    pub fn from_status(status: u16) -> ProviderErrorKind {
        match status {
            401 | 403 => ProviderErrorKind::Auth,
            404 => ProviderErrorKind::NotFound,
            408 | 409 => ProviderErrorKind::Server,
            429 => ProviderErrorKind::RateLimited,
            529 => ProviderErrorKind::Overloaded,
            500..=599 => ProviderErrorKind::Server,
            400..=499 => ProviderErrorKind::BadRequest,
            // A redirect or an informational status is not something these APIs answer.
            _ => ProviderErrorKind::Malformed,
        }
    }
}

/// Why one provider call failed. `message` is one sentence a tenant can act on, with the
/// provider's own error type and message; it never contains the API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub kind: ProviderErrorKind,
    /// The HTTP status, when the provider answered with one.
    pub status: Option<u16>,
    pub message: String,
    /// How long the provider asked us to wait (`retry-after-ms`, else `retry-after`).
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    /// An error with no HTTP status and no retry hint.
    pub fn new(kind: ProviderErrorKind, message: impl Into<String>) -> ProviderError {
        ProviderError {
            kind,
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Whether waiting and trying again can help: 408, 409, 429, 5xx, 529, timeouts and
    /// connection failures.
    pub fn retryable(&self) -> bool {
        self.kind.is_outage()
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProviderError {}

/// Tokens a chat format adds per message for the role and separators; the same allowance the
/// offline provider bills, so that an estimate does not flatter the input count.
const ESTIMATE_TOKENS_PER_MESSAGE: u64 = 4;

/// The host's estimate of a call's usage, for a provider that reported none: the conversation
/// plus a per-message allowance in, the answer out, nothing cached.
pub fn estimate_usage(messages: &[Message], text: &str) -> Usage {
    Usage {
        input_tokens: messages
            .iter()
            .map(|m| count_tokens(&m.content) + ESTIMATE_TOKENS_PER_MESSAGE)
            .sum(),
        output_tokens: count_tokens(text),
        cache_read_tokens: 0,
        cache_write_tokens: 0,
    }
}

/// The complete answer from its parts; `usage` None (the provider reported none) is replaced by
/// the estimate and flagged.
pub(crate) fn complete(
    provider: &str,
    request: &ChatRequest,
    text: String,
    model: Option<String>,
    stop_reason: String,
    usage: Option<Usage>,
) -> ChatResponse {
    let (usage, usage_estimated) = match usage {
        Some(usage) => (usage, false),
        None => (estimate_usage(&request.messages, &text), true),
    };
    ChatResponse {
        text,
        model: model.filter(|m| !m.is_empty()).unwrap_or_else(|| request.model.clone()),
        provider: provider.to_string(),
        stop_reason,
        usage,
        usage_estimated,
    }
}

/// Sends a piece of a streamed answer. A closed receiver only means nobody is watching any more;
/// the call still completes, so that its usage is recorded.
pub(crate) fn emit(deltas: Option<&Deltas>, piece: &str) {
    if let Some(deltas) = deltas
        && !piece.is_empty()
    {
        let _ = deltas.send(piece.to_string());
    }
}

#[async_trait::async_trait]
impl Provider for OfflineProvider {
    fn name(&self) -> &str {
        "offline"
    }

    async fn send(
        &self,
        request: &ChatRequest,
        _key: Option<&str>,
        deltas: Option<&Deltas>,
    ) -> Result<ChatResponse, ProviderError> {
        let response = self.answer(request).map_err(|e| match e {
            AiError::InvalidRequest(m) => ProviderError::new(ProviderErrorKind::BadRequest, m),
            other => ProviderError::new(ProviderErrorKind::Server, other.to_string()),
        })?;
        // Word by word, like a real stream, so streaming consumers are exercised offline too.
        if deltas.is_some() {
            for piece in response.text.split_inclusive(char::is_whitespace) {
                emit(deltas, piece);
            }
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OFFLINE_MODEL, Role};

    #[test]
    fn kinds_from_status() {
        use ProviderErrorKind::*;
        for (status, kind, retryable) in [
            (400, BadRequest, false),
            (401, Auth, false),
            (403, Auth, false),
            (404, NotFound, false),
            (408, Server, true),
            (409, Server, true),
            (413, BadRequest, false),
            (429, RateLimited, true),
            (500, Server, true),
            (503, Server, true),
            (529, Overloaded, true),
            (302, Malformed, false),
        ] {
            let e = ProviderError {
                kind: ProviderErrorKind::from_status(status),
                status: Some(status),
                message: String::new(),
                retry_after: None,
            };
            assert_eq!(e.kind, kind, "{status}");
            assert_eq!(e.retryable(), retryable, "{status}");
        }
    }

    #[tokio::test]
    async fn offline_streams_word_by_word() {
        let request = ChatRequest {
            model: OFFLINE_MODEL.into(),
            messages: vec![Message {
                role: Role::User,
                content: "Write about the spring sale".into(),
            }],
            max_tokens: 200,
            temperature: None,
            fallbacks: Vec::new(),
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let response = OfflineProvider
            .send(&request, Some("ignored"), Some(&tx))
            .await
            .unwrap();
        drop(tx);
        let mut pieces = Vec::new();
        while let Some(p) = rx.recv().await {
            pieces.push(p);
        }
        assert!(pieces.len() > 5);
        assert_eq!(pieces.concat(), response.text);
        assert_eq!(response.provider, "offline");

        let mut wrong = request.clone();
        wrong.model = "gpt-4o".into();
        let err = OfflineProvider.send(&wrong, None, None).await.unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::BadRequest);
    }
}
