//! The real provider adapters against fakes that speak Anthropic's and OpenAI's wire formats:
//! usage normalisation (cache tokens above all), streaming, missing usage, malformed bodies, the
//! exact error messages tenants see, keys kept out of them, and the retry and circuit-breaker
//! behaviour of [`Resilient`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use mc_ai::{
    AnthropicProvider, BreakerConfig, CallFailure, ChatRequest, ChatResponse, Message, OpenAiProvider, Provider,
    ProviderError, ProviderErrorKind, Resilient, RetryPolicy, Role, Usage, estimate_usage,
};
use mc_testkit::fake_ai::{DEFAULT_KEY, FakeProvider, FakeUsage, Flavor, Reply, ReportedUsage};
use serde_json::json;

const KEY: Option<&str> = Some(DEFAULT_KEY);

fn request(model: &str, text: &str) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        messages: vec![
            Message {
                role: Role::System,
                content: "You write short answers.".into(),
            },
            Message {
                role: Role::User,
                content: text.into(),
            },
        ],
        max_tokens: 256,
        temperature: None,
        fallbacks: Vec::new(),
    }
}

fn provider(fake: &FakeProvider) -> Arc<dyn Provider> {
    match fake.flavor() {
        Flavor::Anthropic => Arc::new(AnthropicProvider::new(&fake.base_url())),
        Flavor::OpenAi => Arc::new(OpenAiProvider::new("openai", &fake.base_url())),
    }
}

fn model(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Anthropic => "claude-haiku-4-5",
        Flavor::OpenAi => "gpt-4o-mini",
    }
}

/// Sends with a delta channel and returns the answer and the pieces that arrived.
async fn send_streamed(
    p: &dyn Provider,
    req: &ChatRequest,
    key: Option<&str>,
) -> (Result<ChatResponse, ProviderError>, Vec<String>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let result = p.send(req, key, Some(&tx)).await;
    drop(tx);
    let mut pieces = Vec::new();
    while let Some(piece) = rx.recv().await {
        pieces.push(piece);
    }
    (result, pieces)
}

async fn error_of(fake: &FakeProvider, reply: Reply) -> ProviderError {
    fake.push(reply);
    provider(fake)
        .send(&request(model(fake.flavor()), "Hi"), KEY, None)
        .await
        .unwrap_err()
}

/// Retries fast, so that tests take milliseconds.
fn fast() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        first_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        call_timeout: Duration::from_secs(10),
    }
}

const CACHED: FakeUsage = FakeUsage {
    input: 12,
    output: 7,
    cache_read: 1000,
    cache_write: 50,
};

#[tokio::test]
async fn anthropic_whole_answer_keeps_cache_tokens_apart() {
    let fake = FakeProvider::start(Flavor::Anthropic).await;
    fake.push(Reply::ok("Hello there, gardener.", CACHED));
    let answer = provider(&fake)
        .send(&request("claude-haiku-4-5", "Say hello"), KEY, None)
        .await
        .unwrap();
    assert_eq!(answer.text, "Hello there, gardener.");
    assert_eq!(answer.provider, "anthropic");
    assert_eq!(answer.model, "claude-haiku-4-5");
    assert_eq!(answer.stop_reason, "end-turn");
    assert!(!answer.usage_estimated);
    // Anthropic's input_tokens already excludes the cache: nothing to subtract.
    assert_eq!(
        answer.usage,
        Usage {
            input_tokens: 12,
            output_tokens: 7,
            cache_read_tokens: 1000,
            cache_write_tokens: 50
        }
    );
    assert_eq!(
        fake.usage_log(),
        vec![ReportedUsage::Anthropic {
            input_tokens: 12,
            output_tokens: 7,
            cache_creation_input_tokens: 50,
            cache_read_input_tokens: 1000
        }]
    );
    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.headers["x-api-key"], DEFAULT_KEY);
    assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
    assert_eq!(sent.headers["content-type"], "application/json");
    assert_eq!(
        sent.body,
        json!({
            "model": "claude-haiku-4-5",
            "max_tokens": 256,
            "system": "You write short answers.",
            "messages": [{"role": "user", "content": "Say hello"}],
        })
    );
}

#[tokio::test]
async fn anthropic_stream_keeps_cache_tokens_apart() {
    let fake = FakeProvider::start(Flavor::Anthropic).await;
    fake.push(Reply::ok("One two three four five six seven eight.", CACHED));
    let p = provider(&fake);
    let (answer, pieces) = send_streamed(&*p, &request("claude-haiku-4-5", "Count"), KEY).await;
    let answer = answer.unwrap();
    assert!(pieces.len() > 1, "{pieces:?}");
    assert_eq!(pieces.concat(), "One two three four five six seven eight.");
    assert_eq!(answer.text, pieces.concat());
    assert_eq!(answer.stop_reason, "end-turn");
    assert!(!answer.usage_estimated);
    // Input and cache from message_start, output from message_delta's cumulative count.
    assert_eq!(
        answer.usage,
        Usage {
            input_tokens: 12,
            output_tokens: 7,
            cache_read_tokens: 1000,
            cache_write_tokens: 50
        }
    );
    assert_eq!(fake.requests()[0].body["stream"], json!(true));
}

