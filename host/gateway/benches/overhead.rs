//! Gateway overhead (`cargo bench -p mc-gateway --bench overhead`): what the metered gateway adds
//! to an AI call, beside a bare HTTP call to the same server, in one process and one run.
//!
//! One fake OpenAI server on 127.0.0.1 (`mc_testkit::fake_ai`, the real wire format) answers
//! every path; the same chat completion (model `gpt-4o-mini`, one short user message,
//! `max_tokens` 64) is sent
//!
//! 1. **baseline**: bare `reqwest` POSTs of the body the OpenAI adapter sends, one reused client,
//!    reading the whole answer;
//! 2. **gateway**: `Gateway::chat` (price book, tenant-key lookup, budget reservation, the call
//!    through the adapter with retries and breaker, ledger row and settle) on a fresh SQLite file,
//!    and on a fresh PostgreSQL database when 127.0.0.1:5432 answers;
//! 3. **ai import**: the `hostile` test plugin's `ai-loop` mode through `mc_runtime::Runtime`,
//!    100 calls per run (the host's per-run maximum) over each gateway, each call timed
//!    inside the plugin with `std::time::Instant` (wasi monotonic clock), cross-checked by the
//!    run's wall time minus an empty run's, divided by the calls.
//!
//! The paths are interleaved in rounds of 100 calls so that machine noise hits them alike; all
//! calls are sequential. The tenant has all three budgets (monthly, per-run, agent), so every
//! reservation locks and updates three counters: the most work a call can cost. The gateway has a
//! sealer as `missionctl serve` always does, so every call looks for the tenant's own key.
//!
//! It runs twice. First with the fake's default answer (computed from the request), which the
//! fake sends after `tokio::time::sleep(0)`: tokio rounds every timer up to its next 1 ms tick, so
//! each answer leaves on a millisecond boundary and a call's latency is quantised to whole
//! milliseconds plus what follows the answer. Then with the same answer, captured once, queued as
//! a raw 200 body (`Reply::Malformed` sends its body verbatim, with no timer): latencies add up,
//! and that pass is the one to read the overhead from.
//!
//! A breakdown then times the gateway's parts alone (the adapter, reserve with the tenant-key read,
//! settle, the price-book version check) so that the added time can be traced to its statements.
//!
//! `MC_BENCH_CALLS` (default 2,000) sets the calls per path and pass, after one warm-up round.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mc_ai::{AiGateway, CallContext, ChatRequest, Message, OpenAiProvider, Provider, Role};
use mc_gateway::{Endpoint, Gateway, GatewayConfig, ProviderKind};
use mc_runtime::{Grants, Limits, MemoryKv, Plugin, RunContext, RunRequest, Runtime, RuntimeConfig, Services};
use mc_store::{LedgerEntry, ReserveRequest, Sealer, Store};
use mc_testkit::fake_ai::{DEFAULT_KEY, FakeProvider, Flavor, Reply};
use mc_testkit::{TestDb, target_dir};
use serde_json::{Value, json};

const DEFAULT_CALLS: usize = 2_000;
/// Calls per round and per plugin run: the host's limit on AI calls in one run.
const ROUND: usize = mc_runtime::MAX_AI_CALLS_PER_RUN as usize;
const MODEL: &str = "gpt-4o-mini";
const PROMPT: &str = "Write a one-line greeting for our spring sale on garden tools.";
const MAX_TOKENS: u32 = 64;
const GOAL: Duration = Duration::from_millis(1);
const TENANT: &str = "bench";
const AGENT: &str = "analyst";
/// All three budgets, large enough never to refuse.
const TENANT_FILE: &str = r#"tenant: bench
budget: { monthly: 100000, per_run: 100 }
agents:
  - name: analyst
    role: Analyst
    plugin: hostile
    model: gpt-4o-mini
    budget: { monthly: 100000 }
"#;
/// The key sealer `missionctl serve` always has; the tenant stores no key of its own.
const SEALER_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

#[derive(Clone, Copy)]
struct Stats {
    p50: Duration,
    p90: Duration,
    p99: Duration,
}

