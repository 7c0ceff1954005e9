//! Review responses (e-commerce): triages customer reviews by sentiment in code (the rating and
//! the words used), then drafts a reply to each, the unhappy ones first and flagged for a person.
//!
//! Input: `{ "reviews": [{ "id", "author"?, "rating": 1-5, "text" }] }`.
//! Agent parameters: `brand_voice`, `company`.
//! Output: `{ "triaged": [{ "id", "sentiment", "urgent", "reply" }], "summary": { "negative", "neutral", "positive" } }`.

use mission_control_sdk::{Context, Error, Result, ai, config, log, plugin};
use serde::{Deserialize, Serialize};

/// Most reviews one run answers.
pub const MAX_REVIEWS: usize = 50;
/// Words that make a review a complaint whatever its rating.
const COMPLAINTS: [&str; 10] = [
    "broken",
    "refund",
    "never arrived",
    "damaged",
    "late",
    "rude",
    "scam",
    "worst",
    "faulty",
    "missing",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Review {
    pub id: String,
    #[serde(default)]
    pub author: Option<String>,
    pub rating: u8,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub reviews: Vec<Review>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sentiment {
    Negative,
    Neutral,
    Positive,
}

#[derive(Debug, Clone, Serialize)]
pub struct Triaged {
    pub id: String,
    pub sentiment: Sentiment,
    /// A person should look at it today.
    pub urgent: bool,
    pub reply: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub negative: usize,
    pub neutral: usize,
    pub positive: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Output {
    pub triaged: Vec<Triaged>,
    pub summary: Summary,
}

/// The sentiment of a review and whether it is urgent.
pub fn triage(r: &Review) -> (Sentiment, bool) {
    let text = r.text.to_lowercase();
    let complaint = COMPLAINTS.iter().any(|w| text.contains(w));
    let sentiment = match r.rating {
        1 | 2 => Sentiment::Negative,
        _ if complaint => Sentiment::Negative,
        3 => Sentiment::Neutral,
        _ => Sentiment::Positive,
    };
    (
        sentiment,
        sentiment == Sentiment::Negative && (r.rating <= 2 || complaint),
    )
}

fn run(input: Input, ctx: &Context) -> Result<Output> {
    if input.reviews.len() > MAX_REVIEWS {
        return Err(Error::invalid_input(format!(
            "{} reviews; at most {MAX_REVIEWS} per run",
            input.reviews.len()
        )));
    }
    if let Some(r) = input.reviews.iter().find(|r| !(1..=5).contains(&r.rating)) {
        return Err(Error::invalid_input(format!(
            "review `{}` has rating {}; ratings are 1 to 5",
            r.id, r.rating
        )));
    }
    let voice = config::get("brand_voice")?.unwrap_or_else(|| "warm and direct".into());
    let company = config::get("company")?.unwrap_or_else(|| "our shop".into());
    let mut reviews: Vec<(Review, Sentiment, bool)> = input
        .reviews
        .into_iter()
        .map(|r| {
            let (s, u) = triage(&r);
            (r, s, u)
        })
        .collect();
    reviews.sort_by_key(|(_, s, u)| (!*u, *s));
    let mut summary = Summary::default();
    let mut triaged = Vec::new();
    for (r, sentiment, urgent) in reviews {
        match sentiment {
            Sentiment::Negative => summary.negative += 1,
            Sentiment::Neutral => summary.neutral += 1,
            Sentiment::Positive => summary.positive += 1,
        }
        let reply = ai::complete(
            &format!(
                "You answer customer reviews for {company}. Voice: {voice}. Two or three sentences. \
                 For a complaint: apologise, say what happens next, invite them to write to support."
            ),
            &format!(
                "{} star review by {}: {}",
                r.rating,
                r.author.as_deref().unwrap_or("a customer"),
                r.text
            ),
        )?
        .text;
        triaged.push(Triaged {
            id: r.id,
            sentiment,
            urgent,
            reply,
        });
    }
    log::info(format!(
        "{}: {} negative, {} neutral, {} positive",
        ctx.agent, summary.negative, summary.neutral, summary.positive
    ));
    Ok(Output { triaged, summary })
}

plugin!(run);

#[cfg(test)]
mod tests {
    use super::*;

    fn review(rating: u8, text: &str) -> Review {
        Review {
            id: "r".into(),
            author: None,
            rating,
            text: text.into(),
        }
    }

    #[test]
    fn ratings_and_complaint_words_decide_the_sentiment() {
        assert_eq!(triage(&review(1, "meh")), (Sentiment::Negative, true));
        assert_eq!(
            triage(&review(4, "Nice, but it arrived damaged")),
            (Sentiment::Negative, true)
        );
        assert_eq!(triage(&review(3, "It is fine")), (Sentiment::Neutral, false));
        assert_eq!(triage(&review(5, "Love it")), (Sentiment::Positive, false));
    }
}
