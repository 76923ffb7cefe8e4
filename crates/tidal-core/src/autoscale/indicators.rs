//! Load indicators, as the runbook's table has them: each a figure of the
//! cluster (its worst node's, or its share of errors) with a warning and a
//! critical level, and a time the figure must stay past a level before the
//! indicator says so (Prometheus' `for`). Back under a level, it says so at
//! once. The same names, levels and times are in the Prometheus rules that
//! ship under `deploy/`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::signals::NodeLoad;

/// An indicator's levels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Levels {
    pub warning: f64,
    pub critical: f64,
    /// How long past a level before the indicator is at it.
    pub for_seconds: u64,
}

/// Every indicator, its unit, and its default levels.
pub const INDICATORS: [(&str, &str, Levels); 8] = [
    ("p50_ms", "ms", Levels { warning: 5.0, critical: 20.0, for_seconds: 300 }),
    ("p95_ms", "ms", Levels { warning: 20.0, critical: 100.0, for_seconds: 300 }),
    ("p99_ms", "ms", Levels { warning: 50.0, critical: 250.0, for_seconds: 300 }),
    ("error_rate", "%", Levels { warning: 1.0, critical: 5.0, for_seconds: 300 }),
    ("cpu", "% of cores", Levels { warning: 70.0, critical: 90.0, for_seconds: 600 }),
    ("memory", "% of memory", Levels { warning: 75.0, critical: 90.0, for_seconds: 600 }),
    ("replication_lag", "entries", Levels { warning: 1_000.0, critical: 10_000.0, for_seconds: 300 }),
    ("connections", "per node", Levels { warning: 5_000.0, critical: 9_000.0, for_seconds: 300 }),
];

/// The levels in force: the defaults, with the policy's overrides.
pub fn levels(overrides: &BTreeMap<String, Levels>) -> Vec<(&'static str, &'static str, Levels)> {
    INDICATORS.iter().map(|(n, u, l)| (*n, *u, overrides.get(*n).copied().unwrap_or(*l))).collect()
}

/// The indicators' figures from the nodes' latest loads (none without a
/// load).
pub fn figures(loads: &[&NodeLoad]) -> BTreeMap<&'static str, f64> {
    let mut out = BTreeMap::new();
    if loads.is_empty() {
        return out;
    }
    let max = |f: &dyn Fn(&NodeLoad) -> Option<f64>| {
        loads.iter().filter_map(|l| f(l)).fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
    };
    let ms = |us: Option<u64>| us.map(|u| u as f64 / 1000.0);
    for (name, v) in [
        ("p50_ms", max(&|l| ms(l.p50_us))),
        ("p95_ms", max(&|l| ms(l.p95_us))),
        ("p99_ms", max(&|l| ms(l.p99_us))),
        ("cpu", max(&|l| l.cpu_millicores.map(|c| c as f64 / (f64::from(l.cores.max(1)) * 10.0)))),
        ("memory", max(&|l| l.rss_bytes.zip(l.memory_bytes).map(|(r, m)| r as f64 * 100.0 / m.max(1) as f64))),
        ("replication_lag", max(&|l| Some(l.replication_lag as f64))),
        ("connections", max(&|l| Some(l.connections as f64))),
    ] {
        if let Some(v) = v {
            out.insert(name, v);
        }
    }
    let ops: u64 = loads.iter().map(|l| l.ops_milli).sum();
    let errors: u64 = loads.iter().map(|l| l.errors_milli).sum();
    if ops > 0 {
        out.insert("error_rate", errors as f64 * 100.0 / ops as f64);
    }
    out
}

/// Where an indicator is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Critical,
    /// No figure to judge (no node reports it).
    Unknown,
}

/// One indicator now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Indicator {
    pub name: String,
    pub unit: String,
    pub value: Option<f64>,
    pub level: Level,
    /// Since when it has been at that level (ms).
    pub since_ms: u64,
    pub levels: Levels,
}

/// Since when each indicator's figure has been past each level.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    past: BTreeMap<&'static str, (Option<u64>, Option<u64>)>,
    shown: BTreeMap<&'static str, (Level, u64)>,
}