fn stats(samples: &[Duration]) -> Stats {
    let mut s = samples.to_vec();
    s.sort();
    let at = |p: f64| s[((s.len() as f64 - 1.0) * p).round() as usize];
    Stats {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn calls() -> usize {
    let n = std::env::var("MC_BENCH_CALLS")
        .ok()
        .and_then(|v| v.replace('_', "").parse::<usize>().ok())
        .unwrap_or(DEFAULT_CALLS);
    // Whole rounds: the plugin makes ROUND calls per run.
    n.div_ceil(ROUND).max(1) * ROUND
}

fn postgres_reachable() -> bool {
    let addr: SocketAddr = "127.0.0.1:5432".parse().expect("address");
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

fn request() -> ChatRequest {
    ChatRequest {
        model: MODEL.into(),
        messages: vec![Message {
            role: Role::User,
            content: PROMPT.into(),
        }],
        max_tokens: MAX_TOKENS,
        temperature: None,
        fallbacks: Vec::new(),
    }
}

fn ctx(run: &str) -> CallContext {
    CallContext {
        tenant: TENANT.into(),
        agent: AGENT.into(),
        automation: None,
        run_id: run.into(),
        root_run_id: run.into(),
        attempt: 1,
        call_seq: None,
    }
}

/// The bare call: the JSON body the OpenAI adapter sends, posted with the same header, the whole
/// answer read.
struct Bare {
    client: reqwest::Client,
    url: String,
    body: Value,
}

impl Bare {
    fn new(fake: &FakeProvider) -> Bare {
        Bare {
            client: reqwest::Client::new(),
            url: format!("{}/v1/chat/completions", fake.base_url()),
            body: json!({
                "model": MODEL,
                "messages": [{"role": "user", "content": PROMPT}],
                "max_tokens": MAX_TOKENS,
            }),
        }
    }

    async fn call(&self) -> Duration {
        let t = Instant::now();
        let body = self.post().await.bytes().await.expect("the fake's body");
        let d = t.elapsed();
        assert!(!body.is_empty());
        d
    }

    async fn post(&self) -> reqwest::Response {
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(DEFAULT_KEY)
            .json(&self.body)
            .send()
            .await
            .expect("the fake answers");
        assert!(response.status().is_success(), "{}", response.status());
        response
    }

    /// The fake's default answer to this request, to be served again raw.
    async fn default_answer(&self) -> String {
        self.post().await.text().await.expect("the fake's body")
    }
}

/// A store with the bench tenant applied, and a gateway over it calling `fake`.
async fn gateway(store: &Store, fake: &FakeProvider) -> Arc<Gateway> {
    let tenant = mc_config::parse(TENANT_FILE, &mc_config::Known::default()).expect("the tenant file");
    store.apply(&tenant).await.expect("apply the tenant");
    let config = GatewayConfig {
        endpoints: vec![Endpoint {
            name: "openai".into(),
            kind: ProviderKind::OpenAi,
            base_url: fake.base_url(),
            api_key: Some(DEFAULT_KEY.into()),
            key_required: true,
            key_hint: "OPENAI_API_KEY".into(),
        }],
        sealer: Some(sealer()),
        ..GatewayConfig::default()
    };
    Arc::new(Gateway::open(store.clone(), config).await.expect("open the gateway"))
}

fn sealer() -> Sealer {
    Sealer::from_base64(SEALER_KEY).expect("the sealer key")
}

async fn gateway_call(gateway: &Gateway, run: &str) -> Duration {
    let t = Instant::now();
    let r = gateway.chat(&ctx(run), request()).await.expect("the gateway's call");
    let d = t.elapsed();
    assert_eq!(r.provider, "openai");
    d
}

/// The plugin side: the `hostile` plugin's `ai-loop` mode over a gateway.
struct PluginPath {
    runtime: Runtime,
    plugin: Arc<Plugin>,
    services: Services,
    grants: Arc<Grants>,
}

fn plugin_file(name: &str) -> PathBuf {
    let p = target_dir().join("wasm32-wasip2/plugin").join(format!("{name}.wasm"));
    assert!(
        p.is_file(),
        "{} is missing: build the plugins first with `make plugins`",
        p.display()
    );
    p
}

impl PluginPath {
    fn new(gateway: Arc<Gateway>) -> PluginPath {
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(target_dir().join("test-component-cache")),
            max_instances: 4,
            ..RuntimeConfig::default()
        })
        .expect("the runtime");
        let plugin = runtime
            .load_file(&plugin_file("hostile"))
            .expect("load the hostile plugin");
        PluginPath {
            runtime,
            plugin,
            services: Services {
                ai: gateway,
                kv: Arc::new(MemoryKv::new()),
                delegator: None,
                registries: None,
                approvals: None,
            },
            grants: Arc::new(Grants {
                models: vec![MODEL.into()],
                ..Grants::default()
            }),
        }
    }

    /// One run making `count` calls: its wall time and the calls' times as the plugin saw them.
    async fn run(&self, run: &str, count: usize) -> (Duration, Vec<Duration>) {
        let input = json!({"mode": "ai-loop", "count": count, "prompt": PROMPT, "max_tokens": MAX_TOKENS});
        let req = RunRequest {
            input: input.to_string(),
            context: RunContext {
                tenant: TENANT.into(),
                agent: AGENT.into(),
                automation: None,
                run_id: run.into(),
                root_run_id: None,
                attempt: 1,
                trigger: "bench".into(),
            },
            grants: self.grants.clone(),
            limits: Limits::default(),
            services: self.services.clone(),
            cancel: None,
        };
        let t = Instant::now();
        let outcome = self.runtime.run(&self.plugin, req).await.expect("valid limits");
        let wall = t.elapsed();
        let out = match &outcome.result {
            Ok(s) => serde_json::from_str::<Value>(s).expect("the plugin's JSON output"),
            Err(e) => panic!("the plugin run failed: {e}\nstderr: {}", outcome.stderr),
        };
        assert_eq!(outcome.usage.ai_calls as usize, count);
        let micros = out["micros"]
            .as_array()
            .expect("per-call times")
            .iter()
            .map(|m| Duration::from_micros(m.as_u64().expect("micros")))
            .collect();
        (wall, micros)
    }
}

#[derive(Default)]
struct Samples {
    baseline: Vec<Duration>,
    sqlite: Vec<Duration>,
    postgres: Vec<Duration>,
    plugin: Vec<Duration>,
    /// (run wall − empty run wall) / calls, one per round.
    plugin_wall: Vec<Duration>,
    plugin_pg: Vec<Duration>,
    plugin_pg_wall: Vec<Duration>,
}

/// The gateway's parts alone, on one database.
#[derive(Default)]
struct Parts {
    reserve: Vec<Duration>,
    settle: Vec<Duration>,
    version: Vec<Duration>,
    ping: Vec<Duration>,
}

/// The store calls one gateway call makes, in its order (key lookup, reserve, the provider call,
/// settle), each timed; then, separately, the price-book version check and `Store::ping` (one
/// `SELECT 1` round trip) as the unit cost.
async fn parts(store: &Store, fake: &FakeProvider, bare: &Bare, answer: &str, n: usize) -> Parts {
    let secret = mc_gateway::tenant_key_secret("openai");
    let mut p = Parts::default();
    for i in 0..n + ROUND {
        let keep = i >= ROUND;
        let run = format!("parts-{}", i / ROUND);

        let now = mc_store::now_micros();
        let t = Instant::now();
        let reservation = store
            .reserve(&ReserveRequest {
                tenant: TENANT,
                agent: AGENT,
                root_run: &run,
                amount: 100,
                expires_at: now + mc_gateway::RESERVATION_TTL.as_micros() as i64,
                at: now,
                secret: Some(&secret),
            })
            .await
            .expect("reserve")
            .expect("within budget");
        let reserve = t.elapsed();

        serve_raw(fake, Some(answer), 1);
        bare.call().await;

        let entry = LedgerEntry {
            tenant: TENANT.into(),
            agent: AGENT.into(),
            automation: None,
            run_id: run.clone(),
            attempt: 1,
            provider: "openai".into(),
            model: MODEL.into(),
            input_tokens: 17,
            output_tokens: 20,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            usage_estimated: false,
            price_version: 1,
            cost: 15,
            at: mc_store::now_micros(),
            // A plugin's call is kept in its run's journal in the same write.
            reply: Some(mc_store::ReplyRecord {
                seq: 0,
                request_hash: "0".repeat(64),
                reply: r#"{"text":"Hello","model":"gpt-4o-mini","provider":"openai","stop_reason":"stop","usage":{"input_tokens":17,"output_tokens":20,"cache_read_tokens":0,"cache_write_tokens":0}}"#.into(),
            }),
        };
        let t = Instant::now();
        store.settle(&reservation, &entry).await.expect("settle");
        let settle = t.elapsed();

        if keep {
            p.reserve.push(reserve);
            p.settle.push(settle);
        }
    }
    for _ in 0..n / 4 {
        let t = Instant::now();
        store.price_book_version().await.expect("price book version");
        p.version.push(t.elapsed());
        let t = Instant::now();
        store.ping().await.expect("ping");
        p.ping.push(t.elapsed());
    }
    p
}

/// Queues `count` copies of `answer` (when given) as the fake's next replies: sent verbatim,
/// without the fake's timer.
fn serve_raw(fake: &FakeProvider, answer: Option<&str>, count: usize) {
    if let Some(a) = answer {
        fake.push_all(std::iter::repeat_n(Reply::Malformed(a.to_string()), count));
    }
}

/// The OpenAI adapter alone (request body, header, the call, parsing the answer), no gateway,
/// interleaved with the bare call; both served raw.
async fn adapter(fake: &FakeProvider, bare: &Bare, answer: &str, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let provider = OpenAiProvider::new("openai", &fake.base_url());
    let req = request();
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for i in 0..n + ROUND {
        serve_raw(fake, Some(answer), 1);
        let t = Instant::now();
        provider
            .send(&req, Some(DEFAULT_KEY), None)
            .await
            .expect("the adapter's call");
        let d = t.elapsed();
        serve_raw(fake, Some(answer), 1);
        let b = bare.call().await;
        if i >= ROUND {
            ours.push(d);
            base.push(b);
        }
    }
    (ours, base)
}

fn row(name: &str, s: &[Duration]) {
    let st = stats(s);
    println!(
        "| {name} | {} | {:.0} | {:.0} | {:.0} |",
        s.len(),
        us(st.p50),
        us(st.p90),
        us(st.p99)
    );
}

fn added(name: &str, s: &[Duration], baseline: Stats) {
    let p50 = stats(s).p50;
    let add = p50.saturating_sub(baseline.p50);
    let verdict = if add <= GOAL { "met" } else { "**missed**" };
    println!(
        "| {name} | {:.0} | {:.0} | {:.0} | {verdict} |",
        us(p50),
        us(baseline.p50),
        us(p50) - us(baseline.p50)
    );
}

struct Paths<'a> {
    fake: &'a FakeProvider,
    bare: &'a Bare,
    sqlite: &'a Gateway,
    postgres: Option<&'a Gateway>,
    plugin: &'a PluginPath,
    plugin_pg: Option<&'a PluginPath>,
}

