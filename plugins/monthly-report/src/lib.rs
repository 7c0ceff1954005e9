//! Monthly report (professional services): sums a month of time entries from the `time-entries`
//! registry per client (hours, and fees where a rate is recorded), then asks the model for a short
//! narrative for the partners.
//!
//! Input: `{ "month"?: "YYYY-MM" | "previous", "client"?: "..." }` (default: the previous month, UTC).
//! Registry `time-entries` rows: `{ "client", "date": "YYYY-MM-DD", "hours", "rate"?, "note"? }`.
//! Output: `{ "month", "clients": [{ "client", "hours", "fees", "entries" }], "total_hours", "total_fees", "narrative" }`.

use std::collections::BTreeMap;

use mission_control_sdk::registry::{self, Filter};
use mission_control_sdk::{Context, Error, Result, Value, ai, log, plugin, time};
use serde::{Deserialize, Serialize};

pub const TIME_ENTRIES: &str = "time-entries";
/// Most entries one report reads.
const MAX_ENTRIES: u32 = 1_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    #[serde(default = "previous")]
    pub month: String,
    #[serde(default)]
    pub client: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientLine {
    pub client: String,
    pub hours: f64,
    pub fees: f64,
    pub entries: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Output {
    pub month: String,
    pub clients: Vec<ClientLine>,
    pub total_hours: f64,
    pub total_fees: f64,
    pub narrative: String,
}

/// Per-client totals of entries (`client`, `hours`, `rate`), by client name.
pub fn totals<'a>(entries: impl Iterator<Item = &'a Value>) -> Vec<ClientLine> {
    let mut by: BTreeMap<String, ClientLine> = BTreeMap::new();
    for e in entries {
        let (Some(client), Some(hours)) = (e["client"].as_str(), e["hours"].as_f64()) else {
            continue;
        };
        let line = by.entry(client.to_string()).or_insert_with(|| ClientLine {
            client: client.to_string(),
            hours: 0.0,
            fees: 0.0,
            entries: 0,
        });
        line.hours += hours;
        line.fees += hours * e["rate"].as_f64().unwrap_or(0.0);
        line.entries += 1;
    }
    by.into_values()
        .map(|mut l| {
            l.hours = (l.hours * 100.0).round() / 100.0;
            l.fees = (l.fees * 100.0).round() / 100.0;
            l
        })
        .collect()
}

fn previous() -> String {
    "previous".into()
}

/// The month before the one of day number `day`, as `YYYY-MM`.
pub fn month_before(day: i64) -> String {
    let (y, m, _) = time::ymd(day);
    if m == 1 {
        format!("{:04}-12", y - 1)
    } else {
        format!("{y:04}-{:02}", m - 1)
    }
}

fn valid_month(m: &str) -> bool {
    m.len() == 7
        && m.as_bytes()[4] == b'-'
        && m[..4].parse::<u32>().is_ok()
        && matches!(m[5..].parse::<u32>(), Ok(1..=12))
}

fn run(mut input: Input, ctx: &Context) -> Result<Output> {
    if input.month == "previous" {
        input.month = month_before(time::today());
    }
    if !valid_month(&input.month) {
        return Err(Error::invalid_input(format!("month `{}` is not YYYY-MM", input.month)));
    }
    let mut filters = vec![
        Filter::ge("date", &format!("{}-01", input.month))?,
        Filter::le("date", &format!("{}-31", input.month))?,
    ];
    if let Some(c) = &input.client {
        filters.push(Filter::eq("client", c)?);
    }
    let rows = registry::query(TIME_ENTRIES, &filters, MAX_ENTRIES)?;
    let clients = totals(rows.iter().map(|r| &r.data));
    let total_hours = (clients.iter().map(|c| c.hours).sum::<f64>() * 100.0).round() / 100.0;
    let total_fees = (clients.iter().map(|c| c.fees).sum::<f64>() * 100.0).round() / 100.0;
    let lines: Vec<String> = clients
        .iter()
        .map(|c| {
            format!(
                "{}: {} h over {} entries, fees {:.2}",
                c.client, c.hours, c.entries, c.fees
            )
        })
        .collect();
    let narrative = if clients.is_empty() {
        format!("No time was recorded in {}.", input.month)
    } else {
        ai::complete(
            "You summarise a professional services firm's month for its partners in three sentences: \
             where the time went, what stands out, what to watch.",
            &format!("Month {}\n{}", input.month, lines.join("\n")),
        )?
        .text
    };
    log::info(format!(
        "{}: {} clients, {total_hours} h in {}",
        ctx.agent,
        clients.len(),
        input.month
    ));
    Ok(Output {
        month: input.month,
        clients,
        total_hours,
        total_fees,
        narrative,
    })
}

plugin!(run);

#[cfg(test)]
mod tests {
    use super::*;
    use mission_control_sdk::json;

    #[test]
    fn entries_sum_per_client_with_fees_where_a_rate_is_known() {
        let rows = [
            json!({"client": "Acme", "date": "2026-11-02", "hours": 2.5, "rate": 120}),
            json!({"client": "Acme", "date": "2026-11-03", "hours": 1.25, "rate": 120}),
            json!({"client": "Globex", "date": "2026-11-04", "hours": 3}),
            json!({"client": "Broken"}),
        ];
        let t = totals(rows.iter());
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].client.as_str(), t[0].hours, t[0].fees, t[0].entries),
            ("Acme", 3.75, 450.0, 2)
        );
        assert_eq!((t[1].hours, t[1].fees), (3.0, 0.0));
        assert!(valid_month("2026-11") && !valid_month("2026-13") && !valid_month("Nov"));
        assert_eq!(month_before(time::days("2026-11-28").unwrap()), "2026-10");
        assert_eq!(month_before(time::days("2026-01-01").unwrap()), "2025-12");
    }
}
