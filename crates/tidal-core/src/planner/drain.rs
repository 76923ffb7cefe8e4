//! A drain plan: every replica a node hosts moves to another node, and
//! nothing else moves. The node is taken as draining (it keeps nothing);
//! each of its replicas goes to the active node that does not host that
//! PRG, keeps the PRG's zones distinct when the active nodes span at least
//! three zones (preferring the drained replica's own zone), and holds the
//! fewest replicas counting those planned before it, then the lowest id.
//! A drain moves only what it must, unlike a rebalance: the other nodes'
//! replicas stay where they are.

use std::collections::{BTreeMap, BTreeSet};

use super::scale::{PlannedReplicaMove, ScalePlan, Sizes};
use super::{ReplicaStep, REPLICAS};
use crate::cluster::{ClusterState, NodeState};
use crate::ids::NodeId;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrainError {
    #[error("no node {0}")]
    UnknownNode(NodeId),
    #[error(
        "draining node {node} would leave {active} active nodes: every PRG needs {REPLICAS} voters on distinct \
         nodes; add a node first"
    )]
    NotEnoughNodes { node: NodeId, active: usize },
    #[error("no active node can take {prg}'s replica from node {node} (every one hosts it, or zones forbid it)")]
    NoTarget { prg: String, node: NodeId },
}

