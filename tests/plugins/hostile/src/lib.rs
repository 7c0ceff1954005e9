//! A plugin that misbehaves on request, for the runtime's tests: `{"mode": "..."}` picks the
//! misbehaviour. It also exercises every import so tests can check grants and refusals.
//!
//! Modes: `loop`, `alloc`, `recurse`, `trap`, `panic`, `huge-output` (`bytes`), `not-json`,
//! `fail`, `sleep` (`ms`), `compute` (`iterations`), `http` (`url`), `ai` (`prompt`, `model`;
//! with `fail_first_attempt` the first attempt fails after the call),
//! `ai-loop` (`count` calls of `prompt` with `max_tokens`, each timed in the plugin; returns
//! `{"micros": [...]}`, for the gateway overhead benchmark), `kv` (`key`, `value`),
//! `kv-other-bucket` (`bucket`), `config`, `delegate`, `delegate-all` (`tasks`: `[{agent, input}]`,
//! handed out at once; returns `[{"ok": output} | {"error", "kind"}]` in order; with
//! `fail_first_attempt` the first attempt fails after delegating), `registry`, `registry-insert`
//! (`registry`, `data`), `registry-update` (`registry`, `id`, `data`), `registry-query`
//! (`registry`, `filters`: `[{field, op, value}]`),
//! `approval` (with `prompt`, the draft is an AI reply), `log-flood` (`lines`), `context`,
//! `remember` (`secret`, `probe`: looks for `probe` in what a fresh static and a fresh heap block
//! hold, then leaves `secret` in both; returns `{"static", "heap_has_probe"}`).
//!
//! It implements the generated `Guest` trait directly (not through `plugin!`) so that it can
//! return output that is not JSON.
#![allow(unsafe_code)] // generated export glue

use mission_control_sdk::bindings::exports::mission::control::handler::Guest;
use mission_control_sdk::bindings::mission::control::types::{Failure, FailureKind, RunContext};
use mission_control_sdk::{Error, Value, agents, ai, approval, config, http, json, kv, log, registry};

struct Hostile;

fn field<'a>(input: &'a Value, name: &str) -> &'a str {
    input[name].as_str().unwrap_or_default()
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    // black_box keeps the compiler from turning this into a loop.
    std::hint::black_box(recurse(std::hint::black_box(n + 1))) + 1
}

fn compute(iterations: u64) -> u64 {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..iterations {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = x.wrapping_add(i);
    }
    x
}

/// What an earlier run left in this instance's memory: the previous value of a static, and whether
/// a fresh 64 KiB heap block, read before anything is written to it, holds `probe`. Then leaves
/// `secret` in both (the block is never freed). A host that reuses memory between runs must give
/// every run an empty static and a block without another run's bytes.
fn remember(secret: &str, probe: &str) -> Value {
    static LAST: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());
    const SPAN: usize = 1 << 16;
    let layout = std::alloc::Layout::from_size_align(SPAN, 8).expect("layout");
    // SAFETY: the block is SPAN bytes; it is read with volatile reads before being written (on
    // wasm a fresh allocation is plain linear memory: zeros, or whatever was left there).
    let block = unsafe { std::alloc::alloc(layout) };
    let bytes: Vec<u8> = (0..SPAN).map(|i| unsafe { block.add(i).read_volatile() }).collect();
    let heap_has_probe = !probe.is_empty() && bytes.windows(probe.len()).any(|w| w == probe.as_bytes());
    for (i, b) in secret.bytes().cycle().take(SPAN).enumerate() {
        unsafe { block.add(i).write_volatile(b) };
    }
    let before = std::mem::replace(&mut *LAST.lock().unwrap_or_else(|p| p.into_inner()), secret.to_string());
    json!({ "static": before, "heap_has_probe": heap_has_probe })
}

