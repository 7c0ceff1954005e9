//! The price book: what a model's tokens and a plugin's fuel cost, and the arithmetic that turns
//! usage into integer micro-dollars.
//!
//! Prices are written in USD per million tokens (as providers publish them) and held as integer
//! micro-dollars per million tokens, so `cost = tokens × price / 1,000,000` is integer arithmetic
//! with one rounding per call (half up). The book is data, not code: the host ships
//! [`SHIPPED`] and an operator replaces it with `missionctl prices apply -f` without a release;
//! the store numbers each version and every ledger row names the version that priced it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Usage;

/// The price book shipped with this release (stored as version 1 when a store has none).
pub const SHIPPED: &str = include_str!("../prices.yaml");

/// Micro-dollars in a dollar.
pub const MICROS_PER_USD: u64 = 1_000_000;
/// Tokens a per-million price is quoted for.
const TOKENS_PER_PRICE: u128 = 1_000_000;
/// Fuel units a fuel price is quoted for.
const FUEL_PER_PRICE: u128 = 1_000_000_000;
/// Highest price accepted, in USD per million tokens: a typo (a price per token written as per
/// million, say) is caught instead of billing a client a fortune.
const MAX_PRICE_USD: f64 = 10_000.0;

/// What one model costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelPrice {
    /// The provider that serves the model (`anthropic`, `openai`, `offline`, or a configured
    /// OpenAI-compatible provider's name).
    pub provider: String,
    /// Micro-dollars per million tokens.
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    /// Prices that apply instead when a call's whole input exceeds a threshold.
    pub long_context: Option<LongContext>,
}

/// Long-context prices (Anthropic charges more above 200k input tokens on some models).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LongContext {
    pub above_input_tokens: u64,
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

/// A parsed price book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PriceBook {
    /// Where the prices come from, for the people who read the book.
    pub source: String,
    /// Micro-dollars per billion fuel units.
    pub fuel_per_billion: u64,
    pub models: BTreeMap<String, ModelPrice>,
}

