//! `missionctl apply` and `missionctl get`: tenant configuration against a local store (the SQLite
//! file in the data directory, or the database named by `--database-url`).

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use mc_config::{Known, Trigger};
use mc_store::{ChangeKind, Store};

use crate::exit;

/// File name of the embedded database inside the data directory.
const DB_FILE: &str = "missionctl.db";

/// Where the store is.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Database URL: `sqlite:PATH` or `postgres://USER@HOST/DB`. Default: SQLite in the data directory.
    #[arg(long, env = "DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// The data directory (the embedded database lives here).
    #[arg(long, env = "MISSIONCTL_DATA_DIR", default_value = "data", global = true)]
    data_dir: PathBuf,
}

impl StoreArgs {
    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// Opens the store, printing one error line on failure.
    pub async fn open(&self) -> Result<Store, u8> {
        let result = match &self.database_url {
            Some(url) => Store::open(url).await,
            None => {
                if let Err(e) = std::fs::create_dir_all(&self.data_dir) {
                    eprintln!(
                        "error: cannot create the data directory {}: {e}",
                        self.data_dir.display()
                    );
                    return Err(exit::USAGE);
                }
                Store::open_sqlite(&self.data_dir.join(DB_FILE)).await
            }
        };
        result.map_err(|e| {
            eprintln!("error: {e}");
            exit::HOST
        })
    }
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The tenant configuration file (YAML).
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Print the changes as JSON.
    #[arg(long)]
    json: bool,
    /// Where plugins are looked up, to refuse agents whose plugin does not exist.
    #[arg(long, env = "MISSIONCTL_PLUGIN_DIR")]
    plugin_dir: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
}

/// Names of the plugins in the first plugin directory that exists, if any does.
fn known_plugins(explicit: Option<&std::path::Path>) -> Option<BTreeSet<String>> {
    let dir = crate::run::plugin_dirs(explicit).into_iter().find(|d| d.is_dir())?;
    let names = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".wasm").map(|n| n.replace('_', "-"))
        })
        .collect();
    Some(names)
}

pub async fn apply(args: ApplyArgs) -> u8 {
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.file.display());
            return exit::USAGE;
        }
    };
    let known = Known {
        plugins: known_plugins(args.plugin_dir.as_deref()),
    };
    let config = match mc_config::parse(&text, &known) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}: {e}", args.file.display());
            return exit::USAGE;
        }
    };
    let store = match args.store.open().await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let report = match store.apply(&config).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: nothing was applied: {e}");
            return exit::HOST;
        }
    };
    if args.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
        return exit::OK;
    }
    for c in &report.changes {
        let detail = if c.fields.is_empty() {
            String::new()
        } else {
            format!(" ({})", c.fields.join(", "))
        };
        let kind = match c.kind {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Deleted => "deleted",
            ChangeKind::Unchanged => "unchanged",
        };
        println!("{} {}: {kind}{detail}", c.object, c.name);
    }
    let count = |k: ChangeKind| report.changes.iter().filter(|c| c.kind == k).count();
    println!(
        "applied {}: {} created, {} updated, {} deleted, {} unchanged",
        report.tenant,
        count(ChangeKind::Created),
        count(ChangeKind::Updated),
        count(ChangeKind::Deleted),
        count(ChangeKind::Unchanged)
    );
    exit::OK
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Tenants,
    Agents,
    Automations,
    Runs,
}

/// Most runs `get runs` lists (newest first).
const RUNS_LISTED: i64 = 50;

#[derive(Debug, Args)]
pub struct GetArgs {
    /// What to list.
    kind: Kind,
    /// The tenant (required for agents and automations).
    #[arg(long)]
    tenant: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// Prints rows as a table with aligned columns.
fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_uppercase()).collect());
    for r in rows {
        line(r);
    }
}

