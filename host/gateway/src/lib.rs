//! The metered AI gateway: every AI call a plugin (or a chat) makes goes through [`Gateway`],
//! which prices it with the price book in force, holds its worst case against the tenant's
//! budgets, calls the model's provider (with retries, a circuit breaker and fallback to the
//! agent's next model), and records the real usage and cost in the ledger, releasing what it held.
//!
//! The gateway owns the wiring between two crates that know nothing of each other: `mc-ai`
//! (providers, resilience, prices; no SQL) and `mc-store` (budgets, ledger; no HTTP). The
//! runtime sees only the [`AiGateway`] trait.
//!
//! A plugin run's calls are numbered (`CallContext::call_seq`) and their answers kept with the
//! ledger row that bills them: when the run runs again (a retry, a resume after an approval) and
//! makes the same request under the same number, it gets the kept answer and pays nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mc_ai::prices::PriceBook;
use mc_ai::{
    AiError, AiGateway, AnthropicProvider, BreakerConfig, BreakerStatus, CallContext, CallFailure, ChatRequest,
    ChatResponse, Deltas, OfflineProvider, OpenAiProvider, Provider, ProviderErrorKind, Resilient, RetryPolicy,
    count_tokens,
};
use mc_store::{LedgerEntry, ReplyRecord, ReserveRequest, Sealer, Store, StoreError};

/// Tokens a chat format adds per message (role, separators), counted in the input estimate so
/// that a reservation is not short.
const ESTIMATE_TOKENS_PER_MESSAGE: u64 = 4;
/// How long a reservation outlives its call before it is released as abandoned: longer than any
/// call with all its retries can take (3 attempts × 120 s + backoff), so only a dead node's
/// reservations expire.
pub const RESERVATION_TTL: Duration = Duration::from_secs(15 * 60);
/// How often the gateway looks for a newer price book (one cheap query); a book applied on this
/// node is used at once.
const PRICE_BOOK_REFRESH: Duration = Duration::from_secs(1);
/// Attempts at recording a made call when the database fails: the money was spent, so the row
/// must land.
const SETTLE_ATTEMPTS: u32 = 5;
const SETTLE_PAUSE: Duration = Duration::from_millis(100);

/// The secret a tenant stores its own key for `provider` under.
pub fn tenant_key_secret(provider: &str) -> String {
    format!("{provider}-api-key")
}

/// The kind of API a configured provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Anthropic,
    /// OpenAI's chat completions, or a compatible server (Ollama, vLLM, llama.cpp).
    OpenAi,
}

/// A provider this deployment calls.
#[derive(Clone)]
pub struct Endpoint {
    /// The name models in the price book refer to (`anthropic`, `openai`, `ollama`, ...).
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: String,
    /// The deployment's key; a tenant's own key (secret `<name>-api-key`) takes precedence.
    pub api_key: Option<String>,
    /// Whether a call without any key is refused here (true for the hosted APIs; a local Ollama
    /// needs none).
    pub key_required: bool,
    /// Where an operator sets the deployment's key, for error messages (`ANTHROPIC_API_KEY`).
    pub key_hint: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "(set)"))
            .finish()
    }
}

/// How the gateway is set up on this node.
#[derive(Debug, Clone, Default)]
pub struct GatewayConfig {
    /// Providers beyond the offline one (always present).
    pub endpoints: Vec<Endpoint>,
    pub retry: RetryPolicy,
    pub breaker: BreakerConfig,
    /// Opens tenants' own provider keys; without it only deployment keys are used.
    pub sealer: Option<Sealer>,
}

struct Route {
    resilient: Resilient,
    endpoint: Option<Endpoint>,
}

/// The metered gateway. Cheap to share (`Arc`).
pub struct Gateway {
    store: Store,
    routes: BTreeMap<String, Route>,
    sealer: Option<Sealer>,
    book: Mutex<BookCache>,
}

