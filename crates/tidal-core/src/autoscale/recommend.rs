//! One decision: the policy's metrics through the HPA's arithmetic, the
//! floors the data sets, the history's windows and limits, the cooldowns,
//! and each tenant's PRG count, with every figure that made it kept for
//! the record.
//!
//! ```text
//!   Signals ──► per metric: hpa::{resource,average,object,object_average}_nodes ─┐
//!           ──► floors: data::{nodes_for_replicas, nodes_for_data} ────────────────┤ max
//!                                                                                  ▼
//!                     Recommender::normalize (windows, policies, bounds)
//!                                                                                  ▼
//!                     Cooldowns::holds_scale_down ──► Decision { nodes, prgs, asks }
//! ```
//!
//! Figures of `Pods` and `Object` metrics are in thousandths of their unit
//! (as the HPA's milli-quantities), so that averages round as the HPA's do.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::data::{nodes_for_data, nodes_for_replicas, prgs_for, usage_ratio, LastChanges, PrgAsk, TenantLoad};
use super::hpa::{
    average_nodes, object_average_nodes, object_nodes, resource_nodes, NodeSample, Recommendation, Recommender,
};
use super::policy::{Metric, MetricSpec, Policy, SourceKind, TargetKind};
use super::schedule::calendar;

/// What the recommender reads of the cluster at one instant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    pub now_ms: u64,
    /// Active nodes now.
    pub nodes: u32,
    /// Of those, the ones serving (ready).
    pub ready_nodes: u32,
    /// Per-node figures of the `Resource` and `Pods` metrics.
    pub samples: BTreeMap<Metric, Vec<NodeSample>>,
    /// Cluster-wide figures of the `Object` metrics.
    pub cluster: BTreeMap<Metric, i64>,
    /// Each tenant's load.
    pub tenants: BTreeMap<String, TenantLoad>,
    /// Bytes stored, one replica's worth, and each node's memory.
    pub data_bytes: u64,
    pub node_memory: u64,
    /// When the cluster last changed.
    pub last: LastChanges,
    /// The load expected a scale-up's time from now, when the policy
    /// asks for forecasts and the history allows one.
    pub forecast: Option<super::forecast::Forecast>,
}

/// What one source asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ask {
    /// `metric cpu`, `floor replicas`, `floor data`.
    pub source: String,
    /// `None` when it could not be computed (no figures).
    pub nodes: Option<u32>,
    pub why: String,
}

/// One decision and everything that made it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub at_ms: u64,
    pub current: u32,
    /// Node count to scale to.
    pub nodes: u32,
    pub asks: Vec<Ask>,
    /// The largest ask, once the HPA's rule for missing metrics applied.
    pub desired: u32,
    pub recommendation: Recommendation,
    /// Set when a cooldown held a scale-down back.
    pub held: Option<String>,
    /// PRGs per tenant the policy sets a target for.
    pub prgs: BTreeMap<String, PrgAsk>,
}

/// Which way a decision moves the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Tenants to get more PRGs, and how many they get.
    pub grow: BTreeMap<String, u32>,
    /// Tenants to get fewer.
    pub shrink: BTreeMap<String, u32>,
    /// More nodes, or more PRGs for a tenant.
    pub up: bool,
    /// Fewer nodes, or fewer PRGs for a tenant and no more nodes.
    pub down: bool,
}

impl Decision {
    /// Which way this decision moves a cluster whose tenant `t` has
    /// `prgs_now(t)` PRGs (the count it has now, `current` nodes).
    pub fn change(&self, prgs_now: impl Fn(&str) -> u32) -> Change {
        let asked = |wants: fn(u32, u32) -> bool| -> BTreeMap<String, u32> {
            self.prgs.iter().filter(|(t, a)| wants(a.prgs, prgs_now(t))).map(|(t, a)| (t.clone(), a.prgs)).collect()
        };
        let (grow, shrink) = (asked(|a, n| a > n), asked(|a, n| a < n));
        let up = self.nodes > self.current || !grow.is_empty();
        let down = self.nodes < self.current || (!shrink.is_empty() && self.nodes <= self.current);
        Change { grow, shrink, up, down }
    }
}

/// A metric's target in the figures' units.
fn milli(v: Option<f64>) -> i64 {
    (v.unwrap_or(0.0) * 1000.0).round() as i64
}

fn ask_for(spec: &MetricSpec, policy: &Policy, s: &Signals) -> Ask {
    let (name, target) = spec.named().expect("a validated policy");
    let metric = Metric::parse(name).expect("a validated policy");
    let source = format!("metric {metric}");
    let tol = policy.tolerance;
    let cpu = metric == Metric::Cpu;
    let samples = s.samples.get(&metric).map_or(&[][..], Vec::as_slice);
    let got = match (spec.kind, target.kind) {
        (SourceKind::Object, kind) => match s.cluster.get(&metric) {
            None => Err("no figure reported".to_string()),
            Some(&v) if kind == TargetKind::Value => {
                Ok(object_nodes(s.nodes, s.ready_nodes, v, milli(target.value), tol))
            }
            Some(&v) => Ok(object_average_nodes(s.nodes, v, milli(target.average_value), tol)),
        }
        .map(|a| (a, format!("{} against {}", a.current as f64 / 1000.0, target.figure()))),
        (_, TargetKind::Utilization) => {
            let t = target.average_utilization.unwrap_or(0);
            resource_nodes(s.nodes, samples, t, tol, cpu)
                .map(|a| (a, format!("{} % against {t} %", a.current)))
                .map_err(|e| e.to_string())
        }
        (_, _) => average_nodes(s.nodes, samples, milli(target.average_value), tol, cpu)
            .map(|a| (a, format!("{} per node against {}", a.current as f64 / 1000.0, target.figure())))
            .map_err(|e| e.to_string()),
    };
    match got {
        Ok((a, why)) => Ask { source, nodes: Some(a.nodes), why: format!("{why}: {} nodes", a.nodes) },
        Err(why) => Ask { source, nodes: None, why },
    }
}

