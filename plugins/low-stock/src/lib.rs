//! Low-stock alerts (e-commerce): reads the `catalogue` registry and lists the products whose stock
//! is at or below their reorder level, the biggest shortfall first, with how many to order.
//!
//! Input: `{ "cover"?: n }` (reorder up to this many times the reorder level; default 2).
//! Output: `{ "checked": n, "alerts": [{ "id", "sku", "name", "stock", "reorder_level", "order" }] }`.

use mission_control_sdk::{Context, Error, Result, Value, log, plugin, registry};
use serde::{Deserialize, Serialize};

pub const CATALOGUE: &str = "catalogue";
/// Most catalogue rows one run checks.
const MAX_ROWS: u32 = 1_000;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    #[serde(default)]
    pub cover: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub stock: i64,
    pub reorder_level: i64,
    /// How many to order to reach `cover` times the reorder level.
    pub order: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Output {
    pub checked: usize,
    pub alerts: Vec<Alert>,
}

/// The alerts among `rows` (`(id, data)`), biggest shortfall first.
pub fn alerts<'a>(rows: impl Iterator<Item = (&'a str, &'a Value)>, cover: i64) -> Vec<Alert> {
    let mut out: Vec<Alert> = rows
        .filter_map(|(id, d)| {
            let (stock, level) = (d["stock"].as_i64()?, d["reorder_level"].as_i64()?);
            (stock <= level).then(|| Alert {
                id: id.to_string(),
                sku: d["sku"].as_str().unwrap_or_default().to_string(),
                name: d["name"].as_str().unwrap_or_default().to_string(),
                stock,
                reorder_level: level,
                order: (level * cover - stock).max(0),
            })
        })
        .collect();
    out.sort_by_key(|a| (a.stock - a.reorder_level, a.sku.clone()));
    out
}

fn run(input: Input, ctx: &Context) -> Result<Output> {
    let cover = i64::from(input.cover.unwrap_or(2));
    if !(1..=12).contains(&cover) {
        return Err(Error::invalid_input(format!("cover must be 1 to 12, got {cover}")));
    }
    let rows = registry::query(CATALOGUE, &[], MAX_ROWS)?;
    let alerts = alerts(rows.iter().map(|r| (r.id.as_str(), &r.data)), cover);
    for a in &alerts {
        log::warn(format!(
            "low stock: {} ({}) has {} left, reorder level {}",
            a.name, a.sku, a.stock, a.reorder_level
        ));
    }
    log::info(format!(
        "{}: {} products checked, {} low",
        ctx.agent,
        rows.len(),
        alerts.len()
    ));
    Ok(Output {
        checked: rows.len(),
        alerts,
    })
}

plugin!(run);

#[cfg(test)]
mod tests {
    use super::*;
    use mission_control_sdk::json;

    #[test]
    fn products_at_or_below_their_level_alert_biggest_shortfall_first() {
        let rows = [
            (
                "1",
                json!({"sku": "A", "name": "Trowel", "stock": 5, "reorder_level": 10}),
            ),
            (
                "2",
                json!({"sku": "B", "name": "Rake", "stock": 10, "reorder_level": 10}),
            ),
            (
                "3",
                json!({"sku": "C", "name": "Hose", "stock": 40, "reorder_level": 10}),
            ),
            (
                "4",
                json!({"sku": "D", "name": "Gloves", "stock": 0, "reorder_level": 20}),
            ),
            ("5", json!({"sku": "E", "name": "No level"})),
        ];
        let a = alerts(rows.iter().map(|(id, d)| (*id, d)), 2);
        assert_eq!(a.iter().map(|a| a.sku.as_str()).collect::<Vec<_>>(), ["D", "A", "B"]);
        assert_eq!((a[0].order, a[1].order, a[2].order), (40, 15, 10));
    }
}
