//! The dashboard's figures (`cargo bench -p mc-server --bench dashboard`), on SQLite and on
//! PostgreSQL, with 100,000 runs in the tenant:
//!
//! 1. **First render of each page ≤ 100 ms server time.** A load is what a browser does on a
//!    fresh visit of `/app/<page>`, request by request as the dashboard's JavaScript issues them
//!    (`host/server/ui/`), with the session cookie it signed in with: the page (`index.html`),
//!    then its assets in the waves a browser discovers them (the files `index.html` names, then
//!    the modules each module imports, read from the files themselves), then the app's start
//!    (`GET /ui/session`, then `GET /api/v1/tenants`, then the tenant's branding), then the
//!    page's own requests up to the moment it shows its content. Requests the page issues together
//!    (`Promise.all`) are issued together here, at most six at a time (a browser's connections
//!    per origin over HTTP/1.1), and a step's time is their parallel wall time; steps the page
//!    awaits one after the other are issued one after the other. The live run stream a page opens
//!    beside its loading is opened too (it costs the server a query while the page loads) but not
//!    waited for. Nothing after the content counts (the navigation's approvals badge). Every
//!    page is loaded `LOADS` times, the pages taking turns. Baseline in the same run: `GET
//!    /healthz` (the HTTP stack alone), and the static part of a load (page and assets, no API).
//! 2. **Run status reaches the browser ≤ 500 ms after it changes.** A client holds the live run
//!    stream (`GET /api/v1/tenants/{t}/runs/events`, server-sent events, with the session cookie,
//!    as the browser's `EventSource` does); the benchmark changes a run's state as the engine
//!    does (claims it, then completes it, through the store) and measures from the change's
//!    commit to the event's arrival at the client. Baseline beside it: the store write's own
//!    duration.
//!
//! The tenant: a director and three specialists, five automations (one held for approval),
//! 100,000 finished runs spread over them (all created today: the overview's and the month's
//! worst case), a fuel row per run and `AI_CALLS` AI calls in the ledger, `AWAITING` runs waiting
//! for approval, a registry of `REGISTRY_ROWS` rows. `MC_BENCH_RUNS` and `MC_BENCH_LOADS`
//! override the sizes for a quick look; `MC_BENCH_ONLY=sqlite|postgres` picks one backend.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mc_server::AppState;
use mc_store::{Finished, Role, Store};
use tokio::sync::{Semaphore, mpsc};

// Each benchmark uses part of the shared filler.
#[allow(dead_code)]
#[path = "support/fill.rs"]
mod fill;

use fill::TENANT;

/// The figure for a page's first render, server time.
const RENDER_GOAL: Duration = Duration::from_millis(100);
/// The figure for a run's status to reach the browser.
const STATUS_GOAL: Duration = Duration::from_millis(500);
/// Runs in the tenant (the figure's condition); `MC_BENCH_RUNS` overrides it.
const DEFAULT_RUNS: usize = 100_000;
/// Measured loads of each page ("some dozens": enough for a p99 that is not just the maximum
/// of a handful); `MC_BENCH_LOADS` overrides it.
const DEFAULT_LOADS: usize = 60;
/// Unmeasured loads of each page first (connections, caches, the database's statistics).
const WARMUP_LOADS: usize = 3;
/// Requests a browser has in flight to one origin over HTTP/1.1.
const BROWSER_CONNECTIONS: usize = 6;
/// AI calls in the ledger (the costs page's and the team's sums read them).
const AI_CALLS: usize = 1_000;
/// Of them, on the run whose page is loaded (its AI calls table).
const AI_CALLS_ON_RUN: usize = 20;
/// Runs waiting for approval (the approvals inbox and the overview's count).
const AWAITING: usize = 20;
/// Rows in the registry the registry page shows.
const REGISTRY_ROWS: usize = 1_000;
/// Fuel each run burnt: every run gets its fuel row in the ledger, as real runs do.
const FUEL_PER_RUN: u64 = 2_000_000;
/// Runs claimed and then completed while the live stream is open: two changes each.
const STATUS_RUNS: usize = 25;
/// Longest a change may take to arrive before the benchmark gives up on it.
const STATUS_TIMEOUT: Duration = Duration::from_secs(10);
/// The changes are spread over the stream's poll period (`LIVE_POLL`, 200 ms in
/// `api/runs.rs`) by waiting a different share of this before each, so the figure is not one
/// lucky or unlucky phase.
const STATUS_SPREAD: Duration = Duration::from_millis(200);
/// The stream's own poll period, for the explanation printed beside the figure.
const LIVE_POLL_MS: u64 = 200;

