//! Follow-ups (professional services): finds the open items in the `open-items` registry that are
//! past due, drafts a polite reminder for each, and marks them followed up.
//!
//! Input: `{ "today"?: "YYYY-MM-DD", "limit"?: n }` (today defaults to the run's date, UTC).
//! Agent parameters: `firm`.
//! Output: `{ "today", "overdue": n, "reminders": [{ "id", "client", "item", "due", "draft" }] }`.

use mission_control_sdk::registry::{self, Filter};
use mission_control_sdk::{Context, Error, Result, ai, config, log, plugin, time};
use serde::{Deserialize, Serialize};

pub const OPEN_ITEMS: &str = "open-items";
/// Most reminders one run drafts.
pub const MAX_REMINDERS: u32 = 25;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    #[serde(default)]
    pub today: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reminder {
    pub id: String,
    pub client: String,
    pub item: String,
    pub due: String,
    pub draft: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Output {
    pub today: String,
    pub overdue: usize,
    pub reminders: Vec<Reminder>,
}

fn run(input: Input, ctx: &Context) -> Result<Output> {
    let today = input.today.unwrap_or_else(|| time::date(time::today()));
    if today.len() != 10 {
        return Err(Error::invalid_input(format!("today `{today}` is not YYYY-MM-DD")));
    }
    let limit = input.limit.unwrap_or(MAX_REMINDERS).clamp(1, MAX_REMINDERS);
    let overdue = registry::query(
        OPEN_ITEMS,
        &[Filter::eq("status", &"open")?, Filter::lt("due", &today)?],
        limit,
    )?;
    let firm = config::get("firm")?.unwrap_or_else(|| "our firm".into());
    let mut reminders = Vec::new();
    for row in &overdue {
        let field = |f: &str| row.data[f].as_str().unwrap_or_default().to_string();
        let (client, item, due) = (field("client"), field("item"), field("due"));
        let draft = ai::complete(
            &format!("You write short, friendly reminders for {firm}. Never blame the client."),
            &format!("Remind {client} that \"{item}\" was due on {due}; offer help."),
        )?
        .text;
        registry::update(OPEN_ITEMS, &row.id, &serde_json::json!({ "status": "followed-up" }))?;
        reminders.push(Reminder {
            id: row.id.clone(),
            client,
            item,
            due,
            draft,
        });
    }
    log::info(format!("{}: {} overdue items followed up", ctx.agent, reminders.len()));
    Ok(Output {
        today,
        overdue: reminders.len(),
        reminders,
    })
}

plugin!(run);
