//! Client onboarding (professional services): turns a new client into a checklist of open items,
//! each with a due date, recorded in the `open-items` registry, and a welcome pack written in the
//! firm's voice.
//!
//! Input: `{ "client": "...", "email"?: "...", "service": "accounting"|"legal"|"consulting"|..., "start": "YYYY-MM-DD" }`.
//! Agent parameters: `firm` (the firm's name).
//! Output: `{ "client", "checklist": [{ "item", "due" }], "welcome": { "subject", "body" }, "recorded": n }`.

use mission_control_sdk::time::{date, days};
use mission_control_sdk::{Context, Error, Result, ai, config, log, plugin, registry};
use serde::{Deserialize, Serialize};

/// The registry checklist items go to.
pub const OPEN_ITEMS: &str = "open-items";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub client: String,
    #[serde(default)]
    pub email: Option<String>,
    pub service: String,
    pub start: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    pub item: String,
    pub due: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Welcome {
    pub subject: String,
    pub body: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Output {
    pub client: String,
    pub checklist: Vec<Item>,
    pub welcome: Welcome,
    pub recorded: usize,
}

/// The checklist for a service starting on `start`: what every client needs, then what the
/// service needs, each due some days after the start.
pub fn checklist(service: &str, start: i64) -> Vec<Item> {
    let mut items: Vec<(&str, i64)> = vec![
        ("Engagement letter signed", 0),
        ("Billing details received", 2),
        ("Kick-off call held", 3),
        ("Access to documents and systems granted", 5),
    ];
    items.extend(match service {
        "accounting" => vec![
            ("Prior-year returns received", 7),
            ("Bank statements for the year received", 7),
        ],
        "legal" => vec![("Conflict check cleared", 1), ("Identity verified", 2)],
        "consulting" => vec![("Success measures agreed", 7), ("Stakeholder interviews scheduled", 10)],
        _ => vec![("Scope of work confirmed", 5)],
    });
    items.sort_by_key(|(_, offset)| *offset);
    items
        .into_iter()
        .map(|(item, offset)| Item {
            item: item.to_string(),
            due: date(start + offset),
        })
        .collect()
}

fn run(input: Input, ctx: &Context) -> Result<Output> {
    if input.client.trim().is_empty() {
        return Err(Error::invalid_input("the client's name is empty"));
    }
    let start = days(&input.start)
        .ok_or_else(|| Error::invalid_input(format!("start `{}` is not a date (YYYY-MM-DD)", input.start)))?;
    let service = input.service.trim().to_lowercase();
    let checklist = checklist(&service, start);
    for i in &checklist {
        registry::insert(
            OPEN_ITEMS,
            &serde_json::json!({ "client": input.client, "item": i.item, "due": i.due, "status": "open" }),
        )?;
    }
    let firm = config::get("firm")?.unwrap_or_else(|| "our firm".into());
    let steps: Vec<String> = checklist
        .iter()
        .map(|i| format!("- {} (by {})", i.item, i.due))
        .collect();
    let body = ai::complete(
        &format!("You write warm, brief welcome letters for {firm}, a professional services firm."),
        &format!(
            "Welcome {} as a new {service} client starting {}. Mention these first steps:\n{}",
            input.client,
            input.start,
            steps.join("\n")
        ),
    )?
    .text;
    log::info(format!(
        "{}: onboarding {} ({} items)",
        ctx.agent,
        input.client,
        checklist.len()
    ));
    Ok(Output {
        recorded: checklist.len(),
        welcome: Welcome {
            subject: format!("Welcome to {firm}, {}", input.client),
            body,
        },
        client: input.client,
        checklist,
    })
}

plugin!(run);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_gets_its_own_items_in_due_order() {
        let start = days("2026-12-01").unwrap();
        let legal = checklist("legal", start);
        assert_eq!(legal[0].item, "Engagement letter signed");
        assert_eq!(
            legal[1],
            Item {
                item: "Conflict check cleared".into(),
                due: "2026-12-02".into()
            }
        );
        assert!(legal.windows(2).all(|w| w[0].due <= w[1].due));
        assert!(
            checklist("accounting", start)
                .iter()
                .any(|i| i.item.contains("Prior-year returns"))
        );
        assert!(
            checklist("tax", start)
                .iter()
                .any(|i| i.item == "Scope of work confirmed")
        );
    }
}