/// The trigger in a few words, and its next fire time when it has one. `mark` is the last tick
/// the engine handled (interval schedules count from it).
pub fn describe_trigger(t: &Trigger, mark: Option<i64>, now: jiff::Timestamp) -> (String, String) {
    match t {
        Trigger::Cron { expr, timezone } => {
            let next = mc_schedule::CronSchedule::parse(expr)
                .ok()
                .zip(mc_schedule::parse_timezone(timezone).ok())
                .and_then(|(s, tz)| {
                    s.next_after(now, &tz)
                        .map(|ts| ts.to_zoned_datetime(tz).strftime("%Y-%m-%d %H:%M %Z").to_string())
                });
            (
                format!("cron \"{expr}\" {timezone}"),
                next.unwrap_or_else(|| "never".into()),
            )
        }
        Trigger::Interval { seconds } => {
            let next = mark
                .map(|m| {
                    let step = (*seconds as i64).max(1) * 1_000_000;
                    let behind = (now.as_microsecond() - m).max(0) / step;
                    m + (behind + 1) * step
                })
                .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
                .map(|ts| ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|| "when a node first runs it".into());
            (format!("every {seconds}s"), next)
        }
        Trigger::At { time } => {
            let next = match time.parse::<jiff::Timestamp>() {
                Ok(ts) if ts > now => time.clone(),
                _ => "past".into(),
            };
            (format!("at {time}"), next)
        }
        Trigger::Webhook => ("webhook".into(), "on delivery".into()),
        Trigger::After { automation } => (format!("after {automation}"), "on completion".into()),
        Trigger::Manual => ("manual".into(), "on request".into()),
    }
}

fn fail(e: impl std::fmt::Display) -> u8 {
    eprintln!("error: {e}");
    exit::HOST
}

pub async fn get(args: GetArgs) -> u8 {
    if args.kind != Kind::Tenants && args.tenant.is_none() {
        eprintln!(
            "error: --tenant is required to list {}",
            format!("{:?}", args.kind).to_lowercase()
        );
        return exit::USAGE;
    }
    let store = match args.store.open().await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let tenant = args.tenant.as_deref().unwrap_or_default();
    if args.kind != Kind::Tenants {
        match store.tenant(tenant).get().await {
            Ok(Some(_)) => {}
            Ok(None) => {
                eprintln!("error: no tenant `{tenant}` (see `missionctl get tenants`)");
                return exit::USAGE;
            }
            Err(e) => return fail(e),
        }
    }
    match list(&store, args.kind, tenant, args.json).await {
        Ok(()) => exit::OK,
        Err(e) => fail(e),
    }
}

/// Prints `rows` as JSON, or as a table of `header` and the cells `cells` makes of each row.
fn print_rows<T: serde::Serialize>(json: bool, rows: &[T], header: &[&str], cells: impl Fn(&T) -> Vec<String>) {
    if json {
        println!("{}", serde_json::to_string(rows).unwrap_or_default());
    } else {
        table(header, rows.iter().map(cells).collect());
    }
}

