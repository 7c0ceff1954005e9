//! The metered gateway against fake Anthropic and OpenAI servers on 127.0.0.1 (speaking the real
//! wire formats), on SQLite and PostgreSQL: the ledger matches what the providers reported, call
//! by call; budgets hold under 200 concurrent calls; failures bill nothing and leave no
//! reservation; fallbacks, keys and price book versions.

use std::sync::Arc;
use std::time::Duration;

use mc_ai::prices::PriceBook;
use mc_ai::{AiError, AiGateway, CallContext, ChatRequest, Message, Role, Usage};
use mc_gateway::{Endpoint, Gateway, GatewayConfig, ProviderKind};
use mc_store::{Principal, Store};
use mc_testkit::fake_ai::{DEFAULT_KEY, FakeProvider, FakeUsage, Flavor, Reply, ReportedUsage};
use mc_testkit::on_both;

const TENANT: &str = r#"tenant: acme
agents:
  - name: writer
    role: Content writer
    plugin: content-writer
    model: claude-haiku-4-5
    fallbacks: [gpt-4o-mini]
  - name: analyst
    role: Analyst
    plugin: analytics
    model: gpt-4o-mini
"#;

fn endpoint(name: &str, kind: ProviderKind, fake: &FakeProvider, key: Option<&str>) -> Endpoint {
    Endpoint {
        name: name.into(),
        kind,
        base_url: fake.base_url(),
        api_key: key.map(str::to_string),
        key_required: true,
        key_hint: format!("{}_API_KEY", name.to_uppercase()),
    }
}

struct Setup {
    anthropic: FakeProvider,
    openai: FakeProvider,
    gateway: Arc<Gateway>,
}

async fn setup(store: &Store, tenant_file: &str, tweak: impl FnOnce(&mut GatewayConfig)) -> Setup {
    let validated = mc_config::parse(tenant_file, &mc_config::Known::default()).unwrap();
    store.apply(&validated).await.unwrap();
    let anthropic = FakeProvider::start(Flavor::Anthropic).await;
    let openai = FakeProvider::start(Flavor::OpenAi).await;
    let mut config = GatewayConfig {
        endpoints: vec![
            endpoint("anthropic", ProviderKind::Anthropic, &anthropic, Some(DEFAULT_KEY)),
            endpoint("openai", ProviderKind::OpenAi, &openai, Some(DEFAULT_KEY)),
        ],
        retry: mc_ai::RetryPolicy {
            max_retries: 1,
            first_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            call_timeout: Duration::from_secs(10),
        },
        ..Default::default()
    };
    tweak(&mut config);
    let gateway = Arc::new(Gateway::open(store.clone(), config).await.unwrap());
    Setup {
        anthropic,
        openai,
        gateway,
    }
}

fn ctx(agent: &str, run: &str) -> CallContext {
    CallContext {
        tenant: "acme".into(),
        agent: agent.into(),
        automation: Some("weekly-post".into()),
        run_id: run.into(),
        root_run_id: run.into(),
        attempt: 1,
        call_seq: None,
    }
}

fn request(model: &str, text: &str, max_tokens: u32) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        messages: vec![
            Message {
                role: Role::System,
                content: "You write short posts.".into(),
            },
            Message {
                role: Role::User,
                content: text.into(),
            },
        ],
        max_tokens,
        temperature: None,
        fallbacks: Vec::new(),
    }
}

fn month() -> String {
    mc_store::month_and_day(mc_store::now_micros()).0
}

/// The usage a fake reported, normalised the gateway's way (input without cached tokens).
fn normalised(r: &ReportedUsage) -> Usage {
    match *r {
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
    }
}

