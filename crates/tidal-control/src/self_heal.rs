//! Self-healing: when a node has been unreachable for longer than the
//! configured delay (`--self-heal-delay-ms`, 5 minutes by default), the
//! control-plane leader re-creates its replicas on other nodes from the
//! surviving ones, so every PRG is back to 3 voters. It runs as an
//! operation of kind `heal`: the node is marked Draining (nothing is placed
//! on it, and the health gates stop waiting for it) and each of its
//! replicas moves to another node, learner first, then swapped in for the
//! lost voter, which the two survivors of each PRG can commit. Each step
//! is gated on health and within the disruption budget.
//!
//! Healing never removes the node from the cluster: when it returns it
//! finds its replicas placed elsewhere and purges them, and it stays
//! Draining, serving as a router, until an operator makes it Active again
//! (`tidal drain NODE --cancel`) or removes it.

use std::collections::BTreeMap;

use tidal_core::health::NodeHealth;
use tidal_core::planner::scale::Sizes;
use tidal_core::{ClusterState, NodeId, NodeState};

use crate::api::NodeReport;

/// The kind of the operations that heal a lost node.
pub const HEAL: &str = "heal";

/// When and how to heal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealConfig {
    /// How long a node may go unheard before its replicas are re-created
    /// elsewhere; 0 never heals.
    pub delay_ms: u64,
    pub budget: tidal_core::operation::Budget,
    pub gate_timeout_ms: u64,
}

/// The Active nodes hosting replicas that the leader has not heard from
/// for longer than `delay_ms` while leading: their last report is older
/// (`health`'s ages) and this leader has led that long (a report taken in
/// an earlier term, before another node led, says nothing of the time
/// between). Oldest silence first.
pub fn lost_nodes(
    state: &ClusterState,
    health: &BTreeMap<NodeId, NodeHealth>,
    led_for_ms: u64,
    delay_ms: u64,
) -> Vec<NodeId> {
    if delay_ms == 0 {
        return Vec::new();
    }
    let mut lost: Vec<(u64, NodeId)> = state
        .nodes
        .values()
        .filter(|n| n.state == NodeState::Active && state.placements_hosted_on(n.id).next().is_some())
        .filter_map(|n| {
            let silent = health.get(&n.id).map_or(led_for_ms, |h| h.age_ms.min(led_for_ms));
            (silent > delay_ms).then_some((silent, n.id))
        })
        .collect();
    lost.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    lost.into_iter().map(|(_, n)| n).collect()
}

/// Sizes for a heal plan: each PRG's bytes as its leader last reported.
pub fn report_sizes(reports: &BTreeMap<NodeId, NodeReport>) -> Sizes {
    let prg_bytes = reports.values().flat_map(|r| r.prg_bytes.iter()).map(|(p, b)| (p.clone(), *b)).collect();
    Sizes { prg_bytes, slot_bytes: BTreeMap::new(), rate: 20 << 20, step_ms: 1000 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::ops::tests::node;
    use crate::command::{apply, CpCommand};

    fn state() -> ClusterState {
        let mut s = ClusterState::default();
        for id in 1..=5 {
            apply(&mut s, 0, &CpCommand::RegisterNode(node(id)));
        }
        apply(&mut s, 0, &CpCommand::CreateTenant { name: "t".into(), slots: 16, prgs: 5 });
        s
    }

    /// A node last heard `ago_ms` ago.
    fn heard(ago_ms: u64) -> NodeHealth {
        NodeHealth { ready: true, reasons: Vec::new(), age_ms: ago_ms }
    }

    #[test]
    fn nodes_silent_past_the_delay_are_lost_oldest_first() {
        let s = state();
        let mut health: BTreeMap<NodeId, NodeHealth> = (1..=5).map(|n| (n, heard(500))).collect();
        assert!(lost_nodes(&s, &health, 1_000_000, 10_000).is_empty());
        health.insert(4, heard(50_000));
        health.insert(2, heard(20_000));
        // 50 s and 20 s silent, over a 10 s delay.
        assert_eq!(lost_nodes(&s, &health, 1_000_000, 10_000), vec![4, 2]);
        assert_eq!(lost_nodes(&s, &health, 1_000_000, 30_000), vec![4]);
        // Healing off.
        assert!(lost_nodes(&s, &health, 1_000_000, 0).is_empty());
        // Never heard of: lost only once this leader has led past the delay.
        health.remove(&3);
        assert!(lost_nodes(&s, &health, 5_000, 30_000).is_empty());
        assert_eq!(lost_nodes(&s, &health, 60_000, 30_000), vec![3, 4]);
        // A report from an earlier term: silent only as long as this
        // leader has led (4's 50 s count as 40 s, then as 8 s).
        assert_eq!(lost_nodes(&s, &health, 40_000, 30_000), vec![3, 4]);
        assert!(lost_nodes(&s, &health, 8_000, 10_000).is_empty());
        // A draining node is not healed.
        let mut s = s;
        s.nodes.get_mut(&4).unwrap().state = NodeState::Draining;
        assert_eq!(lost_nodes(&s, &health, 60_000, 30_000), vec![3]);
        s.nodes.get_mut(&3).unwrap().state = NodeState::Draining;
        assert!(lost_nodes(&s, &health, 60_000, 30_000).is_empty());
    }
}