async fn list(store: &Store, kind: Kind, tenant: &str, json: bool) -> Result<(), mc_store::StoreError> {
    let scope = store.tenant(tenant);
    match kind {
        Kind::Tenants => {
            print_rows(json, &store.tenants().await?, &["tenant", "name"], |t| {
                vec![t.id.clone(), t.name.clone()]
            });
        }
        Kind::Agents => {
            print_rows(
                json,
                &scope.agents().await?,
                &["agent", "role", "plugin", "model"],
                |a| {
                    let model = a.model.clone().unwrap_or_else(|| mc_ai::OFFLINE_MODEL.into());
                    vec![a.name.clone(), a.role.clone(), a.plugin.clone(), model]
                },
            );
        }
        Kind::Runs => {
            let header = ["run", "automation", "agent", "state", "attempt", "error"];
            print_rows(json, &store.jobs(tenant, RUNS_LISTED).await?, &header, |j| {
                vec![
                    j.id.to_string(),
                    j.automation.clone().unwrap_or_else(|| "-".into()),
                    j.agent.clone(),
                    j.state.clone(),
                    format!("{}/{}", j.attempt, j.max_attempts),
                    j.error.clone().unwrap_or_default(),
                ]
            });
        }
        Kind::Automations => {
            let now = jiff::Timestamp::now();
            let marks = scope.schedule_marks().await?;
            // The next run is derived, so the JSON form carries it beside the stored fields.
            let rows: Vec<(mc_store::AutomationRow, String, String)> = scope
                .automations()
                .await?
                .into_iter()
                .map(|a| {
                    let (trigger, next) = describe_trigger(&a.trigger, marks.get(&a.name).copied(), now);
                    (a, trigger, next)
                })
                .collect();
            if json {
                let docs: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|(a, _, next)| {
                        let mut v = serde_json::to_value(a).unwrap_or_default();
                        v["next"] = next.clone().into();
                        v
                    })
                    .collect();
                println!("{}", serde_json::to_string(&docs).unwrap_or_default());
            } else {
                let header = ["automation", "agent", "trigger", "next", "enabled"];
                table(
                    &header,
                    rows.into_iter()
                        .map(|(a, trigger, next)| {
                            vec![
                                a.name,
                                a.agent,
                                trigger,
                                next,
                                if a.enabled { "yes".into() } else { "no".into() },
                            ]
                        })
                        .collect(),
                );
            }
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct RunNowArgs {
    /// The automation to run now.
    automation: String,
    /// Its tenant.
    #[arg(long)]
    tenant: String,
    /// Input for this run instead of the automation's own (JSON).
    #[arg(long)]
    input: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

/// `missionctl run-now`: enqueue a manual run of an automation; a running `serve` picks it up.
pub async fn run_now(args: RunNowArgs) -> u8 {
    if let Some(input) = &args.input
        && let Err(e) = serde_json::from_str::<serde_json::Value>(input)
    {
        eprintln!("error: --input is not valid JSON: {e}");
        return exit::USAGE;
    }
    let store = match args.store.open().await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let scope = store.tenant(&args.tenant);
    let automations = match scope.automations().await {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let Some(a) = automations.into_iter().find(|a| a.name == args.automation) else {
        eprintln!(
            "error: tenant `{}` has no automation `{}`",
            args.tenant, args.automation
        );
        return exit::USAGE;
    };
    let plugin = match scope.agent(&a.agent).await {
        Ok(Some(agent)) => agent.plugin,
        Ok(None) => {
            return fail(format_args!(
                "automation `{}` names a missing agent `{}`",
                a.name, a.agent
            ));
        }
        Err(e) => return fail(e),
    };
    let job = mc_store::NewJob {
        tenant: args.tenant.clone(),
        automation: Some(a.name.clone()),
        agent: a.agent.clone(),
        plugin,
        input: args.input.clone().unwrap_or_else(|| a.input.to_string()),
        trigger: "manual".into(),
        priority: a.priority,
        max_attempts: mc_engine::DEFAULT_MAX_ATTEMPTS,
        run_at: None,
        idempotency_key: None,
    };
    match store.enqueue(&[job]).await {
        Ok(ids) => {
            println!("enqueued run {} of {}", ids[0].id(), a.name);
            exit::OK
        }
        Err(e) => fail(e),
    }
}

#[derive(Debug, Args)]
pub struct WebhookSecretArgs {
    /// The webhook automation.
    automation: String,
    /// Its tenant.
    #[arg(long)]
    tenant: String,
    #[command(flatten)]
    store: StoreArgs,
}

/// `missionctl webhook-secret`: prints (creating it the first time) the signing secret of a webhook
/// automation and the path deliveries go to.
pub async fn webhook_secret(args: WebhookSecretArgs) -> u8 {
    let store = match args.store.open().await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let automations = match store.tenant(&args.tenant).automations().await {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    match automations.iter().find(|a| a.name == args.automation) {
        Some(a) if a.trigger == Trigger::Webhook => {}
        Some(_) => {
            eprintln!("error: automation `{}` is not triggered by a webhook", args.automation);
            return exit::USAGE;
        }
        None => {
            eprintln!(
                "error: tenant `{}` has no automation `{}`",
                args.tenant, args.automation
            );
            return exit::USAGE;
        }
    }
    match store
        .webhook_secret(&args.tenant, &args.automation, mc_server::webhook::new_secret)
        .await
    {
        Ok(secret) => {
            println!("{secret}");
            eprintln!(
                "deliver to POST /hooks/{}/{}, signed per the Standard Webhooks spec with this secret",
                args.tenant, args.automation
            );
            exit::OK
        }
        Err(e) => fail(e),
    }
}
