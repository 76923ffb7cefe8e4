//! The placement planner: given the nodes and the PRGs as they are (and any
//! new PRGs, with no members yet), the layout they should have and the
//! replica moves that get there.
//!
//! Hard rules: three distinct nodes per PRG; distinct zones when the
//! eligible nodes span at least three; nothing on a draining node.
//! Objectives, in order:
//! 1. replicas per node within one of its fair share, the shares being in
//!    proportion to node capacity (a zone holds at most one replica of each
//!    PRG, so a zone's share is capped at the PRG count and the rest spread
//!    over the other zones);
//! 2. the fewest replicas placed on a node that did not hold them;
//! 3. leaders (first members) per node within one of a fair share of the
//!    PRGs, in proportion to capacity and never more than the node hosts;
//! 4. the fewest leaders changed.
//!
//! Replicas and leaders are each a min-cost flow ([`flow`]), as in
//! Garage's layout planner: PRG → (PRG, zone) → node → sink, an edge to a
//! node that already holds the PRG costing 0 and any other 1. A node's
//! edge to the sink carries its floor share at cost 0 and the one unit
//! above it at a cost larger than any number of moves, so every node
//! reaches its floor, only the needed nodes go one above, and among such
//! layouts the fewest replicas move. The result is exact: tests compare it
//! with a brute-force search on small clusters. Slots are balanced by
//! [`slots::balance`].

pub mod drain;
pub mod flow;
pub mod quota;
pub mod scale;
pub mod slots;

use std::collections::{BTreeMap, BTreeSet};

use flow::Flow;
use quota::{shares, Share};

use crate::ids::{NodeId, PrgId};

/// Replicas per PRG.
pub const REPLICAS: usize = 3;

/// A node as the planner sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlanNode {
    pub id: NodeId,
    pub zone: String,
    /// Relative size; a node of capacity 2 gets twice the replicas of one
    /// of capacity 1. 0 takes nothing.
    pub capacity: u64,
    /// Draining nodes keep nothing.
    pub draining: bool,
}

/// A PRG as it is: its members, leader first. A new PRG has none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanPrg {
    pub id: PrgId,
    pub members: Vec<NodeId>,
}

/// One replica of `prg` that moves from node `from` to node `to`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ReplicaStep {
    pub prg: PrgId,
    pub from: NodeId,
    pub to: NodeId,
}

/// Where every PRG's replicas should be, and how to get there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaLayout {
    /// Each PRG's members, leader first.
    pub members: BTreeMap<PrgId, Vec<NodeId>>,
    /// Replicas that change node, for PRGs that had members.
    pub moves: Vec<ReplicaStep>,
    /// PRGs that had members and change leader.
    pub leader_changes: Vec<(PrgId, NodeId)>,
    /// Replicas and leaders each node should hold: (floor, ceil) of its share.
    pub replica_share: BTreeMap<NodeId, (u64, u64)>,
    pub leader_share: BTreeMap<NodeId, (u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("need at least {REPLICAS} nodes that are active and have capacity, have {eligible}")]
    NotEnoughNodes { eligible: usize },
    #[error("PRG {0} is listed twice")]
    DuplicatePrg(PrgId),
    #[error("no layout places every PRG on {REPLICAS} distinct nodes{zones} within the nodes' shares")]
    Infeasible { zones: &'static str },
}

/// Plan the replicas of `prgs` over `nodes`.
pub fn place_replicas(nodes: &[PlanNode], prgs: &[PlanPrg]) -> Result<ReplicaLayout, PlanError> {
    place_replicas_with(nodes, prgs, SPARSE_ABOVE)
}

