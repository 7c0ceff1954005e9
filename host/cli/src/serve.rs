//! `missionctl serve`: runs this node's engine (scheduler, workers, lease keeper) and its HTTP
//! server (API, webhooks, health) against the store until Ctrl-C or SIGTERM, then shuts down
//! gracefully: no new claims, running jobs get a grace period, the rest go back to the queue for
//! other nodes. At the first start of a deployment it issues the first operator key and prints
//! it once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use mc_engine::{Engine, EngineConfig};
use mc_runtime::{Runtime, RuntimeConfig};

use crate::exit;
use crate::manage::StoreArgs;

/// Most jobs one node runs at once. A slot costs a task and, while its run executes, a pooled
/// plugin instance (address space reserved, memory only as touched); short runs need many slots
/// to keep both the cores and the database busy (the queue benchmark runs 1,000).
const MAX_WORKERS: usize = 1_024;
/// Longest lease accepted: a dead node's work waits this long before another node takes it.
const MAX_LEASE_SECS: u64 = 3_600;

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Where plugins are found by name.
    #[arg(long, env = "MISSIONCTL_PLUGIN_DIR")]
    plugin_dir: Option<PathBuf>,
    /// Where templates are (default: `templates/` here or in the source tree).
    #[arg(long, env = "MISSIONCTL_TEMPLATE_DIR")]
    template_dir: Option<PathBuf>,
    /// Serve the dashboard from this directory instead of the copy built in (for working on
    /// the dashboard: edits show on reload).
    #[arg(long, env = "MISSIONCTL_UI_DIR", hide = true)]
    ui_dir: Option<PathBuf>,
    /// Start with a demo tenant (`demo`) that has the marketing-agency template installed and a
    /// campaign under way, on the AI provider configured (offline unless keys are given).
    #[arg(long)]
    demo: bool,
    /// Where compiled plugins are cached (default: `cache/` in the data directory).
    #[arg(long, env = "MISSIONCTL_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// This node's id, recorded on the jobs it claims (default: host name and process id).
    #[arg(long, env = "MISSIONCTL_NODE_ID")]
    node_id: Option<String>,
    /// Address of the HTTP endpoint (webhooks, /healthz, /readyz).
    #[arg(long, env = "MISSIONCTL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Jobs this node runs at once.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Most jobs of one tenant running at once across all nodes (default: no limit). A run
    /// waiting for the tasks it delegated does not count while it waits.
    #[arg(long = "tenant-max-running")]
    tenant_max_running: Option<usize>,
    /// Seconds a claim stays valid without a heartbeat: a dead node's jobs return to the queue
    /// after it (and at most a second more). Nodes renew their claims every third of it; 8 keeps a
    /// dead node's jobs requeued within the monitor's 10 s while a database pause of a few seconds
    /// loses no claim.
    #[arg(long = "lease-secs", default_value_t = 8)]
    lease_secs: u64,
    /// Seconds running jobs may take to finish after a shutdown request.
    #[arg(long = "grace-secs", default_value_t = 10)]
    grace_secs: u64,
    /// API requests per second allowed per key (bursts of twice as many).
    #[arg(long = "rate-limit", env = "MISSIONCTL_RATE_LIMIT", default_value_t = 50.0)]
    rate_limit: f64,
    /// A host pattern naming a private or loopback IP literal (a test server on this machine)
    /// that agents may be granted; repeatable. Any other such grant fails its runs.
    #[arg(long = "allow-test-host", env = "MISSIONCTL_TEST_HOSTS", value_delimiter = ',')]
    test_hosts: Vec<String>,
    /// Where incidents the monitor cannot fix by itself are escalated: a URL that receives
    /// `incident.opened` events, signed per Standard Webhooks (vetted like any outbound request:
    /// a private or loopback address only as an --allow-test-host).
    #[arg(
        long = "escalation-url",
        env = "MISSIONCTL_ESCALATION_URL",
        requires = "escalation_secret"
    )]
    escalation_url: Option<String>,
    /// The `whsec_…` key escalations are signed with; the receiver verifies with the same key.
    #[arg(
        long = "escalation-secret",
        env = "MISSIONCTL_ESCALATION_SECRET",
        hide_env_values = true,
        requires = "escalation_url"
    )]
    escalation_secret: Option<String>,
    /// An operator's address that also receives incidents the monitor cannot fix by itself, by
    /// email through --smtp-url.
    #[arg(
        long = "escalation-email",
        env = "MISSIONCTL_ESCALATION_EMAIL",
        requires = "smtp_url"
    )]
    escalation_email: Option<String>,
    /// The mail relay for incident emails (the operator's and tenants' contacts):
    /// `smtps://user:password@host[:465]` (TLS), `smtp://user:password@host[:587]` (STARTTLS
    /// required), or `smtp://host:port?tls=none` for a relay on this machine.
    #[arg(
        long = "smtp-url",
        env = "MISSIONCTL_SMTP_URL",
        hide_env_values = true,
        requires = "smtp_from"
    )]
    smtp_url: Option<String>,
    /// The sender address of incident emails.
    #[arg(long = "smtp-from", env = "MISSIONCTL_SMTP_FROM", requires = "smtp_url")]
    smtp_from: Option<String>,
    #[command(flatten)]
    ai: AiArgs,
}

