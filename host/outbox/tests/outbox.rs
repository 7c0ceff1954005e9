//! Approved output posted to a webhook on both backends: signed per Standard Webhooks (checked
//! with the official `standardwebhooks` package), retried after a failure with the same webhook
//! id, delivered once; a receiver on a loopback address the deployment did not allow is refused;
//! escalations of incidents signed with the deployment's own key.

use std::time::Duration;

use mc_outbox::{Outbox, OutboxConfig};
use mc_store::{Principal, Sealer, Store};
use mc_testkit::{Received, WebhookSink, on_both};
use serde_json::json;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn sealer() -> Sealer {
    Sealer::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap()
}

/// Tenant `acme` whose `post` automation posts approved output to `url`; returns the id of a
/// run waiting for approval.
async fn awaiting(store: &Store, url: &str) -> i64 {
    let config = format!(
        "tenant: acme\nagents:\n  - {{ name: writer, role: Writer, plugin: noop }}\nautomations:\n  - {{ name: post, agent: writer, trigger: {{ manual: true }}, approval: {{ webhook: {{ url: \"{url}\", secret: hook-key }} }} }}\n"
    );
    store
        .apply(&mc_config::parse(&config, &mc_config::Known::default()).unwrap())
        .await
        .unwrap();
    store
        .tenant("acme")
        .put_secret(&Principal::local(), &sealer(), "hook-key", SECRET)
        .await
        .unwrap();
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
    let id = store.enqueue(&[job]).await.unwrap()[0].id();
    store
        .claim_limited("n1", 10, Duration::from_secs(30), None)
        .await
        .unwrap();
    let done = mc_store::Finished {
        id,
        output: json!({ "title": "Draft" }).to_string(),
        logs: None,
        fuel: 0,
    };
    store.complete_many("n1", &[done]).await.unwrap();
    id
}

#[tokio::test]
async fn an_approved_output_is_posted_signed_and_retried_until_delivered_once() {
    on_both(|store| async move {
        let sink = WebhookSink::start([503]).await;
        let origin = sink.origin().to_string();
        let run = awaiting(&store, &format!("{origin}/hooks/approved?src=mc")).await;
        let scope = store.tenant("acme");
        let outbox = Outbox::new(
            store.clone(),
            OutboxConfig {
                sealer: Some(sealer()),
                test_hosts: vec![origin.clone()],
                backoff: Duration::from_millis(10),
                ..OutboxConfig::default()
            },
        );
        assert_eq!(outbox.send_due().await.unwrap(), 0, "nothing is sent before a decision");
        scope
            .approve(&Principal::local(), run, Some(&json!({ "title": "Final" })))
            .await
            .unwrap();
        assert_eq!(outbox.send_due().await.unwrap(), 1);
        let d = &scope.run_deliveries(run).await.unwrap()[0];
        assert_eq!((d.state.as_str(), d.attempts, d.last_status), ("pending", 1, Some(503)));
        assert!(
            d.last_error.as_deref().unwrap().ends_with("answered 503"),
            "{:?}",
            d.last_error
        );
        // After the backoff the next pass delivers it; a later pass sends nothing more.
        let mut sent = 0;
        while scope.run_deliveries(run).await.unwrap()[0].state == "pending" {
            tokio::time::sleep(Duration::from_millis(20)).await;
            sent += outbox.send_due().await.unwrap();
        }
        assert_eq!(sent, 1);
        assert_eq!(outbox.send_due().await.unwrap(), 0);
        let d = &scope.run_deliveries(run).await.unwrap()[0];
        assert_eq!(
            (d.state.as_str(), d.attempts, d.last_status),
            ("delivered", 2, Some(200))
        );
        let got = sink.received();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].header("webhook-id").unwrap(),
            got[1].header("webhook-id").unwrap(),
            "a retry is the same message"
        );
        let body: serde_json::Value = serde_json::from_str(&got[1].body).unwrap();
        assert_eq!(body["type"], "approval.approved");
        assert_eq!(body["data"]["output"], json!({ "title": "Final" }));
        assert_eq!(body["data"]["run"], run);
        assert_eq!(body["data"]["edited"], true);
        verify(SECRET, &got[1]);
    })
    .await;
}

