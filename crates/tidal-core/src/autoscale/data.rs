//! What a stateful store adds to the HPA's arithmetic, which only counts
//! pods: how many PRGs each tenant needs for its load, how many nodes the
//! replicas and the data need, and when a scale-down must wait.
//!
//! - PRGs per tenant: `P' = ceil(total load / target per PRG)`, for each
//!   figure the tenant's target gives (operations a second, bytes), the
//!   largest, never fewer than one;
//! - nodes for the replicas: every PRG has 3 replicas on distinct nodes,
//!   so `ceil(PRGs × 3 / most replicas per node)`, never fewer than 3;
//! - nodes for the data: `ceil(bytes × 3 / (memory per node × fill))`;
//! - cooldowns, as the Kubernetes cluster autoscaler's
//!   `scale-down-delay-after-add`, `-after-delete` and `-after-failure`:
//!   no scale-down that soon after a scale-up, a removal or a failed
//!   operation.

use serde::{Deserialize, Serialize};

use super::policy::PrgTarget;
use crate::placement::REPLICAS;

/// A tenant's load now: what its PRGs' leaders report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantLoad {
    /// Operations a second, over all its PRGs.
    pub ops: f64,
    /// Bytes stored (one replica's worth).
    pub bytes: u64,
    /// PRGs it has now.
    pub prgs: u32,
}

/// The PRGs a tenant needs, and which figure asked for the most.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrgAsk {
    pub prgs: u32,
    /// `ops`, `bytes`, or `none` when no target gave more than one PRG.
    pub by: String,
    /// The arithmetic, for the decision's record.
    pub why: String,
}

/// `ceil(total / per)`, at least 1; 0 for an unusable target.
fn per(total: f64, per: f64) -> u32 {
    if !(per.is_finite() && per > 0.0 && total.is_finite()) {
        return 0;
    }
    (total / per).ceil().clamp(1.0, f64::from(u32::MAX)) as u32
}

/// The PRGs `load` needs at `target` per PRG.
pub fn prgs_for(load: &TenantLoad, target: &PrgTarget) -> PrgAsk {
    let mut ask = PrgAsk { prgs: 1, by: "none".into(), why: "no target asks for more than 1 PRG".into() };
    let figures = [("ops", load.ops, target.ops), ("bytes", load.bytes as f64, target.bytes)];
    let mut parts = Vec::new();
    for (name, total, target) in figures {
        let Some(target) = target else { continue };
        let prgs = per(total, target);
        parts.push(format!("{name}: ceil({total} / {target}) = {prgs}"));
        if prgs > ask.prgs {
            ask.prgs = prgs;
            ask.by = name.to_string();
        }
    }
    if !parts.is_empty() {
        ask.why = parts.join("; ");
    }
    ask
}

/// The tenant's load over what its PRGs carry at the target, for the
/// figure that is furthest past it; `None` when no target applies.
pub fn usage_ratio(load: &TenantLoad, target: &PrgTarget) -> Option<f64> {
    let per_prg = f64::from(load.prgs.max(1));
    [(load.ops, target.ops), (load.bytes as f64, target.bytes)]
        .into_iter()
        .filter_map(|(total, t)| t.filter(|t| *t > 0.0).map(|t| total / (per_prg * t)))
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))))
}

/// Nodes enough for `prgs` PRGs of 3 replicas each with at most
/// `max_per_node` replicas on a node; never fewer than 3.
pub fn nodes_for_replicas(prgs: u32, max_per_node: u32) -> u32 {
    let replicas = u64::from(prgs) * REPLICAS as u64;
    let nodes = replicas.div_ceil(u64::from(max_per_node.max(1)));
    nodes.clamp(REPLICAS as u64, u64::from(u32::MAX)) as u32
}

/// Nodes enough for `bytes` of data (3 replicas of it) when each node has
/// `memory` bytes and may fill `fill` of them (0–1); never fewer than 3.
pub fn nodes_for_data(bytes: u64, memory: u64, fill: f64) -> u32 {
    let room = memory as f64 * fill.clamp(0.0, 1.0);
    if room <= 0.0 {
        return REPLICAS as u32;
    }
    let nodes = (bytes as f64 * REPLICAS as f64 / room).ceil();
    nodes.clamp(REPLICAS as f64, f64::from(u32::MAX)) as u32
}