/// The AI providers this deployment calls. A tenant may use its own key instead of the
/// deployment's by storing it as the secret `anthropic-api-key` / `openai-api-key`.
#[derive(Debug, Args)]
pub struct AiArgs {
    /// Base URL of the Anthropic Messages API.
    #[arg(long = "anthropic-base-url", env = "ANTHROPIC_BASE_URL", default_value = ANTHROPIC_URL)]
    anthropic_base_url: String,
    /// The deployment's Anthropic key.
    #[arg(long = "anthropic-api-key", env = "ANTHROPIC_API_KEY", hide_env_values = true)]
    anthropic_api_key: Option<String>,
    /// Base URL of an OpenAI-compatible chat completions API (OpenAI, Ollama at
    /// http://localhost:11434, vLLM).
    #[arg(long = "openai-base-url", env = "OPENAI_BASE_URL", default_value = OPENAI_URL)]
    openai_base_url: String,
    /// The deployment's OpenAI key (not needed by a local Ollama).
    #[arg(long = "openai-api-key", env = "OPENAI_API_KEY", hide_env_values = true)]
    openai_api_key: Option<String>,
    /// Seconds one AI call attempt may take (for a streamed call: between two pieces of text).
    #[arg(long = "ai-timeout-secs", default_value_t = 120)]
    ai_timeout_secs: u64,
    /// Retries of an AI call that failed in a way waiting can fix (429, 5xx, 529, timeouts).
    #[arg(long = "ai-retries", default_value_t = 2)]
    ai_retries: u32,
}

const ANTHROPIC_URL: &str = "https://api.anthropic.com";
const OPENAI_URL: &str = "https://api.openai.com";
/// Most retries accepted: each waits up to 8 s, and a run waits for its calls.
const MAX_AI_RETRIES: u32 = 10;
/// Longest call timeout accepted.
const MAX_AI_TIMEOUT_SECS: u64 = 3_600;

impl AiArgs {
    /// The gateway configuration these flags describe, or what is wrong with them.
    pub fn gateway_config(&self, sealer: Option<mc_store::Sealer>) -> Result<mc_gateway::GatewayConfig, String> {
        if self.ai_retries > MAX_AI_RETRIES {
            return Err(format!(
                "--ai-retries must be at most {MAX_AI_RETRIES}, got {}",
                self.ai_retries
            ));
        }
        if self.ai_timeout_secs == 0 || self.ai_timeout_secs > MAX_AI_TIMEOUT_SECS {
            return Err(format!(
                "--ai-timeout-secs must be between 1 and {MAX_AI_TIMEOUT_SECS}, got {}",
                self.ai_timeout_secs
            ));
        }
        for (flag, url) in [
            ("--anthropic-base-url", &self.anthropic_base_url),
            ("--openai-base-url", &self.openai_base_url),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!("{flag} must be an http(s) URL, got `{url}`"));
            }
        }
        let endpoint =
            |name: &str, kind, url: &str, key: &Option<String>, default: &str, hint: &str| mc_gateway::Endpoint {
                name: name.into(),
                kind,
                base_url: url.trim_end_matches('/').into(),
                api_key: key.clone().filter(|k| !k.is_empty()),
                // The hosted APIs refuse a call without a key; a local compatible server may not need one.
                key_required: url.trim_end_matches('/') == default,
                key_hint: hint.into(),
            };
        Ok(mc_gateway::GatewayConfig {
            endpoints: vec![
                endpoint(
                    "anthropic",
                    mc_gateway::ProviderKind::Anthropic,
                    &self.anthropic_base_url,
                    &self.anthropic_api_key,
                    ANTHROPIC_URL,
                    "ANTHROPIC_API_KEY",
                ),
                endpoint(
                    "openai",
                    mc_gateway::ProviderKind::OpenAi,
                    &self.openai_base_url,
                    &self.openai_api_key,
                    OPENAI_URL,
                    "OPENAI_API_KEY",
                ),
            ],
            retry: mc_ai::RetryPolicy {
                max_retries: self.ai_retries,
                call_timeout: Duration::from_secs(self.ai_timeout_secs),
                ..Default::default()
            },
            breaker: Default::default(),
            sealer,
        })
    }
}

