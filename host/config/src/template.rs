//! Templates: a vertical's team in a bundle a client installs in one step.
//!
//! `templates/<id>/template.yaml` says what the template is and which parameters it takes;
//! `templates/<id>/team.yaml` holds agents, automations and registries in the tenant file's
//! format, with `{{name}}` where a parameter's value goes (inside string values only: the
//! values are substituted into the parsed document, never into its text, so a value cannot
//! change the file's structure).
//!
//! ```yaml
//! id: marketing-agency
//! name: Marketing agency
//! summary: A director and four specialists who plan, write, post, email and report.
//! parameters:
//!   - { name: company, prompt: "Your company's name", pattern: ".{2,80}" }
//!   - { name: timezone, prompt: "Your time zone", default: Europe/Berlin, pattern: "[A-Za-z_]+(/[A-Za-z_+-]+)*" }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{AgentSpec, AutomationSpec, RegistrySpec, TenantConfig};

/// Longest parameter value accepted, in bytes.
pub const MAX_PARAM_BYTES: usize = 1_024;

/// What a template is and asks for (`template.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateMeta {
    pub id: String,
    pub name: String,
    /// One line for the gallery card.
    pub summary: String,
    /// What it does, in a paragraph.
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub parameters: Vec<TemplateParam>,
}

/// One typed parameter: enough for a form.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateParam {
    pub name: String,
    /// The question the form asks.
    pub prompt: String,
    /// Used when no value is given; without one the parameter is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// A regular expression the whole value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

/// The team part of a template, before its parameters are filled in.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamFile {
    #[serde(default)]
    agents: serde_yaml::Value,
    #[serde(default)]
    automations: serde_yaml::Value,
    #[serde(default)]
    registries: serde_yaml::Value,
}

/// A loaded template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub meta: TemplateMeta,
    team: serde_yaml::Value,
}

/// Why a template cannot be loaded or installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{0}")]
    NotFound(String),
    /// The template's own files are wrong (its author's mistake).
    #[error("{0}")]
    Broken(String),
    /// A parameter value is missing or does not match its rule.
    #[error("{0}")]
    Invalid(String),
}

/// The team a template installs, its parameters filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamParts {
    pub agents: Vec<AgentSpec>,
    pub automations: Vec<AutomationSpec>,
    pub registries: Vec<RegistrySpec>,
}