#[tokio::test]
async fn the_ledger_matches_what_the_providers_reported_call_by_call() {
    on_both(|store| async move {
        let s = setup(&store, TENANT, |_| {}).await;
        let u = |input, output, cache_read, cache_write| FakeUsage {
            input,
            output,
            cache_read,
            cache_write,
        };
        s.anthropic.push_all([
            Reply::ok("First draft.", u(1_200, 300, 0, 4_000)),
            Reply::ok("Second draft, from the cache.", u(150, 280, 4_000, 0)),
            Reply::ok("Streamed draft with cache.", u(90, 410, 4_000, 120)),
        ]);
        s.openai.push_all([
            Reply::ok("KPIs are up.", u(2_000, 64, 0, 0)),
            Reply::ok("KPIs, cached prompt.", u(500, 70, 1_536, 0)),
            Reply::ok("Streamed KPIs, cached prompt.", u(300, 90, 2_048, 0)),
        ]);
        let g = &s.gateway;
        let mut calls = Vec::new();
        for (agent, model, stream) in [
            ("writer", "claude-haiku-4-5", false),
            ("writer", "claude-haiku-4-5", false),
            ("writer", "claude-haiku-4-5", true),
            ("analyst", "gpt-4o-mini", false),
            ("analyst", "gpt-4o-mini", false),
            ("analyst", "gpt-4o-mini", true),
        ] {
            let req = request(model, "Write about spring.", 500);
            let response = if stream {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let r = g.chat_stream(&ctx(agent, "1"), req, Some(&tx)).await.unwrap();
                drop(tx);
                let mut streamed = String::new();
                while let Some(piece) = rx.recv().await {
                    streamed.push_str(&piece);
                }
                assert_eq!(streamed, r.text, "the stream carried the whole answer");
                assert!(
                    s.anthropic
                        .requests()
                        .iter()
                        .chain(s.openai.requests().iter())
                        .any(|q| q.body["stream"] == true)
                );
                r
            } else {
                g.chat(&ctx(agent, "1"), req).await.unwrap()
            };
            calls.push((model, response));
        }
        let reported: Vec<Usage> = s
            .anthropic
            .usage_log()
            .iter()
            .chain(s.openai.usage_log().iter())
            .map(normalised)
            .collect();
        assert_eq!(reported.len(), 6);
        let book = PriceBook::shipped();
        let rows = store.tenant("acme").ledger_of_month(&month()).await.unwrap();
        assert_eq!(rows.len(), 6, "one row per call");
        for ((row, (model, response)), usage) in rows.iter().zip(&calls).zip(&reported) {
            assert_eq!(row.kind, "ai");
            assert_eq!(row.model.as_deref(), Some(*model));
            assert_eq!(response.usage, *usage, "the plugin sees the normalised usage");
            assert_eq!(
                (
                    row.input_tokens,
                    row.output_tokens,
                    row.cache_read_tokens,
                    row.cache_write_tokens
                ),
                (
                    usage.input_tokens,
                    usage.output_tokens,
                    usage.cache_read_tokens,
                    usage.cache_write_tokens
                ),
                "{model}: the ledger holds exactly what the provider reported"
            );
            assert_eq!(row.cost, book.model(model).unwrap().cost(usage));
            assert_eq!(row.price_version, 1);
            assert!(!row.usage_estimated);
            assert_eq!(
                (row.run_id.as_str(), row.attempt, row.automation.as_deref()),
                ("1", 1, Some("weekly-post"))
            );
        }
        // Spot checks by hand. Haiku: 1,200 in ($1/M) + 300 out ($5/M) + 4,000 cache writes
        // ($1.25/M) = 1,200 + 1,500 + 5,000 µ$. Then 150 in + 280 out + 4,000 cache reads ($0.10/M).
        assert_eq!(rows[0].cost, 7_700);
        assert_eq!(rows[1].cost, 150 + 1_400 + 400);
        // gpt-4o-mini: prompt 2,036 of which 1,536 cached: 500 × 0.15 + 70 × 0.6 + 1,536 × 0.075 µ$.
        assert_eq!(rows[4].cost, 75 + 42 + 115);
        let (by_model, total) = store
            .tenant("acme")
            .usage(&month(), mc_store::UsageBy::Model)
            .await
            .unwrap();
        assert_eq!(total.cost, rows.iter().map(|r| r.cost).sum::<u64>());
        assert_eq!(
            total.cache_read_tokens,
            reported.iter().map(|u| u.cache_read_tokens).sum::<u64>()
        );
        assert_eq!(
            by_model.iter().map(|l| l.key.as_str()).collect::<Vec<_>>(),
            ["claude-haiku-4-5", "gpt-4o-mini"]
        );
        let status = store.tenant("acme").budget_status(&month()).await.unwrap().unwrap();
        assert_eq!((status.spent, status.reserved), (total.cost, 0));
        assert_eq!(store.open_reservations().await.unwrap(), 0);
    })
    .await;
}

/// 96 four-letter words are 96 tokens; with the system message and the per-message allowance the
/// gateway's input estimate is exactly 100 tokens.
fn hundred_token_request(max_tokens: u32) -> ChatRequest {
    let mut r = request("gpt-4o-mini", &"abcd ".repeat(96), max_tokens);
    r.messages.remove(0);
    r
}

