//! Money commands, all through the API: `usage` (a tenant's month by agent, automation, model or
//! day, as a table, CSV or JSON), `report` (the operator's revenue, cost and margin per tenant),
//! `prices apply|show` (the price book) and `plan set` (a tenant's plan).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::client::{Api, ApiArgs, enc};
use crate::exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum By {
    Agent,
    Automation,
    Model,
    Day,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// The tenant.
    #[arg(long)]
    tenant: String,
    /// The month, YYYY-MM (default: this month, UTC).
    #[arg(long)]
    month: Option<String>,
    /// How to group the month's calls and runs.
    #[arg(long, value_enum, default_value = "agent")]
    by: By,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    #[command(flatten)]
    api: ApiArgs,
}

/// The columns of a usage line, in the order CSV and tables show them.
const USAGE_COLUMNS: [&str; 10] = [
    "ai_calls",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "estimated_calls",
    "fuel",
    "ai_cost_micros",
    "fuel_cost_micros",
    "cost_micros",
];

fn dollars(micros: &Value) -> String {
    mc_config::format_usd(micros.as_u64().unwrap_or(0))
}

/// Prints rows as aligned columns.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| if i == 0 { format!("{c:<w$}") } else { format!("{c:>w$}") })
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

/// `missionctl usage`.
pub async fn usage(args: UsageArgs) -> u8 {
    let api = match Api::connect(&args.api).await {
        Ok(a) => a,
        Err(code) => return code,
    };
    let by = format!("{:?}", args.by).to_lowercase();
    let mut path = format!("/tenants/{}/usage?by={by}", enc(&args.tenant));
    if let Some(m) = &args.month {
        path.push_str(&format!("&month={}", enc(m)));
    }
    let report = match api.call("GET", &path, None).await {
        Ok(v) => v,
        Err(f) => return f.report(),
    };
    let empty = Vec::new();
    let lines = report["lines"].as_array().unwrap_or(&empty);
    let all: Vec<&Value> = lines.iter().chain(std::iter::once(&report["total"])).collect();
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default()),
        Format::Csv => {
            println!("{by},{}", USAGE_COLUMNS.join(","));
            for l in all {
                let key = l["key"].as_str().unwrap_or("");
                let cells: Vec<String> = USAGE_COLUMNS.iter().map(|c| l[*c].to_string()).collect();
                println!("\"{}\",{}", key.replace('"', "\"\""), cells.join(","));
            }
        }
        Format::Table => {
            println!(
                "usage of {} in {} by {by}",
                args.tenant,
                report["month"].as_str().unwrap_or("")
            );
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|l| {
                    vec![
                        l["key"].as_str().unwrap_or("").to_string(),
                        l["ai_calls"].to_string(),
                        l["input_tokens"].to_string(),
                        l["output_tokens"].to_string(),
                        l["cache_read_tokens"].to_string(),
                        l["cache_write_tokens"].to_string(),
                        l["fuel"].to_string(),
                        dollars(&l["ai_cost_micros"]),
                        dollars(&l["fuel_cost_micros"]),
                        dollars(&l["cost_micros"]),
                    ]
                })
                .collect();
            print_table(
                &[
                    &by,
                    "calls",
                    "input",
                    "output",
                    "cache read",
                    "cache write",
                    "fuel",
                    "AI cost",
                    "fuel cost",
                    "cost",
                ],
                &rows,
            );
        }
    }
    exit::OK
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The month, YYYY-MM (default: this month, UTC).
    #[arg(long)]
    month: Option<String>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// `missionctl report`: revenue, cost and margin per tenant (operators).