impl Template {
    /// Loads `dir/<id>/`.
    pub fn load(dir: &Path, id: &str) -> Result<Template, TemplateError> {
        crate::valid_name(id).map_err(|_| TemplateError::NotFound(format!("no template `{id}`")))?;
        let root = dir.join(id);
        let read = |file: &str| {
            std::fs::read_to_string(root.join(file)).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound if file == "template.yaml" => {
                    TemplateError::NotFound(format!("no template `{id}`"))
                }
                _ => TemplateError::Broken(format!("template `{id}`: {file}: {e}")),
            })
        };
        let meta: TemplateMeta = serde_yaml::from_str(&read("template.yaml")?)
            .map_err(|e| TemplateError::Broken(format!("template `{id}`: template.yaml: {e}")))?;
        if meta.id != id {
            return Err(TemplateError::Broken(format!(
                "template `{id}`: template.yaml says its id is `{}`",
                meta.id
            )));
        }
        for p in &meta.parameters {
            if let Some(pattern) = &p.pattern {
                anchored(pattern).map_err(|e| {
                    TemplateError::Broken(format!("template `{id}`: parameter `{}`: bad pattern: {e}", p.name))
                })?;
            }
        }
        let team: TeamFile = serde_yaml::from_str(&read("team.yaml")?)
            .map_err(|e| TemplateError::Broken(format!("template `{id}`: team.yaml: {e}")))?;
        let mut map = serde_yaml::Mapping::new();
        map.insert("agents".into(), team.agents);
        map.insert("automations".into(), team.automations);
        map.insert("registries".into(), team.registries);
        Ok(Template {
            meta,
            team: serde_yaml::Value::Mapping(map),
        })
    }

    /// Every template in `dir`, by id.
    pub fn list(dir: &Path) -> Result<Vec<Template>, TemplateError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| TemplateError::Broken(format!("templates directory {}: {e}", dir.display())))?;
        let mut ids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().join("template.yaml").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        ids.iter().map(|id| Template::load(dir, id)).collect()
    }

    /// The values of every parameter: `given`, else the default. Each must match its pattern.
    pub fn values(&self, given: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, TemplateError> {
        for name in given.keys() {
            if !self.meta.parameters.iter().any(|p| &p.name == name) {
                let names: Vec<&str> = self.meta.parameters.iter().map(|p| p.name.as_str()).collect();
                return Err(TemplateError::Invalid(format!(
                    "template `{}` has no parameter `{name}` (its parameters: {})",
                    self.meta.id,
                    names.join(", ")
                )));
            }
        }
        let mut values = BTreeMap::new();
        for p in &self.meta.parameters {
            let Some(v) = given.get(&p.name).or(p.default.as_ref()) else {
                return Err(TemplateError::Invalid(format!(
                    "parameter `{}` is required ({})",
                    p.name, p.prompt
                )));
            };
            if v.len() > MAX_PARAM_BYTES {
                return Err(TemplateError::Invalid(format!(
                    "parameter `{}` is {} bytes; at most {MAX_PARAM_BYTES} are accepted",
                    p.name,
                    v.len()
                )));
            }
            if let Some(pattern) = &p.pattern {
                let re = anchored(pattern).map_err(|e| TemplateError::Broken(e.to_string()))?;
                if !re.is_match(v) {
                    return Err(TemplateError::Invalid(format!(
                        "parameter `{}` must match the pattern `{pattern}` ({}), and `{v}` does not",
                        p.name, p.prompt
                    )));
                }
            }
            values.insert(p.name.clone(), v.clone());
        }
        Ok(values)
    }

    /// The team as the gallery shows it: defaults filled in, required parameters left as
    /// `{{name}}`.
    pub fn outline(&self) -> Result<TeamParts, TemplateError> {
        let values: BTreeMap<String, String> = self
            .meta
            .parameters
            .iter()
            .filter_map(|p| p.default.clone().map(|d| (p.name.clone(), d)))
            .collect();
        self.parts(&values)
    }

    /// The team with `given` filled in.
    pub fn render(&self, given: &BTreeMap<String, String>) -> Result<TeamParts, TemplateError> {
        let values = self.values(given)?;
        self.parts(&values)
    }

    fn parts(&self, values: &BTreeMap<String, String>) -> Result<TeamParts, TemplateError> {
        let mut team = self.team.clone();
        fill(&mut team, values);
        let parts = |what: &str| {
            team.get(what)
                .cloned()
                .filter(|v| !v.is_null())
                .unwrap_or(serde_yaml::Value::Sequence(vec![]))
        };
        let broken = |what: &str, e: serde_yaml::Error| {
            TemplateError::Broken(format!("template `{}`: {what}: {e}", self.meta.id))
        };
        Ok(TeamParts {
            agents: serde_yaml::from_value(parts("agents")).map_err(|e| broken("agents", e))?,
            automations: serde_yaml::from_value(parts("automations")).map_err(|e| broken("automations", e))?,
            registries: serde_yaml::from_value(parts("registries")).map_err(|e| broken("registries", e))?,
        })
    }
}

impl TeamParts {
    /// Puts the team into `config`: what has the same name is replaced (a reinstall upgrades in
    /// place), everything else the tenant has stays.
    pub fn merge_into(self, config: &mut TenantConfig) {
        for a in self.agents {
            match config.agents.iter_mut().find(|x| x.name == a.name) {
                Some(x) => *x = a,
                None => config.agents.push(a),
            }
        }
        for a in self.automations {
            match config.automations.iter_mut().find(|x| x.name == a.name) {
                Some(x) => *x = a,
                None => config.automations.push(a),
            }
        }
        for r in self.registries {
            match config.registries.iter_mut().find(|x| x.name == r.name) {
                Some(x) => *x = r,
                None => config.registries.push(r),
            }
        }
    }
}

fn anchored(pattern: &str) -> Result<regex_lite::Regex, regex_lite::Error> {
    regex_lite::Regex::new(&format!("^(?:{pattern})$"))
}

/// Replaces `{{name}}` in every string of `v`.
fn fill(v: &mut serde_yaml::Value, values: &BTreeMap<String, String>) {
    match v {
        serde_yaml::Value::String(s) if s.contains("{{") => {
            for (k, val) in values {
                *s = s.replace(&format!("{{{{{k}}}}}"), val);
            }
        }
        serde_yaml::Value::Sequence(items) => items.iter_mut().for_each(|i| fill(i, values)),
        serde_yaml::Value::Mapping(m) => m.iter_mut().for_each(|(_, i)| fill(i, values)),
        _ => {}
    }
}
