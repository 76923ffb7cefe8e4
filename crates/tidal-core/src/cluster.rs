//! The cluster as the control plane records it: nodes, tenants, placements
//! and the routing table. Plain data; the control plane's state machine
//! changes it, every node keeps a cached copy and routes with it.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::ids::{NodeId, PrgId};
use crate::operation::{OpId, Operation};
use crate::ownership::MoveId;
use crate::replica_move::ReplicaMove;
use crate::shrink::ShrinkPlan;
use crate::slot::slot_of;
use crate::slot_move::SlotMove;

/// Where a node can be reached and where it lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub id: NodeId,
    /// Peer transport (Raft and internal forwarding).
    pub peer_addr: String,
    /// Redis protocol.
    pub client_addr: String,
    /// HTTP data and admin API.
    pub http_addr: String,
    pub zone: String,
    pub state: NodeState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Registered and eligible for new replicas.
    Active,
    /// Being emptied: no new replicas go here.
    Draining,
}

/// A namespace of keys with a fixed number of slots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub name: String,
    pub slots: u32,
    /// `owner[slot]` = index of the PRG of this tenant that owns the slot.
    pub owner: Vec<u32>,
}

impl Tenant {
    /// A tenant whose slots are split into `prgs` contiguous, even ranges.
    pub fn new(name: impl Into<String>, slots: u32, prgs: u32) -> Self {
        assert!(slots > 0 && prgs > 0 && prgs <= slots);
        let owner = (0..slots).map(|s| (u64::from(s) * u64::from(prgs) / u64::from(slots)) as u32).collect();
        Self { name: name.into(), slots, owner }
    }

    pub fn prg_of_slot(&self, slot: u32) -> PrgId {
        PrgId::new(self.name.clone(), self.owner[slot as usize])
    }

    /// Slots owned by PRG `index`.
    pub fn slots_of(&self, index: u32) -> Vec<u32> {
        (0..self.slots).filter(|&s| self.owner[s as usize] == index).collect()
    }

    /// The slots PRG `index` owned when a tenant of `prgs` PRGs was
    /// created, as one range (empty for PRGs added later).
    pub fn initial_range(slots: u32, prgs: u32, index: u32) -> Range<u32> {
        let start = |i: u32| ((u64::from(i) * u64::from(slots)).div_ceil(u64::from(prgs))) as u32;
        if index >= prgs {
            return 0..0;
        }
        start(index)..start(index + 1)
    }
}

/// The replicas of one PRG.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    pub prg: PrgId,
    /// Exactly three distinct nodes; the first bootstraps the group.
    pub members: Vec<NodeId>,
    /// The routing epoch at which this placement was published.
    pub epoch: u64,
    /// The last leader the control plane heard of; a hint, not a promise.
    pub leader_hint: Option<NodeId>,
    /// The slots the PRG owned when it was created (its state machine
    /// starts from them; fixed for the PRG's life).
    pub genesis: Vec<Range<u32>>,
    /// Nodes catching up as learners for a replica move; they host a
    /// replica but do not vote.
    pub learners: Vec<NodeId>,
    /// The group has had a leader: nobody bootstraps it again.
    pub bootstrapped: bool,
}

impl Placement {
    pub fn new(prg: PrgId, members: Vec<NodeId>, epoch: u64, genesis: Vec<Range<u32>>) -> Self {
        Self { prg, members, epoch, leader_hint: None, genesis, learners: Vec::new(), bootstrapped: false }
    }

    /// Whether `node` hosts a replica (voter or learner).
    pub fn hosted_on(&self, node: NodeId) -> bool {
        self.members.contains(&node) || self.learners.contains(&node)
    }
}

