//! The HPA's arithmetic, rule for rule, with nodes for pods.
//!
//! Two halves, as in the HPA's controller:
//! - **per metric** ([`resource_nodes`], [`average_nodes`],
//!   [`object_nodes`], [`object_average_nodes`]): how many nodes would put
//!   the metric at its target: `ceil(current × usage / target)`, nothing
//!   within the tolerance, with missing and not-yet-ready nodes counted
//!   the way that moves the result least;
//! - **over time** ([`Recommender::normalize`]): the largest of the
//!   metrics' asks, stabilized over the windows (scaling up goes only as
//!   far as every recommendation in the up window agrees, down only as far
//!   as every one in the down window does), limited by the scaling
//!   policies over their periods (`selectPolicy` picks which limits), and
//!   held within the minimum and maximum.
//!
//! Usage and capacity are integers (milli-units, as the HPA's quantities),
//! and where the HPA rounds an intermediate figure, this rounds it alike.

use serde::{Deserialize, Serialize};

use super::policy::{Policy, ScalingPolicyKind, ScalingRules, SelectPolicy};

/// How a node counts for a metric, as the HPA groups its pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Readiness {
    /// Serving, and counted with its usage.
    Ready,
    /// Started, not serving yet: left out, and counted as idle when the
    /// metric asks to scale up (for CPU, whose start-up burns cycles;
    /// other metrics count such a node as ready).
    NotReady,
    /// Still starting (the HPA's Pending): left out, and idle on a scale-up,
    /// for every metric.
    Pending,
    /// Leaving (draining, failed): left out altogether.
    Gone,
}

/// One node's figure for a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSample {
    pub readiness: Readiness,
    /// The metric's value on the node; `None` when it has not reported one.
    pub usage: Option<i64>,
    /// For a utilization: what usage is a percentage of (cores, bytes).
    pub capacity: i64,
}

/// Why a metric gives no recommendation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    #[error("no node reported this metric (nodes might be unready)")]
    NoMetrics,
    #[error("the nodes reporting it have no capacity for it")]
    NoCapacity,
}

/// What a metric asks for, and the figures it was computed from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricAsk {
    pub nodes: u32,
    /// The metric now: a utilization in percent, or an average or total.
    pub current: i64,
}

/// Whether a sample counts as unready for this metric.
fn unready(s: &NodeSample, cpu: bool) -> bool {
    s.readiness == Readiness::Pending || (cpu && s.readiness == Readiness::NotReady && s.usage.is_some())
}

/// The nodes' samples grouped as the HPA groups pods: ready ones with a
/// figure, unready ones, and ones with no figure; leaving ones dropped.
struct Groups {
    /// (usage, capacity) of the nodes counted now.
    counted: Vec<(i64, i64)>,
    ready: usize,
    unready: Vec<i64>,
    missing: Vec<i64>,
}

fn group(samples: &[NodeSample], cpu: bool) -> Groups {
    let mut g = Groups { counted: Vec::new(), ready: 0, unready: Vec::new(), missing: Vec::new() };
    for s in samples {
        if s.readiness == Readiness::Gone {
            continue;
        }
        if unready(s, cpu) {
            g.unready.push(s.capacity);
            continue;
        }
        match s.usage {
            None => g.missing.push(s.capacity),
            Some(u) => {
                g.counted.push((u, s.capacity));
                g.ready += 1;
            }
        }
    }
    g
}

/// `(usage ratio, utilization %)` over `counted`: the utilization rounded
/// down to a whole percent before the ratio is taken, as the HPA does.
fn utilization_ratio(counted: &[(i64, i64)], target: i64) -> Result<(f64, i64), MetricError> {
    let (usage, capacity) = counted.iter().fold((0i64, 0i64), |(u, c), (du, dc)| (u + du, c + dc));
    if capacity == 0 {
        return Err(MetricError::NoCapacity);
    }
    let utilization = usage * 100 / capacity;
    Ok((utilization as f64 / target as f64, utilization))
}

