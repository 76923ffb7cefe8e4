//! The what-if simulator: a load trace replayed against a policy through
//! the very recommender the control plane runs, with a model of the
//! cluster it drives. Operators compare two policies on last month's
//! traffic before changing production.
//!
//! The trace gives cluster-wide figures at each instant; the model turns
//! them into what each node would report at the node count the policy has
//! reached by then:
//!
//! | column | meaning | per node |
//! |---|---|---|
//! | `ops` | operations a second (the first tenant the policy names, else `default`) | `ops / nodes`; per PRG `ops / PRGs` |
//! | `cpu` | cores busy | `cpu / nodes` against [`Model::cores`] |
//! | `memory` | bytes resident | `memory / nodes` against [`Model::memory`] |
//! | `bytes` | data stored, one replica's worth | `bytes / PRGs` per replica |
//! | `p99_ms`, `replication_lag` | as measured (cluster-wide, not rescaled) | — |
//!
//! Two measures of how the policy served the load: the minutes a policy
//! metric was past its target's tolerance (warning) or 50 % past it
//! (critical), and, for each load indicator the trace has a figure for, the
//! minutes at its warning and critical levels.
//!
//! A scale-up takes [`Model::scale_up_ms`] before its nodes count; a
//! scale-down drafts a plan that an operator arms [`Model::arm_after_ms`]
//! later (at once under `autoArm`), which then takes
//! [`Model::scale_down_ms`]. Nodes count for cost from the moment they are
//! asked for until the moment they are gone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::data::{LastChanges, TenantLoad};
use super::forecast::{season_for, Forecast, HoltWinters};
use super::hpa::{NodeSample, Readiness, Recommender};
use super::policy::{Metric, Policy, SourceKind, TargetKind};
use super::recommend::{recommend, Signals};

/// A metric 50 % past its target is critical (one past its tolerance is
/// a warning).
pub const CRITICAL: f64 = 1.5;

/// One row of a trace: its time and its figures by column name.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceRow {
    pub at_ms: u64,
    pub figures: BTreeMap<String, f64>,
}

/// The cluster the trace is replayed on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    /// Nodes at the start.
    pub nodes: u32,
    /// PRGs of the tenant at the start.
    pub prgs: u32,
    /// Cores of each node.
    pub cores: u32,
    /// Memory of each node, bytes.
    pub memory: u64,
    pub scale_up_ms: u64,
    pub scale_down_ms: u64,
    /// How long a drafted shrink plan waits for an operator to arm it.
    pub arm_after_ms: u64,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            nodes: 3,
            prgs: 4,
            cores: 2,
            memory: 8 << 30,
            scale_up_ms: 5 * 60_000,
            scale_down_ms: 10 * 60_000,
            arm_after_ms: 0,
        }
    }
}

/// The cluster at one row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub at_ms: u64,
    /// Nodes serving.
    pub nodes: u32,
    /// Nodes paid for (serving, joining or leaving).
    pub billed: u32,
    pub prgs: u32,
    /// The first metric's load, and what the serving nodes carry at its
    /// target (in its units: cores, bytes, operations a second...).
    pub load: Option<f64>,
    pub capacity: Option<f64>,
    /// The largest metric-to-target ratio.
    pub ratio: Option<f64>,
}

/// A change the simulated autoscaler made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimDecision {
    pub at_ms: u64,
    pub current: u32,
    pub nodes: u32,
    pub prgs: u32,
    /// `scale-up`, `draft`, `armed`, `draft cancelled`, `done`.
    pub action: String,
    /// Every ask with its arithmetic, and the HPA's limits.
    pub why: String,
}

/// What a replay found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimReport {
    pub steps: Vec<Step>,
    pub decisions: Vec<SimDecision>,
    /// Minutes with a metric past its target's tolerance, and 50 % past it.
    pub warning_minutes: f64,
    pub critical_minutes: f64,
    /// Per load indicator the trace gives a figure for (`cpu` and `memory`
    /// per node at the count reached, `p99_ms`, `replication_lag`): minutes
    /// at or past its warning and its critical level (the policy's levels,
    /// or the defaults).
    pub indicator_minutes: BTreeMap<String, (f64, f64)>,
    pub node_hours: f64,
    pub peak_nodes: u32,
    /// The metric whose load and capacity the steps carry.
    pub shown_metric: Option<String>,
}