/// One pass: `rounds` interleaved rounds of every path after a warm-up round, answered by the
/// fake's default reply, or by `answer` served raw.
async fn measure(p: &Paths<'_>, answer: Option<&str>, pass: &str, rounds: usize) -> Samples {
    let mut s = Samples::default();
    for round in 0..=rounds {
        let keep = round > 0;
        let mut baseline = Vec::with_capacity(ROUND);
        let mut on_sqlite = Vec::with_capacity(ROUND);
        let mut on_postgres = Vec::with_capacity(ROUND);
        let gw_run = format!("{pass}-gateway-{round}");
        for _ in 0..ROUND {
            serve_raw(p.fake, answer, 1);
            baseline.push(p.bare.call().await);
            serve_raw(p.fake, answer, 1);
            on_sqlite.push(gateway_call(p.sqlite, &gw_run).await);
            if let Some(g) = p.postgres {
                serve_raw(p.fake, answer, 1);
                on_postgres.push(gateway_call(g, &gw_run).await);
            }
        }
        serve_raw(p.fake, answer, ROUND);
        let (wall, inside) = p.plugin.run(&format!("{pass}-plugin-{round}"), ROUND).await;
        let (empty, _) = p.plugin.run(&format!("{pass}-empty-{round}"), 0).await;
        let on_pg_plugin = match p.plugin_pg {
            Some(pg) => {
                serve_raw(p.fake, answer, ROUND);
                let (wall, inside) = pg.run(&format!("{pass}-plugin-pg-{round}"), ROUND).await;
                let (empty, _) = pg.run(&format!("{pass}-empty-pg-{round}"), 0).await;
                Some((wall.saturating_sub(empty) / ROUND as u32, inside))
            }
            None => None,
        };
        assert_eq!(p.fake.pending(), 0, "every queued answer was used");
        if keep {
            s.baseline.extend(baseline);
            s.sqlite.extend(on_sqlite);
            s.postgres.extend(on_postgres);
            s.plugin.extend(inside);
            s.plugin_wall.push(wall.saturating_sub(empty) / ROUND as u32);
            if let Some((wall, inside)) = on_pg_plugin {
                s.plugin_pg.extend(inside);
                s.plugin_pg_wall.push(wall);
            }
        }
    }
    s
}

