//! [`Exporter`]: takes finished spans off the layer's queue, batches them and posts each batch to
//! the collector as OTLP/HTTP JSON; a failed batch gets one more try on the next tick and is then
//! dropped, so an unreachable collector costs a bounded queue and a counter, nothing more.
//! Also [`Stats`], the counters the layer and the exporter share.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::collect::OtlpLayer;
use crate::config::OtlpConfig;
use crate::otlp::{FinishedSpan, encode_request};

/// Shortest gap between two warnings about failing exports or dropped spans: a collector that is
/// down for an hour should leave a line a minute in the log, not two a second.
pub const WARN_EVERY: Duration = Duration::from_secs(60);

/// Builds the layer to install and the exporter to run, connected by a queue of
/// [`OtlpConfig::max_queue`] spans. Fails on a configuration [`OtlpConfig::validate`] rejects.
pub fn layer(config: OtlpConfig) -> Result<(OtlpLayer, Exporter), String> {
    config.validate()?;
    let url = config.traces_url()?;
    let mut headers = HeaderMap::new();
    for (name, value) in &config.headers {
        // Both were checked by `validate`.
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
        let value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
        headers.append(name, value);
    }
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(config.timeout)
        // The headers usually carry a vendor's key, and reqwest strips only the standard credential
        // headers when it follows a redirect; a collector has no reason to redirect.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("OTLP HTTP client: {e}"))?;
    let (queue, receiver) = mpsc::channel(config.max_queue);
    let counters = Arc::new(Counters::default());
    let layer = OtlpLayer::new(queue, counters.clone());
    let exporter = Exporter {
        receiver,
        client,
        url,
        service_name: config.service_name,
        export_every: config.export_every,
        max_batch: config.max_batch,
        timeout: config.timeout,
        counters,
    };
    Ok((layer, exporter))
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub dropped: AtomicU64,
    pub exported: AtomicU64,
}

/// What became of the spans so far; a cheap handle that stays valid after the exporter stopped.
#[derive(Clone, Debug)]
pub struct Stats(Arc<Counters>);

impl Stats {
    pub(crate) fn new(counters: Arc<Counters>) -> Self {
        Self(counters)
    }

    /// Spans lost: the queue was full or closed, their batch failed twice or was refused, the
    /// collector rejected them in a partial success, or the shutdown flush ran out of time.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }

    /// Spans a collector accepted.
    pub fn exported(&self) -> u64 {
        self.0.exported.load(Ordering::Relaxed)
    }
}

/// The sending half; run it with [`Exporter::run`] on the tokio runtime.
pub struct Exporter {
    receiver: mpsc::Receiver<FinishedSpan>,
    client: reqwest::Client,
    url: reqwest::Url,
    service_name: String,
    export_every: Duration,
    max_batch: usize,
    timeout: Duration,
    counters: Arc<Counters>,
}

/// An encoded batch and the number of spans in it.
struct Batch {
    body: Vec<u8>,
    spans: u64,
}

/// Why a post failed, and whether trying again later could help.
struct Failure {
    reason: String,
    retryable: bool,
}

impl Exporter {
    pub fn stats(&self) -> Stats {
        Stats::new(self.counters.clone())
    }

    /// Same as `self.stats().dropped()`.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Exports until `stop` completes (or every layer is dropped), then flushes what is queued
    /// within [`OtlpConfig::timeout`]. Spans that close after it returned are counted as dropped.
    pub async fn run(mut self, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let mut ticker = tokio::time::interval_at(Instant::now() + self.export_every, self.export_every);
        // After a slow export, wait a whole period again rather than firing the missed ticks in a
        // burst at a collector that is already struggling.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut pending: Vec<FinishedSpan> = Vec::with_capacity(self.max_batch);
        let mut retry: Option<Batch> = None;
        let mut log = Log::default();
        loop {
            let room = self.max_batch - pending.len();
            let tick = tokio::select! {
                biased;
                () = &mut stop => break,
                _ = ticker.tick() => true,
                received = self.receiver.recv_many(&mut pending, room), if room > 0 => {
                    if received == 0 {
                        break; // every layer is gone: nothing more will come
                    }
                    false
                }
            };
            if tick {
                if let Some(batch) = retry.take() {
                    self.send(batch, false, &mut log).await;
                }
                if !pending.is_empty() {
                    retry = self.send(self.encode(&mut pending), true, &mut log).await;
                }
                log.dropped(self.counters.dropped.load(Ordering::Relaxed));
            } else if pending.len() >= self.max_batch && retry.is_none() {
                // A full batch goes now, like the SDK's batch processor does. While a retry is
                // waiting the collector is known to be in trouble: the spans wait for the tick, and
                // the bounded queue behind them takes the overflow.
                retry = self.send(self.encode(&mut pending), true, &mut log).await;
            }
        }
        self.flush(pending, retry, &mut log).await;
    }

    fn encode(&self, spans: &mut Vec<FinishedSpan>) -> Batch {
        let batch = Batch {
            body: encode_request(&self.service_name, spans),
            spans: spans.len() as u64,
        };
        spans.clear();
        batch
    }

