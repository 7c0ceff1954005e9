//! Tenant configuration files: the format (`TenantConfig` and its parts), parsing, and validation,
//! with the line and column of every mistake.
//!
//! ```yaml
//! tenant: acme                      # the tenant's id: lower-case letters, digits and dashes
//! name: Acme Garden Supplies        # optional display name
//! agents:
//!   - name: writer                  # unique within the tenant
//!     role: Content writer          # what the agent does, shown in the dashboard
//!     plugin: content-writer        # the plugin that is its workflow logic
//!     model: offline                # optional: the model it uses (default: offline)
//!     instructions: Write warmly.   # optional: standing instructions
//!     config: { brand_voice: warm } # optional: parameters the plugin reads through wasi:config
//!     hosts: ["https://api.example.com"] # optional: origins its plugin may reach over HTTP
//!                                   #   (scheme://host[:port], `*.domain`, port `*`; default none)
//!     secrets: [crm-token]          # optional: tenant secrets its plugin may read through
//!                                   #   wasi:config as `secret.<name>` (default none)
//!     fallbacks: [gpt-4o-mini]      # optional: models tried in order when `model` cannot answer
//!                                   #   (its provider is down or refuses); every model must be in
//!                                   #   the price book
//!     budget: { monthly: 50 }       # optional: the most this agent may spend on AI per month (USD)
//!     reports_to: director          # optional: its manager, an agent of this file; the team is a
//!                                   #   tree, and an agent may delegate to those reporting to it
//!     delegates_to: [analytics]     # optional: agents it may delegate to beside its reports
//!     registries: { clients: write } # optional: registries of this file its plugin may `read` or
//!                                   #   `write` (query, insert, update) through the registry import
//! contact:                          # optional: who hears of incidents that concern this tenant
//!   email: ops@acme.example         #   an address the deployment's mail relay sends to
//!   webhook: { url: https://hooks.acme.example/incidents, secret: incident-key }
//!                                   #   posted per Standard Webhooks, signed with the tenant
//!                                   #   secret `incident-key` (a `whsec_…` value)
//! budget:                           # optional: the tenant's AI spending limits, in USD
//!   monthly: 200                    #   per calendar month (UTC)
//!   per_run: 2.50                   #   per root run (a run and everything it delegates)
//! registries:                       # optional: typed tables the tenant owns (see `registry`)
//!   - name: clients
//!     fields: [{ name: email, type: string, required: true, unique: true }, { name: mrr, type: number }]
//! automations:
//!   - name: weekly-post             # unique within the tenant
//!     agent: writer                 # an agent of this file
//!     trigger: { cron: "0 9 * * 1", timezone: Europe/Berlin }
//!     # or { interval: 15m } | { at: 2026-12-01T09:00:00Z } | { webhook: {} }
//!     #  | { after: other-automation } | { manual: true }
//!     input: { brief: "Spring sale" } # optional: the run's input (a JSON value), default {}
//!     enabled: true                 # optional, default true
//!     priority: 0                   # optional, -100 (background) to 100 (urgent), default 0
//!     overlap: skip                 # optional: skip | queue | allow a run while one is running, default skip
//!                                   #   (queue: the run waits until the previous one finished)
//!     max_running: 4                # optional: most runs of this automation at once, across nodes
//!                                   #   (1 to 1000; default no limit; `overlap: queue` means 1)
//!     catch_up: once                # optional: after downtime, skip | once | all missed ticks, default once
//!     approval: { deliver_to: clients } # optional: each run's output waits for a person to approve
//!                                   #   (maybe edited) or reject it; once approved it is added to the
//!                                   #   registry `deliver_to` (if set) and completion triggers fire;
//!                                   #   `webhook: { url: https://…, secret: hook-key }` also posts it
//!                                   #   there, signed per Standard Webhooks with the tenant secret
//!                                   #   `hook-key` (a `whsec_…` value), retried until delivered
//! ```
//!
//! Parsing happens in two passes: serde_yaml turns the text into these types (its errors carry a
//! position), then `validate` checks what types cannot (names, references, schedules), looking
//! positions up in an index of every node's path built by a second, event-level parse.

pub mod brand;
mod money;
mod positions;
pub mod registry;
pub mod template;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

pub use brand::{BrandError, BrandSpec};
pub use money::{MICROS_PER_USD, Usd, format_decimal, format_usd, parse_usd};
pub use positions::Positions;
pub use registry::{FieldSpec, FieldType, RegistrySpec, RowError};
pub use template::{TeamParts, Template, TemplateError, TemplateMeta, TemplateParam};

