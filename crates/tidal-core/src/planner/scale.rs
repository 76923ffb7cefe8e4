//! A scale-up plan: which nodes join, which PRGs are created and where,
//! which replicas and slots move, with the bytes each carries, the routing
//! epoch bumps it takes and how long it should last. Computed from the
//! cluster state at one version, which the plan carries: running it
//! against a state of another version is refused, so what runs is what
//! was shown.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::slots::{balance, SlotStep};
use super::{place_replicas, PlanError, PlanNode, PlanPrg, ReplicaStep};
use crate::cluster::{ClusterState, NodeState};
use crate::ids::{NodeId, PrgId};

/// What the operator asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleRequest {
    /// Nodes to add (not yet in the cluster), with their zone and capacity.
    pub add_nodes: Vec<PlanNode>,
    /// PRG count wanted per tenant; tenants not listed keep theirs.
    pub prgs: BTreeMap<String, u32>,
}

/// What the plan needs to know about sizes, from the nodes' reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sizes {
    /// Bytes each PRG holds (one replica's worth).
    pub prg_bytes: BTreeMap<PrgId, u64>,
    /// Bytes each slot holds, per tenant (`[slot]`), where known; otherwise
    /// a PRG's bytes are taken as spread evenly over its slots.
    pub slot_bytes: BTreeMap<String, Vec<u64>>,
    /// Move throughput to estimate with, bytes per second.
    pub rate: u64,
    /// Fixed time per step (fence, epoch bump, voter change), milliseconds.
    pub step_ms: u64,
}

/// One replica move with the bytes it carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedReplicaMove {
    pub step: ReplicaStep,
    pub bytes: u64,
}