pub async fn report(args: ReportArgs) -> u8 {
    let api = match Api::connect(&args.api).await {
        Ok(a) => a,
        Err(code) => return code,
    };
    let path = match &args.month {
        Some(m) => format!("/report?month={}", enc(m)),
        None => "/report".to_string(),
    };
    let report = match api.call("GET", &path, None).await {
        Ok(v) => v,
        Err(f) => return f.report(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
        return exit::OK;
    }
    let empty = Vec::new();
    let rows: Vec<Vec<String>> = report["tenants"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|t| {
            [
                "tenant",
                "plan",
                "revenue_usd",
                "ai_cost_usd",
                "fuel_cost_usd",
                "margin_usd",
            ]
            .iter()
            .map(|k| t[*k].as_str().unwrap_or("").to_string())
            .collect()
        })
        .collect();
    println!("month {}", report["month"].as_str().unwrap_or(""));
    print_table(
        &["tenant", "plan", "revenue $", "AI cost $", "fuel cost $", "margin $"],
        &rows,
    );
    exit::OK
}

#[derive(Debug, Args)]
pub struct PricesArgs {
    #[command(subcommand)]
    command: PricesCommand,
}

#[derive(Debug, Subcommand)]
enum PricesCommand {
    /// Publish a new price book (YAML, the format of host/ai/prices.yaml); new calls use it.
    Apply {
        /// The price book file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show the price book in force.
    Show {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// `missionctl prices`.
pub async fn prices(args: PricesArgs) -> u8 {
    match args.command {
        PricesCommand::Apply { file, api } => {
            let book = match std::fs::read_to_string(&file) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", file.display());
                    return exit::USAGE;
                }
            };
            let api = match Api::connect(&api).await {
                Ok(a) => a,
                Err(code) => return code,
            };
            match api.call("POST", "/prices", Some(&json!({ "book": book }))).await {
                Ok(v) if v["created"] == true => {
                    println!("price book v{} published ({} models)", v["version"], v["models"]);
                    exit::OK
                }
                Ok(v) => {
                    println!("unchanged: price book v{} is already this one", v["version"]);
                    exit::OK
                }
                Err(f) => f.report(),
            }
        }
        PricesCommand::Show { json, api } => {
            let api = match Api::connect(&api).await {
                Ok(a) => a,
                Err(code) => return code,
            };
            let book = match api.call("GET", "/prices", None).await {
                Ok(v) => v,
                Err(f) => return f.report(),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&book).unwrap_or_default());
                return exit::OK;
            }
            println!(
                "price book v{} (published {} by {}); fuel ${} per billion units; USD per million tokens:",
                book["version"],
                book["published_at"].as_str().unwrap_or(""),
                book["published_by"].as_str().unwrap_or(""),
                book["fuel_per_billion"].as_str().unwrap_or("")
            );
            let empty = Vec::new();
            let rows: Vec<Vec<String>> = book["models"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .map(|m| {
                    ["model", "provider", "input", "output", "cache_read", "cache_write"]
                        .iter()
                        .map(|k| m[*k].as_str().unwrap_or("").to_string())
                        .collect()
                })
                .collect();
            print_table(
                &["model", "provider", "input", "output", "cache read", "cache write"],
                &rows,
            );
            exit::OK
        }
    }
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(subcommand)]
    command: PlanCommand,
}

#[derive(Debug, Subcommand)]
enum PlanCommand {
    /// Move a tenant to another plan (operators): starter, growth or scale.
    Set {
        tenant: String,
        plan: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// `missionctl plan`.
pub async fn plan(args: PlanArgs) -> u8 {
    let PlanCommand::Set { tenant, plan, api } = args.command;
    let api = match Api::connect(&api).await {
        Ok(a) => a,
        Err(code) => return code,
    };
    match api
        .call(
            "PUT",
            &format!("/tenants/{}/plan", enc(&tenant)),
            Some(&json!({ "plan": plan })),
        )
        .await
    {
        Ok(v) => {
            let limit = |k: &str| v[k].as_u64().map_or("unlimited".to_string(), |n| n.to_string());
            println!(
                "{tenant}: plan {} (was {}), ${} a month, {} agents, {} automations",
                v["plan"].as_str().unwrap_or(""),
                v["previous"].as_str().unwrap_or(""),
                v["monthly_price_usd"].as_str().unwrap_or(""),
                limit("max_agents"),
                limit("max_automations")
            );
            exit::OK
        }
        Err(f) => f.report(),
    }
}