/// `(usage ratio, average)` over `counted`, the average rounded down.
fn average_ratio(counted: &[(i64, i64)], target: i64) -> (f64, i64) {
    let total: i64 = counted.iter().map(|(u, _)| u).sum();
    let average = total / counted.len() as i64;
    (average as f64 / target as f64, average)
}

fn within(ratio: f64, tolerance: f64) -> bool {
    (1.0 - ratio).abs() <= tolerance
}

/// The HPA's calculation for per-node figures: `ratio_of` gives the usage
/// ratio and the metric now over a set of `(usage, capacity)`. The first
/// pass counts the ready nodes that reported; when nodes are missing, or
/// unready ones on the way up, a second pass gives them the figures that
/// move the result least (`missing_down` of its capacity for a node that
/// said nothing on the way down, idle otherwise) and keeps the count where
/// it is if that turns the direction around.
fn per_node(
    current: u32,
    samples: &[NodeSample],
    cpu: bool,
    tolerance: f64,
    ratio_of: impl Fn(&[(i64, i64)]) -> Result<(f64, i64), MetricError>,
    missing_down: impl Fn(i64) -> i64,
) -> Result<MetricAsk, MetricError> {
    let g = group(samples, cpu);
    if g.counted.is_empty() {
        return Err(MetricError::NoMetrics);
    }
    let (ratio, figure) = ratio_of(&g.counted)?;
    let up_with_unready = !g.unready.is_empty() && ratio > 1.0;
    if !up_with_unready && g.missing.is_empty() {
        let nodes = if within(ratio, tolerance) { current } else { (ratio * g.ready as f64).ceil() as u32 };
        return Ok(MetricAsk { nodes, current: figure });
    }
    let mut counted = g.counted;
    if ratio < 1.0 {
        // Scaling down: a node that said nothing is taken as busy.
        counted.extend(g.missing.iter().map(|&c| (missing_down(c), c)));
    } else if ratio > 1.0 {
        // Scaling up: as idle.
        counted.extend(g.missing.iter().map(|&c| (0, c)));
    }
    if up_with_unready {
        counted.extend(g.unready.iter().map(|&c| (0, c)));
    }
    let (new_ratio, _) = ratio_of(&counted)?;
    // Too small a change, or one the other way: stay.
    if within(new_ratio, tolerance) || (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0) {
        return Ok(MetricAsk { nodes: current, current: figure });
    }
    let nodes = (new_ratio * counted.len() as f64).ceil() as u32;
    if (new_ratio < 1.0 && nodes > current) || (new_ratio > 1.0 && nodes < current) {
        return Ok(MetricAsk { nodes: current, current: figure });
    }
    Ok(MetricAsk { nodes, current: figure })
}

/// Nodes for a utilization target (`Resource` with `averageUtilization`):
/// `samples` carry usage and capacity; `cpu` applies the HPA's CPU rule
/// for nodes that report but are not ready.
pub fn resource_nodes(
    current: u32,
    samples: &[NodeSample],
    target_utilization: u32,
    tolerance: f64,
    cpu: bool,
) -> Result<MetricAsk, MetricError> {
    let target = i64::from(target_utilization);
    // A missing node on the way down: at 100 % of its capacity, or at the
    // target when that is higher.
    let fallback = target.max(100);
    per_node(
        current,
        samples,
        cpu,
        tolerance,
        |counted| utilization_ratio(counted, target),
        |capacity| capacity * fallback / 100,
    )
}

/// Nodes for a per-node average target (`Pods`, or `Resource` with
/// `averageValue`): a missing node on the way down counts at the target.
pub fn average_nodes(
    current: u32,
    samples: &[NodeSample],
    target_average: i64,
    tolerance: f64,
    cpu: bool,
) -> Result<MetricAsk, MetricError> {
    per_node(current, samples, cpu, tolerance, |counted| Ok(average_ratio(counted, target_average)), |_| target_average)
}