/// The tenant's team, automations and registry.
const CONFIG: &str = "tenant: bench
name: Bench Garden
budget: { monthly: 5000 }
agents:
  - { name: director, role: Marketing director, plugin: noop }
  - { name: writer, role: Content writer, plugin: noop, reports_to: director, registries: { products: write } }
  - { name: social, role: Social media manager, plugin: noop, reports_to: director }
  - { name: analyst, role: Analyst, plugin: noop, reports_to: director }
registries:
  - name: products
    fields:
      - { name: title, type: string, required: true }
      - { name: sku, type: string, required: true, unique: true }
      - { name: price, type: number }
automations:
  - { name: daily, agent: writer, trigger: { manual: true } }
  - { name: weekly-content, agent: writer, trigger: { cron: \"0 9 * * 1\", timezone: Europe/Berlin } }
  - { name: social-posts, agent: social, trigger: { cron: \"0 9,13,17 * * *\", timezone: Europe/Berlin } }
  - { name: monday-kpis, agent: analyst, trigger: { cron: \"0 7 * * 1\", timezone: Europe/Berlin } }
  - { name: review, agent: writer, trigger: { manual: true }, approval: { deliver_to: products } }
";

/// The automations the finished runs belong to, in turn.
const KINDS: [(&str, &str); 4] = [
    ("daily", "writer"),
    ("weekly-content", "writer"),
    ("social-posts", "social"),
    ("monday-kpis", "analyst"),
];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ui")
}

/// The static files a fresh load fetches, in the waves a browser finds them: `index.html`'s
/// links and scripts, then each wave's modules' imports not fetched yet.
fn asset_waves() -> Vec<Vec<String>> {
    let dir = ui_dir();
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let refs = |text: &str, marker: &str| -> Vec<String> {
        text.split(marker)
            .skip(1)
            .filter_map(|rest| {
                let quote = rest.chars().next().filter(|c| matches!(c, '\'' | '"' | '`'))?;
                let rest = &rest[1..];
                Some(rest[..rest.find(quote)?].to_string())
            })
            .collect()
    };
    let mut seen = BTreeSet::new();
    let mut wave: Vec<String> = [refs(&html, "href="), refs(&html, "src=")]
        .concat()
        .into_iter()
        .filter(|p| p.starts_with("/app/assets/"))
        .collect();
    let mut waves = Vec::new();
    while !wave.is_empty() {
        wave.retain(|p| seen.insert(p.clone()));
        let mut next = Vec::new();
        for path in wave.iter().filter(|p| p.ends_with(".js")) {
            let file = dir.join(path.trim_start_matches("/app/"));
            let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let base = Path::new(path).parent().unwrap();
            for import in [refs(&text, "from "), refs(&text, "import ")].concat() {
                if !import.starts_with('.') {
                    continue;
                }
                let mut joined = base.to_path_buf();
                for part in Path::new(&import).components() {
                    match part {
                        std::path::Component::ParentDir => {
                            joined.pop();
                        }
                        std::path::Component::Normal(p) => joined.push(p),
                        _ => {}
                    }
                }
                let joined = joined.to_string_lossy().into_owned();
                if !seen.contains(&joined) && !next.contains(&joined) {
                    next.push(joined);
                }
            }
        }
        if !wave.is_empty() {
            waves.push(wave);
        }
        wave = next;
    }
    waves
}

/// One request of a page: its path, and whether the page fails without it (the others it
/// catches and shows as an error or an empty part).
#[derive(Clone)]
struct Req {
    path: String,
    needed: bool,
}

fn needed(path: impl Into<String>) -> Req {
    Req {
        path: path.into(),
        needed: true,
    }
}

fn optional(path: impl Into<String>) -> Req {
    Req {
        path: path.into(),
        needed: false,
    }
}

/// A page: its address, whether it opens the live run stream, the steps of its own loading
/// (each a set of requests issued together), and the session it is loaded with.
struct Page {
    name: &'static str,
    url: String,
    live: bool,
    steps: Vec<Vec<Req>>,
    operator: bool,
}

/// What each page requests before it shows its content (read from `ui/assets/pages/*.js`).
fn pages(month: &str, since: &str, run: i64) -> Vec<Page> {
    let t = format!("/api/v1/tenants/{TENANT}");
    let page = |name, url: &str, live, steps| Page {
        name,
        url: url.to_string(),
        live,
        steps,
        operator: false,
    };
    let mut all = vec![
        // overview.js: the stream first, then the overview in one call.
        page(
            "overview",
            "/app/",
            true,
            vec![vec![needed(format!("{t}/overview?since={since}"))]],
        ),
        // team.js teamPage: the team in one call.
        page("team", "/app/team", false, vec![vec![needed(format!("{t}/team"))]]),
        // team.js agentPage: the agent, then its runs and the automations together, then its chat
        // threads (the chat panel is part of the page).
        page(
            "agent page",
            "/app/agents/writer",
            false,
            vec![
                vec![needed(format!("{t}/agents/writer"))],
                vec![
                    needed(format!("{t}/runs?agent=writer&limit=20")),
                    optional(format!("{t}/automations")),
                ],
                vec![optional(format!("{t}/agents/writer/chats"))],
            ],
        ),
        // automations.js: the automations, then each one's latest run together.
        page(
            "automations",
            "/app/automations",
            false,
            vec![
                vec![needed(format!("{t}/automations"))],
                ["daily", "weekly-content", "social-posts", "monday-kpis", "review"]
                    .iter()
                    .map(|a| optional(format!("{t}/runs?automation={a}&limit=1")))
                    .collect(),
            ],
        ),
        // runs.js runsPage: the stream, the filters' automations and agents together, then the
        // first page of runs.
        page(
            "runs list",
            "/app/runs",
            true,
            vec![
                vec![optional(format!("{t}/automations")), optional(format!("{t}/agents"))],
                vec![needed(format!("{t}/runs?limit=50"))],
            ],
        ),
        // runs.js runPage: the stream, and the run, its logs, tree, decision and charges together.
        page(
            "run page",
            &format!("/app/runs/{run}"),
            true,
            vec![vec![
                needed(format!("{t}/runs/{run}")),
                optional(format!("{t}/runs/{run}/logs")),
                optional(format!("{t}/runs/{run}/tree")),
                optional(format!("{t}/runs/{run}/decision")),
                optional(format!("{t}/runs/{run}/charges")),
            ]],
        ),
        // costs.js: usage by day and by agent and the budget together.
        page(
            "costs",
            "/app/costs",
            false,
            vec![vec![
                needed(format!("{t}/usage?month={month}&by=day")),
                needed(format!("{t}/usage?month={month}&by=agent")),
                optional(format!("{t}/budget")),
            ]],
        ),
        // approvals.js: the waiting approvals.
        page(
            "approvals",
            "/app/approvals",
            false,
            vec![vec![needed(format!("{t}/approvals"))]],
        ),
        // registries.js registriesPage, and registryPage: the registries, then a page of rows.
        page(
            "registries",
            "/app/registries",
            false,
            vec![vec![needed(format!("{t}/registries"))]],
        ),
        page(
            "registry page",
            "/app/registries/products",
            false,
            vec![
                vec![needed(format!("{t}/registries"))],
                vec![needed(format!("{t}/registries/products/rows?limit=50"))],
            ],
        ),
        // templates.js templatesPage: the gallery.
        page(
            "templates",
            "/app/templates",
            false,
            vec![vec![needed("/api/v1/templates")]],
        ),
        // health.js: the probes, providers, incidents and the SLA together.
        page(
            "health",
            "/app/health",
            false,
            vec![vec![
                optional("/readyz"),
                optional("/healthz"),
                optional("/api/v1/providers"),
                optional(format!("{t}/incidents")),
                optional(format!("{t}/sla")),
            ]],
        ),
    ];
    // operator.js, with an operator's session: the margin report, providers, readiness and the
    // fleet's health together.
    all.push(Page {
        name: "operator view",
        url: "/app/operator".into(),
        live: false,
        steps: vec![vec![
            needed(format!("/api/v1/report?month={month}")),
            optional("/api/v1/providers"),
            optional("/readyz"),
            optional("/api/v1/health"),
        ]],
        operator: true,
    });
    all
}

/// The browser's side of a load: an HTTP client, the session cookie, its connection limit.
#[derive(Clone)]
struct Browser {
    client: reqwest::Client,
    base: String,
    cookie: String,
    slots: Arc<Semaphore>,
}

impl Browser {
    /// Signs in with `key` as the sign-in form does and keeps the session cookie.
    async fn sign_in(client: &reqwest::Client, addr: SocketAddr, key: &str) -> Browser {
        let base = format!("http://{addr}");
        let res = client
            .post(format!("{base}/ui/session"))
            .json(&serde_json::json!({ "key": key }))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "sign-in: {}", res.status());
        let cookie = res
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("a session cookie")
            .to_string();
        Browser {
            client: client.clone(),
            base,
            cookie,
            slots: Arc::new(Semaphore::new(BROWSER_CONNECTIONS)),
        }
    }

    /// One request, its body read to the end; the status.
    async fn get(&self, path: &str) -> u16 {
        let _slot = self.slots.acquire().await.unwrap();
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, &self.cookie)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = res.status().as_u16();
        res.bytes().await.unwrap();
        status
    }

    /// Requests issued together; checks the needed ones succeeded.
    async fn step(&self, reqs: &[Req]) {
        let statuses = futures_util::future::join_all(reqs.iter().map(|r| self.get(&r.path))).await;
        for (r, status) in reqs.iter().zip(statuses) {
            assert!(!r.needed || (200..300).contains(&status), "GET {}: {status}", r.path);
        }
    }

    /// Opens the live run stream and returns its response (headers read).
    async fn stream(&self) -> reqwest::Response {
        let res = self
            .client
            .get(format!("{}/api/v1/tenants/{TENANT}/runs/events", self.base))
            .header(reqwest::header::COOKIE, &self.cookie)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "the run stream: {}", res.status());
        res
    }
}

/// The app's start on every page: the session, the tenants, the tenant's branding (`app.js`
/// `boot`, `adopt`, `render`), one after the other.
fn start_steps() -> Vec<Vec<Req>> {
    vec![
        vec![needed("/ui/session")],
        vec![needed("/api/v1/tenants")],
        vec![optional(format!("/api/v1/tenants/{TENANT}/branding"))],
    ]
}

/// One fresh load of `page`: its wall time, and its static part's.
async fn load(browser: &Browser, page: &Page, assets: &[Vec<String>]) -> (Duration, Duration) {
    let started = Instant::now();
    browser.step(&[needed(page.url.clone())]).await;
    for wave in assets {
        let reqs: Vec<Req> = wave.iter().map(|p| needed(p.clone())).collect();
        browser.step(&reqs).await;
    }
    let statics = started.elapsed();
    let mut stream = None;
    for (i, step) in start_steps().iter().chain(&page.steps).enumerate() {
        if page.live && i == start_steps().len() {
            // The page opens the stream and goes on loading at once.
            let b = browser.clone();
            stream = Some(tokio::spawn(async move { drop(b.stream().await) }));
        }
        browser.step(step).await;
    }
    let total = started.elapsed();
    if let Some(s) = stream {
        s.await.unwrap();
    }
    (total, statics)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn verdict(p99: f64, goal: Duration) -> &'static str {
    if p99 <= goal.as_secs_f64() * 1000.0 {
        "met"
    } else {
        "NOT MET"
    }
}

/// The tenant as the figures need it.
async fn fill_tenant(store: &Store, runs: usize) -> i64 {
    store.ensure_price_book(mc_ai::prices::SHIPPED, 20_000).await.unwrap();
    // Four agents: the Growth plan's size of team.
    let local = mc_store::Principal::local();
    store.create_tenant(&local, TENANT, "Bench Garden", None).await.unwrap();
    store.set_plan(&local, TENANT, mc_store::Plan::Growth).await.unwrap();
    fill::apply(store, CONFIG).await;
    fill::runs(store, &KINDS, runs, FUEL_PER_RUN).await;
    // Completed runs of `review` wait for approval, as the engine leaves them.
    fill::runs(store, &[("review", "writer")], AWAITING, FUEL_PER_RUN).await;
    let scope = store.tenant(TENANT);
    let newest = scope
        .runs(&mc_store::RunFilter {
            state: None,
            automation: None,
            agent: None,
            before: None,
            limit: 1,
        })
        .await
        .unwrap()
        .runs[0]
        .id;
    // A run from the middle of the tenant's history: its page is loaded.
    let run = newest - (runs as i64) / 2;
    let agents = ["director", "writer", "social", "analyst"];
    for i in 0..AI_CALLS {
        let agent = agents[i % agents.len()];
        let run_id = if i < AI_CALLS_ON_RUN { run } else { newest - i as i64 };
        bill(store, agent, &run_id.to_string(), 1_000 + i as u64).await;
    }
    for i in 0..REGISTRY_ROWS {
        scope
            .registry_insert(
                "products",
                &serde_json::json!({ "title": format!("Garden tool {i}"), "sku": format!("SKU-{i:05}"), "price": 9.5 + i as f64 }),
            )
            .await
            .unwrap();
    }
    run
}

/// One AI call of `agent` on run `run_id`, recorded as the gateway records it: reserve, then
/// settle at `cost` micro-dollars.
async fn bill(store: &Store, agent: &str, run_id: &str, cost: u64) {
    let now = mc_store::now_micros();
    let entry = mc_store::LedgerEntry {
        tenant: TENANT.into(),
        agent: agent.into(),
        automation: Some("daily".into()),
        run_id: run_id.into(),
        attempt: 1,
        provider: "anthropic".into(),
        model: "claude-haiku-4-5".into(),
        input_tokens: 1_200,
        output_tokens: 300,
        cache_read_tokens: 100,
        price_version: 1,
        cost,
        at: now,
        ..Default::default()
    };
    mc_testkit::bill(store, &entry).await;
}

/// Today's midnight (UTC) as the overview asks for it.
fn today() -> String {
    const DAY_MICROS: i64 = 86_400_000_000;
    let midnight = mc_store::now_micros() / DAY_MICROS * DAY_MICROS;
    jiff::Timestamp::from_microsecond(midnight).unwrap().to_string()
}

fn measure_pages(backend: &str, rt: &tokio::runtime::Runtime, addr: SocketAddr, keys: (&str, &str), run: i64) {
    let loads = env_or("MC_BENCH_LOADS", DEFAULT_LOADS);
    let month = mc_store::month_and_day(mc_store::now_micros()).0;
    let pages = pages(&month, &today(), run);
    let assets = asset_waves();
    let files: usize = assets.iter().map(Vec::len).sum();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(BROWSER_CONNECTIONS * 2)
            .build()
            .unwrap();
        let tenant = Browser::sign_in(&client, addr, keys.0).await;
        let operator = Browser::sign_in(&client, addr, keys.1).await;
        let mut times: BTreeMap<usize, Vec<Duration>> = BTreeMap::new();
        let mut statics = Vec::new();
        let mut healthz = Vec::new();
        for round in 0..WARMUP_LOADS + loads {
            let t = Instant::now();
            assert_eq!(tenant.get("/healthz").await, 200);
            let healthz_time = t.elapsed();
            for (i, page) in pages.iter().enumerate() {
                let browser = if page.operator { &operator } else { &tenant };
                let (total, statics_time) = load(browser, page, &assets).await;
                if round >= WARMUP_LOADS {
                    times.entry(i).or_default().push(total);
                    statics.push(statics_time);
                }
            }
            if round >= WARMUP_LOADS {
                healthz.push(healthz_time);
            }
        }
        println!(
            "{backend}: first render of each page, {loads} fresh loads each (after {WARMUP_LOADS} unmeasured), \
             page + {files} assets in {} waves + the app's 3 start requests + the page's own",
            assets.len()
        );
        healthz.sort();
        statics.sort();
        let row = |name: &str, v: &[Duration], goal: Option<Duration>| {
            let (p50, p99) = (pct(v, 0.5), pct(v, 0.99));
            println!(
                "  {name:<44} p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  max {:>7.2} ms{}",
                pct(v, 1.0),
                goal.map_or(String::new(), |g| format!(
                    "  (goal ≤ {} ms: {})",
                    g.as_millis(),
                    verdict(p99, g)
                ))
            );
        };
        row("GET /healthz (baseline: HTTP stack only)", &healthz, None);
        row("page + assets only (baseline: no API)", &statics, None);
        for (i, mut v) in times {
            v.sort();
            let page = &pages[i];
            let requests: usize = page.steps.iter().map(Vec::len).sum();
            row(
                &format!("{} ({}, {requests} API)", page.name, page.url),
                &v,
                Some(RENDER_GOAL),
            );
        }
    });
}