    /// Posts `batch`; on a failure worth retrying and with `may_retry`, hands it back for the next
    /// tick, else counts its spans as dropped.
    async fn send(&self, batch: Batch, may_retry: bool, log: &mut Log) -> Option<Batch> {
        match self.post(&batch).await {
            Ok(()) => {
                log.succeeded();
                None
            }
            Err(failure) if failure.retryable && may_retry => {
                log.failed(&failure.reason, "will retry once");
                Some(batch)
            }
            Err(failure) => {
                log.failed(&failure.reason, "batch dropped");
                self.counters.dropped.fetch_add(batch.spans, Ordering::Relaxed);
                None
            }
        }
    }

    /// The last export on shutdown: the batch waiting for a retry, the pending spans and whatever
    /// is still queued, each sent once, all within one timeout.
    async fn flush(mut self, mut pending: Vec<FinishedSpan>, retry: Option<Batch>, log: &mut Log) {
        // From here on a closing span is counted as dropped at once rather than queued for nobody.
        self.receiver.close();
        while let Ok(span) = self.receiver.try_recv() {
            pending.push(span);
        }
        let deadline = Instant::now() + self.timeout;
        let mut batches: Vec<Batch> = retry.into_iter().collect();
        for chunk in pending.chunks(self.max_batch) {
            batches.push(Batch {
                body: encode_request(&self.service_name, chunk),
                spans: chunk.len() as u64,
            });
        }
        let mut batches = batches.into_iter();
        for batch in batches.by_ref() {
            let spans = batch.spans;
            if tokio::time::timeout_at(deadline, self.send(batch, false, log))
                .await
                .is_err()
            {
                log.failed("the shutdown flush ran out of time", "batch dropped");
                self.counters.dropped.fetch_add(spans, Ordering::Relaxed);
                break;
            }
        }
        let unsent: u64 = batches.map(|b| b.spans).sum();
        self.counters.dropped.fetch_add(unsent, Ordering::Relaxed);
    }

    async fn post(&self, batch: &Batch) -> Result<(), Failure> {
        let response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            // A copy, because a batch that fails is kept for its retry; a batch is tens of
            // kilobytes, once a second.
            .body(batch.body.clone())
            .send()
            .await
            .map_err(|e| Failure {
                reason: error_chain(&e),
                retryable: true,
            })?;
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        if status.is_success() {
            let rejected = rejected_spans(&body).min(batch.spans);
            self.counters
                .exported
                .fetch_add(batch.spans - rejected, Ordering::Relaxed);
            if rejected > 0 {
                self.counters.dropped.fetch_add(rejected, Ordering::Relaxed);
                tracing::warn!(rejected, url = %self.url, "the OTLP collector rejected part of a batch");
            }
            return Ok(());
        }
        // 429 and 5xx are the collector saying "not now". Any other 4xx says the request itself is
        // wrong and will be again; a 3xx is a redirect, which is not followed.
        let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
        let detail = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        Err(Failure {
            reason: format!("{} answered {status}: {detail}", self.url),
            retryable,
        })
    }
}

/// `partialSuccess.rejectedSpans` of a successful response, 0 when absent or unreadable (an empty
/// body or a protobuf-speaking collector's). int64, so a string in OTLP/JSON, though some
/// collectors write a number.
fn rejected_spans(body: &[u8]) -> u64 {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    match &value["partialSuccess"]["rejectedSpans"] {
        serde_json::Value::String(s) => s.parse().unwrap_or(0),
        serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

/// reqwest's `Display` stops at "error sending request"; the cause (refused, timed out, TLS) is in
/// the sources.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Keeps the exporter's warnings to one per [`WARN_EVERY`] while things go wrong, plus a line when
/// they recover. The counters have the full story.
#[derive(Default)]
struct Log {
    failing: bool,
    last_warning: Option<Instant>,
    dropped_reported: u64,
}

impl Log {
    fn may_warn(&mut self) -> bool {
        let now = Instant::now();
        if self.last_warning.is_some_and(|at| now.duration_since(at) < WARN_EVERY) {
            return false;
        }
        self.last_warning = Some(now);
        true
    }

    fn failed(&mut self, reason: &str, outcome: &str) {
        // The first failure after a success is always worth a line.
        if !self.failing {
            self.last_warning = None;
        }
        self.failing = true;
        if self.may_warn() {
            tracing::warn!(outcome, "OTLP trace export failed: {reason}");
        }
    }

    fn succeeded(&mut self) {
        if self.failing {
            tracing::info!("OTLP trace export recovered");
        }
        self.failing = false;
    }

    /// Reports spans dropped since the last report, whatever dropped them.
    fn dropped(&mut self, total: u64) {
        if total > self.dropped_reported && self.may_warn() {
            tracing::warn!(
                dropped = total - self.dropped_reported,
                total,
                "OTLP trace export dropped spans"
            );
            self.dropped_reported = total;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_success_is_read_as_string_or_number() {
        assert_eq!(
            rejected_spans(br#"{"partialSuccess":{"rejectedSpans":"3","errorMessage":"x"}}"#),
            3
        );
        assert_eq!(rejected_spans(br#"{"partialSuccess":{"rejectedSpans":2}}"#), 2);
        assert_eq!(rejected_spans(b"{}"), 0);
        assert_eq!(rejected_spans(b""), 0);
    }
}