#[tokio::test]
async fn two_hundred_concurrent_calls_against_a_budget_for_twenty() {
    on_both(|store| async move {
        // gpt-4o-mini: 100 input tokens at $0.15/M + 1,000 output at $0.60/M = 615 µ$, and the
        // fake reports exactly that usage, so each call's reservation is its real cost and the
        // number of calls that fit does not depend on timing: exactly 20.
        let file = format!("{TENANT}budget: {{ monthly: \"0.0123\" }}\n");
        let s = setup(&store, &file, |_| {}).await;
        s.openai.push_all((0..200).map(|_| {
            Reply::delayed(
                Duration::from_millis(20),
                Reply::ok(
                    "ok",
                    FakeUsage {
                        input: 100,
                        output: 1_000,
                        ..Default::default()
                    },
                ),
            )
        }));
        assert_eq!(mc_ai::count_tokens(&"abcd ".repeat(96)) + 4, 100);
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..200 {
            let g = s.gateway.clone();
            calls.spawn(async move {
                g.chat(&ctx("analyst", &format!("run-{i}")), hundred_token_request(1_000))
                    .await
            });
        }
        let (mut ok, mut refused) = (0, 0);
        while let Some(r) = calls.join_next().await {
            match r.unwrap() {
                Ok(_) => ok += 1,
                Err(AiError::BudgetExceeded(m)) => {
                    assert!(m.starts_with("tenant `acme`'s budget for "), "{m}");
                    assert!(m.contains("is $0.0123: "), "{m}");
                    assert!(m.ends_with("and this call could cost up to $0.000615"), "{m}");
                    refused += 1
                }
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!((ok, refused), (20, 180));
        assert_eq!(s.openai.request_count(), 20, "refused calls never reach the provider");
        let status = store.tenant("acme").budget_status(&month()).await.unwrap().unwrap();
        assert_eq!(
            (status.spent, status.reserved),
            (12_300, 0),
            "spend is exactly the budget"
        );
        assert_eq!(
            store.open_reservations().await.unwrap(),
            0,
            "no reservation is left behind"
        );
        let rows = store.tenant("acme").ledger_of_month(&month()).await.unwrap();
        assert_eq!((rows.len(), rows.iter().map(|r| r.cost).sum::<u64>()), (20, 12_300));
        let alerts: Vec<u64> = status.alerts.iter().map(|a| a.threshold).collect();
        assert_eq!(alerts, [50, 80, 100], "each threshold recorded once");
    })
    .await;
}

#[tokio::test]
async fn agent_and_run_budgets_refuse_with_their_own_words() {
    on_both(|store| async move {
        let file = TENANT.replace(
            "    model: gpt-4o-mini\n",
            "    model: gpt-4o-mini\n    budget: { monthly: \"0.00123\" }\n",
        ) + "budget: { per_run: \"0.001845\" }\n";
        let s = setup(&store, &file, |_| {}).await;
        let usage = FakeUsage {
            input: 100,
            output: 1_000,
            ..Default::default()
        };
        s.openai.push_all((0..10).map(|_| Reply::ok("ok", usage)));
        let g = &s.gateway;
        // The agent's budget holds two calls of 615 µ$.
        for run in ["a", "a"] {
            g.chat(&ctx("analyst", run), hundred_token_request(1_000)).await.unwrap();
        }
        let e = g.chat(&ctx("analyst", "b"), hundred_token_request(1_000)).await.unwrap_err();
        assert_eq!(
            e,
            AiError::BudgetExceeded(format!(
                "agent `analyst`'s budget for {} is $0.00123: $0.00123 is spent and $0.00 is held by calls in flight, and this call could cost up to $0.000615",
                month()
            ))
        );
        // The writer has no budget of its own; its run `c` may spend three calls' worth.
        let writer_call = || {
            let mut r = hundred_token_request(1_000);
            r.model = "gpt-4o-mini".into();
            r
        };
        for _ in 0..3 {
            g.chat(&ctx("writer", "c"), writer_call()).await.unwrap();
        }
        let e = g.chat(&ctx("writer", "c"), writer_call()).await.unwrap_err();
        assert_eq!(
            e,
            AiError::BudgetExceeded(
                "the budget per run of tenant `acme` (run c) is $0.001845: $0.001845 is spent and $0.00 is held by calls in flight, and this call could cost up to $0.000615".into()
            )
        );
        g.chat(&ctx("writer", "d"), writer_call()).await.unwrap();
        // A call whose worst case alone passes the run's budget is refused on a fresh run.
        let mut too_big = writer_call();
        too_big.max_tokens = 4_000;
        let e = g.chat(&ctx("writer", "e"), too_big).await.unwrap_err();
        assert_eq!(
            e,
            AiError::BudgetExceeded(
                "the budget per run of tenant `acme` (run e) is $0.001845: $0.00 is spent and $0.00 is held by calls in flight, and this call could cost up to $0.002415".into()
            )
        );
        assert_eq!(store.open_reservations().await.unwrap(), 0);
    })
    .await;
}

#[tokio::test]
async fn failed_calls_bill_nothing_and_say_what_to_fix() {
    on_both(|store| async move {
        let s = setup(&store, TENANT, |c| c.endpoints[0].api_key = None).await;
        let g = &s.gateway;
        let analyst = |text: &str| request("gpt-4o-mini", text, 100);

        // A model the price book does not price is refused, not recorded at zero.
        let e = g.chat(&ctx("analyst", "1"), request("gpt-9", "hi", 100)).await.unwrap_err();
        assert_eq!(
            e,
            AiError::InvalidRequest(
                "model `gpt-9` has no price in price book v1, so the call is refused rather than recorded at zero".into()
            )
        );
        // No key anywhere: the error names where to put one.
        let mut no_key = request("claude-haiku-4-5", "hi", 100);
        no_key.fallbacks.clear();
        let e = g.chat(&ctx("writer", "1"), no_key).await.unwrap_err();
        assert_eq!(
            e,
            AiError::Other(
                "no API key for anthropic: set ANTHROPIC_API_KEY on the server, or store tenant `acme`'s own key as the secret `anthropic-api-key`".into()
            )
        );
        // The provider's own error body, and a 400 is the request's fault.
        s.openai.push(Reply::status(400, "invalid_request_error", "max_tokens is too large"));
        let e = g.chat(&ctx("analyst", "1"), analyst("hi")).await.unwrap_err();
        assert_eq!(e, AiError::InvalidRequest("openai answered 400 invalid_request_error: max_tokens is too large".into()));
        // A body that is not a chat completion.
        s.openai.push(Reply::Malformed("{\"hello\": 1}".into()));
        let e = g.chat(&ctx("analyst", "1"), analyst("hi")).await.unwrap_err();
        let AiError::Other(m) = &e else { panic!("{e:?}") };
        assert!(m.starts_with("openai answered 200 with a body that is not a chat completion"), "{m}");
        // Overloaded after the retries.
        s.openai.push_all([Reply::status(503, "server_error", "try later"), Reply::status(503, "server_error", "try later")]);
        let e = g.chat(&ctx("analyst", "1"), analyst("hi")).await.unwrap_err();
        assert_eq!(e, AiError::Unavailable("openai answered 503 server_error: try later (after 2 attempts)".into()));
        assert!(store.tenant("acme").ledger_of_month(&month()).await.unwrap().is_empty(), "failures bill nothing");

        // Usage missing from an answer: recorded as an estimate and flagged.
        s.openai.push(Reply::NoUsage { text: "four words of answer".into() });
        let r = g.chat(&ctx("analyst", "2"), analyst("Summarise the week.")).await.unwrap();
        assert!(r.usage_estimated);
        let rows = store.tenant("acme").ledger_of_month(&month()).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].usage_estimated);
        assert_eq!(rows[0].input_tokens, r.usage.input_tokens);
        assert!(rows[0].cost > 0);
        assert_eq!(store.open_reservations().await.unwrap(), 0);
        let status = store.tenant("acme").budget_status(&month()).await.unwrap().unwrap();
        assert_eq!((status.spent, status.reserved), (rows[0].cost, 0));
    })
    .await;
}

