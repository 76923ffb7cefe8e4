//! An autoscale policy, in the vocabulary of the Kubernetes HPA's
//! `autoscaling/v2` (`minReplicas` becomes `minNodes`), with what a
//! stateful store adds: a target load per PRG for each tenant, and whether
//! a scale-down may arm its shrink plan by itself.
//!
//! ```yaml
//! minNodes: 3
//! maxNodes: 9
//! tolerance: 0.1
//! metrics:
//!   - type: Resource
//!     resource: { name: cpu, target: { type: Utilization, averageUtilization: 60 } }
//!   - type: Pods
//!     pods: { metric: { name: ops_per_node }, target: { type: AverageValue, averageValue: 20000 } }
//!   - type: Object
//!     object: { metric: { name: p99_ms }, target: { type: Value, value: 5 } }
//! behavior:
//!   scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: Max,
//!              policies: [{ type: Pods, value: 2, periodSeconds: 60 }] }
//!   scaleDown: { stabilizationWindowSeconds: 300,
//!                policies: [{ type: Percent, value: 50, periodSeconds: 300 }] }
//! tenants:
//!   default: { targetPerPrg: { ops: 5000 } }
//! maxReplicasPerNode: 12
//! maxDataFill: 0.7
//! cooldowns: { afterScaleUpSeconds: 600, afterScaleDownSeconds: 300, afterFailureSeconds: 180 }
//! ```
//!
//! Whatever the policy leaves out takes the HPA's defaults. [`Policy::validate`]
//! names every field that is wrong, all at once.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The HPA's default tolerance: a metric within 10 % of its target scales
/// nothing.
pub const DEFAULT_TOLERANCE: f64 = 0.1;

/// The longest stabilization window the HPA accepts (an hour).
pub const MAX_WINDOW_SECONDS: u32 = 3600;

/// The longest period a scaling policy may count changes over (30 minutes,
/// as in the HPA).
pub const MAX_PERIOD_SECONDS: u32 = 1800;

/// The longest cooldown a policy may set (a day).
pub const MAX_COOLDOWN_SECONDS: u32 = 86_400;

/// How many nodes, and which targets to hold them to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    pub min_nodes: u32,
    pub max_nodes: u32,
    /// What to hold at a target; the recommendation is the largest any of
    /// them asks for.
    #[serde(default)]
    pub metrics: Vec<MetricSpec>,
    #[serde(default)]
    pub behavior: Behavior,
    /// A metric within this fraction of its target asks for no change.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// Per tenant: the load one PRG should carry, from which its PRG count
    /// follows (`P' = ceil(total load / target per PRG)`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tenants: BTreeMap<String, TenantTargets>,
    /// Whether a scale-down arms the shrink plan it drafts. Off: an
    /// operator reviews and arms it.
    #[serde(default)]
    pub auto_arm: bool,
    /// At most this many replicas on a node: the node count never falls
    /// below what the PRGs' replicas need.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas_per_node: Option<u32>,
    /// At most this fraction of a node's memory for data (its three
    /// replicas counted): the node count never falls below what the data
    /// needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_data_fill: Option<f64>,
    /// How long a scale-down waits after other changes.
    #[serde(default)]
    pub cooldowns: super::data::Cooldowns,
    /// Windows with a higher minimum, announced ahead, that may freeze
    /// scale-down while they last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<super::schedule::Event>,
    /// Cron minimums (UTC), each for a while from every firing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<super::schedule::Schedule>,
    /// Scale up ahead of the load the recorded history forecasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<ForecastSpec>,
    /// Levels of the load indicators, where they differ from the defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub indicators: BTreeMap<String, super::indicators::Levels>,
}

/// How far ahead to scale: the time a scale-up takes, so that the nodes
/// serve when the load arrives. The forecast load asks for nodes against
/// the policy's `ops_per_node` target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForecastSpec {
    #[serde(default = "default_lead")]
    pub lead_seconds: u32,
}

fn default_lead() -> u32 {
    600
}

/// The longest a forecast may look ahead (a day).
pub const MAX_LEAD_SECONDS: u32 = 86_400;

impl Policy {
    /// The `ops_per_node` metric's per-node target, if the policy has one.
    pub fn ops_per_node_target(&self) -> Option<f64> {
        self.metrics.iter().find_map(|m| {
            (m.metric_name() == Some(Metric::OpsPerNode.name()))
                .then(|| m.target().and_then(|t| t.average_value))
                .flatten()
        })
    }
}

fn default_tolerance() -> f64 {
    DEFAULT_TOLERANCE
}

/// A tenant's load per PRG.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantTargets {
    pub target_per_prg: PrgTarget,
}

/// The load one PRG should carry; each given figure asks for
/// `ceil(total / target)` PRGs, and the largest ask wins.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrgTarget {
    /// Operations a second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<f64>,
    /// Bytes stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<f64>,
}