#[tokio::test]
async fn openai_whole_answer_subtracts_cached_tokens_from_the_prompt() {
    let fake = FakeProvider::start(Flavor::OpenAi).await;
    fake.push(Reply::ok("Hello there, gardener.", CACHED));
    let answer = provider(&fake)
        .send(&request("gpt-4o-mini", "Say hello"), KEY, None)
        .await
        .unwrap();
    assert_eq!(answer.text, "Hello there, gardener.");
    assert_eq!(answer.provider, "openai");
    assert_eq!(answer.model, "gpt-4o-mini");
    assert_eq!(answer.stop_reason, "end-turn");
    // The provider said prompt_tokens = 1012 with 1000 cached: 12 uncached, 1000 cached, never
    // 1012 + 1000.
    assert_eq!(
        fake.usage_log(),
        vec![ReportedUsage::OpenAi {
            prompt_tokens: 1012,
            completion_tokens: 7,
            cached_tokens: 1000
        }]
    );
    assert_eq!(
        answer.usage,
        Usage {
            input_tokens: 12,
            output_tokens: 7,
            cache_read_tokens: 1000,
            cache_write_tokens: 0
        }
    );
    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.headers["authorization"], format!("Bearer {DEFAULT_KEY}"));
    assert_eq!(
        sent.body,
        json!({
            "model": "gpt-4o-mini",
            "max_tokens": 256,
            "messages": [
                {"role": "system", "content": "You write short answers."},
                {"role": "user", "content": "Say hello"},
            ],
        })
    );
}