/// [`place_replicas`], offering PRGs only some nodes above `sparse_above`
/// (PRG, node) pairs.
fn place_replicas_with(nodes: &[PlanNode], prgs: &[PlanPrg], sparse_above: usize) -> Result<ReplicaLayout, PlanError> {
    let mut eligible: Vec<&PlanNode> = nodes.iter().filter(|n| !n.draining && n.capacity > 0).collect();
    eligible.sort_by_key(|n| n.id);
    eligible.dedup_by_key(|n| n.id);
    if eligible.len() < REPLICAS {
        return Err(PlanError::NotEnoughNodes { eligible: eligible.len() });
    }
    let mut seen = BTreeSet::new();
    if let Some(p) = prgs.iter().find(|p| !seen.insert(&p.id)) {
        return Err(PlanError::DuplicatePrg(p.id.clone()));
    }
    let zones: Vec<&str> = eligible.iter().map(|n| n.zone.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    let spread = zones.len() >= REPLICAS;
    let zone_of = |n: &PlanNode| zones.binary_search(&n.zone.as_str()).expect("zone listed");
    let index: BTreeMap<NodeId, usize> = eligible.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
    let p_count = prgs.len() as u64;
    let infeasible = || PlanError::Infeasible { zones: if spread { " in distinct zones" } else { "" } };
    let replica_shares = replica_shares(&eligible, &zones, spread, p_count).ok_or_else(infeasible)?;

    // What each PRG keeps: its members on eligible nodes, once each, one per zone.
    let kept: Vec<Vec<usize>> = prgs
        .iter()
        .map(|p| {
            let mut out: Vec<usize> = Vec::new();
            for m in &p.members {
                let Some(&i) = index.get(m) else { continue };
                let clash = out.iter().any(|&j| j == i || (spread && zone_of(eligible[j]) == zone_of(eligible[i])));
                if !clash && out.len() < REPLICAS {
                    out.push(i);
                }
            }
            out
        })
        .collect();

    // On a large cluster each PRG is offered, besides its own members, only
    // the nodes below their share and a few of the least loaded per zone;
    // should that not place everything, every node is offered.
    let large = prgs.len().saturating_mul(eligible.len()) > sparse_above;
    let offered = if large { Some(offered_nodes(&eligible, &kept, &replica_shares, &zones)) } else { None };
    let chosen = assign(&eligible, prgs, &kept, &replica_shares, &zones, spread, offered.as_deref())
        .or_else(|| offered.and_then(|_| assign(&eligible, prgs, &kept, &replica_shares, &zones, spread, None)))
        .ok_or_else(infeasible)?;
    finish(nodes, prgs, &eligible, &index, &replica_shares, chosen)
}

/// Above this many (PRG, node) pairs a PRG is offered only some nodes.
const SPARSE_ABOVE: usize = 2_000_000;

/// Least-loaded nodes offered to every PRG per zone on a large cluster.
const OFFERED_PER_ZONE: usize = 8;

/// Nodes offered to every PRG on a large cluster: those below their ceiling
/// share now, and the least loaded of each zone.
fn offered_nodes(eligible: &[&PlanNode], kept: &[Vec<usize>], shares: &[Share], zones: &[&str]) -> Vec<bool> {
    let mut count = vec![0u64; eligible.len()];
    for k in kept {
        for &n in k {
            count[n] += 1;
        }
    }
    let mut offered: Vec<bool> = (0..eligible.len()).map(|n| count[n] < shares[n].ceil()).collect();
    for z in zones {
        let mut in_zone: Vec<usize> = (0..eligible.len()).filter(|&n| eligible[n].zone == *z).collect();
        in_zone.sort_by_key(|&n| (count[n], eligible[n].id));
        for n in in_zone.into_iter().take(OFFERED_PER_ZONE) {
            offered[n] = true;
        }
    }
    offered
}

/// The replicas' flow: s → PRG → (PRG, zone) → node → t. Each PRG's chosen
/// nodes (indices into `eligible`), or `None` when not all can be placed.
fn assign(
    eligible: &[&PlanNode],
    prgs: &[PlanPrg],
    kept: &[Vec<usize>],
    replica_shares: &[Share],
    zones: &[&str],
    spread: bool,
    offered: Option<&[bool]>,
) -> Option<Vec<BTreeSet<usize>>> {
    let p_count = prgs.len() as u64;
    let big = REPLICAS as i64 * p_count as i64 + 1;
    let (s, t) = (0, 1);
    let mut f = Flow::new(2);
    let prg_v: Vec<usize> = prgs.iter().map(|_| f.add_vertex()).collect();
    let node_v: Vec<usize> = eligible.iter().map(|_| f.add_vertex()).collect();
    let floor_e = share_sinks(&mut f, &node_v, t, replica_shares, big);
    // edges[p] = (node index, PRG→zone edge, zone→node edge).
    let mut edges: Vec<Vec<(usize, Option<usize>, usize)>> = Vec::with_capacity(prgs.len());
    let mut source_e = Vec::with_capacity(prgs.len());
    for (pi, p) in prgs.iter().enumerate() {
        source_e.push(f.edge(s, prg_v[pi], REPLICAS as i64, 0));
        let mut list = Vec::with_capacity(eligible.len());
        if spread {
            for z in zones {
                let zv = f.add_vertex();
                let ze = f.edge(prg_v[pi], zv, 1, 0);
                for (ni, n) in eligible.iter().enumerate().filter(|(_, n)| n.zone == *z) {
                    let cost = i64::from(!p.members.contains(&n.id));
                    if cost == 1 && offered.is_some_and(|o| !o[ni]) {
                        continue;
                    }
                    list.push((ni, Some(ze), f.edge(zv, node_v[ni], 1, cost)));
                }
            }
        } else {
            for (ni, n) in eligible.iter().enumerate() {
                let cost = i64::from(!p.members.contains(&n.id));
                if cost == 1 && offered.is_some_and(|o| !o[ni]) {
                    continue;
                }
                list.push((ni, None, f.edge(prg_v[pi], node_v[ni], 1, cost)));
            }
        }
        edges.push(list);
    }
    // Start from what stays, up to each node's floor share.
    let mut room: Vec<i64> = replica_shares.iter().map(|s| s.floor() as i64).collect();
    let mut placed = 0i64;
    for (pi, keep) in kept.iter().enumerate() {
        for &ni in keep {
            if room[ni] == 0 {
                continue;
            }
            let &(_, ze, ne) = edges[pi].iter().find(|(n, _, _)| *n == ni).expect("an edge to every node");
            let ok =
                f.push(source_e[pi], 1) && ze.is_none_or(|e| f.push(e, 1)) && f.push(ne, 1) && f.push(floor_e[ni], 1);
            debug_assert!(ok, "a kept replica fits");
            room[ni] -= 1;
            placed += 1;
        }
    }
    let need = REPLICAS as i64 * p_count as i64 - placed;
    if f.augment(s, t, need).0 < need {
        return None;
    }
    Some(
        edges
            .iter()
            .map(|list| list.iter().filter(|(_, _, e)| f.flow_on(*e) > 0).map(|(n, _, _)| *n).collect())
            .collect(),
    )
}

/// Leaders over the chosen members, and the layout with its steps.
fn finish(
    nodes: &[PlanNode],
    prgs: &[PlanPrg],
    eligible: &[&PlanNode],
    index: &BTreeMap<NodeId, usize>,
    replica_shares: &[Share],
    chosen: Vec<BTreeSet<usize>>,
) -> Result<ReplicaLayout, PlanError> {
    let p_count = prgs.len() as u64;
    let (s, t) = (0, 1);

    // Leaders: s → PRG → member → t.
    let mut hosted = vec![0u64; eligible.len()];
    for c in &chosen {
        for &n in c {
            hosted[n] += 1;
        }
    }
    let leader_shares =
        shares(p_count, &eligible.iter().zip(&hosted).map(|(n, h)| (n.capacity, *h)).collect::<Vec<_>>())
            .ok_or(PlanError::Infeasible { zones: "" })?;
    let big = p_count as i64 + 1;
    let mut g = Flow::new(2);
    let prg_v: Vec<usize> = prgs.iter().map(|_| g.add_vertex()).collect();
    let node_v: Vec<usize> = eligible.iter().map(|_| g.add_vertex()).collect();
    let floor_e = share_sinks(&mut g, &node_v, t, &leader_shares, big);
    let mut room: Vec<i64> = leader_shares.iter().map(|s| s.floor() as i64).collect();
    let mut lead_e: Vec<Vec<(usize, usize)>> = Vec::with_capacity(prgs.len());
    let mut placed = 0i64;
    for (pi, p) in prgs.iter().enumerate() {
        let se = g.edge(s, prg_v[pi], 1, 0);
        let was = p.members.first().and_then(|m| index.get(m)).copied();
        let list: Vec<(usize, usize)> =
            chosen[pi].iter().map(|&n| (n, g.edge(prg_v[pi], node_v[n], 1, i64::from(Some(n) != was)))).collect();
        if let Some(w) = was.filter(|w| chosen[pi].contains(w) && room[*w] > 0) {
            let e = list.iter().find(|(n, _)| *n == w).expect("listed").1;
            let ok = g.push(se, 1) && g.push(e, 1) && g.push(floor_e[w], 1);
            debug_assert!(ok, "a kept leader fits");
            room[w] -= 1;
            placed += 1;
        }
        lead_e.push(list);
    }
    let need = p_count as i64 - placed;
    if g.augment(s, t, need).0 < need {
        return Err(PlanError::Infeasible { zones: "" });
    }

    // The layout, and the steps from the current one.
    let mut layout = ReplicaLayout {
        members: BTreeMap::new(),
        moves: Vec::new(),
        leader_changes: Vec::new(),
        replica_share: eligible.iter().zip(replica_shares).map(|(n, s)| (n.id, (s.floor(), s.ceil()))).collect(),
        leader_share: eligible.iter().zip(&leader_shares).map(|(n, s)| (n.id, (s.floor(), s.ceil()))).collect(),
    };
    for (pi, p) in prgs.iter().enumerate() {
        let leader = lead_e[pi].iter().find(|(_, e)| g.flow_on(*e) > 0).map(|(n, _)| eligible[*n].id).expect("led");
        let ids: BTreeSet<NodeId> = chosen[pi].iter().map(|&n| eligible[n].id).collect();
        let mut members = vec![leader];
        members.extend(p.members.iter().filter(|m| **m != leader && ids.contains(m)));
        members.extend(ids.iter().filter(|m| !p.members.contains(m) && **m != leader));
        if !p.members.is_empty() {
            if p.members.first() != Some(&leader) {
                layout.leader_changes.push((p.id.clone(), leader));
            }
            layout.moves.extend(pair_moves(p, &members, nodes));
        }
        layout.members.insert(p.id.clone(), members);
    }
    Ok(layout)
}

/// Each node's edges to the sink `t`: its floor share at cost 0, and the
/// one unit above it at `big`. Returns the floor edges.
fn share_sinks(f: &mut Flow, node_v: &[usize], t: usize, shares: &[Share], big: i64) -> Vec<usize> {
    node_v
        .iter()
        .zip(shares)
        .map(|(&v, s)| {
            let (lo, hi) = (s.floor() as i64, s.ceil() as i64);
            let e = f.edge(v, t, lo, 0);
            if hi > lo {
                f.edge(v, t, hi - lo, big);
            }
            e
        })
        .collect()
}

/// Each eligible node's share of the replicas: in proportion to capacity,
/// and with zones spread, a zone's share capped at one replica per PRG.
fn replica_shares(eligible: &[&PlanNode], zones: &[&str], spread: bool, prgs: u64) -> Option<Vec<Share>> {
    let total = REPLICAS as u64 * prgs;
    if !spread {
        return shares(total, &eligible.iter().map(|n| (n.capacity, prgs)).collect::<Vec<_>>());
    }
    let zone_cap: Vec<u64> =
        zones.iter().map(|z| eligible.iter().filter(|n| n.zone == *z).map(|n| n.capacity).sum()).collect();
    let zone_shares = shares(total, &zone_cap.iter().map(|c| (*c, prgs)).collect::<Vec<_>>())?;
    Some(
        eligible
            .iter()
            .map(|n| {
                let z = zones.binary_search(&n.zone.as_str()).expect("zone listed");
                let zs = zone_shares[z];
                Share { num: zs.num * u128::from(n.capacity), den: zs.den * u128::from(zone_cap[z]) }
            })
            .collect(),
    )
}

/// Pair the members `p` loses with those it gains, same zone first.
fn pair_moves(p: &PlanPrg, members: &[NodeId], nodes: &[PlanNode]) -> Vec<ReplicaStep> {
    let zone = |id: NodeId| nodes.iter().find(|n| n.id == id).map(|n| n.zone.as_str());
    let mut gained: Vec<NodeId> = members.iter().filter(|m| !p.members.contains(m)).copied().collect();
    let mut out = Vec::new();
    for &lost in p.members.iter().filter(|m| !members.contains(m)) {
        if gained.is_empty() {
            break;
        }
        let i = gained.iter().position(|g| zone(*g) == zone(lost)).unwrap_or(0);
        out.push(ReplicaStep { prg: p.id.clone(), from: lost, to: gained.remove(i) });
    }
    out
}

#[cfg(test)]
#[path = "planner_tests.rs"]
mod tests;