/// Nodes for a cluster-wide value (`Object` with `value`): `ready` is how
/// many nodes serve now. With none, the value alone decides.
pub fn object_nodes(current: u32, ready: u32, usage: i64, target: i64, tolerance: f64) -> MetricAsk {
    let ratio = usage as f64 / target as f64;
    let nodes = if current == 0 {
        ratio.ceil() as u32
    } else if within(ratio, tolerance) {
        current
    } else {
        (ratio * f64::from(ready)).ceil() as u32
    };
    MetricAsk { nodes, current: usage }
}

/// Nodes for a cluster-wide figure held at an average per node (`Object`
/// with `averageValue`): `current` nodes carry `usage` between them.
pub fn object_average_nodes(current: u32, usage: i64, target_average: i64, tolerance: f64) -> MetricAsk {
    let ratio = usage as f64 / (target_average as f64 * f64::from(current));
    let nodes = if within(ratio, tolerance) { current } else { (usage as f64 / target_average as f64).ceil() as u32 };
    let average = (usage as f64 / f64::from(current.max(1))).ceil() as i64;
    MetricAsk { nodes, current: average }
}

/// A recommendation made at some instant, before stabilization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub at_ms: u64,
    pub nodes: u32,
}

/// A change of the node count, carried out at `at_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleEvent {
    pub at_ms: u64,
    pub change: u32,
    /// Past the longest policy period: its slot may be reused.
    pub outdated: bool,
}

/// Why the recommendation is what it is, in the HPA's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// The metrics' ask, unchanged.
    DesiredWithinRange,
    /// Held back by the stabilization window.
    ScaleUpStabilized,
    ScaleDownStabilized,
    /// Held back by a scaling policy's rate.
    ScaleUpLimit,
    ScaleDownLimit,
    /// Held at the maximum or the minimum.
    TooManyReplicas,
    TooFewReplicas,
}

/// A recommended node count, and what made it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// What the metrics asked for (the largest of their asks).
    pub asked: u32,
    /// After the stabilization windows.
    pub stabilized: u32,
    /// After the scaling policies, the minimum and the maximum: the count
    /// to scale to.
    pub nodes: u32,
    pub stabilization: Reason,
    pub reason: Reason,
}

/// The stabilization windows over `records` (see
/// [`Recommender::stabilize`]), recording `desired`.
fn stabilize_in(
    records: &mut Vec<Recorded>,
    now_ms: u64,
    current: u32,
    desired: u32,
    up: &ScalingRules,
    down: &ScalingRules,
) -> (u32, Reason) {
    let (up_window, down_window) = (up.window_ms(), down.window_ms());
    let (mut up_rec, mut down_rec) = (desired, desired);
    let mut old = None;
    for (i, r) in records.iter().enumerate() {
        // Strictly after the cutoff (now − window), as the HPA compares.
        if r.at_ms + up_window > now_ms {
            up_rec = up_rec.min(r.nodes);
        }
        if r.at_ms + down_window > now_ms {
            down_rec = down_rec.max(r.nodes);
        }
        if r.at_ms + up_window < now_ms && r.at_ms + down_window < now_ms {
            old = Some(i);
        }
    }
    let stabilized = current.max(up_rec).min(down_rec);
    let record = Recorded { at_ms: now_ms, nodes: desired };
    match old {
        Some(i) => records[i] = record,
        None => records.push(record),
    }
    let reason = if stabilized == desired {
        Reason::DesiredWithinRange
    } else if stabilized < desired {
        Reason::ScaleUpStabilized
    } else {
        Reason::ScaleDownStabilized
    };
    (stabilized, reason)
}

/// The history the HPA keeps per target: past recommendations and scale
/// events. It is plain data, so the control plane can keep it across
/// leader changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommender {
    pub recommendations: Vec<Recorded>,
    pub scale_ups: Vec<ScaleEvent>,
    pub scale_downs: Vec<ScaleEvent>,
    /// Each tenant's past PRG asks, for the same windows.
    pub prgs: std::collections::BTreeMap<String, Vec<Recorded>>,
}