/// A price book that cannot be used; the text says where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("price book: {0}")]
pub struct PriceBookError(pub String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BookFile {
    #[serde(default)]
    source: String,
    fuel_per_billion: f64,
    models: BTreeMap<String, ModelFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    provider: String,
    input: f64,
    output: f64,
    #[serde(default)]
    cache_read: Option<f64>,
    #[serde(default)]
    cache_write: Option<f64>,
    #[serde(default)]
    long_context: Option<LongFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongFile {
    above_input_tokens: u64,
    input: f64,
    output: f64,
    #[serde(default)]
    cache_read: Option<f64>,
    #[serde(default)]
    cache_write: Option<f64>,
}

/// USD (per million) to integer micro-dollars, refusing what cannot be a price.
fn micros(model: &str, field: &str, usd: f64) -> Result<u64, PriceBookError> {
    if !usd.is_finite() || !(0.0..=MAX_PRICE_USD).contains(&usd) {
        return Err(PriceBookError(format!(
            "model `{model}`: {field} must be between 0 and {MAX_PRICE_USD} USD, got {usd}"
        )));
    }
    // Prices have at most six decimals in USD; rounding removes the binary fraction noise.
    Ok((usd * MICROS_PER_USD as f64).round() as u64)
}

impl PriceBook {
    /// Parses a price book file (YAML; see `host/ai/prices.yaml` for the format).
    pub fn parse(text: &str) -> Result<PriceBook, PriceBookError> {
        let file: BookFile = serde_yaml::from_str(text).map_err(|e| PriceBookError(e.to_string()))?;
        if file.models.is_empty() {
            return Err(PriceBookError("it prices no models".into()));
        }
        let mut models = BTreeMap::new();
        for (name, m) in file.models {
            if m.provider.trim().is_empty() {
                return Err(PriceBookError(format!("model `{name}`: provider is empty")));
            }
            let input = micros(&name, "input", m.input)?;
            let cache_read = micros(&name, "cache_read", m.cache_read.unwrap_or(m.input))?;
            let cache_write = micros(&name, "cache_write", m.cache_write.unwrap_or(m.input))?;
            let long_context = match m.long_context {
                Some(l) => Some(LongContext {
                    above_input_tokens: l.above_input_tokens,
                    input: micros(&name, "long_context.input", l.input)?,
                    output: micros(&name, "long_context.output", l.output)?,
                    cache_read: micros(
                        &name,
                        "long_context.cache_read",
                        l.cache_read.unwrap_or(cache_read as f64 / MICROS_PER_USD as f64),
                    )?,
                    cache_write: micros(
                        &name,
                        "long_context.cache_write",
                        l.cache_write.unwrap_or(cache_write as f64 / MICROS_PER_USD as f64),
                    )?,
                }),
                None => None,
            };
            models.insert(
                name.clone(),
                ModelPrice {
                    provider: m.provider,
                    input,
                    output: micros(&name, "output", m.output)?,
                    cache_read,
                    cache_write,
                    long_context,
                },
            );
        }
        let fuel_per_billion = micros("(fuel)", "fuel_per_billion", file.fuel_per_billion)?;
        Ok(PriceBook {
            source: file.source,
            fuel_per_billion,
            models,
        })
    }

    /// The shipped book.
    pub fn shipped() -> PriceBook {
        PriceBook::parse(SHIPPED).expect("the shipped price book parses")
    }

    /// The price of `model`, if the book has one.
    pub fn model(&self, model: &str) -> Option<&ModelPrice> {
        self.models.get(model)
    }

    /// What `fuel` units cost, in micro-dollars (rounded half up).
    pub fn fuel_cost(&self, fuel: u64) -> u64 {
        div_round(u128::from(fuel) * u128::from(self.fuel_per_billion), FUEL_PER_PRICE)
    }
}

/// `n / d` rounded half up, saturating at `u64::MAX`.
fn div_round(n: u128, d: u128) -> u64 {
    u64::try_from((n + d / 2) / d).unwrap_or(u64::MAX)
}

impl ModelPrice {
    /// The four per-million prices that apply to a call with `input_total` input tokens (cached
    /// ones included).
    fn rates(&self, input_total: u64) -> [u64; 4] {
        match &self.long_context {
            Some(l) if input_total > l.above_input_tokens => [l.input, l.output, l.cache_read, l.cache_write],
            _ => [self.input, self.output, self.cache_read, self.cache_write],
        }
    }

    /// What a call with `usage` costs, in micro-dollars: each kind of token at its own price, summed
    /// exactly and rounded once.
    pub fn cost(&self, usage: &Usage) -> u64 {
        let total_in = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens;
        let [i, o, r, w] = self.rates(total_in).map(u128::from);
        let n = u128::from(usage.input_tokens) * i
            + u128::from(usage.output_tokens) * o
            + u128::from(usage.cache_read_tokens) * r
            + u128::from(usage.cache_write_tokens) * w;
        div_round(n, TOKENS_PER_PRICE)
    }

    /// The most a call can cost with about `input_estimate` input tokens and `max_tokens` output:
    /// every input token at the dearest input rate (a cache write costs more than plain input) and
    /// every allowed output token. Rounded up, so a reservation is never short by rounding.
    pub fn worst_case(&self, input_estimate: u64, max_tokens: u64) -> u64 {
        let [i, o, r, w] = self.rates(input_estimate).map(u128::from);
        let n = u128::from(input_estimate) * i.max(r).max(w) + u128::from(max_tokens) * o;
        u64::try_from(n.div_ceil(TOKENS_PER_PRICE)).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(i: u64, o: u64, r: u64, w: u64) -> Usage {
        Usage {
            input_tokens: i,
            output_tokens: o,
            cache_read_tokens: r,
            cache_write_tokens: w,
        }
    }

    #[test]
    fn the_shipped_book_has_the_reference_prices() {
        let book = PriceBook::shipped();
        let haiku = book.model("claude-haiku-4-5").unwrap();
        assert_eq!(
            (haiku.input, haiku.output, haiku.cache_read, haiku.cache_write),
            (1_000_000, 5_000_000, 100_000, 1_250_000)
        );
        let mini = book.model("gpt-4o-mini").unwrap();
        assert_eq!((mini.input, mini.output, mini.cache_read), (150_000, 600_000, 75_000));
        assert_eq!(mini.provider, "openai");
        assert_eq!(book.model("offline").unwrap().provider, "offline");
        assert!(book.model("claude-sonnet-4-5").unwrap().long_context.is_some());
    }

    #[test]
    fn each_kind_of_token_is_billed_at_its_own_price() {
        let book = PriceBook::shipped();
        let haiku = book.model("claude-haiku-4-5").unwrap();
        // 1,000 input at $1/M = 1,000 µ$; 200 output at $5/M = 1,000 µ$; 10,000 cache reads at
        // $0.10/M = 1,000 µ$; 800 cache writes at $1.25/M = 1,000 µ$.
        assert_eq!(haiku.cost(&usage(1_000, 200, 10_000, 800)), 4_000);
        // Cached tokens at the full input rate would be 11,000 µ$ more: the bug we must not have.
        assert_eq!(haiku.cost(&usage(0, 0, 10_000, 0)), 1_000);
        // One token of gpt-4o-mini input is 0.15 µ$: rounds to 0, four of them to 1 (0.6 → 1).
        let mini = book.model("gpt-4o-mini").unwrap();
        assert_eq!(mini.cost(&usage(1, 0, 0, 0)), 0);
        assert_eq!(mini.cost(&usage(4, 0, 0, 0)), 1);
    }

    #[test]
    fn long_context_prices_apply_above_the_threshold() {
        let book = PriceBook::shipped();
        let sonnet = book.model("claude-sonnet-4-5").unwrap();
        assert_eq!(sonnet.cost(&usage(200_000, 0, 0, 0)), 600_000);
        assert_eq!(sonnet.cost(&usage(200_001, 0, 0, 0)), 1_200_006);
        // 100,001 cache reads at $0.60/M are 60,000.6 µ$: the call rounds once, up to ...501.
        assert_eq!(sonnet.cost(&usage(100_000, 1_000, 100_001, 0)), 682_501);
    }

    #[test]
    fn the_worst_case_covers_any_real_cost() {
        let book = PriceBook::shipped();
        let haiku = book.model("claude-haiku-4-5").unwrap();
        let worst = haiku.worst_case(1_000, 500);
        assert_eq!(worst, 1_250 + 2_500);
        for (i, r, w) in [(1_000, 0, 0), (0, 1_000, 0), (0, 0, 1_000), (300, 300, 400)] {
            assert!(haiku.cost(&usage(i, 500, r, w)) <= worst);
        }
    }

    #[test]
    fn fuel_is_priced_per_billion() {
        let book =
            PriceBook::parse("fuel_per_billion: 0.02\nmodels:\n  m: { provider: offline, input: 0, output: 0 }\n")
                .unwrap();
        assert_eq!(book.fuel_cost(1_000_000_000), 20_000);
        assert_eq!(book.fuel_cost(25_000), 1);
        assert_eq!(book.fuel_cost(24_999), 0);
    }

    #[test]
    fn a_bad_book_is_refused_with_the_reason() {
        let e =
            PriceBook::parse("fuel_per_billion: 0\nmodels:\n  m: { provider: x, input: -1, output: 0 }\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "price book: model `m`: input must be between 0 and 10000 USD, got -1"
        );
        let e = PriceBook::parse("fuel_per_billion: 0\nmodels: {}\n").unwrap_err();
        assert_eq!(e.to_string(), "price book: it prices no models");
        let e =
            PriceBook::parse("fuel_per_billion: 0\nmodels:\n  m: { provider: x, input: 1, output: 1, colour: red }\n")
                .unwrap_err();
        assert!(e.to_string().contains("unknown field `colour`"), "{e}");
    }
}
