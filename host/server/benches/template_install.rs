//! Template install time (`cargo bench -p mc-server --bench template_install`): installing the
//! marketing-agency template (5 agents, 5 automations, 2 registries) into a fresh tenant through
//! the API's own router (`LocalApi`, as `missionctl template install` does), on SQLite. Owns the
//! figure "install into a fresh tenant ≤ 200 ms on SQLite". The baseline, measured in the same
//! run, is applying the same team written out as a configuration file (`POST /apply`): what an
//! install adds over that is loading and rendering the template.

use std::time::{Duration, Instant};

use mc_server::{AppState, LocalApi};
use mc_testkit::TestDb;
use serde_json::json;

/// Fresh tenants installed into (after one warm-up).
const INSTALLS: usize = 20;
/// The figure.
const GOAL: Duration = Duration::from_millis(200);

fn p50(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn call(api: &LocalApi, method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    let (status, bytes) = api.call(method, path, Some(body.to_string().into_bytes())).await;
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    assert!(status < 300, "{method} {path}: {status} {v}");
    v
}

async fn bench() {
    let db = TestDb::sqlite().await;
    let mut state = AppState::new(db.store.clone());
    state.template_dir = Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates"));
    let api = LocalApi::new(state);
    let parameters = json!({ "company": "Bench Garden", "topic": "Spring planting" });
    let (mut install, mut apply) = (Vec::new(), Vec::new());
    for i in 0..=INSTALLS {
        for (kind, times) in [("install", &mut install), ("apply", &mut apply)] {
            let tenant = format!("{kind}-{i}");
            call(&api, "POST", "/api/v1/tenants", json!({ "id": tenant, "name": tenant })).await;
            call(
                &api,
                "PUT",
                &format!("/api/v1/tenants/{tenant}/plan"),
                json!({ "plan": "growth" }),
            )
            .await;
            let started = Instant::now();
            if kind == "install" {
                let path = format!("/api/v1/tenants/{tenant}/templates/marketing-agency/install");
                call(&api, "POST", &path, json!({ "parameters": parameters })).await;
            } else {
                // The same team as a file: read back from the install of this round.
                let (_, bytes) = api
                    .call("GET", &format!("/api/v1/tenants/install-{i}/config"), None)
                    .await;
                let config: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                // JSON is YAML: the stored configuration is a valid file.
                let text = config["config"]
                    .to_string()
                    .replace(&format!("\"install-{i}\""), &format!("\"{tenant}\""));
                call(&api, "POST", "/api/v1/apply", json!({ "config": text })).await;
            }
            if i > 0 {
                times.push(started.elapsed());
            }
        }
    }
    let (a, b) = (p50(&mut install), p50(&mut apply));
    println!("## Template install into a fresh tenant (SQLite, {INSTALLS} tenants each, p50)");
    println!("| path | p50 ms |");
    println!("|---|---|");
    println!(
        "| baseline: `POST /apply` of the same team as a file | {:.1} |",
        b.as_secs_f64() * 1e3
    );
    println!(
        "| `POST /tenants/{{t}}/templates/marketing-agency/install` (goal ≤ {} ms) | {:.1} — {} |",
        GOAL.as_millis(),
        a.as_secs_f64() * 1e3,
        if a <= GOAL { "met" } else { "**missed**" }
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(bench());
}
