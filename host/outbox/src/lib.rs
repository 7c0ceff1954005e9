//! Outbound webhooks. The store holds deliveries written with the events they announce (an
//! approved output today); [`Outbox::run`] claims the due ones, signs each per the Standard
//! Webhooks spec with the tenant secret it names, checks its URL against the egress policy (the
//! same rules as a plugin's requests: private, loopback and metadata addresses are refused unless
//! the deployment configured that origin as a test host), connects to the vetted address only,
//! and records the outcome: delivered on 2xx, else retried with exponential backoff and jitter
//! until [`MAX_ATTEMPTS`], then failed with the last reason. The webhook id is the delivery's
//! own, the same on every attempt, so a receiver drops a repeat.
//!
//! A delivery addressed `mailto:…` (an incident escalated by email) goes through the
//! deployment's mail relay instead ([`smtp`]), with the same retries.

pub mod smtp;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use mc_egress::{AllowList, EgressError, Scheme};
use mc_store::{Delivery, DeliveryOutcome, Sealer, Store, StoreError};
use sha2::Sha256;

/// Attempts before a delivery is given up: with the default backoff that is about a day of
/// retrying, long enough for a receiver's outage, short enough to be noticed.
pub const MAX_ATTEMPTS: u32 = 12;
/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3 * 3_600);
/// Deliveries claimed per pass: enough to drain a burst, few enough that one slow receiver does
/// not hold many others behind it for long.
const CLAIM_BATCH: i64 = 16;
/// How long a claimed delivery is kept from other senders: longer than one attempt can take.
const CLAIM_LEASE: Duration = Duration::from_secs(60);
const SECRET_PREFIX: &str = "whsec_";

/// How a node sends.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Opens the tenant secrets that sign deliveries.
    pub sealer: Option<Sealer>,
    /// The deployment's own `whsec_…` key, which signs escalations of incidents (deliveries whose
    /// secret is [`mc_store::OPERATOR_SIGNED`]).
    pub escalation_secret: Option<String>,
    /// Origins (`http://127.0.0.1:8080`) of private or loopback addresses this deployment allows,
    /// for test receivers; the same list agents' grants are checked against.
    pub test_hosts: Vec<String>,
    /// How often due deliveries are looked for.
    pub poll: Duration,
    /// Longest one attempt may take.
    pub timeout: Duration,
    /// Wait after the first failed attempt; doubled after each further one.
    pub backoff: Duration,
    /// The mail relay for `mailto:` deliveries; without one they wait (retried) and say why.
    pub smtp: Option<smtp::SmtpConfig>,
}

impl Default for OutboxConfig {
    fn default() -> OutboxConfig {
        OutboxConfig {
            sealer: None,
            escalation_secret: None,
            test_hosts: Vec::new(),
            // An approved output or an incident should reach its receiver within a second or two.
            poll: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
            backoff: Duration::from_secs(5),
            smtp: None,
        }
    }
}

/// The signature header value for a message: HMAC-SHA256 over `<id>.<timestamp>.<body>` keyed
/// with the base64 secret after its `whsec_` prefix.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let key = B64
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .map_err(|_| "the signing secret is not base64 (expected whsec_<base64>)".to_string())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

/// The status recorded for an email the relay accepted (SMTP's "OK").
pub const SMTP_OK: u16 = 250;

