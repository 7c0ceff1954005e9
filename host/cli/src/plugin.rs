//! `missionctl plugin`: the plugin versions the monitor quarantined, and lifting a quarantine
//! (operators), through the same API the dashboard uses.

use clap::{Args, Subcommand};

use crate::client::{Api, ApiArgs, enc};
use crate::exit;

#[derive(Debug, Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    command: PluginCommand,
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// List the plugin versions the monitor quarantined, and why.
    Quarantined {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Lift every quarantine of a plugin: its runs run again (retry the ones that were refused).
    Release {
        plugin: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// `missionctl plugin`.
pub async fn plugin(args: PluginArgs) -> u8 {
    let (api, call) = match &args.command {
        PluginCommand::Quarantined { api } => (api, ("GET", "/quarantine".to_string())),
        PluginCommand::Release { plugin, api } => (api, ("DELETE", format!("/quarantine/{}", enc(plugin)))),
    };
    let api = match Api::connect(api).await {
        Ok(a) => a,
        Err(code) => return code,
    };
    match api.call(call.0, &call.1, None).await {
        Ok(v) => {
            match &args.command {
                PluginCommand::Quarantined { .. } => {
                    let list = v.as_array().cloned().unwrap_or_default();
                    if list.is_empty() {
                        println!("no plugin is quarantined");
                    }
                    for q in list {
                        println!(
                            "{}@{}  since {}  {}",
                            q["plugin"].as_str().unwrap_or_default(),
                            &q["hash"]
                                .as_str()
                                .unwrap_or_default()
                                .chars()
                                .take(12)
                                .collect::<String>(),
                            q["since"].as_str().unwrap_or_default(),
                            q["reason"].as_str().unwrap_or_default()
                        );
                    }
                }
                PluginCommand::Release { plugin, .. } => {
                    let n = v["released"].as_array().map_or(0, Vec::len);
                    println!("{plugin}: lifted the quarantine of {n} version(s); retry the runs it refused");
                }
            }
            exit::OK
        }
        Err(f) => f.report(),
    }
}
