//! Server tests on both backends, against a real server on 127.0.0.1 (port 0): health, readiness,
//! and webhook deliveries — signed by our own signer and by the official `standardwebhooks` Python
//! package — with every refusal a client can meet.

use std::net::SocketAddr;

mod api;

use mc_server::{AppState, webhook};
use mc_store::Store;
use mc_testkit::on_both;

const TENANT: &str = r#"tenant: acme
agents:
  - name: echo
    role: Echo
    plugin: noop
automations:
  - name: new-lead
    agent: echo
    trigger: { webhook: {} }
  - name: nightly
    agent: echo
    trigger: { cron: "0 2 * * *" }
"#;

async fn start(store: &Store) -> (SocketAddr, String) {
    store
        .apply(&mc_config::parse(TENANT, &mc_config::Known::default()).unwrap())
        .await
        .unwrap();
    let sealer = mc_store::Sealer::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
    let secret = store
        .webhook_secret("acme", "new-lead", &sealer, webhook::new_secret)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut state = AppState::new(store.clone());
    state.sealer = Some(sealer);
    tokio::spawn(mc_server::serve(listener, state, std::future::pending()));
    (addr, secret)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn post(addr: SocketAddr, path: &str, headers: &[(&str, String)], body: Vec<u8>) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new().post(format!("http://{addr}{path}")).body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

fn signed(secret: &str, id: &str, ts: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", webhook::sign(secret, id, ts, body).unwrap()),
    ]
}

#[tokio::test]
async fn health_and_readiness() {
    on_both(|store| async move {
        let (addr, _) = start(&store).await;
        let client = reqwest::Client::new();
        let r = client.get(format!("http://{addr}/healthz")).send().await.unwrap();
        assert_eq!((r.status().as_u16(), r.text().await.unwrap()), (200, "ok".to_string()));
        let r = client.get(format!("http://{addr}/readyz")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        store.close().await;
        let r = client.get(format!("http://{addr}/readyz")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 503, "not ready without a database");
    })
    .await;
}

/// Headers, body, path, expected status, expected message.
type Refusal = (Vec<(&'static str, String)>, Vec<u8>, &'static str, u16, &'static str);

#[tokio::test]
async fn a_signed_delivery_runs_once_and_everything_else_is_refused() {
    on_both(|store| async move {
        let (addr, secret) = start(&store).await;
        let path = "/hooks/acme/new-lead";
        let body = br#"{"email":"ann@example.com"}"#.to_vec();
        let (status, reply) = post(addr, path, &signed(&secret, "msg_1", now(), &body), body.clone()).await;
        assert_eq!(status, 202, "{reply}");
        let run = reply["run_id"].as_i64().unwrap();
        let job = &store.jobs("acme", 1).await.unwrap()[0];
        assert_eq!(job.id, run);
        let claimed = store.claim("n", 1, std::time::Duration::from_secs(30)).await.unwrap();
        assert_eq!(claimed[0].input, r#"{"email":"ann@example.com"}"#);
        assert_eq!(claimed[0].trigger, "webhook");

        let refusals: Vec<Refusal> = vec![
            (signed(&secret, "msg_1", now(), &body), body.clone(), path, 409, "delivery `msg_1` was already accepted; replays are refused"),
            (signed(&secret, "msg_2", now() - 600, &body), body.clone(), path, 401, "webhook-timestamp is more than 5 minutes away from the server's clock: the delivery is stale or replayed"),
            (signed(&webhook::new_secret(), "msg_3", now(), &body), body.clone(), path, 401, "the webhook signature does not match"),
            (
                signed(&secret, "msg_4", now(), br#"{"email":"other"}"#),
                body.clone(),
                path,
                401,
                "the webhook signature does not match",
            ),
            (vec![], body.clone(), path, 401, "missing `webhook-id` header (deliveries must be signed per the Standard Webhooks spec)"),
            (signed(&secret, "msg_5", now(), b"not json"), b"not json".to_vec(), path, 400, "the body is not JSON: expected ident at line 1 column 2"),
            (signed(&secret, "msg_6", now(), &body), body.clone(), "/hooks/acme/nightly", 404, "no webhook automation `nightly` for tenant `acme`"),
            (signed(&secret, "msg_7", now(), &body), body.clone(), "/hooks/globex/new-lead", 404, "no webhook automation `new-lead` for tenant `globex`"),
        ];
        for (headers, body, path, code, message) in refusals {
            let (status, reply) = post(addr, path, &headers, body).await;
            assert_eq!((status, reply["error"]["message"].as_str().unwrap_or_default()), (code, message), "{reply}");
        }
        let big = vec![b' '; mc_server::MAX_BODY_BYTES + 1];
        let (status, _) = post(addr, path, &signed(&secret, "msg_8", now(), &big), big).await;
        assert_eq!(status, 413, "a body over the limit is refused");
        assert_eq!(store.jobs("acme", 10).await.unwrap().len(), 1, "only the one valid delivery enqueued work");
    })
    .await;
}

#[tokio::test]
async fn the_official_standardwebhooks_client_is_accepted() {
    on_both(|store| async move {
        let (addr, secret) = start(&store).await;
        let script = r#"
import json, sys, time, urllib.request
from datetime import datetime, timezone
from standardwebhooks.webhooks import Webhook
url, secret = sys.argv[1], sys.argv[2]
payload = json.dumps({"source": "python"})
now = datetime.now(tz=timezone.utc)
signature = Webhook(secret).sign("msg_py", now, payload)
req = urllib.request.Request(url, data=payload.encode(), method="POST", headers={
    "webhook-id": "msg_py", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature,
    "content-type": "application/json"})
print(urllib.request.urlopen(req).status)
"#;
        let url = format!("http://{addr}/hooks/acme/new-lead");
        // Off the runtime's thread: the server under test runs on it.
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(std::env::var("MC_PYTHON").unwrap_or_else(|_| "python3".into()))
                .args(["-c", script, &url, &secret])
                .output()
        })
        .await
        .unwrap()
        .expect("python3 runs");
        assert!(
            out.status.success(),
            "the standardwebhooks client failed (install it with `python3 -m pip install standardwebhooks`): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "202");
        let job = &store.jobs("acme", 1).await.unwrap()[0];
        assert_eq!(job.state, "available");
    })
    .await;
}
