//! Management commands: `apply`, `get`, `run-now`, `key` through the API (a running server's, or
//! the same API in-process over the local data directory; see [`crate::client`]), and
//! `webhook-secret` on the local store.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use mc_config::Trigger;
use mc_store::Store;
use serde_json::{Value, json};

use crate::client::{Api, ApiArgs, enc};
use crate::exit;

/// File name of the embedded database inside the data directory.
const DB_FILE: &str = "missionctl.db";
/// File name of the secret key inside the data directory (when none is given otherwise).
const SECRET_KEY_FILE: &str = "secret.key";

/// Where the store is.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Database URL: `sqlite:PATH` or `postgres://USER@HOST/DB`. Default: SQLite in the data directory.
    #[arg(long, env = "DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// The data directory (the embedded database lives here).
    #[arg(long, env = "MISSIONCTL_DATA_DIR", default_value = "data", global = true)]
    data_dir: PathBuf,
    /// The key that seals tenant secrets, base64 of 32 bytes. Nodes sharing a database share it.
    #[arg(long, env = "MISSIONCTL_SECRET_KEY", global = true, hide_env_values = true)]
    secret_key: Option<String>,
    /// A file holding that key (created with a fresh key if missing). Default:
    /// `secret.key` in the data directory.
    #[arg(long, env = "MISSIONCTL_SECRET_KEY_FILE", global = true)]
    secret_key_file: Option<PathBuf>,
}

impl StoreArgs {
    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// The sealer of tenant secrets: from the key given, else from the key file (created at
    /// first use).
    pub fn sealer(&self) -> Result<mc_store::Sealer, mc_store::KeyError> {
        match &self.secret_key {
            Some(key) => mc_store::Sealer::from_base64(key),
            None => mc_store::Sealer::from_file(
                &self
                    .secret_key_file
                    .clone()
                    .unwrap_or_else(|| self.data_dir.join(SECRET_KEY_FILE)),
            ),
        }
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
    #[command(flatten)]
    api: ApiArgs,
}

/// `missionctl apply`: sends the file to the API, which validates and applies it in one
/// transaction, and prints what changed.
pub async fn apply(args: ApplyArgs) -> u8 {
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.file.display());
            return exit::USAGE;
        }
    };
    let api = match Api::connect(&args.api).await {
        Ok(a) => a,
        Err(code) => return code,
    };
    let report = match api.call("POST", "/apply", Some(&json!({ "config": text }))).await {
        Ok(r) => r,
        Err(mut f) => {
            f.message = format!(
                "{}: {}",
                args.file.display(),
                f.message.trim_start_matches("configuration: ")
            );
            return f.report();
        }
    };
    if args.json {
        println!("{report}");
        return exit::OK;
    }
    let changes = report["changes"].as_array().cloned().unwrap_or_default();
    for c in &changes {
        let fields: Vec<&str> = c["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let detail = if fields.is_empty() {
            String::new()
        } else {
            format!(" ({})", fields.join(", "))
        };
        println!(
            "{} {}: {}{detail}",
            text_of(&c["object"]),
            text_of(&c["name"]),
            text_of(&c["kind"])
        );
    }
    let count = |k: &str| changes.iter().filter(|c| c["kind"] == k).count();
    println!(
        "applied {}: {} created, {} updated, {} deleted, {} unchanged",
        text_of(&report["tenant"]),
        count("created"),
        count("updated"),
        count("deleted"),
        count("unchanged")
    );
    exit::OK
}

/// A JSON value as table text: strings bare, null as `-`.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Tenants,
    Agents,
    Automations,
    Runs,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// What to list.
    kind: Kind,
    /// One object to show in full (a tenant id, agent or automation name, or run id).
    name: Option<String>,
    /// The tenant (required for agents, automations and runs).
    #[arg(long)]
    tenant: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Agents: the team as a tree (who reports to whom). A run (with its id): its delegation tree
    /// with each run's state and cost.
    #[arg(long)]
    tree: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Prints `nodes` and their `children` (a field of each node) as an indented tree.
