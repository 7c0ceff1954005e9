//! HTTP plumbing shared by the provider adapters: the client, posting a JSON request, turning an
//! error status and body into a [`ProviderError`] a tenant can act on, reading bodies and event
//! streams within bounds, and keeping the API key out of every message.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::provider::{ProviderError, ProviderErrorKind};
use crate::sse::{SseEvent, SseParser};

/// How long to wait for a TCP and TLS connection. The whole call is bounded by the caller's
/// timeout; this only makes an unreachable host fail as "could not be reached" rather than as a
/// slow answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest response body read, in bytes. A chat answer is at most a few hundred kilobytes; the
/// bound keeps a misconfigured base URL (a file server, a proxy's error page) from filling memory.
pub(crate) const MAX_BODY_BYTES: usize = 16 << 20;

/// Longest piece of a provider's error text or body quoted in a message, in characters: enough
/// for any real error message, short enough for a run's page and a log line.
const MAX_QUOTE_CHARS: usize = 300;

/// The longest `retry-after` honoured. Longer hints (an hour-long rate-limit window) are better
/// served by failing now and letting the gateway fall back than by holding the call; the
/// official SDKs draw the same line.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Whether a response is a server-sent event stream (a server may ignore `stream: true`).
pub(crate) fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

/// Builds the client every adapter uses.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        // Following a redirect would resend the request, and reqwest strips only the standard
        // credential headers on the way: Anthropic's `x-api-key` would go to wherever the
        // redirect points. The APIs never redirect, so a redirect is reported as an error.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the HTTP client's TLS configuration is static and valid")
}

/// A header carrying a secret: marked sensitive so that no Debug output shows it.
pub(crate) fn secret_header(value: &str) -> Result<HeaderValue, ProviderError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        ProviderError::new(
            ProviderErrorKind::Auth,
            "the API key contains characters that cannot be sent in an HTTP header",
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// One provider endpoint: where to post and under which name to report.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub name: String,
    pub url: String,
    pub client: reqwest::Client,
}

impl Endpoint {
    pub fn new(name: &str, base_url: &str, path: &str) -> Endpoint {
        Endpoint {
            name: name.to_string(),
            url: format!("{}{path}", base_url.trim_end_matches('/')),
            client: client(),
        }
    }

    /// Posts `body` and returns the response if its status is a success; otherwise the
    /// provider's error, read from its body and headers.
    pub async fn post(&self, body: &serde_json::Value, headers: HeaderMap) -> Result<reqwest::Response, ProviderError> {
        let response = self
            .client
            .post(&self.url)
            .headers(headers)
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = retry_after(response.headers());
        let reason = status.canonical_reason().unwrap_or("");
        let body = self.read_body(response).await.unwrap_or_default();
        let mut error = self.error_from_body(status.as_u16(), reason, &body);
        error.retry_after = retry_after;
        Err(error)
    }

    /// The error for a non-success status, quoting the provider's own error type and message.
    fn error_from_body(&self, status: u16, reason: &str, body: &[u8]) -> ProviderError {
        let name = &self.name;
        let message = match error_fields(body) {
            Some((Some(kind), message)) => format!("{name} answered {status} {kind}: {message}"),
            Some((None, message)) => format!("{name} answered {status}: {message}"),
            None => {
                let text = quote(&String::from_utf8_lossy(body));
                if text.is_empty() {
                    format!("{name} answered {status} {reason} with an empty body")
                } else {
                    format!("{name} answered {status} {reason}: {text}")
                }
            }
        };
        ProviderError {
            kind: ProviderErrorKind::from_status(status),
            status: Some(status),
            message,
            retry_after: None,
        }
    }

    /// The error for a request that got no answer.
    pub fn transport_error(&self, error: &reqwest::Error) -> ProviderError {
        let name = &self.name;
        // reqwest's own text is "error sending request for url (...)"; the useful part ("connection
        // refused", "dns error", a certificate problem) is the innermost cause.
        let mut cause: &dyn std::error::Error = error;
        while let Some(source) = cause.source() {
            cause = source;
        }
        let cause = quote(&cause.to_string());
        if error.is_timeout() {
            ProviderError::new(
                ProviderErrorKind::Timeout,
                format!("{name} at {} timed out: {cause}", self.url),
            )
        } else if error.is_connect() || error.is_request() {
            ProviderError::new(
                ProviderErrorKind::Connect,
                format!("{name} could not be reached at {}: {cause}", self.url),
            )
        } else {
            ProviderError::new(
                ProviderErrorKind::Connect,
                format!("the connection to {name} broke before its answer was complete: {cause}"),
            )
        }
    }