fn act(input: &Value, ctx: &RunContext) -> Result<String, Error> {
    let out = match field(input, "mode") {
        "loop" => loop {
            std::hint::black_box(());
        },
        "alloc" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "recurse" => json!(recurse(0)),
        "trap" => {
            // The wasm `unreachable` instruction, executed on purpose.
            #[cfg(target_arch = "wasm32")]
            core::arch::wasm32::unreachable();
            #[cfg(not(target_arch = "wasm32"))]
            std::process::abort();
        }
        "panic" => panic!("the hostile plugin panics on purpose"),
        "huge-output" => {
            let bytes = input["bytes"].as_u64().unwrap_or(8 << 20) as usize;
            return Ok(format!("\"{}\"", "x".repeat(bytes)));
        }
        "not-json" => return Ok("this is not JSON".to_string()),
        "fail" => return Err(Error::upstream("the upstream service said no")),
        "sleep" => {
            let ms = input["ms"].as_u64().unwrap_or(1000);
            let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
            while std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            json!("slept")
        }
        "compute" => json!(compute(input["iterations"].as_u64().unwrap_or(1_000_000))),
        "http" => {
            let r = http::get(field(input, "url"))?;
            json!({ "status": r.status, "body": r.text() })
        }
        "ai" => {
            let mut chat = ai::chat().user(field(input, "prompt"));
            if let Some(m) = input["model"].as_str() {
                chat = chat.model(m);
            }
            let r = chat.send()?;
            if input["fail_first_attempt"] == true && ctx.attempt == 1 {
                return Err(Error::upstream("failing after the AI call, on purpose"));
            }
            json!({ "text": r.text, "model": r.model, "input_tokens": r.usage.input_tokens, "output_tokens": r.usage.output_tokens })
        }
        // `count` AI calls in a row (the host allows 100 per run), each timed here, inside the
        // plugin: the gateway overhead benchmark's view of a call through the `ai` import.
        "ai-loop" => {
            let mut micros = Vec::new();
            for _ in 0..input["count"].as_u64().unwrap_or(10) {
                let mut chat = ai::chat().user(field(input, "prompt"));
                if let Some(n) = input["max_tokens"].as_u64() {
                    chat = chat.max_tokens(n as u32);
                }
                let t = std::time::Instant::now();
                chat.send()?;
                micros.push(t.elapsed().as_micros() as u64);
            }
            json!({ "micros": micros })
        }
        "kv" => {
            let key = field(input, "key");
            let before: Option<Value> = kv::get_json(key)?;
            kv::set_json(key, &input["value"])?;
            json!({ "before": before, "keys": kv::keys()? })
        }
        "kv-other-bucket" => {
            kv::open_named(field(input, "bucket"))?;
            json!("opened")
        }
        "config" => json!(config::all()?),
        "delegate" => agents::delegate("writer", &json!({"brief": "x"}))?,
        "delegate-all" => {
            let tasks: Vec<(String, Value)> = input["tasks"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|t| (field(t, "agent").to_string(), t["input"].clone()))
                        .collect()
                })
                .unwrap_or_default();
            let results = agents::delegate_all(&tasks)?;
            if input["fail_first_attempt"] == true && ctx.attempt == 1 {
                return Err(Error::upstream("failing after delegating, on purpose"));
            }
            json!(
                results
                    .into_iter()
                    .map(|r| match r {
                        Ok(v) => json!({ "ok": v }),
                        Err(e) => json!({ "error": e.to_string(), "kind": format!("{:?}", e.kind()) }),
                    })
                    .collect::<Vec<_>>()
            )
        }
        "registry" => json!(registry::query("clients", &[], 10)?.len()),
        "registry-insert" => {
            let row = registry::insert(field(input, "registry"), &input["data"])?;
            json!({ "id": row.id, "data": row.data })
        }
        "registry-update" => {
            let row = registry::update(field(input, "registry"), field(input, "id"), &input["data"])?;
            json!({ "id": row.id, "data": row.data })
        }
        "registry-query" => {
            let mut filters = Vec::new();
            for f in input["filters"].as_array().cloned().unwrap_or_default() {
                let (name, value) = (field(&f, "field"), &f["value"]);
                filters.push(match field(&f, "op") {
                    "ne" => registry::Filter::ne(name, value)?,
                    "lt" => registry::Filter::lt(name, value)?,
                    "le" => registry::Filter::le(name, value)?,
                    "gt" => registry::Filter::gt(name, value)?,
                    "ge" => registry::Filter::ge(name, value)?,
                    "contains" => registry::Filter::contains(name, value.as_str().unwrap_or_default())?,
                    _ => registry::Filter::eq(name, value)?,
                });
            }
            let rows = registry::query(field(input, "registry"), &filters, 100)?;
            json!(
                rows.into_iter()
                    .map(|r| json!({ "id": r.id, "data": r.data }))
                    .collect::<Vec<_>>()
            )
        }
        // With `prompt`, the draft is an AI reply (which a resumed run must not pay for again).
        "approval" => {
            let draft = match input["prompt"].as_str() {
                Some(p) => ai::chat().user(p).send()?.text,
                None => "draft".to_string(),
            };
            let decision = approval::request("Post", &draft)?;
            json!({ "draft": draft, "decision": format!("{decision:?}") })
        }
        "log-flood" => {
            for i in 0..(input["lines"].as_u64().unwrap_or(5000)) {
                log::info(format!("line {i}"));
            }
            json!("flooded")
        }
        "remember" => remember(field(input, "secret"), field(input, "probe")),
        "context" => json!({
            "tenant": ctx.tenant, "agent": ctx.agent, "automation": ctx.automation,
            "run_id": ctx.run_id, "attempt": ctx.attempt, "trigger": ctx.trigger, "deadline_ms": ctx.deadline_ms,
        }),
        other => return Err(Error::invalid_input(format!("unknown mode `{other}`"))),
    };
    Ok(out.to_string())
}

impl Guest for Hostile {
    fn run(input: String, context: RunContext) -> Result<String, Failure> {
        let input: Value = serde_json::from_str(&input).map_err(|e| Failure {
            kind: FailureKind::InvalidInput,
            message: e.to_string(),
            retryable: false,
        })?;
        act(&input, &context).map_err(|e| Failure {
            kind: match e.kind() {
                mission_control_sdk::ErrorKind::NotGranted => FailureKind::NotGranted,
                mission_control_sdk::ErrorKind::InvalidInput => FailureKind::InvalidInput,
                _ => FailureKind::Upstream,
            },
            message: e.to_string(),
            retryable: e.is_retryable(),
        })
    }
}

mission_control_sdk::bindings::export_workflow!(Hostile with_types_in mission_control_sdk::bindings);