/// Most requests per second a key may be allowed: beyond it the limit is no limit.
const MAX_RATE_LIMIT: f64 = 1_000_000.0;

/// Issues the deployment's first operator key when no operator key exists, printing it once.
async fn first_operator_key(store: &mc_store::Store) -> Result<(), mc_store::AccessError> {
    if store.has_operator_key().await? {
        return Ok(());
    }
    let (row, key) = store
        .create_key(
            &mc_store::Principal::local(),
            mc_store::NewKey {
                role: mc_store::Role::Operator,
                tenant: None,
                partner: None,
                label: "first operator key".into(),
                expires_at: None,
            },
        )
        .await?;
    eprintln!(
        "missionctl serve: first start: operator key {} issued. Store it now, it is not shown again:\n{key}",
        row.id
    );
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The demo tenant: the marketing agency's team for a garden shop, on the Growth plan, with a
/// campaign started so the team is at work within a minute. Installing again on a later start
/// upgrades it in place and starts nothing twice (the campaign has an idempotency key).
///
/// Returns a fresh admin key of the demo tenant for the dashboard link; it expires with
/// [`DEMO_KEY_LIFETIME_MICROS`], so the links printed by earlier starts stop working by themselves.
async fn demo(store: &mc_store::Store, template_dir: Option<&std::path::Path>) -> Result<String, String> {
    const TENANT: &str = "demo";
    let local = mc_store::Principal::local();
    let dir = crate::run::template_dir(template_dir).ok_or("no templates directory (pass --template-dir)")?;
    let template = mc_config::Template::load(&dir, "marketing-agency").map_err(|e| e.to_string())?;
    let params = [
        ("company", "Demo Garden Supplies"),
        ("topic", "What to plant now, and the tools for it"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let team = template.render(&params).map_err(|e| e.to_string())?;
    let scope = store.tenant(TENANT);
    let mut config = match scope.config().await.map_err(|e| e.to_string())? {
        Some((c, _)) => c,
        None => {
            let first = mc_config::parse(
                "tenant: demo\nname: Demo Garden Supplies\n",
                &mc_config::Known::default(),
            )
            .map_err(|e| e.to_string())?;
            store.apply(&first).await.map_err(|e| e.to_string())?;
            scope
                .config()
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the demo tenant vanished")?
                .0
        }
    };
    if scope
        .get()
        .await
        .map_err(|e| e.to_string())?
        .is_some_and(|t| t.plan == "starter")
    {
        store
            .set_plan(&local, TENANT, mc_store::Plan::Growth)
            .await
            .map_err(|e| e.to_string())?;
    }
    team.merge_into(&mut config);
    let validated = mc_config::validate(config, &mc_config::Known::default(), &mc_config::Positions::default())
        .map_err(|e| e.to_string())?;
    store.apply(&validated).await.map_err(|e| e.to_string())?;
    // A month of weekly numbers for the analyst, so its report has something to say.
    let history = scope
        .registry_rows("kpi-history", &[], None, 1)
        .await
        .map_err(|e| e.to_string())?;
    if history.is_empty() {
        let weeks = ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"];
        let series = [
            ("visits", [1200.0, 1350.0, 1280.0, 1710.0]),
            ("orders", [41.0, 44.0, 39.0, 58.0]),
        ];
        for (metric, values) in series {
            for (week, value) in weeks.iter().zip(values) {
                scope
                    .registry_insert(
                        "kpi-history",
                        &serde_json::json!({ "week": week, "metric": metric, "value": value }),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    let job = mc_store::NewJob {
        tenant: TENANT.into(),
        automation: Some("new-campaign".into()),
        agent: "director".into(),
        plugin: "director".into(),
        input: serde_json::json!({ "campaign": "Spring sale on garden tools", "channels": ["blog", "social", "email", "report"] })
            .to_string(),
        trigger: "manual".into(),
        priority: 0,
        max_attempts: mc_engine::DEFAULT_MAX_ATTEMPTS,
        run_at: None,
        idempotency_key: Some("demo-first-campaign".into()),
    };
    store.enqueue(&[job]).await.map_err(|e| e.to_string())?;
    let (_, key) = store
        .create_key(
            &local,
            mc_store::NewKey {
                role: mc_store::Role::Admin,
                tenant: Some(TENANT.into()),
                partner: None,
                label: "demo dashboard".into(),
                expires_at: Some(mc_store::now_micros() + DEMO_KEY_LIFETIME_MICROS),
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    eprintln!(
        "missionctl serve: demo tenant `demo` ready — the marketing-agency team is installed and its director is running a campaign"
    );
    Ok(key)
}

/// How long the demo's dashboard key works: a day of trying things out.
const DEMO_KEY_LIFETIME_MICROS: i64 = 24 * 3_600 * 1_000_000;

/// Opens `url` in the desktop's browser when there is a desktop to open it on; says nothing
/// when there is none (the link is printed anyway).
fn open_browser(url: &str) {
    let desktop = std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    if desktop || cfg!(target_os = "macos") {
        let _ = std::process::Command::new(opener)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}

pub async fn serve(args: ServeArgs) -> u8 {
    if args.workers == 0 || args.workers > MAX_WORKERS {
        eprintln!(
            "error: --workers must be between 1 and {MAX_WORKERS}, got {}",
            args.workers
        );
        return exit::USAGE;
    }
    if let Some(url) = &args.escalation_url
        && let Err(e) = mc_config::webhook_origin(url)
    {
        eprintln!("error: --escalation-url: {e}");
        return exit::USAGE;
    }
    if let Some(secret) = &args.escalation_secret
        && let Err(e) = mc_outbox::sign(secret, "msg_check", 0, b"")
    {
        eprintln!("error: --escalation-secret: {e}");
        return exit::USAGE;
    }
    if let Some(address) = &args.escalation_email
        && let Err(e) = mc_config::valid_email(address)
    {
        eprintln!("error: --escalation-email: {e}");
        return exit::USAGE;
    }
    let smtp = match (&args.smtp_url, &args.smtp_from) {
        (Some(url), Some(from)) => match mc_outbox::smtp::SmtpConfig::parse(url, from) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("error: --smtp-url: {e}");
                return exit::USAGE;
            }
        },
        _ => None,
    };
    let plugin_dir = match crate::run::plugin_dirs(args.plugin_dir.as_deref())
        .into_iter()
        .find(|d| d.is_dir())
    {
        Some(d) => d,
        None => {
            eprintln!("error: no plugin directory found: build the plugins with `make plugins` or pass --plugin-dir");
            return exit::USAGE;
        }
    };
    let store = match args.store.open().await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let demo_key = if args.demo {
        match demo(&store, args.template_dir.as_deref()).await {
            Ok(key) => Some(key),
            Err(e) => {
                eprintln!("error: the demo tenant could not be set up: {e}");
                return exit::HOST;
            }
        }
    } else {
        None
    };
    let runtime = match Runtime::new(RuntimeConfig {
        cache_dir: Some(
            args.cache_dir
                .clone()
                .unwrap_or_else(|| args.store.data_dir().join("cache")),
        ),
        max_instances: (args.workers as u32).max(4) * 2,
        ..RuntimeConfig::default()
    }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the plugin runtime: {e:#}");
            return exit::HOST;
        }
    };
    let node_id = args.node_id.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "node".into());
        format!("{host}-{}", std::process::id())
    });
    let mut config = EngineConfig::new(node_id.clone(), plugin_dir);
    config.workers = args.workers;
    config.grace = Duration::from_secs(args.grace_secs);
    if !(1..=MAX_LEASE_SECS).contains(&args.lease_secs) {
        eprintln!(
            "error: --lease-secs must be between 1 and {MAX_LEASE_SECS}, got {}",
            args.lease_secs
        );
        return exit::USAGE;
    }
    config.lease = Duration::from_secs(args.lease_secs);
    if args.tenant_max_running == Some(0) {
        eprintln!("error: --tenant-max-running must be at least 1");
        return exit::USAGE;
    }
    config.tenant_max_running = args.tenant_max_running;
    if !(args.rate_limit > 0.0 && args.rate_limit <= MAX_RATE_LIMIT) {
        eprintln!(
            "error: --rate-limit must be above 0 and at most {MAX_RATE_LIMIT}, got {}",
            args.rate_limit
        );
        return exit::USAGE;
    }
    for pattern in &args.test_hosts {
        match mc_egress::HostPattern::parse(pattern) {
            Ok(p) if p.forbidden_literal().is_some() => {}
            Ok(_) => {
                eprintln!(
                    "error: --allow-test-host {pattern}: only private or loopback IP literals need allowing; grant other hosts in the agent's configuration"
                );
                return exit::USAGE;
            }
            Err(e) => {
                eprintln!("error: --allow-test-host: {e}");
                return exit::USAGE;
            }
        }
    }
    let sealer = match args.store.sealer() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    config.sealer = Some(sealer.clone());
    config.test_hosts = args.test_hosts.clone();
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return exit::USAGE;
        }
    };
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    if let Err(e) = first_operator_key(&store).await {
        eprintln!("error: cannot issue the first operator key: {e}");
        return exit::HOST;
    }
    let gateway_config = match args.ai.gateway_config(Some(sealer.clone())) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let gateway = match mc_gateway::Gateway::open(store.clone(), gateway_config).await {
        Ok(g) => Arc::new(g),
        Err(e) => {
            eprintln!("error: {e}");
            return exit::HOST;
        }
    };
    let mut state = mc_server::AppState::new(store.clone());
    state.sealer = Some(sealer);
    state.gateway = Some(gateway.clone());
    state.plugin_dir = Some(config.plugin_dir.clone());
    state.template_dir = crate::run::template_dir(args.template_dir.as_deref());
    state.ui_dir = args.ui_dir.clone();
    state.limiter = Arc::new(mc_server::RateLimiter::new(mc_server::RateLimit {
        per_second: args.rate_limit,
        burst: args.rate_limit * 2.0,
    }));
    // Approved output and escalations of incidents posted to webhooks, beside the engine.
    let outbox = mc_outbox::Outbox::new(
        store.clone(),
        mc_outbox::OutboxConfig {
            sealer: config.sealer.clone(),
            escalation_secret: args.escalation_secret.clone(),
            test_hosts: config.test_hosts.clone(),
            smtp,
            ..mc_outbox::OutboxConfig::default()
        },
    );
    let (stop_outbox, outbox_stopped) = tokio::sync::oneshot::channel::<()>();
    let outbox = tokio::spawn(async move {
        outbox
            .run(async move {
                let _ = outbox_stopped.await;
            })
            .await
    });
    // The self-healing monitor: this node's heartbeat, and the health cycle while this node holds
    // the cluster's monitor lease.
    let mut monitor_config = mc_monitor::MonitorConfig::new(node_id.clone());
    monitor_config.data_dir = Some(args.store.data_dir().to_path_buf());
    monitor_config.escalate_to = args
        .escalation_url
        .iter()
        .map(|u| mc_store::Destination::operator_webhook(u))
        .chain(args.escalation_email.iter().map(|e| mc_store::Destination::email(e)))
        .collect();
    let breakers = gateway.clone();
    monitor_config.providers = Some(Arc::new(move || {
        breakers.breakers().into_iter().map(|b| (b.provider, b.state)).collect()
    }));
    let prices = gateway.clone();
    monitor_config.model_provider = Some(Arc::new(move |model: &str| prices.provider_of(model)));
    let monitor = mc_monitor::Monitor::new(store.clone(), monitor_config);
    let (stop_monitor, monitor_stopped) = tokio::sync::oneshot::channel::<()>();
    let monitor = tokio::spawn(monitor.run(async move {
        let _ = monitor_stopped.await;
    }));
    let engine = Arc::new(Engine::new(store, runtime, config, gateway));
    // One shutdown signal for both halves: the server stops accepting when the engine begins its
    // graceful stop.
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(mc_server::serve(listener, state, async move {
        let _ = http_stopped.await;
    }));
    eprintln!(
        "missionctl serve: node {node_id} running ({} workers), listening on http://{address}; Ctrl-C or SIGTERM to stop",
        args.workers
    );
    match demo_key {
        Some(key) => {
            // The key rides in the fragment, which the browser never sends to a server or a log;
            // the page trades it for a session and removes it from the address bar.
            let url = format!("http://{address}/app/#key={key}");
            eprintln!("missionctl serve: dashboard (signed in as the demo tenant): {url}");
            open_browser(&url);
        }
        None => eprintln!("missionctl serve: dashboard: http://{address}/app/ (sign in with an API key)"),
    }
    let ran = engine
        .run(async move {
            shutdown_signal().await;
            let _ = stop_http.send(());
        })
        .await;
    let _ = http.await;
    let _ = stop_outbox.send(());
    let _ = outbox.await;
    let _ = stop_monitor.send(());
    let _ = monitor.await;
    match ran {
        Ok(()) => {
            eprintln!("missionctl serve: node {node_id} stopped");
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::HOST
        }
    }
}