/// How long a scale-down waits after other changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cooldowns {
    /// After a scale-up finished (the cluster autoscaler waits 10 minutes).
    #[serde(default = "after_add")]
    pub after_scale_up_seconds: u32,
    /// After a scale-down or a node removal finished.
    #[serde(default = "after_delete")]
    pub after_scale_down_seconds: u32,
    /// After an operation failed or rolled back (3 minutes).
    #[serde(default = "after_failure")]
    pub after_failure_seconds: u32,
}

fn after_add() -> u32 {
    600
}
fn after_delete() -> u32 {
    300
}
fn after_failure() -> u32 {
    180
}

impl Default for Cooldowns {
    fn default() -> Self {
        Cooldowns {
            after_scale_up_seconds: after_add(),
            after_scale_down_seconds: after_delete(),
            after_failure_seconds: after_failure(),
        }
    }
}

/// When the cluster last changed, as the control plane's journal says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastChanges {
    pub scale_up_ms: Option<u64>,
    pub scale_down_ms: Option<u64>,
    pub failure_ms: Option<u64>,
}

impl Cooldowns {
    /// Why a scale-down must wait at `now_ms`, if it must: the cooldown
    /// that holds it longest, and until when.
    pub fn holds_scale_down(&self, now_ms: u64, last: &LastChanges) -> Option<(String, u64)> {
        let waits = [
            ("a scale-up", last.scale_up_ms, self.after_scale_up_seconds),
            ("a scale-down", last.scale_down_ms, self.after_scale_down_seconds),
            ("a failed operation", last.failure_ms, self.after_failure_seconds),
        ];
        waits
            .into_iter()
            .filter_map(|(what, at, secs)| {
                let until = at? + u64::from(secs) * 1000;
                (until > now_ms).then(|| (format!("{secs} s cooldown after {what}"), until))
            })
            .max_by_key(|(_, until)| *until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prgs_follow_the_largest_ask() {
        let load = TenantLoad { ops: 23_000.0, bytes: 9 << 30, prgs: 4 };
        let target = PrgTarget { ops: Some(5_000.0), bytes: Some((4u64 << 30) as f64) };
        let ask = prgs_for(&load, &target);
        // ops: ceil(4.6) = 5; bytes: ceil(2.25) = 3.
        assert_eq!((ask.prgs, ask.by.as_str()), (5, "ops"));
        assert!(ask.why.contains("= 5") && ask.why.contains("= 3"), "{}", ask.why);
        // Idle: still one PRG.
        let idle = prgs_for(&TenantLoad::default(), &target);
        assert_eq!((idle.prgs, idle.by.as_str()), (1, "none"));
        // Only bytes given.
        let bytes_only = PrgTarget { ops: None, bytes: Some(1e9) };
        assert_eq!(prgs_for(&TenantLoad { bytes: 3_500_000_000, ..load }, &bytes_only).prgs, 4);
    }

    #[test]
    fn nodes_for_replicas_and_data() {
        // 8 PRGs × 3 replicas, at most 5 a node: ceil(24 / 5) = 5.
        assert_eq!(nodes_for_replicas(8, 5), 5);
        assert_eq!(nodes_for_replicas(1, 100), 3);
        // 100 GiB × 3 on 64 GiB nodes filled to 75 %: ceil(300 / 48) = 7.
        assert_eq!(nodes_for_data(100 << 30, 64 << 30, 0.75), 7);
        assert_eq!(nodes_for_data(0, 64 << 30, 0.75), 3);
        assert_eq!(nodes_for_data(1 << 30, 0, 0.75), 3);
    }

    #[test]
    fn a_scale_down_waits_out_the_longest_cooldown() {
        let c = Cooldowns::default();
        let now = 10_000_000;
        assert_eq!(c.holds_scale_down(now, &LastChanges::default()), None);
        let last = LastChanges { scale_up_ms: Some(now - 60_000), scale_down_ms: None, failure_ms: Some(now - 10_000) };
        // 600 s after the scale-up outlasts 180 s after the failure.
        let (why, until) = c.holds_scale_down(now, &last).unwrap();
        assert_eq!((why.as_str(), until), ("600 s cooldown after a scale-up", now + 540_000));
        assert_eq!(c.holds_scale_down(now + 540_000, &last), None);
    }
}