#[tokio::test]
async fn a_tenant_key_is_used_and_a_wrong_one_is_named_never_shown() {
    on_both(|store| async move {
        let sealer = mc_store::Sealer::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        let s = setup(&store, TENANT, |c| c.sealer = Some(sealer.clone())).await;
        let scope = store.tenant("acme");
        scope
            .put_secret(
                &Principal::local(),
                &sealer,
                "anthropic-api-key",
                "sk-tenant-wrong-0123456789",
            )
            .await
            .unwrap();
        let mut call = request("claude-haiku-4-5", "hi", 100);
        call.fallbacks.clear();
        let e = s.gateway.chat(&ctx("writer", "1"), call.clone()).await.unwrap_err();
        let AiError::Other(m) = &e else { panic!("{e:?}") };
        assert!(m.starts_with("anthropic answered 401 authentication_error: "), "{m}");
        assert!(
            m.ends_with("(the key used is tenant `acme`'s secret `anthropic-api-key`: set it again)"),
            "{m}"
        );
        assert!(!m.contains("sk-tenant-wrong"), "the key's value never appears: {m}");
        let sent = s.anthropic.requests();
        assert_eq!(
            sent[0].headers.get("x-api-key").map(String::as_str),
            Some("sk-tenant-wrong-0123456789")
        );

        scope
            .put_secret(&Principal::local(), &sealer, "anthropic-api-key", DEFAULT_KEY)
            .await
            .unwrap();
        s.gateway.chat(&ctx("writer", "1"), call).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn an_open_breaker_falls_back_to_the_next_model_and_shows_it() {
    on_both(|store| async move {
        let s = setup(&store, TENANT, |c| {
            c.breaker = mc_ai::BreakerConfig {
                failures_to_open: 2,
                open_for: Duration::from_secs(60),
            }
        })
        .await;
        s.anthropic.push_all((0..2).map(|_| Reply::overloaded()));
        let mut call = request("claude-haiku-4-5", "hi", 100);
        call.fallbacks = vec!["gpt-4o-mini".into()];
        // Two 529s open anthropic's breaker; the call is answered by the fallback.
        let r = s.gateway.chat(&ctx("writer", "1"), call.clone()).await.unwrap();
        assert_eq!((r.provider.as_str(), r.model.as_str()), ("openai", "gpt-4o-mini"));
        let breakers = s.gateway.breakers();
        let anthropic = breakers.iter().find(|b| b.provider == "anthropic").unwrap();
        assert_eq!(anthropic.state, "open");
        // While open, anthropic is not even asked.
        let asked = s.anthropic.request_count();
        let r = s.gateway.chat(&ctx("writer", "2"), call).await.unwrap();
        assert_eq!(r.provider, "openai");
        assert_eq!(s.anthropic.request_count(), asked);
        let rows = store.tenant("acme").ledger_of_month(&month()).await.unwrap();
        assert_eq!(
            rows.iter().map(|r| r.provider.clone().unwrap()).collect::<Vec<_>>(),
            ["openai", "openai"],
            "only the calls that were answered are billed, to whoever answered"
        );
    })
    .await;
}

#[tokio::test]
async fn a_new_price_book_prices_new_calls_and_rows_keep_their_version() {
    on_both(|store| async move {
        let s = setup(&store, TENANT, |_| {}).await;
        let usage = FakeUsage {
            input: 1_000,
            output: 1_000,
            ..Default::default()
        };
        s.openai.push_all((0..2).map(|_| Reply::ok("ok", usage)));
        s.gateway
            .chat(&ctx("analyst", "1"), request("gpt-4o-mini", "hi", 100))
            .await
            .unwrap();
        let doubled = mc_ai::prices::SHIPPED.replace(
            "gpt-4o-mini:       { provider: openai, input: 0.15, output: 0.60, cache_read: 0.075 }",
            "gpt-4o-mini:       { provider: openai, input: 0.30, output: 1.20, cache_read: 0.15 }",
        );
        assert_ne!(doubled, mc_ai::prices::SHIPPED);
        let book = PriceBook::parse(&doubled).unwrap();
        let operator = Principal::local();
        assert_eq!(
            store
                .add_price_book(&operator, &doubled, book.fuel_per_billion)
                .await
                .unwrap(),
            (2, true)
        );
        assert_eq!(
            store
                .add_price_book(&operator, &doubled, book.fuel_per_billion)
                .await
                .unwrap(),
            (2, false),
            "the same book again is no new version"
        );
        s.gateway.reload_prices().await.unwrap();
        s.gateway
            .chat(&ctx("analyst", "2"), request("gpt-4o-mini", "hi", 100))
            .await
            .unwrap();
        let rows = store.tenant("acme").ledger_of_month(&month()).await.unwrap();
        assert_eq!(
            rows.iter().map(|r| (r.price_version, r.cost)).collect::<Vec<_>>(),
            [(1, 150 + 600), (2, 300 + 1_200)]
        );
    })
    .await;
}