/// Where a metric comes from, as the HPA names its sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceKind {
    /// A node's CPU or memory, against its capacity.
    Resource,
    /// A figure each node reports; its average is held at the target.
    Pods,
    /// A figure of the whole cluster, held at the target.
    Object,
}

/// One metric to hold at a target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricSpec {
    #[serde(rename = "type")]
    pub kind: SourceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<NamedSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<NamedSource>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceSource {
    pub name: String,
    pub target: Target,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedSource {
    pub metric: MetricName,
    pub target: Target,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricName {
    pub name: String,
}

/// How a target is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetKind {
    /// A percentage of the nodes' capacity (`averageUtilization`).
    Utilization,
    /// A value per node (`averageValue`).
    AverageValue,
    /// A value for the whole cluster (`value`).
    Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    #[serde(rename = "type")]
    pub kind: TargetKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_utilization: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

/// The metrics tidal's nodes report, by the names a policy uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// CPU used against the node's cores (Resource).
    Cpu,
    /// Memory used against the node's memory (Resource).
    Memory,
    /// Operations a second a node serves (Pods).
    OpsPerNode,
    /// Operations a second per PRG (Pods: the average over nodes of their
    /// PRGs' load).
    OpsPerPrg,
    /// Bytes stored per PRG replica (Pods).
    BytesPerPrg,
    /// Client latency, 99th percentile, in ms (Object).
    P99Ms,
    /// Entries the slowest follower is behind its leader (Object).
    ReplicationLag,
}

impl Metric {
    pub const ALL: [Metric; 7] = [
        Metric::Cpu,
        Metric::Memory,
        Metric::OpsPerNode,
        Metric::OpsPerPrg,
        Metric::BytesPerPrg,
        Metric::P99Ms,
        Metric::ReplicationLag,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Cpu => "cpu",
            Metric::Memory => "memory",
            Metric::OpsPerNode => "ops_per_node",
            Metric::OpsPerPrg => "ops_per_prg",
            Metric::BytesPerPrg => "bytes_per_prg",
            Metric::P99Ms => "p99_ms",
            Metric::ReplicationLag => "replication_lag",
        }
    }

    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The source a policy must name it under.
    pub fn source(self) -> SourceKind {
        match self {
            Metric::Cpu | Metric::Memory => SourceKind::Resource,
            Metric::OpsPerNode | Metric::OpsPerPrg | Metric::BytesPerPrg => SourceKind::Pods,
            Metric::P99Ms | Metric::ReplicationLag => SourceKind::Object,
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How fast to scale each way.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Behavior {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<ScalingRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScalingRules>,
}

impl Behavior {
    /// The scale-up rules, with the HPA's defaults where none are given:
    /// no stabilization, and at most 4 nodes or 100 % more (whichever
    /// adds more) every 15 s.
    pub fn up(&self) -> ScalingRules {
        let d = ScalingRules {
            stabilization_window_seconds: Some(0),
            select_policy: Some(SelectPolicy::Max),
            policies: vec![
                ScalingPolicy { kind: ScalingPolicyKind::Pods, value: 4, period_seconds: 15 },
                ScalingPolicy { kind: ScalingPolicyKind::Percent, value: 100, period_seconds: 15 },
            ],
        };
        self.scale_up.as_ref().map_or(d.clone(), |r| r.or(&d))
    }

    /// The scale-down rules, with the HPA's defaults where none are given:
    /// a 300 s stabilization window, and up to 100 % fewer every 15 s.
    pub fn down(&self) -> ScalingRules {
        let d = ScalingRules {
            stabilization_window_seconds: Some(300),
            select_policy: Some(SelectPolicy::Max),
            policies: vec![ScalingPolicy { kind: ScalingPolicyKind::Percent, value: 100, period_seconds: 15 }],
        };
        self.scale_down.as_ref().map_or(d.clone(), |r| r.or(&d))
    }
}

/// One direction's rules.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingRules {
    /// How far back recommendations count: scaling up goes to the least
    /// recommended within the window, scaling down to the most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stabilization_window_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<SelectPolicy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<ScalingPolicy>,
}

impl ScalingRules {
    /// These rules, with `defaults`' for whatever they leave out (as the
    /// HPA defaults each field on its own).
    fn or(&self, defaults: &ScalingRules) -> ScalingRules {
        ScalingRules {
            stabilization_window_seconds: self.stabilization_window_seconds.or(defaults.stabilization_window_seconds),
            select_policy: self.select_policy.or(defaults.select_policy),
            policies: if self.policies.is_empty() { defaults.policies.clone() } else { self.policies.clone() },
        }
    }

    pub fn window_ms(&self) -> u64 {
        u64::from(self.stabilization_window_seconds.unwrap_or(0)) * 1000
    }

    pub fn select(&self) -> SelectPolicy {
        self.select_policy.unwrap_or(SelectPolicy::Max)
    }
}

/// Which of several policies limits a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectPolicy {
    /// The one that allows the largest change.
    Max,
    /// The one that allows the smallest change.
    Min,
    /// No change this way at all.
    Disabled,
}

/// At most this much change per period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingPolicy {
    #[serde(rename = "type")]
    pub kind: ScalingPolicyKind,
    pub value: u32,
    pub period_seconds: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScalingPolicyKind {
    /// `value` nodes.
    Pods,
    /// `value` percent of the nodes at the period's start.
    Percent,
}

/// One thing wrong with a policy, and where.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct PolicyError {
    /// The field's path, as in the policy (`behavior.scaleUp.policies[0].value`).
    pub field: String,
    pub why: String,
}

