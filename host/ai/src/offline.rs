//! The offline provider: deterministic text from the conversation itself, no network, no model.
//!
//! It exists so that the demo, `missionctl run` and the test suite work on a machine with no
//! provider key and no network, and so that tests can predict every token count. Every answer
//! ends with a line that says plainly it is not a real model, so nobody mistakes its output for
//! AI-written text.

use crate::{AiError, AiGateway, CallContext, ChatRequest, ChatResponse, Message, Role, Usage};

/// The model name the offline provider answers to.
pub const OFFLINE_MODEL: &str = "offline";

/// The last line of every offline answer.
const DISCLAIMER: &str = "[offline model: deterministic text, not written by a real AI]";

/// Tokens a chat format adds per message for the role and separators (OpenAI's and Anthropic's
/// formats both add a few); counted so that input token counts are not flattered.
const TOKENS_PER_MESSAGE: u64 = 4;

/// Longest quote of the request echoed back, in characters.
const MAX_ECHO_CHARS: usize = 160;

/// Sentences the provider composes from the request's key words; chosen by a hash of the
/// conversation so the same conversation always gets the same answer.
const SENTENCES: [&str; 8] = [
    "The main point is {a}, framed for the reader in plain words.",
    "It connects {a} with {b} and closes with a clear next step.",
    "A short example makes {b} concrete.",
    "The tone stays consistent with {c} throughout.",
    "It opens with {a} and keeps every paragraph short.",
    "Numbers on {b} are stated once and not repeated.",
    "It ends by inviting the reader to act on {c}.",
    "A headline built around {c} leads the piece.",
];

/// Counts tokens the way the offline provider bills them: each run of letters and digits costs
/// one token per four characters (at least one), every other visible character one token.
pub fn count_tokens(text: &str) -> u64 {
    let mut tokens = 0u64;
    let mut word_len = 0u64;
    for c in text.chars() {
        if c.is_alphanumeric() {
            word_len += 1;
            continue;
        }
        tokens += word_len.div_ceil(4);
        word_len = 0;
        if !c.is_whitespace() {
            tokens += 1;
        }
    }
    tokens + word_len.div_ceil(4)
}

/// The deterministic provider. Cheap to clone and to share.
#[derive(Debug, Clone, Default)]
pub struct OfflineProvider;

impl OfflineProvider {
    /// Composes the answer for `request` (also used by tests to predict it).
    pub fn answer(&self, request: &ChatRequest) -> Result<ChatResponse, AiError> {
        if request.model != OFFLINE_MODEL {
            return Err(AiError::InvalidRequest(format!(
                "the offline provider serves only the model `{OFFLINE_MODEL}`, not `{}`",
                request.model
            )));
        }
        let input_tokens = request
            .messages
            .iter()
            .map(|m| count_tokens(&m.content) + TOKENS_PER_MESSAGE)
            .sum();
        let full = compose(&request.messages);
        let (text, stop_reason) = truncate_to_tokens(&full, u64::from(request.max_tokens));
        let output_tokens = count_tokens(&text);
        Ok(ChatResponse {
            text,
            model: OFFLINE_MODEL.to_string(),
            provider: "offline".to_string(),
            stop_reason: stop_reason.to_string(),
            usage: Usage {
                input_tokens,
                output_tokens,
                cache_read_tokens: 0,
                cache_write_tokens: 0,
            },
            usage_estimated: false,
        })
    }
}

#[async_trait::async_trait]
impl AiGateway for OfflineProvider {
    async fn chat(&self, _ctx: &CallContext, request: ChatRequest) -> Result<ChatResponse, AiError> {
        self.answer(&request)
    }
}