fn report(title: &str, s: &Samples, postgres: bool) {
    let base = stats(&s.baseline);
    println!("## {title}: latency per call");
    println!("| path | calls | p50 µs | p90 µs | p99 µs |");
    println!("|---|---|---|---|---|");
    row("baseline: bare reqwest POST to the fake", &s.baseline);
    row("gateway, SQLite (Gateway::chat)", &s.sqlite);
    if postgres {
        row("gateway, PostgreSQL (Gateway::chat)", &s.postgres);
    }
    row("ai import, SQLite (timed inside the plugin)", &s.plugin);
    row(
        "ai import, SQLite ((run wall − empty run wall) / 100, one per run)",
        &s.plugin_wall,
    );
    if postgres {
        row("ai import, PostgreSQL (timed inside the plugin)", &s.plugin_pg);
        row(
            "ai import, PostgreSQL ((run wall − empty run wall) / 100, one per run)",
            &s.plugin_pg_wall,
        );
    }
    println!();
    println!(
        "## {title}: added p50 over the baseline (goal ≤ {} µs)",
        GOAL.as_micros()
    );
    println!("| path | p50 µs | baseline p50 µs | added µs | goal |");
    println!("|---|---|---|---|---|");
    added("gateway, SQLite", &s.sqlite, base);
    if postgres {
        added("gateway, PostgreSQL", &s.postgres, base);
    }
    added("ai import, SQLite (inside the plugin)", &s.plugin, base);
    added("ai import, SQLite (run wall)", &s.plugin_wall, base);
    if postgres {
        added("ai import, PostgreSQL (inside the plugin)", &s.plugin_pg, base);
        added("ai import, PostgreSQL (run wall)", &s.plugin_pg_wall, base);
    }
    println!();
}