/// Slots of one tenant that move between two of its PRGs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedSlotMove {
    pub tenant: String,
    pub from: PrgId,
    pub to: PrgId,
    pub slots: Vec<u32>,
    pub bytes: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalePlan {
    /// The control-plane state version the plan was computed from.
    pub version: u64,
    pub add_nodes: Vec<PlanNode>,
    /// New PRGs and their members, leader first.
    pub new_prgs: Vec<(PrgId, Vec<NodeId>)>,
    pub replica_moves: Vec<PlannedReplicaMove>,
    pub slot_moves: Vec<PlannedSlotMove>,
    /// Leaderships handed to another member, for balance.
    pub leader_changes: Vec<(PrgId, NodeId)>,
    pub total_bytes: u64,
    pub epoch_bumps: u64,
    pub eta_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaleError {
    #[error("no tenant {0}")]
    UnknownTenant(String),
    #[error("tenant {tenant} has {current} PRGs; fewer ({wanted}) needs an armed shrink plan")]
    Shrink { tenant: String, current: u32, wanted: u32 },
    #[error("tenant {tenant} has {slots} slots: {wanted} PRGs would leave a PRG without slots")]
    TooManyPrgs { tenant: String, slots: u32, wanted: u32 },
    #[error("node {0} is already in the cluster")]
    NodeExists(NodeId),
    #[error("node {0} was removed from the cluster; a removed node's id is not used again")]
    NodeRemoved(NodeId),
    #[error("node {0} is listed twice")]
    DuplicateNode(NodeId),
    #[error("nothing to do: the cluster already has these nodes and PRGs")]
    Nothing,
    #[error(transparent)]
    Placement(#[from] PlanError),
}

/// Plan `req` against `state`.
pub fn plan_scale(state: &ClusterState, req: &ScaleRequest, sizes: &Sizes) -> Result<ScalePlan, ScaleError> {
    let mut seen = std::collections::BTreeSet::new();
    for n in &req.add_nodes {
        if state.nodes.contains_key(&n.id) {
            return Err(ScaleError::NodeExists(n.id));
        }
        if state.removed_nodes.contains(&n.id) {
            return Err(ScaleError::NodeRemoved(n.id));
        }
        if !seen.insert(n.id) {
            return Err(ScaleError::DuplicateNode(n.id));
        }
    }
    // New PRG ids per tenant, after its highest.
    let mut new_ids: Vec<PrgId> = Vec::new();
    for (tenant, &wanted) in &req.prgs {
        let t = state.tenants.get(tenant).ok_or_else(|| ScaleError::UnknownTenant(tenant.clone()))?;
        let current = state.prgs_of(tenant).len() as u32;
        if wanted < current {
            return Err(ScaleError::Shrink { tenant: tenant.clone(), current, wanted });
        }
        if wanted > t.slots {
            return Err(ScaleError::TooManyPrgs { tenant: tenant.clone(), slots: t.slots, wanted });
        }
        let next = state.next_prg_index(tenant);
        new_ids.extend((next..next + (wanted - current)).map(|i| PrgId::new(tenant.clone(), i)));
    }
    if req.add_nodes.is_empty() && new_ids.is_empty() {
        return Err(ScaleError::Nothing);
    }

    let mut nodes: Vec<PlanNode> = state
        .nodes
        .values()
        .map(|n| PlanNode { id: n.id, zone: n.zone.clone(), capacity: 1, draining: n.state != NodeState::Active })
        .collect();
    nodes.extend(req.add_nodes.iter().cloned());
    let mut prgs: Vec<PlanPrg> =
        state.placements.values().map(|p| PlanPrg { id: p.prg.clone(), members: p.members.clone() }).collect();
    prgs.extend(new_ids.iter().map(|id| PlanPrg { id: id.clone(), members: Vec::new() }));
    let layout = place_replicas(&nodes, &prgs)?;

    let mut slot_moves = Vec::new();
    for (tenant, t) in &state.tenants {
        let mut indices: Vec<u32> = state.prgs_of(tenant).iter().map(|p| p.prg.index).collect();
        indices.extend(new_ids.iter().filter(|id| id.tenant == *tenant).map(|id| id.index));
        if indices.len() == state.prgs_of(tenant).len() {
            continue;
        }
        let bytes = slot_sizes(state, tenant, sizes);
        for SlotStep { from, to, slots, bytes } in balance(&t.owner, &indices, Some(&bytes)) {
            slot_moves.push(PlannedSlotMove {
                tenant: tenant.clone(),
                from: PrgId::new(tenant.clone(), from),
                to: PrgId::new(tenant.clone(), to),
                slots,
                bytes,
            });
        }
    }
    // Slots move before replicas (see `crate::operation`): a replica moves
    // with what its PRG holds once its slot moves are done.
    let after_slots = bytes_after_slots(sizes, &slot_moves);
    let replica_moves: Vec<PlannedReplicaMove> =
        layout.moves.iter().map(|s| PlannedReplicaMove { step: s.clone(), bytes: after_slots(&s.prg) }).collect();
    let total_bytes =
        replica_moves.iter().map(|m| m.bytes).sum::<u64>() + slot_moves.iter().map(|m| m.bytes).sum::<u64>();
    let epoch_bumps = u64::from(!new_ids.is_empty()) + replica_moves.len() as u64 + slot_moves.len() as u64;
    let eta_ms = total_bytes.saturating_mul(1000) / sizes.rate.max(1) + epoch_bumps * sizes.step_ms;
    Ok(ScalePlan {
        version: state.version,
        add_nodes: req.add_nodes.clone(),
        new_prgs: new_ids.iter().map(|id| (id.clone(), layout.members[id].clone())).collect(),
        replica_moves,
        slot_moves,
        leader_changes: layout.leader_changes.clone(),
        total_bytes,
        epoch_bumps,
        eta_ms,
    })
}

/// Each PRG's bytes once `slot_moves` have run (what a replica move
/// after them carries): its reported bytes, less what it gives, plus what
/// it takes.
pub(crate) fn bytes_after_slots(sizes: &Sizes, slot_moves: &[PlannedSlotMove]) -> impl Fn(&PrgId) -> u64 {
    let mut after: BTreeMap<PrgId, i128> = sizes.prg_bytes.iter().map(|(p, b)| (p.clone(), i128::from(*b))).collect();
    for m in slot_moves {
        *after.entry(m.from.clone()).or_default() -= i128::from(m.bytes);
        *after.entry(m.to.clone()).or_default() += i128::from(m.bytes);
    }
    move |p| after.get(p).map_or(0, |b| u64::try_from((*b).max(0)).unwrap_or(0))
}

/// Bytes per slot of `tenant`: as reported, or each PRG's bytes spread
/// evenly over the slots it owns.
pub(crate) fn slot_sizes(state: &ClusterState, tenant: &str, sizes: &Sizes) -> Vec<u64> {
    let t = &state.tenants[tenant];
    if let Some(b) = sizes.slot_bytes.get(tenant).filter(|b| b.len() == t.owner.len()) {
        return b.clone();
    }
    let mut owned: BTreeMap<u32, u64> = BTreeMap::new();
    for p in &t.owner {
        *owned.entry(*p).or_default() += 1;
    }
    t.owner
        .iter()
        .map(|p| {
            let prg = sizes.prg_bytes.get(&PrgId::new(tenant, *p)).copied().unwrap_or(0);
            prg / owned[p].max(1)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{NodeInfo, Placement, Tenant};

    fn state(nodes: u64, prgs: u32) -> ClusterState {
        let mut s = ClusterState { version: 42, ..ClusterState::default() };
        for i in 1..=nodes {
            s.nodes.insert(
                i,
                NodeInfo {
                    id: i,
                    peer_addr: format!("127.0.0.1:{}", 7000 + i),
                    client_addr: String::new(),
                    http_addr: String::new(),
                    zone: String::new(),
                    state: NodeState::Active,
                },
            );
        }
        s.tenants.insert("default".into(), Tenant::new("default", 64, prgs));
        for p in 0..prgs {
            let members = (0..3).map(|k| 1 + (u64::from(p) + k) % nodes).collect();
            s.placements
                .insert(PrgId::new("default", p), Placement::new(PrgId::new("default", p), members, 1, Vec::new()));
        }
        s
    }

    fn joining(ids: std::ops::RangeInclusive<u64>) -> Vec<PlanNode> {
        ids.map(|id| PlanNode { id, zone: String::new(), capacity: 1, draining: false }).collect()
    }

    fn sizes() -> Sizes {
        let prg_bytes = (0..8).map(|p| (PrgId::new("default", p), 64 << 20)).collect();
        Sizes { prg_bytes, slot_bytes: BTreeMap::new(), rate: 32 << 20, step_ms: 500 }
    }

    #[test]
    fn three_to_five_nodes_and_four_to_eight_prgs() {
        let s = state(3, 4);
        let req = ScaleRequest { add_nodes: joining(4..=5), prgs: [("default".to_string(), 8)].into() };
        let plan = plan_scale(&s, &req, &sizes()).unwrap();
        assert_eq!(plan.version, 42);
        assert_eq!(plan.new_prgs.len(), 4);
        assert_eq!(plan.new_prgs[0].0, PrgId::new("default", 4));
        // 24 replicas over 5 nodes, 4 or 5 each: the 12 old ones sit on the
        // 3 old nodes, which may hold 15, so the 2 new nodes take 9. The new
        // PRGs can put at most 8 there (two per PRG): one old replica moves.
        let on_new: usize = plan.new_prgs.iter().map(|(_, m)| m.iter().filter(|n| **n >= 4).count()).sum();
        assert_eq!((on_new, plan.replica_moves.len()), (8, 1), "{plan:?}");
        // Half of each old PRG's 16 slots move to a new one: 32 slots, 4 moves.
        let slots: usize = plan.slot_moves.iter().map(|m| m.slots.len()).sum();
        assert_eq!(slots, 32);
        assert_eq!(plan.slot_moves.len(), 4);
        // 64 MiB per old PRG over 16 slots: 4 MiB a slot.
        assert!(plan.slot_moves.iter().all(|m| m.bytes == 8 * (4 << 20)));
        // The replica moves after its PRG has given half its slots away.
        assert!(plan.replica_moves.iter().all(|m| m.bytes == 32 << 20), "{plan:?}");
        let moved = plan.replica_moves.len() as u64 * (32 << 20) + 32 * (4 << 20);
        assert_eq!(plan.total_bytes, moved);
        assert_eq!(plan.epoch_bumps, 1 + plan.replica_moves.len() as u64 + 4);
        assert_eq!(plan.eta_ms, moved * 1000 / (32 << 20) + plan.epoch_bumps * 500);
        // The same input, the same plan.
        assert_eq!(plan_scale(&s, &req, &sizes()).unwrap(), plan);
    }

    #[test]
    fn bad_requests_are_refused() {
        let s = state(3, 4);
        let ask = |add: Vec<PlanNode>, prgs: &[(&str, u32)]| {
            let req = ScaleRequest { add_nodes: add, prgs: prgs.iter().map(|(t, n)| (t.to_string(), *n)).collect() };
            plan_scale(&s, &req, &sizes())
        };
        assert_eq!(ask(vec![], &[("nope", 8)]), Err(ScaleError::UnknownTenant("nope".into())));
        assert!(matches!(ask(vec![], &[("default", 2)]), Err(ScaleError::Shrink { current: 4, wanted: 2, .. })));
        assert!(matches!(ask(vec![], &[("default", 65)]), Err(ScaleError::TooManyPrgs { slots: 64, .. })));
        assert_eq!(ask(joining(3..=3), &[]), Err(ScaleError::NodeExists(3)));
        let mut gone = s.clone();
        gone.removed_nodes.insert(4);
        let req = ScaleRequest { add_nodes: joining(4..=4), prgs: BTreeMap::new() };
        assert_eq!(plan_scale(&gone, &req, &sizes()), Err(ScaleError::NodeRemoved(4)));
        let mut twice = joining(4..=4);
        twice.extend(joining(4..=4));
        assert_eq!(ask(twice, &[]), Err(ScaleError::DuplicateNode(4)));
        assert_eq!(ask(vec![], &[("default", 4)]), Err(ScaleError::Nothing));
    }

    #[test]
    fn only_nodes_moves_replicas_and_no_slots() {
        let s = state(3, 4);
        let req = ScaleRequest { add_nodes: joining(4..=6), prgs: BTreeMap::new() };
        let plan = plan_scale(&s, &req, &sizes()).unwrap();
        assert!(plan.new_prgs.is_empty() && plan.slot_moves.is_empty());
        // 12 replicas over 6 nodes: 2 each, so 6 move to the new nodes.
        assert_eq!(plan.replica_moves.len(), 6);
        assert!(plan.replica_moves.iter().all(|m| m.step.to >= 4 && m.bytes == 64 << 20));
    }
}