impl Recommender {
    /// The node count to scale to from `current` when the metrics ask for
    /// `asked`, at `now_ms`, under `policy`: stabilized, rate-limited and
    /// within bounds. Records `asked` for later windows. With no history
    /// at all, the first call first records `current` as of now, so that a
    /// fresh recommender (a new control-plane leader, a restart) does not
    /// scale down before a whole down window has passed.
    pub fn normalize(&mut self, now_ms: u64, policy: &Policy, current: u32, asked: u32) -> Recommendation {
        // Outside the bounds (the policy changed): straight back within
        // them, as the HPA does, with nothing recorded.
        if current > policy.max_nodes || current < policy.min_nodes {
            let (nodes, reason) = if current > policy.max_nodes {
                (policy.max_nodes, Reason::TooManyReplicas)
            } else {
                (policy.min_nodes, Reason::TooFewReplicas)
            };
            return Recommendation {
                asked,
                stabilized: current,
                nodes,
                stabilization: Reason::DesiredWithinRange,
                reason,
            };
        }
        if self.recommendations.is_empty() {
            self.recommendations.push(Recorded { at_ms: now_ms, nodes: current });
        }
        let (up, down) = (policy.behavior.up(), policy.behavior.down());
        let (stabilized, stabilization) = self.stabilize(now_ms, current, asked, &up, &down);
        let bounds = (policy.min_nodes, policy.max_nodes);
        let (nodes, reason) =
            limit(now_ms, current, stabilized, bounds, &up, &down, &self.scale_ups, &self.scale_downs);
        Recommendation { asked, stabilized, nodes, stabilization, reason }
    }

    /// The stabilization windows: up no further than the least recommended
    /// within the up window, down no further than the most recommended
    /// within the down window. Records `desired`, reusing the slot of a
    /// recommendation past both windows.
    pub fn stabilize(
        &mut self,
        now_ms: u64,
        current: u32,
        desired: u32,
        up: &ScalingRules,
        down: &ScalingRules,
    ) -> (u32, Reason) {
        stabilize_in(&mut self.recommendations, now_ms, current, desired, up, down)
    }

    /// [`Self::stabilize`] for a tenant's PRG count: the same windows over
    /// its own asks.
    pub fn stabilize_prgs(
        &mut self,
        tenant: &str,
        now_ms: u64,
        current: u32,
        desired: u32,
        policy: &Policy,
    ) -> (u32, Reason) {
        let records = self.prgs.entry(tenant.to_string()).or_default();
        if records.is_empty() {
            records.push(Recorded { at_ms: now_ms, nodes: current });
        }
        stabilize_in(records, now_ms, current, desired, &policy.behavior.up(), &policy.behavior.down())
    }

    /// Record a change from `from` to `to` nodes carried out at `now_ms`,
    /// reusing the slot of the last event older than every policy's period
    /// that way.
    pub fn record_scale(&mut self, now_ms: u64, policy: &Policy, from: u32, to: u32) {
        let (up, down) = (policy.behavior.up(), policy.behavior.down());
        let longest =
            |r: &ScalingRules| r.policies.iter().map(|p| u64::from(p.period_seconds) * 1000).max().unwrap_or(0);
        let (events, change, period) = match to.cmp(&from) {
            std::cmp::Ordering::Greater => (&mut self.scale_ups, to - from, longest(&up)),
            std::cmp::Ordering::Less => (&mut self.scale_downs, from - to, longest(&down)),
            std::cmp::Ordering::Equal => return,
        };
        for e in events.iter_mut() {
            if e.at_ms + period < now_ms {
                e.outdated = true;
            }
        }
        let event = ScaleEvent { at_ms: now_ms, change, outdated: false };
        match events.iter_mut().rev().find(|e| e.outdated) {
            Some(slot) => *slot = event,
            None => events.push(event),
        }
    }
}

