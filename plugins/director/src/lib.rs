//! Director: plans a campaign with the model, splits it into tasks for the specialists, and
//! delegates them all at once through the host (they run in parallel), which bounds depth,
//! fan-out, cycles and cost.
//!
//! Input: `{ "campaign": "...", "goal"?: "...", "channels"?: ["blog", "social", "email", "report"] }`.
//! Agent parameters: `writer_agent`, `social_agent`, `email_agent`, `analytics_agent` (the names of
//! the specialists in this tenant's team; defaults are the marketing template's names).
//! Output: `{ "campaign", "plan", "tasks": [{ "agent", "task", "status", "result"?, "error"? }] }`.
//! A task the host refuses to delegate is reported as `not-delegated` with the reason, and the
//! rest of the plan still stands.

use mission_control_sdk::{Context, Error, ErrorKind, Result, Value, agents, ai, config, json, log, plugin};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Blog,
    Social,
    Email,
    Report,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub campaign: String,
    #[serde(default)]
    pub goal: Option<String>,
    #[serde(default = "default_channels")]
    pub channels: Vec<Channel>,
}

fn default_channels() -> Vec<Channel> {
    vec![Channel::Blog, Channel::Social]
}

/// The specialists' names in this tenant's team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub writer: String,
    pub social: String,
    pub email: String,
    pub analytics: String,
}

impl Default for Team {
    fn default() -> Self {
        Team {
            writer: "content-writer".into(),
            social: "social-media".into(),
            email: "email-manager".into(),
            analytics: "analytics".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub agent: String,
    pub task: Value,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Done,
    NotDelegated,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    pub agent: String,
    pub task: Value,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Output {
    pub campaign: String,
    pub plan: String,
    pub tasks: Vec<TaskReport>,
}

/// One task per channel, in the order the channels were given, duplicates dropped.
pub fn tasks(input: &Input, team: &Team, plan: &str) -> Vec<Task> {
    let mut seen = Vec::new();
    let goal = input.goal.clone().unwrap_or_else(|| "awareness".into());
    let mut out = Vec::new();
    for &c in &input.channels {
        if seen.contains(&c) {
            continue;
        }
        seen.push(c);
        let summary: String = plan.chars().take(500).collect();
        out.push(match c {
            Channel::Blog => Task {
                agent: team.writer.clone(),
                task: json!({ "brief": format!("{} (goal: {goal}). Plan: {summary}", input.campaign), "format": "blog" }),
            },
            Channel::Social => Task {
                agent: team.social.clone(),
                task: json!({ "topic": input.campaign, "platforms": ["x", "linkedin", "instagram"] }),
            },
            Channel::Email => Task {
                agent: team.email.clone(),
                task: json!({ "messages": [] }),
            },
            Channel::Report => Task {
                agent: team.analytics.clone(),
                task: json!({}),
            },
        });
    }
    out
}

fn team() -> Result<Team> {
    let d = Team::default();
    Ok(Team {
        writer: config::get("writer_agent")?.unwrap_or(d.writer),
        social: config::get("social_agent")?.unwrap_or(d.social),
        email: config::get("email_agent")?.unwrap_or(d.email),
        analytics: config::get("analytics_agent")?.unwrap_or(d.analytics),
    })
}

fn run(input: Input, ctx: &Context) -> Result<Output> {
    if input.campaign.trim().is_empty() {
        return Err(Error::invalid_input("the campaign is empty: say what it is about"));
    }
    if input.channels.is_empty() {
        return Err(Error::invalid_input("name at least one channel"));
    }
    let plan = ai::complete(
        "You are a marketing director. Write a five-step campaign plan: audience, message, channels, timing, \
         and how success is measured. One line per step.",
        &format!(
            "Campaign: {}\nGoal: {}",
            input.campaign,
            input.goal.as_deref().unwrap_or("awareness")
        ),
    )?
    .text;
    let team = team()?;
    let tasks = tasks(&input, &team, &plan);
    // All at once: the specialists work in parallel and the director waits for the slowest.
    let handed: Vec<(String, Value)> = tasks.iter().map(|t| (t.agent.clone(), t.task.clone())).collect();
    let results = agents::delegate_all(&handed)?;
    let mut reports = Vec::new();
    for (t, r) in tasks.into_iter().zip(results) {
        let (status, result, error) = match r {
            Ok(v) => (Status::Done, Some(v), None),
            Err(e) if e.kind() == ErrorKind::NotGranted => (Status::NotDelegated, None, Some(e.to_string())),
            Err(e) => (Status::Failed, None, Some(e.to_string())),
        };
        log::info(format!("{} → {}: {status:?}", ctx.agent, t.agent));
        reports.push(TaskReport {
            agent: t.agent,
            task: t.task,
            status,
            result,
            error,
        });
    }
    Ok(Output {
        campaign: input.campaign,
        plan,
        tasks: reports,
    })
}

plugin!(run);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_task_per_channel_for_the_right_specialist() {
        let input = Input {
            campaign: "Spring sale".into(),
            goal: Some("sales".into()),
            channels: vec![Channel::Social, Channel::Blog, Channel::Social, Channel::Report],
        };
        let team = Team {
            writer: "writer".into(),
            ..Team::default()
        };
        let t = tasks(&input, &team, "1. audience: gardeners");
        let agents: Vec<&str> = t.iter().map(|t| t.agent.as_str()).collect();
        assert_eq!(agents, ["social-media", "writer", "analytics"]);
        assert_eq!(t[0].task["topic"], "Spring sale");
        let brief = t[1].task["brief"].as_str().unwrap();
        assert!(brief.contains("Spring sale") && brief.contains("goal: sales") && brief.contains("gardeners"));
    }

    #[test]
    fn default_channels_are_blog_and_social() {
        let input: Input = serde_json::from_str(r#"{"campaign":"Launch"}"#).unwrap();
        assert_eq!(input.channels, [Channel::Blog, Channel::Social]);
        assert!(serde_json::from_str::<Input>(r#"{"campaign":"x","budget":5}"#).is_err());
    }
}