async fn bench() {
    let n = calls();
    let rounds = n / ROUND;
    let pg = postgres_reachable();
    println!("# mc-gateway overhead benchmark\n");
    println!(
        "{n} calls per path and pass after one warm-up round of {ROUND}, sequential, in {rounds} interleaved rounds; \
         model {MODEL}, {} prompt characters, max_tokens {MAX_TOKENS}; {} CPUs; PostgreSQL {}.\n",
        PROMPT.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if pg {
            "on 127.0.0.1:5432"
        } else {
            "not reachable on 127.0.0.1:5432 (its rows are skipped)"
        }
    );

    let fake = FakeProvider::start(Flavor::OpenAi).await;
    let bare = Bare::new(&fake);
    let answer = bare.default_answer().await;
    let sqlite = TestDb::sqlite().await;
    let gw_sqlite = gateway(&sqlite.store, &fake).await;
    let postgres = if pg { Some(TestDb::postgres().await) } else { None };
    let gw_postgres = match &postgres {
        Some(db) => Some(gateway(&db.store, &fake).await),
        None => None,
    };
    let plugin = PluginPath::new(gw_sqlite.clone());
    let plugin_pg = gw_postgres.clone().map(PluginPath::new);
    let paths = Paths {
        fake: &fake,
        bare: &bare,
        sqlite: &gw_sqlite,
        postgres: gw_postgres.as_deref(),
        plugin: &plugin,
        plugin_pg: plugin_pg.as_ref(),
    };

    let started = Instant::now();
    let timed = measure(&paths, None, "default", rounds).await;
    let timed_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let raw = measure(&paths, Some(&answer), "raw", rounds).await;
    let raw_secs = started.elapsed().as_secs_f64();
    report(
        "A. The fake's default answer (sent after a 0 ms tokio sleep: on a 1 ms timer tick)",
        &timed,
        pg,
    );
    report(
        "B. The same answer served raw (no timer in the fake; read the overhead here)",
        &raw,
        pg,
    );

    // Where the added time goes: each part alone, the same number of times.
    let started_parts = Instant::now();
    let (adapter_times, adapter_base) = adapter(&fake, &bare, &answer, n).await;
    let mut dbs = vec![("SQLite", parts(&sqlite.store, &fake, &bare, &answer, n).await)];
    if let Some(db) = &postgres {
        dbs.push(("PostgreSQL", parts(&db.store, &fake, &bare, &answer, n).await));
    }
    let parts_secs = started_parts.elapsed().as_secs_f64();
    println!("## Where the time goes: a gateway call's store calls alone, in its order ({n} times, p50 µs)");
    let header: Vec<&str> = dbs.iter().map(|(name, _)| *name).collect();
    println!("| part | {} |", header.join(" | "));
    println!("|---|{}", "---|".repeat(dbs.len()));
    let adapter_added = us(stats(&adapter_times).p50) - us(stats(&adapter_base).p50);
    println!(
        "| OpenAI adapter − bare reqwest (body, header, parse; served raw, interleaved) | {} |",
        vec![format!("{adapter_added:.0}"); dbs.len()].join(" | ")
    );
    let p50s: Vec<[f64; 4]> = dbs
        .iter()
        .map(|(_, p)| [&p.reserve, &p.settle, &p.version, &p.ping].map(|v| us(stats(v).p50)))
        .collect();
    for (i, name) in [
        "reserve (PostgreSQL 1 statement: limits and tenant key read, counters upsert and reservation \
         insert, commit not waiting for the disk; SQLite: limits read, BEGIN, upsert, insert, COMMIT, \
         the key read meanwhile)",
        "settle (PostgreSQL 1 statement, commit waits for the disk; SQLite: BEGIN, reservation delete, \
         counters update, ledger insert, COMMIT)",
        "price-book version check (at most once a second per node, not per call)",
        "unit: `Store::ping` (`SELECT 1`: 1 round trip)",
    ]
    .iter()
    .enumerate()
    {
        let cells: Vec<String> = p50s.iter().map(|c| format!("{:.0}", c[i])).collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    let sums: Vec<String> = p50s
        .iter()
        .map(|c| format!("{:.0}", adapter_added + c[0] + c[1]))
        .collect();
    println!(
        "| sum of the per-call parts (adapter, reserve, settle) | {} |",
        sums.join(" | ")
    );
    println!();
    println!("Measured in {timed_secs:.1} s (pass A) + {raw_secs:.1} s (pass B) + {parts_secs:.1} s (breakdown).\n");
    println!("## Reproduce");
    println!("```");
    println!("make plugins   # or: cargo build --target wasm32-wasip2 --profile plugin -p hostile");
    println!("cargo bench -p mc-gateway --bench overhead   # MC_BENCH_CALLS={n} (default {DEFAULT_CALLS})");
    println!("```");
    println!(
        "PostgreSQL rows need a server on 127.0.0.1:5432 (user postgres, trust auth); without one they are skipped."
    );

    sqlite.finish().await;
    if let Some(db) = postgres {
        db.finish().await;
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing special. Either way
    // the benchmark runs in full only under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("gateway overhead benchmark: run with `cargo bench -p mc-gateway --bench overhead`");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime");
    rt.block_on(bench());
}