/// `desired` (stabilized) within the scaling policies' rates and the
/// `(min, max)` bounds, going from `current`; `ups` and `downs` are the
/// changes carried out lately.
#[allow(clippy::too_many_arguments)]
pub fn limit(
    now_ms: u64,
    current: u32,
    desired: u32,
    (min, max): (u32, u32),
    up: &ScalingRules,
    down: &ScalingRules,
    ups: &[ScaleEvent],
    downs: &[ScaleEvent],
) -> (u32, Reason) {
    let current_i = i64::from(current);
    if desired > current {
        let limit = scale_up_limit(now_ms, current_i, ups, downs, up).max(current_i);
        let (allowed, why) = if i64::from(max) > limit {
            (limit, Reason::ScaleUpLimit)
        } else {
            (i64::from(max), Reason::TooManyReplicas)
        };
        if i64::from(desired) > allowed {
            return (allowed as u32, why);
        }
    } else if desired < current {
        let limit = scale_down_limit(now_ms, current_i, ups, downs, down).min(current_i);
        let (allowed, why) = if i64::from(min) < limit {
            (limit, Reason::ScaleDownLimit)
        } else {
            (i64::from(min), Reason::TooFewReplicas)
        };
        if i64::from(desired) < allowed {
            return (allowed as u32, why);
        }
    }
    (desired, Reason::DesiredWithinRange)
}

/// Nodes added (or removed) by `events` within the last `period_s` seconds.
fn changed_within(now_ms: u64, period_s: u32, events: &[ScaleEvent]) -> i64 {
    let period = u64::from(period_s) * 1000;
    events.iter().filter(|e| e.at_ms + period > now_ms).map(|e| i64::from(e.change)).sum()
}

/// The most nodes the scale-up policies allow now, from `current`:
/// each policy counts from the node count at the start of its period.
pub fn scale_up_limit(
    now_ms: u64,
    current: i64,
    ups: &[ScaleEvent],
    downs: &[ScaleEvent],
    rules: &ScalingRules,
) -> i64 {
    rate_limit(now_ms, current, ups, downs, rules, true)
}

/// The fewest nodes the scale-down policies allow now, from `current`.
pub fn scale_down_limit(
    now_ms: u64,
    current: i64,
    ups: &[ScaleEvent],
    downs: &[ScaleEvent],
    rules: &ScalingRules,
) -> i64 {
    rate_limit(now_ms, current, ups, downs, rules, false)
}

/// Each policy's limit one way (`up` or down) from the node count at the
/// start of its period, and the one `selectPolicy` picks: Max the largest
/// change (the highest ceiling up, the lowest floor down), Min the smallest.
fn rate_limit(
    now_ms: u64,
    current: i64,
    ups: &[ScaleEvent],
    downs: &[ScaleEvent],
    rules: &ScalingRules,
    up: bool,
) -> i64 {
    let largest_change = match rules.select() {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Max => true,
        SelectPolicy::Min => false,
    };
    let limits = rules.policies.iter().map(|p| {
        let start =
            current - changed_within(now_ms, p.period_seconds, ups) + changed_within(now_ms, p.period_seconds, downs);
        let (value, share) = (i64::from(p.value), f64::from(p.value) / 100.0);
        match (p.kind, up) {
            (ScalingPolicyKind::Pods, true) => start + value,
            (ScalingPolicyKind::Pods, false) => start - value,
            // Rounded up, so that a percentage of a few nodes still adds one.
            (ScalingPolicyKind::Percent, true) => (start as f64 * (1.0 + share)).ceil() as i64,
            // Truncated, as the HPA converts.
            (ScalingPolicyKind::Percent, false) => (start as f64 * (1.0 - share)) as i64,
        }
    });
    // With no policy, as the HPA: the extreme it starts its search from.
    if largest_change == up {
        limits.max().unwrap_or(i64::MIN)
    } else {
        limits.min().unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
#[path = "hpa_tests.rs"]
mod tests;
