//! Integration tests of the plugin runtime against real components built from `plugins/` and
//! `tests/plugins/` (`make plugins` builds them). Outbound HTTP goes only to servers these tests
//! start on 127.0.0.1, granted explicitly as test hosts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mc_egress::AllowList;
use mc_runtime::{
    CacheOutcome, CancelToken, Grants, Limits, LoadError, MemoryKv, RunContext, RunFailure, RunOutcome, RunRequest,
    Runtime, RuntimeConfig, Services,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn plugin_path(name: &str) -> PathBuf {
    let p = target_dir().join("wasm32-wasip2/plugin").join(format!("{name}.wasm"));
    assert!(
        p.is_file(),
        "{} is missing: build the plugins first with `make plugins`",
        p.display()
    );
    p
}

/// One cache directory for the whole test run: each plugin is compiled once, and tests that start
/// at the same time exercise concurrent writers of one cache entry.
fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(target_dir().join("test-component-cache")),
        max_instances: 32,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn grants() -> Grants {
    Grants {
        models: vec!["offline".into()],
        kv_bucket: Some("tenant:acme".into()),
        ..Grants::default()
    }
}

fn request(input: Value, grants: Grants, limits: Limits) -> RunRequest {
    RunRequest {
        input: input.to_string(),
        context: RunContext {
            tenant: "acme".into(),
            agent: "tester".into(),
            automation: Some("nightly".into()),
            run_id: "run-1".into(),
            root_run_id: None,
            attempt: 2,
            trigger: "manual".into(),
        },
        grants: Arc::new(grants),
        limits,
        services: Services {
            ai: Arc::new(mc_ai::OfflineProvider),
            kv: Arc::new(MemoryKv::new()),
            delegator: None,
            registries: None,
            approvals: None,
        },
        cancel: None,
    }
}

async fn run(rt: &Runtime, plugin: &str, input: Value) -> RunOutcome {
    run_with(rt, plugin, request(input, grants(), Limits::default())).await
}

async fn run_with(rt: &Runtime, plugin: &str, req: RunRequest) -> RunOutcome {
    let p = rt.load_file(&plugin_path(plugin)).unwrap();
    rt.run(&p, req).await.unwrap()
}

fn output(o: &RunOutcome) -> Value {
    match &o.result {
        Ok(s) => serde_json::from_str(s).unwrap(),
        Err(e) => panic!("run failed: {e}\nstderr: {}", o.stderr),
    }
}

fn failure(o: &RunOutcome) -> &RunFailure {
    o.result.as_ref().expect_err("the run should have failed")
}

#[tokio::test]
async fn content_writer_drafts_and_reports_usage() {
    let rt = runtime();
    let o = run(
        &rt,
        "content_writer",
        json!({"brief": "Spring sale on garden tools", "voice": "playful"}),
    )
    .await;
    let out = output(&o);
    assert!(out["title"].as_str().unwrap().starts_with("Offline draft:"), "{out}");
    assert!(out["body"].as_str().unwrap().contains("not written by a real AI"));
    assert_eq!(out["model"], "offline");
    // The plugin's view of the tokens and the host's record agree with the offline provider.
    assert_eq!(o.usage.ai_calls, 1);
    assert_eq!(out["tokens"]["input"].as_u64().unwrap(), o.usage.tokens.input_tokens);
    assert_eq!(out["tokens"]["output"].as_u64().unwrap(), o.usage.tokens.output_tokens);
    assert!(o.usage.fuel_consumed > 0);
    assert!(o.usage.peak_memory_bytes >= 1 << 16);
    assert_eq!(o.logs.len(), 1);
    assert!(o.logs[0].message.contains("drafting a Blog for acme"));
}

#[tokio::test]
async fn every_marketing_plugin_runs_on_the_offline_provider() {
    let rt = runtime();
    let o = run(
        &rt,
        "social_media",
        json!({"topic": "Spring sale", "hashtags": ["garden"]}),
    )
    .await;
    for post in output(&o)["posts"].as_array().unwrap() {
        assert!(post["chars"].as_u64() <= post["limit"].as_u64(), "{post}");
    }
    let o = run(
        &rt,
        "email_manager",
        json!({"messages": [
            {"id": "1", "from": "ann@shop.com", "subject": "Checkout is down", "body": "urgent"},
            {"id": "2", "from": "bob@x.com", "subject": "lunch", "body": "friday"}
        ]}),
    )
    .await;
    let out = output(&o);
    assert_eq!(out["triaged"][0]["id"], "1");
    assert_eq!(out["triaged"][0]["category"], "urgent");
    assert!(out["triaged"][0]["draft"].is_string());
    assert!(out["triaged"][1].get("draft").is_none());
    assert_eq!(o.usage.ai_calls, 1);

    let o = run(
        &rt,
        "analytics",
        json!({"data": {"metrics": {"visits": [100, 104, 180], "signups": [10, 11, 12]}}}),
    )
    .await;
    let out = output(&o);
    assert_eq!(out["anomalies"], json!(["visits"]));

    // The director plans, then reports each delegation the host refused, naming why.
    let o = run(
        &rt,
        "director",
        json!({"campaign": "Spring sale", "channels": ["blog", "social"]}),
    )
    .await;
    let out = output(&o);
    let tasks = out["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[0]["status"], "not-delegated");
    assert_eq!(
        tasks[0]["error"],
        "agent `tester` may not delegate to `content-writer`: this run has no team to delegate to"
    );
    assert_eq!(o.denials.len(), 2);
}

#[tokio::test]
async fn plugin_input_errors_are_the_plugins_own() {
    let rt = runtime();
    let o = run(&rt, "content_writer", json!({"brief": ""})).await;
    assert_eq!(
        failure(&o),
        &RunFailure::Plugin {
            code: "invalid-input".into(),
            message: "the brief is empty: say what the piece is about".into(),
            retryable: false
        }
    );
    let o = run(&rt, "content_writer", json!({"title": "no brief"})).await;
    let RunFailure::Plugin { code, message, .. } = failure(&o) else {
        panic!("{o:?}")
    };
    assert_eq!(code, "invalid-input");
    assert!(
        message.starts_with("the input does not match what this plugin expects: unknown field `title`"),
        "{message}"
    );
}

fn hostile(mode: &str) -> Value {
    json!({ "mode": mode })
}

#[tokio::test]
async fn hostile_plugins_fail_alone_with_their_own_kind_and_the_host_carries_on() {
    let rt = runtime();
    let limits = Limits {
        fuel: 50_000_000,
        memory_bytes: 16 << 20,
        deadline: Duration::from_secs(20),
        ..Limits::default()
    };
    let go = |mode: &str, limits: Limits| run_with(&rt, "hostile", request(hostile(mode), grants(), limits));

    let o = go("loop", limits).await;
    assert_eq!(failure(&o), &RunFailure::OutOfFuel { limit: 50_000_000 });
    assert_eq!(o.usage.fuel_consumed, 50_000_000);

    // Memory runs out before fuel when the fuel budget is large.
    let o = go(
        "alloc",
        Limits {
            fuel: 10_000_000_000,
            ..limits
        },
    )
    .await;
    assert_eq!(failure(&o), &RunFailure::MemoryLimit { limit_mib: 16 });
    assert!(o.usage.peak_memory_bytes <= 16 << 20);

    let o = go("recurse", limits).await;
    let RunFailure::StackOverflow { backtrace } = failure(&o) else {
        panic!("{o:?}")
    };
    assert!(
        backtrace.contains("recurse"),
        "the guest backtrace names the function: {backtrace}"
    );

    let o = go("trap", limits).await;
    let RunFailure::Trap { message, backtrace } = failure(&o) else {
        panic!("{o:?}")
    };
    assert!(message.contains("unreachable"), "{message}");
    assert!(backtrace.contains("hostile"), "{backtrace}");

    let o = go("panic", limits).await;
    let RunFailure::Trap { message, .. } = failure(&o) else {
        panic!("{o:?}")
    };
    assert!(message.starts_with("the plugin panicked: panicked at"), "{message}");
    assert!(message.contains("the hostile plugin panics on purpose"), "{message}");

    let o = run_with(
        &rt,
        "hostile",
        request(json!({"mode": "huge-output", "bytes": 3 << 20}), grants(), limits),
    )
    .await;
    assert_eq!(
        failure(&o),
        &RunFailure::OutputTooLarge {
            size: (3 << 20) + 2,
            limit: 1 << 20
        }
    );

    let o = go("not-json", limits).await;
    assert!(matches!(failure(&o), RunFailure::InvalidOutput { .. }), "{o:?}");

    let o = go("fail", limits).await;
    assert_eq!(
        failure(&o),
        &RunFailure::Plugin {
            code: "upstream".into(),
            message: "the upstream service said no".into(),
            retryable: true
        }
    );

    let o = go("http", limits).await; // no URL: invalid input inside the plugin
    assert!(
        matches!(failure(&o), RunFailure::Plugin { code, .. } if code == "invalid-input"),
        "{o:?}"
    );

    // A loop with plenty of fuel is stopped by the wall-clock deadline (epoch interruption).
    let o = go(
        "loop",
        Limits {
            fuel: mc_runtime::MAX_FUEL,
            deadline: Duration::from_millis(300),
            ..limits
        },
    )
    .await;
    assert_eq!(failure(&o), &RunFailure::Deadline { limit_ms: 300 });
    assert!(o.usage.wall_time < Duration::from_secs(5));

    // A plugin waiting inside a host call is stopped by the deadline too.
    let o = go(
        "sleep",
        Limits {
            deadline: Duration::from_millis(200),
            ..limits
        },
    )
    .await;
    assert_eq!(failure(&o), &RunFailure::Deadline { limit_ms: 200 });

    // And after all that, a healthy run in the same runtime succeeds.
    let o = run(&rt, "noop", json!({"still": "alive"})).await;
    assert_eq!(output(&o), json!({"still": "alive"}));
}

/// Instance slots are reused (their touched pages stay resident between runs): a run still
/// starts from the plugin's pristine memory and never sees what an earlier run, of another
/// tenant, left in its statics or on its heap.
#[tokio::test]
async fn a_run_never_sees_the_memory_of_an_earlier_run() {
    let rt = runtime();
    let secrets = ["SECRET-acme-1", "SECRET-globex-2", "SECRET-initech-3"];
    for round in 0..3 {
        for (i, secret) in secrets.iter().enumerate() {
            let earlier = secrets[(i + secrets.len() - 1) % secrets.len()];
            let o = run(
                &rt,
                "hostile",
                json!({"mode": "remember", "secret": secret, "probe": earlier}),
            )
            .await;
            assert_eq!(
                output(&o),
                json!({"static": "", "heap_has_probe": false}),
                "round {round}, run {i}"
            );
        }
    }
}

#[tokio::test]
async fn a_looping_tenant_does_not_stop_others_running_beside_it() {
    let rt = runtime();
    let limits = Limits {
        fuel: mc_runtime::MAX_FUEL,
        deadline: Duration::from_secs(2),
        ..Limits::default()
    };
    let p = rt.load_file(&plugin_path("hostile")).unwrap();
    let noop = rt.load_file(&plugin_path("noop")).unwrap();
    let mut loops = Vec::new();
    for _ in 0..4 {
        let (rt, p) = (rt.clone(), p.clone());
        loops.push(tokio::spawn(async move {
            rt.run(&p, request(hostile("loop"), grants(), limits)).await.unwrap()
        }));
    }
    for i in 0..20 {
        let o = rt
            .run(&noop, request(json!({ "i": i }), grants(), Limits::default()))
            .await
            .unwrap();
        assert_eq!(output(&o), json!({ "i": i }));
    }
    for l in loops {
        assert!(matches!(failure(&l.await.unwrap()), RunFailure::Deadline { .. }));
    }
}

#[tokio::test]
async fn cancellation_interrupts_a_running_plugin() {
    let rt = runtime();
    let cancel = CancelToken::new();
    let mut req = request(
        hostile("loop"),
        grants(),
        Limits {
            fuel: mc_runtime::MAX_FUEL,
            ..Limits::default()
        },
    );
    req.cancel = Some(cancel.clone());
    let p = rt.load_file(&plugin_path("hostile")).unwrap();
    let handle = tokio::spawn({
        let rt = rt.clone();
        async move { rt.run(&p, req).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    cancel.cancel();
    let o = handle.await.unwrap();
    assert_eq!(failure(&o), &RunFailure::Cancelled);
}

#[tokio::test]
async fn the_plugin_sees_its_run_context_and_parameters() {
    let rt = runtime();
    let o = run(&rt, "hostile", hostile("context")).await;
    assert_eq!(
        output(&o),
        json!({"tenant": "acme", "agent": "tester", "automation": "nightly", "run_id": "run-1", "attempt": 2, "trigger": "manual", "deadline_ms": 60000})
    );
    let mut g = grants();
    g.config = BTreeMap::from([("brand_voice".into(), "bold".into()), ("company".into(), "Acme".into())]);
    let o = run_with(&rt, "hostile", request(hostile("config"), g, Limits::default())).await;
    assert_eq!(output(&o), json!([["brand_voice", "bold"], ["company", "Acme"]]));
}

#[tokio::test]
async fn key_value_state_is_confined_to_the_granted_bucket() {
    let rt = runtime();
    let kv = Arc::new(MemoryKv::new());
    let with_kv = |input: Value, g: Grants| {
        let mut r = request(input, g, Limits::default());
        r.services.kv = kv.clone();
        r
    };
    let o = run_with(
        &rt,
        "hostile",
        with_kv(json!({"mode": "kv", "key": "cursor", "value": 41}), grants()),
    )
    .await;
    assert_eq!(output(&o), json!({"before": null, "keys": ["cursor"]}));
    let o = run_with(
        &rt,
        "hostile",
        with_kv(json!({"mode": "kv", "key": "cursor", "value": 42}), grants()),
    )
    .await;
    assert_eq!(output(&o), json!({"before": 41, "keys": ["cursor"]}));

    // Another tenant's bucket, by name: refused, and the refusal is what the run failed of.
    let o = run_with(
        &rt,
        "hostile",
        with_kv(json!({"mode": "kv-other-bucket", "bucket": "tenant:globex"}), grants()),
    )
    .await;
    assert_eq!(
        failure(&o),
        &RunFailure::CapabilityDenied {
            capability: "kv".into(),
            detail: "key-value bucket `tenant:globex` is not granted to this run (only its own bucket is)".into()
        }
    );
    // A tenant with the same key sees its own value only.
    let other = Grants {
        kv_bucket: Some("tenant:globex".into()),
        ..grants()
    };
    let o = run_with(
        &rt,
        "hostile",
        with_kv(json!({"mode": "kv", "key": "cursor", "value": 1}), other),
    )
    .await;
    assert_eq!(output(&o), json!({"before": null, "keys": ["cursor"]}));

    let none = Grants {
        kv_bucket: None,
        ..grants()
    };
    let o = run_with(
        &rt,
        "hostile",
        with_kv(json!({"mode": "kv", "key": "k", "value": 1}), none),
    )
    .await;
    assert!(
        matches!(failure(&o), RunFailure::CapabilityDenied { capability, .. } if capability == "kv"),
        "{o:?}"
    );
}

#[tokio::test]
async fn ai_models_must_be_granted() {
    let rt = runtime();
    let o = run(&rt, "hostile", json!({"mode": "ai", "prompt": "hi", "model": "gpt-4o"})).await;
    assert_eq!(
        failure(&o),
        &RunFailure::CapabilityDenied {
            capability: "ai".into(),
            detail: "model `gpt-4o` is not granted to this run (granted: offline)".into()
        }
    );
    let o = run_with(
        &rt,
        "hostile",
        request(
            json!({"mode": "ai", "prompt": "hi"}),
            Grants {
                models: vec![],
                ..grants()
            },
            Limits::default(),
        ),
    )
    .await;
    assert_eq!(
        failure(&o),
        &RunFailure::CapabilityDenied {
            capability: "ai".into(),
            detail: "AI is not granted to this run (no models)".into()
        }
    );
    let o = run(&rt, "hostile", json!({"mode": "ai", "prompt": "Say hello to the team"})).await;
    let out = output(&o);
    let expected = mc_ai::OfflineProvider
        .answer(&mc_ai::ChatRequest {
            model: "offline".into(),
            messages: vec![mc_ai::Message {
                role: mc_ai::Role::User,
                content: "Say hello to the team".into(),
            }],
            max_tokens: mc_runtime::DEFAULT_MAX_TOKENS,
            temperature: None,
            fallbacks: Vec::new(),
        })
        .unwrap();
    assert_eq!(out["text"], expected.text);
    assert_eq!(out["input_tokens"].as_u64().unwrap(), expected.usage.input_tokens);
    assert_eq!(o.usage.tokens, expected.usage);
}

#[tokio::test]
async fn imports_of_later_capabilities_answer_not_granted() {
    let rt = runtime();
    for (mode, capability, detail) in [
        (
            "delegate",
            "agents",
            "agent `tester` may not delegate to `writer`: this run has no team to delegate to",
        ),
        (
            "registry",
            "registry",
            "registry `clients` is not granted to agent `tester`",
        ),
        (
            "approval",
            "approval",
            "asking for approval (\"Post\") is not granted to this run",
        ),
    ] {
        let o = run(&rt, "hostile", hostile(mode)).await;
        assert_eq!(
            failure(&o),
            &RunFailure::CapabilityDenied {
                capability: capability.into(),
                detail: detail.into()
            },
            "{mode}"
        );
    }
}

#[tokio::test]
async fn logs_are_capped() {
    let rt = runtime();
    let o = run(&rt, "hostile", json!({"mode": "log-flood", "lines": 1500})).await;
    assert_eq!(output(&o), json!("flooded"));
    assert_eq!(o.logs.len(), mc_runtime::MAX_LOG_LINES + 1);
    assert_eq!(
        o.logs.last().unwrap().message,
        "500 more log lines dropped (limit 1000 per run)"
    );
}

/// A tiny HTTP/1.1 server on 127.0.0.1 answering by path; every response closes the connection.
async fn serve(routes: Vec<(&'static str, &'static str, String)>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let routes = routes.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, extra, body) = routes
                    .iter()
                    .find(|(p, _, _)| *p == path)
                    .map(|(_, s, b)| (*s, "", b.clone()))
                    .unwrap_or(("404 Not Found", "", String::new()));
                let (status, extra) = if status.starts_with("302") {
                    ("302 Found", body.as_str())
                } else {
                    (status, extra)
                };
                let body = if status.starts_with("302") {
                    String::new()
                } else {
                    body.clone()
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

fn with_hosts(patterns: &[String]) -> Grants {
    Grants {
        http: AllowList::parse(patterns).unwrap(),
        ..grants()
    }
}

#[tokio::test]
async fn analytics_fetches_kpis_from_an_explicitly_granted_test_host() {
    let rt = runtime();
    let kpis = json!({"metrics": {"visits": [1000, 1020, 1045, 1060, 1400], "signups": [50, 52, 49, 51, 50]}});
    let port = serve(vec![("/kpis", "200 OK", kpis.to_string())]).await;
    let url = format!("http://127.0.0.1:{port}/kpis");
    let o = run_with(
        &rt,
        "analytics",
        request(
            json!({"source_url": url}),
            with_hosts(&[format!("http://127.0.0.1:{port}")]),
            Limits::default(),
        ),
    )
    .await;
    let out = output(&o);
    assert_eq!(out["anomalies"], json!(["visits"]));
    assert_eq!(out["metrics"][1]["change_pct"], json!(32.1));
    assert_eq!(out["source"], url);
    assert_eq!(o.usage.http_requests, 1);
    assert_eq!(o.usage.ai_calls, 1);
}

#[tokio::test]
async fn outbound_http_refuses_what_is_not_granted() {
    let rt = runtime();
    let port = serve(vec![
        ("/ok", "200 OK", "{}".into()),
        ("/redirect", "302 Found", "location: http://10.0.0.1/admin\r\n".into()),
    ])
    .await;
    let granted = with_hosts(&[format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")]);
    let cases = [
        // Not in the allow-list at all.
        (
            format!("http://127.0.0.1:{}/ok", port + 1),
            format!("http://127.0.0.1:{}", port + 1) + " is not in this run's allow-list",
        ),
        (
            "http://10.0.0.1/".to_string(),
            "http://10.0.0.1:80 is not in this run's allow-list".to_string(),
        ),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "http://169.254.169.254:80 is not in this run's allow-list".to_string(),
        ),
        // Granted by name, but the name resolves to loopback: only IP-literal grants may reach it.
        (
            format!("http://localhost:{port}/ok"),
            "localhost resolves to 127.0.0.1, a loopback address, which plugins may not reach".to_string(),
        ),
        // An allowed host redirecting to a forbidden one: the second hop is vetted and refused.
        (
            format!("http://127.0.0.1:{port}/redirect"),
            "http://10.0.0.1:80 is not in this run's allow-list".to_string(),
        ),
    ];
    for (url, expected) in cases {
        let o = run_with(
            &rt,
            "hostile",
            request(json!({"mode": "http", "url": url}), granted.clone(), Limits::default()),
        )
        .await;
        let RunFailure::CapabilityDenied { capability, detail } = failure(&o) else {
            panic!("{url}: {o:?}")
        };
        assert_eq!(capability, "http");
        assert!(detail.contains(&expected), "{url}: {detail}");
    }
    let o = run_with(
        &rt,
        "hostile",
        request(
            json!({"mode": "http", "url": format!("http://127.0.0.1:{port}/ok")}),
            granted,
            Limits::default(),
        ),
    )
    .await;
    assert_eq!(output(&o), json!({"status": 200, "body": "{}"}));
}

#[tokio::test]
async fn invalid_components_are_refused_with_a_message_naming_the_problem() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.wasm");
    let err = rt.load_file(&missing).unwrap_err();
    assert_eq!(err.to_string(), format!("plugin not found: {}", missing.display()));

    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "just some text").unwrap();
    assert!(matches!(rt.load_file(&text).unwrap_err(), LoadError::NotWasm { .. }));

    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let err = rt.load_file(&core).unwrap_err();
    assert!(
        err.to_string()
            .contains("is a core WebAssembly module, not a component: build it for the wasm32-wasip2 target"),
        "{err}"
    );

    let truncated = dir.path().join("truncated.wasm");
    let bytes = std::fs::read(plugin_path("noop")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        rt.load_file(&truncated).unwrap_err(),
        LoadError::Invalid { .. }
    ));

    let err = rt.load_file(&plugin_path("wrong_world")).unwrap_err();
    let LoadError::MissingExport { expected, found, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(expected, "mission:control/handler@0.1.0");
    assert!(found.contains("wasi:cli/run"), "{err}");

    let err = rt.load_file(&plugin_path("future_contract")).unwrap_err();
    assert!(
        err.to_string().ends_with("was built for contract mission:control@0.2.0, but this host speaks mission:control@0.1.0: rebuild it with a matching SDK"),
        "{err}"
    );
}

#[tokio::test]
async fn compiled_components_are_cached_on_disk_and_bad_entries_are_replaced() {
    let cache = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        max_instances: 4,
        ..RuntimeConfig::default()
    };
    let first = Runtime::new(config()).unwrap().load_file(&plugin_path("noop")).unwrap();
    assert_eq!(first.source(), CacheOutcome::Compiled);
    let second = Runtime::new(config()).unwrap().load_file(&plugin_path("noop")).unwrap();
    assert_eq!(second.source(), CacheOutcome::Hit);
    assert_eq!(first.hash(), second.hash());

    // A damaged entry is discarded and recompiled, and the plugin still runs.
    for entry in std::fs::read_dir(cache.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let rt = Runtime::new(config()).unwrap();
    let third = rt.load_file(&plugin_path("noop")).unwrap();
    assert_eq!(third.source(), CacheOutcome::Compiled);
    let o = rt
        .run(&third, request(json!(1), grants(), Limits::default()))
        .await
        .unwrap();
    assert_eq!(output(&o), json!(1));
}

#[tokio::test]
async fn limits_out_of_range_are_refused_before_running() {
    let rt = runtime();
    let p = rt.load_file(&plugin_path("noop")).unwrap();
    let err = rt
        .run(
            &p,
            request(
                json!({}),
                grants(),
                Limits {
                    fuel: 0,
                    ..Limits::default()
                },
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "fuel must be between 1 and 1000000000000, got 0");
    let err = rt
        .run(
            &p,
            request(
                json!({}),
                grants(),
                Limits {
                    memory_bytes: 1 << 40,
                    ..Limits::default()
                },
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "memory must be between 2 MiB and 1024 MiB, got 1048576 MiB"
    );
}

#[test]
fn concurrent_writers_of_one_cache_entry_leave_a_loadable_entry() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().to_path_buf();
    let loaders: Vec<_> = (0..6)
        .map(|_| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let rt = Runtime::new(RuntimeConfig {
                    cache_dir: Some(dir),
                    max_instances: 2,
                    ..RuntimeConfig::default()
                })
                .unwrap();
                rt.load_file(&plugin_path("content_writer")).unwrap().hash().to_string()
            })
        })
        .collect();
    let hashes: Vec<String> = loaders.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(hashes.windows(2).all(|w| w[0] == w[1]));
    // No temporary files are left behind, and the entry loads.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].starts_with(&hashes[0]) && names[0].ends_with(".cwasm"),
        "{names:?}"
    );
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir),
        max_instances: 2,
        ..RuntimeConfig::default()
    })
    .unwrap();
    assert_eq!(
        rt.load_file(&plugin_path("content_writer")).unwrap().source(),
        CacheOutcome::Hit
    );
}