/// Longest name accepted for a tenant, agent or automation (names appear in URLs and logs).
pub const MAX_NAME_LEN: usize = 63;
/// Priority bounds: wide enough to express urgency, narrow enough that aging can lift a
/// background job to the top in bounded time.
pub const MIN_PRIORITY: i32 = -100;
pub const MAX_PRIORITY: i32 = 100;
/// Most runs of one automation a `max_running` limit may allow; more is no limit at all and
/// probably a typo.
pub const MAX_RUNNING_LIMIT: u32 = 1_000;
/// Where a granted secret appears among the plugin's `wasi:config` values: `secret.<name>`.
pub const SECRET_CONFIG_PREFIX: &str = "secret.";
/// Largest configuration file accepted.
pub const MAX_FILE_BYTES: usize = 4 << 20;

/// A tenant's whole configuration: applying it makes the tenant's agents and automations exactly
/// these.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub tenant: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub agents: Vec<AgentSpec>,
    #[serde(default)]
    pub automations: Vec<AutomationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<TenantBudget>,
    /// Who hears of incidents that concern the tenant (an automation paused, its queue backed up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<ContactSpec>,
    /// Typed tables the tenant owns (see [`registry`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<RegistrySpec>,
}

/// A tenant's own contact for incidents: an email address, a webhook, or both.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContactSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookTarget>,
}

/// Checks an email address is plain enough for an SMTP command and a mail header: one `@`
/// with something on both sides, no spaces, angle brackets, quotes or line breaks.
pub fn valid_email(address: &str) -> Result<(), String> {
    let ok = address.len() <= 254
        && address.matches('@').count() == 1
        && !address.starts_with('@')
        && !address.ends_with('@')
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"' | '\\'));
    if ok {
        Ok(())
    } else {
        Err(format!("`{address}` is not an email address (expected name@domain)"))
    }
}

/// A tenant's AI spending limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantBudget {
    /// Per calendar month (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<Usd>,
    /// Per root run: a run and every run it delegates to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_run: Option<Usd>,
}

/// An agent's own AI spending limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentBudget {
    /// Per calendar month (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<Usd>,
}

/// One agent.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    pub name: String,
    pub role: String,
    pub plugin: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<AgentBudget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reports_to: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delegates_to: Vec<String>,
    /// Registries its plugin may use through the `registry` import, and how.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub registries: BTreeMap<String, RegistryAccess>,
}

/// What an agent may do with a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryAccess {
    /// Query rows.
    Read,
    /// Query, insert and update rows.
    Write,
}

/// What to do when a trigger fires while a run of the same automation is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// Record the tick as skipped.
    #[default]
    Skip,
    /// Enqueue it to run after the current one.
    Queue,
    /// Run it concurrently.
    Allow,
}

/// What to do with ticks missed while no node was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Record them as missed; run nothing.
    Skip,
    /// Run once for all of them.
    #[default]
    Once,
    /// Run each (up to a limit the engine sets).
    All,
}

/// The trigger as written: exactly one of its fields must be set.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<bool>,
}

/// Webhook trigger options (none yet; `{}` enables the endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {}

/// The trigger once validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Trigger {
    Cron { expr: String, timezone: String },
    Interval { seconds: u64 },
    At { time: String },
    Webhook,
    After { automation: String },
    Manual,
}

impl Trigger {
    /// When it fires next after `now`, if it fires on a clock. `mark` is the last tick the
    /// engine handled (interval schedules count from it; `None` until a node first ran it).
    pub fn next_fire(&self, mark: Option<i64>, now: jiff::Timestamp) -> Option<jiff::Timestamp> {
        match self {
            Trigger::Cron { expr, timezone } => {
                let schedule = mc_schedule::CronSchedule::parse(expr).ok()?;
                let tz = mc_schedule::parse_timezone(timezone).ok()?;
                schedule.next_after(now, &tz)
            }
            Trigger::Interval { seconds } => {
                let m = mark?;
                let step = (*seconds as i64).max(1) * 1_000_000;
                let behind = (now.as_microsecond() - m).max(0) / step;
                jiff::Timestamp::from_microsecond(m + (behind + 1) * step).ok()
            }
            Trigger::At { time } => time.parse::<jiff::Timestamp>().ok().filter(|ts| *ts > now),
            Trigger::Webhook | Trigger::After { .. } | Trigger::Manual => None,
        }
    }