impl Tracker {
    /// Judge `figures` at `now_ms` against `levels`.
    pub fn update(
        &mut self,
        now_ms: u64,
        figures: &BTreeMap<&'static str, f64>,
        levels: &[(&'static str, &'static str, Levels)],
    ) -> Vec<Indicator> {
        let mut out = Vec::new();
        for (name, unit, l) in levels {
            let value = figures.get(name).copied();
            let (warn_since, crit_since) = self.past.entry(name).or_default();
            let since = |slot: &mut Option<u64>, past: bool| {
                *slot = if past { Some(slot.unwrap_or(now_ms)) } else { None };
                slot.filter(|s| now_ms.saturating_sub(*s) >= l.for_seconds * 1000)
            };
            let crit = since(crit_since, value.is_some_and(|v| v >= l.critical));
            let warn = since(warn_since, value.is_some_and(|v| v >= l.warning));
            let level = match (value, crit, warn) {
                (None, _, _) => Level::Unknown,
                (_, Some(_), _) => Level::Critical,
                (_, _, Some(_)) => Level::Warning,
                _ => Level::Ok,
            };
            let shown = self.shown.entry(name).or_insert((level, now_ms));
            if shown.0 != level {
                *shown = (level, now_ms);
            }
            out.push(Indicator {
                name: name.to_string(),
                unit: unit.to_string(),
                value,
                level,
                since_ms: shown.1,
                levels: *l,
            });
        }
        out
    }
}

/// Every fault of a policy's overrides.
pub fn validate(overrides: &BTreeMap<String, Levels>, out: &mut Vec<super::policy::PolicyError>) {
    for (name, l) in overrides {
        let field = format!("indicators.{name}");
        let mut wrong = |why: String| out.push(super::policy::PolicyError { field: field.clone(), why });
        if !INDICATORS.iter().any(|(n, _, _)| n == name) {
            let known: Vec<&str> = INDICATORS.iter().map(|i| i.0).collect();
            wrong(format!("unknown indicator; known: {}", known.join(", ")));
            continue;
        }
        if !(l.warning.is_finite() && l.critical.is_finite() && l.warning >= 0.0 && l.warning < l.critical) {
            wrong(format!("needs 0 ≤ warning < critical, got {} and {}", l.warning, l.critical));
        }
        if l.for_seconds > 86_400 {
            wrong(format!("forSeconds must be at most 86400, got {}", l.for_seconds));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_the_worst_nodes_and_the_error_share() {
        let a = NodeLoad {
            ops_milli: 900_000,
            errors_milli: 0,
            p99_us: Some(3_000),
            cpu_millicores: Some(1_500),
            cores: 2,
            ..NodeLoad::default()
        };
        let b = NodeLoad {
            ops_milli: 100_000,
            errors_milli: 20_000,
            p99_us: Some(12_000),
            cores: 2,
            ..NodeLoad::default()
        };
        let f = figures(&[&a, &b]);
        assert_eq!(f["p99_ms"], 12.0);
        assert_eq!(f["cpu"], 75.0);
        assert_eq!(f["error_rate"], 2.0);
        assert!(!f.contains_key("p50_ms") && !f.contains_key("memory"));
        assert!(figures(&[]).is_empty());
    }

    #[test]
    fn a_level_holds_for_its_time_before_it_shows_and_clears_at_once() {
        let levels =
            levels(&[("p99_ms".to_string(), Levels { warning: 10.0, critical: 50.0, for_seconds: 60 })].into());
        let mut t = Tracker::default();
        let at = |t: &mut Tracker, s: u64, v: f64| {
            let i = t.update(s * 1000, &[("p99_ms", v)].into(), &levels);
            let p = i.into_iter().find(|i| i.name == "p99_ms").unwrap();
            (p.level, p.since_ms / 1000)
        };
        assert_eq!(at(&mut t, 0, 5.0), (Level::Ok, 0));
        assert_eq!(at(&mut t, 10, 80.0), (Level::Ok, 0), "past critical, not for long enough");
        assert_eq!(at(&mut t, 69, 80.0), (Level::Ok, 0));
        assert_eq!(at(&mut t, 70, 30.0), (Level::Warning, 70), "past warning for 60 s");
        assert_eq!(at(&mut t, 80, 60.0), (Level::Warning, 70), "critical again only from 80 s");
        assert_eq!(at(&mut t, 140, 60.0), (Level::Critical, 140));
        assert_eq!(at(&mut t, 141, 1.0), (Level::Ok, 141));
        // Without a figure: unknown.
        let i = t.update(200_000, &BTreeMap::new(), &levels);
        assert!(i.iter().all(|i| i.level == Level::Unknown));
    }

    #[test]
    fn overrides_are_checked() {
        let mut out = Vec::new();
        let bad = Levels { warning: 10.0, critical: 5.0, for_seconds: 0 };
        validate(&[("p99_ms".to_string(), bad), ("latency".to_string(), bad)].into(), &mut out);
        let fields: Vec<&str> = out.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["indicators.latency", "indicators.p99_ms"]);
    }
}