#[tokio::test]
async fn openai_stream_asks_for_usage_and_subtracts_cached_tokens() {
    let fake = FakeProvider::start(Flavor::OpenAi).await;
    fake.push(Reply::ok("One two three four five six seven eight.", CACHED));
    let p = provider(&fake);
    let (answer, pieces) = send_streamed(&*p, &request("gpt-4o-mini", "Count"), KEY).await;
    let answer = answer.unwrap();
    assert!(pieces.len() > 1, "{pieces:?}");
    assert_eq!(answer.text, pieces.concat());
    assert_eq!(answer.text, "One two three four five six seven eight.");
    assert!(!answer.usage_estimated);
    assert_eq!(
        answer.usage,
        Usage {
            input_tokens: 12,
            output_tokens: 7,
            cache_read_tokens: 1000,
            cache_write_tokens: 0
        }
    );
    let body = &fake.requests()[0].body;
    assert_eq!(body["stream"], json!(true));
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn max_tokens_stop_reason_in_our_words() {
    for flavor in [Flavor::Anthropic, Flavor::OpenAi] {
        let fake = FakeProvider::start(flavor).await;
        let mut req = request(model(flavor), "Write a long essay");
        req.max_tokens = 5;
        // Unscripted: the fake's default answer uses min(max_tokens, 20) output tokens.
        let answer = provider(&fake).send(&req, KEY, None).await.unwrap();
        assert_eq!(answer.stop_reason, "max-tokens", "{flavor:?}");
        assert_eq!(answer.usage.output_tokens, 5);
        let p = provider(&fake);
        let (answer, _) = send_streamed(&*p, &req, KEY).await;
        assert_eq!(answer.unwrap().stop_reason, "max-tokens", "{flavor:?}");
    }
}

#[tokio::test]
async fn missing_usage_is_estimated_and_flagged() {
    for flavor in [Flavor::Anthropic, Flavor::OpenAi] {
        let fake = FakeProvider::start(flavor).await;
        let p = provider(&fake);
        let req = request(model(flavor), "Describe the spring sale");
        let text = "A short answer without usage.";
        let expected = estimate_usage(&req.messages, text);
        assert!(expected.input_tokens > 0 && expected.output_tokens > 0);

        fake.push(Reply::NoUsage { text: text.into() });
        let answer = p.send(&req, KEY, None).await.unwrap();
        assert!(answer.usage_estimated, "{flavor:?}");
        assert_eq!(answer.usage, expected);

        fake.push(Reply::NoUsage { text: text.into() });
        let (answer, pieces) = send_streamed(&*p, &req, KEY).await;
        let answer = answer.unwrap();
        assert_eq!(pieces.concat(), text);
        assert!(answer.usage_estimated, "{flavor:?} streamed");
        assert_eq!(answer.usage, expected);
        assert!(fake.usage_log().is_empty());
    }
}

#[tokio::test]
async fn malformed_bodies_say_what_was_wrong() {
    let fake = FakeProvider::start(Flavor::Anthropic).await;
    let e = error_of(&fake, Reply::Malformed(r#"{"id":"msg_1","type":"message"}"#.into())).await;
    assert_eq!(e.kind, ProviderErrorKind::Malformed);
    assert_eq!(e.status, Some(200));
    assert!(!e.retryable());
    assert_eq!(
        e.message,
        "anthropic answered 200 with a body that is not a message: missing field `content`"
    );
    let e = error_of(&fake, Reply::Malformed("<html>hello</html>".into())).await;
    assert_eq!(
        e.message,
        "anthropic answered 200 with a body that is not JSON: check its base URL"
    );

    let fake = FakeProvider::start(Flavor::OpenAi).await;
    let e = error_of(
        &fake,
        Reply::Malformed(r#"{"id":"x","object":"chat.completion"}"#.into()),
    )
    .await;
    assert_eq!(e.kind, ProviderErrorKind::Malformed);
    assert_eq!(
        e.message,
        "openai answered 200 with a body that is not a chat completion: missing field `choices`"
    );
    let e = error_of(&fake, Reply::Malformed(r#"{"choices":"none"}"#.into())).await;
    assert_eq!(
        e.message,
        "openai answered 200 with a body that is not a chat completion: invalid type: string \"none\", expected a sequence"
    );
    let e = error_of(&fake, Reply::Malformed(r#"{"choices":[]}"#.into())).await;
    assert_eq!(
        e.message,
        "openai answered 200 with a chat completion that has no choices"
    );
}

#[tokio::test]
async fn a_server_that_ignores_stream_still_answers_in_one_piece() {
    let fake = FakeProvider::start(Flavor::OpenAi).await;
    fake.push(Reply::Malformed(
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "llama3",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Whole answer."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
        })
        .to_string(),
    ));
    let p = provider(&fake);
    let (answer, pieces) = send_streamed(&*p, &request("llama3", "Hi"), KEY).await;
    let answer = answer.unwrap();
    assert_eq!(pieces, vec!["Whole answer.".to_string()]);
    assert_eq!(answer.usage.input_tokens, 9);
    assert_eq!(answer.model, "llama3");
}

#[tokio::test]
async fn error_bodies_become_exact_messages() {
    let fake = FakeProvider::start(Flavor::Anthropic).await;
    let e = error_of(&fake, Reply::overloaded()).await;
    assert_eq!(e.message, "anthropic answered 529 overloaded_error: Overloaded");
    assert_eq!(
        (e.kind, e.status, e.retryable()),
        (ProviderErrorKind::Overloaded, Some(529), true)
    );

    let e = error_of(
        &fake,
        Reply::status(
            400,
            "invalid_request_error",
            "max_tokens: 999999 > 64000, which is the maximum allowed",
        ),
    )
    .await;
    assert_eq!(
        e.message,
        "anthropic answered 400 invalid_request_error: max_tokens: 999999 > 64000, which is the maximum allowed"
    );
    assert_eq!((e.kind, e.retryable()), (ProviderErrorKind::BadRequest, false));

    let e = error_of(&fake, Reply::status(404, "not_found_error", "model: claude-nope")).await;
    assert_eq!(e.message, "anthropic answered 404 not_found_error: model: claude-nope");
    assert_eq!(e.kind, ProviderErrorKind::NotFound);

    let e = error_of(&fake, Reply::status(500, "api_error", "Internal server error")).await;
    assert_eq!(e.message, "anthropic answered 500 api_error: Internal server error");
    assert_eq!((e.kind, e.retryable()), (ProviderErrorKind::Server, true));

    let e = error_of(&fake, Reply::rate_limited(1500)).await;
    assert_eq!(e.kind, ProviderErrorKind::RateLimited);
    assert_eq!(e.retry_after, Some(Duration::from_millis(1500)));

    let fake = FakeProvider::start(Flavor::OpenAi).await;
    let e = error_of(
        &fake,
        Reply::status(
            429,
            "requests",
            "Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3, Used 3.",
        ),
    )
    .await;
    assert_eq!(
        e.message,
        "openai answered 429 requests: Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3, Used 3."
    );
    assert_eq!(e.kind, ProviderErrorKind::RateLimited);
    let e = error_of(
        &fake,
        Reply::status(503, "server_error", "The server is overloaded or not ready yet."),
    )
    .await;
    assert_eq!(
        e.message,
        "openai answered 503 server_error: The server is overloaded or not ready yet."
    );
    assert_eq!(e.kind, ProviderErrorKind::Server);
}

#[tokio::test]
async fn errors_mid_stream_are_reported() {
    let fake = FakeProvider::start(Flavor::Anthropic).await;
    fake.push(Reply::StreamError {
        error_type: "overloaded_error".into(),
        message: "Overloaded".into(),
    });
    let p = provider(&fake);
    let (result, pieces) = send_streamed(&*p, &request("claude-haiku-4-5", "Hi"), KEY).await;
    let e = result.unwrap_err();
    assert!(pieces.is_empty());
    assert_eq!(
        e.message,
        "anthropic failed mid-answer with overloaded_error: Overloaded"
    );
    assert_eq!(e.kind, ProviderErrorKind::Overloaded);

    fake.push(Reply::Truncated {
        text: "Cut off in the middle of".into(),
    });
    let (result, pieces) = send_streamed(&*p, &request("claude-haiku-4-5", "Hi"), KEY).await;
    assert_eq!(pieces.concat(), "Cut off in the middle of");
    let e = result.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Connect);
    assert_eq!(
        e.message,
        "the connection to anthropic broke before its answer was complete (the stream ended without message_stop)"
    );

    let fake = FakeProvider::start(Flavor::OpenAi).await;
    fake.push(Reply::StreamError {
        error_type: "server_error".into(),
        message: "The model had an error".into(),
    });
    let p = provider(&fake);
    let (result, _) = send_streamed(&*p, &request("gpt-4o-mini", "Hi"), KEY).await;
    let e = result.unwrap_err();
    assert_eq!(
        e.message,
        "openai failed mid-answer with server_error: The model had an error"
    );
    assert_eq!(e.kind, ProviderErrorKind::Server);

    fake.push(Reply::Truncated { text: "Cut off".into() });
    let (result, _) = send_streamed(&*p, &request("gpt-4o-mini", "Hi"), KEY).await;
    assert_eq!(
        result.unwrap_err().message,
        "the connection to openai broke before its answer was complete (the stream ended without [DONE])"
    );
}

#[tokio::test]
async fn auth_failures_never_echo_the_key() {
    let wrong = "sk-wrong-key-1234";

    let fake = FakeProvider::start(Flavor::Anthropic).await;
    let p = provider(&fake);
    let req = request("claude-haiku-4-5", "Hi");
    let e = p.send(&req, Some(wrong), None).await.unwrap_err();
    assert_eq!(
        e.message,
        "anthropic answered 401 authentication_error: invalid x-api-key"
    );
    assert_eq!(
        (e.kind, e.status, e.retryable()),
        (ProviderErrorKind::Auth, Some(401), false)
    );
    assert!(!format!("{e:?}").contains(wrong));
    let e = p.send(&req, None, None).await.unwrap_err();
    assert_eq!(
        e.message,
        "anthropic answered 401 authentication_error: x-api-key header is required"
    );

    // A provider quoting the whole key it rejected.
    fake.push(Reply::status(
        401,
        "authentication_error",
        &format!("key {DEFAULT_KEY} was revoked"),
    ));
    let e = p.send(&req, KEY, None).await.unwrap_err();
    assert_eq!(
        e.message,
        "anthropic answered 401 authentication_error: key [redacted] was revoked"
    );

    let fake = FakeProvider::start(Flavor::OpenAi).await;
    let p = provider(&fake);
    let req = request("gpt-4o-mini", "Hi");
    let e = p.send(&req, Some(wrong), None).await.unwrap_err();
    assert_eq!(
        e.message,
        "openai answered 401 invalid_request_error: Incorrect API key provided: sk-**********1234. You can find your API key at https://platform.openai.com/account/api-keys."
    );
    assert!(!format!("{e:?}").contains(wrong));
    let failure = Resilient::new(p.clone(), fast(), BreakerConfig::default())
        .send(&req, Some(wrong), None)
        .await
        .unwrap_err();
    assert_eq!(failure.attempts, 1, "a wrong key is not retried");
    assert!(!failure.to_string().contains(wrong));
    assert!(!format!("{failure:?}").contains(wrong));
}

#[tokio::test]
async fn a_keyless_server_gets_no_authorization_header() {
    let fake = FakeProvider::start(Flavor::OpenAi).await.accepting_any_key();
    let p: Arc<dyn Provider> = Arc::new(OpenAiProvider::new("ollama", &fake.base_url()));
    let answer = p.send(&request("llama3", "Hi"), None, None).await.unwrap();
    assert_eq!(answer.provider, "ollama");
    assert!(!fake.requests()[0].headers.contains_key("authorization"));
}

#[tokio::test]
async fn an_unreachable_provider_is_a_connect_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let p = AnthropicProvider::new(&format!("http://127.0.0.1:{port}"));
    let e = p.send(&request("claude-haiku-4-5", "Hi"), KEY, None).await.unwrap_err();
    assert_eq!(e.kind, ProviderErrorKind::Connect);
    assert!(e.retryable());
    assert!(
        e.message.starts_with(&format!(
            "anthropic could not be reached at http://127.0.0.1:{port}/v1/messages: "
        )),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn retries_honour_retry_after_ms() {
    let fake = FakeProvider::start(Flavor::Anthropic).await;
    fake.push_all([
        Reply::rate_limited(50),
        Reply::rate_limited(50),
        Reply::ok("Finally.", CACHED),
    ]);
    // A backoff this long would make the test crawl: finishing quickly shows the provider's
    // 50 ms was used instead.
    let policy = RetryPolicy {
        first_backoff: Duration::from_secs(30),
        max_backoff: Duration::from_secs(30),
        ..fast()
    };
    let r = Resilient::new(provider(&fake), policy, BreakerConfig::default());
    let started = Instant::now();
    let answer = r.send(&request("claude-haiku-4-5", "Hi"), KEY, None).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(answer.text, "Finally.");
    assert_eq!(fake.request_count(), 3);
    let status = r.breaker();
    assert_eq!((status.total_failures, status.total_successes), (2, 1));
    assert_eq!(status.consecutive_failures, 0);
}

#[tokio::test]
async fn retries_give_up_after_max_retries() {
    let fake = FakeProvider::start(Flavor::Anthropic).await;
    fake.push_all([
        Reply::overloaded(),
        Reply::overloaded(),
        Reply::overloaded(),
        Reply::ok("Too late.", CACHED),
    ]);
    let r = Resilient::new(provider(&fake), fast(), BreakerConfig::default());
    let failure = r.send(&request("claude-haiku-4-5", "Hi"), KEY, None).await.unwrap_err();
    assert_eq!(failure.attempts, 3);
    assert!(!failure.breaker_open);
    assert_eq!(failure.error.status, Some(529));
    assert_eq!(
        failure.to_string(),
        "anthropic answered 529 overloaded_error: Overloaded (after 3 attempts)"
    );
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn bad_requests_are_not_retried() {
    for (status, kind) in [
        (400, "invalid_request_error"),
        (404, "not_found_error"),
        (403, "permission_error"),
    ] {
        let fake = FakeProvider::start(Flavor::Anthropic).await;
        fake.push_all([Reply::status(status, kind, "No."), Reply::ok("Never sent.", CACHED)]);
        let r = Resilient::new(provider(&fake), fast(), BreakerConfig::default());
        let failure = r.send(&request("claude-haiku-4-5", "Hi"), KEY, None).await.unwrap_err();
        assert_eq!(failure.attempts, 1);
        assert_eq!(failure.to_string(), format!("anthropic answered {status} {kind}: No."));
        assert_eq!(fake.request_count(), 1);
        // The provider answered: not an outage.
        assert_eq!(r.breaker().total_failures, 0);
    }
}

#[tokio::test]
async fn each_attempt_is_bounded_by_the_call_timeout() {
    let fake = FakeProvider::start(Flavor::Anthropic).await;
    fake.push(Reply::delayed(Duration::from_secs(5), Reply::ok("Slow.", CACHED)));
    let policy = RetryPolicy {
        max_retries: 0,
        call_timeout: Duration::from_millis(200),
        ..fast()
    };
    let r = Resilient::new(provider(&fake), policy, BreakerConfig::default());
    let started = Instant::now();
    let failure = r.send(&request("claude-haiku-4-5", "Hi"), KEY, None).await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(failure.error.kind, ProviderErrorKind::Timeout);
    assert_eq!(failure.to_string(), "anthropic did not answer within 200 ms");

    // A timed-out attempt is retried like any outage.
    fake.push_all([
        Reply::delayed(Duration::from_secs(5), Reply::ok("Slow.", CACHED)),
        Reply::ok("Quick.", CACHED),
    ]);
    let policy = RetryPolicy {
        max_retries: 1,
        // Ample for the quick answer on a loaded machine.
        call_timeout: Duration::from_secs(2),
        ..fast()
    };
    let r = Resilient::new(provider(&fake), policy, BreakerConfig::default());
    let answer = r.send(&request("claude-haiku-4-5", "Hi"), KEY, None).await.unwrap();
    assert_eq!(answer.text, "Quick.");

    assert_eq!(RetryPolicy::default().call_timeout, Duration::from_secs(120));
}

#[tokio::test]
async fn a_stream_is_retried_only_before_any_text_was_sent() {
    let fake = FakeProvider::start(Flavor::Anthropic).await;
    let r = Resilient::new(provider(&fake), fast(), BreakerConfig::default());
    let req = request("claude-haiku-4-5", "Hi");

    // Failed before any text: retried, and the listener sees only the answer.
    fake.push_all([
        Reply::StreamError {
            error_type: "overloaded_error".into(),
            message: "Overloaded".into(),
        },
        Reply::ok("Second time lucky.", CACHED),
    ]);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let answer = r.send(&req, KEY, Some(&tx)).await.unwrap();
    drop(tx);
    let mut pieces = Vec::new();
    while let Some(p) = rx.recv().await {
        pieces.push(p);
    }
    assert_eq!(pieces.concat(), "Second time lucky.");
    assert_eq!(answer.text, "Second time lucky.");
    assert_eq!(fake.request_count(), 2);

    // Failed after text went out: not retried, since the listener cannot take the text back.
    fake.push_all([
        Reply::Truncated { text: "Half an".into() },
        Reply::ok("Never sent.", CACHED),
    ]);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let failure = r.send(&req, KEY, Some(&tx)).await.unwrap_err();
    drop(tx);
    let mut pieces = Vec::new();
    while let Some(p) = rx.recv().await {
        pieces.push(p);
    }
    assert_eq!(pieces.concat(), "Half an");
    assert_eq!(failure.attempts, 1);
    assert_eq!(failure.error.kind, ProviderErrorKind::Connect);
    assert_eq!(fake.request_count(), 3);
}

/// Long enough that a loaded machine does not reach the probe before the test checks the open
/// state; short enough to wait out.
const OPEN_FOR: Duration = Duration::from_millis(1000);
const PAST_OPEN_FOR: Duration = Duration::from_millis(1200);

fn breaker_config() -> BreakerConfig {
    BreakerConfig {
        failures_to_open: 5,
        open_for: OPEN_FOR,
    }
}

fn single_attempt() -> RetryPolicy {
    RetryPolicy {
        max_retries: 0,
        ..fast()
    }
}

async fn fail_n(r: &Resilient, fake: &FakeProvider, n: usize) -> Vec<CallFailure> {
    let mut failures = Vec::new();
    for _ in 0..n {
        fake.push(Reply::overloaded());
        failures.push(r.send(&request("claude-haiku-4-5", "Hi"), KEY, None).await.unwrap_err());
    }
    failures
}

#[tokio::test]
async fn the_breaker_opens_refuses_probes_once_and_closes() {
    let fake = FakeProvider::start(Flavor::Anthropic).await;
    let r = Arc::new(Resilient::new(provider(&fake), single_attempt(), breaker_config()));
    let req = request("claude-haiku-4-5", "Hi");

    let failures = fail_n(&r, &fake, 5).await;
    assert!(failures[..4].iter().all(|f| !f.breaker_open && f.attempts == 1));
    assert!(failures[4].breaker_open, "the fifth failure opens it");
    assert_eq!(
        failures[4].to_string(),
        "anthropic answered 529 overloaded_error: Overloaded; its circuit breaker is now open"
    );
    let status = r.breaker();
    assert_eq!(status.provider, "anthropic");
    assert_eq!(status.state, "open");
    assert_eq!(status.consecutive_failures, 5);
    assert_eq!(status.total_failures, 5);
    assert!(status.opened_at_unix_ms.is_some());
    assert!(status.retry_in_ms.is_some_and(|ms| ms <= 1000));
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["state"], "open");

    // Open: refused without calling the provider.
    let refused = r.send(&req, KEY, None).await.unwrap_err();
    assert!(refused.breaker_open);
    assert_eq!(refused.attempts, 0);
    assert_eq!(refused.error.kind, ProviderErrorKind::Unavailable);
    assert!(!refused.error.retryable());
    assert!(
        refused.to_string().starts_with(
            "anthropic is unavailable: its circuit breaker opened after 5 failed calls and will be probed again in "
        ),
        "{refused}"
    );
    assert!(refused.error.retry_after.is_some());
    assert_eq!(fake.request_count(), 5);

    // After open_for: one probe goes through; others are refused while it is in flight.
    tokio::time::sleep(PAST_OPEN_FOR).await;
    assert_eq!(r.breaker().state, "half-open");
    fake.push(Reply::delayed(
        Duration::from_millis(1000),
        Reply::ok("I am back.", CACHED),
    ));
    let probe = {
        let (r, req) = (r.clone(), req.clone());
        tokio::spawn(async move { r.send(&req, KEY, None).await })
    };
    while fake.request_count() < 6 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let refused = r.send(&req, KEY, None).await.unwrap_err();
    assert_eq!(refused.attempts, 0);
    assert_eq!(
        refused.to_string(),
        "anthropic is unavailable: its circuit breaker opened after 5 failed calls and a probe call is testing it now"
    );
    assert_eq!(probe.await.unwrap().unwrap().text, "I am back.");
    let status = r.breaker();
    assert_eq!(status.state, "closed");
    assert_eq!(status.consecutive_failures, 0);
    assert_eq!(status.opened_at_unix_ms, None);
    assert_eq!((status.total_failures, status.total_successes), (5, 1));
    assert_eq!(fake.request_count(), 6);
    r.send(&req, KEY, None).await.unwrap();
}

#[tokio::test]
async fn a_failed_probe_opens_the_breaker_again() {
    let fake = FakeProvider::start(Flavor::Anthropic).await;
    let r = Resilient::new(provider(&fake), single_attempt(), breaker_config());
    fail_n(&r, &fake, 5).await;
    tokio::time::sleep(PAST_OPEN_FOR).await;
    let probe = fail_n(&r, &fake, 1).await.remove(0);
    assert_eq!(probe.attempts, 1);
    assert!(probe.breaker_open);
    assert_eq!(r.breaker().state, "open");
    let refused = r.send(&request("claude-haiku-4-5", "Hi"), KEY, None).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .starts_with("anthropic is unavailable: its circuit breaker opened after 6 failed calls"),
        "{refused}"
    );
    assert_eq!(fake.request_count(), 6);
    tokio::time::sleep(PAST_OPEN_FOR).await;
    r.send(&request("claude-haiku-4-5", "Hi"), KEY, None).await.unwrap();
    assert_eq!(r.breaker().state, "closed");
}

#[tokio::test]
async fn only_outages_open_the_breaker() {
    let fake = FakeProvider::start(Flavor::Anthropic).await;
    let r = Resilient::new(provider(&fake), single_attempt(), breaker_config());
    fail_n(&r, &fake, 4).await;
    // A 400 proves the provider is up; a malformed answer is not an outage either.
    fake.push(Reply::status(400, "invalid_request_error", "bad"));
    r.send(&request("claude-haiku-4-5", "Hi"), KEY, None).await.unwrap_err();
    fail_n(&r, &fake, 4).await;
    fake.push(Reply::Malformed("{}".into()));
    r.send(&request("claude-haiku-4-5", "Hi"), KEY, None).await.unwrap_err();
    let status = r.breaker();
    assert_eq!(status.state, "closed");
    assert_eq!(status.total_failures, 8);
}

#[tokio::test]
async fn retries_stop_when_the_breaker_opens() {
    let fake = FakeProvider::start(Flavor::Anthropic).await;
    let config = BreakerConfig {
        failures_to_open: 2,
        open_for: Duration::from_secs(30),
    };
    let r = Resilient::new(provider(&fake), fast(), config);
    fake.push_all([
        Reply::overloaded(),
        Reply::overloaded(),
        Reply::ok("Never sent.", CACHED),
    ]);
    let failure = r.send(&request("claude-haiku-4-5", "Hi"), KEY, None).await.unwrap_err();
    assert_eq!(failure.attempts, 2);
    assert!(failure.breaker_open);
    assert_eq!(
        failure.to_string(),
        "anthropic answered 529 overloaded_error: Overloaded (after 2 attempts); its circuit breaker is now open"
    );
    assert_eq!(fake.request_count(), 2);
}

/// Many concurrent calls, half streamed: what the gateway would record adds up to exactly what
/// the provider reported, with cached tokens neither lost nor counted twice.
#[tokio::test]
async fn concurrent_calls_add_up_to_what_the_provider_reported() {
    for flavor in [Flavor::Anthropic, Flavor::OpenAi] {
        let fake = FakeProvider::start(flavor).await;
        let r = Arc::new(Resilient::new(provider(&fake), fast(), BreakerConfig::default()));
        for i in 0..50u64 {
            fake.push(Reply::ok(
                "Cached answer.",
                FakeUsage {
                    input: 10 + i,
                    output: 5,
                    cache_read: 100 * i,
                    cache_write: i,
                },
            ));
        }
        let mut calls = Vec::new();
        for i in 0..200 {
            let r = r.clone();
            let req = request(model(flavor), &format!("Question number {i} about the sale"));
            calls.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
                    r.send(&req, KEY, Some(&tx)).await
                } else {
                    r.send(&req, KEY, None).await
                }
            }));
        }
        let mut recorded = Usage::default();
        for call in calls {
            let answer = call.await.unwrap().unwrap();
            assert!(!answer.usage_estimated);
            recorded.add(&answer.usage);
        }
        let mut reported = Usage::default();
        for u in fake.usage_log() {
            reported.add(&match u {
                ReportedUsage::Anthropic {
                    input_tokens,
                    output_tokens,
                    cache_creation_input_tokens,
                    cache_read_input_tokens,
                } => Usage {
                    input_tokens,
                    output_tokens,
                    cache_read_tokens: cache_read_input_tokens,
                    cache_write_tokens: cache_creation_input_tokens,
                },
                ReportedUsage::OpenAi {
                    prompt_tokens,
                    completion_tokens,
                    cached_tokens,
                } => Usage {
                    input_tokens: prompt_tokens - cached_tokens,
                    output_tokens: completion_tokens,
                    cache_read_tokens: cached_tokens,
                    cache_write_tokens: 0,
                },
            });
        }
        assert_eq!(fake.usage_log().len(), 200, "{flavor:?}");
        assert_eq!(recorded, reported, "{flavor:?}");
        assert_eq!(fake.request_count(), 200);
        assert_eq!(r.breaker().total_successes, 200);
    }
}

#[tokio::test]
async fn an_abandoned_probe_frees_the_slot_for_the_next_call() {
    let fake = FakeProvider::start(Flavor::Anthropic).await;
    let r = Arc::new(Resilient::new(provider(&fake), single_attempt(), breaker_config()));
    let req = request("claude-haiku-4-5", "Hi");
    fail_n(&r, &fake, 5).await;
    tokio::time::sleep(PAST_OPEN_FOR).await;
    fake.push(Reply::delayed(Duration::from_secs(30), Reply::ok("Too slow.", CACHED)));
    let probe = {
        let (r, req) = (r.clone(), req.clone());
        tokio::spawn(async move { r.send(&req, KEY, None).await })
    };
    while fake.request_count() < 6 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The caller gives up on the probe (its run was cancelled): the next call probes instead of
    // the breaker waiting for an answer nobody will record.
    probe.abort();
    let _ = probe.await;
    let answer = r.send(&req, KEY, None).await.unwrap();
    assert!(answer.text.starts_with("Fake answer from claude-haiku-4-5"));
    assert_eq!(r.breaker().state, "closed");
}

/// The fakes stand for the real APIs in every crate's tests: they must refuse what the real ones
/// refuse, with the same bodies.
#[tokio::test]
async fn the_fakes_validate_like_the_real_apis() {
    let client = reqwest::Client::new();
    let post = |url: String, body: serde_json::Value, headers: Vec<(&'static str, String)>| {
        let mut req = client.post(url).json(&body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move {
            let response = req.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };

    let fake = FakeProvider::start(Flavor::Anthropic).await;
    let url = format!("{}/v1/messages", fake.base_url());
    let key = ("x-api-key", DEFAULT_KEY.to_string());
    let version = ("anthropic-version", "2023-06-01".to_string());
    let ok_body =
        json!({"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, body) = post(url.clone(), ok_body.clone(), vec![key.clone()]).await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "anthropic-version: header is required"}})
    );
    let (status, body) = post(
        url.clone(),
        json!({"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "system", "content": "Be brief."}]}),
        vec![key.clone(), version.clone()],
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains(r#"Unexpected role \"system\""#), "{body}");
    let (status, _) = post(
        url.clone(),
        json!({"model": "claude-haiku-4-5", "messages": []}),
        vec![key.clone(), version.clone()],
    )
    .await;
    assert_eq!(status, 400);
    let (status, body) = post(format!("{}/v1/complete", fake.base_url()), ok_body.clone(), vec![]).await;
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        json!({"type": "error", "error": {"type": "not_found_error", "message": "Not Found"}})
    );
    let (status, body) = post(url.clone(), ok_body, vec![key, version]).await;
    assert_eq!(status, 200);
    let message: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["usage"]["output_tokens"], 10, "min(max_tokens, 20)");

    let fake = FakeProvider::start(Flavor::OpenAi).await.with_key("sk-other");
    let url = format!("{}/v1/chat/completions", fake.base_url());
    let bearer = ("authorization", "Bearer sk-other".to_string());
    let (status, body) = post(url.clone(), json!({"model": "gpt-4o-mini"}), vec![bearer.clone()]).await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"]["code"],
        "missing_required_parameter"
    );
    let (status, body) = post(
        url.clone(),
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}),
        vec![("authorization", format!("Bearer {DEFAULT_KEY}"))],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"]["code"],
        "invalid_api_key"
    );
    // A stream reports usage only when asked to.
    let (status, body) = post(
        url.clone(),
        json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "Hi there"}]}),
        vec![bearer.clone()],
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.ends_with("data: [DONE]\n\n"));
    assert!(!body.contains("\"usage\""), "{body}");
    let (_, body) = post(
        url,
        json!({"model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "Hi there"}]}),
        vec![bearer],
    )
    .await;
    assert!(
        body.contains(r#""choices":[]"#) && body.contains(r#""prompt_tokens""#),
        "{body}"
    );
    assert_eq!(fake.usage_log().len(), 1);
}

#[tokio::test]
async fn a_stream_is_bounded_by_its_silences_not_its_length() {
    let fake = FakeProvider::start(Flavor::OpenAi).await;
    let policy = RetryPolicy {
        max_retries: 0,
        call_timeout: Duration::from_millis(600),
        ..fast()
    };
    let r = Resilient::new(provider(&fake), policy, BreakerConfig::default());
    let req = request("gpt-4o-mini", "Hi");
    let paced = |gap_ms: u64| Reply::Paced {
        text: "one two three four".into(),
        usage: CACHED,
        gap: Duration::from_millis(gap_ms),
    };

    // Three 200 ms gaps: longer than the timeout in total, never silent for that long.
    fake.push(paced(200));
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let started = Instant::now();
    let answer = r.send(&req, KEY, Some(&tx)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(answer.text, "one two three four");

    // The same answer unstreamed is bounded as a whole.
    fake.push(paced(200));
    let failure = r.send(&req, KEY, None).await.unwrap_err();
    assert_eq!(failure.to_string(), "openai did not answer within 600 ms");

    // Silent before the first piece: a timeout like any other.
    fake.push(Reply::delayed(Duration::from_secs(5), paced(0)));
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let failure = r.send(&req, KEY, Some(&tx)).await.unwrap_err();
    assert_eq!(failure.to_string(), "openai did not answer within 600 ms");

    // Silent after text went out: a stall, not retried even with retries left.
    let policy = RetryPolicy {
        max_retries: 2,
        ..policy
    };
    let r = Resilient::new(provider(&fake), policy, BreakerConfig::default());
    fake.push_all([paced(5_000), Reply::ok("Never sent.", CACHED)]);
    let before = fake.request_count();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let failure = r.send(&req, KEY, Some(&tx)).await.unwrap_err();
    assert_eq!(rx.recv().await.as_deref(), Some("one "));
    assert_eq!(failure.to_string(), "openai stopped sending its answer for 600 ms");
    assert_eq!(failure.error.kind, ProviderErrorKind::Timeout);
    assert_eq!(failure.attempts, 1);
    assert_eq!(fake.request_count(), before + 1);
}
