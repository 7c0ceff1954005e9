//! How management commands reach Mission Control: the HTTP API of a running server (`--server URL
//! --key KEY`, or `MISSIONCTL_SERVER` / `MISSIONCTL_KEY`), or the same API run in-process over the
//! local data directory as the local operator. Either way a command makes the same calls and
//! gets the same answers and errors.

use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use crate::exit;
use crate::manage::StoreArgs;

/// How long a call to a remote server may take.
const REMOTE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Where the API is.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// A running server's base URL (e.g. http://127.0.0.1:8080); default: work on the local data
    /// directory directly.
    #[arg(long, env = "MISSIONCTL_SERVER", global = true)]
    server: Option<String>,
    /// The API key for --server.
    #[arg(long, env = "MISSIONCTL_KEY", global = true, hide_env_values = true)]
    key: Option<String>,
    /// Where plugins are found (locally: to refuse agents whose plugin does not exist).
    #[arg(long, env = "MISSIONCTL_PLUGIN_DIR", global = true)]
    plugin_dir: Option<PathBuf>,
    /// Where templates are (locally; default: `templates/` here or in the source tree).
    #[arg(long, env = "MISSIONCTL_TEMPLATE_DIR", global = true)]
    template_dir: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// A failed call: the status (0 when the server could not be reached) and the message.
#[derive(Debug)]
pub struct Failure {
    pub status: u16,
    pub message: String,
}

impl Failure {
    /// Prints the failure and returns the exit code: client errors are usage errors.
    pub fn report(&self) -> u8 {
        eprintln!("error: {}", self.message);
        if (400..500).contains(&self.status) {
            exit::USAGE
        } else {
            exit::HOST
        }
    }
}

/// A connection to the API.
pub enum Api {
    Remote {
        base: String,
        key: String,
        http: reqwest::Client,
    },
    Local(mc_server::LocalApi),
}

impl Api {
    /// Connects as `args` say, printing one error line on failure.
    pub async fn connect(args: &ApiArgs) -> Result<Api, u8> {
        if let Some(server) = &args.server {
            let Some(key) = args.key.clone() else {
                eprintln!("error: --server needs --key (or MISSIONCTL_KEY)");
                return Err(exit::USAGE);
            };
            let http = reqwest::Client::builder()
                .timeout(REMOTE_TIMEOUT)
                .build()
                .map_err(|e| {
                    eprintln!("error: {e}");
                    exit::HOST
                })?;
            return Ok(Api::Remote {
                base: server.trim_end_matches('/').to_string(),
                key,
                http,
            });
        }
        let store = args.store.open().await?;
        // A data directory that never served has no price book yet: the shipped one is the one
        // in force (as `serve` would store it).
        let shipped = mc_ai::prices::PriceBook::shipped();
        if let Err(e) = store
            .ensure_price_book(mc_ai::prices::SHIPPED, shipped.fuel_per_billion)
            .await
        {
            eprintln!("error: {e}");
            return Err(exit::HOST);
        }
        let mut state = mc_server::AppState::new(store);
        state.plugin_dir = crate::run::plugin_dirs(args.plugin_dir.as_deref())
            .into_iter()
            .find(|d| d.is_dir());
        state.sealer = args.store.sealer().ok();
        state.template_dir = crate::run::template_dir(args.template_dir.as_deref());
        Ok(Api::Local(mc_server::LocalApi::new(state)))
    }

    /// Calls `method path` (under `/api/v1`) with an optional JSON body.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
        let path = format!("/api/v1{path}");
        let body = body.map(|b| b.to_string().into_bytes());
        let (status, bytes) = match self {
            Api::Local(api) => api.call(method, &path, body).await,
            Api::Remote { base, key, http } => {
                let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
                let mut req = http.request(method, format!("{base}{path}")).bearer_auth(key);
                if let Some(body) = body {
                    req = req.header("content-type", "application/json").body(body);
                }
                let response = req.send().await.map_err(|e| Failure {
                    status: 0,
                    message: format!("cannot reach {base}: {e}"),
                })?;
                let status = response.status().as_u16();
                let bytes = response.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
                (status, bytes)
            }
        };
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        if status >= 400 {
            let message = value["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("the server answered {status}"));
            return Err(Failure { status, message });
        }
        Ok(value)
    }
}

/// Percent-encodes one path segment or query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