/// The decision at `signals.now_ms` under `policy`, with `history` as the
/// HPA keeps it (recorded into). `policy` must have validated.
pub fn recommend(policy: &Policy, signals: &Signals, history: &mut Recommender) -> Decision {
    let current = signals.nodes;
    let mut asks: Vec<Ask> = policy.metrics.iter().map(|m| ask_for(m, policy, signals)).collect();
    let valid: Vec<u32> = asks.iter().filter_map(|a| a.nodes).collect();
    let invalid = asks.len() - valid.len();
    let mut desired = valid.iter().copied().max().unwrap_or(current);
    // The HPA's rule: with every metric missing, or some missing and the
    // rest asking for fewer nodes, nothing changes.
    if invalid > 0 && (valid.is_empty() || desired < current) {
        desired = current;
    }
    if let (Some(_), Some(target)) = (&policy.forecast, policy.ops_per_node_target()) {
        let ask = match &signals.forecast {
            None => Ask { source: "forecast".into(), nodes: None, why: "not enough history yet".into() },
            Some(f) => {
                let ratio = f.ops / (f64::from(current.max(1)) * target);
                let nodes = if (1.0 - ratio).abs() <= policy.tolerance {
                    current
                } else {
                    (f.ops / target).ceil().clamp(0.0, f64::from(u32::MAX)) as u32
                };
                let why = format!(
                    "{:.0} ops/s expected in {} s ({} season, {} points), {target} a node: {nodes} nodes",
                    f.ops,
                    f.lead_ms / 1000,
                    f.season,
                    f.points
                );
                Ask { source: "forecast".into(), nodes: Some(nodes), why }
            }
        };
        // Ahead of the load, only ever up: the metrics say when to come down.
        if let Some(n) = ask.nodes {
            desired = desired.max(n);
        }
        asks.push(ask);
    }
    let mut prgs: BTreeMap<String, PrgAsk> = BTreeMap::new();
    for (t, target) in &policy.tenants {
        let load = signals.tenants.get(t).copied().unwrap_or_default();
        let mut ask = prgs_for(&load, &target.target_per_prg);
        if load.prgs > 0 {
            // As for nodes: within the tolerance nothing changes, and a
            // count goes down only as far as the down window agrees.
            if usage_ratio(&load, &target.target_per_prg).is_some_and(|r| (1.0 - r).abs() <= policy.tolerance) {
                ask.prgs = load.prgs;
                ask.why = format!("{}; within the tolerance of {} PRGs", ask.why, load.prgs);
            }
            let (stabilized, reason) = history.stabilize_prgs(t, signals.now_ms, load.prgs, ask.prgs, policy);
            if stabilized != ask.prgs {
                ask.why = format!("{}; {reason:?}: {stabilized}", ask.why);
                ask.prgs = stabilized;
            }
        }
        prgs.insert(t.clone(), ask);
    }
    if let Some(max) = policy.max_replicas_per_node {
        // The PRGs there will be: each tenant's ask, or what it has now if more.
        let total: u32 =
            signals.tenants.iter().map(|(t, load)| prgs.get(t).map_or(load.prgs, |a| a.prgs.max(load.prgs))).sum();
        let floor = nodes_for_replicas(total, max);
        asks.push(Ask {
            source: "floor replicas".into(),
            nodes: Some(floor),
            why: format!("{total} PRGs × 3 replicas, at most {max} a node: {floor} nodes"),
        });
        desired = desired.max(floor);
    }
    if let (Some(fill), true) = (policy.max_data_fill, signals.node_memory > 0) {
        let floor = nodes_for_data(signals.data_bytes, signals.node_memory, fill);
        asks.push(Ask {
            source: "floor data".into(),
            nodes: Some(floor),
            why: format!(
                "{} bytes × 3 replicas in {} × {fill} bytes a node: {floor} nodes",
                signals.data_bytes, signals.node_memory
            ),
        });
        desired = desired.max(floor);
    }
    // Events and schedules raise the minimum while they are in force.
    let calendar = calendar(&policy.events, &policy.schedules, signals.now_ms);
    let mut effective = None;
    if let Some((min, why)) = calendar.min.filter(|(m, _)| *m > policy.min_nodes) {
        let min = min.min(policy.max_nodes);
        asks.push(Ask { source: "minimum".into(), nodes: Some(min), why: format!("{min} nodes: {why}") });
        effective = Some(Policy { min_nodes: min, ..policy.clone() });
    }
    let recommendation = history.normalize(signals.now_ms, effective.as_ref().unwrap_or(policy), current, desired);
    let mut nodes = recommendation.nodes;
    let mut held = None;
    if nodes < current {
        if let Some((event, until)) = &calendar.freeze {
            held = Some(format!("event {event} freezes scale-down until {until} ms"));
            nodes = current;
        } else if let Some((why, until)) = policy.cooldowns.holds_scale_down(signals.now_ms, &signals.last) {
            held = Some(format!("{why}: no scale-down before {until} ms"));
            nodes = current;
        }
    }
    Decision { at_ms: signals.now_ms, current, nodes, asks, desired, recommendation, held, prgs }
}

#[cfg(test)]
#[path = "recommend_tests.rs"]
mod tests;