struct BookCache {
    version: i64,
    book: Arc<PriceBook>,
    checked: std::time::Instant,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("providers", &self.routes.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored price book v{version} is unusable: {reason}")]
    PriceBook { version: i64, reason: String },
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Gateway {
    /// A gateway over `store` with `config`'s providers. Stores the shipped price book when the
    /// store has none.
    pub async fn open(store: Store, config: GatewayConfig) -> Result<Gateway, GatewayError> {
        let shipped = PriceBook::shipped();
        store
            .ensure_price_book(mc_ai::prices::SHIPPED, shipped.fuel_per_billion)
            .await?;
        let mut routes = BTreeMap::new();
        let offline: Arc<dyn Provider> = Arc::new(OfflineProvider);
        routes.insert(
            "offline".to_string(),
            Route {
                resilient: Resilient::new(offline, config.retry, config.breaker),
                endpoint: None,
            },
        );
        for e in config.endpoints {
            let provider: Arc<dyn Provider> = match e.kind {
                ProviderKind::Anthropic => Arc::new(AnthropicProvider::new(&e.base_url)),
                ProviderKind::OpenAi => Arc::new(OpenAiProvider::new(&e.name, &e.base_url)),
            };
            routes.insert(
                e.name.clone(),
                Route {
                    resilient: Resilient::new(provider, config.retry, config.breaker),
                    endpoint: Some(e),
                },
            );
        }
        let gateway = Gateway {
            store,
            routes,
            sealer: config.sealer,
            book: Mutex::new(BookCache {
                version: 0,
                book: Arc::new(shipped),
                checked: std::time::Instant::now() - PRICE_BOOK_REFRESH * 2,
            }),
        };
        gateway.reload_prices().await?;
        Ok(gateway)
    }

    /// Reads the price book in force now (after an operator applied a new one on this node).
    pub async fn reload_prices(&self) -> Result<(i64, Arc<PriceBook>), GatewayError> {
        let row = self.store.price_book().await?.ok_or(GatewayError::PriceBook {
            version: 0,
            reason: "there is none".into(),
        })?;
        let book = PriceBook::parse(&row.body).map_err(|e| GatewayError::PriceBook {
            version: row.version,
            reason: e.to_string(),
        })?;
        let book = Arc::new(book);
        let mut cache = lock(&self.book);
        cache.version = row.version;
        cache.book = book.clone();
        cache.checked = std::time::Instant::now();
        Ok((row.version, book))
    }

    /// The price book in force and its version, looking for a newer one at most once per
    /// [`PRICE_BOOK_REFRESH`].
    pub async fn prices(&self) -> Result<(i64, Arc<PriceBook>), AiError> {
        let (version, book, stale) = {
            let c = lock(&self.book);
            (c.version, c.book.clone(), c.checked.elapsed() >= PRICE_BOOK_REFRESH)
        };
        if !stale {
            return Ok((version, book));
        }
        let newest = self.store.price_book_version().await.map_err(unavailable_store)?;
        if newest == version {
            lock(&self.book).checked = std::time::Instant::now();
            return Ok((version, book));
        }
        self.reload_prices().await.map_err(|e| AiError::Other(e.to_string()))
    }

    /// The provider that serves `model`, by the price book this node holds.
    pub fn provider_of(&self, model: &str) -> Option<String> {
        lock(&self.book).book.model(model).map(|p| p.provider.clone())
    }

    /// Every provider's circuit breaker, for the status page.
    pub fn breakers(&self) -> Vec<BreakerStatus> {
        self.routes.values().map(|r| r.resilient.breaker()).collect()
    }

    /// The secret holding `tenant`'s own key for `route`, when this node can open one (it has a
    /// sealer): the reservation reads it in the same round trip.
    fn key_secret(&self, route: &Route) -> Option<String> {
        let endpoint = route.endpoint.as_ref()?;
        self.sealer.as_ref()?;
        Some(tenant_key_secret(&endpoint.name))
    }

    /// The key to call `route` with for `tenant`: the tenant's own (`sealed`, the secret
    /// [`Self::key_secret`] names, as the reservation read it), else the deployment's. `Err` says
    /// what to set, never a value.
    fn key(&self, tenant: &str, route: &Route, sealed: Option<&str>) -> Result<Option<String>, AiError> {
        let Some(endpoint) = &route.endpoint else {
            return Ok(None);
        };
        let secret = tenant_key_secret(&endpoint.name);
        if let (Some(sealer), Some(sealed)) = (&self.sealer, sealed) {
            let own = sealer.open(tenant, &secret, sealed).map_err(unavailable_store)?;
            let own = String::from_utf8(own).map_err(|_| {
                AiError::Other(format!(
                    "tenant `{tenant}`'s secret `{secret}` is not text: set it again"
                ))
            })?;
            return Ok(Some(own));
        }
        match &endpoint.api_key {
            Some(k) => Ok(Some(k.clone())),
            None if endpoint.key_required => Err(AiError::Other(format!(
                "no API key for {}: set {} on the server, or store tenant `{tenant}`'s own key as the secret `{secret}`",
                endpoint.name, endpoint.key_hint
            ))),
            None => Ok(None),
        }
    }

    /// Whose key a call used, for an authentication error's message.
    async fn key_source(&self, tenant: &str, route: &Route) -> String {
        let Some(endpoint) = &route.endpoint else {
            return String::new();
        };
        let secret = tenant_key_secret(&endpoint.name);
        let own = match &self.sealer {
            Some(_) => self
                .store
                .tenant(tenant)
                .secrets()
                .await
                .map(|s| s.iter().any(|m| m.name == secret))
                .unwrap_or(false),
            None => false,
        };
        if own {
            format!(" (the key used is tenant `{tenant}`'s secret `{secret}`: set it again)")
        } else {
            format!(
                " (the key used is the server's {}; tenant `{tenant}` can use its own as the secret `{secret}`)",
                endpoint.key_hint
            )
        }
    }

    /// Answers `request` for `ctx`, streaming text to `deltas` when given, metered and budgeted.
    /// Traced as an `ai_call` span (inside the run's span when a run calls).
    #[tracing::instrument(name = "ai_call", skip_all, fields(tenant = %ctx.tenant, agent = %ctx.agent, model = %request.model))]
    pub async fn chat_stream(
        &self,
        ctx: &CallContext,
        request: ChatRequest,
        deltas: Option<&Deltas>,
    ) -> Result<ChatResponse, AiError> {
        let journal = ctx.call_seq.map(|seq| (seq, request_hash(&request)));
        // Only a run's later attempts can have answers kept: the first pays no lookup.
        if let Some((seq, hash)) = &journal
            && ctx.attempt > 1
            && let Some(kept) = self.kept_answer(ctx, *seq, hash).await
        {
            if let Some(d) = deltas {
                let _ = d.send(kept.text.clone());
            }
            return Ok(kept);
        }
        let (version, book) = self.prices().await?;
        let mut models = vec![request.model.clone()];
        models.extend(request.fallbacks.iter().cloned());
        let estimate: u64 = request
            .messages
            .iter()
            .map(|m| count_tokens(&m.content) + ESTIMATE_TOKENS_PER_MESSAGE)
            .sum();
        let mut failures: Vec<(String, AiError)> = Vec::new();
        for model in &models {
            let Some(price) = book.model(model) else {
                failures.push((
                    model.clone(),
                    AiError::InvalidRequest(format!(
                        "model `{model}` has no price in price book v{version}, so the call is refused rather than recorded at zero"
                    )),
                ));
                continue;
            };
            let Some(route) = self.routes.get(&price.provider) else {
                failures.push((
                    model.clone(),
                    AiError::Unavailable(format!(
                        "model `{model}` is served by `{}`, which this deployment has not configured",
                        price.provider
                    )),
                ));
                continue;
            };
            let now = mc_store::now_micros();
            let worst = price.worst_case(estimate, u64::from(request.max_tokens));
            let secret = self.key_secret(route);
            let reserve = ReserveRequest {
                tenant: &ctx.tenant,
                agent: &ctx.agent,
                root_run: if ctx.root_run_id.is_empty() {
                    &ctx.run_id
                } else {
                    &ctx.root_run_id
                },
                amount: worst,
                expires_at: now + RESERVATION_TTL.as_micros() as i64,
                at: now,
                // The tenant's own key is read with the reservation: one round trip, not two.
                secret: secret.as_deref(),
            };
            let reservation = match self.store.reserve(&reserve).await.map_err(unavailable_store)? {
                Ok(r) => r,
                // A cheaper fallback might fit, but a budget is a decision about spending, not
                // about which model: the run hears why and stops.
                Err(refusal) => return Err(AiError::BudgetExceeded(refusal.to_string())),
            };
            let key = match self.key(&ctx.tenant, route, reservation.sealed_secret.as_deref()) {
                Ok(key) => key,
                Err(e) => {
                    self.release(&reservation).await;
                    failures.push((model.clone(), e));
                    continue;
                }
            };
            let call = ChatRequest {
                model: model.clone(),
                fallbacks: Vec::new(),
                ..request.clone()
            };
            match route.resilient.send(&call, key.as_deref(), deltas).await {
                Ok(response) => {
                    let cost = price.cost(&response.usage);
                    let entry = LedgerEntry {
                        tenant: ctx.tenant.clone(),
                        agent: ctx.agent.clone(),
                        automation: ctx.automation.clone(),
                        run_id: ctx.run_id.clone(),
                        attempt: ctx.attempt,
                        provider: response.provider.clone(),
                        model: model.clone(),
                        input_tokens: response.usage.input_tokens,
                        output_tokens: response.usage.output_tokens,
                        cache_read_tokens: response.usage.cache_read_tokens,
                        cache_write_tokens: response.usage.cache_write_tokens,
                        usage_estimated: response.usage_estimated,
                        price_version: version,
                        cost,
                        at: mc_store::now_micros(),
                        reply: journal.as_ref().map(|(seq, hash)| ReplyRecord {
                            seq: *seq,
                            request_hash: hash.clone(),
                            reply: serde_json::to_string(&response).unwrap_or_default(),
                        }),
                    };
                    self.settle(&reservation, &entry).await?;
                    return Ok(response);
                }
                Err(failure) => {
                    self.release(&reservation).await;
                    let sent = failure.text_sent;
                    let error = self.describe(ctx, route, &failure).await;
                    failures.push((model.clone(), error));
                    if sent {
                        // The listener has part of this answer; another model's would be mixed in.
                        break;
                    }
                }
            }
        }
        Err(combine(failures))
    }

    /// The answer run `ctx` got to call `seq` on an earlier attempt, if the request was the same.
    async fn kept_answer(&self, ctx: &CallContext, seq: u32, hash: &str) -> Option<ChatResponse> {
        match self.store.ai_reply(&ctx.tenant, &ctx.run_id, seq).await {
            Ok(Some((kept_hash, reply))) if kept_hash == hash => serde_json::from_str(&reply).ok(),
            Ok(_) => None,
            Err(e) => {
                // Without the journal the call is made again: paid twice, but the run goes on.
                tracing::warn!(error = %e, run = %ctx.run_id, seq, "reading a run's kept AI answers failed");
                None
            }
        }
    }

    /// Gives back a reservation whose call was not made or failed.
    async fn release(&self, reservation: &mc_store::Reservation) {
        if let Err(e) = self.store.release_reservation(reservation).await {
            // It expires and is released by the sweep; nothing is billed for it.
            tracing::warn!(error = %e, "releasing a reservation failed");
        }
    }

    /// Records a made call, retrying through a short database outage.
    async fn settle(&self, reservation: &mc_store::Reservation, entry: &LedgerEntry) -> Result<(), AiError> {
        let mut attempt = 1;
        loop {
            match self.store.settle(reservation, entry).await {
                Ok(_) => return Ok(()),
                Err(e) if attempt < SETTLE_ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "recording an AI call failed; retrying");
                    tokio::time::sleep(SETTLE_PAUSE * attempt).await;
                    attempt += 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, run = %entry.run_id, cost = entry.cost, "an AI call could not be recorded");
                    return Err(unavailable_store(e));
                }
            }
        }
    }

    /// The plugin-facing error for a provider failure.
    async fn describe(&self, ctx: &CallContext, route: &Route, f: &CallFailure) -> AiError {
        let text = f.to_string();
        match f.error.kind {
            ProviderErrorKind::Auth => AiError::Other(format!("{text}{}", self.key_source(&ctx.tenant, route).await)),
            ProviderErrorKind::BadRequest | ProviderErrorKind::NotFound => AiError::InvalidRequest(text),
            ProviderErrorKind::Malformed => AiError::Other(text),
            _ => AiError::Unavailable(text),
        }
    }
}

