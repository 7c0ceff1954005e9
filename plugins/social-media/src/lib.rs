//! Social media: drafts a day's posts for each platform, each within that platform's length limit
//! (counted in characters, as the platforms count them), with hashtags added only where they fit.
//!
//! Input: `{ "topic": "...", "platforms"?: ["x", "linkedin", "instagram", "facebook"], "posts_per_platform"?: 1-5, "hashtags"?: ["..."] }`.
//! Agent parameters: `brand_voice`.
//! Output: `{ "posts": [{ "platform", "text", "chars", "limit", "truncated" }] }`.

use mission_control_sdk::{Context, Error, Result, ai, config, log, plugin};
use serde::{Deserialize, Serialize};

/// Posts per platform per run at most (the business plan's schedule is three a day).
const MAX_POSTS_PER_PLATFORM: u32 = 5;
const ELLIPSIS: char = '…';

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    X,
    Linkedin,
    Instagram,
    Facebook,
}

impl Platform {
    /// The platform's own limit on a post's length, in characters.
    pub fn limit(self) -> usize {
        match self {
            Platform::X => 280,
            Platform::Linkedin => 3_000,
            Platform::Instagram => 2_200,
            Platform::Facebook => 63_206,
        }
    }

    fn style(self) -> &'static str {
        match self {
            Platform::X => "one punchy sentence",
            Platform::Linkedin => "a short professional paragraph with one insight",
            Platform::Instagram => "a warm caption with a question for followers",
            Platform::Facebook => "a friendly two-sentence update",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub topic: String,
    #[serde(default = "default_platforms")]
    pub platforms: Vec<Platform>,
    #[serde(default = "one")]
    pub posts_per_platform: u32,
    #[serde(default)]
    pub hashtags: Vec<String>,
}

fn default_platforms() -> Vec<Platform> {
    vec![Platform::X, Platform::Linkedin, Platform::Instagram]
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Post {
    pub platform: Platform,
    pub text: String,
    pub chars: usize,
    pub limit: usize,
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Output {
    pub posts: Vec<Post>,
}

/// Normalises hashtags to `#word` form; refuses ones with spaces.
pub fn hashtags(tags: &[String]) -> Result<Vec<String>> {
    tags.iter()
        .map(|t| {
            let t = t.trim().trim_start_matches('#');
            if t.is_empty() || t.chars().any(char::is_whitespace) {
                Err(Error::invalid_input(format!(
                    "`{t}` is not a hashtag (one word, no spaces)"
                )))
            } else {
                Ok(format!("#{t}"))
            }
        })
        .collect()
}

/// Fits `text` into `limit` characters: cut at a word boundary with an ellipsis when too long, then
/// append as many hashtags as still fit.
pub fn fit(text: &str, limit: usize, tags: &[String]) -> (String, bool) {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = if text.chars().count() <= limit {
        text
    } else {
        let mut cut = String::new();
        for word in text.split(' ') {
            let extra = word.chars().count() + usize::from(!cut.is_empty());
            if cut.chars().count() + extra + 1 > limit {
                break;
            }
            if !cut.is_empty() {
                cut.push(' ');
            }
            cut.push_str(word);
        }
        if cut.is_empty() {
            cut = text.chars().take(limit - 1).collect();
        }
        cut.push(ELLIPSIS);
        return (cut, true);
    };
    for tag in tags {
        if out.chars().count() + 1 + tag.chars().count() <= limit {
            out.push(' ');
            out.push_str(tag);
        }
    }
    (out, false)
}

fn run(input: Input, ctx: &Context) -> Result<Output> {
    if input.topic.trim().is_empty() {
        return Err(Error::invalid_input("the topic is empty"));
    }
    if input.platforms.is_empty() {
        return Err(Error::invalid_input("name at least one platform"));
    }
    if !(1..=MAX_POSTS_PER_PLATFORM).contains(&input.posts_per_platform) {
        return Err(Error::invalid_input(format!(
            "posts_per_platform must be between 1 and {MAX_POSTS_PER_PLATFORM}"
        )));
    }
    let tags = hashtags(&input.hashtags)?;
    let voice = config::get("brand_voice")?.unwrap_or_else(|| "friendly".into());
    let mut posts = Vec::new();
    for &platform in &input.platforms {
        for n in 1..=input.posts_per_platform {
            let reply = ai::chat()
                .system(format!(
                    "You write social media posts. Platform: {platform:?}. Write {}, at most {} characters, voice: {voice}. No hashtags.",
                    platform.style(),
                    platform.limit()
                ))
                .user(format!("Post {n} of {} about: {}", input.posts_per_platform, input.topic))
                .max_tokens((platform.limit() / 3).min(1_000) as u32)
                .send()?;
            let (text, truncated) = fit(&reply.text, platform.limit(), &tags);
            posts.push(Post {
                platform,
                chars: text.chars().count(),
                limit: platform.limit(),
                text,
                truncated,
            });
        }
    }
    log::info(format!("{}: drafted {} posts", ctx.tenant, posts.len()));
    Ok(Output { posts })
}

plugin!(run);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_short_text_and_adds_tags_that_fit() {
        let (t, cut) = fit(
            "Spring  sale\nstarts today",
            40,
            &["#garden".into(), "#springsale2026longtag".into()],
        );
        assert_eq!((t.as_str(), cut), ("Spring sale starts today #garden", false));
    }

    #[test]
    fn cuts_at_a_word_boundary_within_the_limit() {
        let long = "word ".repeat(100);
        let (t, cut) = fit(&long, 280, &["#tag".into()]);
        assert!(cut);
        assert!(t.chars().count() <= 280, "{}", t.chars().count());
        assert!(t.ends_with("word…"));
    }

    #[test]
    fn counts_characters_not_bytes() {
        let text = "é".repeat(300);
        let (t, cut) = fit(&text, 280, &[]);
        assert!(cut);
        assert_eq!(t.chars().count(), 280);
    }

    #[test]
    fn validates_hashtags() {
        assert_eq!(hashtags(&["#a".into(), "b".into()]).unwrap(), ["#a", "#b"]);
        assert!(hashtags(&["two words".into()]).is_err());
    }

    #[test]
    fn every_platform_has_its_real_limit() {
        assert_eq!(Platform::X.limit(), 280);
        assert_eq!(Platform::Linkedin.limit(), 3_000);
        assert_eq!(Platform::Instagram.limit(), 2_200);
    }
}
