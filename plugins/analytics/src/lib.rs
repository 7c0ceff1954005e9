//! Analytics: fetches weekly KPI series over HTTP, computes week-over-week changes and flags
//! anomalies in code, then asks the model for a short narrative of what the numbers say.
//!
//! Input: `{ "source_url"?: "https://...", "data"?: { "metrics": { "name": [oldest, ..., newest] } }, "threshold_pct"?: n }`.
//! Without `data`, the series are fetched from `source_url` or the agent parameter `kpi_url` (the
//! response must be `{ "metrics": { "visits": [1200, 1350, ...], ... } }`), else read from the
//! `kpi-history` registry (rows `{ "week": "2026-11-23", "metric": "visits", "value": 1350 }`).
//! Output: `{ "metrics": [{ "name", "current", "previous", "change_pct", "anomaly", "reason" }], "anomalies": [...], "narrative" }`.

use std::collections::BTreeMap;

use mission_control_sdk::{Context, Error, ErrorKind, Result, ai, config, http, log, plugin, registry};
use serde::{Deserialize, Serialize};

/// A week-over-week change larger than this (in percent) is flagged unless the agent says otherwise.
const DEFAULT_THRESHOLD_PCT: f64 = 25.0;
/// A change more than this many standard deviations from the series' usual changes is flagged.
const Z_THRESHOLD: f64 = 2.5;
/// Changes needed before the z-score test means anything.
const MIN_HISTORY_FOR_Z: usize = 4;
/// Most metrics analysed in one run.
const MAX_METRICS: usize = 100;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Series {
    pub metrics: BTreeMap<String, Vec<f64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    #[serde(default)]
    pub source_url: Option<String>,
    #[serde(default)]
    pub data: Option<Series>,
    #[serde(default)]
    pub threshold_pct: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MetricReport {
    pub name: String,
    pub current: f64,
    pub previous: Option<f64>,
    /// `None` when there is no previous week or it was zero.
    pub change_pct: Option<f64>,
    pub anomaly: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Output {
    pub metrics: Vec<MetricReport>,
    pub anomalies: Vec<String>,
    pub narrative: String,
    pub source: String,
}

fn pct_change(prev: f64, cur: f64) -> Option<f64> {
    (prev != 0.0).then(|| (cur - prev) / prev.abs() * 100.0)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Week-over-week change of the newest week and whether it is an anomaly: larger than the
/// threshold, or far outside the series' own history of changes.
pub fn analyse(name: &str, values: &[f64], threshold_pct: f64) -> Option<MetricReport> {
    let (&current, rest) = values.split_last()?;
    let previous = rest.last().copied();
    let change = previous.and_then(|p| pct_change(p, current));
    let history: Vec<f64> = values.windows(2).filter_map(|w| pct_change(w[0], w[1])).collect();
    let mut reason = None;
    if let Some(c) = change {
        if c.abs() > threshold_pct {
            reason = Some(format!(
                "{} {:.1}% week over week (threshold {threshold_pct}%)",
                if c > 0.0 { "up" } else { "down" },
                c.abs()
            ));
        } else if history.len() > MIN_HISTORY_FOR_Z {
            let past = &history[..history.len() - 1];
            let mean = past.iter().sum::<f64>() / past.len() as f64;
            let sd = (past.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / past.len() as f64).sqrt();
            if sd > 0.0 && ((c - mean) / sd).abs() > Z_THRESHOLD {
                reason = Some(format!(
                    "change of {c:.1}% is {:.1} standard deviations from the usual {mean:.1}%",
                    ((c - mean) / sd).abs()
                ));
            }
        }
    } else if previous == Some(0.0) && current != 0.0 {
        reason = Some("rose from zero".to_string());
    }
    Some(MetricReport {
        name: name.to_string(),
        current,
        previous,
        change_pct: change.map(round1),
        anomaly: reason.is_some(),
        reason,
    })
}

/// Checks the data: a bounded number of metrics, each with finite numbers.
/// The registry of weekly KPI values (`week`, `metric`, `value`) read when no URL is configured.
pub const HISTORY: &str = "kpi-history";

/// Series from the `kpi-history` registry, oldest week first; `None` when the agent is not
/// granted it or it has no rows.
fn history() -> Result<Option<Series>> {
    let rows = match registry::query(HISTORY, &[], 1_000) {
        Ok(rows) => rows,
        Err(e) if e.kind() == ErrorKind::NotGranted || e.kind() == ErrorKind::InvalidInput => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(series_from_rows(rows.iter().map(|r| &r.data)))
}

/// Groups `{week, metric, value}` rows into one series per metric, ordered by week.
pub fn series_from_rows<'a>(rows: impl Iterator<Item = &'a serde_json::Value>) -> Option<Series> {
    let mut by_metric: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for r in rows {
        if let (Some(week), Some(metric), Some(value)) = (r["week"].as_str(), r["metric"].as_str(), r["value"].as_f64())
        {
            by_metric
                .entry(metric.to_string())
                .or_default()
                .push((week.to_string(), value));
        }
    }
    if by_metric.is_empty() {
        return None;
    }
    Some(Series {
        metrics: by_metric
            .into_iter()
            .map(|(m, mut points)| {
                points.sort_by(|a, b| a.0.cmp(&b.0));
                (m, points.into_iter().map(|(_, v)| v).collect())
            })
            .collect(),
    })
}

pub fn validate(series: &Series) -> Result<()> {
    if series.metrics.is_empty() {
        return Err(Error::invalid_input("the KPI data has no metrics"));
    }
    if series.metrics.len() > MAX_METRICS {
        return Err(Error::invalid_input(format!(
            "at most {MAX_METRICS} metrics per run, got {}",
            series.metrics.len()
        )));
    }
    for (name, values) in &series.metrics {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid_input(format!(
                "metric `{name}` must be a non-empty list of numbers"
            )));
        }
    }
    Ok(())
}

fn table(reports: &[MetricReport]) -> String {
    reports
        .iter()
        .map(|r| {
            let change = r.change_pct.map_or("n/a".to_string(), |c| format!("{c:+.1}%"));
            let flag = r
                .reason
                .as_deref()
                .map_or(String::new(), |why| format!(" [ANOMALY: {why}]"));
            format!(
                "- {}: {} (previous {}, change {change}){flag}",
                r.name,
                r.current,
                r.previous.map_or("n/a".into(), |p| p.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn run(input: Input, ctx: &Context) -> Result<Output> {
    let threshold = match input.threshold_pct {
        Some(t) if t > 0.0 && t.is_finite() => t,
        Some(t) => {
            return Err(Error::invalid_input(format!(
                "threshold_pct must be a positive number, got {t}"
            )));
        }
        None => config::get("threshold_pct")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_THRESHOLD_PCT),
    };
    // `none` (a template's default) or an empty value means no URL is configured.
    let configured_url = config::get("kpi_url")?.filter(|u| !u.trim().is_empty() && u != "none");
    let (series, source) = match (input.data, input.source_url.or(configured_url)) {
        (Some(d), _) => (d, "input".to_string()),
        (None, Some(url)) => {
            log::info(format!("fetching KPIs from {url}"));
            let series: Series = http::get(&url)?.error_for_status()?.json()?;
            (series, url)
        }
        (None, None) => match history()? {
            Some(series) => (series, format!("registry {HISTORY}")),
            None => {
                return Err(Error::invalid_input(format!(
                    "no KPI data: give `data` or `source_url`, set the agent parameter `kpi_url`, or add rows to the `{HISTORY}` registry"
                )));
            }
        },
    };
    validate(&series)?;
    let metrics: Vec<MetricReport> = series
        .metrics
        .iter()
        .filter_map(|(n, v)| analyse(n, v, threshold))
        .collect();
    let anomalies: Vec<String> = metrics.iter().filter(|m| m.anomaly).map(|m| m.name.clone()).collect();
    log::info(format!(
        "{}: {} metrics, {} anomalies",
        ctx.tenant,
        metrics.len(),
        anomalies.len()
    ));
    let reply = ai::complete(
        "You are a marketing analyst. In three to five sentences, explain this week's KPIs to a business owner: \
         what moved, what is unusual, and one thing to look into. Use only the numbers given.",
        &table(&metrics),
    )?;
    Ok(Output {
        metrics,
        anomalies,
        narrative: reply.text,
        source,
    })
}

plugin!(run);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_rows_become_series_ordered_by_week() {
        let rows = [
            serde_json::json!({"week": "2026-11-16", "metric": "visits", "value": 1350}),
            serde_json::json!({"week": "2026-11-09", "metric": "visits", "value": 1200}),
            serde_json::json!({"week": "2026-11-09", "metric": "signups", "value": 40}),
        ];
        let s = series_from_rows(rows.iter()).unwrap();
        assert_eq!(s.metrics["visits"], [1200.0, 1350.0]);
        assert_eq!(s.metrics["signups"], [40.0]);
        assert!(series_from_rows([].iter()).is_none());
    }

    #[test]
    fn computes_week_over_week_change() {
        let r = analyse("visits", &[100.0, 110.0, 121.0], 25.0).unwrap();
        assert_eq!(
            (r.current, r.previous, r.change_pct, r.anomaly),
            (121.0, Some(110.0), Some(10.0), false)
        );
        let r = analyse("signups", &[40.0, 20.0], 25.0).unwrap();
        assert_eq!(r.change_pct, Some(-50.0));
        assert_eq!(r.reason.as_deref(), Some("down 50.0% week over week (threshold 25%)"));
        let single = analyse("new", &[5.0], 25.0).unwrap();
        assert_eq!(
            (single.previous, single.change_pct, single.anomaly),
            (None, None, false)
        );
    }

    #[test]
    fn flags_changes_far_from_the_series_history() {
        // Steady ~2% growth, then +15%: under the 25% threshold, but far outside the history.
        let values = [100.0, 102.0, 104.0, 106.1, 108.2, 110.4, 127.0];
        let r = analyse("revenue", &values, 25.0).unwrap();
        assert!(r.anomaly, "{r:?}");
        assert!(r.reason.unwrap().contains("standard deviations"));
    }

    #[test]
    fn handles_zero_previous_week() {
        let r = analyse("refunds", &[0.0, 3.0], 25.0).unwrap();
        assert_eq!((r.change_pct, r.anomaly), (None, true));
    }

    #[test]
    fn refuses_bad_data() {
        let empty = Series {
            metrics: BTreeMap::new(),
        };
        assert!(validate(&empty).is_err());
        let nan = Series {
            metrics: [("x".to_string(), vec![f64::NAN])].into(),
        };
        assert_eq!(
            validate(&nan).unwrap_err().message(),
            "metric `x` must be a non-empty list of numbers"
        );
    }
}
