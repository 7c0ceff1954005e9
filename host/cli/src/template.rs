//! `missionctl template list|show|install`: the template gallery from the command line, through
//! the same API the dashboard uses.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::client::{Api, ApiArgs};
use crate::exit;

#[derive(Debug, Args)]
pub struct TemplateArgs {
    #[command(subcommand)]
    command: TemplateCommand,
}

#[derive(Debug, Subcommand)]
enum TemplateCommand {
    /// The templates there are.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// One template: its team, schedules, capabilities and parameters.
    Show {
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Installs a template into a tenant, or upgrades it in place.
    Install {
        id: String,
        #[arg(long)]
        tenant: String,
        /// A parameter's value, `name=value`; repeatable.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// `missionctl template`.
pub async fn template(args: TemplateArgs) -> u8 {
    match args.command {
        TemplateCommand::List { json, api } => {
            let api = match Api::connect(&api).await {
                Ok(a) => a,
                Err(code) => return code,
            };
            match api.call("GET", "/templates", None).await {
                Ok(v) if json => {
                    println!("{v}");
                    exit::OK
                }
                Ok(v) => {
                    for t in v.as_array().cloned().unwrap_or_default() {
                        println!(
                            "{:<20} {} ({} agents)",
                            t["id"].as_str().unwrap_or_default(),
                            t["summary"].as_str().unwrap_or_default(),
                            t["agents"].as_array().map_or(0, Vec::len)
                        );
                    }
                    exit::OK
                }
                Err(f) => f.report(),
            }
        }
        TemplateCommand::Show { id, api } => {
            let api = match Api::connect(&api).await {
                Ok(a) => a,
                Err(code) => return code,
            };
            match api
                .call("GET", &format!("/templates/{}", crate::client::enc(&id)), None)
                .await
            {
                Ok(v) => {
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                    exit::OK
                }
                Err(f) => f.report(),
            }
        }
        TemplateCommand::Install { id, tenant, set, api } => {
            let mut parameters = BTreeMap::new();
            for s in &set {
                let Some((k, v)) = s.split_once('=') else {
                    eprintln!("error: `--set {s}`: write NAME=VALUE");
                    return exit::USAGE;
                };
                parameters.insert(k.to_string(), Value::String(v.to_string()));
            }
            let api = match Api::connect(&api).await {
                Ok(a) => a,
                Err(code) => return code,
            };
            let path = format!(
                "/tenants/{}/templates/{}/install",
                crate::client::enc(&tenant),
                crate::client::enc(&id)
            );
            match api
                .call("POST", &path, Some(&json!({ "parameters": parameters })))
                .await
            {
                Ok(v) => {
                    for c in v["changes"].as_array().cloned().unwrap_or_default() {
                        if c["kind"] != "unchanged" {
                            println!("{} {}: {}", text(&c["object"]), text(&c["name"]), text(&c["kind"]));
                        }
                    }
                    println!("installed {id} into {tenant}");
                    exit::OK
                }
                Err(f) => f.report(),
            }
        }
    }
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}
