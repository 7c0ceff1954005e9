//! `missionctl`: the Mission Control command line. Parsing and dispatch only; each command lives in
//! its own module.

mod billing;
mod brand;
mod client;
mod cron;
mod exit;
mod manage;
mod plugin;
mod run;
mod serve;
mod template;

use clap::{Parser, Subcommand};

/// mimalloc rather than glibc's malloc: a node allocates and frees for every run (its sandbox, its
/// request, its rows), and glibc's allocator was about a seventh of the CPU of the queue's path
/// (BENCHMARKS.md, queue throughput).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Mission Control runs AI agent teams for many client businesses: on a schedule, under
/// supervision, within budget.
#[derive(Debug, Parser)]
#[command(name = "missionctl", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter for the host's own diagnostics (e.g. `info`, `mc_runtime=debug`).
    #[arg(long, global = true, env = "MISSIONCTL_LOG", default_value = "warn")]
    log: String,
    /// How diagnostics are written: `text` for people, `json` (one object per line, with the
    /// run's tenant, automation, agent and id on everything logged while it runs) for log
    /// collectors.
    #[arg(
        long = "log-format",
        global = true,
        env = "MISSIONCTL_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    /// Export traces (a span per run, per AI call, per request) by OpenTelemetry's OTLP/HTTP
    /// (JSON) to this collector, e.g. `http://127.0.0.1:4318`; off when unset.
    #[arg(long = "otlp-endpoint", global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// Headers sent with each export, `name=value,name=value` (a collector's API key).
    #[arg(
        long = "otlp-headers",
        global = true,
        env = "OTEL_EXPORTER_OTLP_HEADERS",
        hide_env_values = true
    )]
    otlp_headers: Option<String>,
    /// The `service.name` the traces carry.
    #[arg(
        long = "otlp-service-name",
        global = true,
        env = "OTEL_SERVICE_NAME",
        default_value = "missionctl"
    )]
    otlp_service_name: String,
}

/// What traces are exported at: the run and request spans, not every debug detail.
const OTLP_LEVEL: &str = "info";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one plugin once, sandboxed, and print its output and what it consumed.
    Run(run::RunArgs),
    /// Work with cron expressions: `cron next` prints the next fire times of one.
    Cron(cron::CronArgs),
    /// Create or update a tenant's agents and automations from a YAML file, printing what changed.
    Apply(manage::ApplyArgs),
    /// List tenants, or a tenant's agents, automations (with their next run) or runs.
    Get(manage::GetArgs),
    /// Enqueue a run of an automation now (a running `serve` picks it up).
    RunNow(manage::RunNowArgs),
    /// Issue, list and revoke API keys.
    Key(manage::KeyArgs),
    /// Print the signing secret of a webhook automation (created the first time).
    WebhookSecret(manage::WebhookSecretArgs),
    /// A tenant's AI and fuel usage for a month, by agent, automation, model or day.
    Usage(billing::UsageArgs),
    /// Revenue, AI and fuel cost, and margin per tenant for a month (operators).
    Report(billing::ReportArgs),
    /// Show or publish the price book.
    Prices(billing::PricesArgs),
    /// Change a tenant's plan (operators).
    Plan(billing::PlanArgs),
    /// Plugin versions the monitor quarantined, and lifting a quarantine (operators).
    Plugin(plugin::PluginArgs),
    /// The template gallery: list, show, and install a vertical's team into a tenant.
    Template(template::TemplateArgs),
    /// White-label brands: a partner's name, logo and colours, and which tenants are its.
    Brand(brand::BrandArgs),
    /// Run this node: scheduler, workers and the HTTP endpoint (webhooks, /healthz, /readyz), until
    /// stopped with Ctrl-C or SIGTERM.
    Serve(Box<serve::ServeArgs>),
}

/// The OTLP exporter's settings from the command line, if export is on.
fn otlp_config(cli: &Cli) -> Result<Option<mc_telemetry::OtlpConfig>, String> {
    let Some(endpoint) = &cli.otlp_endpoint else {
        return Ok(None);
    };
    let mut config = mc_telemetry::OtlpConfig::new(endpoint.clone(), cli.otlp_service_name.clone());
    for pair in cli
        .otlp_headers
        .iter()
        .flat_map(|h| h.split(','))
        .filter(|p| !p.trim().is_empty())
    {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--otlp-headers: `{pair}` is not name=value"))?;
        config.headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    config.validate().map_err(|e| format!("--otlp-endpoint: {e}"))?;
    Ok(Some(config))
}

fn main() -> std::process::ExitCode {
    use tracing_subscriber::prelude::*;
    // SAFETY: no other thread exists yet.
    #[allow(unsafe_code)]
    unsafe {
        mc_runtime::quiet_library_backtraces()
    };
    let cli = Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let logs = match cli.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_writer(std::io::stderr).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    }
    .with_filter(filter);
    // Each layer has its own filter: the log's level (warn by default) must not hide the run
    // spans from the trace export.
    let (otlp, exporter) = match otlp_config(&cli).and_then(|c| c.map(mc_telemetry::layer).transpose()) {
        Ok(Some((layer, exporter))) => (
            Some(layer.with_filter(tracing_subscriber::EnvFilter::new(OTLP_LEVEL))),
            Some(exporter),
        ),
        Ok(None) => (None, None),
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE.into();
        }
    };
    tracing_subscriber::registry().with(logs).with(otlp).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::HOST.into();
        }
    };
    let (stop_export, export_stopped) = tokio::sync::oneshot::channel::<()>();
    let exporting = exporter.map(|e| {
        runtime.spawn(e.run(async move {
            let _ = export_stopped.await;
        }))
    });
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Cron(args) => cron::run(args),
            Command::Apply(args) => manage::apply(args).await,
            Command::Get(args) => manage::get(args).await,
            Command::RunNow(args) => manage::run_now(args).await,
            Command::Key(args) => manage::key(args).await,
            Command::WebhookSecret(args) => manage::webhook_secret(args).await,
            Command::Serve(args) => serve::serve(*args).await,
            Command::Usage(args) => billing::usage(args).await,
            Command::Report(args) => billing::report(args).await,
            Command::Prices(args) => billing::prices(args).await,
            Command::Template(args) => template::template(args).await,
            Command::Brand(args) => brand::brand(args).await,
            Command::Plan(args) => billing::plan(args).await,
            Command::Plugin(args) => plugin::plugin(args).await,
        }
    });
    // Spans of the last moments (a run that ended at shutdown) still reach the collector.
    let _ = stop_export.send(());
    if let Some(exporting) = exporting {
        let _ = runtime.block_on(exporting);
    }
    code.into()
}