    /// The trigger in a few words.
    pub fn describe(&self) -> String {
        match self {
            Trigger::Cron { expr, timezone } => format!("cron \"{expr}\" {timezone}"),
            Trigger::Interval { seconds } => format!("every {}", mc_schedule::format_interval(*seconds)),
            Trigger::At { time } => format!("once at {time}"),
            Trigger::Webhook => "webhook".into(),
            Trigger::After { automation } => format!("after {automation} succeeds"),
            Trigger::Manual => "manual".into(),
        }
    }
}

impl TriggerSpec {
    /// The spec that resolves to `t`: how a stored configuration is written back out.
    pub fn from_trigger(t: &Trigger) -> TriggerSpec {
        let mut spec = TriggerSpec::default();
        match t {
            Trigger::Cron { expr, timezone } => {
                spec.cron = Some(expr.clone());
                spec.timezone = Some(timezone.clone());
            }
            Trigger::Interval { seconds } => spec.interval = Some(mc_schedule::format_interval(*seconds)),
            Trigger::At { time } => spec.at = Some(time.clone()),
            Trigger::Webhook => spec.webhook = Some(WebhookSpec {}),
            Trigger::After { automation } => spec.after = Some(automation.clone()),
            Trigger::Manual => spec.manual = Some(true),
        }
        spec
    }
}

/// One automation.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AutomationSpec {
    pub name: String,
    pub agent: String,
    pub trigger: TriggerSpec,
    #[serde(default = "empty_object")]
    pub input: serde_json::Value,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub overlap: Overlap,
    #[serde(default)]
    pub max_running: Option<u32>,
    #[serde(default)]
    pub catch_up: CatchUp,
    /// A person approves (possibly after editing) or rejects each run's output before anything is
    /// done with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalSpec>,
}

/// What happens to an automation's output once a person approved it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSpec {
    /// A registry of this file the approved output (a JSON object) is added to as a row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_to: Option<String>,
    /// Where the approved output is posted as an `approval.approved` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookTarget>,
}

/// An outbound webhook: where to post, and the tenant secret (`whsec_…`) to sign with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    /// An http or https URL. Its host is vetted at every delivery like any outbound request:
    /// private, loopback and metadata addresses are refused unless configured as a test host.
    pub url: String,
    /// The tenant secret holding the signing key.
    pub secret: String,
}

/// Longest webhook URL accepted.
pub const MAX_WEBHOOK_URL_LEN: usize = 2_000;

/// The origin (`scheme://host[:port]`) of a webhook URL, or what is wrong with it.
pub fn webhook_origin(url: &str) -> Result<String, String> {
    if url.len() > MAX_WEBHOOK_URL_LEN {
        return Err(format!("a webhook URL is at most {MAX_WEBHOOK_URL_LEN} characters"));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{url}` is not a URL (expected https://host/path)"))?;
    if scheme != "https" && scheme != "http" {
        return Err(format!("`{url}`: the scheme must be https or http"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains(['@', '*']) || url.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{url}` must name one host, without user info, wildcards or spaces"
        ));
    }
    let origin = format!("{scheme}://{authority}");
    mc_egress::HostPattern::parse(&origin).map_err(|e| e.to_string())?;
    Ok(origin)
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

fn yes() -> bool {
    true
}

/// A mistake in a configuration file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ConfigError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// What `validate` needs to know beyond the file.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// Plugins that exist; `None` skips the check (e.g. when the plugin directory is elsewhere).
    pub plugins: Option<BTreeSet<String>>,
    /// Models the price book prices; `None` skips the check.
    pub models: Option<BTreeSet<String>>,
}

impl Known {
    /// The plugins in `dir` (`<name>.wasm`, where the file name has `_` for the plugin name's `-`);
    /// nothing is known (no check) when the directory cannot be read.
    pub fn from_plugin_dir(dir: &std::path::Path) -> Known {
        let plugins = std::fs::read_dir(dir).ok().map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".wasm").map(|n| n.replace('_', "-"))
                })
                .collect()
        });
        Known { plugins, models: None }
    }

    /// This knowledge plus the models of a price book.
    pub fn with_models(mut self, models: impl IntoIterator<Item = String>) -> Known {
        self.models = Some(models.into_iter().collect());
        self
    }
}

/// A validated configuration: the file's content with each trigger resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    pub config: TenantConfig,
    /// The resolved trigger of each automation, by automation name.
    pub triggers: HashMap<String, Trigger>,
}

