//! White-label commands, through the API: `brand set` (a partner's name, logo and colours from a
//! YAML file), `brand list`, `brand remove`, and `brand assign` (which partner a tenant belongs
//! to, operators only).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::client::{Api, ApiArgs, enc};
use crate::exit;

#[derive(Debug, Args)]
pub struct BrandArgs {
    #[command(subcommand)]
    command: BrandCommand,
}

#[derive(Debug, Subcommand)]
enum BrandCommand {
    /// Create or replace a partner's brand from a YAML file with `name`, `primary_color`
    /// (`#rrggbb`, readable on white), and optionally `accent_color` and `logo` (a
    /// `data:image/...;base64,` or `https://` URL).
    Set {
        /// The partner, as named on its keys and tenants.
        partner: String,
        /// The brand file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List the brands this key manages (operators: all).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Remove a partner's brand: its tenants see Mission Control's look again.
    Remove {
        partner: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Assign a tenant to a partner, whose brand it then shows and whose keys see it (operators).
    Assign {
        tenant: String,
        /// The partner; omit with `--none` to take the tenant from its partner.
        #[arg(required_unless_present = "none")]
        partner: Option<String>,
        #[arg(long, conflicts_with = "partner")]
        none: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// `missionctl brand`.
pub async fn brand(args: BrandArgs) -> u8 {
    match args.command {
        BrandCommand::Set { partner, file, api } => {
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", file.display());
                    return exit::USAGE;
                }
            };
            // Checked here first, so a mistake is shown at its line in the file.
            let spec = match mc_config::BrandSpec::from_yaml(&text) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {}: {e}", file.display());
                    return exit::USAGE;
                }
            };
            let body = serde_json::to_value(&spec).unwrap_or(Value::Null);
            with_api(&api, |api| async move {
                let b = api
                    .call("PUT", &format!("/brands/{}", enc(&partner)), Some(&body))
                    .await?;
                let verb = if b["created_at"] == b["updated_at"] {
                    "created"
                } else {
                    "updated"
                };
                println!("brand of {partner} {verb}: {}", describe(&b));
                Ok(())
            })
            .await
        }
        BrandCommand::List { json, api } => {
            with_api(&api, |api| async move {
                let brands = api.call("GET", "/brands", None).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&brands).unwrap_or_default());
                } else {
                    for b in brands.as_array().into_iter().flatten() {
                        println!("{}: {}", b["partner"].as_str().unwrap_or(""), describe(b));
                    }
                }
                Ok(())
            })
            .await
        }
        BrandCommand::Remove { partner, api } => {
            with_api(&api, |api| async move {
                api.call("DELETE", &format!("/brands/{}", enc(&partner)), None).await?;
                println!("brand of {partner} removed");
                Ok(())
            })
            .await
        }
        BrandCommand::Assign {
            tenant, partner, api, ..
        } => {
            with_api(&api, |api| async move {
                let path = format!("/tenants/{}/partner", enc(&tenant));
                api.call("PUT", &path, Some(&json!({ "partner": partner }))).await?;
                match &partner {
                    Some(p) => println!("{tenant} now belongs to {p}"),
                    None => println!("{tenant} now belongs to no partner"),
                }
                Ok(())
            })
            .await
        }
    }
}

/// A brand in one line: its name, colours and logo kind.
fn describe(b: &Value) -> String {
    let logo = match b["logo"].as_str() {
        None => "no logo".to_string(),
        Some(l) if l.starts_with("data:") => format!("logo embedded ({} bytes)", l.len()),
        Some(l) => format!("logo {l}"),
    };
    format!(
        "\"{}\", primary {}, accent {}, {logo}",
        b["name"].as_str().unwrap_or(""),
        b["primary_color"].as_str().unwrap_or(""),
        b["accent_color"].as_str().unwrap_or("(the primary)")
    )
}

/// Connects, runs `f`, and turns its failure into the exit code.
async fn with_api<F, Fut>(args: &ApiArgs, f: F) -> u8
where
    F: FnOnce(Api) -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::client::Failure>>,
{
    let api = match Api::connect(args).await {
        Ok(a) => a,
        Err(code) => return code,
    };
    match f(api).await {
        Ok(()) => exit::OK,
        Err(failure) => failure.report(),
    }
}