fn print_tree(nodes: &[Value], children: &str, label: &dyn Fn(&Value) -> String, prefix: &str) {
    for (i, n) in nodes.iter().enumerate() {
        let last = i + 1 == nodes.len();
        let (branch, indent) = match (prefix.is_empty(), last) {
            (true, _) => ("", ""),
            (false, true) => ("└── ", "    "),
            (false, false) => ("├── ", "│   "),
        };
        println!("{prefix}{branch}{}", label(n));
        let below = n[children].as_array().cloned().unwrap_or_default();
        let next = if prefix.is_empty() {
            " ".to_string()
        } else {
            format!("{prefix}{indent}")
        };
        print_tree(&below, children, label, &next);
    }
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

/// A fire time as people read it: in the cron trigger's zone, else UTC.
fn local_time(t: &Trigger, ts: jiff::Timestamp) -> String {
    match t {
        Trigger::Cron { timezone, .. } => match mc_schedule::parse_timezone(timezone) {
            Ok(tz) => ts.to_zoned_datetime(tz).strftime("%Y-%m-%d %H:%M %Z").to_string(),
            Err(_) => ts.to_string(),
        },
        _ => ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
    }
}

/// The next-run column of an automation from its API form.
fn next_run_text(a: &Value) -> String {
    let next = a["next_run"].as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok());
    let trigger = &a["trigger"];
    match next {
        Some(ts) => match (trigger["cron"].as_str(), trigger["timezone"].as_str()) {
            (Some(expr), Some(tz)) => local_time(
                &Trigger::Cron {
                    expr: expr.into(),
                    timezone: tz.into(),
                },
                ts,
            ),
            _ => ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        },
        None if a["enabled"] == false => "off".into(),
        None if trigger.get("webhook").is_some() => "on delivery".into(),
        None if trigger.get("after").is_some() => "on completion".into(),
        None if trigger.get("manual").is_some() => "on request".into(),
        None if trigger.get("interval").is_some() => "when a node first runs it".into(),
        None => "never".into(),
    }
}

/// `missionctl get`: lists tenants, or a tenant's agents, automations or runs; with a name, one
/// of them in full (JSON).
pub async fn get(args: GetArgs) -> u8 {
    let tenant = match (&args.tenant, args.kind) {
        (Some(t), _) => enc(t),
        (None, Kind::Tenants) => String::new(),
        (None, kind) => {
            eprintln!(
                "error: --tenant is required to list {}",
                format!("{kind:?}").to_lowercase()
            );
            return exit::USAGE;
        }
    };
    let api = match Api::connect(&args.api).await {
        Ok(a) => a,
        Err(code) => return code,
    };
    let collection = match args.kind {
        Kind::Tenants => "/tenants".to_string(),
        Kind::Agents => format!("/tenants/{tenant}/agents"),
        Kind::Automations => format!("/tenants/{tenant}/automations"),
        Kind::Runs => format!("/tenants/{tenant}/runs"),
    };
    if args.tree {
        let (path, children): (String, &str) = match (args.kind, &args.name) {
            (Kind::Agents, None) => (format!("/tenants/{tenant}/team"), "reports"),
            (Kind::Runs, Some(id)) => (format!("{collection}/{}/tree", enc(id)), "children"),
            _ => {
                eprintln!(
                    "error: --tree shows the team (get agents --tree) or one run's delegation tree (get runs ID --tree)"
                );
                return exit::USAGE;
            }
        };
        let tree = match api.call("GET", &path, None).await {
            Ok(v) => v,
            Err(f) => return f.report(),
        };
        if args.json {
            println!("{tree}");
            return exit::OK;
        }
        let nodes = match tree {
            Value::Array(a) => a,
            one => vec![one],
        };
        let label = |n: &Value| match args.kind {
            Kind::Agents => format!(
                "{} ({}, {})",
                text_of(&n["name"]),
                text_of(&n["role"]),
                n["model"].as_str().unwrap_or(mc_ai::OFFLINE_MODEL)
            ),
            _ => format!(
                "run {} {} {} ${} (tree ${})",
                text_of(&n["id"]),
                text_of(&n["agent"]),
                text_of(&n["state"]),
                text_of(&n["cost"]),
                text_of(&n["tree_cost"])
            ),
        };
        print_tree(&nodes, children, &label, "");
        return exit::OK;
    }
    if let Some(name) = &args.name {
        return match api.call("GET", &format!("{collection}/{}", enc(name)), None).await {
            Ok(v) => {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                exit::OK
            }
            Err(f) => f.report(),
        };
    }
    let rows = match api.call("GET", &collection, None).await {
        Ok(Value::Object(page)) => page.get("items").cloned().unwrap_or(Value::Null),
        Ok(v) => v,
        Err(f) => return f.report(),
    };
    let rows = rows.as_array().cloned().unwrap_or_default();
    if args.json {
        println!("{}", Value::Array(rows));
        return exit::OK;
    }
    let cells = |r: &Value, fields: &[&str]| fields.iter().map(|f| text_of(&r[*f])).collect::<Vec<_>>();
    match args.kind {
        Kind::Tenants => table(
            &["tenant", "name"],
            rows.iter().map(|r| cells(r, &["id", "name"])).collect(),
        ),
        Kind::Agents => table(
            &["agent", "role", "plugin", "model"],
            rows.iter()
                .map(|r| {
                    let mut c = cells(r, &["name", "role", "plugin"]);
                    c.push(r["model"].as_str().unwrap_or(mc_ai::OFFLINE_MODEL).to_string());
                    c
                })
                .collect(),
        ),
        Kind::Automations => table(
            &["automation", "agent", "trigger", "next", "enabled"],
            rows.iter()
                .map(|r| {
                    let mut c = cells(r, &["name", "agent", "schedule"]);
                    c.push(next_run_text(r));
                    c.push(if r["enabled"] == true { "yes" } else { "no" }.into());
                    c
                })
                .collect(),
        ),
        Kind::Runs => table(
            &["run", "automation", "agent", "state", "attempt", "error"],
            rows.iter()
                .map(|r| {
                    let mut c = cells(r, &["id", "automation", "agent", "state"]);
                    c.push(format!("{}/{}", r["attempt"], r["max_attempts"]));
                    c.push(r["error"].as_str().unwrap_or_default().to_string());
                    c
                })
                .collect(),
        ),
    }
    exit::OK
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
    api: ApiArgs,
}

