//! `missionctl run`: load one plugin, run it once with the offline AI provider and an in-memory
//! key-value bucket, print its output (stdout) and its log and usage (stderr), and exit with a
//! code that names the kind of failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use mc_egress::AllowList;
use mc_runtime::{
    CancelToken, Grants, Limits, MemoryKv, RunContext, RunOutcome, RunRequest, Runtime, RuntimeConfig, Services,
};

use crate::exit;

/// Plugins directory used when none is given: where `make plugins` puts them.
const BUILT_PLUGINS: &str = "target/wasm32-wasip2/plugin";
/// One run needs one instance; a small pool reserves little address space.
const CLI_MAX_INSTANCES: u32 = 4;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A plugin name (looked up in the plugins directory) or a path to a `.wasm` component.
    plugin: String,
    /// The input, as JSON text or `@path/to/file.json`.
    #[arg(long, default_value = "{}")]
    input: String,
    /// Fuel budget (roughly, wasm instructions).
    #[arg(long, default_value_t = mc_runtime::DEFAULT_FUEL)]
    fuel: u64,
    /// Memory cap in MiB.
    #[arg(long = "memory-mb", default_value_t = mc_runtime::DEFAULT_MEMORY_BYTES >> 20)]
    memory_mb: u64,
    /// Wall-clock deadline in milliseconds.
    #[arg(long = "timeout-ms", default_value_t = mc_runtime::DEFAULT_DEADLINE.as_millis() as u64)]
    timeout_ms: u64,
    /// An origin the plugin may reach over HTTP, `scheme://host[:port]` (`*.domain` and port `*`
    /// allowed). Repeat for more. Loopback and private addresses are refused unless named as an
    /// IP literal here (a test host).
    #[arg(long = "allow-host", value_name = "PATTERN")]
    allow_host: Vec<String>,
    /// An agent parameter, `key=value`, served to the plugin through `wasi:config`. Repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    config: Vec<(String, String)>,
    /// A model the plugin may use; the first is its default. Repeatable.
    #[arg(long = "model", default_value = mc_ai::OFFLINE_MODEL)]
    models: Vec<String>,
    /// Print one JSON document (output or error, usage, log) instead of text.
    #[arg(long)]
    json: bool,
    /// Where plugins are looked up by name.
    #[arg(long, env = "MISSIONCTL_PLUGIN_DIR")]
    plugin_dir: Option<PathBuf>,
    /// Where compiled plugins are cached.
    #[arg(long, env = "MISSIONCTL_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// The tenant the run is attributed to (also names its key-value bucket).
    #[arg(long, default_value = "local")]
    tenant: String,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

fn usage_error(message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    exit::USAGE
}

/// The plugin directories to search, in order.
pub(crate) fn plugin_dirs(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(d) = explicit {
        return vec![d.to_path_buf()];
    }
    let mut dirs = vec![PathBuf::from(BUILT_PLUGINS)];
    // Beside the binary: target/debug/missionctl → target/wasm32-wasip2/plugin.
    if let Some(target) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(Path::to_path_buf))
    {
        dirs.push(target.join("wasm32-wasip2/plugin"));
    }
    dirs
}

/// The templates directory: `explicit`, else `templates/` here, else the repository's beside the
/// binary (target/debug/missionctl → templates/).
pub(crate) fn template_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(d) = explicit {
        return Some(d.to_path_buf());
    }
    let mut dirs = vec![PathBuf::from("templates")];
    if let Some(root) = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.parent()?.to_path_buf()))
    {
        dirs.push(root.join("templates"));
    }
    dirs.into_iter().find(|d| d.is_dir())
}

/// Resolves a plugin argument to a file: a path as given, or a name looked up as `<name>.wasm`
/// (with `-` or `_`) in the plugin directories.
fn resolve_plugin(arg: &str, explicit_dir: Option<&Path>) -> Result<PathBuf, String> {
    if arg.ends_with(".wasm") || arg.contains('/') {
        return Ok(PathBuf::from(arg));
    }
    let dirs = plugin_dirs(explicit_dir);
    for dir in &dirs {
        for name in [arg.to_string(), arg.replace('-', "_")] {
            let p = dir.join(format!("{name}.wasm"));
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(format!(
        "plugin not found: `{arg}` (looked in {}; build the plugins with `make plugins`, or pass a path to a .wasm file)",
        looked.join(", ")
    ))
}

fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("missionctl/components"))
}

fn read_input(arg: &str) -> Result<String, String> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("cannot read the input file {path}: {e}"))?,
        None => arg.to_string(),
    };
    serde_json::from_str::<serde_json::Value>(&text).map_err(|e| format!("--input is not valid JSON: {e}"))?;
    Ok(text)
}