/// Reads the live stream and sends each `run` event's (id, state) with the moment it arrived.
async fn read_events(mut res: reqwest::Response, tx: mpsc::UnboundedSender<(i64, String, Instant)>) {
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = res.chunk().await {
        let arrived = Instant::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut event = "message";
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = if v.trim() == "run" { "run" } else { "other" };
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if event != "run" {
                continue;
            }
            let run: serde_json::Value = serde_json::from_str(&data).unwrap();
            let id = run["id"].as_i64().unwrap();
            let state = run["state"].as_str().unwrap().to_string();
            if tx.send((id, state, arrived)).is_err() {
                return;
            }
        }
    }
}

/// Waits for the event saying run `id` is in `state` (in any state: `None`); when it arrived.
async fn arrival(rx: &mut mpsc::UnboundedReceiver<(i64, String, Instant)>, id: i64, state: Option<&str>) -> Instant {
    let wait = async {
        loop {
            let (got, s, at) = rx.recv().await.expect("the stream ended");
            if got == id && state.is_none_or(|state| s == state) {
                return at;
            }
        }
    };
    tokio::time::timeout(STATUS_TIMEOUT, wait)
        .await
        .unwrap_or_else(|_| panic!("run {id} never arrived as {state:?}"))
}

/// Changes run `id`'s state as the engine does, on the server's runtime (where the engine runs in
/// `serve`): claims it (`running`) or completes it (`succeeded`). When the write started and when
/// it had committed.
async fn change(server: &tokio::runtime::Handle, store: &Store, id: i64, claim: bool) -> (Instant, Instant) {
    let store = store.clone();
    let node = "bench-node";
    server
        .spawn(async move {
            let t0 = Instant::now();
            if claim {
                let claimed = store.claim(node, 1, Duration::from_secs(60)).await.unwrap();
                assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), [id]);
            } else {
                let finished = Finished {
                    id,
                    output: r#"{"title":"Live draft"}"#.into(),
                    logs: None,
                    fuel: FUEL_PER_RUN,
                };
                assert_eq!(store.complete_many(node, &[finished]).await.unwrap(), [true]);
            }
            (t0, Instant::now())
        })
        .await
        .unwrap()
}