/// Parses and validates a configuration file's text.
pub fn parse(text: &str, known: &Known) -> Result<Validated, ConfigError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(ConfigError {
            line: 1,
            column: 1,
            message: format!("the file is larger than {MAX_FILE_BYTES} bytes"),
        });
    }
    let config: TenantConfig = from_yaml(text)?;
    let positions = Positions::index(text);
    validate(config, known, &positions)
}

/// Reads a YAML document into `T`, a mistake reported at its line and column.
pub(crate) fn from_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
        // serde_yaml appends " at line X column Y" to its message; the position is ours to print.
        let message = e.to_string();
        let message = match message.find(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        ConfigError { line, column, message }
    })
}

/// Checks a tenant, agent, automation, plugin or partner name: what may appear in URLs and logs.
pub fn valid_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid name: use 1 to {MAX_NAME_LEN} lower-case letters, digits and dashes, not starting or ending with a dash"
        ))
    }
}

/// Checks what the types cannot: names, uniqueness, references, triggers, plugins.
pub fn validate(config: TenantConfig, known: &Known, positions: &Positions) -> Result<Validated, ConfigError> {
    let err = |path: &str, message: String| {
        let (line, column) = positions.of(path);
        ConfigError {
            line,
            column,
            message: format!("{path}: {message}"),
        }
    };
    valid_name(&config.tenant).map_err(|m| err("tenant", m))?;
    if let Some(c) = &config.contact {
        if c.email.is_none() && c.webhook.is_none() {
            return Err(err("contact", "name an email, a webhook, or both".into()));
        }
        if let Some(e) = &c.email {
            valid_email(e).map_err(|m| err("contact.email", m))?;
        }
        if let Some(hook) = &c.webhook {
            webhook_origin(&hook.url).map_err(|m| err("contact.webhook.url", m))?;
            valid_name(&hook.secret).map_err(|m| err("contact.webhook.secret", m))?;
        }
    }
    if let Some(b) = &config.budget {
        for (field, amount) in [("budget.monthly", b.monthly), ("budget.per_run", b.per_run)] {
            if amount == Some(Usd(0)) {
                return Err(err(field, "a budget must be more than $0.00".into()));
            }
        }
    }

    let mut agents = BTreeSet::new();
    for (i, a) in config.agents.iter().enumerate() {
        let at = |f: &str| format!("agents[{i}].{f}");
        valid_name(&a.name).map_err(|m| err(&at("name"), m))?;
        if !agents.insert(a.name.as_str()) {
            return Err(err(&at("name"), format!("agent `{}` is defined twice", a.name)));
        }
        if a.role.trim().is_empty() {
            return Err(err(&at("role"), "the role must not be empty".into()));
        }
        valid_name(&a.plugin).map_err(|m| err(&at("plugin"), m))?;
        for (j, h) in a.hosts.iter().enumerate() {
            mc_egress::HostPattern::parse(h).map_err(|e| err(&at(&format!("hosts[{j}]")), e.to_string()))?;
        }
        for (j, name) in a.secrets.iter().enumerate() {
            valid_name(name).map_err(|m| err(&at(&format!("secrets[{j}]")), m))?;
        }
        if a.config.keys().any(|k| k.starts_with(SECRET_CONFIG_PREFIX)) {
            return Err(err(
                &at("config"),
                format!("keys starting with `{SECRET_CONFIG_PREFIX}` are reserved for granted secrets"),
            ));
        }
        let mut models_seen = BTreeSet::new();
        let chosen = a.model.iter().map(|m| ("model".to_string(), m));
        let fallbacks = a
            .fallbacks
            .iter()
            .enumerate()
            .map(|(j, m)| (format!("fallbacks[{j}]"), m));
        for (field, m) in chosen.chain(fallbacks) {
            if !models_seen.insert(m.as_str()) {
                return Err(err(&at(&field), format!("model `{m}` is listed twice")));
            }
            if let Some(models) = &known.models
                && !models.contains(m)
            {
                let list: Vec<&str> = models.iter().map(String::as_str).collect();
                return Err(err(
                    &at(&field),
                    format!("unknown model `{m}`: the price book has {}", list.join(", ")),
                ));
            }
        }
        if a.model.is_none() && !a.fallbacks.is_empty() {
            return Err(err(
                &at("fallbacks"),
                "fallbacks need a `model` to fall back from".into(),
            ));
        }
        if let Some(AgentBudget { monthly: Some(Usd(0)) }) = a.budget {
            return Err(err(&at("budget.monthly"), "a budget must be more than $0.00".into()));
        }
        if let Some(plugins) = &known.plugins
            && !plugins.contains(&a.plugin)
        {
            let list: Vec<&str> = plugins.iter().map(String::as_str).collect();
            return Err(err(
                &at("plugin"),
                format!("unknown plugin `{}` (available: {})", a.plugin, list.join(", ")),
            ));
        }
    }

    let mut registries = BTreeSet::new();
    for (i, r) in config.registries.iter().enumerate() {
        let at = |f: &str| format!("registries[{i}].{f}");
        valid_name(&r.name).map_err(|m| err(&at("name"), m))?;
        if !registries.insert(r.name.as_str()) {
            return Err(err(&at("name"), format!("registry `{}` is defined twice", r.name)));
        }
        registry::validate_registry(r).map_err(|(f, m)| err(&at(&f), m))?;
    }
    for (i, a) in config.agents.iter().enumerate() {
        for name in a.registries.keys() {
            if !registries.contains(name.as_str()) {
                let list: Vec<&str> = registries.iter().copied().collect();
                return Err(err(
                    &format!("agents[{i}].registries.{name}"),
                    format!(
                        "registry `{name}` is not defined in this file (registries: {})",
                        if list.is_empty() {
                            "none".into()
                        } else {
                            list.join(", ")
                        }
                    ),
                ));
            }
        }
    }
    validate_team(&config.agents, &agents, &err)?;

    let names: BTreeSet<&str> = config.automations.iter().map(|a| a.name.as_str()).collect();
    let mut seen = BTreeSet::new();
    let mut triggers = HashMap::new();
    let mut after_edges: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, a) in config.automations.iter().enumerate() {
        let at = |f: &str| format!("automations[{i}].{f}");
        valid_name(&a.name).map_err(|m| err(&at("name"), m))?;
        if !seen.insert(a.name.as_str()) {
            return Err(err(&at("name"), format!("automation `{}` is defined twice", a.name)));
        }
        if let Some(ApprovalSpec {
            webhook: Some(hook), ..
        }) = &a.approval
        {
            webhook_origin(&hook.url).map_err(|m| err(&at("approval.webhook.url"), m))?;
            valid_name(&hook.secret).map_err(|m| err(&at("approval.webhook.secret"), m))?;
        }
        if let Some(ApprovalSpec {
            deliver_to: Some(r), ..
        }) = &a.approval
            && !registries.contains(r.as_str())
        {
            let list: Vec<&str> = registries.iter().copied().collect();
            return Err(err(
                &at("approval.deliver_to"),
                format!(
                    "registry `{r}` is not defined in this file (registries: {})",
                    if list.is_empty() {
                        "none".into()
                    } else {
                        list.join(", ")
                    }
                ),
            ));
        }
        if !agents.contains(a.agent.as_str()) {
            let list: Vec<&str> = agents.iter().copied().collect();
            return Err(err(
                &at("agent"),
                format!(
                    "agent `{}` is not defined in this file (agents: {})",
                    a.agent,
                    if list.is_empty() {
                        "none".into()
                    } else {
                        list.join(", ")
                    }
                ),
            ));
        }
        if !(MIN_PRIORITY..=MAX_PRIORITY).contains(&a.priority) {
            return Err(err(
                &at("priority"),
                format!(
                    "priority must be between {MIN_PRIORITY} and {MAX_PRIORITY}, got {}",
                    a.priority
                ),
            ));
        }
        if let Some(n) = a.max_running
            && !(1..=MAX_RUNNING_LIMIT).contains(&n)
        {
            return Err(err(
                &at("max_running"),
                format!("max_running must be between 1 and {MAX_RUNNING_LIMIT}, got {n}"),
            ));
        }
        let trigger = resolve_trigger(&a.trigger).map_err(|(field, m)| err(&at(&format!("trigger{field}")), m))?;
        if let Trigger::After { automation } = &trigger {
            if automation == &a.name {
                return Err(err(&at("trigger.after"), "an automation cannot trigger itself".into()));
            }
            if !names.contains(automation.as_str()) {
                return Err(err(
                    &at("trigger.after"),
                    format!("automation `{automation}` is not defined in this file"),
                ));
            }
            after_edges.insert(a.name.as_str(), names.get(automation.as_str()).copied().unwrap_or(""));
        }
        triggers.insert(a.name.clone(), trigger);
    }
    // Completion chains must not loop: A after B after A would run forever.
    for start in after_edges.keys() {
        let mut chain = vec![*start];
        let mut cur = *start;
        while let Some(next) = after_edges.get(cur) {
            if chain.contains(next) {
                chain.push(next);
                let i = config.automations.iter().position(|a| a.name == *start).unwrap_or(0);
                return Err(err(
                    &format!("automations[{i}].trigger.after"),
                    format!("completion triggers form a loop: {}", chain.join(" → ")),
                ));
            }
            chain.push(next);
            cur = next;
        }
    }
    Ok(Validated { config, triggers })
}