/// Everything the control plane knows, versioned by its own log index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    /// The control plane log index this state reflects.
    pub version: u64,
    /// Only grows; bumped whenever routing or placements change.
    pub routing_epoch: u64,
    /// The control plane group `_cp`'s voters.
    pub cp_members: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    pub tenants: BTreeMap<String, Tenant>,
    pub placements: BTreeMap<PrgId, Placement>,
    /// Slot moves, in flight and finished, by id.
    pub moves: BTreeMap<MoveId, SlotMove>,
    /// Replica moves, in flight and finished, by id (ids shared with slot moves).
    pub replica_moves: BTreeMap<MoveId, ReplicaMove>,
    /// The id the next move gets.
    pub next_move_id: MoveId,
    /// Per node, the instance of the data directory that registered it: a
    /// second node claiming the id from another data directory is refused.
    pub instances: BTreeMap<NodeId, u64>,
    /// Scaling operations, running and finished, by id.
    pub operations: BTreeMap<OpId, Operation>,
    /// The id the next operation gets.
    pub next_op_id: OpId,
    /// PRGs created and then removed (a rolled-back operation's): their ids
    /// are not given out again, and nodes purge what they hold of them.
    pub retired_prgs: BTreeSet<PrgId>,
    /// Shrink plans, drafted, armed and finished, by id.
    pub shrink_plans: BTreeMap<String, ShrinkPlan>,
    /// Why each Draining node is draining: the latest drain of it.
    pub drains: BTreeMap<NodeId, DrainRecord>,
    /// Nodes removed from the cluster: their ids do not register again.
    pub removed_nodes: BTreeSet<NodeId>,
    /// Nodes starting a `_cp` replica to catch up as learners and then
    /// take a vote (the control plane's vote moving onto them).
    pub cp_learners: Vec<NodeId>,
    /// The autoscale policy and the journal of its decisions.
    pub autoscale: crate::autoscale::journal::AutoscaleState,
}

/// A drain of a node: who asked for it, and the operation that runs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainRecord {
    /// `drain` (an operator, or the node's SIGTERM) or `heal` (the node was
    /// lost, and self-healing re-creates its replicas elsewhere).
    pub kind: String,
    pub operation: OpId,
    pub started_ms: u64,
}

/// A node's claim to its id: what it serves, and the instance of its data
/// directory (random, made when the directory was). `replace` takes over
/// an id whose registered data directory is gone for good.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub info: NodeInfo,
    pub instance: u64,
    pub replace: bool,
}

/// Why a key cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("unknown tenant '{0}'")]
    UnknownTenant(String),
    #[error("PRG {0} has no placement yet")]
    Unplaced(PrgId),
}

/// The outcome of routing one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<'a> {
    pub slot: u32,
    pub placement: &'a Placement,
}

impl ClusterState {
    /// The slot of `key` in `tenant`, when the tenant exists.
    pub fn slot_of(&self, tenant: &str, key: &[u8]) -> Option<u32> {
        self.tenants.get(tenant).map(|t| slot_of(key, t.slots))
    }

