//! The exporter's configuration: where spans go, what they are called, and the bounds that keep a
//! slow or dead collector from costing the host memory or time.

use std::fmt;
use std::time::Duration;

/// How often a batch is sent: the OpenTelemetry SDK's `BatchSpanProcessor` default
/// (`OTEL_BSP_SCHEDULE_DELAY`), so a trace shows up in a second or so without a request per span.
pub const DEFAULT_EXPORT_EVERY: Duration = Duration::from_secs(1);

/// Spans per request: the SDK's `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`. A full batch is sent at once
/// rather than waiting for the tick, and one request stays well under collectors' body limits.
pub const DEFAULT_MAX_BATCH: usize = 512;

/// Finished spans waiting for the exporter: the SDK's `OTEL_BSP_MAX_QUEUE_SIZE`. A collector that
/// is down or slow cannot grow the host's memory past this; spans beyond it are dropped and
/// counted, never waited for, because tracing must not slow a run down.
pub const DEFAULT_MAX_QUEUE: usize = 2048;

/// One export request, connection included: the SDK's `OTEL_EXPORTER_OTLP_TIMEOUT`. It also bounds
/// the final flush on shutdown, so stopping never hangs on a collector that does not answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The path the OTLP/HTTP spec gives traces under a collector's base URL.
pub const TRACES_PATH: &str = "/v1/traces";

/// Where and how spans are exported. Build it with [`OtlpConfig::new`] and adjust the fields.
#[derive(Clone)]
pub struct OtlpConfig {
    /// The collector's base URL (e.g. `http://127.0.0.1:4318`); traces go to
    /// `{endpoint}/v1/traces` unless it already ends with `/v1/traces`.
    pub endpoint: String,
    /// The resource's `service.name`, how a tracing backend groups this process's spans.
    pub service_name: String,
    /// Extra request headers, typically a vendor's API key.
    pub headers: Vec<(String, String)>,
    /// [`DEFAULT_EXPORT_EVERY`].
    pub export_every: Duration,
    /// [`DEFAULT_MAX_BATCH`].
    pub max_batch: usize,
    /// [`DEFAULT_MAX_QUEUE`].
    pub max_queue: usize,
    /// [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
}

impl OtlpConfig {
    pub fn new(endpoint: impl Into<String>, service_name: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            service_name: service_name.into(),
            headers: Vec::new(),
            export_every: DEFAULT_EXPORT_EVERY,
            max_batch: DEFAULT_MAX_BATCH,
            max_queue: DEFAULT_MAX_QUEUE,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Checks everything that would otherwise fail only when the first batch is sent, so that a
    /// typo is reported at startup rather than as dropped spans.
    pub fn validate(&self) -> Result<(), String> {
        self.traces_url()?;
        if self.service_name.trim().is_empty() {
            return Err("OTLP service name is empty".into());
        }
        for (name, value) in &self.headers {
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("OTLP header name {name:?} is not a valid HTTP header name"))?;
            // The value is not echoed: headers usually carry credentials.
            reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| format!("OTLP header {name:?} has a value that is not a valid HTTP header value"))?;
        }
        if self.export_every.is_zero() {
            return Err("OTLP export interval must be greater than zero".into());
        }
        if self.timeout.is_zero() {
            return Err("OTLP timeout must be greater than zero".into());
        }
        if self.max_batch == 0 {
            return Err("OTLP batch size must be at least 1".into());
        }
        if self.max_queue == 0 {
            return Err("OTLP queue size must be at least 1".into());
        }
        Ok(())
    }

    /// The URL batches are posted to: the endpoint with `/v1/traces` appended, like the SDKs do
    /// with `OTEL_EXPORTER_OTLP_ENDPOINT`, unless it is already the full traces URL.
    pub fn traces_url(&self) -> Result<reqwest::Url, String> {
        let endpoint = self.endpoint.trim();
        let url = reqwest::Url::parse(endpoint).map_err(|e| format!("OTLP endpoint {endpoint:?} is not a URL: {e}"))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(format!(
                "OTLP endpoint {endpoint:?} must be an http or https URL, not {}",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("OTLP endpoint {endpoint:?} has no host"));
        }
        if url.path().trim_end_matches('/').ends_with(TRACES_PATH) {
            return Ok(url);
        }
        let full = format!("{}{TRACES_PATH}", endpoint.trim_end_matches('/'));
        reqwest::Url::parse(&full).map_err(|e| format!("OTLP endpoint {endpoint:?} is not a URL: {e}"))
    }
}

// By hand, because header values are usually credentials and configs end up in logs.
impl fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(k, _)| (k.as_str(), "<redacted>")).collect();
        f.debug_struct("OtlpConfig")
            .field("endpoint", &self.endpoint)
            .field("service_name", &self.service_name)
            .field("headers", &headers)
            .field("export_every", &self.export_every)
            .field("max_batch", &self.max_batch)
            .field("max_queue", &self.max_queue)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_url_is_appended_once() {
        let url = |e: &str| OtlpConfig::new(e, "s").traces_url().unwrap().to_string();
        assert_eq!(url("http://127.0.0.1:4318"), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(url("http://127.0.0.1:4318/"), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(url("https://otel.example/base"), "https://otel.example/base/v1/traces");
        assert_eq!(url("https://otel.example/v1/traces"), "https://otel.example/v1/traces");
    }

    #[test]
    fn headers_and_bounds_are_checked() {
        let mut c = OtlpConfig::new("http://h:4318", "s");
        c.headers.push(("bad name".into(), "v".into()));
        assert_eq!(
            c.validate().unwrap_err(),
            "OTLP header name \"bad name\" is not a valid HTTP header name"
        );
        let mut c = OtlpConfig::new("http://h:4318", "s");
        c.max_queue = 0;
        assert_eq!(c.validate().unwrap_err(), "OTLP queue size must be at least 1");
        let mut c = OtlpConfig::new("http://h:4318", "s");
        c.headers.push(("x-api-key".into(), "secret".into()));
        assert!(c.validate().is_ok());
        assert!(!format!("{c:?}").contains("secret"));
    }
}