/// `missionctl run-now`: enqueue a manual run of an automation; a running `serve` picks it up.
pub async fn run_now(args: RunNowArgs) -> u8 {
    let input = match args.input.as_deref().map(serde_json::from_str::<Value>).transpose() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: --input is not valid JSON: {e}");
            return exit::USAGE;
        }
    };
    let api = match Api::connect(&args.api).await {
        Ok(a) => a,
        Err(code) => return code,
    };
    let body = match input {
        Some(input) => json!({ "input": input }),
        None => json!({}),
    };
    let path = format!(
        "/tenants/{}/automations/{}/run",
        enc(&args.tenant),
        enc(&args.automation)
    );
    match api.call("POST", &path, Some(&body)).await {
        Ok(v) => {
            println!("enqueued run {} of {}", v["run"], args.automation);
            exit::OK
        }
        Err(f) => f.report(),
    }
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Issue a key; it is printed once and cannot be shown again.
    Create {
        /// operator, partner, admin or viewer.
        #[arg(long)]
        role: String,
        /// The tenant of an admin or viewer key.
        #[arg(long)]
        tenant: Option<String>,
        /// The partner of a partner key.
        #[arg(long)]
        partner: Option<String>,
        /// What the key is for.
        #[arg(long)]
        label: Option<String>,
        /// When it stops working (RFC 3339, e.g. 2027-01-01T00:00:00Z); default: when revoked.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// List the keys you manage.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its id.
    Revoke { id: String },
}

/// `missionctl key create|list|revoke`.
pub async fn key(args: KeyArgs) -> u8 {
    let api = match Api::connect(&args.api).await {
        Ok(a) => a,
        Err(code) => return code,
    };
    match args.command {
        KeyCommand::Create {
            role,
            tenant,
            partner,
            label,
            expires_at,
        } => {
            let body =
                json!({ "role": role, "tenant": tenant, "partner": partner, "label": label, "expires_at": expires_at });
            match api.call("POST", "/keys", Some(&body)).await {
                Ok(k) => {
                    println!("{}", text_of(&k["key"]));
                    eprintln!(
                        "key {} ({}{}): store it now, it is not shown again",
                        text_of(&k["id"]),
                        text_of(&k["role"]),
                        k["tenant"]
                            .as_str()
                            .map(|t| format!(" of tenant {t}"))
                            .unwrap_or_default()
                    );
                    exit::OK
                }
                Err(f) => f.report(),
            }
        }
        KeyCommand::List { json } => match api.call("GET", "/keys", None).await {
            Ok(v) if json => {
                println!("{v}");
                exit::OK
            }
            Ok(v) => {
                let rows = v.as_array().cloned().unwrap_or_default();
                table(
                    &["key", "role", "tenant", "partner", "label", "last used", "revoked"],
                    rows.iter()
                        .map(|r| {
                            ["id", "role", "tenant", "partner", "label", "last_used_at", "revoked_at"]
                                .iter()
                                .map(|f| text_of(&r[*f]))
                                .collect()
                        })
                        .collect(),
                );
                exit::OK
            }
            Err(f) => f.report(),
        },
        KeyCommand::Revoke { id } => match api.call("DELETE", &format!("/keys/{}", enc(&id)), None).await {
            Ok(_) => {
                println!("revoked key {id}");
                exit::OK
            }
            Err(f) => f.report(),
        },
    }
}

fn fail(e: impl std::fmt::Display) -> u8 {
    eprintln!("error: {e}");
    exit::HOST
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
    let sealer = match args.store.sealer() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
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
        .webhook_secret(&args.tenant, &args.automation, &sealer, mc_server::webhook::new_secret)
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
