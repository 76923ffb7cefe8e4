//! Placement of new PRGs: which three nodes host each replica set.
//!
//! Hard rules: three distinct nodes, distinct zones when at least three zones
//! have eligible nodes, never a draining node. Within those rules the planner
//! prefers the nodes holding the fewest replicas, then the fewest first
//! members (first members bootstrap their group and usually lead it), then
//! the lowest id, so the outcome is deterministic for a given input.

use std::collections::{BTreeMap, BTreeSet};

use crate::cluster::{NodeInfo, NodeState, Placement};
use crate::ids::{NodeId, PrgId};

/// Replicas per PRG.
pub const REPLICAS: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("need at least {REPLICAS} active nodes to place {prg}, have {active}")]
    NotEnoughNodes { prg: PrgId, active: usize },
}

/// Placements for `new` PRGs given the existing ones, published at `epoch`.
pub fn place_new(
    nodes: &BTreeMap<NodeId, NodeInfo>,
    existing: &BTreeMap<PrgId, Placement>,
    new: &[PrgId],
    epoch: u64,
) -> Result<Vec<Placement>, PlacementError> {
    let eligible: Vec<&NodeInfo> = nodes.values().filter(|n| n.state == NodeState::Active).collect();
    let zones: BTreeSet<&str> = eligible.iter().map(|n| n.zone.as_str()).collect();
    let spread_zones = zones.len() >= REPLICAS;

    let mut replicas: BTreeMap<NodeId, usize> = eligible.iter().map(|n| (n.id, 0)).collect();
    let mut firsts: BTreeMap<NodeId, usize> = replicas.clone();
    for p in existing.values() {
        for (i, m) in p.members.iter().enumerate() {
            if let Some(c) = replicas.get_mut(m) {
                *c += 1;
            }
            if i == 0 {
                if let Some(c) = firsts.get_mut(m) {
                    *c += 1;
                }
            }
        }
    }

    let mut out = Vec::with_capacity(new.len());
    for prg in new {
        if eligible.len() < REPLICAS {
            return Err(PlacementError::NotEnoughNodes { prg: prg.clone(), active: eligible.len() });
        }
        let mut members: Vec<NodeId> = Vec::with_capacity(REPLICAS);
        let mut used_zones: BTreeSet<&str> = BTreeSet::new();
        for _ in 0..REPLICAS {
            let pick = eligible
                .iter()
                .filter(|n| !members.contains(&n.id))
                .filter(|n| !spread_zones || !used_zones.contains(n.zone.as_str()))
                .min_by_key(|n| (replicas[&n.id], firsts[&n.id], n.id))
                .expect("enough eligible nodes were checked above");
            members.push(pick.id);
            used_zones.insert(pick.zone.as_str());
        }
        // The least-led member goes first so leaders spread too.
        let lead_pos = (0..REPLICAS).min_by_key(|&i| (firsts[&members[i]], members[i])).unwrap_or(0);
        members.swap(0, lead_pos);
        for (i, m) in members.iter().enumerate() {
            *replicas.get_mut(m).unwrap() += 1;
            if i == 0 {
                *firsts.get_mut(m).unwrap() += 1;
            }
        }
        out.push(Placement::new(prg.clone(), members, epoch, Vec::new()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(id: NodeId, zone: &str) -> NodeInfo {
        NodeInfo {
            id,
            peer_addr: format!("127.0.0.1:{}", 7000 + id),
            client_addr: String::new(),
            http_addr: String::new(),
            zone: zone.to_string(),
            state: NodeState::Active,
        }
    }

    fn prgs(n: u32) -> Vec<PrgId> {
        (0..n).map(|i| PrgId::new("default", i)).collect()
    }

    #[test]
    fn three_nodes_host_every_prg() {
        let nodes: BTreeMap<_, _> = (1..=3).map(|i| (i, node(i, "z"))).collect();
        let out = place_new(&nodes, &BTreeMap::new(), &prgs(4), 1).unwrap();
        assert_eq!(out.len(), 4);
        for p in &out {
            let mut m = p.members.clone();
            m.sort();
            assert_eq!(m, vec![1, 2, 3]);
            assert_eq!(p.epoch, 1);
        }
        // First members (bootstrappers, likely leaders) rotate.
        let firsts: BTreeSet<_> = out.iter().take(3).map(|p| p.members[0]).collect();
        assert_eq!(firsts.len(), 3);
    }

    #[test]
    fn too_few_nodes_is_an_error() {
        let nodes: BTreeMap<_, _> = (1..=2).map(|i| (i, node(i, "z"))).collect();
        assert!(matches!(
            place_new(&nodes, &BTreeMap::new(), &prgs(1), 1),
            Err(PlacementError::NotEnoughNodes { active: 2, .. })
        ));
    }

    #[test]
    fn draining_nodes_get_nothing() {
        let mut nodes: BTreeMap<_, _> = (1..=4).map(|i| (i, node(i, "z"))).collect();
        nodes.get_mut(&2).unwrap().state = NodeState::Draining;
        let out = place_new(&nodes, &BTreeMap::new(), &prgs(6), 1).unwrap();
        assert!(out.iter().all(|p| !p.members.contains(&2)));
    }

    proptest! {
        #[test]
        fn placements_are_valid_and_balanced(n_nodes in 3u64..9, n_zones in 1u64..5, n_prgs in 1u32..24) {
            let nodes: BTreeMap<_, _> =
                (1..=n_nodes).map(|i| (i, node(i, &format!("z{}", i % n_zones)))).collect();
            let zones: BTreeSet<_> = nodes.values().map(|n| n.zone.clone()).collect();
            let out = place_new(&nodes, &BTreeMap::new(), &prgs(n_prgs), 1).unwrap();
            let mut count: BTreeMap<NodeId, usize> = nodes.keys().map(|&k| (k, 0)).collect();
            for p in &out {
                let distinct: BTreeSet<_> = p.members.iter().collect();
                prop_assert_eq!(distinct.len(), REPLICAS);
                if zones.len() >= REPLICAS {
                    let z: BTreeSet<_> = p.members.iter().map(|m| nodes[m].zone.clone()).collect();
                    prop_assert_eq!(z.len(), REPLICAS);
                }
                for m in &p.members { *count.get_mut(m).unwrap() += 1; }
            }
            // Without zone constraints, replicas per node stay within one of even.
            if zones.len() < REPLICAS || zones.len() as u64 == n_nodes {
                let max = count.values().max().unwrap();
                let min = count.values().min().unwrap();
                prop_assert!(max - min <= 1, "{:?}", count);
            }
        }
    }
}