fn measure_status(
    backend: &str,
    rt: &tokio::runtime::Runtime,
    server: &tokio::runtime::Handle,
    addr: SocketAddr,
    key: &str,
    store: &Store,
) {
    rt.block_on(async {
        let client = reqwest::Client::new();
        let browser = Browser::sign_in(&client, addr, key).await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_events(browser.stream().await, tx));
        let (mut delays, mut writes) = (Vec::new(), Vec::new());
        for i in 0..STATUS_RUNS {
            let enqueue = {
                let store = store.clone();
                server.spawn(async move { store.enqueue(&[fill::job("daily", "writer")]).await.unwrap()[0].id() })
            };
            let id = enqueue.await.unwrap();
            // The stream follows runs created after it opened: wait until it has seen this one.
            arrival(&mut rx, id, None).await;
            for (k, (claim, state)) in [(true, "running"), (false, "succeeded")].into_iter().enumerate() {
                let k = (2 * i + k) as u32;
                tokio::time::sleep(STATUS_SPREAD * (k * 37 % 50) / 50).await;
                let (t0, committed) = change(server, store, id, claim).await;
                writes.push(committed - t0);
                let at = arrival(&mut rx, id, Some(state)).await;
                delays.push(at.saturating_duration_since(committed));
            }
        }
        reader.abort();
        delays.sort();
        writes.sort();
        let (p50, p99) = (pct(&delays, 0.5), pct(&delays, 0.99));
        println!(
            "{backend}: run status to the browser over the live stream, {} changes (claim → running, complete → succeeded), stream polls every {LIVE_POLL_MS} ms",
            delays.len()
        );
        println!(
            "  {:<44} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
            "store write (baseline: the change itself)",
            pct(&writes, 0.5),
            pct(&writes, 0.99),
            pct(&writes, 1.0)
        );
        println!(
            "  {:<44} p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  max {:>7.2} ms  (goal ≤ {} ms: {})",
            "commit → event at the client",
            pct(&delays, 1.0),
            STATUS_GOAL.as_millis(),
            verdict(p99, STATUS_GOAL)
        );
    });
}

fn measure(backend: &str, make_db: fill::MakeDb) {
    let runs = env_or("MC_BENCH_RUNS", DEFAULT_RUNS);
    // The server gets its own runtime and threads, as in `missionctl serve`; the browser its own
    // thread (the main one).
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (db, addr, keys, run) = server_rt.block_on(async {
        let db = make_db().await;
        let t = Instant::now();
        let run = fill_tenant(&db.store, runs).await;
        eprintln!(
            "{backend}: {runs} runs and the rest written in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let member = fill::key(&db.store, Role::Admin).await;
        let operator = fill::key(&db.store, Role::Operator).await;
        let mut state = AppState::new(db.store.clone());
        state.template_dir = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates"));
        let addr = fill::serve(state).await;
        (db, addr, (member, operator), run)
    });
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("{backend}: {runs} runs in the tenant");
    measure_pages(backend, &client_rt, addr, (&keys.0, &keys.1), run);
    measure_status(backend, &client_rt, server_rt.handle(), addr, &keys.0, &db.store);
    server_rt.block_on(db.finish());
}

fn main() {
    fill::each_backend(measure);
}