/// The team is a tree: each `reports_to` names another agent of the file and following them never
/// comes back; each `delegates_to` names another agent of the file.
fn validate_team(
    agents: &[AgentSpec],
    names: &BTreeSet<&str>,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    let listed = || names.iter().copied().collect::<Vec<_>>().join(", ");
    let mut manager: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, a) in agents.iter().enumerate() {
        if let Some(m) = &a.reports_to {
            let at = format!("agents[{i}].reports_to");
            if m == &a.name {
                return Err(err(&at, format!("agent `{m}` cannot report to itself")));
            }
            if !names.contains(m.as_str()) {
                return Err(err(
                    &at,
                    format!("agent `{m}` is not defined in this file (agents: {})", listed()),
                ));
            }
            manager.insert(a.name.as_str(), m.as_str());
        }
        for (j, d) in a.delegates_to.iter().enumerate() {
            let at = format!("agents[{i}].delegates_to[{j}]");
            if d == &a.name {
                return Err(err(&at, format!("agent `{d}` cannot delegate to itself")));
            }
            if !names.contains(d.as_str()) {
                return Err(err(
                    &at,
                    format!("agent `{d}` is not defined in this file (agents: {})", listed()),
                ));
            }
        }
    }
    for (i, a) in agents.iter().enumerate() {
        let mut chain = vec![a.name.as_str()];
        let mut cur = a.name.as_str();
        while let Some(&next) = manager.get(cur) {
            chain.push(next);
            if next == a.name {
                return Err(err(
                    &format!("agents[{i}].reports_to"),
                    format!(
                        "the team must be a tree, but reporting goes round: {}",
                        chain.join(" → ")
                    ),
                ));
            }
            if chain[..chain.len() - 1].contains(&next) {
                break;
            }
            cur = next;
        }
    }
    Ok(())
}