    /// The slot and placement that own `key` of `tenant`.
    pub fn route(&self, tenant: &str, key: &[u8]) -> Result<Route<'_>, RouteError> {
        let t = self.tenants.get(tenant).ok_or_else(|| RouteError::UnknownTenant(tenant.to_string()))?;
        let slot = slot_of(key, t.slots);
        let prg = t.prg_of_slot(slot);
        let placement = self.placements.get(&prg).ok_or(RouteError::Unplaced(prg))?;
        Ok(Route { slot, placement })
    }

    /// Placements of PRGs `node` is a member of.
    pub fn placements_on(&self, node: NodeId) -> impl Iterator<Item = &Placement> {
        self.placements.values().filter(move |p| p.members.contains(&node))
    }

    /// Placements of PRGs `node` hosts a replica of, as a voter or a learner.
    pub fn placements_hosted_on(&self, node: NodeId) -> impl Iterator<Item = &Placement> {
        self.placements.values().filter(move |p| p.hosted_on(node))
    }

    /// The unfinished move (slot or replica) that involves PRG `prg`, if any.
    pub fn busy_with(&self, prg: &PrgId) -> Option<MoveId> {
        let slot = self
            .moves
            .values()
            .find(|m| !m.phase.is_finished() && m.tenant == prg.tenant && (m.from == prg.index || m.to == prg.index));
        let replica = self.replica_moves.values().find(|m| !m.phase.is_finished() && m.prg == *prg);
        slot.map(|m| m.id).or(replica.map(|m| m.id))
    }

    /// How move `id` (slot or replica) ended: `None` while it runs, `Ok`
    /// when it is done, `Err` with why when it rolled back or is no longer
    /// recorded.
    pub fn move_ended(&self, id: MoveId) -> Option<Result<(), String>> {
        let why = |e: &Option<String>| e.clone().unwrap_or_else(|| "no reason recorded".into());
        match (self.moves.get(&id), self.replica_moves.get(&id)) {
            (Some(m), _) if m.phase == crate::slot_move::MovePhase::Done => Some(Ok(())),
            (Some(m), _) if m.phase == crate::slot_move::MovePhase::RolledBack => Some(Err(why(&m.error))),
            (_, Some(m)) if m.phase == crate::replica_move::ReplicaPhase::Done => Some(Ok(())),
            (_, Some(m)) if m.phase == crate::replica_move::ReplicaPhase::RolledBack => Some(Err(why(&m.error))),
            (None, None) => Some(Err(format!("move {id} is no longer recorded"))),
            _ => None,
        }
    }

    /// The index the next new PRG of `tenant` gets: after its highest,
    /// placed or retired.
    pub fn next_prg_index(&self, tenant: &str) -> u32 {
        let placed = self.prgs_of(tenant).into_iter().map(|p| p.prg.index);
        let retired = self.retired_prgs.iter().filter(|p| p.tenant == tenant).map(|p| p.index);
        placed.chain(retired).map(|i| i + 1).max().unwrap_or(0)
    }

    /// The id the next new node gets: after every id in use or removed
    /// (a removed node's id never comes back).
    pub fn next_node_id(&self) -> NodeId {
        self.nodes.keys().chain(&self.removed_nodes).max().copied().unwrap_or(0) + 1
    }

    /// The unfinished operation, if any (at most one runs at a time).
    pub fn running_operation(&self) -> Option<&Operation> {
        self.operations.values().find(|o| !o.phase.is_finished())
    }

    /// All PRGs of a tenant, in index order.
    pub fn prgs_of(&self, tenant: &str) -> Vec<&Placement> {
        self.placements.values().filter(|p| p.prg.tenant == tenant).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ClusterState {
        let mut s = ClusterState::default();
        let t = Tenant::new("default", 1024, 4);
        for i in 0..4 {
            let prg = PrgId::new("default", i);
            let genesis = vec![Tenant::initial_range(1024, 4, i)];
            s.placements.insert(prg.clone(), Placement::new(prg, vec![1, 2, 3], 1, genesis));
        }
        s.tenants.insert("default".into(), t);
        s
    }

    #[test]
    fn slots_split_evenly_into_contiguous_ranges() {
        let t = Tenant::new("t", 1024, 4);
        for i in 0..4 {
            let slots = t.slots_of(i);
            assert_eq!(slots.len(), 256);
            assert_eq!(slots[0], i * 256);
            assert_eq!(*slots.last().unwrap(), i * 256 + 255);
        }
        let uneven = Tenant::new("t", 10, 3);
        for i in 0..3 {
            let r = Tenant::initial_range(10, 3, i);
            assert_eq!(uneven.slots_of(i), r.collect::<Vec<_>>(), "PRG {i}");
        }
        let sizes: Vec<usize> = (0..3).map(|i| uneven.slots_of(i).len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 10);
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
    }

    #[test]
    fn route_finds_the_owning_placement() {
        let s = state();
        let r = s.route("default", b"hello").unwrap();
        assert_eq!(r.slot, slot_of(b"hello", 1024));
        assert_eq!(r.placement.prg.index, r.slot * 4 / 1024);
        assert_eq!(s.route("nope", b"k"), Err(RouteError::UnknownTenant("nope".into())));
    }

    #[test]
    fn new_node_ids_come_after_removed_ones() {
        let mut s = state();
        assert_eq!(s.next_node_id(), 1);
        s.removed_nodes.extend([4, 5]);
        assert_eq!(s.next_node_id(), 6);
    }

    #[test]
    fn route_reports_missing_placements() {
        let mut s = state();
        s.placements.remove(&PrgId::new("default", 0));
        let key = (0..).map(|i| format!("k{i}")).find(|k| slot_of(k.as_bytes(), 1024) < 256).unwrap();
        assert_eq!(s.route("default", key.as_bytes()), Err(RouteError::Unplaced(PrgId::new("default", 0))));
    }
}