/// The subject and text of the email announcing an event (an incident's opening, update or
/// resolution), from its webhook payload.
pub fn email_text(event_type: &str, payload: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    let data = &v["data"];
    let field = |k: &str| data[k].as_str().unwrap_or_default().to_string();
    let what = match event_type {
        "incident.opened" => "opened",
        "incident.updated" => "updated",
        "incident.resolved" => "resolved",
        other => other,
    };
    let tenant = field("tenant");
    let scope = if tenant.is_empty() {
        "platform".to_string()
    } else {
        format!("tenant {tenant}")
    };
    let headline = data["summary"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{} {}", field("kind"), field("subject")));
    let subject = format!(
        "[Mission Control] incident #{} {what} ({scope}): {headline}",
        data["incident"]
    );
    let mut body = format!(
        "Incident #{} {what}.\n\nWhere: {scope}\nKind: {}\nConcerns: {}\n",
        data["incident"],
        field("kind"),
        field("subject")
    );
    if let Some(s) = data["severity"].as_str() {
        body.push_str(&format!("Severity: {s}\n"));
    }
    if let Some(s) = data["summary"].as_str() {
        body.push_str(&format!("\n{s}\n"));
    }
    if let Some(a) = data["action"].as_str() {
        body.push_str(&format!("\nWhat was done: {a}\n"));
    }
    body.push_str(&format!(
        "\nSent {} by Mission Control's monitor.\n",
        v["timestamp"].as_str().unwrap_or_default()
    ));
    (subject, body)
}

/// The webhook id of a delivery: stable across its attempts.
pub fn message_id(delivery: &Delivery) -> String {
    format!("msg_mc_{}", delivery.id)
}

/// The sender.
#[derive(Debug, Clone)]
pub struct Outbox {
    store: Store,
    config: OutboxConfig,
}

/// Why an attempt failed, and whether waiting could help.
struct Failure {
    status: Option<u16>,
    error: String,
    retry: bool,
}

fn fatal(error: String) -> Failure {
    Failure {
        status: None,
        error,
        retry: false,
    }
}

fn transient(error: String) -> Failure {
    Failure {
        status: None,
        error,
        retry: true,
    }
}

impl Outbox {
    pub fn new(store: Store, config: OutboxConfig) -> Outbox {
        Outbox { store, config }
    }

    /// Sends due deliveries every `poll` until `stop` resolves.
    pub async fn run(&self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(e) = self.send_due().await {
                tracing::warn!(error = %e, "webhook deliveries could not be claimed");
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(self.config.poll) => {}
            }
        }
    }

    /// One pass: claims the due deliveries, attempts each, records the outcomes. Returns how
    /// many were attempted.
    pub async fn send_due(&self) -> Result<usize, StoreError> {
        let claimed = self.store.claim_deliveries(CLAIM_BATCH, CLAIM_LEASE).await?;
        let n = claimed.len();
        // One after another: a pass holds at most CLAIM_BATCH, each bounded by the timeout.
        for d in claimed {
            let outcome = match self.attempt(&d).await {
                Ok(status) => DeliveryOutcome::Delivered { status },
                Err(f) if f.retry && d.attempts < MAX_ATTEMPTS => DeliveryOutcome::Retry {
                    status: f.status,
                    error: f.error,
                    at: mc_store::now_micros() + self.backoff(d.attempts).as_micros() as i64,
                },
                Err(f) => DeliveryOutcome::Failed {
                    status: f.status,
                    error: f.error,
                },
            };
            if let DeliveryOutcome::Failed { error, .. } = &outcome {
                tracing::warn!(tenant = %d.tenant, delivery = d.id, %error, "webhook delivery failed for good");
            }
            self.store.finish_delivery(d.id, d.attempts, &outcome).await?;
        }
        Ok(n)
    }

    /// The wait after failed attempt `attempt` (1-based): doubling, capped, with ±20% jitter so
    /// deliveries that failed together do not all come back together.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .config
            .backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(20))
            .min(MAX_BACKOFF);
        let mut r = [0u8; 2];
        let _ = getrandom::getrandom(&mut r);
        let jitter = f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX) * 0.4 + 0.8;
        base.mul_f64(jitter)
    }

    /// Sends `d` as an email to `address` through the relay.
    async fn email(&self, d: &Delivery, address: &str) -> Result<u16, Failure> {
        let Some(relay) = &self.config.smtp else {
            return Err(transient(
                "this node has no mail relay (--smtp-url); the email is retried once one is configured".into(),
            ));
        };
        let (subject, body) = email_text(&d.event_type, &d.payload);
        let id = format!("{}@mission-control", message_id(d));
        let mail = smtp::Mail {
            to: address,
            subject: &subject,
            body: &body,
            message_id: &id,
            headers: &[("X-Mission-Control-Event", &d.event_type)],
        };
        match smtp::send(relay, &mail).await {
            Ok(()) => Ok(SMTP_OK),
            Err(e) => Err(Failure {
                status: None,
                error: format!("email to {address}: {e}"),
                retry: e.transient,
            }),
        }
    }

    /// The `whsec_…` key that signs `d`: the deployment's escalation key, or the tenant secret
    /// the delivery names.
    async fn signing_key(&self, d: &Delivery) -> Result<String, Failure> {
        if d.secret == mc_store::OPERATOR_SIGNED {
            return self.config.escalation_secret.clone().ok_or_else(|| {
                transient("this node has no escalation signing key (--escalation-secret); it is retried".into())
            });
        }
        let sealer = self
            .config
            .sealer
            .as_ref()
            .ok_or_else(|| transient("this node has no secret key to open the signing secret with".into()))?;
        let mut secrets = self
            .store
            .tenant(&d.tenant)
            .secret_values(sealer, std::slice::from_ref(&d.secret))
            .await
            .map_err(|e| transient(e.to_string()))?;
        secrets.remove(&d.secret).ok_or_else(|| {
            transient(format!(
                "tenant `{}` has no secret `{}` to sign with (add it: it is retried)",
                d.tenant, d.secret
            ))
        })
    }

    async fn attempt(&self, d: &Delivery) -> Result<u16, Failure> {
        if let Some(address) = d.url.strip_prefix("mailto:") {
            return self.email(d, address).await;
        }
        let url = reqwest::Url::parse(&d.url).map_err(|e| fatal(format!("`{}` is not a URL: {e}", d.url)))?;
        let origin = mc_config::webhook_origin(&d.url).map_err(fatal)?;
        let allowed = AllowList::parse(&[origin.as_str()]).map_err(|e| fatal(e.to_string()))?;
        if let Some((ip, class)) = allowed.patterns().iter().find_map(|p| p.forbidden_literal())
            && !self.config.test_hosts.contains(&origin)
        {
            return Err(fatal(format!(
                "{origin}: {ip} is a {class} address and this deployment does not allow it as a test host"
            )));
        }
        let scheme = Scheme::parse(url.scheme()).ok_or_else(|| fatal(format!("`{}`: not http or https", d.url)))?;
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(scheme.default_port());
        let vetted = allowed.vet(scheme, host, port).await.map_err(|e| match e {
            EgressError::Dns { .. } => transient(e.to_string()),
            other => fatal(other.to_string()),
        })?;
        let secret = self.signing_key(d).await?;
        let id = message_id(d);
        let timestamp = mc_store::now_micros() / 1_000_000;
        let signature = sign(&secret, &id, timestamp, d.payload.as_bytes()).map_err(fatal)?;
        // The connection goes to the vetted addresses, not to a second lookup of the name (which
        // could answer differently: DNS rebinding).
        let client = reqwest::Client::builder()
            .resolve_to_addrs(&vetted.host, &vetted.addrs)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.config.timeout)
            .build()
            .map_err(|e| transient(e.to_string()))?;
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(d.payload.clone())
            .send()
            .await
            .map_err(|e| transient(format!("{}: {e}", d.url)))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            Ok(status)
        } else {
            Err(Failure {
                status: Some(status),
                error: format!("{} answered {status}", d.url),
                retry: true,
            })
        }
    }
}
