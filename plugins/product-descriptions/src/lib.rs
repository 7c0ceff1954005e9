//! Product descriptions (e-commerce): writes a description for each catalogue row still in
//! `draft`, from its name, category and features, and marks the row `ready`.
//!
//! Input: `{ "limit"?: n }`. Registry `catalogue` rows: `{ "sku", "name", "category"?, "features"?,
//! "description"?, "status": "draft"|"ready", "stock"?, "reorder_level"? }`.
//! Agent parameters: `brand_voice`.
//! Output: `{ "written": n, "products": [{ "id", "sku", "name", "words" }] }`.

use mission_control_sdk::registry::{self, Filter};
use mission_control_sdk::{Context, Result, ai, config, log, plugin};
use serde::{Deserialize, Serialize};

pub const CATALOGUE: &str = "catalogue";
/// Most descriptions one run writes.
pub const MAX_PER_RUN: u32 = 20;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub words: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Output {
    pub written: usize,
    pub products: Vec<Written>,
}

/// The prompt for one product.
pub fn prompt(name: &str, category: &str, features: &str) -> String {
    let mut p = format!("Product: {name}");
    if !category.is_empty() {
        p.push_str(&format!("\nCategory: {category}"));
    }
    if !features.is_empty() {
        p.push_str(&format!("\nFeatures: {features}"));
    }
    p.push_str("\nWrite a product description of 60 to 90 words: what it is, who it is for, why it is good.");
    p
}

fn run(input: Input, ctx: &Context) -> Result<Output> {
    let limit = input.limit.unwrap_or(MAX_PER_RUN).clamp(1, MAX_PER_RUN);
    let drafts = registry::query(CATALOGUE, &[Filter::eq("status", &"draft")?], limit)?;
    let voice = config::get("brand_voice")?.unwrap_or_else(|| "clear and friendly".into());
    let mut products = Vec::new();
    for row in &drafts {
        let field = |f: &str| row.data[f].as_str().unwrap_or_default().to_string();
        let (sku, name) = (field("sku"), field("name"));
        let text = ai::complete(
            &format!("You are an e-commerce copywriter. Your voice is {voice}. No claims you cannot back."),
            &prompt(&name, &field("category"), &field("features")),
        )?
        .text;
        registry::update(
            CATALOGUE,
            &row.id,
            &serde_json::json!({ "description": text, "status": "ready" }),
        )?;
        products.push(Written {
            id: row.id.clone(),
            sku,
            name,
            words: text.split_whitespace().count(),
        });
    }
    log::info(format!("{}: {} descriptions written", ctx.agent, products.len()));
    Ok(Output {
        written: products.len(),
        products,
    })
}

plugin!(run);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_names_what_is_known() {
        let p = prompt("Trowel", "Garden tools", "stainless steel, ash handle");
        assert!(p.contains("Product: Trowel\nCategory: Garden tools\nFeatures: stainless steel"));
        assert!(!prompt("Trowel", "", "").contains("Category"));
    }
}