/// An operation under way in the model.
#[derive(Clone, Debug)]
struct Running {
    ends_ms: u64,
    nodes: u32,
    prgs: u32,
}

/// A drafted plan waiting for its operator.
#[derive(Clone, Debug)]
struct Draft {
    armed_ms: u64,
    nodes: u32,
    prgs: u32,
}

/// The tenant the trace's `ops` and `bytes` belong to.
fn tenant_of(policy: &Policy) -> String {
    policy.tenants.keys().next().cloned().unwrap_or_else(|| "default".to_string())
}

/// The metric's cluster-wide figure from the row, and what one node
/// carries at the target (`None`: the trace has no such column).
fn per_metric(spec_metric: Metric, row: &TraceRow, m: &Model, nodes: u32, prgs: u32) -> Option<(NodeSample, f64)> {
    let col = |c: &str| row.figures.get(c).copied();
    let n = f64::from(nodes.max(1));
    let ready = |usage: f64, capacity: i64| NodeSample {
        readiness: Readiness::Ready,
        usage: Some(usage.round() as i64),
        capacity,
    };
    let (sample, total) = match spec_metric {
        Metric::Cpu => {
            let c = col("cpu")?;
            (ready(c * 1000.0 / n, i64::from(m.cores) * 1000), c)
        }
        Metric::Memory => {
            let b = col("memory")?;
            (ready(b / n, m.memory as i64), b)
        }
        Metric::OpsPerNode => {
            let o = col("ops")?;
            (ready(o * 1000.0 / n, 0), o)
        }
        Metric::OpsPerPrg => {
            let o = col("ops")?;
            (ready(o * 1000.0 / f64::from(prgs.max(1)), 0), o)
        }
        Metric::BytesPerPrg => {
            let b = col("bytes")?;
            (ready(b * 1000.0 / f64::from(prgs.max(1)), 0), b)
        }
        Metric::P99Ms | Metric::ReplicationLag => return None,
    };
    Some((sample, total))
}

/// The recommender's inputs at `row` for a cluster of `nodes` nodes and
/// `prgs` PRGs.
fn signals_at(policy: &Policy, row: &TraceRow, m: &Model, nodes: u32, prgs: u32, last: LastChanges) -> Signals {
    let mut samples = BTreeMap::new();
    for metric in [Metric::Cpu, Metric::Memory, Metric::OpsPerNode, Metric::OpsPerPrg, Metric::BytesPerPrg] {
        let list = match per_metric(metric, row, m, nodes, prgs) {
            Some((s, _)) => vec![s; nodes as usize],
            None => vec![NodeSample { readiness: Readiness::Ready, usage: None, capacity: 0 }; nodes as usize],
        };
        samples.insert(metric, list);
    }
    let mut cluster = BTreeMap::new();
    for metric in [Metric::P99Ms, Metric::ReplicationLag] {
        if let Some(v) = row.figures.get(metric.name()) {
            cluster.insert(metric, (v * 1000.0).round() as i64);
        }
    }
    let bytes = row.figures.get("bytes").copied().unwrap_or(0.0).max(0.0) as u64;
    let load = TenantLoad { ops: row.figures.get("ops").copied().unwrap_or(0.0), bytes, prgs };
    Signals {
        now_ms: row.at_ms,
        nodes,
        ready_nodes: nodes,
        samples,
        cluster,
        tenants: [(tenant_of(policy), load)].into(),
        data_bytes: bytes,
        node_memory: m.memory,
        last,
        forecast: None,
    }
}

/// The load indicators a row gives figures for, at `nodes` nodes (the
/// trace's CPU and memory spread evenly over them).
fn indicator_figures(row: &TraceRow, m: &Model, nodes: u32) -> Vec<(&'static str, f64)> {
    let n = f64::from(nodes.max(1));
    let mut out = Vec::new();
    if let Some(cpu) = row.figures.get("cpu") {
        out.push(("cpu", cpu * 100.0 / (n * f64::from(m.cores.max(1)))));
    }
    if let Some(mem) = row.figures.get("memory") {
        out.push(("memory", mem * 100.0 / (n * m.memory.max(1) as f64)));
    }
    for name in ["p99_ms", "replication_lag"] {
        if let Some(v) = row.figures.get(name) {
            out.push((name, *v));
        }
    }
    out
}

