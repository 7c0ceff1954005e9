//! Email manager: triages a queue of incoming messages in code (urgent, support, sales, spam,
//! FYI), orders them by priority, and asks the model to draft replies to those that need one.
//!
//! Input: `{ "messages": [{ "id", "from", "subject", "body" }], "signature"?: "..." }`.
//! Agent parameters: `max_drafts` (default 10), `company`.
//! Output: `{ "triaged": [{ "id", "from", "subject", "category", "priority", "needs_reply", "draft"? }], "summary": {...} }`.

use std::collections::BTreeMap;

use mission_control_sdk::{Context, Error, Result, ai, config, log, plugin};
use serde::{Deserialize, Serialize};

/// Drafts per run unless the agent says otherwise: each costs an AI call.
const DEFAULT_MAX_DRAFTS: usize = 10;
/// Most messages accepted in one run; a larger queue should be split across runs.
const MAX_MESSAGES: usize = 500;

const URGENT_WORDS: [&str; 9] = [
    "urgent",
    "asap",
    "immediately",
    "outage",
    "down",
    "broken",
    "refund",
    "cancel",
    "complaint",
];
const SPAM_WORDS: [&str; 8] = [
    "lottery",
    "winner",
    "crypto",
    "bitcoin",
    "prince",
    "viagra",
    "click here",
    "limited offer",
];
const SALES_WORDS: [&str; 7] = [
    "pricing", "quote", "proposal", "demo", "purchase", "invoice", "contract",
];
const SUPPORT_WORDS: [&str; 7] = ["help", "issue", "problem", "error", "how do i", "can't", "cannot"];
const NO_REPLY_SENDERS: [&str; 3] = ["no-reply", "noreply", "mailer-daemon"];

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub id: String,
    pub from: String,
    pub subject: String,
    #[serde(default)]
    pub body: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub messages: Vec<Message>,
    #[serde(default)]
    pub signature: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Urgent,
    Support,
    Sales,
    Fyi,
    Spam,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Triage {
    pub category: Category,
    /// 1 (handle first) to 4 (ignore).
    pub priority: u8,
    pub needs_reply: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Triaged {
    pub id: String,
    pub from: String,
    pub subject: String,
    #[serde(flatten)]
    pub triage: Triage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draft: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Output {
    pub triaged: Vec<Triaged>,
    pub summary: BTreeMap<String, usize>,
    pub drafts: usize,
}

fn has_any(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| text.contains(w))
}

/// Classifies one message by its sender, subject and body.
pub fn triage(m: &Message) -> Triage {
    let text = format!("{} {}", m.subject, m.body).to_lowercase();
    let automated = has_any(&m.from.to_lowercase(), &NO_REPLY_SENDERS);
    let (category, priority) = if has_any(&text, &SPAM_WORDS) {
        (Category::Spam, 4)
    } else if has_any(&text, &URGENT_WORDS) {
        (Category::Urgent, 1)
    } else if has_any(&text, &SUPPORT_WORDS) {
        (Category::Support, 2)
    } else if has_any(&text, &SALES_WORDS) {
        (Category::Sales, 2)
    } else {
        (Category::Fyi, 3)
    };
    let needs_reply = !automated && matches!(category, Category::Urgent | Category::Support | Category::Sales);
    Triage {
        category,
        priority,
        needs_reply,
    }
}

/// Triages every message and orders them: priority first, then the queue's own order.
pub fn triage_all(messages: &[Message]) -> Vec<(usize, Triage)> {
    let mut out: Vec<(usize, Triage)> = messages.iter().enumerate().map(|(i, m)| (i, triage(m))).collect();
    out.sort_by_key(|(i, t)| (t.priority, *i));
    out
}

fn run(input: Input, ctx: &Context) -> Result<Output> {
    if input.messages.len() > MAX_MESSAGES {
        return Err(Error::invalid_input(format!(
            "at most {MAX_MESSAGES} messages per run, got {}",
            input.messages.len()
        )));
    }
    let max_drafts = match config::get("max_drafts")? {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| Error::invalid_input(format!("agent parameter max_drafts must be a number, got `{v}`")))?,
        None => DEFAULT_MAX_DRAFTS,
    };
    let company = config::get("company")?.unwrap_or_else(|| "our team".into());
    let signature = input.signature.clone().unwrap_or_else(|| format!("— {company}"));
    let mut drafts = 0;
    let mut triaged = Vec::with_capacity(input.messages.len());
    let mut summary = BTreeMap::new();
    for (i, t) in triage_all(&input.messages) {
        let m = &input.messages[i];
        *summary.entry(format!("{:?}", t.category).to_lowercase()).or_insert(0) += 1;
        let draft = if t.needs_reply && drafts < max_drafts {
            drafts += 1;
            let reply = ai::chat()
                .system(format!(
                    "You answer email for {company}. Be brief, polite and concrete. End with: {signature}"
                ))
                .user(format!("From: {}\nSubject: {}\n\n{}", m.from, m.subject, m.body))
                .max_tokens(400)
                .send()?;
            Some(reply.text)
        } else {
            None
        };
        triaged.push(Triaged {
            id: m.id.clone(),
            from: m.from.clone(),
            subject: m.subject.clone(),
            triage: t,
            draft,
        });
    }
    log::info(format!(
        "{}: triaged {} messages, drafted {drafts} replies",
        ctx.tenant,
        triaged.len()
    ));
    Ok(Output {
        triaged,
        summary,
        drafts,
    })
}

plugin!(run);

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str, from: &str, subject: &str, body: &str) -> Message {
        Message {
            id: id.into(),
            from: from.into(),
            subject: subject.into(),
            body: body.into(),
        }
    }

    #[test]
    fn classifies_by_content_and_sender() {
        assert_eq!(
            triage(&msg("1", "a@b.c", "Site is DOWN", "")).category,
            Category::Urgent
        );
        assert_eq!(
            triage(&msg("1", "a@b.c", "You are a WINNER", "claim your lottery prize")).category,
            Category::Spam
        );
        assert_eq!(
            triage(&msg("1", "a@b.c", "Question", "How do I reset my password?")).category,
            Category::Support
        );
        assert_eq!(
            triage(&msg("1", "a@b.c", "Pricing for 20 seats", "")).category,
            Category::Sales
        );
        let fyi = triage(&msg("1", "a@b.c", "Team lunch", "Friday at noon"));
        assert_eq!((fyi.category, fyi.needs_reply), (Category::Fyi, false));
        let automated = triage(&msg("1", "no-reply@shop.com", "Refund issued", ""));
        assert_eq!((automated.category, automated.needs_reply), (Category::Urgent, false));
    }

    #[test]
    fn orders_by_priority_then_arrival() {
        let queue = vec![
            msg("a", "x@y.z", "Team lunch", ""),
            msg("b", "x@y.z", "Need a quote", ""),
            msg("c", "x@y.z", "Outage on checkout", ""),
            msg("d", "x@y.z", "crypto giveaway", ""),
            msg("e", "x@y.z", "Invoice question", ""),
        ];
        let order: Vec<&str> = triage_all(&queue).iter().map(|(i, _)| queue[*i].id.as_str()).collect();
        assert_eq!(order, ["c", "b", "e", "a", "d"]);
    }
}