/// Checks a received delivery's signature with the official `standardwebhooks` package.
fn verify(secret: &str, Received { headers, body, .. }: &Received) {
    let check = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, json; from standardwebhooks import Webhook; \
             Webhook(sys.argv[1]).verify(sys.argv[2], json.loads(sys.argv[3])); print('verified')",
            secret,
            body,
            &serde_json::to_string(&headers.iter().cloned().collect::<std::collections::HashMap<_, _>>()).unwrap(),
        ])
        .output()
        .expect("python3 with standardwebhooks (make test installs it)");
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        "verified",
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// An incident the monitor escalates reaches the operator's endpoint signed with the
/// deployment's escalation key, also when it concerns no tenant; while the endpoint is down the
/// delivery is retried with the same id, and it is delivered once.
#[tokio::test]
async fn an_escalation_is_signed_with_the_deployment_key_and_retried_while_the_receiver_is_down() {
    on_both(|store| async move {
        let sink = WebhookSink::start([503, 502]).await;
        let origin = sink.origin().to_string();
        let url = format!("{origin}/incidents");
        let ops = [mc_store::Destination::operator_webhook(&url)];
        let incident = mc_store::NewIncident {
            tenant: mc_store::PLATFORM,
            kind: "disk_low",
            subject: "/var/lib/missionctl",
            severity: "critical",
            summary: "the data directory has 100 MiB free of 10000 MiB",
            action: None,
            escalate: Some(&ops),
        };
        let opened = store.open_incident(&incident).await.unwrap();
        assert_eq!(
            store.open_incident(&incident).await.unwrap(),
            match opened {
                mc_store::Opened::New(id) => mc_store::Opened::Updated(id),
                other => panic!("{other:?}"),
            }
        );
        let unsigned = Outbox::new(
            store.clone(),
            OutboxConfig {
                test_hosts: vec![origin.clone()],
                ..OutboxConfig::default()
            },
        );
        unsigned.send_due().await.unwrap();
        let d = &store.escalations(10).await.unwrap()[0];
        assert_eq!(
            d.last_error.as_deref(),
            Some("this node has no escalation signing key (--escalation-secret); it is retried")
        );
        assert_eq!(sink.count(), 0);
        let outbox = Outbox::new(
            store.clone(),
            OutboxConfig {
                escalation_secret: Some(SECRET.into()),
                test_hosts: vec![origin.clone()],
                backoff: Duration::from_millis(10),
                ..OutboxConfig::default()
            },
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while store.escalations(10).await.unwrap()[0].state == "pending" {
            assert!(std::time::Instant::now() < deadline, "delivered in time");
            outbox.send_due().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let sent = store.escalations(10).await.unwrap();
        assert_eq!(sent.len(), 1, "one incident, one escalation");
        assert_eq!((sent[0].state.as_str(), sent[0].last_status), ("delivered", Some(200)));
        let got = sink.received();
        assert_eq!(got.len(), 3, "two failed posts, then the delivery");
        let ids: std::collections::BTreeSet<&str> = got.iter().map(|r| r.header("webhook-id").unwrap()).collect();
        assert_eq!(ids.len(), 1, "every attempt is the same message");
        let body: serde_json::Value = serde_json::from_str(&got[2].body).unwrap();
        assert_eq!(body["type"], "incident.opened");
        assert_eq!(body["data"]["kind"], "disk_low");
        assert_eq!(body["data"]["tenant"], "");
        verify(SECRET, &got[2]);
    })
    .await;
}

#[tokio::test]
async fn a_receiver_on_a_loopback_address_not_allowed_as_a_test_host_is_refused() {
    on_both(|store| async move {
        let sink = WebhookSink::start([]).await;
        let origin = sink.origin().to_string();
        let run = awaiting(&store, &format!("{origin}/hook")).await;
        store
            .tenant("acme")
            .approve(&Principal::local(), run, None)
            .await
            .unwrap();
        let outbox = Outbox::new(
            store.clone(),
            OutboxConfig {
                sealer: Some(sealer()),
                ..OutboxConfig::default()
            },
        );
        assert_eq!(outbox.send_due().await.unwrap(), 1);
        let d = &store.tenant("acme").run_deliveries(run).await.unwrap()[0];
        assert_eq!(d.state, "failed", "refused for good, not retried");
        assert_eq!(
            d.last_error.as_deref(),
            Some(
                format!(
                    "{origin}: 127.0.0.1 is a loopback address and this deployment does not allow it as a test host"
                )
                .as_str()
            )
        );
        assert_eq!(sink.count(), 0, "nothing reached the receiver");
    })
    .await;
}

/// An incident about a tenant reaches the operator (webhook and email) and the tenant's own
/// contact from its configuration (webhook signed with its secret, and email), once each; the
/// mail server (aiosmtpd) refusing the first message with 451 only delays it. Email arrives
/// as well-formed UTF-8 mail that Python's email package reads without a defect. The
/// resolution goes to the same places.
#[tokio::test]
async fn an_incident_is_mailed_and_posted_to_the_operator_and_the_tenant_contact() {
    on_both(|store| async move {
        let hooks = WebhookSink::start([]).await;
        let origin = hooks.origin().to_string();
        let mail = mc_testkit::SmtpSink::start(1).await;
        let config = format!(
            "tenant: acme\ncontact:\n  email: ops@acme.example\n  webhook: {{ url: \"{origin}/acme\", secret: hook-key }}\nagents:\n  - {{ name: writer, role: Writer, plugin: noop }}\n"
        );
        store
            .apply(&mc_config::parse(&config, &mc_config::Known::default()).unwrap())
            .await
            .unwrap();
        store
            .tenant("acme")
            .put_secret(&Principal::local(), &sealer(), "hook-key", SECRET)
            .await
            .unwrap();
        let ops = [
            mc_store::Destination::operator_webhook(&format!("{origin}/ops")),
            mc_store::Destination::email("oncall@platform.example"),
        ];
        let incident = mc_store::NewIncident {
            tenant: "acme",
            kind: "automation_paused",
            subject: "weekly-post",
            severity: "warning",
            summary: "automation `weekly-post` was switched off: its last 5 runs failed — café closed",
            action: Some("switched the automation off; switch it on again once it is fixed"),
            escalate: Some(&ops),
        };
        store.open_incident(&incident).await.unwrap();
        let outbox = Outbox::new(
            store.clone(),
            OutboxConfig {
                sealer: Some(sealer()),
                escalation_secret: Some(OPERATOR_KEY.into()),
                test_hosts: vec![origin.clone()],
                backoff: Duration::from_millis(10),
                smtp: Some(mc_outbox::smtp::SmtpConfig::parse(&mail.url(), "alerts@mission-control.example").unwrap()),
                ..OutboxConfig::default()
            },
        );
        let drain = || async {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while store.escalations(20).await.unwrap().iter().any(|d| d.state == "pending") {
                assert!(std::time::Instant::now() < deadline, "delivered in time");
                outbox.send_due().await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        drain().await;
        let sent = store.escalations(20).await.unwrap();
        assert_eq!(sent.len(), 4, "{sent:?}");
        assert!(sent.iter().all(|d| d.state == "delivered"), "{sent:?}");
        let mut urls: Vec<&str> = sent.iter().map(|d| d.url.as_str()).collect();
        urls.sort();
        let (acme_hook, ops_hook) = (format!("{origin}/acme"), format!("{origin}/ops"));
        let mut want = vec![
            acme_hook.as_str(),
            ops_hook.as_str(),
            "mailto:oncall@platform.example",
            "mailto:ops@acme.example",
        ];
        want.sort();
        assert_eq!(urls, want);
        assert_eq!(mail.refused(), 1, "the first message was refused and retried");
        let mails = mail.wait_for(2, Duration::from_secs(5)).await;
        assert_eq!(mails.len(), 2, "one each, however often tried: {mails:?}");
        let mut to: Vec<&str> = mails.iter().map(|m| m.to[0].as_str()).collect();
        to.sort();
        assert_eq!(to, ["oncall@platform.example", "ops@acme.example"]);
        for m in &mails {
            assert!(m.defects.is_empty(), "{m:?}");
            assert_eq!(m.from, "alerts@mission-control.example");
            assert_eq!(m.event, "incident.opened");
            assert_eq!(m.content_type, "text/plain");
            assert!(
                m.subject.starts_with("[Mission Control] incident #")
                    && m.subject.ends_with(
                        " opened (tenant acme): automation `weekly-post` was switched off: its last 5 runs failed — café closed"
                    ),
                "{}",
                m.subject
            );
            assert!(m.body.contains("Concerns: weekly-post\n"), "{}", m.body);
            assert!(
                m.body.contains("What was done: switched the automation off; switch it on again once it is fixed"),
                "{}",
                m.body
            );
        }
        assert_ne!(mails[0].message_id, mails[1].message_id);
        let posts = hooks.received();
        assert_eq!(posts.len(), 2);
        for p in &posts {
            let tenant_signed = p.body.contains("\"tenant\":\"acme\"") && p.header("webhook-id").is_some();
            assert!(tenant_signed);
        }
        // The tenant's post is signed with its own secret, the operator's with the deployment's.
        let acme = sent.iter().find(|d| d.url == acme_hook).unwrap();
        let ops_post = sent.iter().find(|d| d.url == ops_hook).unwrap();
        assert_eq!((acme.secret.as_str(), ops_post.secret.as_str()), ("hook-key", ""));
        let by_id = |d: &mc_store::Delivery| {
            posts
                .iter()
                .find(|p| p.header("webhook-id") == Some(mc_outbox::message_id(d).as_str()))
                .unwrap()
                .clone()
        };
        verify(SECRET, &by_id(acme));
        verify(OPERATOR_KEY, &by_id(ops_post));

        store
            .resolve_incident("acme", "automation_paused", "weekly-post", "switched on again")
            .await
            .unwrap()
            .unwrap();
        drain().await;
        let mails = mail.wait_for(4, Duration::from_secs(5)).await;
        assert_eq!(mails.len(), 4);
        assert!(mails[2..].iter().all(|m| m.event == "incident.resolved" && m.subject.contains(" resolved ")));
        assert_eq!(hooks.received().len(), 4);
    })
    .await;
}

const OPERATOR_KEY: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