/// Plan moving every replica off `node`, against `state`.
pub fn plan_drain(state: &ClusterState, node: NodeId, sizes: &Sizes) -> Result<ScalePlan, DrainError> {
    let drained = state.nodes.get(&node).ok_or(DrainError::UnknownNode(node))?;
    let active: Vec<_> = state.nodes.values().filter(|n| n.id != node && n.state == NodeState::Active).collect();
    let hosted: Vec<_> = state.placements_hosted_on(node).collect();
    if !hosted.is_empty() && active.len() < REPLICAS {
        return Err(DrainError::NotEnoughNodes { node, active: active.len() });
    }
    let zones: BTreeSet<&str> = active.iter().map(|n| n.zone.as_str()).collect();
    let spread = zones.len() >= REPLICAS;
    let zone_of = |id: &NodeId| state.nodes.get(id).map(|n| n.zone.as_str());
    let mut load: BTreeMap<NodeId, usize> = active.iter().map(|n| (n.id, 0)).collect();
    for p in state.placements.values() {
        for m in p.members.iter().chain(&p.learners) {
            if let Some(c) = load.get_mut(m) {
                *c += 1;
            }
        }
    }
    let mut replica_moves = Vec::with_capacity(hosted.len());
    for p in hosted {
        let others: Vec<NodeId> = p.members.iter().chain(&p.learners).copied().filter(|m| *m != node).collect();
        let taken: BTreeSet<&str> = others.iter().filter_map(zone_of).collect();
        let to = active
            .iter()
            .filter(|n| !others.contains(&n.id))
            .filter(|n| !spread || !taken.contains(n.zone.as_str()))
            .min_by_key(|n| (n.zone != drained.zone, load[&n.id], n.id))
            .ok_or_else(|| DrainError::NoTarget { prg: p.prg.to_string(), node })?;
        *load.get_mut(&to.id).expect("active") += 1;
        let bytes = sizes.prg_bytes.get(&p.prg).copied().unwrap_or(0);
        replica_moves
            .push(PlannedReplicaMove { step: ReplicaStep { prg: p.prg.clone(), from: node, to: to.id }, bytes });
    }
    let total_bytes = replica_moves.iter().map(|m| m.bytes).sum::<u64>();
    let epoch_bumps = replica_moves.len() as u64;
    Ok(ScalePlan {
        version: state.version,
        add_nodes: Vec::new(),
        new_prgs: Vec::new(),
        replica_moves,
        slot_moves: Vec::new(),
        leader_changes: Vec::new(),
        total_bytes,
        epoch_bumps,
        eta_ms: total_bytes.saturating_mul(1000) / sizes.rate.max(1) + epoch_bumps * sizes.step_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{NodeInfo, Placement, Tenant};
    use crate::ids::PrgId;

    fn state(zones: &[&str], prgs: u32) -> ClusterState {
        let mut s = ClusterState { version: 7, ..ClusterState::default() };
        for (i, z) in zones.iter().enumerate() {
            let id = i as u64 + 1;
            let info = NodeInfo {
                id,
                peer_addr: String::new(),
                client_addr: String::new(),
                http_addr: String::new(),
                zone: z.to_string(),
                state: NodeState::Active,
            };
            s.nodes.insert(id, info);
        }
        let n = zones.len() as u64;
        s.tenants.insert("default".into(), Tenant::new("default", 64, prgs));
        for p in 0..prgs {
            let members = (0..3).map(|k| 1 + (u64::from(p) + k) % n).collect();
            let prg = PrgId::new("default", p);
            s.placements.insert(prg.clone(), Placement::new(prg, members, 1, Vec::new()));
        }
        s
    }

    fn sizes() -> Sizes {
        let prg_bytes = (0..8).map(|p| (PrgId::new("default", p), 10 << 20)).collect();
        Sizes { prg_bytes, slot_bytes: BTreeMap::new(), rate: 10 << 20, step_ms: 100 }
    }

    #[test]
    fn every_replica_of_the_node_moves_and_nothing_else() {
        let s = state(&["", "", "", "", ""], 8);
        let plan = plan_drain(&s, 2, &sizes()).unwrap();
        let hosted: Vec<PrgId> = s.placements_hosted_on(2).map(|p| p.prg.clone()).collect();
        let moved: Vec<PrgId> = plan.replica_moves.iter().map(|m| m.step.prg.clone()).collect();
        assert_eq!(moved, hosted);
        for m in &plan.replica_moves {
            assert_eq!(m.step.from, 2);
            assert!(!s.placements[&m.step.prg].members.contains(&m.step.to), "{m:?}");
            assert_ne!(m.step.to, 2);
        }
        // The replicas spread: no node takes more than one above another.
        let mut taken: BTreeMap<NodeId, usize> = BTreeMap::new();
        for m in &plan.replica_moves {
            *taken.entry(m.step.to).or_default() += 1;
        }
        let after: Vec<usize> =
            [1, 3, 4, 5].iter().map(|n| s.placements_on(*n).count() + taken.get(n).copied().unwrap_or(0)).collect();
        assert!(after.iter().max().unwrap() - after.iter().min().unwrap() <= 1, "{after:?}");
        assert_eq!(plan.total_bytes, hosted.len() as u64 * (10 << 20));
        assert_eq!(plan.epoch_bumps, hosted.len() as u64);
        assert_eq!(plan.eta_ms, hosted.len() as u64 * 1100);
        assert!(plan.slot_moves.is_empty() && plan.new_prgs.is_empty() && plan.leader_changes.is_empty());
        assert_eq!(plan.version, 7);
    }

    #[test]
    fn zones_stay_distinct_and_the_drained_zone_is_preferred() {
        // Nodes 1..=6 in zones a, b, c, a, b, c.
        let s = state(&["a", "b", "c", "a", "b", "c"], 6);
        let plan = plan_drain(&s, 1, &sizes()).unwrap();
        assert!(!plan.replica_moves.is_empty());
        for m in &plan.replica_moves {
            assert_eq!(s.nodes[&m.step.to].zone, "a", "{m:?}");
        }
    }

    #[test]
    fn refusals() {
        let s = state(&["", "", ""], 4);
        assert_eq!(plan_drain(&s, 9, &sizes()), Err(DrainError::UnknownNode(9)));
        assert_eq!(plan_drain(&s, 3, &sizes()), Err(DrainError::NotEnoughNodes { node: 3, active: 2 }));
        // Four nodes, one of them already draining: still two active.
        let mut s = state(&["", "", "", ""], 4);
        s.nodes.get_mut(&4).unwrap().state = NodeState::Draining;
        assert_eq!(plan_drain(&s, 1, &sizes()), Err(DrainError::NotEnoughNodes { node: 1, active: 2 }));
        // A node that hosts nothing drains with an empty plan.
        let s = state(&["", "", "", ""], 1);
        let idle = (1..=4).find(|n| s.placements_hosted_on(*n).count() == 0).unwrap();
        assert!(plan_drain(&s, idle, &sizes()).unwrap().replica_moves.is_empty());
        // Every other active node already hosts the PRG (node 4 as a learner).
        let mut s = state(&["", "", "", ""], 1);
        let p = s.placements.get_mut(&PrgId::new("default", 0)).unwrap();
        assert_eq!(p.members, vec![1, 2, 3]);
        p.learners.push(4);
        assert!(matches!(plan_drain(&s, 1, &sizes()), Err(DrainError::NoTarget { node: 1, .. })));
    }
}