/// Each policy metric's figure over its target, at `nodes` and `prgs`.
fn ratios(policy: &Policy, row: &TraceRow, m: &Model, nodes: u32, prgs: u32) -> Vec<(Metric, f64, f64, f64)> {
    let mut out = Vec::new();
    for spec in &policy.metrics {
        let Some(metric) = spec.metric_name().and_then(Metric::parse) else { continue };
        let Some(target) = spec.target() else { continue };
        let n = f64::from(nodes.max(1));
        let got = match (spec.kind, target.kind) {
            (SourceKind::Object, _) => row.figures.get(metric.name()).map(|v| (*v, target.figure())),
            (_, TargetKind::Utilization) => per_metric(metric, row, m, nodes, prgs).map(|(s, total)| {
                let cap = s.capacity as f64 / if metric == Metric::Cpu { 1000.0 } else { 1.0 };
                (total, n * cap * target.figure() / 100.0)
            }),
            (_, _) => per_metric(metric, row, m, nodes, prgs).map(|(_, total)| {
                let units = match metric {
                    Metric::OpsPerPrg | Metric::BytesPerPrg => f64::from(prgs.max(1)),
                    _ => n,
                };
                (total, units * target.figure())
            }),
        };
        if let Some((load, capacity)) = got.filter(|(_, c)| *c > 0.0) {
            out.push((metric, load, capacity, load / capacity));
        }
    }
    out
}

fn why(d: &super::recommend::Decision) -> String {
    let asks: Vec<String> = d.asks.iter().map(|a| format!("{}: {}", a.source, a.why)).collect();
    let r = &d.recommendation;
    format!("{}; asked {}, limited to {} ({:?})", asks.join("; "), r.asked, r.nodes, r.reason)
}

