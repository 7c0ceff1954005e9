//! The REST API on both backends, against a real server on 127.0.0.1 (port 0): keys and roles,
//! the cross-tenant matrix over every operation of the OpenAPI document, secrets, per-object
//! edits, bad input, rate limits.

use std::net::SocketAddr;

use mc_server::{AppState, RateLimit, RateLimiter};
use mc_store::{NewKey, Principal, Role, Store};
use mc_testkit::on_both;
use serde_json::{Value, json};

const ACME: &str = r#"tenant: acme
name: Acme
agents:
  - name: writer
    role: Content writer
    plugin: noop
automations:
  - name: weekly-post
    agent: writer
    trigger: { cron: "0 9 * * 1", timezone: Europe/Berlin }
    input: { brief: "Spring sale" }
  - name: quick
    agent: writer
    trigger: { manual: true }
"#;

/// A server over `store` and what a test needs to call it.
#[derive(Clone)]
struct Server {
    addr: SocketAddr,
    http: reqwest::Client,
}

struct Reply {
    status: u16,
    body: Value,
    headers: reqwest::header::HeaderMap,
}

impl Server {
    async fn start(store: &Store, limit: RateLimit) -> Server {
        Server::start_with(store, limit, None).await
    }

    /// A server whose AI gateway is `gateway`.
    async fn start_with(
        store: &Store,
        limit: RateLimit,
        gateway: Option<std::sync::Arc<mc_gateway::Gateway>>,
    ) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut state = AppState::new(store.clone());
        state.gateway = gateway;
        state.template_dir = Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates"));
        state.limiter = std::sync::Arc::new(RateLimiter::new(limit));
        state.sealer = Some(mc_store::Sealer::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap());
        tokio::spawn(mc_server::serve(listener, state, std::future::pending()));
        Server {
            addr,
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, key: Option<&str>, method: &str, path: &str, body: Option<Value>) -> Reply {
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("http://{}{path}", self.addr));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, body, headers }
    }
}

async fn key(store: &Store, role: Role, tenant: Option<&str>, partner: Option<&str>) -> String {
    store
        .create_key(
            &Principal::local(),
            NewKey {
                role,
                tenant: tenant.map(str::to_string),
                partner: partner.map(str::to_string),
                label: format!("{role:?}"),
                expires_at: None,
            },
        )
        .await
        .unwrap()
        .1
}

fn limitless() -> RateLimit {
    RateLimit {
        per_second: 1e9,
        burst: 1e9,
    }
}

/// Keys of every role: the operator's, acme's and globex's admin and viewer, and a partner's
/// (which onboarded initech).
struct Keys {
    operator: String,
    acme_admin: String,
    acme_viewer: String,
    globex_admin: String,
    globex_viewer: String,
    partner: String,
}

