//! `missionctl`: the Mission Control command line. Parsing and dispatch only; each command lives in
//! its own module.

mod exit;
mod run;

use clap::{Parser, Subcommand};

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
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one plugin once, sandboxed, and print its output and what it consumed.
    Run(run::RunArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::HOST.into();
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
        }
    });
    code.into()
}
