//! Retries and a circuit breaker around one [`Provider`]: [`Resilient`] retries the failures that
//! waiting can fix (with exponential backoff and full jitter, or the wait the provider asked
//! for), bounds every attempt by a timeout, and stops calling a provider that keeps failing until
//! a single probe call shows it has recovered.
//!
//! Only outage failures (429, 5xx, 529, 408, 409, timeouts, connection failures) count towards
//! opening the breaker: a 400, 401 or 404 says the request or the key is wrong, not that the
//! provider is down, and a malformed answer is a configuration problem retries do not fix.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::time::Instant;

use crate::provider::{ProviderError, ProviderErrorKind};
use crate::{ChatRequest, ChatResponse, Deltas, Provider};

/// How a call is retried and bounded. The defaults are the official Anthropic and OpenAI SDKs'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The backoff cap before the first retry; it doubles for each retry after.
    pub first_backoff: Duration,
    /// The largest backoff cap.
    pub max_backoff: Duration,
    /// How long one attempt may take: the whole answer when it is not streamed; when it is,
    /// the wait for each piece (the first one included).
    pub call_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            // Long answers from large models take a minute or more; two minutes without an
            // answer means the call is stuck, not slow.
            call_timeout: Duration::from_secs(120),
        }
    }
}

/// When the circuit breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive outage failures (attempts, not calls) that open the breaker.
    pub failures_to_open: u32,
    /// How long an open breaker refuses calls before letting one probe through.
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures_to_open: 5,
            open_for: Duration::from_secs(30),
        }
    }
}

/// A call that failed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailure {
    /// The last attempt's error, or (with no attempt) the breaker's refusal.
    pub error: ProviderError,
    /// HTTP attempts made; 0 when the breaker refused the call outright.
    pub attempts: u32,
    /// The provider's breaker is open: it refused the call, or this call's failures opened it.
    /// Another provider may answer; this one will not for a while.
    pub breaker_open: bool,
    /// Part of the answer already reached the listener (a stream broke mid-answer): nothing else
    /// may answer this call, or the listener would get two answers mixed.
    pub text_sent: bool,
}

impl fmt::Display for CallFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error.message)?;
        if self.attempts > 1 {
            write!(f, " (after {} attempts)", self.attempts)?;
        }
        if self.breaker_open && self.attempts > 0 {
            f.write_str("; its circuit breaker is now open")?;
        }
        Ok(())
    }
}

impl std::error::Error for CallFailure {}

/// A breaker's state, for the operator's status page and the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerStatus {
    pub provider: String,
    /// "closed", "open" or "half-open" (the next call, or the one in flight, is the probe).
    pub state: String,
    pub consecutive_failures: u32,
    pub opened_at_unix_ms: Option<i64>,
    /// While open: how long until a probe is let through.
    pub retry_in_ms: Option<u64>,
    /// Outage failures (attempts) since the process started.
    pub total_failures: u64,
    /// Successful attempts since the process started.
    pub total_successes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probe_in_flight: bool },
}

#[derive(Debug)]
struct Breaker {
    state: State,
    consecutive_failures: u32,
    /// The consecutive failures when it last opened, for the refusal's message.
    opened_after: u32,
    opened_at_unix_ms: Option<i64>,
    total_failures: u64,
    total_successes: u64,
}

/// Whether an admitted attempt is the half-open breaker's probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    Normal,
    Probe,
}

/// A provider with retries, per-attempt timeouts and a circuit breaker.
pub struct Resilient {
    provider: Arc<dyn Provider>,
    policy: RetryPolicy,
    config: BreakerConfig,
    breaker: Mutex<Breaker>,
    /// State of the jitter generator (splitmix64): jitter needs spread, not secrecy, so a
    /// counter seeded from the clock does.
    jitter: AtomicU64,
}