/// Two tenants with agents, automations, a finished run, a secret; and keys of every role.
async fn world(store: &Store, server: &Server) -> Keys {
    store
        .apply(&mc_config::parse(ACME, &mc_config::Known::default()).unwrap())
        .await
        .unwrap();
    store
        .apply(&mc_config::parse(&ACME.replace("acme", "globex"), &mc_config::Known::default()).unwrap())
        .await
        .unwrap();
    let operator = key(store, Role::Operator, None, None).await;
    let keys = Keys {
        acme_admin: key(store, Role::Admin, Some("acme"), None).await,
        acme_viewer: key(store, Role::Viewer, Some("acme"), None).await,
        globex_admin: key(store, Role::Admin, Some("globex"), None).await,
        globex_viewer: key(store, Role::Viewer, Some("globex"), None).await,
        partner: key(store, Role::Partner, None, Some("reseller")).await,
        operator,
    };
    let r = server
        .call(
            Some(&keys.partner),
            "POST",
            "/api/v1/tenants",
            Some(json!({"id": "initech", "name": "Initech"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["partner"], "reseller");
    for tenant in ["acme", "globex"] {
        let r = server
            .call(
                Some(&keys.operator),
                "PUT",
                &format!("/api/v1/tenants/{tenant}/secrets/crm-token"),
                Some(json!({"value": format!("{tenant}-secret-value")})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = server
            .call(
                Some(&keys.operator),
                "POST",
                &format!("/api/v1/tenants/{tenant}/automations/quick/run"),
                None,
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
    }
    // Both runs end dead (so retry applies).
    let claimed = store.claim("n", 10, std::time::Duration::from_secs(30)).await.unwrap();
    for j in claimed {
        store
            .fail(
                "n",
                j.id,
                &mc_store::FailedAttempt {
                    kind: "trap",
                    error: "boom",
                    retryable: false,
                    logs: None,
                    fuel: 0,
                    plugin_hash: None,
                },
            )
            .await
            .unwrap();
    }
    keys
}

/// Everything a cross-tenant request could have changed or leaked, for before/after comparison.
async fn acme_state(store: &Store) -> Value {
    let scope = store.tenant("acme");
    let (config, version) = scope.config().await.unwrap().unwrap();
    let runs = scope
        .runs(&mc_store::RunFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .runs;
    let runs: Vec<Value> = runs.iter().map(|r| json!([r.id, r.state, r.attempt])).collect();
    let secrets: Vec<String> = scope.secrets().await.unwrap().into_iter().map(|s| s.name).collect();
    let keys: Vec<Value> = store
        .keys(&Principal::local())
        .await
        .unwrap()
        .into_iter()
        .map(|k| json!([k.id, k.revoked_at.is_some()]))
        .collect();
    let rows: Vec<Value> = match scope.registry_rows("clients", &[], None, 100).await {
        Ok(rows) => rows.into_iter().map(|r| json!([r.id, r.data])).collect(),
        Err(_) => Vec::new(),
    };
    json!({ "config": config, "version": version, "runs": runs, "secrets": secrets, "keys": keys, "rows": rows })
}

/// A valid body for each write operation, aimed at acme.
fn body_for(method: &str, template: &str) -> Option<Value> {
    Some(match (method, template) {
        ("post", "/api/v1/tenants") => json!({"id": "acme-two", "name": "Acme Two"}),
        ("post", "/api/v1/apply") => json!({"config": ACME.replace("Spring sale", "Changed")}),
        ("post", "/api/v1/keys") => json!({"role": "admin", "tenant": "acme"}),
        ("put", "/api/v1/tenants/{tenant}/agents/{agent}") => json!({"role": "Changed", "plugin": "noop"}),
        ("put", "/api/v1/tenants/{tenant}/automations/{automation}") => {
            json!({"agent": "writer", "trigger": {"interval": "1h"}})
        }
        ("put", "/api/v1/tenants/{tenant}/secrets/{secret}") => json!({"value": "stolen"}),
        ("put", "/api/v1/tenants/{tenant}/plan") => json!({"plan": "scale"}),
        ("post", "/api/v1/prices") => json!({"book": mc_ai::prices::SHIPPED.replace("0.02", "0.03")}),
        ("put", "/api/v1/brands/{partner}") => json!({"name": "Stolen", "primary_color": "#123456"}),
        ("put", "/api/v1/tenants/{tenant}/partner") => json!({"partner": "reseller"}),
        ("post", p) if p.ends_with("/run") || p.ends_with("/approve") => json!({}),
        ("post", p) if p.ends_with("/reject") => json!({"reason": "no"}),
        ("post", p) if p.ends_with("/messages") => json!({"content": "hello"}),
        ("post", p) if p.ends_with("/install") => json!({"parameters": {"company": "Evil", "topic": "Takeover"}}),
        ("post" | "patch", p) if p.contains("/registries/") => json!({"email": "stolen@x.io"}),
        _ => return None,
    })
}

fn fill(template: &str, acme_admin_key_id: &str) -> String {
    template
        .replace("{tenant}", "acme")
        .replace("{agent}", "writer")
        .replace("{automation}", "quick")
        .replace("{run}", "1")
        .replace("{secret}", "crm-token")
        .replace("{registry}", "clients")
        .replace("{chat}", "1")
        .replace("{template}", "marketing-agency")
        .replace("{row}", "1")
        .replace("{key}", acme_admin_key_id)
        // Another partner than the matrix's own: no outsider manages its brand.
        .replace("{partner}", "northwind")
}

#[tokio::test]
async fn no_operation_lets_another_tenant_or_a_weaker_role_read_or_change_data() {
    on_both(|store| async move {
        let server = Server::start(&store, limitless()).await;
        let keys = world(&store, &server).await;
        let with = format!("{ACME}registries:\n  - {{ name: clients, fields: [{{ name: email, type: string }}] }}\n");
        store
            .apply(&mc_config::parse(&with, &mc_config::Known::default()).unwrap())
            .await
            .unwrap();
        store
            .tenant("acme")
            .registry_insert("clients", &json!({ "email": "a@x.io" }))
            .await
            .unwrap();
        let viewer_id = keys.acme_viewer.split('_').nth(1).unwrap();
        store.tenant("acme").open_chat("writer", viewer_id).await.unwrap();
        let acme_admin_id = keys.acme_admin.split('_').nth(1).unwrap().to_string();
        let doc = server.call(None, "GET", "/api/v1/openapi.json", None).await.body;
        let before = acme_state(&store).await;
        let mut operations = 0;
        let outsiders = [
            ("globex admin", &keys.globex_admin),
            ("globex viewer", &keys.globex_viewer),
            ("partner of initech", &keys.partner),
        ];
        for (template, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                operations += 1;
                let path = fill(template, &acme_admin_id);
                let write = method != "get";
                let body = body_for(method, template);
                assert!(
                    !write || body.is_some() || !item[method].get("requestBody").is_some_and(|b| b["required"] == true),
                    "{method} {template}: the matrix needs a body for it"
                );
                let tenant_scoped =
                    template.contains("{tenant}") || template == "/api/v1/apply" || template == "/api/v1/keys/{key}";
                for (who, key) in outsiders {
                    let r = server.call(Some(key), method, &path, body.clone()).await;
                    let text = r.body.to_string();
                    assert!(
                        !text.contains("acme-secret-value") && !text.contains("Spring sale"),
                        "{who} {method} {path} leaked: {text}"
                    );
                    if template == "/api/v1/brands/{partner}" {
                        // Tenant keys manage no brands; a partner sees no other partner's.
                        let expected = if who.starts_with("partner") { 404 } else { 403 };
                        assert_eq!(r.status, expected, "{who} {method} {path}: {text}");
                    } else if template == "/api/v1/keys/{key}" && who.ends_with("viewer") {
                        // Viewers manage no keys at all: the same answer whether the key exists.
                        assert_eq!(r.status, 403, "{who} {method} {path}: {text}");
                    } else if tenant_scoped {
                        assert_eq!(r.status, 404, "{who} {method} {path}: {text}");
                        assert_eq!(r.body["error"]["code"], "not_found");
                    } else if template == "/api/v1/tenants" && write {
                        // Partners create their own tenants; tenant keys may not.
                        assert!(
                            r.status == 403 || (who.starts_with("partner") && r.status == 201),
                            "{who} {method} {path}: {text}"
                        );
                    } else if template == "/api/v1/keys" && write {
                        assert!(r.status == 404 || r.status == 403, "{who} {method} {path}: {text}");
                    } else {
                        assert!(r.status == 200 || r.status == 403, "{who} {method} {path}: {text}");
                        assert!(!text.contains("\"acme\""), "{who} {method} {path} listed acme: {text}");
                    }
                }
                if write {
                    let r = server.call(Some(&keys.acme_viewer), method, &path, body.clone()).await;
                    assert_eq!(r.status, 403, "acme viewer {method} {path}: {}", r.body);
                    assert_eq!(r.body["error"]["code"], "forbidden");
                } else if template == LIVE_RUNS {
                    // An endless stream: its status is all there is to check here.
                    let r = server
                        .http
                        .get(format!("http://{}{path}", server.addr))
                        .bearer_auth(&keys.acme_viewer)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200, "acme viewer {path}");
                } else {
                    let r = server.call(Some(&keys.acme_viewer), method, &path, None).await;
                    assert!(
                        r.status == 200 || r.status == 403,
                        "acme viewer {method} {path}: {}",
                        r.body
                    );
                }
                let r = server.call(None, method, &path, body.clone()).await;
                if template != "/api/v1/openapi.json" {
                    assert_eq!(r.status, 401, "no key {method} {path}: {}", r.body);
                }
            }
        }
        assert!(operations >= 30, "the document lists every operation ({operations})");
        assert_eq!(acme_state(&store).await, before, "nothing of acme changed");
        // The audit log shows acme only its own rows, and other tenants none of acme's.
        let r = server
            .call(Some(&keys.globex_admin), "GET", "/api/v1/audit", None)
            .await;
        assert!(
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["tenant"] == "globex"),
            "{}",
            r.body
        );
        let r = server
            .call(Some(&keys.acme_admin), "GET", "/api/v1/audit?tenant=globex", None)
            .await;
        assert_eq!(r.status, 404);
    })
    .await;
}

#[tokio::test]
async fn admins_edit_agents_and_automations_and_every_change_is_audited() {
    on_both(|store| async move {
        let server = Server::start(&store, limitless()).await;
        let keys = world(&store, &server).await;
        let k = Some(keys.acme_admin.as_str());
        let base = "/api/v1/tenants/acme";

        let r = server
            .call(k, "PUT", &format!("{base}/automations/daily"), Some(json!({"agent": "writer", "trigger": {"cron": "0 9 * * 8"}})))
            .await;
        assert_eq!((r.status, r.body["error"]["message"].as_str().unwrap()), (400, "automations[2].trigger.cron: invalid cron expression `0 9 * * 8`: day-of-week: 8 is out of range 0-7"), "{}", r.body);
        let r = server
            .call(k, "PUT", &format!("{base}/automations/daily"), Some(json!({"agent": "ghost", "trigger": {"interval": "1d"}})))
            .await;
        assert_eq!(r.status, 400);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("agent `ghost` is not defined"), "{}", r.body);
        let r = server
            .call(k, "PUT", &format!("{base}/automations/daily"), Some(json!({"agent": "writer", "trigger": {"cron": "0 9 * * *", "timezone": "Europe/Berlin"}, "priority": 5})))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["schedule"], "cron \"0 9 * * *\" Europe/Berlin");
        let next: jiff::Timestamp = r.body["next_run"].as_str().unwrap().parse().unwrap();
        assert!(next > jiff::Timestamp::now());
        let r = server.call(k, "POST", &format!("{base}/automations/daily/disable"), None).await;
        assert_eq!((r.status, &r.body["enabled"], &r.body["next_run"]), (200, &json!(false), &Value::Null));
        let r = server.call(k, "POST", &format!("{base}/automations/daily/enable"), None).await;
        assert_eq!(r.body["enabled"], true);
        // A loop of completion triggers is refused like in a file.
        let r = server
            .call(k, "PUT", &format!("{base}/automations/quick"), Some(json!({"agent": "writer", "trigger": {"after": "daily"}})))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = server
            .call(k, "PUT", &format!("{base}/automations/daily"), Some(json!({"agent": "writer", "trigger": {"after": "quick"}})))
            .await;
        assert_eq!(r.status, 400);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("completion triggers form a loop"), "{}", r.body);
        let r = server.call(k, "DELETE", &format!("{base}/automations/daily"), None).await;
        assert_eq!((r.status, r.body["error"]["message"].as_str().unwrap()), (409, "automations quick run after `daily`: delete or change them first"));
        let r = server.call(k, "DELETE", &format!("{base}/agents/writer"), None).await;
        assert_eq!(r.status, 409, "{}", r.body);

        // Concurrent edits of one tenant all land (nine agents need more than the Starter plan).
        store.set_plan(&Principal::local(), "acme", mc_store::Plan::Scale).await.unwrap();
        let mut edits = tokio::task::JoinSet::new();
        for i in 0..8 {
            let (s, key) = (server.clone(), keys.acme_admin.clone());
            let path = format!("{base}/agents/helper-{i}");
            edits.spawn(async move { s.call(Some(&key), "PUT", &path, Some(json!({"role": "Helper", "plugin": "noop"}))).await.status });
        }
        assert!(edits.join_all().await.iter().all(|s| *s == 201));
        let r = server.call(k, "GET", &format!("{base}/agents"), None).await;
        assert_eq!(r.body.as_array().unwrap().len(), 9, "{}", r.body);

        // Runs: list with filters and paging, detail, logs, output, retry, cancel.
        for _ in 0..5 {
            server.call(k, "POST", &format!("{base}/automations/weekly-post/run"), Some(json!({"input": {"n": 1}}))).await;
        }
        let r = server.call(k, "GET", &format!("{base}/runs?limit=2&automation=weekly-post"), None).await;
        let page1: Vec<i64> = r.body["items"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
        let cursor = r.body["next_cursor"].as_str().unwrap().to_string();
        let r = server.call(k, "GET", &format!("{base}/runs?limit=2&automation=weekly-post&cursor={cursor}"), None).await;
        let page2: Vec<i64> = r.body["items"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(page1.len() + page2.len(), 4);
        assert!(page1.iter().all(|a| page2.iter().all(|b| a > b)), "{page1:?} {page2:?}");
        let r = server.call(k, "GET", &format!("{base}/runs?state=dead"), None).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
        let dead = r.body["items"][0]["id"].as_i64().unwrap();
        let r = server.call(k, "POST", &format!("{base}/runs/{dead}/retry"), None).await;
        assert_eq!((r.status, r.body["state"].as_str().unwrap()), (200, "available"));
        let r = server.call(k, "POST", &format!("{base}/runs/{dead}/retry"), None).await;
        assert_eq!((r.status, r.body["error"]["message"].as_str().unwrap()), (409, format!("run {dead} is available: only dead or cancelled runs can be retried").as_str()));
        let r = server.call(k, "POST", &format!("{base}/runs/{}/cancel", page1[0]), None).await;
        assert_eq!(r.body["state"], "cancelled");
        let r = server.call(k, "GET", &format!("{base}/runs/{}/output", page1[0]), None).await;
        assert_eq!(r.body, json!({"state": "cancelled", "output": null}));
        let r = server.call(k, "GET", &format!("{base}/runs/{}/logs", page1[0]), None).await;
        assert_eq!(r.body, json!({"lines": []}));

        // A webhook automation's secret is issued through the API, shown once, and rotating it
        // retires the old one.
        let r = server
            .call(k, "PUT", &format!("{base}/automations/lead"), Some(json!({"agent": "writer", "trigger": {"webhook": {}}})))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let r = server.call(k, "POST", &format!("{base}/automations/quick/webhook-secret"), None).await;
        assert_eq!((r.status, r.body["error"]["message"].as_str().unwrap()), (409, "automation `quick` is not triggered by a webhook"));
        let first = server.call(k, "POST", &format!("{base}/automations/lead/webhook-secret"), None).await.body;
        assert_eq!(first["path"], "/hooks/acme/lead");
        let deliver = |secret: String, id: &'static str| {
            let s = server.clone();
            async move {
                let body = br#"{"email":"ann@example.com"}"#.to_vec();
                let ts = jiff::Timestamp::now().as_second();
                s.http
                    .post(format!("http://{}/hooks/acme/lead", s.addr))
                    .header("webhook-id", id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", mc_server::webhook::sign(&secret, id, ts, &body).unwrap())
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        let old = first["secret"].as_str().unwrap().to_string();
        assert_eq!(deliver(old.clone(), "m1").await, 202);
        let second = server.call(k, "POST", &format!("{base}/automations/lead/webhook-secret"), None).await.body;
        assert_ne!(second["secret"], first["secret"]);
        assert_eq!(deliver(old, "m2").await, 401, "the old secret is retired");
        assert_eq!(deliver(second["secret"].as_str().unwrap().to_string(), "m3").await, 202);

        // Every change above is in the audit log, with who made it.
        let r = server.call(k, "GET", "/api/v1/audit?limit=500", None).await;
        let actions: Vec<&str> = r.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        for expected in ["webhook.rotate_secret", "config.apply", "automation.disable", "automation.enable", "automation.run", "run.retry", "run.cancel", "secret.put"] {
            assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
        }
        let admin_id = keys.acme_admin.split('_').nth(1).unwrap();
        assert!(r.body["items"].as_array().unwrap().iter().any(|e| e["actor"] == format!("key {admin_id} (admin)")));
    })
    .await;
}

#[tokio::test]
async fn keys_are_shown_once_stored_hashed_revocable_and_secrets_never_come_back() {
    on_both(|store| async move {
        let server = Server::start(&store, limitless()).await;
        let keys = world(&store, &server).await;
        let r = server
            .call(
                Some(&keys.acme_admin),
                "POST",
                "/api/v1/keys",
                Some(json!({"role": "viewer", "tenant": "acme", "label": "ci"})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let new_key = r.body["key"].as_str().unwrap().to_string();
        let id = r.body["id"].as_str().unwrap().to_string();
        let r = server.call(Some(&keys.acme_admin), "GET", "/api/v1/keys", None).await;
        assert!(!r.body.to_string().contains(&new_key), "a listing never shows a key");
        assert_eq!(
            r.body.as_array().unwrap().len(),
            3,
            "acme's admin sees acme's keys only: {}",
            r.body
        );
        let r = server.call(Some(&new_key), "GET", "/api/v1/whoami", None).await;
        assert_eq!(r.body["role"], "viewer");
        let r = server.call(Some(&keys.acme_admin), "GET", "/api/v1/keys", None).await;
        let listed = r
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id.as_str())
            .unwrap()
            .clone();
        assert!(listed["last_used_at"].is_string(), "{listed}");
        // Escalation is refused: a tenant admin cannot mint an operator or partner key.
        for role in ["operator", "partner"] {
            let r = server
                .call(
                    Some(&keys.acme_admin),
                    "POST",
                    "/api/v1/keys",
                    Some(json!({"role": role, "partner": "x"})),
                )
                .await;
            assert_eq!(r.status, 403, "{}", r.body);
        }
        let r = server
            .call(Some(&keys.acme_admin), "DELETE", &format!("/api/v1/keys/{id}"), None)
            .await;
        assert_eq!(r.status, 200);
        assert!(r.body["revoked_at"].is_string());
        let r = server.call(Some(&new_key), "GET", "/api/v1/whoami", None).await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str().unwrap()),
            (401, "unknown or revoked API key")
        );
        // An expired key is told so; a key cannot be issued already expired.
        let (_, short) = store
            .create_key(
                &Principal::local(),
                NewKey {
                    role: Role::Viewer,
                    tenant: Some("acme".into()),
                    partner: None,
                    label: "short-lived".into(),
                    expires_at: Some(mc_store::now_micros() + 300_000),
                },
            )
            .await
            .unwrap();
        assert_eq!(
            server.call(Some(&short), "GET", "/api/v1/whoami", None).await.status,
            200
        );
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        let r = server.call(Some(&short), "GET", "/api/v1/whoami", None).await;
        assert_eq!(r.status, 401);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("this API key expired at 20"),
            "{}",
            r.body
        );
        let r = server
            .call(
                Some(&keys.acme_admin),
                "POST",
                "/api/v1/keys",
                Some(json!({"role": "viewer", "tenant": "acme", "expires_at": "2001-01-01T00:00:00Z"})),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str().unwrap()),
            (400, "expires_at must be in the future")
        );
        for bad in [
            "",
            "mc_",
            "Bearer",
            &new_key.replace('_', "-"),
            &format!("{}x", &keys.operator),
        ] {
            let r = server.call(Some(bad), "GET", "/api/v1/whoami", None).await;
            assert_eq!(r.status, 401, "{bad}");
        }

        // Secrets: sealed at rest, listed by name, never answered, never in the audit log.
        let r = server
            .call(Some(&keys.acme_viewer), "GET", "/api/v1/tenants/acme/secrets", None)
            .await;
        assert_eq!(r.body.as_array().unwrap().len(), 1);
        assert_eq!(r.body[0]["name"], "crm-token");
        assert!(!r.body.to_string().contains("acme-secret-value"));
        let r = server
            .call(Some(&keys.operator), "GET", "/api/v1/audit?tenant=acme&limit=500", None)
            .await;
        assert!(!r.body.to_string().contains("secret-value"));
        let r = server
            .call(
                Some(&keys.acme_admin),
                "DELETE",
                "/api/v1/tenants/acme/secrets/crm-token",
                None,
            )
            .await;
        assert_eq!(r.status, 204);
        let r = server
            .call(
                Some(&keys.acme_admin),
                "DELETE",
                "/api/v1/tenants/acme/secrets/crm-token",
                None,
            )
            .await;
        assert_eq!(r.status, 404);
    })
    .await;
}

#[tokio::test]
async fn bad_input_gets_a_json_error_and_the_right_status() {
    on_both(|store| async move {
        let server = Server::start(&store, limitless()).await;
        let keys = world(&store, &server).await;
        let k = keys.operator.as_str();
        let url = |p: &str| format!("http://{}{p}", server.addr);
        let raw = |method: reqwest::Method, p: &str, ct: Option<&str>, body: Vec<u8>| {
            let mut req = server.http.request(method, url(p)).bearer_auth(k).body(body);
            if let Some(ct) = ct {
                req = req.header("content-type", ct);
            }
            req
        };
        let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
            (raw(reqwest::Method::POST, "/api/v1/tenants", Some("application/json"), b"{\"id\": ".to_vec()), 400, "malformed JSON: id: EOF while parsing a value at line 1 column 7"),
            (raw(reqwest::Method::POST, "/api/v1/tenants", Some("application/json"), br#"{"id": 7, "name": "x"}"#.to_vec()), 400, "invalid body: id: invalid type: integer `7`, expected a string at line 1 column 8"),
            (raw(reqwest::Method::POST, "/api/v1/tenants", Some("application/json"), br#"{"id": "x", "name": "x", "plan": "gold"}"#.to_vec()), 400, "invalid body: plan: unknown field `plan`, expected one of `id`, `name`, `partner` at line 1 column 31"),
            (raw(reqwest::Method::POST, "/api/v1/tenants", None, br#"{"id": "x", "name": "x"}"#.to_vec()), 415, "expected a JSON body with `content-type: application/json`"),
            (raw(reqwest::Method::POST, "/api/v1/tenants", Some("application/json"), br#"{"id": "Not Valid", "name": "x"}"#.to_vec()), 400, "id: `Not Valid` is not a valid name: use 1 to 63 lower-case letters, digits and dashes, not starting or ending with a dash"),
            (raw(reqwest::Method::POST, "/api/v1/tenants", Some("application/json"), br#"{"id": "acme", "name": "x"}"#.to_vec()), 409, "tenant `acme` exists already"),
            (raw(reqwest::Method::POST, "/api/v1/apply", Some("application/json"), vec![b' '; mc_server::MAX_BODY_BYTES + 1]), 413, "the request body is larger than 4194304 bytes"),
            (raw(reqwest::Method::POST, "/api/v1/apply", Some("application/json"), serde_json::to_vec(&json!({"config": "tenant: acme\nagents: 5\n"})).unwrap()), 400, "configuration: line 2, column 9: agents: invalid type: integer `5`, expected a sequence"),
            (raw(reqwest::Method::GET, "/api/v1/tenants/acme/runs?cursor=abc", None, vec![]), 400, "invalid cursor `abc`: pass the `next_cursor` of the previous page"),
            (raw(reqwest::Method::GET, "/api/v1/tenants/acme/runs?limit=0", None, vec![]), 400, "limit must be between 1 and 200, got 0"),
            (raw(reqwest::Method::GET, "/api/v1/tenants/acme/runs?limit=ten", None, vec![]), 400, "invalid query string: limit: invalid digit found in string"),
            (raw(reqwest::Method::GET, "/api/v1/tenants/acme/runs?state=exploded", None, vec![]), 400, "unknown state `exploded` (one of scheduled, available, running, succeeded, dead, cancelled, failed, awaiting_approval, rejected)"),
            (raw(reqwest::Method::GET, "/api/v1/tenants/acme/runs?color=red", None, vec![]), 400, "invalid query string: color: unknown field `color`, expected one of `state`, `automation`, `agent`, `limit`, `cursor`"),
            (raw(reqwest::Method::GET, "/api/v1/tenants/acme/runs/999999", None, vec![]), 404, "no run 999999"),
            (raw(reqwest::Method::GET, "/api/v1/tenants/acme/runs/x1", None, vec![]), 400, "invalid path: Cannot parse value at index 1 with value `x1` to a `i64`"),
            (raw(reqwest::Method::GET, "/api/v1/tenants/nobody/agents", None, vec![]), 404, "no tenant `nobody`"),
            (raw(reqwest::Method::GET, "/api/v1/tenants/acme/agents/nobody", None, vec![]), 404, "no agent `nobody`"),
            (raw(reqwest::Method::POST, "/api/v1/tenants/acme/automations/nobody/run", None, vec![]), 404, "no automation `nobody`"),
            (raw(reqwest::Method::DELETE, "/api/v1/keys/000000000000", None, vec![]), 404, "no key `000000000000`"),
            (raw(reqwest::Method::PATCH, "/api/v1/tenants", None, vec![]), 405, "PATCH is not allowed on /api/v1/tenants"),
            (raw(reqwest::Method::GET, "/api/v2/tenants", None, vec![]), 404, "no route /api/v2/tenants"),
        ];
        for (req, status, message) in cases {
            let r = req.send().await.unwrap();
            let got = r.status().as_u16();
            let body: Value = r.json().await.unwrap();
            assert_eq!((got, body["error"]["message"].as_str().unwrap_or_default()), (status, message), "{body}");
            assert!(body["error"]["code"].is_string());
        }
        assert!(store.tenant("x").get().await.unwrap().is_none(), "nothing half-created");
    })
    .await;
}

#[tokio::test]
async fn each_key_is_rate_limited_with_retry_after() {
    on_both(|store| async move {
        let server = Server::start(
            &store,
            RateLimit {
                per_second: 0.5,
                burst: 3.0,
            },
        )
        .await;
        let operator = key(&store, Role::Operator, None, None).await;
        let other = key(&store, Role::Operator, None, None).await;
        for _ in 0..3 {
            assert_eq!(
                server.call(Some(&operator), "GET", "/api/v1/whoami", None).await.status,
                200
            );
        }
        let r = server.call(Some(&operator), "GET", "/api/v1/whoami", None).await;
        assert_eq!(r.status, 429);
        assert_eq!(r.body["error"]["code"], "rate_limited");
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=2).contains(&retry), "{retry}");
        assert_eq!(
            server.call(Some(&other), "GET", "/api/v1/whoami", None).await.status,
            200,
            "limits are per key"
        );
    })
    .await;
}

/// The attack suite's first part: schemathesis (PyPI) generates requests from the OpenAPI
/// document — valid, invalid and stateful sequences — against a running server with an operator
/// key: no response may be a 5xx, break the document's schema, or carry an undocumented status.
#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_response_off_the_schema() {
    on_both(|store| async move {
        let server = Server::start(&store, limitless()).await;
        let keys = world(&store, &server).await;
        let url = format!("http://{}/api/v1/openapi.json", server.addr);
        let report = tempfile::tempdir().unwrap();
        let report_dir = report.path().to_path_buf();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(std::env::var("MC_SCHEMATHESIS").unwrap_or_else(|_| "st".into()))
                .args(["run", &url, "--header", &format!("Authorization: Bearer {}", keys.operator)])
                // The live stream of runs never ends by itself, so no request to it completes.
                .args(["--exclude-path", LIVE_RUNS])
                .args([
                    "--checks",
                    "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
                    "--max-examples",
                    "15",
                    "--seed",
                    "20261127",
                    "--workers",
                    "2",
                    "--report-dir",
                ])
                .arg(&report_dir)
                .output()
        })
        .await
        .unwrap()
        .expect("schemathesis runs (install it with `python3 -m pip install schemathesis`)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "schemathesis found problems:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(!stdout.contains("Authentication failed"), "the key must stay valid throughout:\n{stdout}");
        let doc = server.call(None, "GET", "/api/v1/openapi.json", None).await.body;
        let operations: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
        assert!(
            stdout.contains(&format!("Tested: {}", operations - 1)),
            "every operation but the live stream was tested:\n{stdout}"
        );
    })
    .await;
}

/// Records one AI call of `agent` as the gateway would: reserve, then settle at `cost`.
async fn bill(store: &Store, agent: &str, model: &str, cost: u64) {
    let now = mc_store::now_micros();
    let entry = mc_store::LedgerEntry {
        tenant: "acme".into(),
        agent: agent.into(),
        automation: Some("weekly-post".into()),
        run_id: "1".into(),
        attempt: 1,
        provider: "openai".into(),
        model: model.into(),
        input_tokens: 1_000,
        output_tokens: 100,
        cache_read_tokens: 24,
        price_version: 1,
        cost,
        at: now,
        ..Default::default()
    };
    mc_testkit::bill(store, &entry).await;
}

#[tokio::test]
async fn usage_budgets_plans_and_prices_through_the_api() {
    on_both(|store| async move {
        let server = Server::start(&store, limitless()).await;
        let keys = world(&store, &server).await;
        store
            .ensure_price_book(mc_ai::prices::SHIPPED, 20_000)
            .await
            .unwrap();
        store
            .apply(&mc_config::parse(&format!("{ACME}budget: {{ monthly: 10 }}\n"), &mc_config::Known::default()).unwrap())
            .await
            .unwrap();
        bill(&store, "writer", "gpt-4o-mini", 1_234_567).await;
        bill(&store, "writer", "claude-haiku-4-5", 5_000_000).await;
        let month = mc_store::month_and_day(mc_store::now_micros()).0;

        // The run's own charges, call by call (acme's run 1; its failed attempt burnt no fuel).
        let r = server
            .call(Some(&keys.acme_viewer), "GET", "/api/v1/tenants/acme/runs/1/charges", None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let calls: Vec<(&str, &str, &str, u64)> = r
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["kind"].as_str().unwrap(),
                    c["model"].as_str().unwrap(),
                    c["cost_usd"].as_str().unwrap(),
                    c["input_tokens"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            calls,
            [
                ("ai", "gpt-4o-mini", "1.234567", 1_000),
                ("ai", "claude-haiku-4-5", "5.00", 1_000)
            ]
        );
        let r = server
            .call(Some(&keys.globex_admin), "GET", "/api/v1/tenants/acme/runs/1/charges", None)
            .await;
        assert_eq!(r.status, 404);

        let r = server
            .call(Some(&keys.acme_viewer), "GET", "/api/v1/tenants/acme/usage?by=model", None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["month"], month.as_str());
        assert_eq!(r.body["lines"][0]["key"], "claude-haiku-4-5");
        assert_eq!(r.body["total"]["cost_micros"], 6_234_567);
        assert_eq!(r.body["total"]["cost_usd"], "6.234567");
        assert_eq!(r.body["total"]["cache_read_tokens"], 48);

        let r = server
            .call(Some(&keys.acme_admin), "GET", "/api/v1/tenants/acme/usage?by=agent&format=csv", None)
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["content-type"], "text/csv; charset=utf-8");
        assert!(r.headers["content-disposition"].to_str().unwrap().contains(&format!("usage-acme-{month}-by-agent.csv")));
        assert_eq!(
            r.body.as_str().unwrap(),
            "key,ai_calls,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,estimated_calls,fuel,ai_cost_usd,fuel_cost_usd,cost_usd\n\
             \"writer\",2,2000,200,48,0,0,0,6.234567,0.00,6.234567\n\
             \"total\",2,2000,200,48,0,0,0,6.234567,0.00,6.234567\n"
        );

        let r = server.call(Some(&keys.acme_viewer), "GET", "/api/v1/tenants/acme/budget", None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            (r.body["plan"].as_str(), r.body["monthly_budget_usd"].as_str(), r.body["spent_usd"].as_str()),
            (Some("starter"), Some("10.00"), Some("6.234567"))
        );
        assert_eq!(r.body["alerts"][0]["threshold"], 50);
        assert_eq!(r.body["alerts"].as_array().unwrap().len(), 1);

        // Bad input answers 400 with what to write.
        for (path, message) in [
            ("/api/v1/tenants/acme/usage?month=2026-13", "`2026-13` is not a month: write it as YYYY-MM, like 2026-11"),
            ("/api/v1/tenants/acme/usage?by=colour", "by must be agent, automation, model or day, not `colour`"),
            ("/api/v1/tenants/acme/usage?format=pdf", "format must be json or csv, not `pdf`"),
        ] {
            let r = server.call(Some(&keys.acme_admin), "GET", path, None).await;
            assert_eq!((r.status, r.body["error"]["message"].as_str()), (400, Some(message)), "{path}");
        }

        // Plans: only operators change them, and the limit names the plan.
        let r = server
            .call(Some(&keys.acme_admin), "PUT", "/api/v1/tenants/acme/plan", Some(json!({"plan": "scale"})))
            .await;
        assert_eq!((r.status, r.body["error"]["message"].as_str()), (403, Some("only operators change a tenant's plan")));
        let many: String = (0..4).map(|i| format!("  - {{ name: a{i}, role: Agent, plugin: noop }}\n")).collect();
        let file = ACME.replace("agents:\n", &format!("agents:\n{many}"));
        let r = server
            .call(Some(&keys.acme_admin), "POST", "/api/v1/apply", Some(json!({"config": file})))
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(
            r.body["error"]["message"],
            "tenant `acme` is on the Starter plan, which allows 3 agents; this configuration has 5; the Growth plan allows 8"
        );
        let r = server
            .call(Some(&keys.operator), "PUT", "/api/v1/tenants/acme/plan", Some(json!({"plan": "growth"})))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!((r.body["previous"].as_str(), r.body["max_agents"].as_u64()), (Some("starter"), Some(8)));
        let r = server
            .call(Some(&keys.acme_admin), "POST", "/api/v1/apply", Some(json!({"config": file})))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);

        // The operator's margin report: Growth pays $3,500; acme cost $6.234567.
        let r = server.call(Some(&keys.acme_admin), "GET", "/api/v1/report", None).await;
        assert_eq!(r.status, 403);
        let r = server.call(Some(&keys.operator), "GET", "/api/v1/report", None).await;
        let acme = r.body["tenants"].as_array().unwrap().iter().find(|t| t["tenant"] == "acme").unwrap().clone();
        assert_eq!(
            (acme["revenue_usd"].as_str(), acme["ai_cost_usd"].as_str(), acme["margin_usd"].as_str()),
            (Some("3500.00"), Some("6.234567"), Some("3493.765433"))
        );

        // Prices: anyone reads them, operators publish, a bad book is refused with its reason.
        let r = server.call(Some(&keys.acme_viewer), "GET", "/api/v1/prices", None).await;
        assert_eq!((r.status, r.body["version"].as_i64()), (200, Some(1)));
        let mini = r.body["models"].as_array().unwrap().iter().find(|m| m["model"] == "gpt-4o-mini").unwrap().clone();
        assert_eq!((mini["input"].as_str(), mini["cache_read"].as_str()), (Some("0.15"), Some("0.075")));
        let bad = json!({"book": "fuel_per_billion: 0\nmodels:\n  m: { provider: x, input: -1, output: 0 }\n"});
        let r = server.call(Some(&keys.operator), "POST", "/api/v1/prices", Some(bad)).await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (400, Some("price book: model `m`: input must be between 0 and 10000 USD, got -1"))
        );
        let new = json!({"book": mc_ai::prices::SHIPPED.replace("gpt-5:", "gpt-5-mini: { provider: openai, input: 0.25, output: 2.00 }\n  gpt-5:")});
        let r = server.call(Some(&keys.acme_admin), "POST", "/api/v1/prices", Some(new.clone())).await;
        assert_eq!(r.status, 403);
        let r = server.call(Some(&keys.operator), "POST", "/api/v1/prices", Some(new)).await;
        assert_eq!((r.status, r.body["version"].as_i64(), r.body["created"].as_bool()), (200, Some(2), Some(true)), "{}", r.body);
        // The new model can now be named by an agent; an unknown one cannot.
        for (model, status) in [("gpt-5-mini", 200), ("gpt-9", 400)] {
            let r = server
                .call(
                    Some(&keys.acme_admin),
                    "PUT",
                    "/api/v1/tenants/acme/agents/writer",
                    Some(json!({"role": "Writer", "plugin": "noop", "model": model})),
                )
                .await;
            assert_eq!(r.status, status, "{model}: {}", r.body);
        }
        let r = server.call(Some(&keys.acme_viewer), "GET", "/api/v1/providers", None).await;
        assert_eq!(r.status, 200);
    })
    .await;
}

/// The team as a tree and a run's delegation tree, readable by the tenant and by no one else.
#[tokio::test]
async fn the_team_and_a_run_tree_through_the_api() {
    on_both(|store| async move {
        let server = Server::start(&store, limitless()).await;
        let keys = world(&store, &server).await;
        let team = ACME.replace(
            "    plugin: noop\nautomations:",
            "    plugin: noop\n  - { name: editor, role: Edits, plugin: noop, reports_to: writer }\nautomations:",
        );
        store
            .apply(&mc_config::parse(&team, &mc_config::Known::default()).unwrap())
            .await
            .unwrap();
        let r = server
            .call(Some(&keys.acme_viewer), "GET", "/api/v1/tenants/acme/team", None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body[0]["name"], "writer");
        assert_eq!(r.body[0]["delegates"], json!(["editor"]));
        assert_eq!(r.body[0]["reports"][0]["name"], "editor");

        let job = |agent: &str, input: &str| mc_store::NewJob {
            tenant: "acme".into(),
            automation: None,
            agent: agent.into(),
            plugin: "noop".into(),
            input: input.into(),
            trigger: "manual".into(),
            priority: 0,
            max_attempts: 1,
            run_at: None,
            idempotency_key: Some(format!("tree-{agent}")),
        };
        let id = |e: &mc_store::Enqueued| match e {
            mc_store::Enqueued::Created(id) | mc_store::Enqueued::Duplicate(id) => *id,
        };
        let root = id(&store.enqueue(&[job("writer", "{\"brief\":\"x\"}")]).await.unwrap()[0]);
        let scope = store.tenant("acme");
        let parent = scope.parent_run(root).await.unwrap().unwrap();
        let child = id(&scope
            .enqueue_children(&parent, &[job("editor", "{\"draft\":\"y\"}")])
            .await
            .unwrap()[0]);

        for asked in [root, child] {
            let r = server
                .call(
                    Some(&keys.acme_viewer),
                    "GET",
                    &format!("/api/v1/tenants/acme/runs/{asked}/tree"),
                    None,
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(r.body["id"], root, "any run of the tree shows it from its top");
            assert_eq!(r.body["agent"], "writer");
            assert_eq!(r.body["children"][0]["id"], child);
            assert_eq!(r.body["children"][0]["input"], json!({ "draft": "y" }));
            assert_eq!(r.body["tree_cost"], "0.00");
        }
        let r = server
            .call(
                Some(&keys.globex_admin),
                "GET",
                &format!("/api/v1/tenants/acme/runs/{root}/tree"),
                None,
            )
            .await;
        assert_eq!(r.status, 404, "another tenant's key learns nothing: {}", r.body);
        let r = server
            .call(
                Some(&keys.globex_admin),
                "GET",
                &format!("/api/v1/tenants/globex/runs/{root}/tree"),
                None,
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.body);
        assert_eq!(r.body["error"]["message"], format!("no run {root}"));

        // Each member comes with its status, newest run and cost this month (one statement).
        bill(&store, "writer", "gpt-4o-mini", 1_500_000).await;
        let r = server
            .call(Some(&keys.acme_viewer), "GET", "/api/v1/tenants/acme/team", None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let writer = &r.body[0];
        assert_eq!(writer["last_run"]["id"], root, "{writer}");
        assert_eq!(writer["status"], "queued");
        assert_eq!(writer["cost_this_month_usd"], "1.50");
        let editor = &writer["reports"][0];
        assert_eq!(editor["last_run"]["id"], child);
        assert_eq!(editor["last_run"]["agent"], "editor");
        assert_eq!(editor["cost_this_month_usd"], "0.00");
        // globex's writer: only its own dead run from `world`, none of acme's cost.
        let r = server
            .call(Some(&keys.globex_viewer), "GET", "/api/v1/tenants/globex/team", None)
            .await;
        assert_eq!(r.body[0]["status"], "failing", "{}", r.body);
        assert_eq!(r.body[0]["last_run"]["state"], "dead");
        assert_eq!(r.body[0]["cost_this_month_usd"], "0.00");
        assert!(r.body[0]["last_run"]["id"].as_i64() < Some(root));
        // An agent that never ran.
        store
            .apply(&mc_config::parse(&ACME.replace("acme", "hooli"), &mc_config::Known::default()).unwrap())
            .await
            .unwrap();
        let r = server
            .call(Some(&keys.operator), "GET", "/api/v1/tenants/hooli/team", None)
            .await;
        assert_eq!(r.body[0]["status"], "never_run", "{}", r.body);
        assert_eq!(r.body[0]["last_run"], Value::Null);
    })
    .await;
}

/// The overview's numbers come from aggregates in the database: runs since a time by state,
/// spend against budget, next runs, approvals waiting, incidents; scoped to the tenant.
#[tokio::test]
async fn the_overview_counts_in_the_database_for_its_tenant_only() {
    on_both(|store| async move {
        let server = Server::start(&store, limitless()).await;
        let keys = world(&store, &server).await;
        // acme: the dead run of `world`, then two more run now, one of them finished.
        for _ in 0..2 {
            let r = server
                .call(
                    Some(&keys.acme_admin),
                    "POST",
                    "/api/v1/tenants/acme/automations/quick/run",
                    None,
                )
                .await;
            assert_eq!(r.status, 202, "{}", r.body);
        }
        let claimed = store.claim("n", 1, std::time::Duration::from_secs(30)).await.unwrap();
        let finished: Vec<mc_store::Finished> = claimed
            .iter()
            .map(|j| mc_store::Finished {
                id: j.id,
                output: "{}".into(),
                logs: None,
                fuel: 0,
            })
            .collect();
        store.complete_many("n", &finished).await.unwrap();
        bill(&store, "writer", "gpt-4o-mini", 2_000_000).await;
        let r = server
            .call(
                Some(&keys.acme_admin),
                "POST",
                "/api/v1/tenants/acme/automations/quick/disable",
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);

        let r = server
            .call(Some(&keys.acme_viewer), "GET", "/api/v1/tenants/acme/overview", None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let runs = &r.body["runs"];
        assert_eq!(runs["started"], 3, "{}", r.body);
        assert_eq!(runs["succeeded"], 1);
        assert_eq!(runs["failed"], 1);
        assert_eq!(runs["in_progress"], 1);
        assert_eq!(runs["by_state"], json!({ "available": 1, "dead": 1, "succeeded": 1 }));
        assert_eq!(r.body["latest_runs"].as_array().unwrap().len(), 3);
        assert!(
            r.body["latest_runs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|x| x["automation"] == "quick")
        );
        assert_eq!(r.body["budget"]["spent_usd"], "2.00");
        assert_eq!(r.body["next_runs"][0]["name"], "weekly-post");
        assert!(r.body["next_runs"][0]["next_run"].is_string());
        assert_eq!(
            r.body["next_runs"].as_array().unwrap().len(),
            1,
            "a manual trigger has no next run"
        );
        assert_eq!(r.body["automations_off"], 1);
        assert_eq!(r.body["approvals_waiting"], 0);
        assert_eq!(r.body["health"]["open_incidents"], 0);

        // globex counts only its own run.
        let r = server
            .call(
                Some(&keys.globex_viewer),
                "GET",
                "/api/v1/tenants/globex/overview",
                None,
            )
            .await;
        assert_eq!(r.body["runs"]["started"], 1, "{}", r.body);
        assert_eq!(r.body["budget"]["spent_usd"], "0.00");
        let r = server
            .call(Some(&keys.globex_viewer), "GET", "/api/v1/tenants/acme/overview", None)
            .await;
        assert_eq!(r.status, 404);

        // The count starts where asked: nothing since a time still to come; a bad time is named.
        let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600)).to_string();
        let r = server
            .call(
                Some(&keys.acme_viewer),
                "GET",
                &format!("/api/v1/tenants/acme/overview?since={later}"),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["runs"]["started"], 0);
        for bad in ["yesterday", "2001-01-01T00:00:00Z"] {
            let r = server
                .call(
                    Some(&keys.acme_viewer),
                    "GET",
                    &format!("/api/v1/tenants/acme/overview?since={bad}"),
                    None,
                )
                .await;
            assert_eq!(r.status, 400, "{bad}: {}", r.body);
            assert!(
                r.body["error"]["message"].as_str().unwrap().contains("since"),
                "{}",
                r.body
            );
        }
    })
    .await;
}

/// White-label: operators and partners set a partner's brand (checked field by field), operators
/// assign tenants to partners, and each tenant's branding is its partner's brand.
#[tokio::test]
async fn white_label_brands_are_checked_and_shown_to_the_partners_tenants() {
    on_both(|store| async move {
        let server = Server::start(&store, limitless()).await;
        let keys = world(&store, &server).await;
        let brand = json!({
            "name": "Reseller Cloud",
            "logo": "data:image/png;base64,iVBORw0KGgo=",
            "primary_color": "#7A1F5C",
            "accent_color": "#0B6E4F"
        });
        let r = server
            .call(
                Some(&keys.operator),
                "PUT",
                "/api/v1/brands/reseller",
                Some(brand.clone()),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["primary_color"], "#7a1f5c", "stored in lower case");
        let r = server
            .call(
                Some(&keys.operator),
                "PUT",
                "/api/v1/brands/reseller",
                Some(brand.clone()),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);

        // Bad input is refused with the field's name.
        let with = |field: &str, value: Value| {
            let mut b = brand.clone();
            b[field] = value;
            b
        };
        let big = format!("data:image/png;base64,{}", "A".repeat(mc_config::brand::MAX_LOGO_BYTES));
        let cases = [
            (with("primary_color", json!("purple")), "primary_color", "#rrggbb"),
            (with("primary_color", json!("#ffee00")), "primary_color", "too light"),
            (with("accent_color", json!("#fafafa")), "accent_color", "too light"),
            (with("logo", json!(big)), "logo", "at most 64 KiB"),
            (
                with("logo", json!("http://cdn.example.com/logo.png")),
                "logo",
                "https://",
            ),
            (
                with("logo", json!("data:text/html;base64,PGgxPg==")),
                "logo",
                "https://",
            ),
            (with("name", json!("   ")), "name", "empty"),
        ];
        for (body, field, words) in cases {
            let r = server
                .call(Some(&keys.operator), "PUT", "/api/v1/brands/reseller", Some(body))
                .await;
            assert_eq!(r.status, 400, "{field}: {}", r.body);
            let m = r.body["error"]["message"].as_str().unwrap();
            assert!(m.starts_with(&format!("{field}:")) && m.contains(words), "{m}");
        }
        let r = server
            .call(
                Some(&keys.operator),
                "PUT",
                "/api/v1/brands/reseller",
                Some(with("colour", json!("#000000"))),
            )
            .await;
        assert_eq!(r.status, 400, "unknown fields are refused: {}", r.body);
        let r = server
            .call(
                Some(&keys.operator),
                "PUT",
                "/api/v1/brands/Not%20A%20Name",
                Some(brand.clone()),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body["error"]["message"].as_str().unwrap().starts_with("partner:"));

        // A partner manages its own brand only; tenant keys none.
        let r = server
            .call(
                Some(&keys.partner),
                "PUT",
                "/api/v1/brands/reseller",
                Some(with("name", json!("Reseller"))),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = server
            .call(
                Some(&keys.partner),
                "PUT",
                "/api/v1/brands/northwind",
                Some(brand.clone()),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.body);
        let r = server
            .call(
                Some(&keys.acme_admin),
                "PUT",
                "/api/v1/brands/reseller",
                Some(brand.clone()),
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        let r = server.call(Some(&keys.partner), "GET", "/api/v1/brands", None).await;
        assert_eq!(r.body.as_array().unwrap().len(), 1, "{}", r.body);
        assert_eq!(r.body[0]["name"], "Reseller");

        // initech was created by the partner: its dashboards wear the brand; acme's do not.
        let r = server
            .call(Some(&keys.partner), "GET", "/api/v1/tenants/initech/branding", None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["partner"], "reseller");
        assert_eq!(r.body["brand"]["name"], "Reseller");
        assert_eq!(r.body["brand"]["accent_color"], "#0b6e4f");
        let r = server
            .call(Some(&keys.acme_viewer), "GET", "/api/v1/tenants/acme/branding", None)
            .await;
        assert_eq!(r.body, json!({ "partner": null, "brand": null }));

        // Operators assign a tenant to a known partner; the partner then sees it and its brand
        // shows on it.
        let r = server
            .call(
                Some(&keys.operator),
                "PUT",
                "/api/v1/tenants/acme/partner",
                Some(json!({"partner": "nobody"})),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        let m = r.body["error"]["message"].as_str().unwrap();
        assert!(m.starts_with("partner: unknown partner `nobody`"), "{m}");
        let r = server
            .call(
                Some(&keys.acme_admin),
                "PUT",
                "/api/v1/tenants/acme/partner",
                Some(json!({"partner": "reseller"})),
            )
            .await;
        assert_eq!(
            r.status, 403,
            "a tenant admin may not hand its tenant to a partner: {}",
            r.body
        );
        let r = server
            .call(Some(&keys.partner), "GET", "/api/v1/tenants/acme", None)
            .await;
        assert_eq!(r.status, 404);
        let r = server
            .call(
                Some(&keys.operator),
                "PUT",
                "/api/v1/tenants/acme/partner",
                Some(json!({"partner": "reseller"})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["partner"], "reseller");
        let r = server
            .call(Some(&keys.partner), "GET", "/api/v1/tenants/acme", None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = server
            .call(Some(&keys.acme_viewer), "GET", "/api/v1/tenants/acme/branding", None)
            .await;
        assert_eq!(r.body["brand"]["name"], "Reseller", "{}", r.body);
        let r = server
            .call(Some(&keys.globex_viewer), "GET", "/api/v1/tenants/acme/branding", None)
            .await;
        assert_eq!(r.status, 404);

        // Every change is audited; removing the brand gives the tenants the default look.
        let r = server
            .call(Some(&keys.operator), "GET", "/api/v1/audit?limit=200", None)
            .await;
        let actions: Vec<&str> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert!(
            actions.contains(&"brand.set") && actions.contains(&"tenant.partner"),
            "{actions:?}"
        );
        let r = server
            .call(Some(&keys.operator), "DELETE", "/api/v1/brands/reseller", None)
            .await;
        assert_eq!(r.status, 204, "{}", r.body);
        let r = server
            .call(Some(&keys.acme_viewer), "GET", "/api/v1/tenants/acme/branding", None)
            .await;
        assert_eq!(r.body, json!({ "partner": "reseller", "brand": null }));
        let r = server
            .call(Some(&keys.operator), "DELETE", "/api/v1/brands/reseller", None)
            .await;
        assert_eq!(r.status, 404);
    })
    .await;
}

/// People edit registry rows through the API: checked like an agent's writes, filtered and paged,
/// and kept to their tenant.
#[tokio::test]
async fn registry_rows_through_the_api() {
    on_both(|store| async move {
        let server = Server::start(&store, limitless()).await;
        let keys = world(&store, &server).await;
        let with = format!(
            "{ACME}registries:\n  - name: clients\n    fields:\n      - {{ name: email, type: string, required: true, unique: true }}\n      - {{ name: mrr, type: integer }}\n"
        );
        store.apply(&mc_config::parse(&with, &mc_config::Known::default()).unwrap()).await.unwrap();
        let rows = "/api/v1/tenants/acme/registries/clients/rows";
        for i in 1..=5 {
            let r = server
                .call(Some(&keys.acme_admin), "POST", rows, Some(json!({ "email": format!("c{i}@x.io"), "mrr": i * 100 })))
                .await;
            assert_eq!(r.status, 201, "{}", r.body);
            assert_eq!(r.body["id"], i);
        }
        let r = server.call(Some(&keys.acme_admin), "POST", rows, Some(json!({ "email": "c1@x.io" }))).await;
        assert_eq!((r.status, r.body["error"]["message"].as_str().unwrap()), (400, "field `email` of registry `clients` is unique, and row 1 has \"c1@x.io\" already"));
        let r = server.call(Some(&keys.acme_admin), "POST", rows, Some(json!({ "mrr": 1 }))).await;
        assert_eq!(r.body["error"]["message"], "field `email` of registry `clients` is required");
        let r = server.call(Some(&keys.acme_viewer), "POST", rows, Some(json!({ "email": "v@x.io" }))).await;
        assert_eq!(r.status, 403, "a viewer reads only");

        let r = server.call(Some(&keys.acme_viewer), "GET", &format!("{rows}?where=mrr:ge:200&limit=2"), None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["items"].as_array().unwrap().iter().map(|x| x["id"].as_i64().unwrap()).collect::<Vec<_>>(), [2, 3]);
        let next = r.body["next_cursor"].as_str().unwrap().to_string();
        let r = server.call(Some(&keys.acme_viewer), "GET", &format!("{rows}?where=mrr:ge:200&limit=2&cursor={next}"), None).await;
        assert_eq!(r.body["items"].as_array().unwrap().iter().map(|x| x["id"].as_i64().unwrap()).collect::<Vec<_>>(), [4, 5]);
        assert!(r.body["next_cursor"].is_null());
        let r = server.call(Some(&keys.acme_viewer), "GET", &format!("{rows}?where=mrr:gt:lots"), None).await;
        assert_eq!((r.status, r.body["error"]["message"].as_str().unwrap()), (400, "a filter on `mrr` compares with an integer, not \"lots\""));

        let r = server.call(Some(&keys.acme_admin), "PATCH", &format!("{rows}/3"), Some(json!({ "mrr": null }))).await;
        assert_eq!(r.body["data"], json!({ "email": "c3@x.io" }));
        let r = server.call(Some(&keys.acme_admin), "DELETE", &format!("{rows}/3"), None).await;
        assert_eq!(r.status, 204);
        let r = server.call(Some(&keys.acme_admin), "GET", &format!("{rows}/3"), None).await;
        assert_eq!((r.status, r.body["error"]["message"].as_str().unwrap()), (404, "registry `clients` has no row 3"));
        let r = server.call(Some(&keys.globex_admin), "GET", rows, None).await;
        assert_eq!(r.status, 404, "another tenant's registry is not there: {}", r.body);
        let r = server.call(Some(&keys.acme_viewer), "GET", "/api/v1/tenants/acme/registries", None).await;
        assert_eq!(r.body[0]["fields"][0], json!({ "name": "email", "type": "string", "required": true, "unique": true }));
    })
    .await;
}

/// An automation's output waits for a person: the inbox lists it, approving (edited) delivers it
/// to a registry and fires the completion trigger in one step, a second decision is refused, an
/// output the registry cannot take is not approved, and a rejected one is dropped.
#[tokio::test]
async fn approvals_hold_output_until_a_person_decides() {
    on_both(|store| async move {
        let server = Server::start(&store, limitless()).await;
        let keys = world(&store, &server).await;
        let with = format!(
            "{ACME}  - {{ name: post, agent: writer, trigger: {{ manual: true }}, approval: {{ deliver_to: calendar }} }}\n  - {{ name: announce, agent: writer, trigger: {{ after: post }} }}\nregistries:\n  - {{ name: calendar, fields: [{{ name: title, type: string, required: true }}] }}\n"
        );
        store.apply(&mc_config::parse(&with, &mc_config::Known::default()).unwrap()).await.unwrap();
        // Two runs of `post` finish as a node records them.
        let job = mc_store::NewJob {
            tenant: "acme".into(),
            automation: Some("post".into()),
            agent: "writer".into(),
            plugin: "noop".into(),
            input: "{}".into(),
            trigger: "manual".into(),
            priority: 0,
            max_attempts: 1,
            run_at: None,
            idempotency_key: None,
        };
        store.enqueue(&[job.clone(), job]).await.unwrap();
        let claimed = store.claim_limited("n1", 10, std::time::Duration::from_secs(30), None).await.unwrap();
        let ids: Vec<i64> = claimed.iter().filter(|j| j.automation.as_deref() == Some("post")).map(|j| j.id).collect();
        assert_eq!(ids.len(), 2);
        let outputs = [json!({ "title": "Draft" }), json!({ "nope": 1 })];
        let finished: Vec<mc_store::Finished> = ids
            .iter()
            .zip(&outputs)
            .map(|(id, o)| mc_store::Finished { id: *id, output: o.to_string(), logs: None, fuel: 0 })
            .collect();
        store.complete_many("n1", &finished).await.unwrap();
        let followers = |store: Store| async move {
            store.jobs("acme", 100).await.unwrap().into_iter().filter(|j| j.automation.as_deref() == Some("announce")).count()
        };
        assert_eq!(followers(store.clone()).await, 0, "nothing fires before approval");

        let r = server.call(Some(&keys.acme_viewer), "GET", "/api/v1/tenants/acme/approvals", None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body.as_array().unwrap().len(), 2);
        assert_eq!((r.body[0]["run_id"].as_i64(), &r.body[0]["output"]), (Some(ids[0]), &outputs[0]));
        assert_eq!(r.body[0]["deliver_to"], "calendar");
        let run = server.call(Some(&keys.acme_viewer), "GET", &format!("/api/v1/tenants/acme/runs/{}", ids[0]), None).await;
        assert_eq!(run.body["state"], "awaiting_approval");

        let approve = |id: i64| format!("/api/v1/tenants/acme/runs/{id}/approve");
        let r = server.call(Some(&keys.acme_viewer), "POST", &approve(ids[0]), Some(json!({}))).await;
        assert_eq!(r.status, 403, "a viewer cannot decide");
        let r = server.call(Some(&keys.acme_admin), "POST", &approve(ids[0]), Some(json!({ "output": { "title": "Final" } }))).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["decision"], "approved");
        assert_eq!(r.body["original_output"], outputs[0]);
        assert_eq!(r.body["delivered_row"], 1);
        let admin_key_id = r.body["decided_by"].as_str().unwrap().to_string();
        assert!(keys.acme_admin.contains(&admin_key_id), "the deciding key is recorded");
        let rows = store.tenant("acme").registry_rows("calendar", &[], None, 10).await.unwrap();
        assert_eq!(rows.iter().map(|r| Value::Object(r.data.clone())).collect::<Vec<_>>(), [json!({ "title": "Final" })]);
        assert_eq!(followers(store.clone()).await, 1, "the completion trigger fired once, on approval");
        let run = server.call(Some(&keys.acme_viewer), "GET", &format!("/api/v1/tenants/acme/runs/{}", ids[0]), None).await;
        assert_eq!((&run.body["state"], &run.body["output"]), (&json!("succeeded"), &json!({ "title": "Final" })));

        let r = server.call(Some(&keys.acme_admin), "POST", &approve(ids[0]), Some(json!({}))).await;
        assert_eq!(r.status, 409);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("run {} was approved already, by key `{admin_key_id}` at 20", ids[0])), "{message}");

        let r = server.call(Some(&keys.acme_admin), "POST", &approve(ids[1]), Some(json!({}))).await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body["error"]["message"],
            "the output cannot be added to registry `calendar`, so nothing was approved: registry `calendar` has no field `nope` (its fields: title)"
        );
        let r = server.call(Some(&keys.acme_admin), "POST", &format!("/api/v1/tenants/acme/runs/{}/reject", ids[1]), Some(json!({ "reason": "off brand" }))).await;
        assert_eq!((r.status, &r.body["decision"], &r.body["reason"]), (200, &json!("rejected"), &json!("off brand")));
        assert_eq!(store.tenant("acme").registry_rows("calendar", &[], None, 10).await.unwrap().len(), 1, "nothing delivered");
        assert_eq!(followers(store.clone()).await, 1);
        let r = server.call(Some(&keys.acme_viewer), "GET", "/api/v1/tenants/acme/approvals", None).await;
        assert_eq!(r.body, json!([]));
        let r = server.call(Some(&keys.acme_viewer), "GET", &format!("/api/v1/tenants/acme/runs/{}/decision", ids[1]), None).await;
        assert_eq!((&r.body["decision"], &r.body["reason"]), (&json!("rejected"), &json!("off brand")));
        let r = server.call(Some(&keys.acme_viewer), "GET", "/api/v1/tenants/acme/runs/1/decision", None).await;
        assert_eq!((r.status, &r.body), (200, &Value::Null), "a run nobody decided on");
        let r = server.call(Some(&keys.globex_admin), "POST", &approve(ids[1]), Some(json!({}))).await;
        assert_eq!(r.status, 404, "another tenant's key cannot decide");
    })
    .await;
}

/// Server-sent events of a response body, as (event, data) pairs.
fn sse_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut event = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            (!event.is_empty()).then(|| (event, serde_json::from_str(&data).unwrap_or(Value::Null)))
        })
        .collect()
}

/// A user chats with an agent: the reply streams back piece by piece, the thread keeps the
/// history (sent to the model with the agent's instructions next time), the call is in the
/// ledger under the thread, and other users and tenants cannot read or write the thread.
#[tokio::test]
async fn chat_with_an_agent_streams_and_is_metered() {
    use mc_testkit::fake_ai::{DEFAULT_KEY, FakeProvider, FakeUsage, Flavor, Reply};
    on_both(|store| async move {
        let openai = FakeProvider::start(Flavor::OpenAi).await;
        let gateway = mc_gateway::Gateway::open(
            store.clone(),
            mc_gateway::GatewayConfig {
                endpoints: vec![mc_gateway::Endpoint {
                    name: "openai".into(),
                    kind: mc_gateway::ProviderKind::OpenAi,
                    base_url: openai.base_url(),
                    api_key: Some(DEFAULT_KEY.into()),
                    key_required: true,
                    key_hint: "OPENAI_API_KEY".into(),
                }],
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let server = Server::start_with(&store, limitless(), Some(std::sync::Arc::new(gateway))).await;
        let keys = world(&store, &server).await;
        let with = ACME.replace(
            "    plugin: noop\n",
            "    plugin: noop\n    model: gpt-4o-mini\n    instructions: Answer in one short paragraph.\n",
        );
        store
            .apply(&mc_config::parse(&with, &mc_config::Known::default()).unwrap())
            .await
            .unwrap();
        let usage = |input, output| FakeUsage {
            input,
            output,
            cache_read: 0,
            cache_write: 0,
        };
        openai.push_all([
            Reply::Paced {
                text: "Spring is the time to plant peas.".into(),
                usage: usage(40, 9),
                gap: std::time::Duration::from_millis(5),
            },
            Reply::ok("Yes, and beans too.", usage(70, 6)),
        ]);

        let r = server
            .call(
                Some(&keys.acme_admin),
                "POST",
                "/api/v1/tenants/acme/agents/writer/chats",
                None,
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let thread = r.body["id"].as_i64().unwrap();
        let say = |_: &str| format!("/api/v1/tenants/acme/chats/{thread}/messages");
        let r = server
            .call(
                Some(&keys.acme_admin),
                "POST",
                &say(""),
                Some(json!({ "content": "What should I plant now?" })),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.headers["content-type"], "text/event-stream");
        let events = sse_events(r.body.as_str().unwrap());
        let deltas: Vec<&str> = events
            .iter()
            .filter(|(e, _)| e == "delta")
            .map(|(_, d)| d["text"].as_str().unwrap())
            .collect();
        assert!(deltas.len() > 1, "the reply came in pieces: {events:?}");
        assert_eq!(deltas.concat(), "Spring is the time to plant peas.");
        let (last, done) = events.last().unwrap();
        assert_eq!(
            (last.as_str(), &done["content"], done["seq"].as_i64()),
            ("done", &json!("Spring is the time to plant peas."), Some(2))
        );

        let r = server
            .call(
                Some(&keys.acme_admin),
                "POST",
                &say(""),
                Some(json!({ "content": "Anything else?" })),
            )
            .await;
        assert_eq!(
            sse_events(r.body.as_str().unwrap()).last().unwrap().1["content"],
            "Yes, and beans too."
        );
        // The second request carried the instructions and the whole history.
        let sent = &openai.requests()[1].body["messages"];
        let roles: Vec<&str> = sent
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert!(
            sent[0]["content"]
                .as_str()
                .unwrap()
                .contains("Answer in one short paragraph.")
        );
        let r = server
            .call(
                Some(&keys.acme_admin),
                "GET",
                &format!("/api/v1/tenants/acme/chats/{thread}"),
                None,
            )
            .await;
        assert_eq!(r.body.as_array().unwrap().len(), 4);

        let ledger = store
            .tenant("acme")
            .ledger_of_run(&format!("chat-{thread}"))
            .await
            .unwrap();
        let tokens: Vec<(u64, u64)> = ledger.iter().map(|l| (l.input_tokens, l.output_tokens)).collect();
        assert_eq!(tokens, [(40, 9), (70, 6)], "each message is metered like any call");
        assert!(ledger.iter().all(|l| l.agent == "writer" && l.cost > 0));

        let r = server
            .call(
                Some(&keys.acme_viewer),
                "GET",
                &format!("/api/v1/tenants/acme/chats/{thread}"),
                None,
            )
            .await;
        assert_eq!(r.status, 404, "another user's thread is not there");
        let r = server
            .call(
                Some(&keys.globex_admin),
                "POST",
                &say(""),
                Some(json!({ "content": "hi" })),
            )
            .await;
        assert_eq!(r.status, 404);
        let r = server
            .call(
                Some(&keys.acme_admin),
                "POST",
                &say(""),
                Some(json!({ "content": " " })),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str().unwrap()),
            (400, "the message is empty")
        );
        let r = server
            .call(
                Some(&keys.acme_admin),
                "POST",
                "/api/v1/tenants/acme/agents/ghost/chats",
                None,
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str().unwrap()),
            (404, "no agent `ghost`")
        );
        assert_eq!(openai.request_count(), 2, "refused messages never reach the provider");
    })
    .await;
}

/// The endless stream of run changes (tested by `the_live_run_stream_…`).
const LIVE_RUNS: &str = "/api/v1/tenants/{tenant}/runs/events";

/// A request as the dashboard makes it: the session cookie, and the CSRF token when given.
async fn as_browser(server: &Server, session: &str, csrf: Option<&str>, method: &str, path: &str) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = server
        .http
        .request(method, format!("http://{}{path}", server.addr))
        .header("cookie", format!("theme=dark; mc_session={session}"));
    if let Some(csrf) = csrf {
        req = req.header("x-csrf-token", csrf);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply { status, body, headers }
}

/// Signing in to the dashboard: a session cookie the page cannot read, changes that need the
/// session's CSRF token, the same tenant walls as keys, and an end on sign-out or when the key
/// is revoked.
#[tokio::test]
async fn dashboard_sessions_need_their_csrf_token_and_end_with_sign_out_or_the_key() {
    on_both(|store| async move {
        let server = Server::start(&store, limitless()).await;
        let keys = world(&store, &server).await;
        let r = server
            .call(
                None,
                "POST",
                "/ui/session",
                Some(json!({"key": "mc_0123456789ab_nope"})),
            )
            .await;
        assert_eq!(r.status, 401);
        assert_eq!(
            r.body["error"]["message"],
            "that key is not valid: check it, or ask for a new one"
        );
        let r = server
            .call(None, "POST", "/ui/session", Some(json!({"key": keys.acme_admin})))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["whoami"]["tenant"], "acme");
        let cookie = r.headers["set-cookie"].to_str().unwrap().to_string();
        assert!(
            cookie.contains("; HttpOnly") && cookie.contains("; SameSite=Strict"),
            "{cookie}"
        );
        let session = cookie
            .split(';')
            .next()
            .unwrap()
            .strip_prefix("mc_session=")
            .unwrap()
            .to_string();
        let csrf = r.body["csrf"].as_str().unwrap().to_string();
        assert!(!cookie.contains(&csrf), "the CSRF token is not the cookie");

        let r = as_browser(&server, &session, None, "GET", "/ui/session").await;
        assert_eq!((r.status, r.body["csrf"].as_str()), (200, Some(csrf.as_str())));
        let r = as_browser(&server, &session, None, "GET", "/api/v1/tenants/acme/runs").await;
        assert_eq!(r.status, 200, "{}", r.body);
        let runs_before = r.body["items"].as_array().unwrap().len();
        // A change without the token (what a forged cross-site form would send) does nothing.
        let run_now = "/api/v1/tenants/acme/automations/quick/run";
        let r = as_browser(&server, &session, None, "POST", run_now).await;
        assert_eq!(r.status, 403);
        assert_eq!(
            r.body["error"]["message"],
            "missing or wrong CSRF token: a change made with the dashboard's session sends its token in `x-csrf-token`"
        );
        let r = as_browser(&server, &session, Some("forged"), "POST", run_now).await;
        assert_eq!(r.status, 403);
        let r = as_browser(&server, &session, None, "GET", "/api/v1/tenants/acme/runs").await;
        assert_eq!(
            r.body["items"].as_array().unwrap().len(),
            runs_before,
            "nothing was enqueued"
        );
        let r = as_browser(&server, &session, Some(&csrf), "POST", run_now).await;
        assert_eq!(r.status, 202, "{}", r.body);
        // The session is the key: another tenant's run is as unknown as with the key itself.
        let r = as_browser(&server, &session, None, "GET", "/api/v1/tenants/globex/runs/2").await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (404, Some("no tenant `globex`"))
        );

        let r = as_browser(&server, &session, None, "DELETE", "/ui/session").await;
        assert_eq!(r.status, 403, "signing out needs the token too");
        let r = as_browser(&server, &session, Some(&csrf), "DELETE", "/ui/session").await;
        assert_eq!(r.status, 204);
        assert!(r.headers["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
        let r = as_browser(&server, &session, None, "GET", "/api/v1/whoami").await;
        assert_eq!(r.status, 401);
        assert_eq!(
            r.body["error"]["message"],
            "your session has ended (signed out, or its key was revoked): sign in again"
        );

        // Revoking the key ends the sessions opened with it.
        let r = server
            .call(None, "POST", "/ui/session", Some(json!({"key": keys.acme_viewer})))
            .await;
        let cookie = r.headers["set-cookie"].to_str().unwrap().to_string();
        let session = cookie
            .split(';')
            .next()
            .unwrap()
            .strip_prefix("mc_session=")
            .unwrap()
            .to_string();
        assert_eq!(
            as_browser(&server, &session, None, "GET", "/api/v1/whoami")
                .await
                .status,
            200
        );
        let viewer_id = keys.acme_viewer.split('_').nth(1).unwrap();
        let r = server
            .call(
                Some(&keys.operator),
                "DELETE",
                &format!("/api/v1/keys/{viewer_id}"),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            as_browser(&server, &session, None, "GET", "/api/v1/whoami")
                .await
                .status,
            401
        );
    })
    .await;
}

/// The dashboard's page is served for every path under /app/ (it routes in the browser), with a
/// policy that allows only its own scripts; a missing asset is a 404.
#[tokio::test]
async fn the_dashboard_page_is_served_with_a_strict_content_security_policy() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let server = Server::start(&store, limitless()).await;
    for path in ["/app/", "/app/runs/42", "/app/costs"] {
        let r = server.call(None, "GET", path, None).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/html"));
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(
            r.body.as_str().unwrap().contains("/app/assets/"),
            "{path}: the page loads its script"
        );
    }
    let r = server.call(None, "GET", "/app/assets/app.js", None).await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let etag = r.headers["etag"].to_str().unwrap().to_string();
    let again = server
        .http
        .get(format!("http://{}/app/assets/app.js", server.addr))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert!(again.status() == 200 || again.status() == 304);
    let r = server.call(None, "GET", "/app/assets/missing.js", None).await;
    assert_eq!(
        (r.status, r.body["error"]["message"].as_str()),
        (404, Some("no file /app/assets/missing.js"))
    );
    let r = server.call(None, "GET", "/", None).await;
    assert_eq!(r.status, 200, "/ leads to the dashboard");
}

/// Reads server-sent events from `response` until `done` says the ones read so far are enough.
async fn read_events(
    response: &mut reqwest::Response,
    mut done: impl FnMut(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    let mut text = String::new();
    // A guard against a hang, not a timing check: the events come within a second.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let events = sse_events(&text);
        if done(&events) {
            return events;
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("the stream went quiet")
            .unwrap()
            .expect("the stream ended");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

/// The live stream of a tenant's runs: a new run appears, its changes follow, and nothing of
/// another tenant's runs comes through.
#[tokio::test]
async fn the_live_run_stream_brings_new_runs_and_their_changes() {
    on_both(|store| async move {
        let server = Server::start(&store, limitless()).await;
        let keys = world(&store, &server).await;
        let live = LIVE_RUNS.replace("{tenant}", "acme");
        let mut stream = server
            .http
            .get(format!("http://{}{live}", server.addr))
            .bearer_auth(&keys.acme_viewer)
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200);
        assert!(
            stream.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        for tenant in ["globex", "acme"] {
            let r = server
                .call(
                    Some(&keys.operator),
                    "POST",
                    &format!("/api/v1/tenants/{tenant}/automations/quick/run"),
                    None,
                )
                .await;
            assert_eq!(r.status, 202, "{}", r.body);
        }
        let events = read_events(&mut stream, |e| !e.is_empty()).await;
        let run = events[0].1["id"].as_i64().unwrap();
        assert_eq!(events[0].0, "run");
        assert_eq!(events[0].1["automation"], "quick");
        assert_eq!(events[0].1["state"], "available");
        let r = server
            .call(
                Some(&keys.acme_admin),
                "POST",
                &format!("/api/v1/tenants/acme/runs/{run}/cancel"),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let events = read_events(&mut stream, |e| e.iter().any(|(_, r)| r["state"] == "cancelled")).await;
        for (_, r) in &events {
            assert_eq!(r["id"], run, "only acme's run: {r}");
        }
        // Another tenant's stream is refused before it opens.
        let r = server.call(Some(&keys.globex_admin), "GET", &live, None).await;
        assert_eq!(r.status, 404);
    })
    .await;
}

/// The monitor's records through the API: a tenant sees its own incidents (another tenant gets
/// 404), only operators see the fleet's health and the Prometheus metrics, and the metrics parse
/// as the text exposition format (checked with the official Python client's parser) and count
/// what the store holds.
#[tokio::test]
async fn incidents_fleet_health_and_metrics() {
    on_both(|store| async move {
        let server = Server::start(&store, limitless()).await;
        let keys = world(&store, &server).await;
        let incident = |tenant: &'static str, kind: &'static str, subject: &'static str| mc_store::NewIncident {
            tenant,
            kind,
            subject,
            severity: "warning",
            summary: "something happened",
            action: Some("did something"),
            escalate: None,
        };
        store
            .open_incident(&incident("acme", "automation_paused", "quick"))
            .await
            .unwrap();
        store
            .open_incident(&incident("", "provider_down", "anthropic"))
            .await
            .unwrap();
        store.node_seen("n1").await.unwrap();
        let r = server
            .call(
                Some(&keys.operator),
                "POST",
                "/api/v1/tenants/globex/automations/quick/run",
                None,
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.body);

        let r = server
            .call(Some(&keys.acme_viewer), "GET", "/api/v1/tenants/acme/incidents", None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body.as_array().unwrap().len(), 1);
        assert_eq!(r.body[0]["kind"], "automation_paused");
        assert_eq!(r.body[0]["state"], "open");
        let r = server
            .call(Some(&keys.globex_admin), "GET", "/api/v1/tenants/acme/incidents", None)
            .await;
        assert_eq!(r.status, 404);
        // Nothing was scheduled for acme (its automation is manual): no figure rather than 100%.
        let r = server
            .call(Some(&keys.acme_viewer), "GET", "/api/v1/tenants/acme/sla", None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            (r.body["target"].as_f64(), r.body["scheduled"].as_i64()),
            (Some(99.5), Some(0))
        );
        assert!(
            r.body["availability"].is_null() && r.body["met"].is_null(),
            "{}",
            r.body
        );
        let r = server
            .call(
                Some(&keys.acme_viewer),
                "GET",
                "/api/v1/tenants/acme/sla?month=2026-13",
                None,
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(
            r.body["error"]["message"],
            "`2026-13` is not a month: write it as YYYY-MM, like 2026-11"
        );

        for path in ["/api/v1/health", "/metrics"] {
            let r = server.call(Some(&keys.acme_admin), "GET", path, None).await;
            assert_eq!(r.status, 403, "{path}: {}", r.body);
            assert_eq!(server.call(None, "GET", path, None).await.status, 401, "{path}");
        }
        let r = server.call(Some(&keys.operator), "GET", "/api/v1/health", None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["open_incidents"].as_array().unwrap().len(), 2);

        let r = server.call(Some(&keys.operator), "GET", "/metrics", None).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.headers["content-type"].to_str().unwrap(),
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let text = r.body.as_str().unwrap().to_string();
        let parse = r#"
import sys, json
from prometheus_client.parser import text_string_to_metric_families as parse
out = {}
for f in parse(sys.stdin.read()):
    for s in f.samples:
        out[s.name + json.dumps(s.labels, sort_keys=True)] = s.value
print(json.dumps(out))
"#;
        let mut child = std::process::Command::new("python3")
            .args(["-c", parse])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}\n{text}", String::from_utf8_lossy(&out.stderr));
        let samples: Value = serde_json::from_slice(&out.stdout).unwrap();
        // And Prometheus' own linter accepts it.
        let mut child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool (Debian's prometheus package; make test installs it)");
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let lint = child.wait_with_output().unwrap();
        assert!(
            lint.status.success() && lint.stdout.is_empty() && lint.stderr.is_empty(),
            "promtool: {}{}\n{text}",
            String::from_utf8_lossy(&lint.stdout),
            String::from_utf8_lossy(&lint.stderr)
        );
        // Both runs of `world` ended dead; globex's second one waits.
        assert_eq!(samples[r#"mc_runs{"state": "dead"}"#], 2.0, "{samples}");
        assert_eq!(samples[r#"mc_runs{"state": "available"}"#], 1.0, "{samples}");
        assert_eq!(samples[r#"mc_queue_available{"tenant": "globex"}"#], 1.0, "{samples}");
        assert_eq!(
            samples[r#"mc_incidents_open{"kind": "provider_down"}"#], 1.0,
            "{samples}"
        );
        assert_eq!(samples["mc_nodes{}"], 1.0, "{samples}");
        // The two dead runs of `world` failed as soon as they were claimed: both within 5 s.
        assert_eq!(samples[r#"mc_run_duration_seconds_count{}"#], 2.0, "{samples}");
        assert_eq!(
            samples[r#"mc_run_duration_seconds_bucket{"le": "5"}"#], 2.0,
            "{samples}"
        );
        assert_eq!(
            samples[r#"mc_run_fuel_bucket{"le": "+Inf"}"#], 0.0,
            "no fuel was billed: {samples}"
        );
    })
    .await;
}