fn wrong(out: &mut Vec<PolicyError>, field: impl Into<String>, why: impl Into<String>) {
    out.push(PolicyError { field: field.into(), why: why.into() });
}

impl Policy {
    /// Every field that is wrong, or nothing.
    pub fn validate(&self) -> Result<(), Vec<PolicyError>> {
        let mut out = Vec::new();
        if self.min_nodes < 3 {
            wrong(
                &mut out,
                "minNodes",
                format!("must be at least 3 (every PRG has 3 replicas), got {}", self.min_nodes),
            );
        }
        if self.max_nodes < self.min_nodes {
            wrong(
                &mut out,
                "maxNodes",
                format!("must be at least minNodes ({}), got {}", self.min_nodes, self.max_nodes),
            );
        }
        if !(self.tolerance.is_finite() && (0.0..1.0).contains(&self.tolerance)) {
            wrong(&mut out, "tolerance", format!("must be at least 0 and below 1, got {}", self.tolerance));
        }
        let mut seen = Vec::new();
        for (i, m) in self.metrics.iter().enumerate() {
            if let Some(metric) = m.validate(&format!("metrics[{i}]"), &mut out) {
                if seen.contains(&metric) {
                    wrong(&mut out, format!("metrics[{i}]"), format!("{metric} is named twice"));
                }
                seen.push(metric);
            }
        }
        for (name, rules) in [("scaleUp", &self.behavior.scale_up), ("scaleDown", &self.behavior.scale_down)] {
            if let Some(r) = rules {
                r.validate(&format!("behavior.{name}"), &mut out);
            }
        }
        if self.max_replicas_per_node == Some(0) {
            wrong(&mut out, "maxReplicasPerNode", "must be greater than 0");
        }
        if let Some(fill) = self.max_data_fill.filter(|f| !(f.is_finite() && *f > 0.0 && *f <= 1.0)) {
            wrong(&mut out, "maxDataFill", format!("must be above 0 and at most 1, got {fill}"));
        }
        let c = &self.cooldowns;
        for (key, secs) in [
            ("afterScaleUpSeconds", c.after_scale_up_seconds),
            ("afterScaleDownSeconds", c.after_scale_down_seconds),
            ("afterFailureSeconds", c.after_failure_seconds),
        ] {
            if secs > MAX_COOLDOWN_SECONDS {
                wrong(
                    &mut out,
                    format!("cooldowns.{key}"),
                    format!("must be at most {MAX_COOLDOWN_SECONDS} (a day), got {secs}"),
                );
            }
        }
        for (tenant, t) in &self.tenants {
            let field = format!("tenants.{tenant}.targetPerPrg");
            let PrgTarget { ops, bytes } = &t.target_per_prg;
            if ops.is_none() && bytes.is_none() {
                wrong(&mut out, &field, "give ops, bytes or both");
            }
            for (what, v) in [("ops", ops), ("bytes", bytes)] {
                if let Some(v) = v.filter(|v| !(v.is_finite() && *v > 0.0)) {
                    wrong(&mut out, format!("{field}.{what}"), format!("must be greater than 0, got {v}"));
                }
            }
        }
        super::schedule::validate(&self.events, &self.schedules, self.max_nodes, &mut out);
        super::indicators::validate(&self.indicators, &mut out);
        if let Some(f) = &self.forecast {
            if f.lead_seconds > MAX_LEAD_SECONDS {
                wrong(&mut out, "forecast.leadSeconds", format!("must be at most {MAX_LEAD_SECONDS} (a day)"));
            }
            if self.ops_per_node_target().is_none() {
                wrong(&mut out, "forecast", "needs a Pods ops_per_node metric with an AverageValue target");
            }
        }
        if out.is_empty() {
            Ok(())
        } else {
            Err(out)
        }
    }
}

