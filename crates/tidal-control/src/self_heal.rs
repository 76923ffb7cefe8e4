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

/// The Active nodes hosting replicas, or voting in the control plane
/// while another node could take the vote, that the leader has not heard
/// from for longer than `delay_ms` while leading: their last report is
/// older (`health`'s ages) and this leader has led that long (a report
/// taken in an earlier term, before another node led, says nothing of the
/// time between). Oldest silence first. Healing a voter that hosts
/// nothing only marks it Draining, which moves its vote.
pub fn lost_nodes(
    state: &ClusterState,
    health: &BTreeMap<NodeId, NodeHealth>,
    led_for_ms: u64,
    delay_ms: u64,
) -> Vec<NodeId> {
    if delay_ms == 0 {
        return Vec::new();
    }
    let silent = |n: NodeId| health.get(&n).map_or(led_for_ms, |h| h.age_ms.min(led_for_ms));
    let voter = |n: NodeId| state.cp_members.contains(&n);
    // An Active node, heard from lately, that does not vote yet.
    let spare = state.nodes.values().any(|m| m.state == NodeState::Active && !voter(m.id) && silent(m.id) <= delay_ms);
    let mut lost: Vec<(u64, NodeId)> = state
        .nodes
        .values()
        .filter(|n| n.state == NodeState::Active)
        .filter(|n| state.placements_hosted_on(n.id).next().is_some() || (voter(n.id) && spare))
        .filter_map(|n| {
            let silent = silent(n.id);
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

    #[test]
    fn a_silent_voter_that_hosts_nothing_is_lost_while_another_node_could_vote() {
        let mut s = state();
        apply(&mut s, 0, &CpCommand::RegisterNode(node(6)));
        assert!(s.placements_hosted_on(6).next().is_none());
        s.cp_members = vec![1, 2, 6];
        let mut health: BTreeMap<NodeId, NodeHealth> = (1..=6).map(|n| (n, heard(500))).collect();
        health.insert(6, heard(60_000));
        // Nodes 3 to 5 report and do not vote: 6's vote can move.
        assert_eq!(lost_nodes(&s, &health, 1_000_000, 30_000), vec![6]);
        // Every other node votes, or is silent too: healing 6 would move nothing.
        for n in 3..=5 {
            health.insert(n, heard(60_000));
        }
        assert_eq!(lost_nodes(&s, &health, 1_000_000, 30_000), vec![3, 4, 5]);
        s.cp_members = vec![1, 2, 3, 4, 5, 6];
        assert_eq!(lost_nodes(&s, &health, 1_000_000, 30_000), vec![3, 4, 5]);
        // A silent node that neither hosts nor votes is never lost.
        s.cp_members = vec![1, 2, 3];
        health.insert(3, heard(500));
        assert_eq!(lost_nodes(&s, &health, 1_000_000, 30_000), vec![4, 5]);
    }
}