/// One error out of each model's: the only one, or all of them in order, as the variant of the
/// last (the most relevant to what the plugin can do next).
fn combine(mut failures: Vec<(String, AiError)>) -> AiError {
    if failures.len() <= 1 {
        return failures
            .pop()
            .map_or_else(|| AiError::InvalidRequest("no model to call".into()), |f| f.1);
    }
    let text = failures
        .iter()
        .map(|(m, e)| format!("{m}: {e}"))
        .collect::<Vec<_>>()
        .join("; ");
    let text = format!("every model failed: {text}");
    match failures.pop().map(|f| f.1) {
        Some(AiError::Unavailable(_)) => AiError::Unavailable(text),
        Some(AiError::InvalidRequest(_)) => AiError::InvalidRequest(text),
        Some(AiError::NotGranted(_)) => AiError::NotGranted(text),
        _ => AiError::Other(text),
    }
}

/// What identifies a request in the run's journal: everything the model is asked.
fn request_hash(request: &ChatRequest) -> String {
    mc_store::sha256_hex(serde_json::to_string(request).unwrap_or_default().as_bytes())
}

fn unavailable_store(e: StoreError) -> AiError {
    AiError::Unavailable(format!("the cost ledger is unavailable, so no AI call is made: {e}"))
}

#[async_trait::async_trait]
impl AiGateway for Gateway {
    async fn chat(&self, ctx: &CallContext, request: ChatRequest) -> Result<ChatResponse, AiError> {
        self.chat_stream(ctx, request, None).await
    }
}