impl fmt::Debug for Resilient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resilient")
            .field("provider", &self.provider.name())
            .field("policy", &self.policy)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Resilient {
    pub fn new(provider: Arc<dyn Provider>, policy: RetryPolicy, config: BreakerConfig) -> Resilient {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ (Arc::as_ptr(&provider) as *const () as u64);
        Resilient {
            provider,
            policy,
            config: BreakerConfig {
                // Zero would open the breaker before any failure.
                failures_to_open: config.failures_to_open.max(1),
                ..config
            },
            breaker: Mutex::new(Breaker {
                state: State::Closed,
                consecutive_failures: 0,
                opened_after: 0,
                opened_at_unix_ms: None,
                total_failures: 0,
                total_successes: 0,
            }),
            jitter: AtomicU64::new(seed),
        }
    }

    /// The wrapped provider's name.
    pub fn name(&self) -> &str {
        self.provider.name()
    }

    /// The wrapped provider.
    pub fn provider(&self) -> &Arc<dyn Provider> {
        &self.provider
    }

    /// Answers `request`, retrying what waiting can fix. A streamed call is not retried once
    /// some of its text has reached `deltas`: the listener cannot take it back.
    pub async fn send(
        &self,
        request: &ChatRequest,
        key: Option<&str>,
        deltas: Option<&Deltas>,
    ) -> Result<ChatResponse, CallFailure> {
        let mut attempts = 0;
        let mut last_error: Option<ProviderError> = None;
        loop {
            let admission = match self.admit() {
                Ok(admission) => admission,
                Err(refusal) => {
                    return Err(CallFailure {
                        error: last_error.unwrap_or(refusal),
                        attempts,
                        breaker_open: true,
                        text_sent: false,
                    });
                }
            };
            let mut probe = ProbeGuard {
                breaker: &self.breaker,
                armed: admission == Admission::Probe,
            };
            attempts += 1;
            let (result, text_sent) = self.attempt(request, key, deltas).await;
            self.record(&result, admission);
            probe.armed = false;
            let error = match result {
                Ok(response) => return Ok(response),
                Err(error) => error,
            };
            let breaker_open = self.refusing();
            if !error.retryable() || text_sent || attempts > self.policy.max_retries || breaker_open {
                return Err(CallFailure {
                    error,
                    attempts,
                    breaker_open,
                    text_sent,
                });
            }
            tokio::time::sleep(self.backoff(attempts, error.retry_after)).await;
            last_error = Some(error);
        }
    }

    /// The breaker's state now.
    pub fn breaker(&self) -> BreakerStatus {
        let b = self.lock();
        let now = Instant::now();
        let (state, retry_in_ms) = match b.state {
            State::Closed => ("closed", None),
            State::Open { until } if until > now => (
                "open",
                Some(u64::try_from((until - now).as_millis()).unwrap_or(u64::MAX)),
            ),
            State::Open { .. } | State::HalfOpen { .. } => ("half-open", None),
        };
        BreakerStatus {
            provider: self.name().to_string(),
            state: state.to_string(),
            consecutive_failures: b.consecutive_failures,
            opened_at_unix_ms: b.opened_at_unix_ms,
            retry_in_ms,
            total_failures: b.total_failures,
            total_successes: b.total_successes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Breaker> {
        // The breaker's fields are plain counters, consistent after any panic.
        self.breaker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets an attempt through, or says why not.
    fn admit(&self) -> Result<Admission, ProviderError> {
        let mut b = self.lock();
        let now = Instant::now();
        match b.state {
            State::Closed => Ok(Admission::Normal),
            State::Open { until } if until <= now => {
                b.state = State::HalfOpen { probe_in_flight: true };
                Ok(Admission::Probe)
            }
            State::HalfOpen { probe_in_flight: false } => {
                b.state = State::HalfOpen { probe_in_flight: true };
                Ok(Admission::Probe)
            }
            State::Open { until } => {
                let wait = until - now;
                let mut e = ProviderError::new(
                    ProviderErrorKind::Unavailable,
                    format!(
                        "{} is unavailable: its circuit breaker opened after {} failed calls and will be probed again in {}",
                        self.name(),
                        b.opened_after,
                        human(wait)
                    ),
                );
                e.retry_after = Some(wait);
                Err(e)
            }
            State::HalfOpen { probe_in_flight: true } => Err(ProviderError::new(
                ProviderErrorKind::Unavailable,
                format!(
                    "{} is unavailable: its circuit breaker opened after {} failed calls and a probe call is testing it now",
                    self.name(),
                    b.opened_after
                ),
            )),
        }
    }

    /// Whether the breaker would refuse a call now.
    fn refusing(&self) -> bool {
        match self.lock().state {
            State::Closed => false,
            State::Open { until } => until > Instant::now(),
            State::HalfOpen { probe_in_flight } => probe_in_flight,
        }
    }

    /// Counts an attempt's outcome and moves the breaker.
    fn record(&self, result: &Result<ChatResponse, ProviderError>, admission: Admission) {
        let mut b = self.lock();
        let outage = matches!(result, Err(e) if e.kind.is_outage());
        if !outage {
            // The provider answered (even a 400 or 401 proves it is up).
            if result.is_ok() {
                b.total_successes += 1;
            }
            b.consecutive_failures = 0;
            if admission == Admission::Probe {
                b.state = State::Closed;
                b.opened_at_unix_ms = None;
            }
            return;
        }
        b.total_failures += 1;
        b.consecutive_failures = b.consecutive_failures.saturating_add(1);
        // Only the probe decides a half-open breaker; calls admitted before it opened (still in
        // flight then) only count.
        let open = match b.state {
            State::Closed => b.consecutive_failures >= self.config.failures_to_open,
            State::HalfOpen { .. } => admission == Admission::Probe,
            State::Open { .. } => false,
        };
        if open {
            b.state = State::Open {
                until: Instant::now() + self.config.open_for,
            };
            b.opened_after = b.consecutive_failures;
            b.opened_at_unix_ms = Some(unix_ms_now());
        }
    }

    /// One attempt within the call timeout (see [`RetryPolicy::call_timeout`]); also says whether
    /// any text reached `deltas`.
    async fn attempt(
        &self,
        request: &ChatRequest,
        key: Option<&str>,
        deltas: Option<&Deltas>,
    ) -> (Result<ChatResponse, ProviderError>, bool) {
        let timeout = self.policy.call_timeout;
        let Some(outer) = deltas else {
            let result = tokio::time::timeout(timeout, self.provider.send(request, key, None))
                .await
                .unwrap_or_else(|_| Err(self.timed_out()));
            return (result, false);
        };
        // The provider writes to a channel of ours, relayed to the caller's, so that we know
        // whether text went out before a failure.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let mut text_sent = false;
        let call = self.provider.send(request, key, Some(&tx));
        tokio::pin!(call);
        // A stream is bounded by its silences, not its length: a long answer arriving steadily
        // may take many minutes, and cutting it off after text went out could not be retried.
        let silence = tokio::time::sleep(timeout);
        tokio::pin!(silence);
        let result = loop {
            tokio::select! {
                biased;
                Some(piece) = rx.recv() => {
                    text_sent = true;
                    let _ = outer.send(piece);
                    silence.as_mut().reset(Instant::now() + timeout);
                }
                result = &mut call => {
                    while let Ok(piece) = rx.try_recv() {
                        text_sent = true;
                        let _ = outer.send(piece);
                    }
                    break result;
                }
                () = &mut silence => {
                    break Err(if text_sent { self.stalled() } else { self.timed_out() });
                }
            }
        };
        (result, text_sent)
    }

    fn stalled(&self) -> ProviderError {
        ProviderError::new(
            ProviderErrorKind::Timeout,
            format!(
                "{} stopped sending its answer for {}",
                self.name(),
                human(self.policy.call_timeout)
            ),
        )
    }

    fn timed_out(&self) -> ProviderError {
        ProviderError::new(
            ProviderErrorKind::Timeout,
            format!(
                "{} did not answer within {}",
                self.name(),
                human(self.policy.call_timeout)
            ),
        )
    }

    /// The wait before retry number `retry` (1-based): the provider's own `retry-after` when it
    /// gave one, else a random wait up to the exponential cap ("full jitter", so that clients that
    /// failed together do not retry together).
    fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait;
        }
        let cap = self
            .policy
            .first_backoff
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.policy.max_backoff);
        let fraction = (self.next_random() >> 11) as f64 / (1u64 << 53) as f64;
        cap.mul_f64(fraction)
    }

    /// splitmix64.
    fn next_random(&self) -> u64 {
        let mut z = self
            .jitter
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Frees the half-open breaker's probe slot if the probe's caller gives up (its future dropped)
/// before the outcome is recorded; otherwise the breaker would wait for that probe forever.
struct ProbeGuard<'a> {
    breaker: &'a Mutex<Breaker>,
    armed: bool,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut b = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        if b.state == (State::HalfOpen { probe_in_flight: true }) {
            b.state = State::HalfOpen { probe_in_flight: false };
        }
    }
}

fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// "120 s", "27 s" (rounded up, so a wait is never understated), or "250 ms" under a second.
fn human(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{} s", d.as_millis().div_ceil(1000))
    } else {
        format!("{} ms", d.as_micros().div_ceil(1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OfflineProvider;

    fn resilient(policy: RetryPolicy) -> Resilient {
        Resilient::new(Arc::new(OfflineProvider), policy, BreakerConfig::default())
    }

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_cap() {
        let r = resilient(RetryPolicy::default());
        for retry in 1..=8 {
            let cap = Duration::from_millis(500 * (1 << (retry - 1))).min(Duration::from_secs(8));
            let waits: Vec<Duration> = (0..200).map(|_| r.backoff(retry, None)).collect();
            assert!(waits.iter().all(|w| *w <= cap));
            // Spread, not a constant.
            assert!(waits.iter().any(|w| *w < cap / 2) && waits.iter().any(|w| *w > cap / 2));
        }
        assert_eq!(
            r.backoff(1, Some(Duration::from_millis(1234))),
            Duration::from_millis(1234)
        );
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_secs(120)), "120 s");
        assert_eq!(human(Duration::from_millis(26_100)), "27 s");
        assert_eq!(human(Duration::from_millis(250)), "250 ms");
    }

    #[test]
    fn failure_text() {
        let failure = CallFailure {
            error: ProviderError {
                kind: ProviderErrorKind::Overloaded,
                status: Some(529),
                message: "anthropic answered 529 overloaded_error: Overloaded".into(),
                retry_after: None,
            },
            attempts: 3,
            breaker_open: false,
            text_sent: false,
        };
        assert_eq!(
            failure.to_string(),
            "anthropic answered 529 overloaded_error: Overloaded (after 3 attempts)"
        );
    }
}