impl MetricSpec {
    /// The metric's name and target, as the spec's type gives them.
    pub fn named(&self) -> Option<(&str, &Target)> {
        match self.kind {
            SourceKind::Resource => self.resource.as_ref().map(|r| (r.name.as_str(), &r.target)),
            SourceKind::Pods => self.pods.as_ref().map(|p| (p.metric.name.as_str(), &p.target)),
            SourceKind::Object => self.object.as_ref().map(|o| (o.metric.name.as_str(), &o.target)),
        }
    }

    pub fn metric_name(&self) -> Option<&str> {
        self.named().map(|n| n.0)
    }

    pub fn target(&self) -> Option<&Target> {
        self.named().map(|n| n.1)
    }

    /// The metric this spec names when it is well formed; the faults
    /// found go to `out`.
    fn validate(&self, field: &str, out: &mut Vec<PolicyError>) -> Option<Metric> {
        let given = [
            (SourceKind::Resource, "resource", self.resource.is_some()),
            (SourceKind::Pods, "pods", self.pods.is_some()),
            (SourceKind::Object, "object", self.object.is_some()),
        ];
        for (kind, key, present) in given {
            if present != (kind == self.kind) {
                let why = if present { "given, but the type is another" } else { "missing for this type" };
                wrong(out, format!("{field}.{key}"), why);
            }
        }
        let (name, target) = self.named()?;
        let key = match self.kind {
            SourceKind::Resource => "resource",
            SourceKind::Pods => "pods",
            SourceKind::Object => "object",
        };
        let name_field = match self.kind {
            SourceKind::Resource => format!("{field}.resource.name"),
            _ => format!("{field}.{key}.metric.name"),
        };
        let Some(metric) = Metric::parse(name) else {
            let known: Vec<&str> = Metric::ALL.iter().filter(|m| m.source() == self.kind).map(|m| m.name()).collect();
            wrong(
                out,
                name_field,
                format!("unknown metric '{name}' for type {:?}; known: {}", self.kind, known.join(", ")),
            );
            return None;
        };
        if metric.source() != self.kind {
            wrong(out, name_field, format!("{metric} is a metric of type {:?}, not {:?}", metric.source(), self.kind));
            return None;
        }
        target.validate(&format!("{field}.{key}.target"), self.kind, out);
        Some(metric)
    }
}

impl Target {
    fn validate(&self, field: &str, source: SourceKind, out: &mut Vec<PolicyError>) {
        let allowed = match source {
            SourceKind::Resource => [TargetKind::Utilization, TargetKind::AverageValue].as_slice(),
            SourceKind::Pods => &[TargetKind::AverageValue],
            SourceKind::Object => &[TargetKind::Value, TargetKind::AverageValue],
        };
        if !allowed.contains(&self.kind) {
            wrong(out, format!("{field}.type"), format!("{:?} targets take {allowed:?}, not {:?}", source, self.kind));
            return;
        }
        let positive = |v: Option<f64>, key: &str, out: &mut Vec<PolicyError>| match v {
            None => wrong(out, format!("{field}.{key}"), "missing for this type"),
            Some(v) if !(v.is_finite() && v > 0.0) => {
                wrong(out, format!("{field}.{key}"), format!("must be greater than 0, got {v}"))
            }
            Some(_) => {}
        };
        match self.kind {
            TargetKind::Utilization => match self.average_utilization {
                None => wrong(out, format!("{field}.averageUtilization"), "missing for this type"),
                Some(0) => wrong(out, format!("{field}.averageUtilization"), "must be greater than 0"),
                Some(_) => {}
            },
            TargetKind::AverageValue => positive(self.average_value, "averageValue", out),
            TargetKind::Value => positive(self.value, "value", out),
        }
    }

    /// The target figure, whichever way it is given.
    pub fn figure(&self) -> f64 {
        match self.kind {
            TargetKind::Utilization => f64::from(self.average_utilization.unwrap_or(0)),
            TargetKind::AverageValue => self.average_value.unwrap_or(0.0),
            TargetKind::Value => self.value.unwrap_or(0.0),
        }
    }
}

impl ScalingRules {
    fn validate(&self, field: &str, out: &mut Vec<PolicyError>) {
        if let Some(w) = self.stabilization_window_seconds.filter(|w| *w > MAX_WINDOW_SECONDS) {
            wrong(
                out,
                format!("{field}.stabilizationWindowSeconds"),
                format!("must be at most {MAX_WINDOW_SECONDS} (an hour), got {w}"),
            );
        }
        for (i, p) in self.policies.iter().enumerate() {
            let at = format!("{field}.policies[{i}]");
            if p.value == 0 {
                wrong(out, format!("{at}.value"), "must be greater than 0");
            }
            if p.period_seconds == 0 || p.period_seconds > MAX_PERIOD_SECONDS {
                wrong(
                    out,
                    format!("{at}.periodSeconds"),
                    format!("must be between 1 and {MAX_PERIOD_SECONDS}, got {}", p.period_seconds),
                );
            }
        }
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