    /// Reads a whole body, within [`MAX_BODY_BYTES`].
    pub async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, ProviderError> {
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(&e))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BODY_BYTES {
                return Err(self.too_large());
            }
        }
        Ok(body)
    }

    /// Reads an event stream, handing each event to `on_event` as it completes. `on_event`
    /// returns `Ok(true)` to stop reading (the answer is complete).
    pub async fn read_events(
        &self,
        mut response: reqwest::Response,
        mut on_event: impl FnMut(SseEvent) -> Result<bool, ProviderError>,
    ) -> Result<(), ProviderError> {
        let mut parser = SseParser::default();
        let mut total = 0usize;
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(&e))? {
            total += chunk.len();
            if total > MAX_BODY_BYTES {
                return Err(self.too_large());
            }
            let events = parser.feed(&chunk).map_err(|_| {
                ProviderError::new(
                    ProviderErrorKind::Malformed,
                    format!("{} answered with a stream that is not server-sent events", self.name),
                )
            })?;
            for event in events {
                if on_event(event)? {
                    return Ok(());
                }
            }
        }
        if let Some(event) = parser.finish() {
            on_event(event)?;
        }
        Ok(())
    }

    fn too_large(&self) -> ProviderError {
        ProviderError::new(
            ProviderErrorKind::Malformed,
            format!(
                "{} answered with more than {} MiB, which no chat answer needs: check its base URL",
                self.name,
                MAX_BODY_BYTES >> 20
            ),
        )
    }
}

/// The `(type, message)` of an error body: Anthropic's `{"type":"error","error":{"type",
/// "message"}}`, OpenAI's `{"error":{"message","type","param","code"}}` (whose `type` may be null,
/// then `code` names it), or the `{"error":"..."}` some compatible servers (Ollama) send.
fn error_fields(body: &[u8]) -> Option<(Option<String>, String)> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    if let Some(message) = error.as_str() {
        return Some((None, quote(message)));
    }
    let message = error.get("message").and_then(|m| m.as_str()).unwrap_or("");
    let kind = ["type", "code"]
        .iter()
        .find_map(|k| error.get(k).and_then(|t| t.as_str()))
        .filter(|t| !t.is_empty())
        .map(quote);
    if message.is_empty() && kind.is_none() {
        return None;
    }
    Some((kind, quote(message)))
}

/// How long the provider asked us to wait: `retry-after-ms` (milliseconds, Anthropic and
/// OpenAI), else `retry-after` in seconds; ignored when absent, negative, or above
/// [`MAX_RETRY_AFTER`].
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| -> Option<f64> {
        headers
            .get(HeaderName::from_bytes(name.as_bytes()).ok()?)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
    };
    let wait = number("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| number("retry-after").map(Duration::from_secs_f64))?;
    (wait <= MAX_RETRY_AFTER).then_some(wait)
}

/// `text` on one line, trimmed, cut to [`MAX_QUOTE_CHARS`].
pub(crate) fn quote(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX_QUOTE_CHARS {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(MAX_QUOTE_CHARS).collect();
    cut.push('…');
    cut
}

/// Removes the API key from a message: some providers quote (part of) the key they rejected, and
/// compatible servers may quote all of it.
pub(crate) fn redact(mut error: ProviderError, key: Option<&str>) -> ProviderError {
    if let Some(key) = key.map(str::trim).filter(|k| !k.is_empty())
        && error.message.contains(key)
    {
        error.message = error.message.replace(key, "[redacted]");
    }
    error
}

/// The error for a 2xx body that is not the expected shape, e.g. "openai answered 200 with a body
/// that is not a chat completion: missing field `choices`".
pub(crate) fn malformed(name: &str, status: u16, what: &str, error: &serde_json::Error) -> ProviderError {
    let message = if error.is_syntax() || error.is_eof() {
        format!("{name} answered {status} with a body that is not JSON: check its base URL")
    } else {
        // serde's position ("at line 1 column 20") means nothing to a tenant.
        let text = error.to_string();
        let detail = match text.rfind(" at line ") {
            Some(i) => &text[..i],
            None => &text,
        };
        format!(
            "{name} answered {status} with a body that is not {what}: {}",
            quote(detail)
        )
    };
    let mut e = ProviderError::new(ProviderErrorKind::Malformed, message);
    e.status = Some(status);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn retry_after_prefers_milliseconds_and_ignores_long_waits() {
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "250"), ("retry-after", "3")])),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3")])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "0.5")])),
            Some(Duration::from_millis(500))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "3600")])), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-1")])), None);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")])),
            None
        );
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn reads_both_error_bodies() {
        assert_eq!(
            error_fields(br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#),
            Some((Some("authentication_error".into()), "invalid x-api-key".into()))
        );
        assert_eq!(
            error_fields(
                br#"{"error":{"message":"Rate limit reached","type":null,"param":null,"code":"rate_limit_exceeded"}}"#
            ),
            Some((Some("rate_limit_exceeded".into()), "Rate limit reached".into()))
        );
        assert_eq!(
            error_fields(br#"{"error":"model 'llama9' not found"}"#),
            Some((None, "model 'llama9' not found".into()))
        );
        assert_eq!(error_fields(b"<html>502 Bad Gateway</html>"), None);
    }

    #[test]
    fn redacts_the_key() {
        let e = ProviderError::new(ProviderErrorKind::Auth, "bad key sk-secret-123 given");
        assert_eq!(redact(e, Some("sk-secret-123")).message, "bad key [redacted] given");
    }
}