fn compose(messages: &[Message]) -> String {
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.content.as_str())
        .unwrap_or("");
    let hash = messages.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, m| {
        m.content.bytes().fold(h ^ m.role as u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    });
    let words = key_words(last_user);
    let pick = |i: usize| -> &str {
        if words.is_empty() {
            "the request"
        } else {
            words[(hash as usize).wrapping_add(i * 7) % words.len()]
        }
    };
    // A title-like first line (plugins often take the first line as a title), the body, and the
    // disclaimer last, where it is never cut off by a title extraction.
    let topic: Vec<&str> = words.iter().take(6).copied().collect();
    let mut out = format!(
        "Offline draft: {}\n\nYou asked: \"",
        if topic.is_empty() {
            "the request".to_string()
        } else {
            topic.join(" ")
        }
    );
    out.extend(
        last_user
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(MAX_ECHO_CHARS),
    );
    out.push_str("\"\n\n");
    let count = 3 + (hash % 3) as usize;
    for i in 0..count {
        let template = SENTENCES[(hash as usize).wrapping_add(i * 3) % SENTENCES.len()];
        let sentence = template
            .replace("{a}", pick(i))
            .replace("{b}", pick(i + 1))
            .replace("{c}", pick(i + 2));
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&sentence);
    }
    out.push_str("\n\n");
    out.push_str(DISCLAIMER);
    out
}

/// Distinct words of four letters or more, in order of appearance, at most twelve.
fn key_words(text: &str) -> Vec<&str> {
    let mut words: Vec<&str> = Vec::new();
    for w in text.split(|c: char| !c.is_alphanumeric()) {
        if w.chars().count() >= 4 && !words.iter().any(|x| x.eq_ignore_ascii_case(w)) {
            words.push(w);
            if words.len() == 12 {
                break;
            }
        }
    }
    words
}

/// Cuts `text` at the last character boundary that keeps it within `max` tokens.
fn truncate_to_tokens(text: &str, max: u64) -> (String, &'static str) {
    if count_tokens(text) <= max {
        return (text.to_string(), "end-turn");
    }
    let mut cut = String::new();
    for word in text.split_inclusive(char::is_whitespace) {
        if count_tokens(&cut) + count_tokens(word) > max {
            break;
        }
        cut.push_str(word);
    }
    (cut.trim_end().to_string(), "max-tokens")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str, max_tokens: u32) -> ChatRequest {
        ChatRequest {
            model: OFFLINE_MODEL.into(),
            messages: vec![
                Message {
                    role: Role::System,
                    content: "You write blog posts.".into(),
                },
                Message {
                    role: Role::User,
                    content: text.into(),
                },
            ],
            max_tokens,
            temperature: None,
            fallbacks: Vec::new(),
        }
    }

    #[test]
    fn counts_tokens_predictably() {
        assert_eq!(count_tokens(""), 0);
        assert_eq!(count_tokens("a"), 1);
        assert_eq!(count_tokens("word"), 1);
        assert_eq!(count_tokens("words"), 2);
        assert_eq!(count_tokens("Hi, you!"), 4);
        assert_eq!(count_tokens("  spaced   out  "), 3);
    }

    #[test]
    fn answers_deterministically_and_says_it_is_not_a_model() {
        let p = OfflineProvider;
        let a = p
            .answer(&request("Write about the spring sale for gardeners", 500))
            .unwrap();
        let b = p
            .answer(&request("Write about the spring sale for gardeners", 500))
            .unwrap();
        assert_eq!(a, b);
        assert!(a.text.ends_with(DISCLAIMER));
        assert!(a.text.starts_with("Offline draft: Write about spring sale"));
        assert!(a.text.contains("spring sale"));
        assert_eq!(a.stop_reason, "end-turn");
        assert_eq!(
            a.usage.input_tokens,
            count_tokens("You write blog posts.")
                + count_tokens("Write about the spring sale for gardeners")
                + 2 * TOKENS_PER_MESSAGE
        );
        assert_eq!(a.usage.output_tokens, count_tokens(&a.text));
        let other = p.answer(&request("Write about winter boots", 500)).unwrap();
        assert_ne!(a.text, other.text);
    }

    #[test]
    fn honours_max_tokens() {
        let r = OfflineProvider
            .answer(&request("Write about the spring sale", 12))
            .unwrap();
        assert_eq!(r.stop_reason, "max-tokens");
        assert!(r.usage.output_tokens <= 12);
    }

    #[test]
    fn refuses_other_models() {
        let mut req = request("x", 10);
        req.model = "gpt-4o".into();
        let err = OfflineProvider.answer(&req).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the offline provider serves only the model `offline`, not `gpt-4o`"
        );
    }
}