/// Replay `trace` (rows in time order) against `policy` (validated) on
/// `model`.
pub fn simulate(policy: &Policy, trace: &[TraceRow], model: &Model) -> SimReport {
    let mut history = Recommender::default();
    let mut last = LastChanges::default();
    let (mut nodes, mut prgs) = (model.nodes.max(1), model.prgs.max(1));
    let mut running: Option<Running> = None;
    let mut draft: Option<Draft> = None;
    let mut report = SimReport {
        shown_metric: policy.metrics.iter().find_map(|s| s.metric_name().map(str::to_string)),
        ..SimReport::default()
    };
    let tenant = tenant_of(policy);
    // The forecast learns the trace's operations as the live history
    // would, one point a row, with the season the whole trace supports.
    let step_ms = match trace {
        [a, b, ..] => b.at_ms.saturating_sub(a.at_ms).max(1),
        _ => 60_000,
    };
    let span_ms = trace.last().map_or(0, |l| l.at_ms.saturating_sub(trace[0].at_ms));
    let (season, period) = season_for(span_ms, step_ms);
    let mut hw = HoltWinters::new(period);
    let mut last_ops = 0.0;
    let levels = super::indicators::levels(&policy.indicators);
    for (i, row) in trace.iter().enumerate() {
        let now = row.at_ms;
        if let Some(r) = running.clone().filter(|r| now >= r.ends_ms) {
            if r.nodes > nodes || r.prgs > prgs {
                last.scale_up_ms = Some(r.ends_ms);
            } else {
                last.scale_down_ms = Some(r.ends_ms);
            }
            let note = SimDecision {
                at_ms: r.ends_ms,
                current: nodes,
                nodes: r.nodes,
                prgs: r.prgs,
                action: "done".into(),
                why: format!("the operation to {} nodes and {} PRGs finished", r.nodes, r.prgs),
            };
            report.decisions.push(note);
            (nodes, prgs) = (r.nodes, r.prgs);
            running = None;
        }
        let mut signals = signals_at(policy, row, model, nodes, prgs, last);
        if let Some(f) = &policy.forecast {
            last_ops = row.figures.get("ops").copied().unwrap_or(last_ops);
            hw.update(last_ops);
            let lead_ms = u64::from(f.lead_seconds) * 1000;
            let ahead = lead_ms.div_ceil(step_ms).max(1) as usize;
            signals.forecast =
                hw.forecast(ahead).map(|ops| Forecast { ops, lead_ms, season: season.to_string(), points: i + 1 });
        }
        let decision = recommend(policy, &signals, &mut history);
        let want_prgs = decision.prgs.get(&tenant).map_or(prgs, |a| a.prgs);
        let record = |action: &str, to: u32, to_prgs: u32, decisions: &mut Vec<SimDecision>| {
            let why = why(&decision);
            decisions.push(SimDecision {
                at_ms: now,
                current: nodes,
                nodes: to,
                prgs: to_prgs,
                action: action.into(),
                why,
            });
        };
        if running.is_none() {
            // Only the trace's tenant has a PRG count to change.
            let change = decision.change(|t| if t == tenant { prgs } else { decision.prgs[t].prgs });
            let (up, down) = (change.up, change.down);
            if let Some(d) = draft.clone() {
                if !down {
                    record("draft cancelled", nodes, prgs, &mut report.decisions);
                    draft = None;
                } else if now >= d.armed_ms {
                    record("armed", d.nodes, d.prgs, &mut report.decisions);
                    history.record_scale(now, policy, nodes, d.nodes);
                    running = Some(Running { ends_ms: now + model.scale_down_ms, nodes: d.nodes, prgs: d.prgs });
                    draft = None;
                }
            }
            if up && running.is_none() {
                let (to, to_prgs) = (decision.nodes.max(nodes), want_prgs.max(prgs));
                record("scale-up", to, to_prgs, &mut report.decisions);
                history.record_scale(now, policy, nodes, to);
                running = Some(Running { ends_ms: now + model.scale_up_ms, nodes: to, prgs: to_prgs });
            } else if down && running.is_none() && draft.is_none() {
                let (to, to_prgs) = (decision.nodes.min(nodes), want_prgs.min(prgs));
                let arm_at = if policy.auto_arm { now } else { now + model.arm_after_ms };
                record("draft", to, to_prgs, &mut report.decisions);
                draft = Some(Draft { armed_ms: arm_at, nodes: to, prgs: to_prgs });
                if arm_at <= now {
                    record("armed", to, to_prgs, &mut report.decisions);
                    history.record_scale(now, policy, nodes, to);
                    running = Some(Running { ends_ms: now + model.scale_down_ms, nodes: to, prgs: to_prgs });
                    draft = None;
                }
            }
        }
        let billed = running.as_ref().map_or(nodes, |r| r.nodes.max(nodes));
        let rs = ratios(policy, row, model, nodes, prgs);
        let ratio = rs.iter().map(|r| r.3).fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
        let first = rs.first();
        // Each row stands until the next (the last for as long as the one before it).
        let span_ms = match (trace.get(i + 1), i.checked_sub(1).and_then(|p| trace.get(p))) {
            (Some(next), _) => next.at_ms.saturating_sub(now),
            (None, Some(prev)) => now.saturating_sub(prev.at_ms),
            (None, None) => 60_000,
        };
        let minutes = span_ms as f64 / 60_000.0;
        if let Some(r) = ratio {
            if r > 1.0 + policy.tolerance {
                report.warning_minutes += minutes;
            }
            if r > CRITICAL {
                report.critical_minutes += minutes;
            }
        }
        for (name, value) in indicator_figures(row, model, nodes) {
            let Some((_, _, l)) = levels.iter().find(|(n, _, _)| *n == name) else { continue };
            let e = report.indicator_minutes.entry(name.to_string()).or_default();
            if value >= l.warning {
                e.0 += minutes;
            }
            if value >= l.critical {
                e.1 += minutes;
            }
        }
        report.node_hours += f64::from(billed) * minutes / 60.0;
        report.peak_nodes = report.peak_nodes.max(billed);
        report.steps.push(Step {
            at_ms: now,
            nodes,
            billed,
            prgs,
            load: first.map(|r| r.1),
            capacity: first.map(|r| r.2),
            ratio,
        });
    }
    report
}

#[cfg(test)]
#[path = "simulate_tests.rs"]
mod tests;