pub async fn run(args: RunArgs) -> u8 {
    let input = match read_input(&args.input) {
        Ok(i) => i,
        Err(e) => return usage_error(e),
    };
    let allow = match AllowList::parse(&args.allow_host) {
        Ok(a) => a,
        Err(e) => return usage_error(format_args!("--allow-host: {e}")),
    };
    if args.models.iter().any(|m| m.trim().is_empty()) {
        return usage_error("--model must not be empty");
    }
    let limits = Limits {
        fuel: args.fuel,
        memory_bytes: args.memory_mb.saturating_mul(1 << 20),
        deadline: Duration::from_millis(args.timeout_ms),
        ..Limits::default()
    };
    let config = RuntimeConfig {
        cache_dir: args.cache_dir.clone().or_else(default_cache_dir),
        max_instances: CLI_MAX_INSTANCES,
        ..RuntimeConfig::default()
    };
    if let Err(e) = limits.validate(config.max_memory_bytes) {
        return usage_error(e);
    }
    let path = match resolve_plugin(&args.plugin, args.plugin_dir.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::LOAD;
        }
    };
    let runtime = match Runtime::new(config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the plugin runtime: {e:#}");
            return exit::HOST;
        }
    };
    let plugin = match runtime.load_file(&path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::LOAD;
        }
    };
    let cancel = CancelToken::new();
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        });
    }
    let request = RunRequest {
        input,
        context: RunContext {
            tenant: args.tenant.clone(),
            agent: plugin.name().to_string(),
            automation: None,
            run_id: format!("cli-{}", std::process::id()),
            root_run_id: None,
            attempt: 1,
            trigger: "cli".into(),
        },
        grants: Arc::new(Grants {
            http: allow,
            models: args.models.clone(),
            kv_bucket: Some(format!("tenant:{}", args.tenant)),
            config: args.config.into_iter().collect::<BTreeMap<_, _>>(),
            // A run outside the engine has no registries.
            registries: BTreeMap::new(),
        }),
        limits,
        services: Services {
            ai: Arc::new(mc_ai::OfflineProvider),
            kv: Arc::new(MemoryKv::new()),
            delegator: None,
            registries: None,
            approvals: None,
        },
        cancel: Some(cancel),
    };
    let outcome = match runtime.run(&plugin, request).await {
        Ok(o) => o,
        Err(e) => return usage_error(e),
    };
    let code = match &outcome.result {
        Ok(_) => exit::OK,
        Err(f) => exit::for_failure(f),
    };
    if args.json {
        print_json(plugin.name(), &outcome);
    } else {
        print_text(plugin.name(), &outcome);
    }
    code
}

fn print_json(name: &str, outcome: &RunOutcome) {
    let mut doc = serde_json::to_value(outcome).unwrap_or_default();
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("plugin".into(), name.into());
    }
    println!("{doc}");
}

fn print_text(name: &str, outcome: &RunOutcome) {
    for line in &outcome.logs {
        eprintln!("[{} +{}ms] {}", line.level, line.at_ms, line.message);
    }
    for d in &outcome.denials {
        eprintln!("[refused {}] {}", d.capability, d.detail);
    }
    match &outcome.result {
        Ok(out) => match serde_json::from_str::<serde_json::Value>(out) {
            Ok(v) => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_else(|_| out.clone())),
            Err(_) => println!("{out}"),
        },
        Err(f) => {
            eprintln!("error: {f}");
            if !outcome.stderr.is_empty() && !matches!(f, mc_runtime::RunFailure::Trap { .. }) {
                eprintln!("plugin stderr: {}", outcome.stderr.trim_end());
            }
        }
    }
    let u = &outcome.usage;
    let mut summary = format!(
        "{} {name} · {:.1} ms · fuel {} · memory {:.1} MiB peak",
        if outcome.result.is_ok() { "ok" } else { "failed" },
        u.wall_time.as_secs_f64() * 1000.0,
        u.fuel_consumed,
        u.peak_memory_bytes as f64 / (1 << 20) as f64,
    );
    if u.ai_calls > 0 {
        summary.push_str(&format!(
            " · AI {} call{}, {} in / {} out tokens",
            u.ai_calls,
            if u.ai_calls == 1 { "" } else { "s" },
            u.tokens.input_tokens + u.tokens.cache_read_tokens + u.tokens.cache_write_tokens,
            u.tokens.output_tokens
        ));
    }
    if u.http_requests > 0 {
        summary.push_str(&format!(
            " · HTTP {} request{}",
            u.http_requests,
            if u.http_requests == 1 { "" } else { "s" }
        ));
    }
    eprintln!("{summary}");
}
