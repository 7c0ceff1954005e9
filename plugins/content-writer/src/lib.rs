//! Content writer: drafts a blog post, ad or landing page from a brief, in the brand's voice.
//!
//! Input: `{ "brief": "...", "voice"?: "...", "audience"?: "...", "format"?: "blog"|"ad"|"landing", "words"?: n }`.
//! Agent parameters: `brand_voice` (used when the input names no voice), `company`.
//! Output: `{ "title", "body", "format", "word_count", "reading_minutes", "model", "tokens": { "input", "output" } }`.

use mission_control_sdk::{Context, Error, Result, ai, config, log, plugin};
use serde::{Deserialize, Serialize};

/// Words per minute used for the reading-time estimate (a common figure for web copy).
const READING_WPM: usize = 230;
/// Bounds on the requested length; beyond them the brief is probably a mistake.
const MIN_WORDS: u32 = 30;
const MAX_WORDS: u32 = 3_000;
/// Longest brief accepted, in characters.
const MAX_BRIEF_CHARS: usize = 4_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Blog,
    Ad,
    Landing,
}

impl Format {
    fn default_words(self) -> u32 {
        match self {
            Format::Blog => 600,
            Format::Ad => 60,
            Format::Landing => 300,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Format::Blog => "a blog post with a title line, short paragraphs and a closing call to action",
            Format::Ad => "ad copy: a headline line and two or three punchy sentences",
            Format::Landing => {
                "landing page copy: a title line, a subtitle, three benefit paragraphs and a call to action"
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub brief: String,
    #[serde(default)]
    pub voice: Option<String>,
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default)]
    pub format: Format,
    #[serde(default)]
    pub words: Option<u32>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Tokens {
    pub input: u32,
    pub output: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Output {
    pub title: String,
    pub body: String,
    pub format: Format,
    pub word_count: usize,
    pub reading_minutes: usize,
    pub model: String,
    pub tokens: Tokens,
}

/// The brief, checked: non-empty, not absurdly long, a sane length.
pub fn validate(input: &Input) -> Result<u32> {
    let brief = input.brief.trim();
    if brief.is_empty() {
        return Err(Error::invalid_input("the brief is empty: say what the piece is about"));
    }
    if brief.chars().count() > MAX_BRIEF_CHARS {
        return Err(Error::invalid_input(format!(
            "the brief is longer than {MAX_BRIEF_CHARS} characters"
        )));
    }
    let words = input.words.unwrap_or(input.format.default_words());
    if !(MIN_WORDS..=MAX_WORDS).contains(&words) && input.format != Format::Ad {
        return Err(Error::invalid_input(format!(
            "words must be between {MIN_WORDS} and {MAX_WORDS}, got {words}"
        )));
    }
    Ok(words)
}

/// The system and user prompts for the model.
pub fn prompts(input: &Input, voice: &str, company: Option<&str>, words: u32) -> (String, String) {
    let mut system = format!(
        "You are the content writer of {}. Write {}. Voice: {voice}. Stay close to {words} words. \
         Put the title alone on the first line.",
        company.unwrap_or("the company"),
        input.format.describe()
    );
    if let Some(a) = &input.audience {
        system.push_str(&format!(" The audience is {a}."));
    }
    (system, format!("Brief: {}", input.brief.trim()))
}

/// Splits a draft into its title (first non-empty line, without markdown marks) and body. A draft
/// that is a single line gets a title from the brief.
pub fn split_title(draft: &str, brief: &str) -> (String, String) {
    let mut lines = draft.lines().skip_while(|l| l.trim().is_empty());
    let first = lines
        .next()
        .unwrap_or("")
        .trim()
        .trim_start_matches('#')
        .trim()
        .trim_matches('*')
        .trim();
    let rest: String = lines.collect::<Vec<_>>().join("\n").trim().to_string();
    if rest.is_empty() || first.is_empty() {
        return (title_from_brief(brief), draft.trim().to_string());
    }
    (first.to_string(), rest)
}

fn title_from_brief(brief: &str) -> String {
    let words: Vec<&str> = brief.split_whitespace().take(8).collect();
    let mut t = words.join(" ");
    if let Some(c) = t.get(..1) {
        t = c.to_uppercase() + &t[1..];
    }
    t
}

pub fn word_count(text: &str) -> usize {
    text.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count()
}

pub fn reading_minutes(words: usize) -> usize {
    words.div_ceil(READING_WPM).max(1)
}

fn run(input: Input, ctx: &Context) -> Result<Output> {
    let words = validate(&input)?;
    let voice = match &input.voice {
        Some(v) => v.clone(),
        None => config::get("brand_voice")?.unwrap_or_else(|| "clear and friendly".to_string()),
    };
    let company = config::get("company")?;
    let (system, user) = prompts(&input, &voice, company.as_deref(), words);
    log::info(format!(
        "drafting a {:?} for {} ({words} words, voice: {voice})",
        input.format, ctx.tenant
    ));
    // Tokens are roughly 0.75 words; leave room for the title and some slack.
    let reply = ai::chat().system(system).user(user).max_tokens(words * 2 + 64).send()?;
    let (title, body) = split_title(&reply.text, &input.brief);
    let word_count = word_count(&body);
    Ok(Output {
        title,
        body,
        format: input.format,
        word_count,
        reading_minutes: reading_minutes(word_count),
        model: reply.model,
        tokens: Tokens {
            input: reply.usage.input_tokens,
            output: reply.usage.output_tokens,
        },
    })
}

plugin!(run);

#[cfg(test)]
mod tests {
    use super::*;

    fn input(brief: &str) -> Input {
        Input {
            brief: brief.into(),
            voice: None,
            audience: None,
            format: Format::Blog,
            words: None,
        }
    }

    #[test]
    fn refuses_empty_and_oversized_briefs() {
        assert_eq!(
            validate(&input("  ")).unwrap_err().kind(),
            mission_control_sdk::ErrorKind::InvalidInput
        );
        assert!(validate(&input(&"x".repeat(MAX_BRIEF_CHARS + 1))).is_err());
        let mut i = input("Spring sale");
        i.words = Some(5);
        assert_eq!(
            validate(&i).unwrap_err().message(),
            "words must be between 30 and 3000, got 5"
        );
        assert_eq!(validate(&input("Spring sale")).unwrap(), 600);
    }

    #[test]
    fn prompts_carry_brief_voice_and_audience() {
        let mut i = input("Spring sale on garden tools");
        i.audience = Some("hobby gardeners".into());
        let (system, user) = prompts(&i, "playful", Some("Acme Garden"), 400);
        assert!(system.contains("Acme Garden") && system.contains("playful") && system.contains("400 words"));
        assert!(system.contains("hobby gardeners"));
        assert_eq!(user, "Brief: Spring sale on garden tools");
    }

    #[test]
    fn splits_title_from_body() {
        assert_eq!(
            split_title("\n# Spring is here\n\nFirst paragraph.\nSecond.", "b"),
            ("Spring is here".to_string(), "First paragraph.\nSecond.".to_string())
        );
        assert_eq!(
            split_title("only one line", "spring sale for gardeners"),
            ("Spring sale for gardeners".to_string(), "only one line".to_string())
        );
    }

    #[test]
    fn counts_words_and_reading_time() {
        assert_eq!(word_count("Hello, world — it's 2026!"), 4);
        assert_eq!(reading_minutes(0), 1);
        assert_eq!(reading_minutes(231), 2);
    }
}