/// A trigger as written, in a few words (`None` when it is not valid).
pub fn resolve_trigger_words(t: &TriggerSpec) -> Option<String> {
    resolve_trigger(t).ok().map(|t| t.describe())
}

/// Resolves a trigger, or names the offending field (as a path suffix) and the problem.
fn resolve_trigger(t: &TriggerSpec) -> Result<Trigger, (String, String)> {
    let set = [
        t.cron.is_some(),
        t.interval.is_some(),
        t.at.is_some(),
        t.webhook.is_some(),
        t.after.is_some(),
        t.manual.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count();
    if set != 1 {
        return Err((
            String::new(),
            format!("expected exactly one of cron, interval, at, webhook, after, manual; found {set}"),
        ));
    }
    if t.timezone.is_some() && t.cron.is_none() {
        return Err((".timezone".into(), "timezone applies only to cron triggers".into()));
    }
    if let Some(expr) = &t.cron {
        mc_schedule::CronSchedule::parse(expr).map_err(|e| (".cron".to_string(), e.to_string()))?;
        let tz = t.timezone.clone().unwrap_or_else(|| "UTC".into());
        mc_schedule::parse_timezone(&tz).map_err(|e| (".timezone".to_string(), e.to_string()))?;
        return Ok(Trigger::Cron {
            expr: expr.clone(),
            timezone: tz,
        });
    }
    if let Some(every) = &t.interval {
        let d = mc_schedule::parse_interval(every).map_err(|e| (".interval".to_string(), e.to_string()))?;
        return Ok(Trigger::Interval { seconds: d.as_secs() });
    }
    if let Some(at) = &t.at {
        let ts = mc_schedule::parse_at(at).map_err(|e| (".at".to_string(), e.to_string()))?;
        return Ok(Trigger::At { time: ts.to_string() });
    }
    if t.webhook.is_some() {
        return Ok(Trigger::Webhook);
    }
    if let Some(after) = &t.after {
        return Ok(Trigger::After {
            automation: after.clone(),
        });
    }
    match t.manual {
        Some(true) => Ok(Trigger::Manual),
        _ => Err((
            ".manual".into(),
            "manual must be true (omit the trigger field instead of false)".into(),
        )),
    }
}

#[cfg(test)]
mod tests;
